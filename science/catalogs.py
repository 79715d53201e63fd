"""Sky positions for forced photometry: the monitoring-source catalogue CSV and ad-hoc coordinate lists.

The catalogue is a CSV with a header row. Required columns: ``name``, ``ra_deg``, ``dec_deg``.
Optional columns: ``priority`` (integer), ``reference`` (true/false: a stable source used to
normalise fluxes between epochs) and ``flux_mjy`` (expected flux, used to select bright sources).
Blank lines and lines starting with ``#`` are ignored.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from astropy import units as u
from astropy.coordinates import SkyCoord
from pydantic import BaseModel, Field

from science.errors import InvalidInputError

REQUIRED_COLUMNS = ("name", "ra_deg", "dec_deg")
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f", ""}


class CatalogError(InvalidInputError):
    """A catalogue file or coordinate string is malformed; the message names the file/line or the text."""


class SkyPosition(BaseModel):
    """A named position in ICRS degrees."""

    name: str
    ra_deg: float = Field(ge=0.0, lt=360.0)
    dec_deg: float = Field(ge=-90.0, le=90.0)


class MonitoringSource(SkyPosition):
    """A row of the monitoring-source catalogue."""

    priority: int | None = None
    reference: bool = False
    flux_mjy: float | None = None


def _parse_float(text: str, column: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise CatalogError(f"{where}: {column} {text!r} is not a number") from None


def _parse_row(row: dict[str, str], where: str) -> MonitoringSource:
    name = (row.get("name") or "").strip()
    if not name:
        raise CatalogError(f"{where}: empty name")
    ra = _parse_float((row.get("ra_deg") or "").strip(), "ra_deg", where)
    dec = _parse_float((row.get("dec_deg") or "").strip(), "dec_deg", where)
    if not 0.0 <= ra < 360.0:
        raise CatalogError(f"{where}: ra_deg {ra} is outside [0, 360)")
    if not -90.0 <= dec <= 90.0:
        raise CatalogError(f"{where}: dec_deg {dec} is outside [-90, 90]")

    priority_text = (row.get("priority") or "").strip()
    priority = None
    if priority_text:
        try:
            priority = int(priority_text)
        except ValueError:
            raise CatalogError(f"{where}: priority {priority_text!r} is not an integer") from None

    ref_text = (row.get("reference") or "").strip().lower()
    if ref_text not in _TRUE | _FALSE:
        raise CatalogError(f"{where}: reference {ref_text!r} is not true/false")

    flux_text = (row.get("flux_mjy") or "").strip()
    flux = _parse_float(flux_text, "flux_mjy", where) if flux_text else None
    return MonitoringSource(
        name=name, ra_deg=ra, dec_deg=dec, priority=priority, reference=ref_text in _TRUE, flux_mjy=flux
    )


def read_catalog(path: Path | str) -> list[MonitoringSource]:
    """Read a monitoring-source catalogue CSV; errors name the file and line of a bad row."""
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"{path}: no such catalogue file")
    with path.open(newline="") as handle:
        numbered = [
            (lineno, line)
            for lineno, line in enumerate(handle, start=1)
            if line.strip() and not line.lstrip().startswith("#")
        ]
    if not numbered:
        expected = ", ".join(REQUIRED_COLUMNS)
        raise CatalogError(f"{path}: catalogue is empty (expected a header row: {expected})")

    reader = csv.reader(line for _, line in numbered)
    header = [column.strip().lower() for column in next(reader)]
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise CatalogError(
            f"{path} line {numbered[0][0]}: header lacks column(s) {', '.join(missing)} "
            f"(found: {', '.join(header)})"
        )

    sources: list[MonitoringSource] = []
    seen: dict[str, int] = {}
    for (lineno, _), cells in zip(numbered[1:], reader, strict=True):
        where = f"{path} line {lineno}"
        if len(cells) != len(header):
            raise CatalogError(f"{where}: expected {len(header)} fields, found {len(cells)}")
        source = _parse_row(dict(zip(header, cells, strict=True)), where)
        if source.name in seen:
            raise CatalogError(f"{where}: name {source.name!r} already used on line {seen[source.name]}")
        seen[source.name] = lineno
        sources.append(source)
    return sources


def select_bright(sources: Iterable[MonitoringSource], min_mjy: float) -> list[MonitoringSource]:
    """Sources whose catalogue ``flux_mjy`` is at least ``min_mjy``; all must carry a flux."""
    chosen = []
    for source in sources:
        if source.flux_mjy is None:
            raise CatalogError(
                f"source {source.name!r} has no flux_mjy, so a minimum flux cannot be applied; "
                "add a flux_mjy column to the catalogue or drop the minimum"
            )
        if source.flux_mjy >= min_mjy:
            chosen.append(source)
    return chosen


def _parse_angle_pair(text: str) -> tuple[float, float]:
    ra_text, dec_text = (part.strip() for part in text.split(","))
    if ":" in ra_text or "h" in ra_text.lower():
        # Sexagesimal: RA in hours, Dec in degrees.
        coord = SkyCoord(ra_text, dec_text, unit=(u.hourangle, u.deg))
        return float(coord.ra.deg), float(coord.dec.deg)
    return float(ra_text), float(dec_text)


def parse_coords(text: str, prefix: str = "pos") -> list[SkyPosition]:
    """Parse ``"ra,dec; ra,dec"`` (degrees, or sexagesimal RA h:m:s, Dec d:m:s) into named positions."""
    positions = []
    pieces = [piece.strip() for piece in text.split(";") if piece.strip()]
    if not pieces:
        raise CatalogError(f"coordinate list {text!r} is empty; expected 'ra,dec; ra,dec' in degrees")
    for index, piece in enumerate(pieces, start=1):
        if piece.count(",") != 1:
            raise CatalogError(f"coordinate {index} {piece!r}: expected one comma, as in '150.1,50.2'")
        try:
            ra, dec = _parse_angle_pair(piece)
        except ValueError as exc:
            raise CatalogError(f"coordinate {index} {piece!r}: not an RA,Dec pair ({exc})") from None
        if not (0.0 <= ra < 360.0 and -90.0 <= dec <= 90.0):
            raise CatalogError(f"coordinate {index} {piece!r}: RA must be in [0, 360) and Dec in [-90, 90]")
        positions.append(SkyPosition(name=f"{prefix}{index}", ra_deg=ra, dec_deg=dec))
    return positions
