"""Who may call what: the one table of the API's permissions.

Every operation belongs to an area, the tag of its router (`APIRouter(tags=[...])`, as the OpenAPI
shows it). For each area the table says which methods each role may use there. `admin` may do
everything. An area missing from the table is admin-only, so a new router is closed to every other
role until someone decides here who may use it; a path the OpenAPI does not document is closed to
them too. The check runs before the request is read (api/app.py), so a refused request does no work.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from domains.access.rules import Role

ADMIN, OPERATOR, CHANNEL, NETWORK, READONLY = Role
READ = frozenset({"GET", "HEAD"})
POST = frozenset({"POST"})
WRITE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ANY = READ | WRITE
NOTHING: frozenset[str] = frozenset()


def area(
    operator: frozenset[str] = READ,
    channel: frozenset[str] | None = None,
    network: frozenset[str] = NOTHING,
    readonly: frozenset[str] = READ,
) -> dict[Role, frozenset[str]]:
    """Reads are open to operator, channel and readonly unless said otherwise; a channel (portal,
    agent) may do what an operator may unless said otherwise."""
    return {
        OPERATOR: operator,
        CHANNEL: operator if channel is None else channel,
        NETWORK: network,
        READONLY: readonly,
    }


# Customer-facing work (operator and channel) writes; catalogue, price, pool, fault and clock
# changes stay with admin; the network only reports usage and device events.
TABLE: dict[str, dict[Role, frozenset[str]]] = {
    "TMF620 Product Catalog": area(),
    "Catalog VAS": area(),
    "Catalog administration": area(NOTHING, readonly=NOTHING),  # offerings, prices, price migration
    "Test clock": area(),  # reading business time; moving it is admin's
    "TMF629 Customer": area(ANY),
    "TMF632 Party": area(),
    "KYC": area(ANY),
    "TMF670 Payment Method": area(ANY),
    "TMF676 Payment": area(),
    "TMF622 Product Ordering": area(ANY),
    "Orders (BSS)": area(),
    "Subscriptions (BSS)": area(ANY),  # VAS top-ups, renew, plan change, terminate
    "TMF637 Product Inventory": area(),
    "TMF654 Prepay Balance": area(),
    "TMF677 Usage Consumption": area(ANY),  # POST asks a question, changes nothing
    "TMF635 Usage": area(network=POST),  # ingestion (single and bulk) is the network's
    "eSIM (BSS)": area(ANY, network=POST),  # device events
    "eSIM re-download (BSS)": area(ANY),  # re-arm a line's profile (never the network's)
    "Number holds (BSS)": area(ANY),  # a signup holds and gives back its number pick
    "Provisioning tasks (BSS)": area(ANY),  # resolve and retry stuck tasks
    "Tickets waited on by workflows (BSS)": area(ANY),
    "TMF621 Trouble Ticket": area(ANY),
    "Cases (BSS)": area(ANY),  # cases and the agents list
    "TMF683 Party Interaction": area(ANY),
    "Provisioning fault injection": area(),  # switching faults is admin's
    "TMF639 Resource Inventory": area(),
    "Inventory (BSS)": area(),  # adding numbers to the pool is admin's
    "TMF638 Service Inventory": area(),
    "TMF641 Service Ordering": area(),
    # Read-only. Not for channels: these lists span every customer (a portal or an agent reads a
    # customer's own messages through the ownership-checked operations layer).
    "TMF681 Communication": area(channel=NOTHING),
    "TMF688 Event": area(channel=NOTHING),
    "Trace": area(),
    "Number porting (BSS)": area(READ | POST),  # open (operator, channel) and read port requests
    "Number porting decisions (BSS)": area(POST, channel=NOTHING),  # approve / reject: operators
    "Promotions (BSS)": area(),  # reading codes; creating, assigning and exhausting is admin's
    "Operators (BSS)": area(NOTHING, readonly=NOTHING),  # cockpit accounts: admin only
    "Agent (BSS)": area(READ | POST, channel=NOTHING, readonly=NOTHING),  # bss ask: an operator's own turns
    # "Access tokens" (/bss-api/v1/admin/token): not listed, so admin only.
}


def permits(role: Role, tags: Iterable[str], method: str) -> bool:
    if role is ADMIN:
        return True
    allowed = [TABLE.get(tag, {}).get(role, NOTHING) for tag in tags]
    return bool(allowed) and all(method in methods for methods in allowed)


@dataclass(frozen=True)
class Operation:
    pattern: re.Pattern[str]
    path: str
    method: str
    tags: tuple[str, ...]


class Routes:
    """The documented operations, matched by path template and method."""

    def __init__(self, openapi: dict[str, Any]) -> None:
        self.operations: list[Operation] = []
        for path, item in openapi.get("paths", {}).items():
            pattern = re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$")
            for method, op in item.items():
                if isinstance(op, dict) and method.upper() in ANY:
                    self.operations.append(
                        Operation(pattern, path, method.upper(), tuple(op.get("tags", ())))
                    )

    def decide(self, role: Role, method: str, path: str) -> int:
        """200 if the role may go on, else the status to answer with (403, 404 or 405).

        When several templates match a path (`/x/{id}` and `/x/special`), the role must be allowed
        by every one of them: whichever the router picks, it was permitted."""
        if role is ADMIN:
            return 200
        method = "GET" if method == "HEAD" else method
        on_path = [op for op in self.operations if op.pattern.match(path)]
        if not on_path:
            return 404
        matching = [op for op in on_path if op.method == method]
        if not matching:
            return 405
        return 200 if all(permits(role, op.tags, method) for op in matching) else 403
