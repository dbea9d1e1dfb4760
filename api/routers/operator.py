"""Operator accounts of the cockpit (admin only): create, list, disable, enable.

A generated password is in the answer to the creation and nowhere else: only its argon2 hash is stored."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from api.deps import context, runtime
from core.context import RequestContext
from domains.staff.models import Operator
from domains.staff.rules import MAX_PASSWORD, MIN_PASSWORD, STAFF_ROLES
from ops import staff
from ops.runtime import Runtime

router = APIRouter(prefix="/bss-api/v1/admin/operator", tags=["Operators (BSS)"])

Ref = Path(max_length=254, description="The operator's id (OP-…) or email.")


class OperatorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=254, examples=["ana@example.com"])
    role: str = Field(max_length=20, description=f"One of {', '.join(STAFF_ROLES)}.", examples=["csr"])
    name: str | None = Field(default=None, max_length=200, description="Default: the email's local part.")
    password: str | None = Field(
        default=None,
        min_length=MIN_PASSWORD,
        max_length=MAX_PASSWORD,
        description="Omit it to have one generated; it is then in the answer, once.",
    )


def operator_json(o: Operator) -> dict[str, Any]:
    return {
        "id": o.id,
        "email": o.email,
        "name": o.name,
        "role": o.role,
        "disabled": o.disabled_at is not None,
        "disabledAt": o.disabled_at.isoformat() if o.disabled_at else None,
        "lockedUntil": o.locked_until.isoformat() if o.locked_until else None,
        "createdAt": o.created_at.isoformat() if o.created_at else None,
        "createdBy": o.created_by,
        "lastLoginAt": o.last_login_at.isoformat() if o.last_login_at else None,
    }


@router.post("", status_code=201, summary="A new cockpit operator; a generated password is shown once")
async def create(
    body: OperatorIn, rt: Runtime = Depends(runtime), ctx: RequestContext = Depends(context)
) -> dict[str, Any]:
    row, generated = await staff.create_operator(rt, ctx, body.email, body.role, body.name, body.password)
    out = operator_json(row)
    if generated is not None:
        out["password"] = generated
    return out


@router.get("", summary="Every operator, oldest first")
async def list_all(rt: Runtime = Depends(runtime)) -> list[dict[str, Any]]:
    return [operator_json(o) for o in await staff.list_operators(rt)]


@router.post("/{ref}/disable", summary="Disable an operator: no sign-in, open sessions end")
async def disable(
    ref: str = Ref, rt: Runtime = Depends(runtime), ctx: RequestContext = Depends(context)
) -> dict[str, Any]:
    return operator_json(await staff.disable_operator(rt, ctx, ref))


@router.post("/{ref}/enable", summary="Enable a disabled operator, or lift a lockout")
async def enable(
    ref: str = Ref, rt: Runtime = Depends(runtime), ctx: RequestContext = Depends(context)
) -> dict[str, Any]:
    return operator_json(await staff.enable_operator(rt, ctx, ref))
