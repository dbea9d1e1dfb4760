"""Bytecode for the stack's processes although the environment says PYTHONDONTWRITEBYTECODE=1.

With that variable set no `.pyc` is ever written at import, so every start of every process
(migrations, the API, each worker, each portal) compiled every module it imports again: seconds of
CPU each, on every start. compileall writes bytecode when asked explicitly, whatever the variable
says, and imports then read it. So:

- `make venv` compiles the venv's packages once, in place (`.venv/.compiled`);
- `bss up` compiles the project's own packages in place before it starts anything (about 0.7 s of
  CPU on a fresh clone, 0.1 s when nothing changed: only changed files are compiled again), and,
  when the venv was made without `make venv`, compiles the venv in the background once the stack
  is up, so the next start is fast.

The `__pycache__` folders are ignored by git. `BSS_COMPILE_BYTECODE=false` turns both off.
"""

from __future__ import annotations

import compileall
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What the stack's processes import from the tree (tests and docs are not started by `bss up`).
SKIP = {"tests", "docs", "scripts", "test-artifacts", "__pycache__"}
VENV_STAMP = ".bss-bytecode"


def enabled() -> bool:
    return os.environ.get("BSS_COMPILE_BYTECODE", "true").lower() not in ("0", "false", "no")


def project_sources(root: Path = ROOT) -> list[Path]:
    """The project's packages (folders with an __init__.py, and migrations) and top-level modules."""
    found = []
    for path in sorted(root.iterdir()):
        if path.name.startswith(".") or path.name in SKIP:
            continue
        if path.is_dir() and ((path / "__init__.py").exists() or path.name == "migrations"):
            found.append(path)
        elif path.suffix == ".py":
            found.append(path)
    return found


def compile_project(root: Path = ROOT) -> bool:
    """Compile what changed since the last time; True when every file compiled."""
    ok = True
    for path in project_sources(root):
        if path.is_dir():
            ok &= bool(compileall.compile_dir(path, quiet=2, workers=1))
        else:
            ok &= bool(compileall.compile_file(path, quiet=2))
    return ok


def venv_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def venv_compiled() -> bool:
    return (venv_packages() / VENV_STAMP).exists()


def compile_venv_in_background() -> subprocess.Popen[bytes] | None:
    """Compile the venv's packages in a low-priority child, once (a stamp marks it done)."""
    if venv_compiled():
        return None
    code = (
        "import compileall, pathlib, sys; p = pathlib.Path(sys.argv[1]); "
        "compileall.compile_dir(p, quiet=2, workers=1); (p / sys.argv[2]).touch()"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BSS_")}  # not part of any stack
    return subprocess.Popen(
        ["nice", "-n", "19", sys.executable, "-c", code, str(venv_packages()), VENV_STAMP],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


if __name__ == "__main__":
    # `make venv`: the venv's packages and the project, in place.
    compileall.compile_dir(venv_packages(), quiet=2, workers=0)
    (venv_packages() / VENV_STAMP).touch()
    compile_project()
