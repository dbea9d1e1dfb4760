"""Every activity the worker runs, bound to the process's runtime (database, adapters)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.attention import AttentionActivities
from activities.inventory import InventoryActivities
from activities.ordering import OrderActivities
from activities.promotion import PromotionActivities
from activities.provisioning import Network, ProvisioningActivities
from activities.service_ordering import ServiceOrderActivities
from activities.subscription import SubscriptionActivities


def build_activities(runtime: Any, *, network: Any = None, gateway: Any = None) -> list[Callable[..., Any]]:
    """The adapters default to the simulators; tests pass their own (e.g. with fixed faults)."""
    from simulators.network import simulated_network

    sims = network or simulated_network(runtime.settings, runtime.db)
    net = Network(hlr=sims.hlr, pcrf=sims.pcrf, ocs=sims.ocs, smdp=sims.smdp)
    orders = OrderActivities(runtime, gateway or build_gateway(runtime.settings))
    som = ServiceOrderActivities(runtime, net.smdp)
    prov = ProvisioningActivities(runtime, net)
    lines = SubscriptionActivities(runtime, orders.gateway, net.smdp)
    return [
        orders.start_order,
        orders.create_service_order,
        orders.charge_activation,
        orders.refund_charge,
        orders.create_subscription,
        orders.complete_order,
        orders.fail_order,
        orders.cancel_order,
        som.reserve_resources,
        som.release_resources,
        som.complete_service_order,
        som.mark_task_stuck,
        som.mark_task_resolved,
        som.mark_esim_prepared,
        som.record_device_event,
        prov.run_task,
        prov.run_line_task,
        prov.cancel_esim_order,
        prov.deprovision_service_order,
        som.cancel_held_profiles,
        som.give_back_profile,
        som.end_order_line,
        som.order_holdings,
        som.close_task_ticket,
        lines.line_state,
        lines.renew,
        lines.renew_now,
        lines.purchase_vas,
        lines.expire_day_pass,
        lines.schedule_plan_change,
        lines.cancel_plan_change,
        lines.terminate,
        lines.hold_line,
        lines.end_line,
        *_inventory(runtime, net.smdp),
        *_attention(runtime),
        *_porting(runtime, sims),
        *_promotion(runtime),
    ]


def _promotion(runtime: Any) -> list[Callable[..., Any]]:
    promo = PromotionActivities(runtime)
    return [promo.claim_promotion, promo.redeem_promotion, promo.revoke_promotion, promo.order_outcome]


def _inventory(runtime: Any, smdp: Any) -> list[Callable[..., Any]]:
    inventory = InventoryActivities(runtime, smdp)
    return [inventory.release_expired_quarantine, inventory.release_hold, inventory.rearm_at_smdp]


def _porting(runtime: Any, sims: Any) -> list[Callable[..., Any]]:
    from activities.porting import PortingActivities
    from simulators.clearinghouse import SimulatedClearinghouse

    clearinghouse = getattr(sims, "clearinghouse", None) or SimulatedClearinghouse(
        sims.faults, latency_factor=runtime.settings.sim_latency_factor
    )
    port = PortingActivities(runtime, clearinghouse)
    return [
        port.port_view,
        port.move_port,
        port.validate_port_in,
        port.take_number_in,
        port.place_port_order,
        port.port_order_outcome,
        port.port_line_numbers,
        port.swap_line_number,
        port.end_ported_out_line,
    ]


def _attention(runtime: Any) -> list[Callable[..., Any]]:
    attention = AttentionActivities(runtime)
    from activities.crm import CrmActivities

    crm = CrmActivities(runtime)
    return [
        attention.open_attention_ticket,
        attention.close_attention_ticket,
        crm.ticket_sla_state,
        crm.escalate_ticket,
    ]


def build_gateway(settings: Any) -> Any:
    """The card gateway named by BSS_PAYMENT_PROVIDER; an unknown name stops the worker at start.

    The mock talks to its ledger over a pool of its own: it is another system, and a caller
    holding a connection of the worker's pool must never wait on that pool for the gateway's. A
    pool rather than a new connection per call (which cost a TCP connect, the SSL request, the
    SCRAM exchange and a forked backend per charge); no ping before each checkout, as the
    worker's: a connection that died with Postgres fails its call, which the caller retries.
    """
    from core.db import make_engine, make_session_factory
    from domains.payment.gateway import check_provider
    from domains.payment.mock_gateway import MockGateway
    from simulators.faults import FaultRules

    check_provider(settings.payment_provider)
    db = make_session_factory(make_engine(settings.database_url, pool_size=5, pre_ping=False))
    return MockGateway(db, faults=FaultRules(db), timeout=settings.payment_timeout_seconds)
