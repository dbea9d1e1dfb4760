"""API tokens: create (the token is returned once), list, revoke, and find one by its hash."""

from __future__ import annotations

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.context import RequestContext
from core.errors import DomainError, NotFound
from domains.access import rules
from domains.access.models import ApiToken
from domains.audit.services import record


class NameTaken(DomainError):
    status = 409
    kind = "CONFLICT"


async def create_token(
    session: AsyncSession, ctx: RequestContext, name: str, role: str
) -> tuple[ApiToken, str]:
    name = rules.check_name(name)
    parsed = rules.parse_role(role)
    if await session.get(ApiToken, name) is not None:
        raise NameTaken(
            "access.token.name_taken",
            f"A token named {name!r} exists or existed; names are never reused, choose another.",
        )
    token = rules.new_token()
    row = ApiToken(name=name, role=parsed.value, token_sha256=rules.digest(token), created_by=ctx.actor)
    session.add(row)
    record(session, ctx, "ApiTokenCreated", "ApiToken", name, {"role": parsed.value})
    await session.flush()
    await session.refresh(row)
    return row, token


async def list_tokens(session: AsyncSession) -> list[ApiToken]:
    return list(await session.exec(select(ApiToken).order_by(col(ApiToken.created_at), col(ApiToken.name))))


async def revoke_token(session: AsyncSession, ctx: RequestContext, name: str) -> ApiToken:
    row = await session.get(ApiToken, name, with_for_update=True)
    if row is None:
        raise NotFound("access.token.not_found", f"No token is named {name!r}.")
    if row.revoked_at is None:
        await session.exec(  # type: ignore[call-overload]
            update(ApiToken).where(col(ApiToken.name) == name).values(revoked_at=func.now())
        )
        record(session, ctx, "ApiTokenRevoked", "ApiToken", name, {"role": row.role})
        await session.flush()
        await session.refresh(row)
    return row


async def find(session: AsyncSession, token_sha256: str) -> ApiToken | None:
    return (await session.exec(select(ApiToken).where(ApiToken.token_sha256 == token_sha256))).first()


async def touch(session: AsyncSession, name: str) -> None:
    await session.exec(  # type: ignore[call-overload]
        update(ApiToken).where(col(ApiToken.name) == name).values(last_used_at=func.now())
    )
