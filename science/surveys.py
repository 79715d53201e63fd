"""Radio survey catalogues as observatories keep them: NVSS, FIRST, VLASS and RACS.

Each survey is read from the files it is distributed as (FITS or VOTable tables, or VizieR's CSV and
TSV exports) with astropy; columns are found by the names those releases use, and units come from the
table when it carries them, else from the survey's documented units. Positions may be degrees or
sexagesimal strings. The result is one normalised table, indexed by HEALPix pixel so that a cone or
an image footprint is searched without a scan of the whole sky.

Fluxes are kept at the survey's own frequency; :meth:`SurveySource.flux_at` scales one to our band
with a spectral index (−0.7 unless known), which is what a flux cut at 1.4 GHz compares against.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import ICRS, SkyCoord
from astropy.io.fits.verify import VerifyError
from astropy.table import Table
from astropy.wcs import WCS
from astropy_healpix import HEALPix
from numpy.typing import NDArray
from pydantic import BaseModel

from science.errors import InvalidInputError

# Synchrotron sources average about −0.7; surveys at other frequencies are scaled with it.
DEFAULT_SPECTRAL_INDEX = -0.7
# About 0.92° pixels: a cone of a few degrees touches tens of pixels, a survey of 2 M rows ~40 per pixel.
HEALPIX_NSIDE = 64


class SurveyError(InvalidInputError):
    """A survey file cannot be read or lacks a column the survey needs; the message names the file."""


class Survey(StrEnum):
    """The surveys we read."""

    NVSS = "nvss"
    FIRST = "first"
    VLASS = "vlass"
    RACS = "racs"


@dataclass(frozen=True)
class _Columns:
    """Where a survey's releases keep each quantity, and its units when the table does not say."""

    freq_hz: float
    name: tuple[str, ...]
    ra: tuple[str, ...]
    dec: tuple[str, ...]
    # Integrated flux first; a peak-only release (NVSS as NRAO distributes it) falls back to the peak.
    flux: tuple[str, ...]
    flux_err: tuple[str, ...]
    major: tuple[str, ...]
    minor: tuple[str, ...]
    pa: tuple[str, ...]
    flux_unit: u.UnitBase
    size_unit: u.UnitBase


_SURVEYS: dict[Survey, _Columns] = {
    # NRAO's FITS release (degrees, Jy, sizes in degrees) and VizieR VIII/65 (sexagesimal, mJy, arcsec).
    Survey.NVSS: _Columns(
        freq_hz=1.4e9,
        name=("NVSS", "name"),
        ra=("RA(2000)", "RAJ2000", "RA", "_RAJ2000"),
        dec=("DEC(2000)", "DEJ2000", "DEC", "_DEJ2000"),
        flux=("S1.4", "PEAK INT", "Total_flux", "flux"),
        flux_err=("e_S1.4", "E_Total_flux"),
        major=("MajAxis", "MAJOR AX", "Major"),
        minor=("MinAxis", "MINOR AX", "Minor"),
        pa=("PA", "POSANGLE"),
        flux_unit=u.mJy,
        size_unit=u.arcsec,
    ),
    # The FIRST team's FITS catalogue and VizieR VIII/92: fluxes in mJy, sizes in arcsec.
    Survey.FIRST: _Columns(
        freq_hz=1.4e9,
        name=("FIRST", "name"),
        ra=("RA", "RAJ2000", "_RAJ2000"),
        dec=("DEC", "DEJ2000", "_DEJ2000"),
        flux=("FINT", "Fint", "FPEAK", "Fpeak"),
        flux_err=("RMS", "Rms"),
        major=("MAJOR", "Maj", "DECONV_MAJOR"),
        minor=("MINOR", "Min", "DECONV_MINOR"),
        pa=("POSANG", "PA"),
        flux_unit=u.mJy,
        size_unit=u.arcsec,
    ),
    # The CIRADA component catalogue of the VLASS Quick Look epochs, and VizieR's copy of it.
    Survey.VLASS: _Columns(
        freq_hz=3.0e9,
        name=("Component_name", "CompName", "name"),
        ra=("RA", "RAJ2000", "_RAJ2000"),
        dec=("DEC", "DEJ2000", "_DEJ2000"),
        flux=("Total_flux", "Ftot", "Peak_flux", "Fpeak"),
        flux_err=("E_Total_flux", "e_Ftot"),
        major=("DC_Maj", "Maj"),
        minor=("DC_Min", "Min"),
        pa=("DC_PA", "PA"),
        flux_unit=u.mJy,
        size_unit=u.arcsec,
    ),
    # CASDA's RACS-low source catalogue and VizieR's export of it.
    Survey.RACS: _Columns(
        freq_hz=887.5e6,
        name=("Source_Name", "Source_ID", "Gaussian_ID", "RACS", "name"),
        ra=("RA", "RAJ2000", "_RAJ2000"),
        dec=("Dec", "DEC", "DEJ2000", "_DEJ2000"),
        flux=("Total_flux_Source", "Total_flux", "Ftot", "Total_flux_Gaussian", "Peak_flux", "Fpk"),
        flux_err=("E_Total_flux_Source", "E_Total_flux", "e_Ftot"),
        major=("Maj", "DC_Maj"),
        minor=("Min", "DC_Min"),
        pa=("PA", "DC_PA"),
        flux_unit=u.mJy,
        size_unit=u.arcsec,
    ),
}


