"""The shared foundation of the web doors (portals/selfserve, portals/cockpit).

- app.py: `create_web_app(Door(...), templates_dir)`: FastAPI + Jinja app with sessions, CSRF on
  every unsafe request, error pages, security headers, `/static` and `/health`; `render`,
  `render_form_page`, `form_data`.
- sessions.py: server-side sessions in Postgres (domains/web), `ensure_session`, `start_login`,
  `end`, `update_data`.
- templates/base.html: the layout (skip link, one <main>, phone-width first); error.html.
- static/htmx.min.js: htmx 2.0.11, the unmodified file of the npm package `htmx.org`
  (sha256 d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717), licence in
  static/htmx.LICENSE (0BSD). Nothing is downloaded at run time.
"""
