"""stack/gate.py: a child of `bss up` imports first and says so, then waits for the supervisor's go
before it runs its target; a gate closed without go (the supervisor stopped) never runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from stack.gate import Gate

ROOT = Path(__file__).resolve().parent.parent.parent


def _spawn(tmp_path: Path, gate: Gate, *target: str) -> subprocess.Popen[bytes]:
    (tmp_path / "preloaded.py").write_text(
        "import os, pathlib\npathlib.Path(os.environ['MARK']).write_text('imported')\n"
    )
    (tmp_path / "target.py").write_text(
        "import pathlib, sys\npathlib.Path(sys.argv[1]).write_text(' '.join(sys.argv[2:]))\n"
    )
    env = gate.env(dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}", MARK=str(tmp_path / "mark")))
    proc = subprocess.Popen(
        # A preload that no longer exists is skipped: the target imports what it needs itself.
        [
            sys.executable,
            "-m",
            "stack.gate",
            "--preload",
            "preloaded",
            "--preload",
            "gone_from_the_tree",
            "--",
            *target,
        ],
        cwd=ROOT,
        env=env,
        pass_fds=gate.fds,
        stderr=subprocess.PIPE,
    )
    gate.spawned()
    assert gate.wait_ready()  # the child says it has imported its preloads
    assert (tmp_path / "mark").read_text() == "imported"
    return proc


def test_a_gated_module_is_imported_first_and_runs_only_once_let_go(tmp_path: Path):
    out = tmp_path / "out"
    gate = Gate()
    proc = _spawn(tmp_path, gate, "-m", "target", str(out), "a", "b")
    try:
        assert not out.exists()  # preloaded, and held at the gate: nothing can pass it without go
        assert proc.poll() is None
        gate.open()
        assert proc.wait(60) == 0
        assert out.read_text() == "a b"
    finally:
        proc.kill()
        proc.wait()


def test_a_gate_closed_without_go_never_runs_the_target(tmp_path: Path):
    out = tmp_path / "out"
    gate = Gate()
    proc = _spawn(tmp_path, gate, str(tmp_path / "target.py"), str(out), "x")
    try:
        gate.close()
        assert proc.wait(60) == 1
        assert not out.exists()
        assert b"not starting it" in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