class SurveySource(BaseModel):
    """One catalogue row, in the survey's own frequency and our units."""

    survey: Survey
    name: str
    ra_deg: float
    dec_deg: float
    flux_mjy: float
    flux_err_mjy: float | None
    major_arcsec: float | None
    minor_arcsec: float | None
    pa_deg: float | None
    freq_hz: float

    def flux_at(self, freq_hz: float, spectral_index: float = DEFAULT_SPECTRAL_INDEX) -> float:
        """The flux in mJy at ``freq_hz``, scaled from the survey's frequency by a power law."""
        return float(self.flux_mjy * (freq_hz / self.freq_hz) ** spectral_index)


def _column(table: Table, aliases: Sequence[str], where: str, required: bool = True) -> str | None:
    by_lower = {c.lower(): c for c in table.colnames}
    for alias in aliases:
        if alias.lower() in by_lower:
            return by_lower[alias.lower()]
    if required:
        raise SurveyError(
            f"{where}: no column named any of {', '.join(aliases)} (has {', '.join(table.colnames)})"
        )
    return None


def _quantity(
    table: Table, column: str | None, default_unit: u.UnitBase, to: u.UnitBase
) -> NDArray[np.float64]:
    if column is None:
        return np.full(len(table), np.nan)
    col = table[column]
    unit = col.unit if col.unit is not None else default_unit
    try:
        values = np.ma.filled(np.ma.asarray(col, dtype=float), np.nan)
        # Peak fluxes come per beam; for a compact source the number is the flux.
        unit = u.Unit(str(unit).replace("/beam", "").replace("/ beam", ""))
        return np.asarray((values * unit).to_value(to), dtype=float)
    except (ValueError, TypeError, u.UnitConversionError) as exc:
        raise SurveyError(f"column {column!r}: {exc}") from exc


def _angles(table: Table, column: str, unit: u.UnitBase, where: str) -> NDArray[np.float64]:
    col = table[column]
    if col.dtype.kind in "USO":
        texts = [str(v).strip() for v in np.ma.filled(np.ma.asarray(col), "")]
        try:
            if unit is u.hourangle:
                coords = SkyCoord(texts, ["0d"] * len(texts), unit=(u.hourangle, u.deg))
                return np.asarray(coords.ra.deg, dtype=float)
            return np.asarray(SkyCoord(["0h"] * len(texts), texts, unit=(u.hourangle, u.deg)).dec.deg)
        except ValueError as exc:
            raise SurveyError(
                f"{where}: column {column!r} holds a position that is not an angle: {exc}"
            ) from exc
    return _quantity(table, column, u.deg, u.deg)


