"""What every browser test of the two doors shares: the system's Chromium, headless, with flags that
keep it off the network it cannot reach here; a door's app under uvicorn on a free port; and where
screenshots go (<repo>/test-artifacts/<door>/, BSS_TEST_ARTIFACTS overrides; not committed)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from stack import postgres

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("BSS_TEST_ARTIFACTS", ROOT / "test-artifacts"))
# Flags that keep Chromium off the network it cannot reach here, and runnable as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}

# Put `pytestmark = BROWSER` in a browser test module.
BROWSER = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="no Chromium at /usr/bin/chromium (.ci/run installs it)"
    ),
]


def artifacts(door: str) -> Path:
    folder = ARTIFACTS / door
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class DoorServer:
    """A door's ASGI app under uvicorn on a free port, in a thread with its own event loop."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = postgres.free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the door did not start"
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A headless Chromium; open pages with `await browser.new_page(viewport=PHONE)`."""
    playwright = pytest.importorskip("playwright.async_api")
    async with playwright.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()
