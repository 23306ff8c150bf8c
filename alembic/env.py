"""Alembic environment: runs on the connection SpyGlass hands it, or on SPYGLASS_DB_URL."""

from __future__ import annotations

from sqlalchemy import engine_from_config, pool
from sqlmodel import SQLModel

import spyglass.audit
import spyglass.auth.models
import spyglass.idempotency
import spyglass.tasks.models
import spyglass.webhooks.models  # noqa: F401
from alembic import context
from spyglass.config import get_settings

target_metadata = SQLModel.metadata
config = context.config


def run_migrations(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    section = config.get_section(config.config_ini_section) or {}
    section["sqlalchemy.url"] = get_settings().db_url
    engine = engine_from_config(section, prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as conn:
        run_migrations(conn)
        conn.commit()
