"""Start a stack process early, let it import what it needs, and hold it until the supervisor says go.

Importing is most of what the API, a worker and the migration child spend before they serve
(seconds of CPU each), and none of it needs Postgres or Temporal. So `bss up` starts them at once,
beside initdb and the dev server, through this wrapper:

    python -m stack.gate [--preload MODULE]... -- (-m MODULE | SCRIPT) [ARG]...

It imports each MODULE (one that does not exist is skipped), says so on one pipe (the supervisor starts the workers once the API has
imported: on two cores they would otherwise slow it), then blocks on the other until the
supervisor writes GO (the database migrated, Temporal listening), then runs the module or script
as `python -m MODULE ARG...` / `python SCRIPT ARG...` would, in this process. BSS_START_GATE_FD
names both pipes; without it the gate is open: the target runs at once (a restarted child,
`docker compose`).

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
READY = b"r"


class Gate:
    """The supervisor's end of a child's two pipes: `fds` are passed to the child (pass_fds),
    `wait_ready()` returns once it has imported, `open()` lets it go."""

    def __init__(self) -> None:
        self.fd, self._write = os.pipe()  # go: supervisor → child
        self._ready, self.ready_fd = os.pipe()  # ready: child → supervisor

    @property
    def fds(self) -> tuple[int, int]:
        return (self.fd, self.ready_fd)

    def env(self, base: dict[str, str]) -> dict[str, str]:
        return dict(base, **{ENV: f"{self.fd},{self.ready_fd}"})

    def spawned(self) -> None:
        """The child holds its copies of its ends now: drop ours."""
        for name in ("fd", "ready_fd"):
            if getattr(self, name) >= 0:
                os.close(getattr(self, name))
                setattr(self, name, -1)

    def wait_ready(self) -> bool:
        """Block until the child has imported (True), or exited before that (False)."""
        if self._ready < 0:
            return True
        try:
            return os.read(self._ready, 1) == READY
        finally:
            os.close(self._ready)
            self._ready = -1

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
        for name in ("_write", "_ready"):
            if getattr(self, name) >= 0:
                os.close(getattr(self, name))
                setattr(self, name, -1)


def _fds() -> tuple[int, int] | None:
    raw = os.environ.get(ENV)
    if raw is None:
        return None
    go, ready = raw.split(",")
    return int(go), int(ready)


def ready() -> None:
    """Tell the supervisor this process has imported what it preloads."""
    if (fds := _fds()) is not None:
        try:
            os.write(fds[1], READY)
        except BrokenPipeError:  # the supervisor is gone: wait() finds out
            pass
        os.close(fds[1])


def wait() -> bool:
    """Block until GO (True); False when the pipe closed without it. True at once without a gate."""
    fds = _fds()
    if fds is None:
        return True
    del os.environ[ENV]  # not for the target's own children
    try:
        return os.read(fds[0], 1) == GO
    finally:
        os.close(fds[0])


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
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a module it imports is missing: the target would fail the same way
                raise
            # Gone from the tree or the venv: only a head start is lost, the target imports its own.
    ready()
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
