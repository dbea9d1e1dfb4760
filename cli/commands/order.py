"""`bss order`: place an order and watch it become a line, see its COM → SOM → CFS/RFS → task
tree, list, cancel, and find the stuck ones an operator has to resolve."""

from __future__ import annotations

import time
from typing import Any

import typer

from cli.output import JsonOpt, card, console, emit, group, ok, table

app = group()

TMF622 = "/tmf-api/productOrderingManagement/v4"
TMF641 = "/tmf-api/serviceOrdering/v4/serviceOrder"
TMF638 = "/tmf-api/serviceInventory/v4/service"
BSS = "/bss-api/v1"
FINAL = {"completed", "failed", "cancelled"}

STATE_STYLE = {
    "completed": "green",
    "activated": "green",
    "active": "green",
    "failed": "bold red",
    "stuck": "bold red",
    "cancelled": "dim",
    "terminated": "dim",
    "inProgress": "yellow",
    "in_progress": "yellow",
    "running": "yellow",
}


def styled(state: str | None) -> str:
    """A state in its colour, as Rich markup."""
    from rich.markup import escape

    text = escape(state or "?")
    style = STATE_STYLE.get(state or "", "cyan")
    return f"[{style}]{text}[/]"


def extension(resource: dict[str, Any], key: str) -> Any:
    """Our fields beside the TMF ones, whether flat on the resource or under `extensions`."""
    if key in resource:
        return resource[key]
    return (resource.get("extensions") or {}).get(key)


def customer_of(order: dict[str, Any]) -> str | None:
    parties = order.get("relatedParty") or []
    return next((p.get("id") for p in parties if p.get("role") == "customer"), None)


def _item(order: dict[str, Any]) -> dict[str, Any]:
    return (order.get("productOrderItem") or [{}])[0]


def offering_of(order: dict[str, Any]) -> str | None:
    return (_item(order).get("productOffering") or {}).get("id")


def subscription_of(order: dict[str, Any]) -> str | None:
    return (_item(order).get("product") or {}).get("id")


def reason_of(order: dict[str, Any]) -> str | None:
    notes = [n.get("text") for n in order.get("note") or [] if n.get("text")]
    return notes[-1] if notes else None


def service_order_ids(order: dict[str, Any]) -> list[str]:
    return [so["id"] for so in extension(order, "serviceOrder") or [] if so.get("id")]


def temporal_ui(path: str = "") -> str:
    from core.settings import get_settings
    from ops.trace import temporal_ui_url

    return temporal_ui_url(get_settings(), path)


# --- create ----------------------------------------------------------------------------------


