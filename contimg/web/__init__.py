"""The web dashboard and the versioned HTTP API (``contimg serve``): server-rendered pages (Jinja2 and
htmx), live updates by server-sent events, and ``/api/v1`` with its OpenAPI document. Pages and API
call the same functions in ``contimg.store`` and ``absurd``."""
