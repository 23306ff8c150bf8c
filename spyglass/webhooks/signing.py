"""Standard Webhooks signatures (https://www.standardwebhooks.com), with the reference
library: `webhook-id`, `webhook-timestamp` (unix seconds) and `webhook-signature`
(`v1,` + base64 of HMAC-SHA256 over `id.timestamp.body` keyed by the secret's bytes)."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh endpoint secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signed_headers(
    secret: str, msg_id: str, body: str, now: datetime | None = None
) -> dict[str, str]:
    """The three headers of one attempt to send `body` as message `msg_id`."""
    at = (now or datetime.now(UTC)).replace(microsecond=0)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }
