"""Start a stack process early, let it import what it needs, and hold it until the supervisor says go.

Importing is most of what the API, a worker and the migration child spend before they serve
(seconds of CPU each), and none of it needs Postgres or Temporal. So `bss up` starts them at once,
beside initdb and the dev server, through this wrapper:

    python -m stack.gate [--preload MODULE]... -- (-m MODULE | SCRIPT) [ARG]...

It imports each MODULE, then blocks on the pipe named by BSS_START_GATE_FD until the supervisor
writes GO (the database migrated, Temporal listening), then runs the module or script as
`python -m MODULE ARG...` / `python SCRIPT ARG...` would, in this process. Without that variable
the gate is open: the target runs at once (a restarted child, `docker compose`).

A pipe that closes without GO (the supervisor stopped or died during start-up) ends the process
without running the target, so nothing ever connects to a database that was not prepared.
"""

from __future__ import annotations

import importlib
import os
import runpy
import sys

ENV = "BSS_START_GATE_FD"
GO = b"g"


class Gate:
    """The supervisor's end: a pipe per child; `fd` is passed to the child (pass_fds), `open()` lets it go."""

    def __init__(self) -> None:
        self.fd, self._write = os.pipe()

    def env(self, base: dict[str, str]) -> dict[str, str]:
        return dict(base, **{ENV: str(self.fd)})

    def spawned(self) -> None:
        """The child holds its copy of the read end now: drop ours."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def open(self) -> None:
        if self._write >= 0:
            try:
                os.write(self._write, GO)
            except BrokenPipeError:  # the child died meanwhile: the supervisor sees it exit
                pass
            self.close()

    def close(self) -> None:
        """Without GO: the child exits without running its target."""
        self.spawned()
        if self._write >= 0:
            os.close(self._write)
            self._write = -1


def wait() -> bool:
    """Block until GO (True); False when the pipe closed without it. True at once without a gate."""
    raw = os.environ.pop(ENV, None)
    if raw is None:
        return True
    fd = int(raw)
    try:
        while True:
            try:
                got = os.read(fd, 1)
            except InterruptedError:  # pragma: no cover (PEP 475 retries; kept for clarity)
                continue
            return got == GO
    finally:
        os.close(fd)


def _parse(argv: list[str]) -> tuple[list[str], list[str]]:
    preload: list[str] = []
    args = list(argv)
    while args and args[0] == "--preload":
        preload.append(args[1])
        args = args[2:]
    if not args or args[0] != "--":
        raise SystemExit("usage: python -m stack.gate [--preload MODULE]... -- (-m MODULE | SCRIPT) [ARG]...")
    return preload, args[1:]


def main(argv: list[str]) -> None:
    preload, target = _parse(argv)
    for name in preload:
        importlib.import_module(name)
    if not wait():
        print("the supervisor stopped before this process was let go; not starting it", file=sys.stderr)
        raise SystemExit(1)
    if target[0] == "-m":
        sys.argv = [target[1], *target[2:]]
        runpy.run_module(target[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(target)
        runpy.run_path(target[0], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
