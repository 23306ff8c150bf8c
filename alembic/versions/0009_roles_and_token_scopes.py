"""roles (replacing the admin flag), client token scopes and expiry

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

`user.role` is one of admin, operator, viewer, user; the admins of `is_admin` stay admins.
`client_token.scopes` is a space-separated list; tokens issued before scopes existed get
every scope (what they could do before). `client_token.expires_at` is NULL: never expires.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from spyglass.tasks.models import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALL_SCOPES = "tasks:read tasks:start tasks:manage tokens:manage"


def _drop_column(table: str, column: str) -> None:
    # SQLite drops a plain column in place (3.35+): no batch copy of `user`, whose rebuild
    # would cascade-delete sessions and tokens under PRAGMA foreign_keys=ON.
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f'ALTER TABLE "{table}" DROP COLUMN {column}')
    else:
        op.drop_column(table, column)


def upgrade() -> None:
    op.add_column(
        "user", sa.Column("role", sa.String(length=16), nullable=False, server_default="user")
    )
    op.execute("UPDATE \"user\" SET role = 'admin' WHERE is_admin")
    _drop_column("user", "is_admin")
    op.add_column(
        "client_token",
        sa.Column("scopes", sa.String(length=200), nullable=False, server_default=ALL_SCOPES),
    )
    op.add_column("client_token", sa.Column("expires_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    _drop_column("client_token", "expires_at")
    _drop_column("client_token", "scopes")
    op.add_column(
        "user", sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.execute("UPDATE \"user\" SET is_admin = (role = 'admin')")
    _drop_column("user", "role")
