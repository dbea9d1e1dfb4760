"""Imports every domain's tables, so SQLModel.metadata (and Alembic) sees the whole schema."""

from domains.audit import models as audit_models  # noqa: F401
