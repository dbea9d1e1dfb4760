"""The number pool and the eSIM profile pool (schema `inventory`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, DateTime, Index, text
from sqlmodel import Field, SQLModel

from domains.inventory.rules import ESIM_STATES, MSISDN_STATUSES


def _when(*, nullable: bool = True) -> datetime | None:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Msisdn(SQLModel, table=True):
    """One mobile number of the pool; `reserved_for` is the business key holding it (e.g. an SO id)."""

    __tablename__ = "msisdn"
    __table_args__ = (
        # The picker reads "lowest available number" straight off this index.
        Index("ix_msisdn_status_msisdn", "status", "msisdn"),
        # One number per holder: a second reservation for the same key must find the first one.
        Index(
            "ux_msisdn_reserved_for",
            "reserved_for",
            unique=True,
            postgresql_where=text("reserved_for IS NOT NULL"),
        ),
        CheckConstraint("msisdn ~ '^[0-9]{8,15}$'", name="ck_msisdn_digits"),
        CheckConstraint(_in("status", MSISDN_STATUSES), name="ck_msisdn_status"),
        {"schema": "inventory"},
    )

    msisdn: str = Field(primary_key=True, max_length=15)
    status: str = Field(default="available", max_length=16)
    reserved_for: str | None = Field(default=None, max_length=64)
    reserved_at: datetime | None = _when()
    reserved_until: datetime | None = _when()
    assigned_to_subscription_id: str | None = Field(default=None, max_length=32, index=True)
    quarantine_until: datetime | None = _when()
    updated_at: datetime | None = _when()


class EsimProfile(SQLModel, table=True):
    """A downloadable SIM profile. The Ki lives in the HSM; only its reference is kept here."""

    __tablename__ = "esim_profile"
    __table_args__ = (
        Index("ix_esim_profile_state_iccid", "profile_state", "iccid"),
        Index(
            "ux_esim_profile_reserved_for",
            "reserved_for",
            unique=True,
            postgresql_where=text("reserved_for IS NOT NULL"),
        ),
        CheckConstraint("iccid ~ '^89[0-9]{17}$'", name="ck_esim_profile_iccid"),
        CheckConstraint("ki_ref ~ '^hsm://ref/[0-9a-f-]{36}$'", name="ck_esim_profile_ki_is_a_reference"),
        CheckConstraint(_in("profile_state", ESIM_STATES), name="ck_esim_profile_state"),
        {"schema": "inventory"},
    )

    iccid: str = Field(primary_key=True, max_length=19)
    imsi: str = Field(unique=True, max_length=15)
    ki_ref: str = Field(max_length=64)
    profile_state: str = Field(default="available", max_length=16)
    smdp_server: str = Field(max_length=255)
    matching_id: str = Field(unique=True, max_length=32)
    activation_code: str = Field(max_length=300)
    reserved_for: str | None = Field(default=None, max_length=64)
    assigned_msisdn: str | None = Field(default=None, max_length=15, index=True)
    assigned_to_subscription_id: str | None = Field(default=None, max_length=32, index=True)
    reserved_at: datetime | None = _when()
    prepared_at: datetime | None = _when()
    downloaded_at: datetime | None = _when()
    installed_at: datetime | None = _when()
    recycled_at: datetime | None = _when()
    created_at: datetime | None = _when()
    updated_at: datetime | None = _when()


class PoolWatermark(SQLModel, table=True):
    """Whether a pool is under its low watermark: the event and the ticket come once per crossing
    (set when the count falls under the threshold, cleared when a reservation finds it back above)."""

    __tablename__ = "pool_watermark"
    __table_args__ = {"schema": "inventory"}

    resource: str = Field(primary_key=True, max_length=16)  # msisdn | esim
    low: bool = False
    available: int = 0
    threshold: int = 0
    ticket_id: str | None = Field(default=None, max_length=32)
    changed_at: datetime | None = _when()
