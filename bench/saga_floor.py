"""The floor the design sets for a signup: four workflows in the signup's shape (bench/
floor_workflows.py: the same child starts, local steps, signal and timers, every step a no-op) on a
dev server started with the product's flags, with the product's sandbox, in this process. What a
real signup costs beyond this floor is its work (the database, the simulators, the API); the floor
itself is Temporal's and the SDK's cost of the workflows the design names. The same floor without
the sandbox, in alternate halves, shows what the sandbox costs (issue 8 requires it; the product
keeps it). Needs no stack."""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from bench.context import BenchContext

ORDER = 55
CHAINS = 80
QUICK_CHAINS = 40
CONCURRENCY = 10


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _measure(port: int, server_pid: int, chains: int, sandboxed: bool) -> tuple[float, float, float]:
    from temporalio.client import Client

    from bench.floor_workflows import FloorOrder, floor_worker

    client = await Client.connect(f"127.0.0.1:{port}")
    queue = f"floor-{sandboxed}"
    async with floor_worker(client, queue, sandboxed):
        sem = asyncio.Semaphore(CONCURRENCY)

        async def chain(tag: str) -> None:
            async with sem:
                result = await client.execute_workflow(
                    FloorOrder.run, tag, id=f"{queue}-{tag}-{uuid.uuid4()}", task_queue=queue
                )
                if result != "completed":
                    raise RuntimeError(f"floor chain ended {result}")

        await asyncio.gather(*(chain("warm") for _ in range(CONCURRENCY)))
        server0, own0, wall0 = _cpu_s(server_pid), time.process_time(), time.monotonic()
        await asyncio.gather(*(chain(str(i)) for i in range(chains)))
        server1, own1, wall1 = _cpu_s(server_pid), time.process_time(), time.monotonic()
    return (server1 - server0) * 1000 / chains, (own1 - own0) * 1000 / chains, wall1 - wall0


async def _alternate(port: int, server_pid: int, chains: int) -> dict[bool, list[float]]:
    """With the product's sandbox and without any, in halves taken in turn (the machine drifts):
    for each, Temporal's and the worker's ms per chain (means of the halves) and the wall seconds."""
    halves: dict[bool, list[tuple[float, float, float]]] = {True: [], False: []}
    for sandboxed in (True, False, True, False):
        halves[sandboxed].append(await _measure(port, server_pid, chains // 2, sandboxed))
    return {
        sandboxed: [sum(h[0] for h in got) / 2, sum(h[1] for h in got) / 2, sum(h[2] for h in got)]
        for sandboxed, got in halves.items()
    }


def run(ctx: BenchContext) -> None:
    from stack import postgres
    from stack.temporal import dev_server_command, wait_ready

    chains = ctx.size(CHAINS, QUICK_CHAINS)
    with tempfile.TemporaryDirectory(prefix="bss-floor-") as tmp:
        port = postgres.free_port()
        log = Path(tmp) / "temporal.log"
        with open(log, "ab") as out:
            server = subprocess.Popen(
                dev_server_command(Path(tmp) / "temporal.db", port, None), stdout=out, stderr=out
            )
        try:
            wait_ready(server, "127.0.0.1", port, log)
            runs = asyncio.run(_alternate(port, server.pid, chains))
        finally:
            server.terminate()
            server.wait(30)
    for sandboxed, (temporal_ms, worker_ms, wall) in runs.items():
        # Without the sandbox: what issue 8's sandbox (worker.workflow_runner) costs in the floor.
        name = "saga_floor.cpu_ms_per_signup_shape" + ("" if sandboxed else ".unsandboxed")
        params = {
            "chains": chains,
            "concurrency": CONCURRENCY,
            "workflows_per_chain": 4,
            "sandbox": "the product's (worker.workflow_runner)" if sandboxed else "none",
            "measured": "the signup's four workflows with no-op steps (bench/floor_workflows.py)",
            "wall_s": round(wall, 2),
        }
        ctx.add(name, temporal_ms + worker_ms, "ms CPU", **params)
        ctx.add(f"{name}.temporal", temporal_ms, "ms CPU", **params)
        ctx.add(f"{name}.worker_and_client", worker_ms, "ms CPU", **params)
