"""/openapi.json tells the truth: schemathesis, with every check, against a live server.

Bounded for CI: a fixed seed and example count (about two minutes here). Every operation runs
with a user's client token; two kinds are run apart from the rest:

* the two start routes that serve any job by name take the body of the job their path names,
  which OpenAPI cannot tie to a path parameter, so the checks that compare bodies with the
  schema (positive_data_acceptance, negative_data_rejection) cannot apply there; every direct
  job also has its own route with its exact body, which the main run checks in full;
* revoking a token, with a second user's token, so that the main run's token stays valid.

tests/schemathesis.toml holds the contract-driven settings: 400 is a valid answer to a
well-formed request where the contract says so (state conflicts, the password policy).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.accounts import Account, make_account
from tests.harness import SpyGlassServer

SEED = 20251125
MAX_EXAMPLES = 80
CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("st")
GENERIC_STARTS = [
    "POST /api/{state_name}/task/start/{task_name}",
    "POST /api/{state_name}/tasks/{client_token}/start/{task_name}",
]
REVOKE = "DELETE /api/tokens/{token_id}"
#: Fuzzing is not to be throttled, nor the server's stop held up by the jobs it started.
ENV = {
    "SPYGLASS_LIMIT_API_TOKEN": "",
    "SPYGLASS_LIMIT_DIRECT_START": "",
    "SPYGLASS_SHUTDOWN_GRACE": "0",
    # Webhook URLs the fuzzer makes up are neither resolved (no DNS look-up) nor sent to.
    "SPYGLASS_WEBHOOK_ALLOW_PRIVATE": "1",
    "SPYGLASS_WEBHOOK_SEND": "0",
}


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpyGlassServer]:
    """The product's own jobs (the seed's examples) on a backend-only server."""
    srv = SpyGlassServer(tmp_path_factory.mktemp("fuzz"), job_modules="", env=ENV).start()
    yield srv
    srv.stop()


def schemathesis(
    server: SpyGlassServer, account: Account, workdir: Path, *selection: str
) -> tuple[int, str]:
    command = [
        str(SCHEMATHESIS),
        "--no-color",
        "--config-file",
        str(CONFIG),
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "all",
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--request-timeout",
        "30",
        "--header",
        f"Authorization: Bearer {account.token}",
        *selection,
    ]
    workdir.mkdir(parents=True, exist_ok=True)  # its cache and reports go here
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=900)
    return done.returncode, done.stdout + done.stderr


def assert_clean(code: int, output: str) -> None:
    summary = output[output.rfind("=== SUMMARY") :] if "=== SUMMARY" in output else output
    assert code == 0 and " failures" not in summary, output[-12000:]
    assert "passed" in summary, summary


def test_every_operation_answers_as_documented(target: SpyGlassServer, tmp_path: Path) -> None:
    excluded = [arg for name in [*GENERIC_STARTS, REVOKE] for arg in ("--exclude-name", name)]
    assert_clean(*schemathesis(target, make_account(target), tmp_path, *excluded))


def test_the_start_routes_for_any_job_answer_as_documented(
    target: SpyGlassServer, tmp_path: Path
) -> None:
    included = [arg for name in GENERIC_STARTS for arg in ("--include-name", name)]
    skipped = "positive_data_acceptance,negative_data_rejection"
    account = make_account(target)
    assert_clean(*schemathesis(target, account, tmp_path, *included, "--exclude-checks", skipped))


def test_revoking_tokens_answers_as_documented(target: SpyGlassServer, tmp_path: Path) -> None:
    account = make_account(target, prefix="revoker")
    # One operation alone has no links to follow: no stateful phase.
    only = ("--include-name", REVOKE, "--phases", "examples,coverage,fuzzing")
    assert_clean(*schemathesis(target, account, tmp_path, *only))
