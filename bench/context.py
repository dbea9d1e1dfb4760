"""What every benchmark module gets: the stack, an API client factory and the list of figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from bench import cpu
from bench.figures import Figure
from bench.stack import BenchStack


@dataclass
class BenchContext:
    stack: BenchStack
    figures: list[Figure] = field(default_factory=list)
    # Shared between modules, e.g. the customer the read benchmark created for a later one.
    state: dict[str, Any] = field(default_factory=dict)
    # BENCH_QUICK=1 / --quick: a few units of each workload, to try the bench in a couple of minutes.
    quick: bool = False
    # The calibration at the start of the run (ms of CPU for bench.cpu.calibration_loop).
    calibration_ms: float | None = None

    def add(self, name: str, value: float, unit: str, **params: Any) -> None:
        self.figures.append(
            Figure(name, round(value, 3) if isinstance(value, float) else value, unit, params)
        )

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def cpu_sample(self) -> tuple[cpu.Sample, float]:
        """CPU counters of every process of the stack, and of this driver."""
        return cpu.sample(self.stack.cpu_processes()), cpu.own_cpu()

    def add_cpu(
        self,
        name: str,
        before: tuple[cpu.Sample, float],
        after: tuple[cpu.Sample, float],
        units: int,
        per: str,
        **params: Any,
    ) -> dict[str, float]:
        """Figures `<name>.cpu_ms_per_<per>` for the whole stack and for each of its components,
        from two cpu_sample()s around `units` units of work. The driver's own CPU is a parameter,
        not part of the stack's."""
        spent = cpu.cpu_between(before[0], after[0])
        stack_s = sum(spent.values())
        wall = after[0].at - before[0].at
        per_unit = {k: v * 1000 / units for k, v in sorted(spent.items())} if units else {}
        common = {
            "units": units,
            "wall_s": round(wall, 2),
            "stack_cpu_s": round(stack_s, 2),
            "stack_cores_busy": round(stack_s / wall, 2) if wall else 0.0,
            "driver_cpu_ms_per_unit": round((after[1] - before[1]) * 1000 / units, 2) if units else 0.0,
            "workers": self.stack.workers(),
            **params,
        }
        total = stack_s * 1000 / units if units else 0.0
        self.add(
            f"{name}.cpu_ms_per_{per}",
            total,
            "ms CPU",
            **common,
            **{k: round(v, 2) for k, v in per_unit.items()},
        )
        if self.calibration_ms:
            self.add(
                f"{name}.cpu_per_{per}_in_calibrations",
                total / self.calibration_ms,
                "× calibration loop",
                calibration_ms=round(self.calibration_ms, 2),
            )
        for component, value in per_unit.items():
            self.add(f"{name}.cpu_ms_per_{per}.{component}", value, "ms CPU", units=units)
        return per_unit

    def api(self, **limits: int) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.stack.api_url,
            headers={"Authorization": f"Bearer {self.stack.token}"},
            timeout=30,
            limits=httpx.Limits(
                max_connections=limits.get("max_connections", 100), max_keepalive_connections=100
            ),
        )


async def customer_with_card(api: httpx.AsyncClient, label: str) -> str:
    """A new customer with a good card on file, through the API, as a signup would make it."""
    import time

    r = await api.post(
        "/tmf-api/customerManagement/v4/customer",
        json={
            "name": f"Bench {label}",
            "contactMedium": [
                {
                    "mediumType": "email",
                    "characteristic": {"emailAddress": f"{label}-{time.time_ns()}@bench.example"},
                }
            ],
        },
    )
    r.raise_for_status()
    customer = r.json()["id"]
    r = await api.post(
        "/tmf-api/paymentMethod/v4/paymentMethod",
        json={
            "@type": "bankCard",
            "cardNumber": "4242424242424242",
            "expirationDate": "2035-12",
            "nameOnCard": "Bench",
            "relatedParty": [{"id": customer, "role": "customer"}],
        },
    )
    r.raise_for_status()
    return customer
