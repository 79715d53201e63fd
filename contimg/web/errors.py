"""The API's error body and the error responses every route documents in the OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Problem(BaseModel):
    """Why a request failed, in one sentence."""

    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "a value the request gave cannot be used"},
    401: {"model": Problem, "description": "no valid token"},
    403: {"model": Problem, "description": "the action needs the operator role"},
    404: {"model": Problem, "description": "no such task, entry, image, source or alert"},
}

# Postgres text cannot hold a NUL byte: free-text parameters say so in the document.
NO_NUL = r"^[^\x00]*$"
