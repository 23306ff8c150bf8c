"""Browser sign-in, sign-out and registration: the server sets the session cookie.

The cookie is `HttpOnly` (page scripts cannot read it), `SameSite=Lax`, `Path=/`, and
`Secure` when the request came over HTTPS or `SPYGLASS_SECURE_COOKIES=1`. Pages learn who is
signed in from the same cookie, which the browser sends with Reflex's socket connection.

`X-Forwarded-Proto` and `X-Forwarded-For` are believed only with `SPYGLASS_TRUST_PROXY_HEADERS=1`
(the same switch as the origin checks': a proxy in front sets them): anyone can send those
headers, and a forged address would dodge the per-address limits.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Cookie, Depends, Request, Response
from pydantic import BaseModel, Field

from spyglass.api.errors import error_answer
from spyglass.api.security import request_origin
from spyglass.auth.service import SESSION_COOKIE, SESSION_DAYS, UserInfo, get_auth
from spyglass.config import get_settings
from spyglass.errors import DomainError

router = APIRouter(tags=["browser session"])

SESSION_SECONDS = SESSION_DAYS * 86400


class Credentials(BaseModel):
    email: str = Field(max_length=1000)
    password: str = Field(max_length=4096)


class SignedIn(BaseModel):
    email: str
    is_admin: bool
    role: str = Field(description="admin, operator, viewer or user", examples=["user"])


class Message(BaseModel):
    message: str


def client_address(request: Request) -> str:
    """The address the limits count: the peer's, or with `SPYGLASS_TRUST_PROXY_HEADERS=1` the
    one the proxy in front saw (the last `X-Forwarded-For` entry: earlier ones are whatever the
    client sent)."""
    if get_settings().trust_proxy_headers:
        forwarded = [v.strip() for v in request.headers.get("x-forwarded-for", "").split(",")]
        if forwarded[-1]:
            return forwarded[-1]
    return request.client.host if request.client else ""


def is_https(request: Request) -> bool:
    """Whether the browser used HTTPS: the request's own origin, as the origin checks read it
    (from `X-Forwarded-Proto` only with `SPYGLASS_TRUST_PROXY_HEADERS=1`)."""
    origin = request_origin(request.scope)
    return origin is not None and origin[0] == "https"


def _set_cookie(request: Request, response: Response, token: str | None) -> None:
    """Set the session cookie (or clear it, with None) with the same flags either way."""
    secure = get_settings().secure_cookies or is_https(request)
    if token is None:
        response.delete_cookie(
            SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="lax"
        )
    else:
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=SESSION_SECONDS,
            path="/",
            secure=secure,
            httponly=True,
            samesite="lax",
        )


async def json_only(request: Request) -> None:
    """Refuse bodies that are not declared JSON: a page on another site can post a form or a
    typeless body without asking first, but not `application/json` (the browser asks the
    server's CORS policy), so nobody can sign a visitor in or up from elsewhere."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise DomainError("UNSUPPORTED_MEDIA_TYPE", "Send the fields as application/json", 415)


def _signed_in(user: UserInfo) -> SignedIn:
    return SignedIn(email=user.email, is_admin=user.is_admin, role=user.role)


#: Keyed as FastAPI's `responses` are (`int | str`), to be unpacked into them.
POST_ERRORS: dict[int | str, dict[str, Any]] = {
    415: error_answer(415, "The body is not `application/json`"),
    429: error_answer(429, "Too many attempts (`RATE_LIMITED`, `Retry-After`)"),
}


@router.post(
    "/api/session",
    response_model=SignedIn,
    dependencies=[Depends(json_only)],
    summary="Sign in (sets the session cookie)",
    responses={
        401: error_answer(401, "Wrong email or password (`BAD_CREDENTIALS`)"),
        **POST_ERRORS,
    },
)
async def sign_in(
    body: Credentials,
    request: Request,
    response: Response,
    previous: Annotated[str, Cookie(alias=SESSION_COOKIE, include_in_schema=False)] = "",
) -> SignedIn:
    auth = get_auth()
    user = await auth.authenticate(body.email, body.password, client_address(request))
    await auth.end_session(previous)  # the browser forgets it now: so does the server
    token = await auth.start_session(user.id)
    _set_cookie(request, response, token)
    return _signed_in(user)


@router.get(
    "/api/session",
    response_model=SignedIn,
    summary="Who the session cookie signs in",
    responses={401: error_answer(401, "Not signed in (`NOT_SIGNED_IN`)")},
)
async def who_am_i(
    session: Annotated[str, Cookie(alias=SESSION_COOKIE, include_in_schema=False)] = "",
) -> SignedIn:
    user = await get_auth().session_user(session)
    if user is None:
        raise DomainError("NOT_SIGNED_IN", "You are not signed in", 401)
    return _signed_in(user)


@router.delete("/api/session", response_model=Message, summary="Sign out (ends the session)")
async def sign_out(
    request: Request,
    response: Response,
    session: Annotated[str, Cookie(alias=SESSION_COOKIE, include_in_schema=False)] = "",
) -> Message:
    await get_auth().end_session(session)
    _set_cookie(request, response, None)
    return Message(message="You are signed out")


@router.post(
    "/api/register",
    response_model=Message,
    dependencies=[Depends(json_only)],
    summary="Create an account",
    description=(
        "Answers the same whether the email is new (the account is created) or already has "
        "an account, so that nobody learns which addresses are registered. Sign in afterwards."
    ),
    responses={
        400: error_answer(
            400, "Invalid email (`INVALID_EMAIL`) or weak password (`WEAK_PASSWORD`)"
        ),
        **POST_ERRORS,
    },
)
async def register(body: Credentials, request: Request) -> Message:
    message = await get_auth().sign_up(body.email, body.password, client_address(request))
    return Message(message=message)
