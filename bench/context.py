"""What every benchmark module gets: the stack, an API client factory and the list of figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.figures import Figure
from bench.stack import BenchStack


@dataclass
class BenchContext:
    stack: BenchStack
    figures: list[Figure] = field(default_factory=list)
    # Shared between modules, e.g. the customer the read benchmark created for a later one.
    state: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, value: float, unit: str, **params: Any) -> None:
        self.figures.append(
            Figure(name, round(value, 3) if isinstance(value, float) else value, unit, params)
        )

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
