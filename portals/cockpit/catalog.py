"""The catalogue: every plan (retired ones too) with all its price rows and their windows, the one
on sale now, allowances, and the VAS. Every operator reads it at /catalog; an admin edits it at
/admin/catalog (add a plan, add a price with a window, retire a plan), each after a confirm step,
through ops.catalog (whose rules stay the single source)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import Response

from core.errors import InvalidInput
from domains.catalog.rules import ALLOWANCE_UNITS
from ops import catalog, cockpit, workbench
from portals.cockpit.base import (
    ADMIN,
    confirm,
    confirmed,
    context_for,
    decimal,
    done,
    integer,
    moment,
    page,
    runtime_of,
    signed_in,
    text,
)
from portals.web.app import form_data

router = APIRouter()
# The API's catalogue id (api/routers/catalog_admin.py CatalogId).
CATALOG_ID = re.compile(r"^[A-Z][A-Z0-9_]{1,47}$")
EDIT = "/admin/catalog"


def _id(form: dict[str, str], name: str, *, required: bool = True) -> str | None:
    value = form.get(name, "").strip().upper()
    if not value and not required:
        return None
    if not CATALOG_ID.match(value):
        raise InvalidInput(
            "cockpit.catalog.id", f"{name} is 2-48 capitals, digits or _, starting with a letter (PLAN_XL)."
        )
    return value


async def _page(request: Request, editable: bool) -> Response:
    rt = runtime_of(request)
    return page(
        request,
        "catalog.html",
        {
            "plans": await cockpit.all_offerings(rt),
            "vas": await catalog.list_vas(rt),
            "editable": editable,
            "kinds": tuple(ALLOWANCE_UNITS),
            "units": ALLOWANCE_UNITS,
            "flash": request.query_params.get("done"),
        },
    )


@router.get("/catalog")
async def read_only(request: Request) -> Response:
    await signed_in(request)
    return await _page(request, editable=False)


@router.get(EDIT)
async def editable(request: Request) -> Response:
    await signed_in(request, ADMIN)
    return await _page(request, editable=True)


@router.post(f"{EDIT}/offerings")
async def add_offering(request: Request) -> Response:
    op = await signed_in(request, ADMIN)
    form = await form_data(request)
    offering_id = _id(form, "offering_id")
    name = text(form, "name", 200)
    if not name:
        raise InvalidInput("cockpit.form.required", "A plan needs a name.")
    allowances = {k: q for k in ALLOWANCE_UNITS if (q := integer(form, f"allow_{k}")) is not None}
    fields = dict(
        offering_id=offering_id,
        name=name,
        amount=decimal(form, "amount"),
        allowances=allowances,
        price_id=_id(form, "price_id", required=False),
        valid_from=moment(form, "valid_from"),
        valid_to=moment(form, "valid_to"),
    )
    rt = runtime_of(request)
    plan = await workbench.add_offering_plan(rt, **fields)
    if not confirmed(form):
        plan.fields = {k: v for k, v in form.items() if k != "confirmed"}
        return confirm(request, plan, f"{EDIT}/offerings", EDIT)
    await catalog.add_offering(rt, context_for(op), **fields)
    return done(EDIT, f"added {offering_id}")


@router.post(EDIT + "/offerings/{offering_id}/prices")
async def add_price(request: Request, offering_id: str) -> Response:
    op = await signed_in(request, ADMIN)
    form = await form_data(request)
    price_id = _id(form, "price_id")
    amount = decimal(form, "amount")
    valid_from, valid_to = moment(form, "valid_from"), moment(form, "valid_to")
    rt = runtime_of(request)
    plan = await workbench.add_price_plan(rt, offering_id, price_id, amount, valid_from, valid_to)
    if not confirmed(form):
        plan.fields = {k: v for k, v in form.items() if k != "confirmed"}
        return confirm(request, plan, f"{EDIT}/offerings/{offering_id[:64]}/prices", EDIT)
    await catalog.add_price(rt, context_for(op), offering_id[:64], price_id, amount, valid_from, valid_to)
    return done(EDIT, f"added price {price_id} to {offering_id[:64]}")


@router.post(EDIT + "/offerings/{offering_id}/retire")
async def retire(request: Request, offering_id: str) -> Response:
    op = await signed_in(request, ADMIN)
    form = await form_data(request)
    rt = runtime_of(request)
    plan = await workbench.retire_plan(rt, offering_id)
    if not confirmed(form):
        return confirm(request, plan, f"{EDIT}/offerings/{offering_id[:64]}/retire", EDIT)
    await catalog.retire_offering(rt, context_for(op), offering_id[:64])
    return done(EDIT, f"retired {offering_id[:64]}")
