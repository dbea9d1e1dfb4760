"""Inventory state machines and pure rules (no I/O).

MSISDN: a number is sold once at a time. After a line ends it sits in quarantine (90 days by default)
so calls and messages meant for the old owner do not reach a new one; a ported-out number is gone
for good.

eSIM (after SGP.22 ES2+): reserve → prepare (download order confirmed, matching id and activation
code issued) → downloaded → installed by the device. Unlike the reference, profiles come back:
a failed order releases a reserved or prepared profile, and a terminated line recycles an installed
one with a fresh matching id, so an old activation code can never fetch the profile again.
"""

from __future__ import annotations

import re
import secrets

from core.errors import PolicyViolation
from core.statemachine import StateMachine

MSISDN_STATUSES = ("available", "held", "reserved", "assigned", "quarantine", "ported_out")
ESIM_STATES = ("available", "reserved", "prepared", "downloaded", "installed")

MSISDN = StateMachine(
    "msisdn",
    [
        ("reserve", "available", "reserved"),
        ("release", "reserved", "available"),
        # A hold (a signup's 24 h pick, a ported-in number waiting for its order) keeps the number
        # off sale for `reserved_for` (the hold's reference) until an order naming it takes it.
        ("hold", "available", "held"),
        ("release_hold", "held", "available"),
        ("take_hold", "held", "reserved"),
        ("assign", "reserved", "assigned"),
        ("quarantine", "assigned", "quarantine"),
        ("end_quarantine", "quarantine", "available"),
        # The line of a failed order never went live: its number goes straight back on sale.
        ("unassign", "assigned", "available"),
        ("port_out", ("available", "held", "reserved", "assigned", "quarantine"), "ported_out"),
    ],
)

# States in which a profile is held by an order or a line (it carries `reserved_for`).
ESIM_HELD = ("reserved", "prepared", "downloaded", "installed")

ESIM = StateMachine(
    "esim",
    [
        ("reserve", "available", "reserved"),
        ("prepare", "reserved", "prepared"),
        # The install notification may overtake (or replace) the download one.
        ("download", "prepared", "downloaded"),
        ("install", ("prepared", "downloaded"), "installed"),
        # Binding to a line does not move the profile: the device may install before or after.
        *(("assign", s, s) for s in ESIM_HELD),
        ("release", ("reserved", "prepared"), "available"),
        ("recycle", ESIM_HELD, "available"),
        # Re-download (SGP.22 re-arm): a new download order for the same profile.
        ("rearm", ("downloaded", "installed"), "prepared"),
    ],
)

# A repeated or late SM-DP+ notification finds the profile already there or further on: a no-op.
ESIM_ALREADY = {
    "prepare": {"prepared", "downloaded", "installed"},
    "download": {"downloaded", "installed"},
    "install": {"installed"},
}

MSISDN_RE = re.compile(r"^[0-9]{8,15}$")
ICCID_RE = re.compile(r"^89[0-9]{17}$")
PREFIX_RE = re.compile(r"^[0-9]{4,7}$")
MAX_RANGE = 10_000
DEFAULT_QUARANTINE_DAYS = 90
# A signup's number pick is held this long for its order (CONTRACT.md "Number hold").
SIGNUP_HOLD_HOURS = 24
# Pools watched for their low watermark (inventory.low_watermark).
WATCHED_POOLS = ("msisdn", "esim")


def signup_hold_ref(msisdn: str) -> str:
    """The hold reference of a signup's number pick; also its workflow id."""
    return f"signup-hold-{msisdn}"


def crossed_low_watermark(available: int, threshold: int) -> bool:
    """Under the threshold (a threshold of 0 watches nothing)."""
    return threshold > 0 and available < threshold


def is_msisdn(value: str) -> bool:
    return bool(MSISDN_RE.match(value))


def is_iccid(value: str) -> bool:
    return bool(ICCID_RE.match(value))


def check_range(prefix: str, count: int) -> None:
    """Numbers are prefix + a 4-digit index, so a range is at most 10,000 numbers."""
    if not PREFIX_RE.match(prefix) or not 1 <= count <= MAX_RANGE:
        raise PolicyViolation(
            "msisdn.add_range.sane_prefix",
            f"A range needs a prefix of 4 to 7 digits and a count from 1 to {MAX_RANGE:,}; "
            f"got prefix {prefix!r} and count {count}.",
            prefix=prefix,
            count=count,
        )


def new_matching_id() -> str:
    """16 hex characters, upper case as SM-DP+ servers print them; unguessable."""
    return secrets.token_hex(8).upper()


def activation_code(smdp_server: str, matching_id: str) -> str:
    """GSMA SGP.22 LPA string: `LPA:1$<SM-DP+ address>$<matching id>`."""
    return f"LPA:1${smdp_server}${matching_id}"
