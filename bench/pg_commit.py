"""What a durable commit costs: the same write-heavy transactions on the stack's own Postgres with
`synchronous_commit` on (what `bss up` runs: a commit returns once its WAL is on disk) and off (the
setting before issue 8: a crash of Postgres could lose commits the caller, e.g. a workflow, already
took as done), measured in the same run, alternating, one client and several.

Each transaction is what an activity writes: one business row and one audit row (JSONB)."""

from __future__ import annotations

import asyncio
import time

from bench.context import BenchContext

ORDER = 40
TRANSACTIONS = 400  # per client and per round
ROUNDS = 2  # on, off, on, off: the best round of each counts (a shared machine is noisy)
CLIENTS = (1, 8)


async def _round(dsn: str, mode: str, clients: int) -> float:
    import asyncpg

    conns = [await asyncpg.connect(dsn) for _ in range(clients)]
    try:
        for conn in conns:
            await conn.execute(f"SET synchronous_commit = {mode}")

        async def client(conn) -> None:
            for i in range(TRANSACTIONS):
                async with conn.transaction():
                    await conn.execute("INSERT INTO bench_commit_row (payload) VALUES ($1)", f"row {i}")
                    await conn.execute(
                        "INSERT INTO bench_commit_audit (payload) VALUES ($1::jsonb)", '{"event": "bench"}'
                    )

        started = time.perf_counter()
        await asyncio.gather(*(client(c) for c in conns))
        return clients * TRANSACTIONS / (time.perf_counter() - started)
    finally:
        for conn in conns:
            await conn.close()


async def _measure(ctx: BenchContext) -> None:
    import asyncpg

    dsn = ctx.stack.db_url(driver="postgresql")
    setup = await asyncpg.connect(dsn)
    await setup.execute(
        "CREATE TABLE IF NOT EXISTS bench_commit_row (id bigserial PRIMARY KEY, payload text);"
        "CREATE TABLE IF NOT EXISTS bench_commit_audit (id bigserial PRIMARY KEY, payload jsonb);"
    )
    server_default = await setup.fetchval("SHOW synchronous_commit")
    try:
        for clients in CLIENTS:
            best = {"on": 0.0, "off": 0.0}
            for _ in range(ROUNDS):
                for mode in ("on", "off"):
                    best[mode] = max(best[mode], await _round(dsn, mode, clients))
            params = {
                "clients": clients,
                "transactions": clients * TRANSACTIONS,
                "rounds": ROUNDS,
                "server_default": server_default,
                "measured": "BEGIN; INSERT row; INSERT audit jsonb; COMMIT (best round)",
            }
            ctx.add(f"postgres.commits_per_s.sync_on.c{clients}", best["on"], "tx/s", **params)
            ctx.add(f"postgres.commits_per_s.sync_off.c{clients}", best["off"], "tx/s", **params)
            ctx.add(
                f"postgres.durable_commit_slowdown.c{clients}",
                best["off"] / best["on"],
                "× (off/on throughput)",
                **params,
            )
    finally:
        await setup.execute("DROP TABLE IF EXISTS bench_commit_row, bench_commit_audit")
        await setup.close()


def run(ctx: BenchContext) -> None:
    asyncio.run(_measure(ctx))
