"""`bss up` against an external Temporal and an external Postgres, with two workers.

The "cluster" is what this test session already runs, started apart from `bss up`: the session's
embedded Postgres (its own cluster, password-protected; a fresh database cloned for this test)
and the session's Temporal dev server. `BSS_DB_URL` and `BSS_TEMPORAL_ADDRESS` point `bss up` at
them, so it starts neither of its own, migrates and seeds the external database, and runs the API
and two worker processes (`--workers 2`) against them. A signup completes there, and a renewal
(the test clock moved 30 days) charges the line once.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

from stack import postgres

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parent.parent
ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"


def _env(data_dir: Path, db_url: str, temporal: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BSS_")}
    pg, tport, ui, api, portal, cockpit = (postgres.free_port() for _ in range(6))
    env.update(
        BSS_DATA_DIR=str(data_dir),
        BSS_DB_URL=db_url,
        BSS_TEMPORAL_ADDRESS=temporal,
        # Ports of the embedded servers, which must stay closed: nothing may start them.
        BSS_PG_PORT=str(pg),
        BSS_TEMPORAL_PORT=str(tport),
        BSS_TEMPORAL_UI_PORT=str(ui),
        BSS_API_PORT=str(api),
        BSS_PORTAL_PORT=str(portal),
        BSS_COCKPIT_PORT=str(cockpit),
        # The dev server is shared with the session's other tests: a queue of our own.
        BSS_TASK_QUEUE=f"external-{uuid.uuid4().hex[:8]}",
        BSS_SIM_LATENCY_FACTOR="0",
        PYTHONUNBUFFERED="1",
    )
    return env


def _bss(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _logs(data_dir: Path) -> str:
    return "\n".join(
        f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}"
        for log in sorted((data_dir / "logs").glob("*.log"))
    )


async def _reserved_iccids(db_url: str) -> list[str]:
    import asyncpg

    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch("SELECT iccid FROM inventory.esim_profile WHERE profile_state <> 'available'")
        return [r["iccid"] for r in rows]
    finally:
        await conn.close()


async def _renewals(db_url: str, subscription_id: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM payment.payment p JOIN subscription.subscription s "
            "ON s.customer_id = p.customer_id WHERE s.id = $1 AND p.purpose = 'renewal' "
            "AND p.status = 'approved'",
            subscription_id,
        )
    finally:
        await conn.close()


async def test_bss_up_runs_two_workers_against_an_external_temporal_and_postgres(
    db_url, temporal_dev, tmp_path
):
    target = temporal_dev.client.service_client.config.target_host
    env = _env(tmp_path, db_url, target)
    up = await asyncio.to_thread(_bss, env, "up", "--detach", "--workers", "2", "--test-clock")
    try:
        assert up.returncode == 0, f"{up.stdout}\n{up.stderr}\n{_logs(tmp_path)}"
        # Neither an embedded Postgres nor a dev server: no cluster in the data dir, no such child.
        assert not (tmp_path / "pg").exists() and not (tmp_path / "temporal.db").exists()
        supervisor = psutil.Process(int((tmp_path / "stack.pid").read_text().split()[0]))
        names = [c.name() for c in supervisor.children(recursive=True)]
        assert "postgres" not in names and "temporal" not in names, names
        for port in ("BSS_PG_PORT", "BSS_TEMPORAL_PORT"):
            assert not postgres.port_open("127.0.0.1", int(env[port]))

        status = await asyncio.to_thread(_bss, env, "status", "--json", timeout=30)
        rows = {c["component"]: c for c in json.loads(status.stdout)["components"]}
        assert {"postgres (external)", "temporal (external)", "worker-1", "worker-2"} <= set(rows), rows
        assert rows["temporal (external)"]["address"] == target
        assert "***" in rows["postgres (external)"]["address"], "the password must not be shown"
        assert all(r["healthy"] for r in rows.values()), rows
        workers = json.loads((tmp_path / "stack-children.json").read_text())["workers"]
        assert len(workers) == 2 and all(psutil.pid_exists(p) for p in workers)

        token = (tmp_path / "api-token").read_text().strip()
        api_url = f"http://127.0.0.1:{env['BSS_API_PORT']}"
        async with httpx.AsyncClient(
            base_url=api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as api:
            from tests.test_stack import CUSTOMERS

            r = await api.post(
                CUSTOMERS,
                json={
                    "name": "External Subscriber",
                    "contactMedium": [
                        {"mediumType": "email", "characteristic": {"emailAddress": "ext@example.com"}}
                    ],
                },
            )
            assert r.status_code == 201, r.text
            customer = r.json()["id"]
            r = await api.post(
                "/tmf-api/paymentMethod/v4/paymentMethod",
                json={
                    "@type": "bankCard",
                    "cardNumber": "4242424242424242",
                    "expirationDate": "2035-12",
                    "nameOnCard": "External",
                    "relatedParty": [{"id": customer, "role": "customer"}],
                },
            )
            assert r.status_code == 201, r.text
            r = await api.post(
                ORDERS,
                json={
                    "productOrderItem": [{"id": "1", "action": "add", "productOffering": {"id": "PLAN_M"}}],
                    "relatedParty": [{"id": customer, "role": "customer"}],
                },
            )
            assert r.status_code == 201, r.text
            order_id = r.json()["id"]
            deadline = time.monotonic() + 60
            while (order := (await api.get(f"{ORDERS}/{order_id}")).json())["state"] not in (
                "completed",
                "failed",
            ):
                assert time.monotonic() < deadline, f"order still {order['state']}: {_logs(tmp_path)}"
                await asyncio.sleep(0.3)
            assert order["state"] == "completed", order
            # The order's workflow ran on the external server, on this stack's queue.
            described = await temporal_dev.client.get_workflow_handle(f"order-{order_id}").describe()
            assert described.task_queue == env["BSS_TASK_QUEUE"]
            subs = (await api.get("/bss-api/v1/subscription", params={"customerId": customer})).json()
            sub_id = subs[0]["id"]

        moved = await asyncio.to_thread(_bss, env, "clock", "advance", "31d", timeout=60)
        assert moved.returncode == 0, moved.stdout + moved.stderr
        deadline = time.monotonic() + 60
        while (renewed := await _renewals(db_url, sub_id)) < 1:
            assert time.monotonic() < deadline, f"the line was not renewed: {_logs(tmp_path)}"
            await asyncio.sleep(0.3)
        assert renewed == 1
    finally:
        down = await asyncio.to_thread(_bss, env, "down", timeout=90)
        # The dev server is the session's: the line's eSIM flow (waiting for a device) must not
        # outlive this stack, or a later test reserving the same ICCID finds it running.
        from tests.saga_harness import end_leftovers

        await end_leftovers(temporal_dev.client, env["BSS_TASK_QUEUE"], await _reserved_iccids(db_url))
        assert down.returncode == 0, down.stdout + down.stderr
