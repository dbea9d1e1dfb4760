"""Activities of the subscription workflow: each wraps one lifecycle service in its transaction."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.base import ctx_for, domain_errors
from core.context import RequestContext
from core.db import transaction


@dataclass
class LineRef:
    subscription_id: str


@dataclass
class RenewRequest:
    subscription_id: str
    period_start: str
    idempotency_key: str
    # The line's promotion discounts the renewal and counts down (patch `line-promo-periods`).
    promo: bool = False
    # Answer with the line as the renewal left it (RenewalResult.line; patch `line-renews-in-one-task`).
    with_line: bool = False


@dataclass
class RenewNowRequest:
    subscription_id: str
    idempotency_key: str
    requested_by: RequestContext | None = None
    promo: bool = False


@dataclass
class RenewalResult:
    status: str
    subscription_id: str
    new_period_end: str | None = None
    amount: str | None = None
    offering_id: str | None = None
    payment_id: str | None = None
    reason: str | None = None
    # The line as the renewal left it, when asked (RenewRequest.with_line): no read after it.
    line: LineState | None = None


@dataclass
class VasRequest:
    subscription_id: str
    vas_offering_id: str
    idempotency_key: str
    requested_by: RequestContext | None = None


@dataclass
class VasResult:
    status: str
    vas_purchase_id: str | None = None
    expires_at: str | None = None
    reason: str | None = None


@dataclass
class DayPassExpiry:
    subscription_id: str
    vas_purchase_id: str


@dataclass
class PlanChangeRequest:
    subscription_id: str
    offering_id: str
    requested_by: RequestContext | None = None


@dataclass
class CancelPlanChangeRequest:
    subscription_id: str
    requested_by: RequestContext | None = None


@dataclass
class TerminateRequest:
    subscription_id: str
    reason: str
    requested_by: RequestContext | None = None


@dataclass
class LineHold:
    subscription_id: str
    reason: str  # renewal_pending | renewal_declined
    note: str | None = None
    requested_by: RequestContext | None = None
    period_start: str | None = None  # the unpaid period: a line renewed meanwhile is left alone


@dataclass
class LineState:
    """What the workflow mirrors of the line (the database stays the truth)."""

    subscription_id: str
    state: str
    state_reason: str | None
    offering_id: str
    current_period_end: str
    pending_offering_id: str | None = None
    day_passes: dict[str, str] = field(default_factory=dict)  # vas purchase id -> expires at (ISO)
    balances: list[dict] = field(default_factory=list)
    # The renewal settings (BSS_RENEWAL_*), read here so the workflow never reads settings; 0 in
    # histories from before they existed (the workflow then uses its defaults).
    renewal_grace_seconds: float = 0.0
    renewal_attention_seconds: float = 0.0
    renewal_retry_max_seconds: float = 0.0
    # Only on a test stack (BSS_TEST_CLOCK): the worker's business clock when the line was read.
    business_now: str | None = None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _ctx(requested_by: RequestContext | None = None) -> RequestContext:
    """Who the audit row names: whoever asked through an update, else the workflow itself."""
    acting = ctx_for(activity.info().workflow_id)
    if requested_by is None:
        return acting
    return replace(requested_by, trace_id=requested_by.trace_id or acting.trace_id)


class SubscriptionActivities:
    def __init__(self, runtime, gateway, smdp=None) -> None:
        self.rt = runtime
        self.gateway = gateway
        self.smdp = smdp

    @activity.defn
    @domain_errors
    async def line_state(self, req: LineRef) -> LineState:
        """One statement outside a transaction (no BEGIN and ROLLBACK round trips): the line and
        its running day passes (lifecycle.line_mirror)."""
        from domains.subscription import lifecycle

        async with self.rt.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            mirror = await lifecycle.line_mirror(conn, req.subscription_id)
        return self._mirrored(mirror)

    def _mirrored(self, mirror: dict) -> LineState:
        state = LineState(
            subscription_id=mirror["id"],
            state=mirror["state"],
            state_reason=mirror["stateReason"],
            offering_id=mirror["offeringId"],
            current_period_end=mirror["currentPeriodEnd"],
            pending_offering_id=mirror["pendingOfferingId"],
            day_passes=dict(mirror["dayPasses"]),
        )
        settings = self.rt.settings
        state.renewal_grace_seconds = settings.renewal_grace_days * 86400
        state.renewal_attention_seconds = settings.renewal_attention_days * 86400
        state.renewal_retry_max_seconds = settings.renewal_retry_max_seconds
        if self.rt.settings.test_clock:
            from core.clock import clock

            state.business_now = clock.now().isoformat()
        return state

    @activity.defn
    @domain_errors
    async def renew(self, req: RenewRequest) -> RenewalResult:
        """The scheduled renewal. The line's row is not held while the gateway answers (three
        transactions, see lifecycle.renew_in_steps); a gateway or database error is retried by
        the workflow's policy with the same key, so the period is charged once."""
        from domains.subscription import lifecycle

        out = await lifecycle.renew_in_steps(
            self.rt.db,
            _ctx(),
            subscription_id=req.subscription_id,
            period_start=datetime.fromisoformat(req.period_start),
            idempotency_key=req.idempotency_key,
            gateway=self.gateway,
            promo=req.promo,
            read_line=req.with_line,
        )
        result = _renewal(out)
        if out.line is not None:
            result.line = self._mirrored(out.line)
        return result

    @activity.defn
    @domain_errors
    async def renew_now(self, req: RenewNowRequest) -> RenewalResult:
        from domains.subscription import lifecycle

        out = await lifecycle.renew_in_steps(
            self.rt.db,
            _ctx(req.requested_by),
            subscription_id=req.subscription_id,
            idempotency_key=req.idempotency_key,
            gateway=self.gateway,
            promo=req.promo,
        )
        return _renewal(out)

    @activity.defn
    @domain_errors
    async def hold_line(self, req: LineHold) -> None:
        """Block the line for its unpaid renewal (a local activity: the database only)."""
        from domains.subscription import lifecycle

        async with transaction(self.rt.db) as s:
            await lifecycle.hold_for_renewal(
                s,
                _ctx(req.requested_by),
                subscription_id=req.subscription_id,
                reason=req.reason,
                note=req.note,
            )

    @activity.defn
    @domain_errors
    async def purchase_vas(self, req: VasRequest) -> VasResult:
        from domains.subscription import lifecycle

        async with transaction(self.rt.db) as s:
            out = await lifecycle.purchase_vas(
                s,
                _ctx(req.requested_by),
                subscription_id=req.subscription_id,
                vas_offering_id=req.vas_offering_id,
                idempotency_key=req.idempotency_key,
                gateway=self.gateway,
            )
        status = getattr(out, "status", "applied")
        if status == "declined":
            # The declined payment is on record (its own transaction committed); the line is unchanged.
            raise ApplicationError(
                getattr(out, "reason", None) or "The card on file was declined; nothing was added.",
                type="subscription.vas_purchase.requires_active_cof",
                non_retryable=True,
            )
        return VasResult(
            status,
            getattr(out, "vas_purchase_id", None),
            _iso(getattr(out, "expires_at", None)),
            getattr(out, "reason", None),
        )

    @activity.defn
    @domain_errors
    async def expire_day_pass(self, req: DayPassExpiry) -> None:
        from domains.subscription import lifecycle

        async with transaction(self.rt.db) as s:
            await lifecycle.expire_day_pass(
                s, _ctx(), subscription_id=req.subscription_id, vas_purchase_id=req.vas_purchase_id
            )

    @activity.defn
    @domain_errors
    async def schedule_plan_change(self, req: PlanChangeRequest) -> None:
        from domains.subscription import lifecycle

        async with transaction(self.rt.db) as s:
            await lifecycle.schedule_plan_change(
                s, _ctx(req.requested_by), subscription_id=req.subscription_id, offering_id=req.offering_id
            )

    @activity.defn
    @domain_errors
    async def cancel_plan_change(self, req: CancelPlanChangeRequest) -> None:
        from domains.subscription import lifecycle

        async with transaction(self.rt.db) as s:
            await lifecycle.cancel_plan_change(s, _ctx(req.requested_by), subscription_id=req.subscription_id)

    @activity.defn
    @domain_errors
    async def terminate(self, req: TerminateRequest) -> None:
        from domains.subscription import lifecycle
        from domains.subscription.services import get_subscription

        async with self.rt.db() as s:
            iccid = (await get_subscription(s, req.subscription_id)).iccid
        # The profile goes back to the pool with a new code: take the old one back at the SM-DP+.
        if self.smdp is not None:
            await self.smdp.cancel_order(iccid, attempt=activity.info().attempt)
        async with transaction(self.rt.db) as s:
            await lifecycle.terminate(
                s, _ctx(req.requested_by), subscription_id=req.subscription_id, reason=req.reason
            )

    @activity.defn
    @domain_errors
    async def end_line(self, req: TerminateRequest) -> None:
        """Terminate in the database only (a local activity): the workflow has made the network
        calls before (ProvisioningActivities.cancel_esim_order and run_line_task), so the eSIM
        goes back to the pool only once the SM-DP+ has let its old order go."""
        from domains.subscription import lifecycle

        async with transaction(self.rt.db) as s:
            await lifecycle.terminate(
                s, _ctx(req.requested_by), subscription_id=req.subscription_id, reason=req.reason
            )


def _renewal(out) -> RenewalResult:
    return RenewalResult(
        status=out.status,
        subscription_id=out.subscription_id,
        new_period_end=_iso(out.new_period_end),
        amount=str(out.amount) if out.amount is not None else None,
        offering_id=out.offering_id,
        payment_id=out.payment_id,
        reason=out.reason,
    )
