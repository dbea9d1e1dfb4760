"""Rating: map a mediated record to an allowance and consume it, in request order. Pure.

Balances count whole units (MB, minutes, SMS) in `bundle_balance.consumed`; what is below one unit
lives in `usage.balance_fraction.fine`. Together they are one exact integer in fine units
(`consumed * factor + fine`), so ten thousand 1 KB events consume exactly 10,000 KB (9 MB in
`consumed`, 784 KB in the fraction). A bucket never consumes past its total: the excess of an event
that overflows is recorded as out of bundle, and an exhausted bucket shows `consumed == total`.
Unlimited buckets (total -1) are never decremented.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from core.errors import Conflict, DomainError, InvalidInput, PolicyViolation
from domains.subscription.rules import ACTIVE, BLOCKED, PRIMARY_ALLOWANCE, UNLIMITED
from domains.usage.rules import UNITS, USAGE_BEFORE_LINE_SLACK, MediatedUsage

ROAMING_ALLOWANCE = "data_roaming"
# bundle_balance.unit (catalogue ALLOWANCE_UNITS) -> fine units per balance unit
BALANCE_UNIT_FACTORS = {"mb": 1024, "gb": 1024 * 1024, "minutes": 60, "min": 60, "count": 1}
EXHAUSTED_REASON = "primary_allowance_exhausted"


@dataclass(slots=True)
class Bucket:
    """One bundle balance of a line, locked for this rating run."""

    balance_id: int
    allowance_type: str
    total: int
    consumed: int
    unit: str
    period_start: datetime
    fine: int = 0
    touched: bool = False

    @property
    def factor(self) -> int | None:
        return BALANCE_UNIT_FACTORS.get(self.unit)

    @property
    def unlimited(self) -> bool:
        return self.total == UNLIMITED

    def remaining_fine(self) -> int:
        """Fine units left; only meaningful for a limited bucket with a known unit."""
        factor = self.factor or 1
        return max(self.total * factor - (self.consumed * factor + self.fine), 0)

    @property
    def exhausted(self) -> bool:
        return not self.unlimited and self.remaining_fine() == 0

    def consume(self, quantity: int) -> int:
        """Take `quantity` fine units; returns how many fitted in the bucket."""
        if self.unlimited:
            return quantity
        factor = self.factor or 1
        used = self.consumed * factor + self.fine
        # max(): a bucket already past its total (a lowered total) is left as it is.
        after = max(used, min(self.total * factor, used + quantity))
        if after != used:
            self.consumed, self.fine = divmod(after, factor)
            self.touched = True
        return after - used


@dataclass(slots=True)
class Line:
    subscription_id: str
    msisdn: str
    state: str
    buckets: dict[str, Bucket] = field(default_factory=dict)
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """What an already stored event id stands for: a resend must say the same to count as one."""

    msisdn: str
    usage_type: str
    exact_quantity: Decimal
    roaming: bool
    usage_date: datetime

    @classmethod
    def of(cls, event: MediatedUsage) -> StoredEvent:
        return cls(event.msisdn, event.usage_type, event.exact_quantity, event.roaming, event.usage_date)

    @classmethod
    def from_row(
        cls, msisdn: str, usage_type: str, quantity: Decimal, unit: str, roaming: bool, at: datetime
    ) -> StoredEvent:
        return cls(msisdn, usage_type, quantity * UNITS[usage_type][unit], roaming, at)

    def same_as(self, event: MediatedUsage) -> bool:
        """The same usage: same number, type, exact quantity and roaming flag, and the same time
        when the resend states one (an undated record was stamped when it was first rated)."""
        return (
            self.msisdn == event.msisdn
            and self.usage_type == event.usage_type
            and self.exact_quantity == event.exact_quantity
            and self.roaming == event.roaming
            and (not event.dated or self.usage_date == event.usage_date)
        )


ID_CONFLICT = "usage.event_id.conflict"


def id_conflict(event_id: str) -> Conflict:
    # Says nothing about the stored event: it may be another subscriber's.
    return Conflict(
        ID_CONFLICT,
        f"Event id {event_id} was already used for a different usage record; this one was not rated. "
        "Send a new id for new usage.",
        id=event_id,
    )


@dataclass(frozen=True, slots=True)
class Rated:
    event: MediatedUsage
    subscription_id: str
    allowance_type: str
    in_bundle: int


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    id: str | None
    error: DomainError


@dataclass(slots=True)
class RatingRun:
    rated: list[Rated] = field(default_factory=list)
    duplicates: list[MediatedUsage] = field(default_factory=list)
    # Refused records, the id conflicts (usage.event_id.conflict, 409) among them
    rejections: list[Rejection] = field(default_factory=list)
    # (subscription id, allowance type) of lines this run blocked, in the order it blocked them
    exhausted: list[tuple[str, str]] = field(default_factory=list)


def allowance_for(event: MediatedUsage) -> str:
    """Roaming data draws on the roaming bucket. Voice and SMS have no roaming bucket in the
    catalogue, so a roaming call or SMS is rated on the home allowance (the flag is kept)."""
    if event.roaming and event.usage_type == "data":
        return ROAMING_ALLOWANCE
    return event.usage_type


def rate_in_order(
    events: Iterable[MediatedUsage], lines: Mapping[str, Line], stored: Mapping[str, StoredEvent]
) -> RatingRun:
    """Rate events one after the other, as if each were its own request: an event after the one
    that exhausted a line's data, in the same run, finds the line blocked and is refused. An id
    already stored (or rated earlier in the run) is a duplicate when it says the same, and a
    conflict when it says something else."""
    run = RatingRun()
    rated_ids: dict[str, StoredEvent] = {}
    for event in events:
        if event.id is not None:
            earlier = stored.get(event.id) or rated_ids.get(event.id)
            if earlier is not None:
                if earlier.same_as(event):
                    run.duplicates.append(event)
                else:
                    run.rejections.append(Rejection(event.index, event.id, id_conflict(event.id)))
                continue
        refusal = _refusal(event, lines.get(event.msisdn))
        if refusal is not None:
            run.rejections.append(Rejection(event.index, event.id, refusal))
            continue
        line = lines[event.msisdn]
        allowance = allowance_for(event)
        bucket = line.buckets[allowance]
        in_bundle = bucket.consume(event.quantity)
        run.rated.append(Rated(event, line.subscription_id, allowance, in_bundle))
        if event.id is not None:
            rated_ids[event.id] = StoredEvent.of(event)
        if allowance == PRIMARY_ALLOWANCE and bucket.exhausted:
            line.state = BLOCKED
            run.exhausted.append((line.subscription_id, allowance))
    return run


def _refusal(event: MediatedUsage, line: Line | None) -> DomainError | None:
    if line is None:
        return PolicyViolation(
            "usage.record.subscription_must_exist",
            f"No live subscription has the number {event.msisdn}.",
            msisdn=event.msisdn,
        )
    if line.created_at is not None and event.usage_date < line.created_at - USAGE_BEFORE_LINE_SLACK:
        return InvalidInput(
            "usage.record.usage_date_before_line",
            f"usageDate {event.usage_date.isoformat()} is before the line with {event.msisdn} existed.",
            usageDate=event.usage_date.isoformat(),
        )
    if line.state != ACTIVE:
        return PolicyViolation(
            "usage.record.subscription_must_be_active",
            f"Subscription {line.subscription_id} ({event.msisdn}) is {line.state}; usage is refused.",
            subscriptionId=line.subscription_id,
            state=line.state,
        )
    allowance = allowance_for(event)
    bucket = line.buckets.get(allowance)
    if bucket is None:
        if allowance == ROAMING_ALLOWANCE:
            return PolicyViolation(
                "rating.no_roaming_allowance",
                f"Subscription {line.subscription_id} has no roaming data allowance.",
                subscriptionId=line.subscription_id,
            )
        return PolicyViolation(
            "rating.no_allowance",
            f"Subscription {line.subscription_id} has no {allowance} allowance.",
            subscriptionId=line.subscription_id,
            allowanceType=allowance,
        )
    if bucket.factor is None:
        return PolicyViolation(
            "rating.unit_mismatch",
            f"The {allowance} balance is counted in {bucket.unit!r}, which rating cannot convert to.",
            subscriptionId=line.subscription_id,
            allowanceType=allowance,
        )
    if allowance == ROAMING_ALLOWANCE and bucket.exhausted:
        return PolicyViolation(
            "subscription.usage_rated.roaming_balance_required",
            f"Subscription {line.subscription_id} has no roaming data left; buy a roaming top-up.",
            subscriptionId=line.subscription_id,
        )
    return None
