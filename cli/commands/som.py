"""`bss som`: service orders (TMF641) and the CFS/RFS services they design (TMF638)."""

from __future__ import annotations

from typing import Any

import typer

from cli.commands.order import TMF638, TMF641, styled
from cli.output import JsonOpt, card, emit, group

app = group()


def history(resource: dict[str, Any]) -> str | None:
    """`designed → reserved → activated` with the time of the last change."""
    steps = resource.get("stateHistory") or []
    if not steps:
        return None
    states = [s.get("to") or s.get("state") or "?" for s in steps]
    last = steps[-1].get("at") or steps[-1].get("changeDate") or ""
    return " → ".join(states) + (f" ({last})" if last else "")


def _render_service_order(so: dict[str, Any]) -> None:
    services = [
        f"{(i.get('service') or {}).get('name', '?')} {(i.get('service') or {}).get('id', '')}"
        for i in so.get("serviceOrderItem") or []
    ]
    tasks = [
        f"{t.get('taskType')} {t.get('id')} {styled(t.get('state'))} ×{t.get('attempts') or 0}"
        + (f" ticket {t['ticketId']}" if t.get("ticketId") else "")
        for t in so.get("provisioningTask") or []
    ]
    card(
        f"Service order {so['id']}",
        [
            ("State", styled(so.get("state"))),
            ("Product order", so.get("externalId")),
            ("Services", "\n".join(services) or None),
            ("Tasks", "\n".join(tasks) or None),
            ("History", history(so)),
        ],
        subtitle="TMF641",
    )


def _render_service(svc: dict[str, Any]) -> None:
    chars = [f"{c.get('name')} = {c.get('value')}" for c in svc.get("serviceCharacteristic") or []]
    card(
        f"Service {svc['id']} · {svc.get('name', '?')}",
        [
            ("Type", svc.get("serviceType") or svc.get("@type")),
            ("State", styled(svc.get("state"))),
            ("Characteristics", "\n".join(chars) or None),
            ("Supporting", ", ".join(s.get("id", "?") for s in svc.get("supportingService") or []) or None),
            ("History", history(svc)),
        ],
        subtitle="TMF638",
    )


@app.command("so-show")
def so_show(service_order_id: str = typer.Argument(..., metavar="SO"), as_json: bool = JsonOpt) -> None:
    """One service order: its services, its provisioning tasks and its state history."""
    from cli.client import api

    emit(api().get(f"{TMF641}/{service_order_id}"), as_json, _render_service_order)


@app.command("service-show")
def service_show(service_id: str = typer.Argument(..., metavar="SVC"), as_json: bool = JsonOpt) -> None:
    """One CFS or RFS: its characteristics (the line's network identity) and state history."""
    from cli.client import api

    emit(api().get(f"{TMF638}/{service_id}"), as_json, _render_service)
