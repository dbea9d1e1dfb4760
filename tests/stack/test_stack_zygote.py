"""stack/zygote.py: the supervisor's Python children are forked from it after it imported what
they share. Its imports start no thread (a fork copies only the forking one), and a forked child
runs its command line as `python` would: in its own session, with the given environment, working
directory, inherited descriptors and log, with its exit code, named bss-<name>."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def _python(code: str, cwd: Path = ROOT) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_shared_imports_start_no_thread_and_are_frozen():
    report = json.loads(
        _python(
            "import gc, json, os, sys, threading\n"
            "from stack import zygote\n"
            "p = zygote.Preload(); p.join()\n"
            "print(json.dumps({'error': repr(p.error) if p.error else None,\n"
            "  'threads': len(os.listdir('/proc/self/task')), 'frozen': gc.get_freeze_count(),\n"
            "  'imported': [m for m in zygote.BASE if m in sys.modules]}))\n"
        )
    )
    assert report["error"] is None
    assert report["threads"] == 1
    assert report["frozen"] > 100_000
    assert "domains.registry" in report["imported"] and "temporalio.client" in report["imported"]


def test_a_forked_child_runs_its_command_like_python_would(tmp_path: Path):
    (tmp_path / "child.py").write_text(
        "import json, os, sys\n"
        "fd = int(os.environ['PASSED'])\n"
        "os.write(fd, b'through the passed pipe')\n"
        "print(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd(), 'own_session': os.getsid(0) == os.getpid(),\n"
        "  'env': os.environ.get('ONLY_IN_CHILD'), 'comm': open('/proc/self/comm').read().strip()}))\n"
        "raise SystemExit(3)\n"
    )
    log = tmp_path / "child.log"
    code = (
        "import os, subprocess, sys\n"
        "from stack.zygote import Forked\n"
        "r, w = os.pipe()\n"
        f"with open({str(log)!r}, 'ab') as out:\n"
        f"    p = Forked('demo', [sys.executable, {str(tmp_path / 'child.py')!r}, 'a', 'b'], cwd={str(tmp_path)!r},\n"
        "        env=dict(os.environ, ONLY_IN_CHILD='yes', PASSED=str(w)), stdout=out, stderr=subprocess.STDOUT,\n"
        "        start_new_session=True, pass_fds=(w,))\n"
        "os.close(w)\n"
        "print(p.wait(30), os.read(r, 100).decode(), 'ONLY_IN_CHILD' in os.environ)\n"
    )
    out = _python(code).split()
    assert out[0] == "3"  # the child's exit code
    assert " ".join(out[1:-1]) == "through the passed pipe"
    assert out[-1] == "False"  # the child's environment is its own
    child = json.loads(log.read_text().strip().splitlines()[-1])
    assert child == {
        "argv": ["a", "b"],
        "cwd": str(tmp_path),
        "own_session": True,
        "env": "yes",
        "comm": "bss-demo",
    }
