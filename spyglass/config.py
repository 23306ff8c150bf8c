"""The one settings object: read once from the environment (pydantic-settings), with embedded
defaults that need no services. Every module reads its configuration here, nowhere else."""

from __future__ import annotations

import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class Settings(BaseSettings):
    """`SPYGLASS_<FIELD>` in the environment overrides each field (`REDIS_URL` for redis_url)."""

    model_config = SettingsConfigDict(
        env_prefix="SPYGLASS_", frozen=True, extra="ignore", validate_by_name=True
    )

    # -- where things live -------------------------------------------------------------
    data_dir: Path = PROJECT_ROOT / "data"
    #: Any SQLAlchemy URL; default the SQLite file in the data folder.
    db_url: str = ""
    host: str = "0.0.0.0"
    port: int = Field(default=3000, ge=0, le=65535)
    #: Signs upload/download URLs; default a random key kept in the data folder.
    secret_key: str = ""
    #: Extra modules to import at start-up, each declaring jobs on MonitorState subclasses.
    job_modules: Annotated[tuple[str, ...], NoDecode] = ()

    # -- engine -----------------------------------------------------------------------
    #: Where jobs run: `inline` in this server process (the embedded default), or
    #: `procrastinate`: the server records and queues them in PostgreSQL and
    #: `spyglass worker` processes, on any number of machines, run them.
    executor: Literal["inline", "procrastinate"] = "inline"
    #: Worker mode: seconds between a worker's heartbeats, and how long without one
    #: before its running jobs count as stalled (re-run if they have retries left, else
    #: ended FAILED/INTERRUPTED).
    worker_heartbeat: float = Field(default=5.0, gt=0)
    worker_stalled_after: float = Field(default=30.0, gt=0)
    #: Seconds between coalesced progress writes of one task (≤ 1/interval writes/s per task).
    progress_flush_interval: float = Field(
        default=0.25,
        gt=0,
        validation_alias=AliasChoices("SPYGLASS_PROGRESS_FLUSH", "progress_flush_interval"),
    )
    #: Redis for the bus between workers (and Reflex's shared state); None: one process.
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "SPYGLASS_REDIS_URL", "redis_url"),
    )
    #: Names this deployment's channels in Redis (deployments may share a Redis).
    redis_prefix: str = "spyglass"
    #: Seconds a worker's lease on a running task holds without renewal.
    lease_ttl: float = Field(default=15.0, gt=0)
    #: Seconds between lease renewals (and searches for lapsed leases); default ttl/5.
    lease_renew: float = 0.0
    #: Seconds a stopping worker lets its running jobs finish before it interrupts them.
    shutdown_grace: float = Field(default=30.0, ge=0)
    #: Address space (MB) a job's child process may use (`task.run_sync`, data-tool agents);
    #: beyond it the task ends FAILED with `error_code=RESOURCE_LIMIT`.
    job_memory_mb: int = Field(default=2048, ge=64)

    # -- accounts ---------------------------------------------------------------------
    #: The admin created (or promoted) at start-up, if both are set.
    admin_email: str | None = None
    admin_password: str | None = None
    #: Credits of a new account.
    starting_credits: int = Field(default=1000, ge=0, le=2**53)

    # -- files ------------------------------------------------------------------------
    #: Seconds an upload URL lives; UPLOADING tasks older than this end EXPIRED.
    upload_expiry: int = Field(default=900, ge=1)
    max_upload_mb: float = Field(default=100, gt=0)
    storage: Literal["local", "s3"] = "local"
    s3_bucket: str = "spyglass"
    s3_endpoint: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_create_bucket: bool = False

    # -- security ---------------------------------------------------------------------
    #: Other origins (scheme://host[:port]) a browser may call this app from, with credentials.
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = ()
    #: Take the request's own origin from X-Forwarded-Proto/-Host, and the client's address
    #: (sign-in limits) from X-Forwarded-For (only behind a proxy that sets them); else from the
    #: scheme it arrived on, its Host header and the peer's address.
    trust_proxy_headers: bool = False
    #: Mark the session cookie Secure even on plain-HTTP requests (behind a TLS proxy).
    secure_cookies: bool = False
    #: When set, /metrics answers only `Authorization: Bearer <this>`.
    metrics_token: str | None = None
    #: Rate limits, in the `limits` notation ("5/5minutes"); several joined with ";".
    limit_login_account: str = "5/5minutes"
    limit_login_address: str = "20/5minutes"
    limit_register_address: str = "10/hour"
    limit_direct_start: str = "120/minute"
    limit_api_token: str = "600/minute"

    # -- webhooks, idempotency, retention -----------------------------------------------
    #: Let webhook endpoints aim at loopback, link-local, private (RFC 1918), unique-local
    #: and unspecified addresses (off: a user cannot aim deliveries at internal services).
    webhook_allow_private: bool = False
    #: Send stored deliveries (off: they are recorded and wait, e.g. on a staging copy).
    webhook_send: bool = True
    #: Seconds a delivery attempt may take before it counts as failed.
    webhook_timeout: float = Field(default=10.0, gt=0, le=120)
    #: The retry rule: attempt n+1 comes `webhook_retry_base · 2^(n-1)` seconds after
    #: attempt n failed (capped at `webhook_retry_max`), for `webhook_retry_window`
    #: seconds from the delivery's creation (a day); then the delivery is given up.
    webhook_retry_base: float = Field(default=5.0, gt=0)
    webhook_retry_max: float = Field(default=3600.0, gt=0)
    webhook_retry_window: float = Field(default=86400.0, gt=0)
    #: An endpoint whose last this-many attempts all failed is disabled (with a notice).
    webhook_disable_after: int = Field(default=30, ge=1)
    #: At most one `task.progress` delivery per task per this many seconds.
    webhook_progress_interval: float = Field(default=10.0, ge=0)
    #: Seconds between looks at the outbox when nothing woke the sender.
    webhook_poll: float = Field(default=2.0, gt=0)
    #: Hours an `Idempotency-Key` is remembered.
    idempotency_hours: float = Field(default=24.0, gt=0)
    #: Seconds between retention sweeps, and tasks deleted per transaction.
    retention_interval: float = Field(default=3600.0, gt=0)
    retention_batch: int = Field(default=500, ge=1, le=10000)

    @field_validator("job_modules", "allowed_origins", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return _comma_list(value)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        origins = tuple(origin.rstrip("/").lower() for origin in value)
        for origin in origins:
            if not re.fullmatch(r"https?://[^/?#*\s]+", origin):
                raise ValueError(f"not an origin (scheme://host[:port], no wildcard): {origin}")
        return origins

    @model_validator(mode="after")
    def _derived(self) -> Settings:
        data_dir = self.data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        object.__setattr__(self, "data_dir", data_dir)
        if not self.db_url:
            object.__setattr__(self, "db_url", f"sqlite:///{data_dir / 'spyglass.db'}")
        if not self.secret_key:
            object.__setattr__(self, "secret_key", _stable_secret(data_dir))
        if not self.lease_renew:
            object.__setattr__(self, "lease_renew", max(0.2, self.lease_ttl / 5))
        if self.executor == "procrastinate" and not self.db_url.startswith("postgresql"):
            raise ValueError(
                "SPYGLASS_EXECUTOR=procrastinate keeps its queue in PostgreSQL: set "
                "SPYGLASS_DB_URL=postgresql+psycopg://… (and REDIS_URL for live progress)"
            )
        if self.worker_stalled_after <= 2 * self.worker_heartbeat:
            raise ValueError("SPYGLASS_WORKER_STALLED_AFTER must exceed twice the heartbeat")
        return self

    @property
    def queued(self) -> bool:
        """Jobs go to worker processes through Procrastinate's queue."""
        return self.executor == "procrastinate"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @classmethod
    def from_env(cls) -> Settings:
        return cls()


def _stable_secret(data_dir: Path) -> str:
    """A random key kept in the data folder, so signatures survive a restart."""
    path = data_dir / "secret.key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
