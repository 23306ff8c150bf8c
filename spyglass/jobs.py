"""Every module that declares jobs, imported in one place: by the web app and by
`spyglass worker` (a worker must know every job it may be handed)."""

from __future__ import annotations

import importlib

from spyglass.config import get_settings

#: The app's own jobs: the examples and the data tools.
BUILT_IN = ("spyglass.states.examples", "spyglass.tools.flow")


def load_jobs() -> None:
    """Import the built-in job modules and those named in `SPYGLASS_JOB_MODULES`."""
    for module in (*BUILT_IN, *get_settings().job_modules):
        importlib.import_module(module)
