"""Serving the doors.

`python -m portals.<door> [--host H] [--port P]`: one door under uvicorn, for compose and by hand.

`python -m portals.web.serve [--host H] NAME=MODULE:PORT ...`: every door in ONE process, as `bss up`
runs them (stack/runner.py): one uvicorn server per door, each with its own app and port, in one
event loop, sharing one Runtime (one database pool, one Temporal client). The two doors import the
same operations layer, models and web stack: two processes held two copies of it at idle (~60 MiB).
A SIGTERM or SIGINT stops every door; a door that cannot start (its port taken) or stops on its own
ends the process with code 1, and the supervisor starts it again with both doors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import signal
import sys
from collections.abc import Iterator


def serve(package: str, port_setting: str) -> None:
    import uvicorn

    from core.settings import get_settings

    settings = get_settings()
    parser = argparse.ArgumentParser(prog=f"python -m {package}")
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=getattr(settings, port_setting))
    args = parser.parse_args()
    uvicorn.run(
        f"{package}.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        access_log=False,
        proxy_headers=True,
    )


def parse_door(spec: str) -> tuple[str, str, int]:
    """`portal=portals.selfserve.app:9001` → ("portal", "portals.selfserve.app", 9001)."""
    name, _, rest = spec.partition("=")
    module, _, port = rest.rpartition(":")
    if not name or not module or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{spec!r} is not NAME=MODULE:PORT")
    return name, module, int(port)


def door_args(doors: list[tuple[str, str, int]]) -> list[str]:
    """The command-line form of `doors` (parse_door's inverse)."""
    return [f"{name}={module}:{port}" for name, module, port in doors]


async def serve_doors(doors: list[tuple[str, str, int]], host: str, log_level: str = "warning") -> int:
    """Serve every door until a signal (0) or until one of them stops on its own (1)."""
    import uvicorn

    from core.settings import get_settings
    from ops.runtime import Runtime

    class DoorServer(uvicorn.Server):
        # Two servers would chain their signal handlers and re-raise the signal after a graceful
        # stop; the signals are handled once for all of them below.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    settings = get_settings()
    runtime = Runtime.create(settings, pool_size=5)
    servers: dict[str, uvicorn.Server] = {}
    for name, module, port in doors:
        app = importlib.import_module(module).create_app(settings, runtime)
        config = uvicorn.Config(
            app, host=host, port=port, access_log=False, log_level=log_level, proxy_headers=True
        )
        servers[name] = DoorServer(config)
    signalled = False

    def stop(sig: int) -> None:
        nonlocal signalled
        for server in servers.values():
            if signalled and sig == signal.SIGINT:
                server.force_exit = True  # a second Ctrl-C: do not wait for open connections
            server.should_exit = True
        signalled = True

    async def run(server: uvicorn.Server) -> int | str | None:
        try:
            await server.serve()
        except SystemExit as exc:  # uvicorn's answer to a port it cannot bind, or a failed lifespan
            return exc.code
        return None

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)
    tasks = {asyncio.create_task(run(server), name=name): name for name, server in servers.items()}
    print(
        "serving "
        + ", ".join(f"{name} on http://{host}:{port}" for name, _, port in doors)
        + " in one process",
        flush=True,
    )
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if not signalled:
            for task in done:
                code = task.exception() or task.result()
                print(f"{tasks[task]} stopped ({code!r}); stopping every door", flush=True)
        for server in servers.values():
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await runtime.close()
    return 0 if signalled else 1


def main(argv: list[str]) -> int:
    from core.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m portals.web.serve")
    parser.add_argument("--host", default=get_settings().host)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("doors", nargs="+", type=parse_door, metavar="NAME=MODULE:PORT")
    args = parser.parse_args(argv)
    return asyncio.run(serve_doors(args.doors, args.host, args.log_level))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
