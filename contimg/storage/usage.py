"""Where the space goes: bytes on disk of the recorded products by kind and by night."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from pydantic import BaseModel

from contimg.storage.decide import Candidate
from contimg.storage.policy import KINDS


class KindUsage(BaseModel):
    """One kind's products on disk."""

    kind: str
    products: int
    bytes: int


class NightUsage(BaseModel):
    """One night's products on disk, by kind (``night`` None: products of no known night)."""

    night: str | None
    bytes: int
    by_kind: dict[str, int]


class Usage(BaseModel):
    """Bytes on disk by kind and by night."""

    by_kind: list[KindUsage]
    by_night: list[NightUsage]

    @property
    def total(self) -> int:
        """Bytes of every recorded product on disk."""
        return sum(k.bytes for k in self.by_kind)


def usage(candidates: Iterable[Candidate]) -> Usage:
    """Sum the candidates' sizes by kind (every kind listed, in policy order) and by night (newest first)."""
    count: dict[str, int] = defaultdict(int)
    size: dict[str, int] = defaultdict(int)
    nights: dict[str | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for c in candidates:
        count[c.kind] += 1
        size[c.kind] += c.bytes
        nights[c.night.isoformat() if c.night else None][c.kind] += c.bytes
    return Usage(
        by_kind=[KindUsage(kind=k, products=count[k], bytes=size[k]) for k in KINDS],
        by_night=[
            NightUsage(night=night, bytes=sum(kinds.values()), by_kind=dict(kinds))
            for night, kinds in sorted(nights.items(), key=lambda item: item[0] or "", reverse=True)
        ],
    )
