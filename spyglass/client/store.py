"""Where `spyglass login` keeps its token: the user's config folder, readable by them alone.

`$XDG_CONFIG_HOME/spyglass/` (else `~/.config/spyglass/`) holds `token` (the secret, mode
0600, in a folder of mode 0700) and `url` (the server it belongs to). Other commands use the
stored token only against that server, so a token is never sent to another one.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://localhost:3000"


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "spyglass"


@dataclass(frozen=True)
class StoredLogin:
    url: str
    token: str


def normalise_url(url: str) -> str:
    return url.strip().rstrip("/")


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600 from the first byte (never readable by others)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask or an older file said
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def save(url: str, token: str) -> Path:
    """Store the token for `url`; returns the token file's path."""
    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):
        folder.chmod(0o700)
    _write_private(folder / "url", normalise_url(url) + "\n")
    _write_private(folder / "token", token + "\n")
    return folder / "token"


def load() -> StoredLogin | None:
    folder = config_dir()
    try:
        token = (folder / "token").read_text().strip()
        url = (folder / "url").read_text().strip()
    except OSError:
        return None
    if not token or not url:
        return None
    return StoredLogin(url=normalise_url(url), token=token)


def forget() -> bool:
    """Remove the stored token; False if there was none."""
    removed = False
    for name in ("token", "url"):
        with contextlib.suppress(FileNotFoundError):
            (config_dir() / name).unlink()
            removed = True
    return removed
