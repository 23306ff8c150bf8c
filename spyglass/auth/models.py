"""SQLModel tables of identity: users, browser sessions, client tokens (secrets hashed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, overload

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

from spyglass.tasks.access import SCOPES
from spyglass.tasks.models import UTCDateTime

ALL_SCOPES = " ".join(SCOPES)


@overload
def _ts(nullable: Literal[False]) -> datetime: ...
@overload
def _ts(nullable: Literal[True] = ...) -> datetime | None: ...
def _ts(nullable: bool = True) -> Any:
    """A UTC timestamp column, typed as the field's value (NOT NULL: always a datetime)."""
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))


class User(SQLModel, table=True):
    __tablename__ = "user"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_column=Column(sa.String(320), unique=True, nullable=False))
    password_hash: str = Field(max_length=255)
    #: admin, operator, viewer or user (`spyglass.tasks.access.Role`).
    role: str = Field(
        default="user",
        sa_column=Column(sa.String(16), nullable=False, server_default="user"),
    )
    credits: int = 0
    created_at: datetime = _ts(nullable=False)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class UserSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds the token, the table only its SHA-256."""

    __tablename__ = "user_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(sa_column=Column(sa.String(64), unique=True, nullable=False))
    user_id: int = Field(
        sa_column=Column(sa.Integer, sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False)
    )
    created_at: datetime = _ts(nullable=False)
    expires_at: datetime = _ts(nullable=False)
    revoked_at: datetime | None = _ts()


class ClientToken(SQLModel, table=True):
    """A server-issued credential for scripts; revocable, owned by a user."""

    __tablename__ = "client_token"
    __table_args__ = (sa.Index("ix_client_token_owner", "owner_id"),)

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(sa_column=Column(sa.String(64), unique=True, nullable=False))
    prefix: str = Field(max_length=16)
    name: str = Field(max_length=100)
    owner_id: int = Field(
        sa_column=Column(sa.Integer, sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False)
    )
    created_by: int | None = None
    #: Space-separated (`tasks:read tasks:start …`); every scope unless chosen at issue.
    scopes: str = Field(
        default=ALL_SCOPES,
        sa_column=Column(sa.String(200), nullable=False, server_default=ALL_SCOPES),
    )
    created_at: datetime = _ts(nullable=False)
    #: None: never expires; past it the token answers like a revoked one (401).
    expires_at: datetime | None = _ts()
    last_used_at: datetime | None = _ts()
    revoked_at: datetime | None = _ts()
