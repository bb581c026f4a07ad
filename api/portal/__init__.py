"""The portal: server-rendered pages (Jinja2 templates, htmx for partial updates) over the same domain services as
the API, with gettext catalogs (Babel) for ko / en / zh / vi. Routes are in ``api/routers/portal_*.py``."""
