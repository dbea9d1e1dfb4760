"""Schemathesis over our own OpenAPI: generated requests, valid and not, against the real app on a
real database and Temporal dev server, with a token of every role. Whatever comes in, no answer may
be a 5xx; a role outside the permission table is refused, one inside it never is.

`make test` sends a few examples per operation and role (about 1,100 requests); BSS_FUZZ_EXAMPLES=N
sends up to N (N=32 makes over 10,000 requests: `make chaos` uses that size)."""

from __future__ import annotations

import os
import threading
import time

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from api.app import PUBLIC
from api.permissions import permits
from core.settings import Settings
from domains.access.rules import Role
from stack.postgres import free_port
from tests.conftest import TEST_TOKEN

EXAMPLES = int(os.environ.get("BSS_FUZZ_EXAMPLES", "3"))
# A large run (BSS_FUZZ_EXAMPLES) takes as long as it takes; the suite's default timeout is for the small one.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(0 if EXAMPLES > 3 else 300)]


@pytest.fixture(scope="module")
def live_api(pg, temporal_dev, tmp_path_factory):
    import uvicorn

    from api.app import create_app

    pg.sql('CREATE DATABASE "fuzz" TEMPLATE bss_template')
    settings = Settings(
        db_url=pg.url("fuzz"),
        data_dir=tmp_path_factory.mktemp("fuzz"),
        api_token=TEST_TOKEN,
        temporal_address=temporal_dev.client.service_client.config.target_host,
        task_queue="fuzz-no-worker",
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code in (200, 503):
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    admin = {"Authorization": f"Bearer {TEST_TOKEN}"}
    tokens = {Role.ADMIN: TEST_TOKEN}
    for role in Role:
        if role is not Role.ADMIN:
            r = httpx.post(
                f"{url}/bss-api/v1/admin/token", json={"name": f"fuzz-{role}", "role": role}, headers=admin
            )
            tokens[role] = r.raise_for_status().json()["token"]
    yield url, tokens
    server.should_exit = True
    thread.join(10)
    pg.sql('DROP DATABASE IF EXISTS "fuzz" WITH (FORCE)')


def fuzz(operation, role: Role, headers: dict, allowed: bool, statuses: dict, failures: list):
    """One operation with one role's token: a hypothesis test that records statuses and failures."""
    from hypothesis import given

    @given(case=operation.as_strategy())
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case) -> None:
        response = case.call(headers=headers, timeout=30)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        where = f"{role.value} {case.method} {case.formatted_path}"
        if response.status_code >= 500:
            failures.append(f"{where} -> {response.status_code}: {response.text[:300]}")
            return
        body = response.json() if response.status_code >= 400 else {}
        if response.status_code >= 400 and (body.get("@type") != "Error" or not body.get("reason")):
            failures.append(f"{where}: not a TMF error body: {body}")
        if response.status_code == 401:
            failures.append(f"{where}: a valid token got 401")
        elif allowed and body.get("reason") == "auth.role.forbidden":
            failures.append(f"{where}: the table allows it, the API refused it")
        elif not allowed and response.status_code < 400:
            failures.append(f"{where} -> {response.status_code}: the table forbids it, the API did it")

    return check


def test_no_request_produces_a_5xx_whatever_the_role(live_api):
    """Every operation of the OpenAPI, with generated (valid and invalid) inputs, with every role."""
    url, tokens = live_api
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures: list[str] = []
    statuses: dict[int, int] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        tags = tuple(operation.definition.raw.get("tags", ()))
        for role, token in tokens.items():
            headers = {"Authorization": f"Bearer {token}"}
            if role is Role.CHANNEL:
                headers["X-BSS-Actor"] = "fuzz-customer"
            allowed = operation.path in PUBLIC or permits(role, tags, operation.method.upper())

            fuzz(operation, role, headers, allowed, statuses, failures)()
    total = sum(statuses.values())
    print(f"fuzz: {total} requests over {operations} operations x {len(tokens)} roles; statuses {statuses}")
    assert operations > 40, f"only {operations} operations in the OpenAPI"
    # The run really exercised the API, refusals and successes alike.
    assert total >= operations * len(tokens) * min(EXAMPLES, 2), statuses
    assert any(400 <= code < 500 for code in statuses) and any(code < 300 for code in statuses), statuses
    assert not failures, "\n".join(sorted(set(failures))[:30])
