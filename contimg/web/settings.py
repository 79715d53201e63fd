"""The dashboard's settings, from ``contimg serve`` options and the environment."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from contimg.web.auth import Token, parse_tokens


class WebSettings(BaseModel):
    """What the app needs to run: its database, who may use it, and the live pages' timing."""

    dsn: str
    tokens: list[Token] = Field(min_length=1)
    stall_after_s: float = Field(
        default=1800.0, gt=0, description="freshness banner after no image for this long"
    )
    poll_s: float = Field(default=5.0, gt=0, description="live pages re-read at least this often")
    secure_cookies: bool = Field(default=False, description="mark the login cookie Secure (behind HTTPS)")

    @field_validator("tokens", mode="before")
    @classmethod
    def _parse(cls, value: object) -> object:
        return parse_tokens(value, "CONTIMG_WEB_TOKENS") if isinstance(value, str) else value
