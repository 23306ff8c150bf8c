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

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(os.environ.get("SPYGLASS_DATA_DIR") or PROJECT_ROOT / "data").resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        db_url = os.environ.get("SPYGLASS_DB_URL") or f"sqlite:///{data_dir / 'spyglass.db'}"
        return cls(
            data_dir=data_dir,
            db_url=db_url,
            port=int(os.environ.get("SPYGLASS_PORT", "3000")),
            secret_key=os.environ.get("SPYGLASS_SECRET_KEY") or _stable_secret(data_dir),
            progress_flush_interval=float(os.environ.get("SPYGLASS_PROGRESS_FLUSH", "0.25")),
            upload_expiry=int(os.environ.get("SPYGLASS_UPLOAD_EXPIRY", "900")),
            admin_email=os.environ.get("SPYGLASS_ADMIN_EMAIL") or None,
            admin_password=os.environ.get("SPYGLASS_ADMIN_PASSWORD") or None,
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
