# Two commands on a fresh machine: `make up` and `make test` (CONTRACT.md).
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PY := .venv/bin/python
export UV_PYTHON_DOWNLOADS := never

.PHONY: up down status test test-fast bench bench-compare chaos lint fmt venv migration clean

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install -q uv

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python python3
	@touch $@

# The environment sets PYTHONDONTWRITEBYTECODE=1: without bytecode compiled once here, every start
# of every stack process compiled every module again (stack/bytecode.py).
.venv/.compiled: .venv/.synced
	$(PY) -m stack.bytecode
	@touch $@

venv: .venv/.compiled

up: venv
	.venv/bin/bss up

down: venv
	.venv/bin/bss down

status: venv
	.venv/bin/bss status

# Two pytest workers (one per core), each with its own Postgres and Temporal servers; a test file
# stays on one worker so its module fixtures start once. BSS_TEST_WORKERS=0 runs in one process.
BSS_TEST_WORKERS ?= 2
test: venv
	.venv/bin/ruff check .
	.venv/bin/pytest -q -p no:cacheprovider -n $(BSS_TEST_WORKERS) --dist loadfile

test-fast: venv
	.venv/bin/pytest -q -x -m "not stack and not slow"

# `make bench [ONLY="signup renewals"] [QUICK=1]`: figures in bench/results/latest.json, with a CPU
# calibration at start and end and the CPU of every stack process per unit of work.
# `make bench-compare REF=64d011a [ONLY=…] [QUICK=1] [ROUNDS=2]`: REF (a temporary worktree) and the
# working tree one after the other in one run, side by side with ratios (bench/results/compare.json).
bench: venv
	$(PY) -m bench.run $(if $(QUICK),--quick) $(ONLY)

bench-compare: venv
	@test -n "$(REF)" || { echo "usage: make bench-compare REF=<git ref> [ONLY=\"signup renewals\"] [QUICK=1] [ROUNDS=2]"; exit 2; }
	$(PY) -m bench.compare $(REF) $(if $(QUICK),--quick) $(if $(ROUNDS),--rounds $(ROUNDS)) $(ONLY)

# Signups and renewals while the stack's processes are SIGKILLed; checks nothing is lost (bench/chaos.py);
# then schemathesis sends over 10,000 generated requests across every role: no 5xx.
chaos: venv
	$(PY) -m bench.chaos
	BSS_FUZZ_EXAMPLES=32 .venv/bin/pytest -q -p no:cacheprovider tests/api/test_fuzz_openapi.py

lint: venv
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

fmt: venv
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

migration: venv
	$(PY) scripts/regen_initial_migration.py

clean:
	rm -rf .venv .tools
