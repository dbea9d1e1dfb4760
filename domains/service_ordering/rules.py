"""Lifecycles of the service order, its services and provisioning tasks (inventory §4.3–4.5),
and the decomposition of a plan into services."""

from __future__ import annotations

from core.statemachine import StateMachine

# service order
ACKNOWLEDGED = "acknowledged"
IN_PROGRESS = "in_progress"
COMPLETED = "completed"
FAILED = "failed"

service_order_lifecycle = StateMachine(
    "service_order",
    [
        ("start", ACKNOWLEDGED, IN_PROGRESS),
        ("complete", IN_PROGRESS, COMPLETED),
        # Beyond the reference: a reservation that fails (no number left) must fail the order too.
        ("fail", (ACKNOWLEDGED, IN_PROGRESS), FAILED),
    ],
)

# service (CFS / RFS)
DESIGNED = "designed"
RESERVED = "reserved"
ACTIVATED = "activated"
TERMINATED = "terminated"

service_lifecycle = StateMachine(
    "service",
    [
        ("reserve", DESIGNED, RESERVED),
        ("activate", RESERVED, ACTIVATED),
        ("fail", (DESIGNED, RESERVED), FAILED),
        ("terminate", ACTIVATED, TERMINATED),
    ],
)

# provisioning task
PENDING = "pending"
RUNNING = "running"
STUCK = "stuck"

task_lifecycle = StateMachine(
    "provisioning_task",
    [
        # from failed or stuck, starting again is the retry
        ("start", (PENDING, FAILED, STUCK), RUNNING),
        ("complete", RUNNING, COMPLETED),
        ("fail", RUNNING, FAILED),
        ("stuck", RUNNING, STUCK),
        ("resolve", STUCK, COMPLETED),
    ],
)

HLR_PROVISION = "HLR_PROVISION"
PCRF_POLICY_PUSH = "PCRF_POLICY_PUSH"
OCS_BALANCE_INIT = "OCS_BALANCE_INIT"
ESIM_PROFILE_PREPARE = "ESIM_PROFILE_PREPARE"
TASK_TYPES = (HLR_PROVISION, PCRF_POLICY_PUSH, OCS_BALANCE_INIT, ESIM_PROFILE_PREPARE)

# The catalogue maps a plan to service specifications; the network knows them by these names.
SERVICE_NAMES = {
    "SSPEC_CFS_MOBILE_BROADBAND": "MobileBroadband",
    "SSPEC_RFS_DATA_BEARER": "DataService",
    "SSPEC_RFS_VOICE_BEARER": "VoiceService",
}
CFS_NAME = "MobileBroadband"


def service_name(spec_id: str) -> str:
    return SERVICE_NAMES.get(spec_id, spec_id)


def reservation_characteristics(
    name: str, *, msisdn: str, iccid: str, imsi: str, activation_code: str
) -> dict[str, str]:
    """What each service carries of the reserved identity: the CFS all of it, a bearer what it
    needs in the network (the data bearer is keyed on the IMSI, voice on the number)."""
    if name == CFS_NAME:
        return {"msisdn": msisdn, "iccid": iccid, "imsi": imsi, "activationCode": activation_code}
    if name == "DataService":
        return {"msisdn": msisdn, "imsi": imsi}
    return {"msisdn": msisdn}
