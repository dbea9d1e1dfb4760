"""Catalog tables (schema `catalog`). Money is NUMERIC(12,2) SGD, tax inclusive; windows are
half-open [valid_from, valid_to) and a NULL bound is open-ended."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ARRAY, BigInteger, Column, DateTime, Index, Numeric, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from core.clock import clock

SCHEMA = {"schema": "catalog"}


def _when(nullable: bool = False) -> Any:
    if nullable:
        return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    return Field(default_factory=clock.now, sa_column=Column(DateTime(timezone=True), nullable=False))


class ProductSpecification(SQLModel, table=True):
    __tablename__ = "product_specification"
    __table_args__ = SCHEMA

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    brand: str | None = Field(default=None, max_length=100)
    lifecycle_status: str = Field(default="Active", max_length=20)
    created_at: datetime = _when()
    updated_at: datetime = _when()


class ProductOffering(SQLModel, table=True):
    """A plan: a 30-day bundle sold at the lowest price active at the moment of sale."""

    __tablename__ = "product_offering"
    __table_args__ = SCHEMA

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    spec_id: str = Field(foreign_key="catalog.product_specification.id", max_length=64)
    is_bundle: bool = True
    is_sellable: bool = True
    lifecycle_status: str = Field(default="Active", max_length=20)
    valid_from: datetime | None = _when(nullable=True)
    valid_to: datetime | None = _when(nullable=True)
    created_at: datetime = _when()
    updated_at: datetime = _when()


class ProductOfferingPrice(SQLModel, table=True):
    """One price row; several may overlap in time (a promo is just a cheaper windowed row)."""

    __tablename__ = "product_offering_price"
    __table_args__ = (Index("ix_product_offering_price_offering", "offering_id", "valid_from"), SCHEMA)

    id: str = Field(primary_key=True, max_length=64)
    offering_id: str = Field(foreign_key="catalog.product_offering.id", max_length=64)
    price_type: str = Field(default="recurring", max_length=20)
    recurring_period_length: int = 30
    recurring_period_type: str = Field(default="day", max_length=20)
    amount: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    currency: str = Field(default="SGD", max_length=3)
    valid_from: datetime | None = _when(nullable=True)
    valid_to: datetime | None = _when(nullable=True)
    created_at: datetime = _when()


class BundleAllowance(SQLModel, table=True):
    """What one period of a plan gives: quantity -1 means unlimited."""

    __tablename__ = "bundle_allowance"
    __table_args__ = (UniqueConstraint("offering_id", "allowance_type"), SCHEMA)

    id: str = Field(primary_key=True, max_length=64)
    offering_id: str = Field(foreign_key="catalog.product_offering.id", max_length=64, index=True)
    allowance_type: str = Field(max_length=20)
    quantity: int = Field(sa_column=Column(BigInteger, nullable=False))
    unit: str = Field(max_length=10)


class VasOffering(SQLModel, table=True):
    """A one-off top-up bought against a line; expiry_hours NULL means it lasts the period."""

    __tablename__ = "vas_offering"
    __table_args__ = SCHEMA

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    price_amount: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    currency: str = Field(default="SGD", max_length=3)
    allowance_type: str = Field(max_length=20)
    allowance_quantity: int = Field(sa_column=Column(BigInteger, nullable=False))
    allowance_unit: str = Field(max_length=10)
    expiry_hours: int | None = None
    lifecycle_status: str = Field(default="Active", max_length=20)
    created_at: datetime = _when()


class ServiceSpecification(SQLModel, table=True):
    """A customer-facing (CFS) or resource-facing (RFS) service that a plan decomposes into."""

    __tablename__ = "service_specification"
    __table_args__ = SCHEMA

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=3)  # CFS | RFS
    parameters: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))


class ProductToServiceMapping(SQLModel, table=True):
    __tablename__ = "product_to_service_mapping"
    __table_args__ = SCHEMA

    offering_id: str = Field(primary_key=True, foreign_key="catalog.product_offering.id", max_length=64)
    cfs_spec_id: str = Field(foreign_key="catalog.service_specification.id", max_length=64)
    rfs_spec_ids: list[str] = Field(default_factory=list, sa_column=Column(ARRAY(String(64)), nullable=False))
