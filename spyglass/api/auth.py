"""Credentials on HTTP and sockets: client tokens in a path or a Bearer header, browser sessions."""

from __future__ import annotations

from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from spyglass.api.errors import ApiError
from spyglass.auth.service import TokenInfo, UserInfo, get_auth
from spyglass.states.auth import SESSION_COOKIE

bearer = HTTPBearer(auto_error=False, description="A client token: `Authorization: Bearer sg_…`")

INVALID_TOKEN = "Invalid or revoked client token"


async def token_from_path(client_token: str) -> TokenInfo:
    token = await get_auth().resolve_token(client_token)
    if token is None:
        raise ApiError(401, INVALID_TOKEN, "INVALID_TOKEN")
    return token


async def bearer_user(
    credentials: HTTPAuthorizationCredentials | None,
) -> tuple[TokenInfo, UserInfo]:
    """The token in `Authorization: Bearer …` and its owner, or 401."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(
            401, "Send a client token as `Authorization: Bearer <token>`", "NOT_AUTHENTICATED"
        )
    token = await get_auth().resolve_token(credentials.credentials)
    if token is None:
        raise ApiError(401, INVALID_TOKEN, "INVALID_TOKEN")
    user = await get_auth().get_user(token.owner_id)
    if user is None:
        raise ApiError(401, INVALID_TOKEN, "INVALID_TOKEN")
    return token, user


async def session_user(request: Request) -> UserInfo | None:
    """The browser user behind the session cookie (for server-rendered admin pages)."""
    return await get_auth().session_user(request.cookies.get(SESSION_COOKIE, ""))
