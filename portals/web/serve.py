"""`python -m portals.<door> [--host H] [--port P]`: one door under uvicorn, for compose and by hand
(`bss up` starts the doors through uvicorn directly)."""

from __future__ import annotations

import argparse


def serve(package: str, port_setting: str) -> None:
    import uvicorn

    from core.settings import get_settings

    settings = get_settings()
    parser = argparse.ArgumentParser(prog=f"python -m {package}")
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=getattr(settings, port_setting))
    args = parser.parse_args()
    uvicorn.run(
        f"{package}.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        access_log=False,
        proxy_headers=True,
    )
