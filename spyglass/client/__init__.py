"""A Python client of SpyGlass's HTTP and WebSocket API, and the `spyglass` command."""

from spyglass.client.client import TERMINAL, SpyGlassClient, SpyGlassError

__all__ = ["TERMINAL", "SpyGlassClient", "SpyGlassError"]
