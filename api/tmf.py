"""TMF list conventions: offset/limit paging, X-Total-Count / X-Result-Count, `fields` selection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Query, Response
from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from core.errors import InvalidInput

ALWAYS_KEPT = {"id", "href", "@type"}
MAX_LIMIT = 1000


class Paging:
    def __init__(
        self,
        offset: int = Query(0, ge=0, le=10_000_000, description="Index of the first item to return."),
        limit: int = Query(100, ge=1, le=MAX_LIMIT, description="Number of items to return."),
        fields: str | None = Query(None, max_length=500, description="Comma-separated attributes to return."),
    ) -> None:
        self.offset = offset
        self.limit = limit
        self.fields = fields


def select_fields(item: dict[str, Any], fields: str | None) -> dict[str, Any]:
    if not fields:
        return item
    wanted = {f.strip() for f in fields.split(",") if f.strip()} | ALWAYS_KEPT
    return {k: v for k, v in item.items() if k in wanted}


async def page(
    session: AsyncSession, query: SelectOfScalar[Any], paging: Paging, response: Response
) -> Sequence[Any]:
    """Run `query` for one page and set the TMF count headers."""
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    rows = (await session.exec(query.offset(paging.offset).limit(paging.limit))).all()
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Result-Count"] = str(len(rows))
    return rows


def listing(items: list[dict[str, Any]], paging: Paging) -> list[dict[str, Any]]:
    return [select_fields(i, paging.fields) for i in items]


def one(item: dict[str, Any], fields: str | None) -> dict[str, Any]:
    return select_fields(item, fields)


def choice(value: str | None, allowed: Sequence[str], name: str) -> str | None:
    """A filter value must be one of the known ones: a typo is a 400, not an empty list."""
    if value is not None and value not in allowed:
        raise InvalidInput(f"{name}.invalid", f"{name} must be one of {', '.join(allowed)}; got {value!r}.")
    return value
