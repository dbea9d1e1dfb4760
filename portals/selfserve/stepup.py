"""POST /step-up: email a one-time code that confirms a money-moving or destructive action in this
browser session (ops/step_up.py); the confirm page it came from then asks for the code."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from core.errors import DomainError
from portals.selfserve.common import (
    PURPOSES,
    context_for,
    customer_of,
    flash,
    local_path,
    runtime,
    session_key,
    to,
)
from portals.web import sessions
from portals.web.app import form_data

router = APIRouter()


@router.post("/step-up")
async def send_step_up_code(request: Request) -> Response:
    from ops import step_up

    customer_id = customer_of(request)
    form = await form_data(request)
    back = local_path(form.get("next"))
    purpose = PURPOSES.get(form.get("purpose") or "", "")
    try:
        where = await step_up.request_code(
            runtime(request),
            context_for(request, customer_id),
            customer_id,
            session_key(request),
            sessions.client_ip(request),
            purpose=purpose,
        )
    except DomainError as exc:
        await flash(request, exc.message, error=True)
        return to(back)
    await flash(request, f"We emailed a 6-digit code to {where}; enter it below. It works for 10 minutes.")
    return to(back)
