"""`bss` against the in-process API *and* a running saga: real workflows on the dev server.

The harness's app builds its own Runtime from settings, on its own event loop; pointing
settings at the saga's dev server (the saga fixture already set the task queue) makes the
app start orders that the saga's worker runs. CLI calls block until the API answers, and the
worker lives on the test's loop, so a test runs each command in a thread: `await run(bss, …)`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from click.testing import Result

from tests.cli_harness import Bss, bss_cli


def bss_on_saga(settings, temporal_dev) -> Iterator[Bss]:
    """For a test module's fixture, after `saga` (which set the task queue on these settings):

    @pytest.fixture
    def saga_bss(saga, settings, temporal_dev):
        yield from bss_on_saga(settings, temporal_dev)
    """
    settings.temporal_address = temporal_dev.client.service_client.config.target_host
    with bss_cli(settings, actor="ops-alice") as bss:
        yield bss


async def run(bss: Bss, *args: str) -> Result:
    return await asyncio.to_thread(bss, *args)
