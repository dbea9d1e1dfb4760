"""`python -m portals.selfserve [--host H] [--port P]`: the self-serve portal under uvicorn
(defaults: BSS_HOST and BSS_PORTAL_PORT). `bss up` starts it through uvicorn directly."""

from __future__ import annotations

import argparse


def main() -> None:
    import uvicorn

    from core.settings import get_settings

    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m portals.selfserve")
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.portal_port)
    args = parser.parse_args()
    uvicorn.run(
        "portals.selfserve.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        access_log=False,
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
