"""`python -m portals.selfserve [--host H] [--port P]`: the self-serve portal under uvicorn
(defaults: BSS_HOST and BSS_PORTAL_PORT)."""

from portals.web.serve import serve

if __name__ == "__main__":
    serve("portals.selfserve", "portal_port")