def _order_body(customer: str, offering: str, msisdn: str | None, promo: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": "1", "action": "add", "productOffering": {"id": offering}}
    chars = [{"name": n, "value": v} for n, v in (("msisdn", msisdn), ("promoCode", promo)) if v]
    if chars:
        item["product"] = {"productCharacteristic": chars}
    return {"productOrderItem": [item], "relatedParty": [{"id": customer, "role": "customer"}]}


def _follow(order: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Poll the order until the saga ends, with a spinner on stderr so --json stays clean."""
    from rich.console import Console

    from cli.client import api

    deadline = time.monotonic() + timeout
    started = time.monotonic()
    with Console(stderr=True).status(f"{order['id']} {order['state']}…") as status:
        while order["state"] not in FINAL and time.monotonic() < deadline:
            time.sleep(0.25)
            order = api().get(f"{TMF622}/productOrder/{order['id']}")
            status.update(f"{order['id']} {order['state']}… {time.monotonic() - started:.1f} s")
    return order


def _activation(order: dict[str, Any]) -> dict[str, Any] | None:
    from cli.client import CliError, api

    iccid = extension(order, "iccid")
    if not iccid or order.get("state") != "completed":
        return None
    try:
        return api().get(f"{BSS}/inventory/esim/{iccid}/activation")
    except CliError:
        return None  # the card is still worth showing without the code


def _promo(order: dict[str, Any]) -> str:
    """'HALF3: SGD 5.00 (3 periods)', or why the code did not apply (full price)."""
    price = (order.get("orderTotalPrice") or [{}])[0]
    for alteration in price.get("priceAlteration") or []:
        amount = alteration["price"]["taxIncludedAmount"]
        periods = alteration.get("applicationDuration")
        span = f"{periods} period{'s' if periods != 1 else ''}" if periods else "every period"
        return f"{order['promoCode']}: {amount['unit']} {amount['value']:.2f} ({span})"
    return f"{order['promoCode']}: not applied, full price"


def _render_order_card(order: dict[str, Any], activation: dict[str, Any] | None = None) -> None:
    from rich.markup import escape

    iccid = extension(order, "iccid")
    fields: list[tuple[str, Any]] = [
        ("State", styled(order.get("state"))),
        ("Customer", customer_of(order)),
        ("Plan", offering_of(order)),
        ("Subscription", subscription_of(order)),
        ("MSISDN", extension(order, "msisdn")),
        ("eSIM", iccid),
        ("Service order", ", ".join(service_order_ids(order)) or None),
    ]
    if activation:
        fields.append(("Activation code", escape(activation["activationCode"])))
    if iccid:
        fields.append(("QR code", f"bss esim activation {iccid}"))
    if order.get("promoCode"):
        fields.append(("Promo", escape(_promo(order))))
    if reason_of(order):
        fields.append(("Reason", f"[red]{escape(reason_of(order) or '')}[/]"))
    card(f"Order {order['id']}", fields, subtitle=order.get("orderDate") or order.get("creationDate"))


@app.command("create")
def create(
    customer: str = typer.Option(..., "--customer", help="The customer, e.g. CUST-1a2b3c4d."),
    offering: str = typer.Option(..., "--offering", help="The plan, e.g. PLAN_M."),
    msisdn: str | None = typer.Option(None, "--msisdn", help="A preferred number, e.g. 90000123."),
    promo: str | None = typer.Option(None, "--promo", help="A promo code."),
    no_wait: bool = typer.Option(False, "--no-wait", help="Return once the order is acknowledged."),
    timeout: float = typer.Option(60.0, "--timeout", min=1, help="Seconds to follow the order."),
    as_json: bool = JsonOpt,
) -> None:
    """Order a plan for a customer and follow it until the line is active (or the order fails)."""
    import sys

    from cli.client import CliError, api

    order = api().post(f"{TMF622}/productOrder", _order_body(customer, offering, msisdn, promo))
    if not no_wait:
        order = _follow(order, timeout)
    activation = _activation(order)
    emit(order, as_json, lambda o: _render_order_card(o, activation))
    if order["state"] == "failed":
        raise CliError(f"Order {order['id']} failed: {reason_of(order) or 'no reason recorded'}")
    if not no_wait and order["state"] not in FINAL:
        sys.stderr.write(
            f"Order {order['id']} is still {order['state']} after {timeout:g} s; "
            f"`bss order show {order['id']}` follows it, `bss order stuck` lists stuck ones.\n"
        )


# --- show: the decomposition tree -------------------------------------------------------------


def _service_label(svc: dict[str, Any]) -> str:
    from rich.markup import escape

    kind = _service_kind(svc)
    return f"[bold]{kind}[/] {escape(svc.get('name') or '?')} [dim]{escape(svc['id'])}[/] {styled(svc.get('state'))}"


def _service_kind(svc: dict[str, Any]) -> str:
    text = f"{svc.get('serviceType', '')} {svc.get('@type', '')}".upper()
    return "CFS" if "CFS" in text or "CUSTOMERFACING" in text else "RFS"


def _task_label(task: dict[str, Any]) -> str:
    from rich.markup import escape

    attempts = task.get("attempts") or 0
    label = (
        f"[bold]{escape(task.get('taskType') or '?')}[/] [dim]{escape(task.get('id') or '')}[/] "
        f"{styled(task.get('state'))} · {attempts} attempt{'s' if attempts != 1 else ''}"
    )
    if task.get("ticketId"):
        label += f" · ticket [bold]{escape(task['ticketId'])}[/]"
    if task.get("lastError") and task.get("state") != "completed":
        label += f" · [red]{escape(task['lastError'])}[/]"
    return label


def _add_service_order(parent: Any, so: dict[str, Any]) -> None:
    from rich.markup import escape

    node = parent.add(f"[bold]SOM[/] {escape(so['id'])} {styled(so.get('state'))}")
    services = so.get("services") or []
    by_id = {s["id"]: s for s in services}
    cfs_list = [s for s in services if _service_kind(s) == "CFS"]
    supported = {ref["id"] for c in cfs_list for ref in c.get("supportingService") or []}
    tasks_home = node
    for cfs in cfs_list:
        cfs_node = node.add(_service_label(cfs))
        rfs = [by_id[i] for i in (r["id"] for r in cfs.get("supportingService") or []) if i in by_id]
        if len(cfs_list) == 1:  # an RFS nobody claims still belongs to the only CFS
            rfs += [s for s in services if _service_kind(s) == "RFS" and s["id"] not in supported]
        for r in rfs:
            cfs_node.add(_service_label(r))
        tasks_home = cfs_node
    tasks = so.get("provisioningTask") or []
    if tasks:
        branch = tasks_home.add("[bold]tasks[/]")
        for task in tasks:
            branch.add(_task_label(task))


def _render_tree(data: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.tree import Tree

    order = data["productOrder"]
    line = [f"[bold]COM[/] [bold]{escape(order['id'])}[/] {styled(order.get('state'))}"]
    line += [escape(v) for v in (offering_of(order), customer_of(order)) if v]
    if subscription_of(order):
        line.append(f"→ {escape(subscription_of(order) or '')}")
    if extension(order, "msisdn"):
        line.append(escape(str(extension(order, "msisdn"))))
    tree = Tree(" · ".join(line))
    if order.get("promoCode"):
        tree.add(f"promo: {escape(_promo(order))}")
    if reason_of(order):
        tree.add(f"[red]reason: {escape(reason_of(order) or '')}[/]")
    for so in data["serviceOrders"]:
        _add_service_order(tree, so)
    console().print(tree)


@app.command("show")
def show(order_id: str = typer.Argument(..., metavar="ORD"), as_json: bool = JsonOpt) -> None:
    """The order as a tree: COM → SOM → CFS → RFS → provisioning tasks, each with its state."""
    from cli.client import api

    order = api().get(f"{TMF622}/productOrder/{order_id}")
    service_orders = []
    for so_id in service_order_ids(order):
        so = api().get(f"{TMF641}/{so_id}")
        so["services"] = api().get(TMF638, serviceOrderId=so_id)
        service_orders.append(so)
    emit({"productOrder": order, "serviceOrders": service_orders}, as_json, _render_tree)


# --- list, cancel, stuck ----------------------------------------------------------------------


def _render_list(orders: list[dict[str, Any]]) -> None:
    rows = [
        (
            o["id"],
            styled(o.get("state")),
            customer_of(o),
            offering_of(o),
            subscription_of(o),
            extension(o, "msisdn"),
            o.get("orderDate") or o.get("creationDate"),
        )
        for o in orders
    ]
    table("Product orders", ("Order", "State", "Customer", "Plan", "Subscription", "MSISDN", "Ordered"), rows)


@app.command("list")
def list_orders(
    state: str | None = typer.Option(
        None, "--state", help="acknowledged, inProgress, completed, failed, cancelled."
    ),
    customer: str | None = typer.Option(None, "--customer", help="Only this customer's orders."),
    limit: int = typer.Option(50, "--limit", min=1, max=1000),
    as_json: bool = JsonOpt,
) -> None:
    """Product orders, filtered by state or customer."""
    from cli.client import api

    orders = api().get(f"{TMF622}/productOrder", state=state, customerId=customer, limit=limit)
    emit(orders, as_json, _render_list)


@app.command("cancel")
def cancel(
    order_id: str = typer.Argument(..., metavar="ORD"),
    reason: str | None = typer.Option(None, "--reason", help="Why, for the order's history."),
    as_json: bool = JsonOpt,
) -> None:
    """Cancel an order; refused once service provisioning has started."""
    from cli.client import api

    body: dict[str, Any] = {"productOrder": {"id": order_id}}
    if reason:
        body["cancellationReason"] = reason
    api().post(f"{TMF622}/cancelProductOrder", body)
    order = api().get(f"{TMF622}/productOrder/{order_id}")
    emit(order, as_json, lambda o: ok(f"Order {o['id']} is {o['state']}."))


def _render_stuck(rows: list[dict[str, Any]]) -> None:
    if not rows:
        console().print("No stuck orders.")
    else:
        table(
            "Stuck orders",
            ("Order", "Customer", "MSISDN", "Task", "Type", "Ticket", "Workflow", "Since"),
            [
                (
                    r.get("orderId"),
                    r.get("customerId"),
                    r.get("msisdn"),
                    r.get("taskId"),
                    r.get("taskType"),
                    r.get("ticketId"),
                    r.get("workflowId"),
                    r.get("startedAt"),
                )
                for r in rows
            ],
            caption="Resolve with `bss prov resolve <task> --note …` or `bss prov retry <task>`.",
        )
    console().print(f"Temporal UI: {temporal_ui('?query=BssStuck%3Dtrue')}", soft_wrap=True, markup=False)


@app.command("stuck")
def stuck(as_json: bool = JsonOpt) -> None:
    """Orders waiting for an operator: a provisioning task passed its deadline."""
    from cli.client import api

    emit(api().get(f"{BSS}/order/stuck"), as_json, _render_stuck)
