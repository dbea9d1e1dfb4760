"""Shared fixtures: a real embedded Postgres (one per session, one database per test, cloned
from a migrated and seeded template) and real Temporal servers from the pip-installed binaries."""

from __future__ import annotations

import asyncio
import itertools
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from core.clock import clock
from core.ids import SEQUENCED
from core.settings import Settings
from ops.runtime import Runtime
from stack import postgres

TEST_TOKEN = "test-token-" + "x" * 32
_db_counter = itertools.count()


class PgServer:
    def __init__(self, port: int, data: Path) -> None:
        self.port = port
        self.data = data

    @property
    def cluster(self) -> Path:
        return self.data / "pg"

    def url(self, db: str) -> str:
        return postgres.url(self.cluster, self.port, db)

    def sql(self, statement: str, db: str = "postgres") -> str:
        return postgres.psql(self.cluster, self.port, statement, db=db)


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    from core.migrate import upgrade
    from ops.seed import seed_reference_data

    tmp = Path(tempfile.mkdtemp(prefix="bss-test-pg-"))
    port = postgres.free_port()
    # durable=False: a throwaway cluster, so commits need not wait for the disk (the tests' many short
    # transactions run faster). Nothing here survives the session; the product's start is durable.
    server = postgres.start(tmp / "pg", port, tmp / "pg.log", durable=False)
    pgs = PgServer(port, tmp)
    try:
        postgres.ensure_database(pgs.cluster, port, "bss_template")
        upgrade(pgs.url("bss_template"))
        asyncio.run(seed_reference_data(Settings(db_url=pgs.url("bss_template"), data_dir=tmp)))
        yield pgs
    finally:
        server.terminate()
        server.wait()
        postgres.remove(tmp)


@pytest.fixture
def db_url(pg: PgServer) -> Iterator[str]:
    """A fresh database per test, cloned from the migrated and seeded template (tens of ms)."""
    n = next(_db_counter) + 1
    name = f"t_{os.getpid()}_{n}"
    pg.sql(f'CREATE DATABASE "{name}" TEMPLATE bss_template')
    # Business ids (ORD-…, SUB-…) name workflows on a Temporal server shared by the session's tests:
    # each database starts its sequences in its own range so two tests never share a workflow id.
    start = n * 1000
    pg.sql(
        "; ".join(f"SELECT setval('{schema}.{seq}', {start})" for schema, seq in SEQUENCED.values()), db=name
    )
    yield pg.url(name)
    pg.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        db_url=db_url,
        data_dir=tmp_path,
        api_token=TEST_TOKEN,
        temporal_address="127.0.0.1:1",
        sim_latency_factor=0.0,
    )


@pytest_asyncio.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    rt = Runtime.create(settings, pool_size=5)
    yield rt
    await rt.close()


@pytest.fixture(autouse=True)
def _reset_clock() -> Iterator[None]:
    clock.reset()
    yield
    clock.reset()


async def token_headers(
    runtime: Runtime, name: str, role: str = "admin", actor: str | None = None
) -> dict[str, str]:
    """Authorization for a new API token with this role; its name is the actor of the audit log,
    unless it is a channel token naming the actor it acts for."""
    from core.context import SYSTEM
    from ops.access import create_token

    _, token = await create_token(runtime, SYSTEM, name, role)
    headers = {"Authorization": f"Bearer {token}"}
    if actor is not None:
        headers["X-BSS-Actor"] = actor
    return headers


@pytest_asyncio.fixture
async def api(settings: Settings, runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client against the app in-process, authenticated with the test token."""
    from api.app import create_app

    app = create_app(settings, runtime)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bss.test", headers={"Authorization": f"Bearer {TEST_TOKEN}"}
        ) as client:
            yield client


@pytest_asyncio.fixture(scope="session")
async def temporal_time_skipping():
    from temporalio.testing import WorkflowEnvironment

    from stack.temporal import test_server_binary

    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=test_server_binary())
    await _register_search_attributes(env.client)
    yield env
    await env.shutdown()


async def _register_search_attributes(client) -> None:
    """The test server starts with no custom search attribute. Each is added on its own: a request
    naming one that exists is refused whole, so a batch would drop the new ones with it."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
    from temporalio.service import RPCError

    from stack.temporal import SEARCH_ATTRIBUTES

    kinds = {
        "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    }
    for name, kind in SEARCH_ATTRIBUTES.items():
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=client.namespace, search_attributes={name: kinds[kind]})
            )
        except RPCError:  # already registered
            pass


@pytest_asyncio.fixture(scope="session")
async def temporal_dev():
    from temporalio.testing import WorkflowEnvironment

    from stack.temporal import DISPATCH_TUNING, SEARCH_ATTRIBUTES, temporal_binary

    extra = list(DISPATCH_TUNING)
    for name, kind in SEARCH_ATTRIBUTES.items():
        extra += ["--search-attribute", f"{name}={kind}"]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(), dev_server_extra_args=extra, ui=False
    )
    yield env
    await env.shutdown()


@pytest_asyncio.fixture
async def saga(temporal_dev, runtime, settings):
    """The real order saga on the dev server, bound to this test's database (tests/saga_harness.py)."""
    from tests.saga_harness import running_saga

    async for s in running_saga(temporal_dev, runtime, settings):
        yield s
