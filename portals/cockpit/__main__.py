"""`python -m portals.cockpit [--host H] [--port P]`: the operator cockpit under uvicorn
(defaults: BSS_HOST and BSS_COCKPIT_PORT)."""

from portals.web.serve import serve

if __name__ == "__main__":
    serve("portals.cockpit", "cockpit_port")
