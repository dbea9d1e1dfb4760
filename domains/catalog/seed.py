"""Reference catalogue (SPEC.md; bss-cli inventory §9): three plans, four VAS top-ups and the
mobile broadband service decomposition. Rows are inserted only when missing, so a re-run changes
nothing and an operator's later edits survive. Seeded windows are open: the reference plans are on
sale whatever the business clock says."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from domains.catalog.models import (
    BundleAllowance,
    ProductOffering,
    ProductOfferingPrice,
    ProductSpecification,
    ProductToServiceMapping,
    ServiceSpecification,
    VasOffering,
)
from domains.catalog.rules import ALLOWANCE_UNITS, UNLIMITED

ORDER = 10

SPEC_ID = "SPEC_MOBILE_PREPAID"
CFS = "SSPEC_CFS_MOBILE_BROADBAND"
RFS = ["SSPEC_RFS_DATA_BEARER", "SSPEC_RFS_VOICE_BEARER"]

# id, name, description, price, data MB, voice min, SMS, roaming MB
PLANS = [
    ("PLAN_S", "Lite", "5 GB data, 100 minutes and 100 SMS every 30 days.", "10.00", 5_120, 100, 100, 0),
    (
        "PLAN_M",
        "Standard",
        "30 GB data, unlimited calls and SMS, 500 MB roaming.",
        "25.00",
        30_720,
        UNLIMITED,
        UNLIMITED,
        500,
    ),
    (
        "PLAN_L",
        "Max",
        "150 GB data, unlimited calls and SMS, 2 GB roaming.",
        "45.00",
        153_600,
        UNLIMITED,
        UNLIMITED,
        2_048,
    ),
]

# id, name, price, allowance type, quantity, expiry hours
VAS = [
    ("VAS_DATA_1GB", "Data Top-Up 1GB", "3.00", "data", 1_024, None),
    ("VAS_DATA_5GB", "Data Top-Up 5GB", "12.00", "data", 5_120, None),
    ("VAS_UNLIMITED_DAY", "Unlimited Data Day Pass", "5.00", "data", UNLIMITED, 24),
    ("VAS_ROAMING_1GB", "Roaming Data 1GB", "8.00", "data_roaming", 1_024, None),
]


def _rows() -> list[tuple[type[SQLModel], list[dict[str, Any]]]]:
    now = clock.now()
    spec = {
        "id": SPEC_ID,
        "name": "Mobile prepaid bundle",
        "description": "A prepaid eSIM line with a 30-day bundle of data, voice, SMS and roaming data.",
        "brand": "BSS-CLI",
        "lifecycle_status": "Active",
        "created_at": now,
        "updated_at": now,
    }
    services = [
        {"id": CFS, "name": "MobileBroadband", "kind": "CFS", "parameters": {"rfs": RFS}},
        {"id": RFS[0], "name": "DataService", "kind": "RFS", "parameters": {"apn": "internet"}},
        {"id": RFS[1], "name": "VoiceService", "kind": "RFS", "parameters": {"volte": True}},
    ]
    offerings, prices, allowances, mappings = [], [], [], []
    for plan_id, name, description, price, data, voice, sms, roaming in PLANS:
        offerings.append(
            {
                "id": plan_id,
                "name": name,
                "description": description,
                "spec_id": SPEC_ID,
                "is_bundle": True,
                "is_sellable": True,
                "lifecycle_status": "Active",
                "created_at": now,
                "updated_at": now,
            }
        )
        prices.append(
            {
                "id": f"PRICE_{plan_id}",
                "offering_id": plan_id,
                "price_type": "recurring",
                "recurring_period_length": 30,
                "recurring_period_type": "day",
                "amount": Decimal(price),
                "currency": "SGD",
                "created_at": now,
            }
        )
        size = plan_id.removeprefix("PLAN_")
        for suffix, kind, quantity in (
            ("DATA", "data", data),
            ("VOICE", "voice", voice),
            ("SMS", "sms", sms),
            ("ROAM", "data_roaming", roaming),
        ):
            allowances.append(
                {
                    "id": f"BA_{size}_{suffix}",
                    "offering_id": plan_id,
                    "allowance_type": kind,
                    "quantity": quantity,
                    "unit": ALLOWANCE_UNITS[kind],
                }
            )
        mappings.append({"offering_id": plan_id, "cfs_spec_id": CFS, "rfs_spec_ids": RFS})
    vas = [
        {
            "id": vas_id,
            "name": name,
            "price_amount": Decimal(price),
            "currency": "SGD",
            "allowance_type": kind,
            "allowance_quantity": quantity,
            "allowance_unit": ALLOWANCE_UNITS[kind],
            "expiry_hours": expiry,
            "lifecycle_status": "Active",
            "created_at": now,
        }
        for vas_id, name, price, kind, quantity, expiry in VAS
    ]
    # parents before children (foreign keys)
    return [
        (ProductSpecification, [spec]),
        (ServiceSpecification, services),
        (ProductOffering, offerings),
        (ProductOfferingPrice, prices),
        (BundleAllowance, allowances),
        (ProductToServiceMapping, mappings),
        (VasOffering, vas),
    ]


async def seed(session: AsyncSession) -> None:
    for model, rows in _rows():
        await session.exec(insert(model).values(rows).on_conflict_do_nothing())
