"""Sky models and their drift-scan visibilities, seen through the DSA-110 primary beam.

Sign convention (docs/instrument.md): V = Σ S·exp(+2πi(u·l + v·m + w·(n−1))), with
uvw = antenna 2 − antenna 1.
Unprojected (drift) data carry no fringe stopping at all: pyuvdata takes their old w as 0 when it phases
them, so a drift visibility is S·exp(+2πi b·s/λ), with b the east-north-up baseline and s the unit vector
to the source. Phasing to s₀ then multiplies by exp(−2πi b·s₀/λ) and leaves the convention above.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.time import Time
from numpy.typing import NDArray
from pydantic import BaseModel, Field, model_validator

from science.beam import SPEED_OF_LIGHT_M_S, airy_response
from science.pointing import enu_unit_vectors

REFERENCE_FREQ_HZ = 1.4e9
_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


class SkySource(BaseModel):
    """A point or elliptical Gaussian source with a power-law spectrum, S(ν) = S₀·(ν/ν₀)^α."""

    name: str
    ra_deg: float
    dec_deg: float = Field(ge=-90, le=90)
    flux_jy: float = Field(description="Flux density at ref_freq_hz (total flux for a Gaussian).")
    spectral_index: float = 0.0
    ref_freq_hz: float = REFERENCE_FREQ_HZ
    kind: Literal["point", "gaussian"] = "point"
    major_fwhm_arcsec: float = Field(default=0.0, ge=0)
    minor_fwhm_arcsec: float = Field(default=0.0, ge=0)
    pa_deg: float = Field(default=0.0, description="Position angle of the major axis, east of north.")

    @model_validator(mode="after")
    def _sizes_match_kind(self) -> SkySource:
        if self.kind == "gaussian" and self.major_fwhm_arcsec <= 0:
            raise ValueError(f"source {self.name}: a gaussian needs major_fwhm_arcsec > 0")
        if self.minor_fwhm_arcsec > self.major_fwhm_arcsec:
            raise ValueError(f"source {self.name}: minor axis is larger than the major axis")
        return self

    def flux_at(self, freq_hz: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """Intrinsic flux density (Jy) at ``freq_hz``."""
        return np.asarray(self.flux_jy * (np.asarray(freq_hz) / self.ref_freq_hz) ** self.spectral_index)

    @property
    def coord(self) -> SkyCoord:
        """ICRS position."""
        return SkyCoord(self.ra_deg * u.deg, self.dec_deg * u.deg, frame="icrs")


def offset_source(
    name: str,
    center_ra_deg: float,
    center_dec_deg: float,
    east_deg: float,
    north_deg: float,
    **fields: object,
) -> SkySource:
    """A source placed ``east_deg``/``north_deg`` (great-circle offsets on the sky) from a centre."""
    center = SkyCoord(center_ra_deg * u.deg, center_dec_deg * u.deg, frame="icrs")
    pos = center.spherical_offsets_by(east_deg * u.deg, north_deg * u.deg)
    return SkySource(name=name, ra_deg=float(pos.ra.deg), dec_deg=float(pos.dec.deg), **fields)


class SourceGeometry:
    """Per-source directions over an observation, computed once and reused for every subband."""

    def __init__(self, sources: list[SkySource], times: Time, beam_center_enu: NDArray[np.float64]) -> None:
        self.sources = sources
        self.direction: NDArray[np.float64] = np.zeros((0, len(times), 3))
        self.beam_offset: NDArray[np.float64] = np.zeros((0, len(times)))
        self.east: NDArray[np.float64] = self.direction
        self.north: NDArray[np.float64] = self.direction
        if not sources:
            return
        coords = SkyCoord([s.ra_deg for s in sources] * u.deg, [s.dec_deg for s in sources] * u.deg)
        self.direction = enu_unit_vectors(coords, times)
        cosang = np.clip(self.direction @ beam_center_enu, -1.0, 1.0)
        self.beam_offset = np.arccos(cosang)
        # Celestial north and east at each source, for orienting Gaussians on the sky.
        step = 1e-4
        nudged = SkyCoord(coords.ra, np.minimum(coords.dec.deg + np.degrees(step), 90.0) * u.deg)
        toward_north = enu_unit_vectors(nudged, times) - self.direction
        north = toward_north - np.sum(toward_north * self.direction, axis=-1, keepdims=True) * self.direction
        self.north = north / np.linalg.norm(north, axis=-1, keepdims=True)
        self.east = np.asarray(np.cross(self.north, self.direction), dtype=np.float64)


def drift_visibilities(
    geometry: SourceGeometry,
    baseline_enu: NDArray[np.float64],
    time_index: NDArray[np.int_],
    freq_hz: NDArray[np.float64],
) -> NDArray[np.complex128]:
    """Model visibilities (Jy) of unprojected data, shape (Nblts, Nfreqs), identical for XX and YY.

    ``baseline_enu`` is antenna 2 − antenna 1 in metres (pyuvdata's unprojected uvw) and
    ``time_index`` gives each row's integration in the geometry's time axis.
    """
    vis = np.zeros((baseline_enu.shape[0], freq_hz.size), dtype=np.complex128)
    inv_wavelength = freq_hz / SPEED_OF_LIGHT_M_S
    for k, source in enumerate(geometry.sources):
        s = geometry.direction[k, time_index]
        delay_m = np.sum(baseline_enu * s, axis=-1)
        beam = airy_response(geometry.beam_offset[k][:, np.newaxis], freq_hz[np.newaxis, :])
        amplitude = source.flux_at(freq_hz)[np.newaxis, :] * beam[time_index]
        if source.kind == "gaussian":
            b_east = np.sum(baseline_enu * geometry.east[k, time_index], axis=-1)
            b_north = np.sum(baseline_enu * geometry.north[k, time_index], axis=-1)
            pa = np.radians(source.pa_deg)
            along_major = b_east * np.sin(pa) + b_north * np.cos(pa)
            along_minor = b_east * np.cos(pa) - b_north * np.sin(pa)
            sig_major = np.radians(source.major_fwhm_arcsec / 3600.0) * _FWHM_TO_SIGMA
            sig_minor = np.radians(source.minor_fwhm_arcsec / 3600.0) * _FWHM_TO_SIGMA
            spread = (sig_major * along_major) ** 2 + (sig_minor * along_minor) ** 2
            amplitude = amplitude * np.exp(-2.0 * np.pi**2 * spread[:, np.newaxis] * inv_wavelength**2)
        vis += amplitude * np.exp(2j * np.pi * delay_m[:, np.newaxis] * inv_wavelength[np.newaxis, :])
    return vis
