"""One schema per domain, and the sequences behind ORD-/SO-/SUB-/... identifiers.

Revision ID: 0000
Revises:
"""

from alembic import op

revision = "0000"
down_revision = None
branch_labels = None
depends_on = None

SCHEMAS = (
    "catalog", "crm", "inventory", "payment", "ordering",
    "service_ordering", "subscription", "usage", "porting", "provisioning", "audit", "access",
    "notify", "staff", "web", "agent", "knowledge", "cardgw",
)
SEQUENCES = (
    "ordering.product_order_seq", "ordering.order_item_seq",
    "service_ordering.service_order_seq", "service_ordering.service_seq",
    "service_ordering.provisioning_task_seq", "subscription.subscription_seq",
    "payment.payment_method_seq", "payment.payment_seq", "usage.usage_event_seq",
)


def upgrade() -> None:
    for schema in SCHEMAS:
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for seq in SEQUENCES:
        op.execute(f"CREATE SEQUENCE IF NOT EXISTS {seq}")


def downgrade() -> None:
    for seq in SEQUENCES:
        op.execute(f"DROP SEQUENCE IF EXISTS {seq}")
    for schema in reversed(SCHEMAS):
        op.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
