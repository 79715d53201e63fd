"""The Jinja2 templates and the filters the pages format numbers and times with."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from contimg.web.auth import Principal

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: a dash for nothing, a few significant figures for a float, UTC for a time."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else "–"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def age(seconds: float | None) -> str:
    """A duration for people: seconds, minutes or hours."""
    if seconds is None:
        return "–"
    s = float(seconds)
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 10:
        return f"{s:.1f} s"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


templates.env.filters["fmt"] = fmt
templates.env.filters["age"] = age
templates.env.filters["urlq"] = lambda v: quote(str(v), safe="")


def page(request: Request, name: str, who: Principal | None, status: int = 200, **context: Any) -> Response:
    """Render a page; every page knows who is looking (to show or hide the operator's buttons)."""
    return templates.TemplateResponse(request, name, {"user": who, **context}, status_code=status)
