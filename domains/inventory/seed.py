"""The starting pools: 1,000 numbers 90000000–90000999 and 1,000 eSIM profiles.

One INSERT … SELECT generate_series each, so a fresh `bss up` seeds in milliseconds and a re-run
adds nothing (and writes no audit row).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from core.clock import clock
from core.context import SYSTEM
from core.settings import get_settings
from domains.audit.services import record

ORDER = 30
POOL_SIZE = 1000

_MSISDNS = """
WITH added AS (
  INSERT INTO inventory.msisdn (msisdn, status, updated_at)
  SELECT (90000000 + g)::text, 'available', :now FROM generate_series(0, :last) g
  ON CONFLICT DO NOTHING RETURNING 1)
SELECT count(*) FROM added
"""

# Matching ids are random (a guessable one would let a stranger download the profile); a clash
# on the unique index would fail the seed loudly rather than skip a profile.
_ESIMS = """
WITH added AS (
  INSERT INTO inventory.esim_profile (iccid, imsi, ki_ref, profile_state, smdp_server, matching_id,
                                      activation_code, created_at, updated_at)
  SELECT '8910101' || lpad(g::text, 12, '0'), '525010000' || lpad(g::text, 6, '0'),
         'hsm://ref/' || gen_random_uuid(), 'available', s.host, m.id, 'LPA:1$' || s.host || '$' || m.id,
         :now, :now
  FROM generate_series(0, :last) g CROSS JOIN (SELECT CAST(:smdp AS text) AS host) s
  CROSS JOIN LATERAL (SELECT upper(substr(md5(gen_random_uuid()::text || g::text), 1, 16)) AS id) m
  ON CONFLICT (iccid) DO NOTHING RETURNING 1)
SELECT count(*) FROM added
"""


async def seed(session: AsyncSession) -> None:
    conn = await session.connection()
    params = {"now": clock.now(), "last": POOL_SIZE - 1}
    numbers = (await conn.execute(text(_MSISDNS), params)).scalar_one()
    profiles = (await conn.execute(text(_ESIMS), params | {"smdp": get_settings().smdp_host})).scalar_one()
    if numbers:
        record(session, SYSTEM, "inventory.msisdn.seeded", "msisdn", "90000000-90000999", {"added": numbers})
    if profiles:
        record(session, SYSTEM, "inventory.esim.seeded", "esim", "8910101*", {"added": profiles})
