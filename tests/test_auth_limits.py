"""Sign-in limits hold across workers: two servers sharing one Redis count failures together."""

from __future__ import annotations

import httpx

from tests.accounts import PASSWORD
from tests.test_cluster import Cluster, account_on, cluster, infra  # noqa: F401  (fixtures)


def test_failed_sign_ins_count_across_servers_sharing_redis(cluster: Cluster) -> None:  # noqa: F811
    first, second = cluster(2)
    user = account_on(first)

    def sign_in(server: object, password: str) -> httpx.Response:
        return httpx.post(
            f"{server.url}/api/session",  # type: ignore[attr-defined]
            json={"email": user.email, "password": password},
            timeout=30,
        )

    # Five failures (the default SPYGLASS_LIMIT_LOGIN_ACCOUNT, 5/5minutes), spread over both.
    codes = [sign_in((first, second)[i % 2], "wrong password").status_code for i in range(5)]
    assert codes == [401] * 5
    for server in (first, second):  # each server alone saw fewer than five
        locked = sign_in(server, PASSWORD)
        assert locked.status_code == 429, locked.text
        assert locked.json()["error_code"] == "RATE_LIMITED"
        assert int(locked.headers["Retry-After"]) > 0
