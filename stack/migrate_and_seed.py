"""One-shot migrations and reference data for a deployment: the `migrate` service of docker-compose.yml.

`bss up` does the same at every start (held at stack/gate.py until Postgres is ready); a scaled
deployment runs it once before the API and the workers, so that several replicas never race to
migrate the same database. What it does, and when it skips Alembic or the seeders: stack/prepare.py.
"""

from __future__ import annotations

from core.settings import get_settings
from stack.runner import prepare_database, redact_url


def main() -> None:
    settings = get_settings()
    done = prepare_database(settings)
    print(f"{redact_url(settings.database_url)}: {done}", flush=True)


if __name__ == "__main__":
    main()