class SurveyCatalog:
    """One survey in memory, indexed by HEALPix pixel for cone and footprint searches."""

    def __init__(self, survey: Survey, sources: Sequence[SurveySource]):
        self.survey = survey
        self.sources = list(sources)
        self.freq_hz = _SURVEYS[survey].freq_hz
        self._healpix = HEALPix(nside=HEALPIX_NSIDE, order="nested", frame=ICRS())
        ra = np.array([s.ra_deg for s in self.sources], dtype=float)
        dec = np.array([s.dec_deg for s in self.sources], dtype=float)
        self._ra, self._dec = ra, dec
        pixels = self._healpix.lonlat_to_healpix(ra * u.deg, dec * u.deg) if len(ra) else np.array([], int)
        self._order = np.argsort(pixels, kind="stable")
        self._pixels = np.asarray(pixels)[self._order]

    def __len__(self) -> int:
        return len(self.sources)

    def cone(self, ra_deg: float, dec_deg: float, radius_deg: float) -> list[SurveySource]:
        """The sources within ``radius_deg`` of a position, nearest first."""
        if not self.sources:
            return []
        pixels = self._healpix.cone_search_lonlat(ra_deg * u.deg, dec_deg * u.deg, radius_deg * u.deg)
        lo = np.searchsorted(self._pixels, pixels, side="left")
        hi = np.searchsorted(self._pixels, pixels, side="right")
        rows = np.concatenate([self._order[a:b] for a, b in zip(lo, hi, strict=True)]).astype(int)
        if rows.size == 0:
            return []
        centre = SkyCoord(ra_deg * u.deg, dec_deg * u.deg)
        sep = centre.separation(SkyCoord(self._ra[rows] * u.deg, self._dec[rows] * u.deg)).deg
        keep = sep <= radius_deg
        return [self.sources[i] for i in rows[keep][np.argsort(sep[keep], kind="stable")]]

    def in_image(
        self, wcs: WCS, shape: tuple[int, int], min_flux_mjy: float = 0.0, freq_hz: float | None = None
    ) -> list[SurveySource]:
        """The sources inside an image's footprint whose flux at ``freq_hz`` is at least ``min_flux_mjy``.

        ``freq_hz`` defaults to the survey's own frequency; ``shape`` is (ny, nx) of the celestial axes.
        """
        celestial = wcs.celestial
        ny, nx = shape
        centre = celestial.pixel_to_world((nx - 1) / 2.0, (ny - 1) / 2.0)
        corners = celestial.pixel_to_world(np.array([0, nx - 1, 0, nx - 1]), np.array([0, 0, ny - 1, ny - 1]))
        radius = float(np.max(centre.separation(corners).deg)) * 1.01
        chosen = []
        for source in self.cone(float(centre.ra.deg), float(centre.dec.deg), radius):
            x, y = celestial.world_to_pixel(SkyCoord(source.ra_deg * u.deg, source.dec_deg * u.deg))
            inside = -0.5 <= float(x) <= nx - 0.5 and -0.5 <= float(y) <= ny - 0.5
            flux = source.flux_at(freq_hz) if freq_hz is not None else source.flux_mjy
            if inside and flux >= min_flux_mjy:
                chosen.append(source)
        return chosen


