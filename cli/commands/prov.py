"""`bss prov`: provisioning tasks (the network steps of a service order), the operator's levers on
a stuck one, and fault injection on the simulated network."""

from __future__ import annotations

from typing import Any

import typer

from cli.commands.order import BSS, styled
from cli.output import JsonOpt, emit, group, ok, table

app = group()

TASKS = f"{BSS}/provisioning/task"
FAULTS = f"{BSS}/provisioning/fault-injection"


def _render_tasks(tasks: list[dict[str, Any]]) -> None:
    rows = [
        (
            t.get("id"),
            t.get("taskType"),
            t.get("serviceOrderId") or (t.get("serviceOrder") or {}).get("id"),
            styled(t.get("state")),
            t.get("attempts"),
            t.get("ticketId"),
            t.get("lastError"),
        )
        for t in tasks
    ]
    table(
        "Provisioning tasks",
        ("Task", "Type", "Service order", "State", "Attempts", "Ticket", "Last error"),
        rows,
    )


@app.command("tasks")
def tasks(
    state: str | None = typer.Option(None, "--state", help="pending, running, completed, failed or stuck."),
    service_order: str | None = typer.Option(
        None, "--service-order", help="Only this service order's tasks."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Provisioning tasks, e.g. `--state stuck` for the ones waiting for an operator."""
    from cli.client import api

    emit(api().get(TASKS, state=state, serviceOrderId=service_order), as_json, _render_tasks)


@app.command("resolve")
def resolve(
    task_id: str = typer.Argument(..., metavar="PTK"),
    note: str = typer.Option(..., "--note", help="What was done by hand; kept on the task."),
    as_json: bool = JsonOpt,
) -> None:
    """A stuck task was done by hand: record how, and let the order carry on."""
    from cli.client import api

    result = api().post(f"{TASKS}/{task_id}/resolve", {"note": note})
    emit(result, as_json, lambda _: ok(f"Task {task_id} resolved; its order carries on."))


@app.command("retry")
def retry(task_id: str = typer.Argument(..., metavar="PTK"), as_json: bool = JsonOpt) -> None:
    """Run a stuck task again."""
    from cli.client import api

    result = api().post(f"{TASKS}/{task_id}/retry")
    emit(result, as_json, lambda _: ok(f"Task {task_id} is being retried."))


def _render_faults(rules: list[dict[str, Any]]) -> None:
    rows = [
        (r["id"], r["taskType"], r["faultType"], f"{r['probability']:.2f}", "on" if r["enabled"] else "off")
        for r in rules
    ]
    table("Fault injection", ("Rule", "Task type", "Fault", "Probability", "Enabled"), rows)


@app.command("fault")
def fault(
    task_type: str = typer.Argument(
        ..., metavar="TASK_TYPE", help="HLR_PROVISION, PCRF_POLICY_PUSH, …, PAYMENT_CHARGE, PAYMENT_REFUND."
    ),
    fault_type: str = typer.Argument(
        ...,
        metavar="FAULT_TYPE",
        help="Network: fail_first_attempt, fail_always, stuck, slow. "
        "Card gateway: decline, timeout, unavailable, lost_response.",
    ),
    probability: float = typer.Option(
        1.0, "--probability", min=0.0, max=1.0, help="Chance per call, 0 to 1."
    ),
    disable: bool = typer.Option(False, "--disable", help="Turn the fault off."),
    as_json: bool = JsonOpt,
) -> None:
    """Turn a fault on (or off) for a network task or the card gateway (`PAYMENT_CHARGE unavailable`);
    the simulators apply it within a second."""
    from cli.client import api

    body = {
        "taskType": task_type.upper(),
        "faultType": fault_type.lower(),
        "probability": probability,
        "enabled": not disable,
    }
    rule = api().post(FAULTS, body)
    emit(
        rule,
        as_json,
        lambda r: ok(
            f"{r['id']}: {r['faultType']} on {r['taskType']} is "
            + (f"on at probability {r['probability']:.2f}." if r["enabled"] else "off.")
        ),
    )


@app.command("faults")
def faults(as_json: bool = JsonOpt) -> None:
    """The fault-injection rules and whether each is on."""
    from cli.client import api

    emit(api().get(FAULTS), as_json, _render_faults)
