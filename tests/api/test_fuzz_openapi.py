"""Schemathesis over our own OpenAPI: generated requests, valid and not, against the real app on a
real database and Temporal dev server. Whatever comes in, no answer may be a 5xx."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from core.settings import Settings
from stack.postgres import free_port
from tests.conftest import TEST_TOKEN

pytestmark = pytest.mark.slow


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
    yield url
    server.should_exit = True
    thread.join(10)
    pg.sql('DROP DATABASE IF EXISTS "fuzz" WITH (FORCE)')


def test_no_request_produces_a_5xx(live_api):
    """Every operation of the OpenAPI, with generated (valid and invalid) inputs."""
    from hypothesis import given

    schema = schemathesis.openapi.from_url(f"{live_api}/openapi.json")
    failures: list[str] = []
    statuses: dict[int, int] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case) -> None:
            response = case.call(headers={"Authorization": f"Bearer {TEST_TOKEN}"}, timeout=30)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
                )
            elif response.status_code >= 400:
                body = response.json()
                if body.get("@type") != "Error" or not body.get("reason"):
                    failures.append(f"{case.method} {case.formatted_path}: not a TMF error body: {body}")

        check()
    assert operations > 40, f"only {operations} operations in the OpenAPI"
    # The run really exercised the API, refusals and successes alike.
    assert sum(statuses.values()) >= 5 * operations, statuses
    assert any(400 <= code < 500 for code in statuses) and any(code < 300 for code in statuses), statuses
    assert not failures, "\n".join(sorted(set(failures))[:30])
