"""Business ids taken without a round trip of their own (core/ids.py): several in one statement
(next_ids), or from the sequence inside the INSERT (id_sql); both read as next_id would."""

from __future__ import annotations

from sqlalchemy import text

from core.db import transaction
from core.ids import id_sql, next_id, next_ids


async def test_ids_from_one_statement_or_inside_an_insert_read_as_next_id_would(runtime) -> None:
    async with transaction(runtime.db) as s:
        await s.execute(text("SELECT setval('payment.payment_seq', 999998)"))
        inside = [(await s.execute(text(f"SELECT {id_sql('PAY')}"))).scalar_one() for _ in range(2)]
        after = await next_id(s, "PAY")
        await s.execute(text("SELECT setval('service_ordering.service_seq', 41)"))
        batch = await next_ids(s, "SVC", "PTK", "SVC")
        ptk = await next_id(s, "PTK")
    # Six digits, wider past 999999, like next_id; one sequence each, in the order asked.
    assert inside + [after] == ["PAY-999999", "PAY-1000000", "PAY-1000001"]
    assert batch[0] == "SVC-000042" and batch[2] == "SVC-000043"
    assert int(ptk.removeprefix("PTK-")) == int(batch[1].removeprefix("PTK-")) + 1
