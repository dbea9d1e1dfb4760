"""API tokens and their roles (admin only, like every area api/permissions.py does not list).

The token is in the answer to its creation and nowhere else: only its SHA-256 is stored."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import context, runtime
from core.context import RequestContext
from domains.access.models import ApiToken
from domains.access.rules import ROLES
from domains.access.services import NameTaken
from ops import access
from ops.runtime import Runtime

router = APIRouter(prefix="/bss-api/v1/admin/token", tags=["Access tokens"])

Name = Path(max_length=64, description="The token's name, e.g. portal-web.")


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=2,
        max_length=64,
        description="Lower-case letters, digits, . _ @ -; never reused.",
        examples=["portal-web"],
    )
    role: str = Field(max_length=20, description=f"One of {', '.join(ROLES)}.", examples=["channel"])


def token_json(t: ApiToken, source: str = "database") -> dict[str, Any]:
    return {
        "name": t.name,
        "role": t.role,
        "source": source,
        "createdAt": t.created_at.isoformat() if t.created_at else None,
        "createdBy": t.created_by,
        "lastUsedAt": t.last_used_at.isoformat() if t.last_used_at else None,
        "revokedAt": t.revoked_at.isoformat() if t.revoked_at else None,
        "revoked": t.revoked_at is not None,
    }


@router.post(
    "", status_code=201, summary="A new token with a role; the answer is the only place the token appears"
)
async def create(
    body: TokenIn, request: Request, rt: Runtime = Depends(runtime), ctx: RequestContext = Depends(context)
) -> dict[str, Any]:
    if body.name in request.app.state.tokens.configured_names:
        raise NameTaken(
            "access.token.name_taken", f"A token named {body.name!r} is set in the server's environment."
        )
    row, token = await access.create_token(rt, ctx, body.name, body.role)
    return {**token_json(row), "token": token}


@router.get("", summary="Every token: database tokens, then those set in the server's environment")
async def list_all(request: Request, rt: Runtime = Depends(runtime)) -> list[dict[str, Any]]:
    rows = [token_json(t) for t in await access.list_tokens(rt)]
    for p in sorted(request.app.state.tokens.static.values(), key=lambda p: p.name):
        rows.append(
            {
                "name": p.name,
                "role": p.role.value,
                "source": p.source,
                "createdAt": None,
                "createdBy": None,
                "lastUsedAt": None,
                "revokedAt": None,
                "revoked": False,
            }
        )
    return rows


@router.post(
    "/{name}/revoke", summary="Revoke a token: refused from now on (401); revoking again changes nothing"
)
async def revoke(
    request: Request, name: str = Name, rt: Runtime = Depends(runtime), ctx: RequestContext = Depends(context)
) -> dict[str, Any]:
    if name in request.app.state.tokens.configured_names:
        raise NameTaken(
            "access.token.configured",
            f"The token {name!r} is set in the server's environment; remove it there and restart the API.",
        )
    row = await access.revoke_token(rt, ctx, name)
    request.app.state.tokens.forget(name)
    return token_json(row)
