"""A VLA calibrator list in the published text format, generated with known contents."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord


@dataclass(frozen=True)
class Entry:
    name: str
    ra_deg: float
    dec_deg: float
    l_flux_jy: float | None
    c_flux_jy: float | None
    l_codes: str  # A B C D
    alias: str = ""


def _block(e: Entry) -> str:
    coord = SkyCoord(e.ra_deg * u.deg, e.dec_deg * u.deg)
    ra = coord.ra.to_string(unit=u.hourangle, sep="hms", precision=6, pad=True)
    dec = coord.dec.to_string(sep="dms", precision=6, alwayssign=False, pad=True).replace("m", "'")
    dec = dec.replace("s", '"')
    head = f"{e.name}   J2000  A {ra} {dec}  Aug01  {e.alias}".rstrip()
    rows = [
        head,
        f"{e.name}   B1950  A 00h00m00.000000s 00d00'00.000000\"",
        "-----------------------------------------------------",
        "BAND        A B C D    FLUX(Jy)    UVMIN(kL)  UVMAX(kL)",
        "=====================================================",
        " 90cm    P  S S S S",
    ]
    l_flux = f"{e.l_flux_jy:11.2f}" if e.l_flux_jy is not None else ""
    rows.append(f" 20cm    L  {' '.join(e.l_codes)}{l_flux}")
    if e.c_flux_jy is not None:
        rows.append(f"  6cm    C  P P P P{e.c_flux_jy:11.2f}")
    return "\n".join(rows)


def write_list(path: Path, entries: list[Entry]) -> Path:
    """Write ``entries`` as the VLA list does, one block per source."""
    preamble = "VLA CALIBRATOR LIST (generated for tests)\n\n"
    path.write_text(preamble + "\n\n".join(_block(e) for e in entries) + "\n")
    return path


def sky_of_calibrators(seed: int = 5) -> list[Entry]:
    """About one calibrator per 2° of declination from −40° to +90°, with 3C286 among them."""
    rng = np.random.default_rng(seed)
    entries = [Entry("1331+305", 202.784533, 30.509155, 14.9, 7.41, "PPPP", "3C286")]
    for i, dec in enumerate(np.arange(-40.0, 90.0, 2.0)):
        ra = float(rng.uniform(0, 360))
        flux = float(rng.uniform(1.5, 6.0))
        codes = "PPPP" if i % 7 else "XXXX"  # every seventh is unusable at our resolution
        c_flux = flux * float(rng.uniform(0.4, 1.2)) if i % 3 else None
        l_flux = flux if i % 11 else None  # some have no L-band flux at all
        entries.append(Entry(f"C{i:03d}", ra, float(dec + rng.uniform(-0.5, 0.5)), l_flux, c_flux, codes))
    return entries
