"""The operator cockpit (port 9002, BSS_COCKPIT_PORT): app.py."""
