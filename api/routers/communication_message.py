"""TMF681 Communication: the messages sent (or queued) to customers and operators, read from the
outbox. `receiver.id` is the customer (CUST-…); an operators' message has no customer and is
listed without that filter. States: queued → `initial` (`inProgress` once an attempt failed and it
waits for the next), sent → `completed`, failed → `failed`, skipped (no address) → `cancelled`."""

from __future__ import annotations

from email.utils import parseaddr
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Response

from api.deps import runtime
from api.routers.customer import time_json
from api.tmf import Paging, listing, one
from core.errors import InvalidInput
from ops import notify as ops
from ops.runtime import Runtime

BASE = "/tmf-api/communicationManagement/v4"
CUSTOMER = "/tmf-api/customerManagement/v4/customer"

router = APIRouter(prefix=BASE, tags=["TMF681 Communication"])

TMF_STATE = {"sent": "completed", "failed": "failed", "skipped": "cancelled"}
# TMF state -> (our state, tried at least once?)
OUR_STATES: dict[str, tuple[str, bool | None]] = {
    "initial": ("queued", False),
    "inProgress": ("queued", True),
    "completed": ("sent", None),
    "failed": ("failed", None),
    "cancelled": ("skipped", None),
}


def state_of(m: Any) -> str:
    if m.state == "queued":
        return "inProgress" if m.attempts else "initial"
    return TMF_STATE.get(m.state, "failed")


def to_tmf(m: Any) -> dict[str, Any]:
    name, address = parseaddr(m.sender)
    receiver: dict[str, Any] = {"@type": "Receiver", "id": m.customer_id or "operators"}
    if m.recipient:
        receiver["email"] = m.recipient
    if m.customer_id:
        receiver["party"] = {
            "id": m.customer_id,
            "href": f"{CUSTOMER}/{m.customer_id}",
            "role": "customer",
            "@referredType": "Customer",
        }
    chars = [
        {"name": "template", "valueType": "string", "value": m.template},
        {"name": "sourceKey", "valueType": "string", "value": m.source_key},
    ]
    if m.last_error:
        chars.append({"name": "lastError", "valueType": "string", "value": m.last_error})
    if m.mailbox_file:
        chars.append({"name": "mailboxFile", "valueType": "string", "value": m.mailbox_file})
    body: dict[str, Any] = {
        "id": m.id,
        "href": f"{BASE}/communicationMessage/{m.id}",
        "@type": "CommunicationMessage",
        "messageType": "email",
        "description": m.template.replace("_", " "),
        "subject": m.subject,
        "content": m.body,
        "state": state_of(m),
        "logFlag": True,
        "tryTimes": m.attempts,
        "scheduledSendTime": time_json(m.created_at),
        "receiver": [receiver],
        "sender": {"@type": "Sender", "id": "bss", "name": name or address, "email": address},
        "characteristic": chars,
    }
    if m.sent_at:
        body["sendTime"] = body["sendTimeComplete"] = time_json(m.sent_at)
    return body


@router.get(
    "/communicationMessage",
    summary="Messages sent to customers and operators, newest first",
    response_model=list[dict[str, Any]],
)
async def list_messages(
    response: Response,
    receiver_id: str | None = Query(
        None, alias="receiver.id", max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$", description="CUST-…"
    ),
    receiver_email: str | None = Query(None, alias="receiver.email", max_length=254, pattern=r"^[^\s]+$"),
    state: str | None = Query(
        None, max_length=20, description="initial, inProgress, completed, failed, cancelled"
    ),
    paging: Paging = Depends(),
    rt: Runtime = Depends(runtime),
) -> list[dict[str, Any]]:
    ours: tuple[str | None, bool | None] = (None, None)
    if state is not None:
        if state not in OUR_STATES:
            raise InvalidInput(
                "communicationMessage.state.invalid",
                f"state must be one of {', '.join(OUR_STATES)}; got {state!r}.",
            )
        ours = OUR_STATES[state]
    total, rows = await ops.list_messages(
        rt,
        customer_id=receiver_id,
        recipient=receiver_email,
        state=ours[0],
        attempted=ours[1],
        offset=paging.offset,
        limit=paging.limit,
    )
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Result-Count"] = str(len(rows))
    return listing([to_tmf(m) for m in rows], paging)


@router.get("/communicationMessage/{id}", summary="One message, with its content and delivery state")
async def get_message(
    message_id: str = Path(alias="id", max_length=16, pattern=r"^[A-Za-z0-9_-]+$", description="MSG-…"),
    fields: str | None = Query(None, max_length=500),
    rt: Runtime = Depends(runtime),
) -> dict[str, Any]:
    return one(to_tmf(await ops.get_message(rt, message_id)), fields)
