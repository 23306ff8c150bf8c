"""Helpers for states that stream engine changes into a browser."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


async def client_connected(token: str) -> bool:
    """Whether the browser tab behind `token` still has a Reflex socket open."""
    try:
        from reflex_base.registry import RegistrationContext

        namespace = RegistrationContext.get().app.event_namespace
        if namespace is None:
            return True
        return await namespace._token_manager.is_token_connected(token)
    except Exception:  # an internal API moved: keep the stream rather than cut it
        log.debug("could not ask Reflex whether %s is connected", token, exc_info=True)
        return True