def read_survey(path: Path | str, survey: Survey | str) -> SurveyCatalog:
    """Read a survey table (FITS, VOTable, or a VizieR CSV/TSV export) into an indexed catalogue."""
    path = Path(path)
    survey = Survey(survey)
    spec = _SURVEYS[survey]
    if not path.is_file():
        raise SurveyError(f"{path}: no such survey file")
    table = _read_table(path)
    where = f"{path} ({survey.value})"
    ra_col = _column(table, spec.ra, where)
    dec_col = _column(table, spec.dec, where)
    flux_col = _column(table, spec.flux, where)
    assert ra_col is not None and dec_col is not None
    name_col = _column(table, spec.name, where, required=False)
    ra = _angles(table, ra_col, u.hourangle, where)
    dec = _angles(table, dec_col, u.deg, where)
    flux = _quantity(table, flux_col, spec.flux_unit, u.mJy)
    flux_err = _quantity(table, _column(table, spec.flux_err, where, False), spec.flux_unit, u.mJy)
    major = _quantity(table, _column(table, spec.major, where, False), spec.size_unit, u.arcsec)
    minor = _quantity(table, _column(table, spec.minor, where, False), spec.size_unit, u.arcsec)
    pa = _quantity(table, _column(table, spec.pa, where, False), u.deg, u.deg)
    bad = ~(np.isfinite(ra) & np.isfinite(dec) & np.isfinite(flux))
    if bad.all() and len(table):
        raise SurveyError(f"{where}: no row has a finite position and flux")
    names = [str(v).strip() for v in table[name_col]] if name_col else [""] * len(table)
    sources = [
        SurveySource(
            survey=survey,
            name=names[i] or _iau_name(survey, ra[i], dec[i]),
            ra_deg=float(ra[i] % 360.0),
            dec_deg=float(dec[i]),
            flux_mjy=float(flux[i]),
            flux_err_mjy=_finite(flux_err[i]),
            major_arcsec=_finite(major[i]),
            minor_arcsec=_finite(minor[i]),
            pa_deg=_finite(pa[i]),
            freq_hz=spec.freq_hz,
        )
        for i in np.flatnonzero(~bad)
    ]
    return SurveyCatalog(survey, sources)


def _read_table(path: Path) -> Table:
    suffix = "".join(path.suffixes[-2:]).lower()
    try:
        if suffix.endswith((".fits", ".fit", ".fits.gz", ".fit.gz")):
            return Table.read(path, format="fits")
        if suffix.endswith((".xml", ".vot", ".votable")):
            return Table.read(path, format="votable")
        if suffix.endswith(".tsv"):
            return Table.read(path, format="ascii.basic", delimiter="\t", comment="#")
        # VizieR's CSV has a units row and a dashes row under the header when asked for them.
        table = Table.read(path, format="ascii.csv", comment="#")
        while len(table) and all(_is_decoration(str(v)) for v in table[0]):
            table.remove_row(0)
        return _numeric(table)
    except (OSError, ValueError, VerifyError, IndexError) as exc:
        raise SurveyError(f"{path}: not a readable survey table: {exc}") from exc


def _is_decoration(text: str) -> bool:
    """True for a cell of VizieR's units or dashes rows: empty, dashes, a unit, or a sexagesimal format."""
    stripped = text.strip().strip('"')
    if not stripped or set(stripped) <= {"-"} or stripped in {"h:m:s", "d:m:s"}:
        return True
    try:
        u.Unit(stripped)
    except ValueError:
        return False
    return not stripped.replace(".", "", 1).lstrip("+-").isdigit()


def _numeric(table: Table) -> Table:
    """Columns left as text by removed decoration rows, converted back to numbers where they are."""
    for name in table.colnames:
        col = table[name]
        if col.dtype.kind in "US":
            with contextlib.suppress(ValueError):
                table[name] = np.asarray(col, dtype=float)
    return table


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _iau_name(survey: Survey, ra_deg: float, dec_deg: float) -> str:
    coord = SkyCoord(ra_deg * u.deg, dec_deg * u.deg)
    ra = coord.ra.to_string(unit=u.hourangle, sep="", precision=1, pad=True)
    dec = coord.dec.to_string(sep="", precision=0, alwayssign=True, pad=True)
    return f"{survey.value.upper()} J{ra}{dec}"
