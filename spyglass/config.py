"""Settings read once from the environment, with embedded defaults that need no services."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    db_url: str
    port: int
    secret_key: str
    #: Seconds between coalesced progress writes of one task (≤ 1/interval writes/s per task).
    progress_flush_interval: float
    #: Extra modules to import at start-up, each declaring jobs on MonitorState subclasses.
    job_modules: tuple[str, ...] = ()
    #: Seconds an upload URL lives; UPLOADING tasks older than this end EXPIRED.
    upload_expiry: int = 900
    #: The admin created (or promoted) at start-up, if both are set.
    admin_email: str | None = None
    admin_password: str | None = None
    #: Redis for the bus between workers (and Reflex's shared state); None: one process.
    redis_url: str | None = None
    #: Names this deployment's channels in Redis (deployments may share a Redis).
    redis_prefix: str = "spyglass"
    #: Seconds a worker's lease on a running task holds without renewal; a task whose
    #: lease lapsed lost its worker and is ended (or re-run) by another worker.
    lease_ttl: float = 15.0
    #: Seconds between lease renewals (and searches for lapsed leases).
    lease_renew: float = 3.0
    #: Seconds a stopping worker lets its running jobs finish before it interrupts them.
    shutdown_grace: float = 30.0

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(os.environ.get("SPYGLASS_DATA_DIR") or PROJECT_ROOT / "data").resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        db_url = os.environ.get("SPYGLASS_DB_URL") or f"sqlite:///{data_dir / 'spyglass.db'}"
        lease_ttl = float(os.environ.get("SPYGLASS_LEASE_TTL", "15"))
        return cls(
            data_dir=data_dir,
            db_url=db_url,
            port=int(os.environ.get("SPYGLASS_PORT", "3000")),
            secret_key=os.environ.get("SPYGLASS_SECRET_KEY") or _stable_secret(data_dir),
            progress_flush_interval=float(os.environ.get("SPYGLASS_PROGRESS_FLUSH", "0.25")),
            upload_expiry=int(os.environ.get("SPYGLASS_UPLOAD_EXPIRY", "900")),
            admin_email=os.environ.get("SPYGLASS_ADMIN_EMAIL") or None,
            admin_password=os.environ.get("SPYGLASS_ADMIN_PASSWORD") or None,
            redis_url=os.environ.get("REDIS_URL") or None,
            redis_prefix=os.environ.get("SPYGLASS_REDIS_PREFIX") or "spyglass",
            lease_ttl=lease_ttl,
            lease_renew=float(os.environ.get("SPYGLASS_LEASE_RENEW") or max(0.2, lease_ttl / 5)),
            shutdown_grace=float(os.environ.get("SPYGLASS_SHUTDOWN_GRACE", "30")),
            job_modules=tuple(
                m.strip()
                for m in os.environ.get("SPYGLASS_JOB_MODULES", "").split(",")
                if m.strip()
            ),
        )


def _stable_secret(data_dir: Path) -> str:
    """A random key kept in the data folder, so signatures survive a restart."""
    path = data_dir / "secret.key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
