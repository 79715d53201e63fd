"""Blind source finding on a restored image, and what the sources found are: known, or new.

Finding is AegeanTools' (islands seeded at ``seed_sigma`` and grown to ``flood_sigma`` over its BANE
background and noise maps, each island fitted with elliptical Gaussians). Every source found is then
matched against the survey catalogues and the monitored sources; one that matches nothing within the
match radius and is bright enough is a *new source*, reported with its nearest catalogue neighbour so
that an astronomer can judge it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from pydantic import BaseModel

from science.catalogs import SkyPosition
from science.errors import InvalidInputError
from science.fits_image import read_image
from science.surveys import SurveyCatalog

# A new source must stand well clear of the noise: at 10σ a 1024² image has no noise peak to offer.
DEFAULT_NEW_SOURCE_SNR = 10.0
# Positions of 5σ sources scatter by about a fifth of the beam; catalogues are good to a few arcsec.
DEFAULT_MATCH_RADIUS_ARCSEC = 15.0


class SourceFindingError(InvalidInputError):
    """The image cannot be searched; the message names it and why."""


class FoundSource(BaseModel):
    """One component found in an image, with AegeanTools' fit and errors."""

    ra_deg: float
    dec_deg: float
    pos_err_arcsec: float | None
    peak_jy: float
    peak_err_jy: float | None
    flux_jy: float
    flux_err_jy: float | None
    major_arcsec: float
    minor_arcsec: float
    pa_deg: float
    local_rms_jy: float
    snr: float
    fit_flags: int


class Identification(BaseModel):
    """A found source and what it matched: a monitored source, a survey entry, or nothing."""

    source: FoundSource
    matched: bool
    match_kind: str | None = None  # "monitored", "calibrator" or the survey's name
    match_name: str | None = None
    separation_arcsec: float | None = None
    # The nearest survey entry even when it is too far to be the same source: the evidence for "new".
    nearest_survey: str | None = None
    nearest_name: str | None = None
    nearest_separation_arcsec: float | None = None
    nearest_flux_mjy: float | None = None


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) and value >= 0 else None


def find_sources(
    image_path: Path | str, *, seed_sigma: float = 5.0, flood_sigma: float = 4.0
) -> list[FoundSource]:
    """The components AegeanTools finds in ``image_path``, brightest first."""
    # Imported here: AegeanTools configures logging when imported, and only this function needs it.
    from AegeanTools.source_finder import SourceFinder

    image_path = Path(image_path)
    read_image(image_path)  # our own checks first, with their messages: the file, the plane, the beam
    logging.getLogger("AegeanTools").setLevel(logging.WARNING)
    finder = SourceFinder(log=logging.getLogger("AegeanTools"))
    try:
        components = finder.find_sources_in_image(
            str(image_path),
            innerclip=seed_sigma,
            outerclip=flood_sigma,
            cores=1,
            progress=False,
            # Imagers write (Stokes, freq, y, x) cubes with one plane; AegeanTools needs the plane named.
            cube_index=0,
        )
    except (ValueError, IndexError, AssertionError) as exc:
        raise SourceFindingError(f"{image_path}: source finding failed: {exc}") from exc
    found = []
    for c in components:
        rms = float(c.local_rms)
        if not (math.isfinite(c.peak_flux) and math.isfinite(rms) and rms > 0):
            continue
        err_ra = float(c.err_ra) * math.cos(math.radians(c.dec)) * 3600 if c.err_ra > 0 else math.nan
        err_dec = float(c.err_dec) * 3600 if c.err_dec > 0 else math.nan
        found.append(
            FoundSource(
                ra_deg=float(c.ra) % 360.0,
                dec_deg=float(c.dec),
                pos_err_arcsec=_finite(math.hypot(err_ra, err_dec)),
                peak_jy=float(c.peak_flux),
                peak_err_jy=_finite(float(c.err_peak_flux)),
                flux_jy=float(c.int_flux),
                flux_err_jy=_finite(float(c.err_int_flux)),
                major_arcsec=float(c.a),
                minor_arcsec=float(c.b),
                pa_deg=float(c.pa),
                local_rms_jy=rms,
                snr=float(c.peak_flux) / rms,
                fit_flags=int(c.flags),
            )
        )
    return sorted(found, key=lambda s: s.peak_jy, reverse=True)


def identify(
    found: Sequence[FoundSource],
    surveys: Sequence[SurveyCatalog] = (),
    monitored: Sequence[SkyPosition] = (),
    *,
    calibrators: Sequence[SkyPosition] = (),
    radius_arcsec: float = DEFAULT_MATCH_RADIUS_ARCSEC,
    beam_major_arcsec: float | None = None,
) -> list[Identification]:
    """Match each found source to a monitored source or a calibrator first, else to the nearest survey
    entry.

    The match radius is ``radius_arcsec`` or the restoring beam's major axis, whichever is larger: a
    snapshot beam is long, and a bright source's island may be fitted with several components along it.
    """
    radius_arcsec = max(radius_arcsec, beam_major_arcsec or 0.0)
    out = []
    known = [*(("monitored", m) for m in monitored), *(("calibrator", c) for c in calibrators)]
    known_coords = (
        SkyCoord([k.ra_deg for _, k in known] * u.deg, [k.dec_deg for _, k in known] * u.deg)
        if known
        else None
    )
    for source in found:
        here = SkyCoord(source.ra_deg * u.deg, source.dec_deg * u.deg)
        ident = Identification(source=source, matched=False)
        if known_coords is not None:
            separations = here.separation(known_coords).arcsec
            best = int(np.argmin(separations))
            if separations[best] <= radius_arcsec:
                ident.matched = True
                ident.match_kind, position = known[best]
                ident.match_name = position.name
                ident.separation_arcsec = float(separations[best])
        # Look a few radii out, so that a "new" source still shows what lies nearest.
        for survey in surveys:
            near = survey.cone(source.ra_deg, source.dec_deg, 20 * radius_arcsec / 3600)
            if not near:
                continue
            nearest = near[0]
            separation = float(
                here.separation(SkyCoord(nearest.ra_deg * u.deg, nearest.dec_deg * u.deg)).arcsec
            )
            if ident.nearest_separation_arcsec is None or separation < ident.nearest_separation_arcsec:
                ident.nearest_survey = survey.survey.value
                ident.nearest_name = nearest.name
                ident.nearest_separation_arcsec = separation
                ident.nearest_flux_mjy = nearest.flux_mjy
        close = (
            ident.nearest_separation_arcsec is not None and ident.nearest_separation_arcsec <= radius_arcsec
        )
        if not ident.matched and close:
            ident.matched = True
            ident.match_kind = ident.nearest_survey
            ident.match_name = ident.nearest_name
            ident.separation_arcsec = ident.nearest_separation_arcsec
        out.append(ident)
    return out


def new_sources(
    identifications: Sequence[Identification], *, min_snr: float = DEFAULT_NEW_SOURCE_SNR
) -> list[Identification]:
    """The unmatched sources at or above ``min_snr``: candidates for a new-source alert."""
    return [i for i in identifications if not i.matched and i.source.snr >= min_snr]
