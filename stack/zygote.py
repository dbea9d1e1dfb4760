"""The supervisor's Python children (API, workers, doors, migrations) are forked from it, not exec'd.

Each of them imports the same libraries and models before it does anything of its own (pydantic,
SQLAlchemy and SQLModel, FastAPI, the domains' tables, the Temporal client and its protobufs,
OpenTelemetry, uvicorn): ~85 MiB of Python objects, held once per process when each starts its own
interpreter. The supervisor imports them once (`preload()`, in a thread while Postgres starts),
freezes them out of the garbage collector's reach (gc.freeze: a collection in a child would
otherwise write to every one of them and copy its page) and forks each child: the pages stay
shared until a child writes to them, so the stack's idle memory (PSS) holds one copy. The import
CPU is spent once too.

`Forked` is a subprocess.Popen whose child is a fork of this process running the same command line
`python -m MODULE ARG...` / `python SCRIPT ARG...` would (runpy), in its own session, its output to
the log, with the environment, working directory and inherited descriptors Popen was given. Only
the process-creation step differs: poll, wait, signals and reaping are Popen's. The child's
command name (`ps -o comm`, psutil's name()) is `bss-<name>` (the command line stays the
supervisor's, as for any fork).

Never fork while another thread runs: `preload()` joins its thread before the first fork.
"""

from __future__ import annotations

import atexit
import ctypes
import gc
import importlib
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
import traceback
import warnings

# What at least two of the children import before they serve; a module missing from the tree or
# the venv is skipped (each child imports its own anyway). Nothing here may start a thread or
# open a connection at import (checked by tests/stack/test_stack_zygote.py).
BASE = (
    "asyncpg",
    "core.settings",
    "core.db",
    "core.telemetry",
    "ops.runtime",
    "domains.registry",
    # The operations the API, the doors and the worker's activities all call.
    "ops.attention",
    "ops.catalog",
    "ops.crm",
    "ops.idempotency",
    "ops.notify",
    "ops.orders",
    "ops.porting",
    "ops.promotions",
    "ops.som",
    "ops.staff",
    "fastapi",
    "starlette.staticfiles",
    "starlette.templating",
    "temporalio.client",
    "temporalio.worker",
    "temporalio.contrib.opentelemetry",
    "opentelemetry.instrumentation.fastapi",
    "uvicorn.main",
    "uvicorn.lifespan.on",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.protocols.websockets.websockets_sansio_impl",
)


class Preload:
    """Import BASE in a thread (the supervisor meanwhile starts Postgres); `join()` before forking."""

    def __init__(self, modules: tuple[str, ...] = BASE) -> None:
        self.modules = modules
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = threading.Thread(
            target=self._run, name="preload", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        # No collection until the fork: the garbage it frees would leave holes in the shared pages,
        # which the children's first allocations would fill (and so copy).
        gc.disable()
        try:
            for name in self.modules:
                try:
                    importlib.import_module(name)
                except ModuleNotFoundError as exc:
                    if exc.name != name:
                        raise
        except BaseException as exc:  # noqa: BLE001 - the children import it again and report it
            self.error = exc

    def join(self) -> None:
        if self._thread is None:
            return
        self._thread.join()
        self._thread = None
        # join() returns once the thread's Python side is done; let the kernel thread finish too.
        deadline = time.monotonic() + 1
        while _threads() > 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        # Everything alive now stays as it is: out of the collector's sight, its pages shared.
        gc.freeze()
        gc.enable()


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _set_comm(name: str) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def _close_fds(keep: set[int]) -> None:
    try:
        fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _run_command(args: list[str]) -> int:
    """What `python ARGS...` would do with these arguments, in this process; its exit code."""
    try:
        if args[0] == "-m":
            sys.argv = [args[1], *args[2:]]
            sys.path[0] = os.getcwd()  # as `python -m` has it (the supervisor may be `bss`'s script)
            runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(args)
            sys.path[0] = os.path.dirname(os.path.abspath(args[0]))
            runpy.run_path(args[0], run_name="__main__")
        return 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BaseException:  # noqa: BLE001 - what an interpreter prints before it exits 1
        traceback.print_exc()
        return 1


def _child(
    name: str, args: list[str], pass_fds: tuple[int, ...], cwd: str | None, env, out: int, err: int
) -> int:
    os.setsid()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(err, 2)
    _close_fds(set(pass_fds))
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's own streams
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    if cwd is not None:
        os.chdir(cwd)
    if env is not None:
        os.environ.clear()
        os.environ.update({os.fsdecode(k): os.fsdecode(v) for k, v in dict(env).items()})
    atexit._clear()  # the supervisor's exit handlers are not this process's
    # runpy warns when the module it runs as __main__ is already imported (here, by the supervisor).
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="runpy")
    _set_comm(f"bss-{name}")
    code = _run_command(args[1:])
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    return code


class Forked(subprocess.Popen):  # type: ignore[type-arg]
    """Popen, with the child forked from this process instead of exec'd (see the module's doc).
    Takes what the supervisor passes: a command line `[python, ...]`, cwd, env, stdout to a file,
    stderr=STDOUT, start_new_session=True, pass_fds."""

    def __init__(self, name: str, args: list[str], **kwargs) -> None:
        self.name = name
        super().__init__(args, **kwargs)

    def _execute_child(  # noqa: PLR0913 - Popen's signature
        self, args, executable, preexec_fn, close_fds, pass_fds, cwd, env, startupinfo, creationflags,
        shell, p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite, *rest,
    ) -> None:  # fmt: skip
        for stream in (sys.stdout, sys.stderr):  # nothing buffered here may be written twice
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _child(self.name, list(args), tuple(pass_fds), cwd, env, c2pwrite, errwrite)
            except BaseException:  # noqa: BLE001
                try:
                    traceback.print_exc()
                except BaseException:  # noqa: BLE001
                    pass
            finally:
                os._exit(code)
        self.pid = pid
        self._child_created = True
