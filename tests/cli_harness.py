"""Run `bss` commands in a test against the real API app, in process, on the test's database.

The CLI talks to the API through a *synchronous* httpx client (cli.client.ApiClient), while the app
is async. This harness runs the app (with its lifespan, hence its own Runtime and database pool) on
an event loop in a background thread, and gives the CLI a sync httpx transport that hands each
request to that loop through httpx.ASGITransport. No port, no uvicorn, no private Starlette API;
the app runs exactly as behind uvicorn, including the bearer-token check and TMF error bodies.

Usage (sync tests; the `settings` fixture gives the per-test database):

    from tests.cli_harness import bss_cli

    def test_catalog_list(settings):
        with bss_cli(settings) as bss:
            result = bss("catalog", "list", "--json")
            assert result.exit_code == 0, result.output
            plans = json.loads(result.stdout)

`bss(*args)` returns click's Result: exit_code, stdout, stderr (errors go to stderr with exit 1).
Rich renders 200 columns wide so tables do not wrap. `bss_cli(settings, actor="ops-bob")` runs
the CLI with an admin token named ops-bob, the actor the audit log records. Inside the block, `bss.client` is the ApiClient if a test
wants to call the API directly.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx
from click.testing import Result
from typer.testing import CliRunner

from cli.client import ApiClient, use_client
from core.settings import Settings
from tests.conftest import TEST_TOKEN

T = TypeVar("T")
TIMEOUT = 60


class InProcessApi:
    """The API app served on a private event loop thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bss-test-api", daemon=True)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(TIMEOUT)

    def __enter__(self) -> InProcessApi:
        from api.app import create_app

        self._thread.start()
        self.app = create_app(self.settings)  # the lifespan builds the Runtime on our loop
        self._lifespan = self.app.router.lifespan_context(self.app)
        self.call(self._lifespan.__aenter__())
        self.asgi = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.call(self._lifespan.__aexit__(None, None, None))
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(TIMEOUT)
            self._loop.close()

    @property
    def transport(self) -> httpx.BaseTransport:
        return _SyncBridge(self)


class _SyncBridge(httpx.BaseTransport):
    def __init__(self, server: InProcessApi) -> None:
        self.server = server

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def send() -> tuple[int, httpx.Headers, bytes]:
            forwarded = httpx.Request(request.method, request.url, headers=request.headers, content=body)
            response = await self.server.asgi.handle_async_request(forwarded)
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
            return response.status_code, response.headers, raw

        status, headers, raw = self.server.call(send())
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(raw), request=request)


class Bss:
    """Invokes `bss` (the real top-level Typer app, so error handling and exit codes are the CLI's)."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})

    def __call__(self, *args: str) -> Result:
        from cli.main import app

        return self.runner.invoke(app, list(args))


async def _admin_token(server: InProcessApi, name: str) -> str:
    """The audit log names a token's owner: an operator of their own is an admin token in their name."""
    from core.context import SYSTEM
    from ops.access import create_token

    return (await create_token(server.app.state.runtime, SYSTEM, name, "admin"))[1]


@contextmanager
def bss_cli(settings: Settings, actor: str | None = None) -> Iterator[Bss]:
    with InProcessApi(settings) as server:
        token = TEST_TOKEN if actor is None else server.call(_admin_token(server, actor))
        client = ApiClient(base_url="http://bss.test", token=token, transport=server.transport)
        use_client(client)
        try:
            yield Bss(client)
        finally:
            use_client(None)
            client._http.close()
