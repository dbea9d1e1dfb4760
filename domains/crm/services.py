"""Customers: create, read, update, KYC attestation. Every write adds its audit row to the caller's
transaction. Tickets live in `domains.crm.tickets` and are re-exported here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from core.clock import clock
from core.context import RequestContext
from core.errors import InvalidInput, NotFound, PolicyViolation
from core.ids import random_id
from domains.audit.services import record
from domains.crm import interactions, rules
from domains.crm.models import ContactMedium, Customer, CustomerIdentity, Individual, Party
from domains.crm.tickets import open_ticket, resolve_ticket

__all__ = [
    "CustomerView",
    "attest_kyc",
    "create_customer",
    "customer_query",
    "customer_status",
    "customer_view",
    "get_customer",
    "get_individual",
    "list_customers",
    "load_customer_views",
    "open_ticket",
    "require_active_customer",
    "resolve_ticket",
    "update_customer",
]


@dataclass
class CustomerView:
    """A customer with what every door shows beside it: the person, contact media and KYC identity."""

    customer: Customer
    individual: Individual
    contact_media: list[ContactMedium]
    identity: CustomerIdentity | None

    def active(self, medium_type: str) -> str | None:
        for m in self.contact_media:
            if m.medium_type == medium_type and m.valid_to is None:
                return m.value
        return None

    @property
    def name(self) -> str:
        return self.individual.full_name


# ---------------------------------------------------------------------------------------- create


async def create_customer(
    session: AsyncSession,
    ctx: RequestContext,
    *,
    given_name: str,
    family_name: str,
    email: str | None = None,
    phone: str | None = None,
    date_of_birth: date | None = None,
    status: str = "active",
) -> Customer:
    given_name, family_name = given_name.strip(), family_name.strip()
    if not given_name:
        raise InvalidInput("customer.create.name_required", "A customer needs at least a given name.")
    if not (email and email.strip()) and not (phone and phone.strip()):
        raise PolicyViolation(
            "customer.create.requires_contact_medium", "A customer needs an email address or a phone number."
        )
    if status not in ("active", "pending"):
        raise InvalidInput("customer.create.status_invalid", "A new customer is active or pending.")
    email = rules.normalize_email(email) if email else None
    phone = rules.normalize_phone(phone) if phone else None
    if email:
        await _refuse_taken_email(session, email, "customer.create.email_unique")

    now = clock.now()
    party = Party(id=random_id("PTY"), party_type="individual", created_at=now)
    customer = Customer(
        id=random_id("CUST"),
        party_id=party.id,
        status=status,
        customer_since=now,
        created_at=now,
        updated_at=now,
    )
    session.add(party)
    await session.flush()
    session.add(
        Individual(
            party_id=party.id, given_name=given_name, family_name=family_name, date_of_birth=date_of_birth
        )
    )
    session.add(customer)
    if phone:
        session.add(_medium(party.id, "mobile", phone))
    if email:
        await _add_email(session, party.id, email, "customer.create.email_unique")
    await session.flush()
    record(
        session,
        ctx,
        "customer.created",
        "customer",
        customer.id,
        {"partyId": party.id, "status": status, "hasEmail": bool(email), "hasPhone": bool(phone)},
    )
    interactions.log(
        session, ctx, customer_id=customer.id, reason="customer.created", summary="Customer created"
    )
    return customer


def _medium(party_id: str, medium_type: str, value: str) -> ContactMedium:
    return ContactMedium(
        id=random_id("CM"),
        party_id=party_id,
        medium_type=medium_type,
        value=value,
        is_primary=True,
        valid_from=clock.now(),
    )


async def _refuse_taken_email(session: AsyncSession, email: str, code: str) -> None:
    taken = await session.exec(
        select(ContactMedium.id).where(
            ContactMedium.medium_type == "email",
            col(ContactMedium.valid_to).is_(None),
            func.lower(ContactMedium.value) == email.lower(),
        )
    )
    if taken.first() is not None:
        raise PolicyViolation(code, "That email address already belongs to another customer.")


async def _add_email(session: AsyncSession, party_id: str, email: str, code: str) -> None:
    # The partial unique index is the last word when two signups race for the same address.
    try:
        async with session.begin_nested():
            session.add(_medium(party_id, "email", email))
            await session.flush()
    except IntegrityError:
        raise PolicyViolation(code, "That email address already belongs to another customer.") from None


# ------------------------------------------------------------------------------------------ read


async def get_customer(session: AsyncSession, customer_id: str, *, for_update: bool = False) -> Customer:
    query = select(Customer).where(Customer.id == customer_id)
    if for_update:
        query = query.with_for_update()
    customer = (await session.exec(query)).first()
    if customer is None:
        raise NotFound("customer.not_found", f"No customer {customer_id}.", customer_id=customer_id)
    return customer


async def customer_status(session: AsyncSession, customer_id: str, *, for_update: bool = False) -> str | None:
    """The status of a customer, or None when there is no such customer (for other domains' rules)."""
    query = select(Customer.status).where(Customer.id == customer_id)
    if for_update:
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def require_active_customer(session: AsyncSession, customer_id: str) -> Customer:
    customer = await get_customer(session, customer_id)
    if customer.status != "active":
        raise PolicyViolation(
            "customer.not_active",
            f"Customer {customer_id} is {customer.status}, not active.",
            customer_id=customer_id,
            status=customer.status,
        )
    return customer


def customer_query(
    *, status: str | None = None, name_contains: str | None = None, email: str | None = None
) -> SelectOfScalar[Customer]:
    query = select(Customer).join(Individual, col(Individual.party_id) == col(Customer.party_id))
    if status:
        query = query.where(Customer.status == status)
    if name_contains:
        pattern = "%" + name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        full_name = func.concat(Individual.given_name, " ", Individual.family_name)
        query = query.where(or_(full_name.ilike(pattern), col(Customer.id).ilike(pattern)))
    if email:
        query = query.where(
            col(Customer.party_id).in_(
                select(ContactMedium.party_id).where(
                    ContactMedium.medium_type == "email",
                    func.lower(ContactMedium.value) == email.strip().lower(),
                )
            )
        )
    return query.order_by(col(Customer.customer_since).desc(), col(Customer.id))


async def list_customers(
    session: AsyncSession,
    *,
    status: str | None = None,
    name_contains: str | None = None,
    email: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[Customer]:
    query = customer_query(status=status, name_contains=name_contains, email=email)
    return list((await session.exec(query.offset(offset).limit(limit))).all())


async def load_customer_views(session: AsyncSession, customers: Sequence[Customer]) -> list[CustomerView]:
    """Views for a page of customers in three queries, whatever the page size."""
    party_ids = [c.party_id for c in customers]
    people = {
        i.party_id: i
        for i in (await session.exec(select(Individual).where(col(Individual.party_id).in_(party_ids)))).all()
    }
    media: dict[str, list[ContactMedium]] = {p: [] for p in party_ids}
    rows = await session.exec(
        select(ContactMedium)
        .where(col(ContactMedium.party_id).in_(party_ids))
        .order_by(col(ContactMedium.valid_to).desc().nulls_first(), col(ContactMedium.valid_from))
    )
    for m in rows.all():
        media[m.party_id].append(m)
    identities = {
        i.customer_id: i
        for i in (
            await session.exec(
                select(CustomerIdentity).where(
                    col(CustomerIdentity.customer_id).in_([c.id for c in customers])
                )
            )
        ).all()
    }
    return [CustomerView(c, people[c.party_id], media[c.party_id], identities.get(c.id)) for c in customers]


async def customer_view(session: AsyncSession, customer_id: str) -> CustomerView:
    return (await load_customer_views(session, [await get_customer(session, customer_id)]))[0]


async def get_individual(session: AsyncSession, party_id: str) -> tuple[Individual, CustomerView | None]:
    """The person (TMF632) and, when the party is a customer, its customer view."""
    individual = (await session.exec(select(Individual).where(Individual.party_id == party_id))).first()
    if individual is None:
        raise NotFound("customer.individual.not_found", f"No individual {party_id}.", party_id=party_id)
    customer = (await session.exec(select(Customer).where(Customer.party_id == party_id))).first()
    view = (await load_customer_views(session, [customer]))[0] if customer else None
    return individual, view


# ---------------------------------------------------------------------------------------- update


async def update_customer(
    session: AsyncSession,
    ctx: RequestContext,
    customer_id: str,
    *,
    given_name: str | None = None,
    family_name: str | None = None,
    date_of_birth: date | None = None,
    status: str | None = None,
    status_reason: str | None = None,
    phone: str | None = None,
    email: str | None = None,
) -> Customer:
    """Patch a customer. An email can be *added* when the customer has none; changing an existing
    one is refused (`customer.contact_medium.email_must_use_change_flow`): it needs the verified
    change flow, so a stolen session cannot redirect the account's mail."""
    fields = {
        "given_name": given_name,
        "family_name": family_name,
        "date_of_birth": date_of_birth,
        "status": status,
        "status_reason": status_reason,
        "phone": phone,
        "email": email,
    }
    changed = {k: v for k, v in fields.items() if v is not None}
    if not changed:
        raise InvalidInput("customer.update.no_fields", "Nothing to update: give at least one field.")
    customer = await get_customer(session, customer_id, for_update=True)
    if customer.status == "closed":
        raise PolicyViolation("customer.update.customer_closed", f"Customer {customer_id} is closed.")
    view = (await load_customer_views(session, [customer]))[0]
    now = clock.now()
    audit: dict[str, Any] = {}

    if given_name is not None or family_name is not None or date_of_birth is not None:
        person = view.individual
        if given_name is not None:
            if not given_name.strip():
                raise InvalidInput("customer.update.name_required", "The given name cannot be empty.")
            person.given_name = given_name.strip()
        if family_name is not None:
            person.family_name = family_name.strip()
        if date_of_birth is not None:
            person.date_of_birth = date_of_birth
        session.add(person)
        audit["individual"] = sorted(
            k for k in ("given_name", "family_name", "date_of_birth") if k in changed
        )

    if email is not None:
        new_email = rules.normalize_email(email)
        current = view.active("email")
        if current is None:
            await _refuse_taken_email(session, new_email, "customer.create.email_unique")
            await _add_email(session, customer.party_id, new_email, "customer.create.email_unique")
            audit["email"] = "added"
        elif current.lower() != new_email.lower():
            raise PolicyViolation(
                "customer.contact_medium.email_must_use_change_flow",
                "An existing email address is changed through the verified email-change flow.",
            )

    if phone is not None:
        new_phone = rules.normalize_phone(phone)
        if view.active("mobile") != new_phone:
            for m in view.contact_media:
                if m.medium_type == "mobile" and m.valid_to is None:
                    m.valid_to = now
                    session.add(m)
            session.add(_medium(customer.party_id, "mobile", new_phone))
            audit["phone"] = "replaced"

    if status is not None and status != customer.status:
        if status not in rules.CUSTOMER_STATUSES:
            raise InvalidInput("customer.update.status_invalid", f"Unknown customer status {status!r}.")
        trigger = rules.customer_trigger_to(customer.status, status)
        audit["status"] = {"from": customer.status, "to": status, "trigger": trigger}
        customer.status = rules.CUSTOMER_LIFECYCLE.next(trigger, customer.status)
        if customer.status == "closed":
            # A closed customer is unreachable; ending its media frees the email for a new signup.
            for m in view.contact_media:
                if m.valid_to is None:
                    m.valid_to = now
                    session.add(m)
    if status_reason is not None:
        customer.status_reason = status_reason
        audit["statusReason"] = True

    customer.updated_at = now
    session.add(customer)
    await session.flush()
    record(session, ctx, "customer.updated", "customer", customer.id, audit)
    interactions.log(
        session,
        ctx,
        customer_id=customer.id,
        reason="customer.updated",
        summary=f"Customer updated ({', '.join(sorted(k for k in audit if k != 'customer_id')) or 'no change'})",
    )
    return customer


# ------------------------------------------------------------------------------------------- KYC


async def attest_kyc(
    session: AsyncSession,
    ctx: RequestContext,
    customer_id: str,
    document_type: str,
    document_number: str,
    document_country: str,
    verified_by: str,
    *,
    date_of_birth: date | None = None,
    nationality: str | None = None,
    reference: str | None = None,
    attestation: dict[str, Any] | None = None,
    hmac_secret: bytes,
) -> CustomerIdentity:
    """Record a verified identity document: only its keyed hash (HMAC-SHA256 with the server's
    `hmac_secret`) is kept, one customer per document. The caller verified the provider's signature
    (ops/kyc.py) first."""
    if document_type not in rules.DOCUMENT_TYPES:
        raise InvalidInput(
            "customer.attest_kyc.document_type_invalid",
            f"Document type must be one of {', '.join(rules.DOCUMENT_TYPES)}.",
        )
    if not rules.normalize_document_number(document_number or ""):
        raise InvalidInput("customer.attest_kyc.document_required", "The document number is required.")
    country = document_country.strip().upper()
    if not (2 <= len(country) <= 3 and country.isalpha()):
        raise InvalidInput("customer.attest_kyc.country_invalid", "The document country is an ISO code.")
    customer = (
        await session.exec(select(Customer).where(Customer.id == customer_id).with_for_update())
    ).first()
    if customer is None:
        raise NotFound("customer.attest_kyc.customer_exists", f"No customer {customer_id}.")
    if customer.status == "closed":
        raise PolicyViolation("customer.attest_kyc.customer_closed", f"Customer {customer_id} is closed.")

    digest = rules.document_hash(document_number, country, hmac_secret)
    owner = (
        await session.exec(
            select(CustomerIdentity.customer_id).where(
                CustomerIdentity.document_type == document_type,
                CustomerIdentity.document_number_hash == digest,
            )
        )
    ).first()
    if owner is not None and owner != customer_id:
        raise PolicyViolation(
            "customer.attest_kyc.document_hash_unique_per_tenant",
            "This identity document is already attested for another customer.",
        )

    now = clock.now()
    payload = _scrub(attestation or {}, rules.normalize_document_number(document_number))
    fields: dict[str, Any] = {
        "document_type": document_type,
        "document_number_hash": digest,
        "document_country": country,
        "date_of_birth": date_of_birth,
        "nationality": nationality.upper() if nationality else None,
        "verified_by": verified_by,
        "attestation_payload": payload,
        "verified_at": now,
    }
    # One identity per customer: a re-attestation replaces the document it holds.
    identity = (
        await session.exec(select(CustomerIdentity).where(CustomerIdentity.customer_id == customer_id))
    ).first()
    if identity is None:
        identity = CustomerIdentity(customer_id=customer_id, **fields)
    else:
        for name, value in fields.items():
            setattr(identity, name, value)
    session.add(identity)

    customer.kyc_status = "verified"
    customer.kyc_verified_at = now
    customer.kyc_verification_method = document_type
    customer.kyc_reference = reference or f"hmac:{digest[:12]}"
    customer.updated_at = now
    session.add(customer)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise PolicyViolation(
            "customer.attest_kyc.document_hash_unique_per_tenant",
            "This identity document is already attested for another customer.",
        ) from None
    record(
        session,
        ctx,
        "customer.kyc_attested",
        "customer",
        customer_id,
        {
            "documentType": document_type,
            "documentCountry": country,
            "hashPrefix": digest[:12],
            "verifiedBy": verified_by,
        },
    )
    interactions.log(
        session,
        ctx,
        customer_id=customer_id,
        reason="customer.kyc_attested",
        summary=f"KYC verified by {verified_by}",
    )
    return identity


def _scrub(value: Any, number: str) -> Any:
    """The attestation as the channel sent it, minus anything that spells the document number."""
    if isinstance(value, dict):
        return {
            k: _scrub(v, number)
            for k, v in value.items()
            if k.lower().replace("_", "") not in {"documentnumber", "number", "idnumber", "nric"}
        }
    if isinstance(value, list):
        return [_scrub(v, number) for v in value]
    if isinstance(value, str) and number and number in rules.normalize_document_number(value):
        return "[redacted]"
    return value
