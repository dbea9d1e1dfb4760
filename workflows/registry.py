"""Every workflow the worker runs."""

from workflows.esim_provisioning import EsimProvisioningWorkflow
from workflows.esim_rearm import EsimRearmWorkflow
from workflows.port import PortWorkflow
from workflows.product_order import ProductOrderWorkflow
from workflows.promo_claim import PromoClaimWorkflow
from workflows.quarantine import QuarantineReleaseWorkflow
from workflows.service_order import ServiceOrderWorkflow
from workflows.signup_hold import SignupHoldWorkflow
from workflows.subscription import SubscriptionWorkflow
from workflows.ticket_sla import TicketSlaWorkflow

WORKFLOWS: list[type] = [
    ProductOrderWorkflow,
    ServiceOrderWorkflow,
    EsimProvisioningWorkflow,
    SubscriptionWorkflow,
    QuarantineReleaseWorkflow,
    PortWorkflow,
    SignupHoldWorkflow,
    EsimRearmWorkflow,
    PromoClaimWorkflow,
    TicketSlaWorkflow,
]
