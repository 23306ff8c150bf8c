"""Credentials on HTTP and sockets: client tokens in a path or a Bearer header, browser sessions.

Every use of a client token counts against its rate (`SPYGLASS_LIMIT_API_TOKEN`, per token):
the dependencies below count it, so every route that takes a token is limited by construction.

Every route taking a Bearer token names the scope it needs (`Reader`, `Starter`, `Manager`,
`TokenManager`): a token without it, or whose owner's role does not allow it, is refused with
403 `INSUFFICIENT_SCOPE` (`spyglass.tasks.access.scope_allowed`). An expired token is 401
like a revoked one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from spyglass.api.session import client_address
from spyglass.auth.service import TokenInfo, UserInfo, get_auth
from spyglass.config import get_settings
from spyglass.errors import DomainError
from spyglass.ratelimit import get_limiter
from spyglass.states.auth import SESSION_COOKIE
from spyglass.tasks.access import (
    TASKS_MANAGE,
    TASKS_READ,
    TASKS_START,
    TOKENS_MANAGE,
    role_of,
    scope_allowed,
)

bearer = HTTPBearer(auto_error=False, description="A client token: `Authorization: Bearer sg_…`")

#: Also the answer to an expired token: it is refused exactly like a revoked one.
INVALID_TOKEN = "Invalid or revoked client token"
INSUFFICIENT_SCOPE = "INSUFFICIENT_SCOPE"


class InsufficientScope(DomainError):
    """403 `INSUFFICIENT_SCOPE`: the token lacks the scope, or its owner's role does."""

    def __init__(self, scope: str, detail: str) -> None:
        super().__init__(INSUFFICIENT_SCOPE, detail, 403, {"required_scope": scope})


def require_scope(token: TokenInfo, user: UserInfo, scope: str) -> None:
    """Refuse (403 INSUFFICIENT_SCOPE) a use of `token` that needs `scope`."""
    if scope_allowed(scope, token.scopes, user.role):
        return
    if scope not in token.scopes:
        raise InsufficientScope(scope, f"This client token does not have the {scope} scope")
    raise InsufficientScope(
        scope, f"Your role ({role_of(user)}) does not allow {scope}, whatever the token says"
    )


async def count_token_use(token: TokenInfo) -> None:
    """One request made with `token`; 429 RATE_LIMITED once its rate is used up."""
    await get_limiter().hit(
        get_settings().limit_api_token,
        "api-token",
        str(token.id),
        message="Too many requests with this client token",
    )


async def token_from_path(client_token: str) -> TokenInfo:
    """The valid token named by the `{client_token}` path parameter (401 if none), counted."""
    token = await get_auth().resolve_token(client_token)
    if token is None:
        raise DomainError("INVALID_TOKEN", INVALID_TOKEN, 401)
    await count_token_use(token)
    return token


async def path_credential(client_token: str, scope: str) -> tuple[TokenInfo, UserInfo]:
    """The `{client_token}` of a path and its owner, with `scope` checked (401, 403)."""
    token = await token_from_path(client_token)
    user = await get_auth().get_user(token.owner_id)
    if user is None:
        raise DomainError("INVALID_TOKEN", INVALID_TOKEN, 401)
    require_scope(token, user, scope)
    return token, user


async def token_to_start(client_token: str) -> TokenInfo:
    """A path token that may start jobs (`tasks:start`)."""
    return (await path_credential(client_token, TASKS_START))[0]


async def bearer_user(
    credentials: HTTPAuthorizationCredentials | None,
) -> tuple[TokenInfo, UserInfo]:
    """The token in `Authorization: Bearer …` and its owner, or 401."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise DomainError(
            "NOT_AUTHENTICATED", "Send a client token as `Authorization: Bearer <token>`", 401
        )
    token = await get_auth().resolve_token(credentials.credentials)
    if token is None:
        raise DomainError("INVALID_TOKEN", INVALID_TOKEN, 401)
    user = await get_auth().get_user(token.owner_id)
    if user is None:
        raise DomainError("INVALID_TOKEN", INVALID_TOKEN, 401)
    await count_token_use(token)
    return token, user


async def session_user(request: Request) -> UserInfo | None:
    """The browser user behind the session cookie (for server-rendered admin pages)."""
    return await get_auth().session_user(request.cookies.get(SESSION_COOKIE, ""))


Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def current_credential(credentials: Bearer) -> tuple[TokenInfo, UserInfo]:
    return await bearer_user(credentials)


def scoped_user(scope: str) -> Any:
    """A dependency: the Bearer token's owner, once the token is found to have `scope`."""

    async def dependency(credential: CurrentCredential) -> UserInfo:
        token, user = credential
        require_scope(token, user, scope)
        return user

    dependency.__name__ = f"user_with_{scope.replace(':', '_')}"
    return dependency


async def direct_start_allowed(request: Request) -> None:
    """Token-free starts count per client address (`SPYGLASS_LIMIT_DIRECT_START`), the address
    the sign-in limits count (the proxy's `X-Forwarded-For` with SPYGLASS_TRUST_PROXY_HEADERS).
    An empty rate is no limit: nothing to count, nothing read."""
    rate = get_settings().limit_direct_start
    if not rate.strip():
        return
    await get_limiter().hit(
        rate,
        "direct-start",
        client_address(request) or "unknown",
        message="Too many token-free starts from this address",
    )


#: The token of a `{client_token}` path parameter (401 if invalid; counted against its rate).
PathToken = Annotated[TokenInfo, Depends(token_from_path)]
#: A path token with `tasks:start` (401 if invalid, 403 INSUFFICIENT_SCOPE without it).
StartToken = Annotated[TokenInfo, Depends(token_to_start)]
#: A token-free start from this client address, counted against its rate (429 when used up).
DirectStart = Annotated[None, Depends(direct_start_allowed)]
#: The Bearer token of the request and its owner (401 without a valid one; counted).
CurrentCredential = Annotated[tuple[TokenInfo, UserInfo], Depends(current_credential)]
#: The owner of the request's Bearer token (401 without a valid one), its token having the
#: scope (403 INSUFFICIENT_SCOPE otherwise): to read tasks, start them, act on them
#: (cancel, retry, delete), and manage client tokens.
Reader = Annotated[UserInfo, Depends(scoped_user(TASKS_READ))]
Starter = Annotated[UserInfo, Depends(scoped_user(TASKS_START))]
Manager = Annotated[UserInfo, Depends(scoped_user(TASKS_MANAGE))]
TokenManager = Annotated[UserInfo, Depends(scoped_user(TOKENS_MANAGE))]
