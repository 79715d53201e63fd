"""Simulated DSA-110 drift-scan observations: 16 UVH5 subband files plus the truth behind them.

By default the files are what the real correlator writes (docs/instrument.md,
:mod:`science.subband_file`): old-style UVH5, fringestopped to hour angle 0 at the apparent
pointing declination, float32 uvw, channels descending, a 117-antenna table with the correlated subset in
correlator order, ``nsamples`` 96 and no flags. ``layout="unprojected"`` writes pyuvdata's own layout with
raw, unprojected data instead. Name timestamps are jittered per subband. :class:`Faults` injects what real
nights bring: NaNs in the last integration, dead antennas, RFI, a shifted, short or mis-pointed subband.

Gains follow pyuvdata's convention, V_obs = g_ant1 · conj(g_ant2) · V_true (CASA then solves for conj(g)).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import structlog
from astropy import units as u
from astropy.coordinates import AltAz, SkyCoord
from astropy.time import Time
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pyuvdata import Telescope, UVData

from science.beam import airy_response
from science.calibrators import get_calibrator
from science.constants import (
    CHANNEL_WIDTH_HZ,
    CHANNELS_PER_SUBBAND,
    DISH_DIAMETER_M,
    GROUP_TOLERANCE_S,
    INTEGRATION_S,
    INTEGRATIONS_PER_TILE,
    N_STATIONS,
    N_SUBBANDS,
    NOMINAL_SEFD_JY,
    SIDEREAL_DAY_S,
    TELESCOPE_NAME,
    channel_frequency_hz,
    subband_name,
)
from science.errors import InvalidInputError
from science.fringestop import fringestop_phase, uvw_basis
from science.pointing import apparent_dec_deg, meridian_icrs, transit_time
from science.sky_model import (
    SkySource,
    SourceGeometry,
    drift_visibilities,
    offset_source,
)
from science.stations import (
    Station,
    array_location,
    correlator_location,
    load_stations,
    select_stations,
    station_ecef,
    stations_by_number,
)
from science.subband_file import CORRELATOR_NSAMPLES, write_correlator_file

log = structlog.get_logger(__name__)

FILENAME_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
SUBBAND_BANDWIDTH_HZ = CHANNELS_PER_SUBBAND * CHANNEL_WIDTH_HZ
# The scale of simulated correlator output: arbitrary, as the real one's is; calibration takes it out.
RAW_UNITS_PER_JY = 100.0


class GainModel(BaseModel):
    """Random per-antenna, per-polarisation complex gains (rms values of the distributions drawn from)."""

    amplitude_rms: float = Field(default=0.05, ge=0, description="Fractional scatter of |g| about 1.")
    phase_rms_deg: float = Field(default=30.0, ge=0)
    delay_rms_ns: float = Field(
        default=1.0, ge=0, description="Delay phase is referenced to the band centre."
    )
    amplitude_drift_rms_per_hour: float = Field(default=0.02, ge=0)
    phase_drift_rms_deg_per_hour: float = Field(default=10.0, ge=0)


class NoiseModel(BaseModel):
    """Thermal noise: from an SEFD through the radiometer equation, or an explicit sigma."""

    sefd_jy: float = Field(default=NOMINAL_SEFD_JY, gt=0)
    sigma_jy: float | None = Field(
        default=None,
        ge=0,
        description="Per-visibility sigma of the real and imaginary parts; overrides sefd_jy.",
    )


class Faults(BaseModel):
    """What real nights bring, injected on request; the default is a clean observation."""

    model_config = ConfigDict(extra="forbid")

    nan_last_integration: float = Field(
        default=0.0, ge=0, le=1, description="Fraction of baselines whose last integration is NaN."
    )
    dead_stations: list[int] = Field(
        default_factory=list, description="Correlated stations (1-117) whose visibilities are all zero."
    )
    rfi_channels: list[tuple[int, int]] = Field(
        default_factory=list, description="(subband, channel) pairs with persistent narrow-band RFI."
    )
    rfi_bursts: list[tuple[int, int]] = Field(
        default_factory=list, description="(subband, integration) pairs with broadband impulsive RFI."
    )
    rfi_amplitude_jy: float = Field(default=200.0, ge=0)
    shifted_subband: int | None = Field(
        default=None, ge=0, le=15, description="This subband starts one integration late."
    )
    short_subband: int | None = Field(default=None, ge=0, le=15, description="This subband stops early.")
    short_integrations: int = Field(default=1, ge=1, description="How many integrations the short one has.")
    misdeclined_subband: int | None = Field(
        default=None, ge=0, le=15, description="This subband's header carries a pointing dec 0.5° off."
    )


class ObservationConfig(BaseModel):
    """Everything that defines one simulated observation; the same config and seed give the same files."""

    start_time: datetime = Field(description="UTC start of the first integration.")
    dec_deg: float = Field(ge=-90, le=90, description="Pointing declination (ICRS).")
    n_antennas: int = Field(default=96, ge=3, le=N_STATIONS, description="Correlated stations (real: ~96).")
    station_numbers: list[int] | None = Field(
        default=None, description="Explicit stations (1-117); overrides n_antennas."
    )
    n_channels: int = Field(
        default=CHANNELS_PER_SUBBAND,
        ge=1,
        le=CHANNELS_PER_SUBBAND,
        description="Channels per subband; divides 48.",
    )
    n_integrations: int = Field(default=INTEGRATIONS_PER_TILE, ge=1)
    integration_s: float = Field(default=INTEGRATION_S, gt=0)
    sources: list[SkySource] = Field(default_factory=list)
    gains: GainModel | None = Field(default_factory=lambda: GainModel(), description="None for unit gains.")
    noise: NoiseModel | None = Field(
        default_factory=lambda: NoiseModel(), description="None for noiseless data."
    )
    name_jitter_s: float = Field(
        default=GROUP_TOLERANCE_S, ge=0, description="Max |jitter| of file-name times."
    )
    include_autos: bool = True
    layout: Literal["correlator", "unprojected"] = Field(
        default="correlator",
        description="correlator: the real writer's layout (fringestopped); unprojected: pyuvdata's, raw.",
    )
    faults: Faults = Field(default_factory=Faults)
    raw_units_per_jy: float = Field(
        default=RAW_UNITS_PER_JY,
        gt=0,
        description="Correlator units per Jy: real files are uncalibrated; 1 writes data in Jy.",
    )
    seed: int = 0
    gain_seed: int | None = Field(
        default=None,
        description="Seed of the gain draw alone, so that observations can share one set of gains.",
    )

    @field_validator("n_channels")
    @classmethod
    def _divides_subband(cls, value: int) -> int:
        if CHANNELS_PER_SUBBAND % value:
            raise ValueError(f"channels per subband must divide {CHANNELS_PER_SUBBAND}, got {value}")
        return value

    @field_validator("start_time")
    @classmethod
    def _as_utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def stations(self) -> tuple[Station, ...]:
        """The stations of this observation."""
        if self.station_numbers:
            return stations_by_number(self.station_numbers)
        return select_stations(self.n_antennas)

    def times(self) -> Time:
        """Centres of the integrations."""
        offsets = (np.arange(self.n_integrations) + 0.5) * self.integration_s
        return Time(self.start_time) + offsets * u.s

    def mid_time(self) -> Time:
        """The middle of the observation, when the pointing centre transits."""
        return Time(self.start_time) + 0.5 * self.n_integrations * self.integration_s * u.s

    def pointing_center(self) -> tuple[float, float]:
        """ICRS (ra_deg, dec_deg) of the meridian at the pointing declination at the mid-time."""
        return meridian_icrs(self.mid_time(), self.dec_deg)


class SourceTruth(BaseModel):
    """One row of the truth catalogue."""

    name: str
    ra_deg: float
    dec_deg: float
    flux_jy: float
    ref_freq_hz: float
    spectral_index: float
    apparent_flux_jy: float = Field(
        description="Flux at the band centre through the beam, averaged over the drift of the observation."
    )
    kind: str
    major_fwhm_arcsec: float
    minor_fwhm_arcsec: float
    pa_deg: float


class SimulatedObservation(BaseModel):
    """What :func:`simulate_observation` wrote, and the numbers a test needs to check results against."""

    subband_paths: list[Path] = Field(description="sb00 ... sb15, in subband order.")
    sources_csv: Path
    truth_json: Path
    start_time: datetime
    mid_time_mjd: float
    dec_deg: float
    pointing_ra_deg: float
    pointing_dec_deg: float
    band_center_hz: float
    noise_sigma_jy: float
    antenna_names: list[str]
    sources: list[SourceTruth]


def subband_frequencies(n_channels: int) -> list[NDArray[np.float64]]:
    """Channel centres (Hz) of each subband, sb00 first, descending within a subband as the correlator writes.

    The 16 subbands always span the real band: with fewer than 48 channels each simulated channel is the
    average of 48/n_channels adjacent real ones.
    """
    if CHANNELS_PER_SUBBAND % n_channels:
        raise ValueError(f"n_channels must divide {CHANNELS_PER_SUBBAND}, got {n_channels}")
    result = []
    for index in range(N_SUBBANDS):
        fine = np.array([channel_frequency_hz(index, j) for j in range(CHANNELS_PER_SUBBAND)])
        result.append(np.asarray(fine.reshape(n_channels, -1).mean(axis=1), dtype=np.float64))
    return result


def band_center_hz() -> float:
    """Middle of the simulated band."""
    return float(
        (channel_frequency_hz(0, 0) + channel_frequency_hz(N_SUBBANDS - 1, CHANNELS_PER_SUBBAND - 1)) / 2
    )


def noise_sigma_jy(config: ObservationConfig) -> float:
    """Per-visibility sigma of the real and imaginary parts, SEFD/√(2·Δν·τ), or the explicit value."""
    if config.noise is None:
        return 0.0
    if config.noise.sigma_jy is not None:
        return config.noise.sigma_jy
    channel_width = SUBBAND_BANDWIDTH_HZ / config.n_channels
    return float(config.noise.sefd_jy / np.sqrt(2.0 * channel_width * config.integration_s))


def _draw_gains(
    rng: np.random.Generator, n_ant: int, model: GainModel | None
) -> dict[str, NDArray[np.float64]]:
    shape = (n_ant, 2)
    if model is None:
        zeros = np.zeros(shape)
        return {
            "amplitude": np.ones(shape),
            "phase_deg": zeros,
            "delay_ns": zeros,
            "amplitude_drift_per_hour": zeros,
            "phase_drift_deg_per_hour": zeros,
        }
    return {
        "amplitude": 1.0 + model.amplitude_rms * rng.standard_normal(shape),
        "phase_deg": model.phase_rms_deg * rng.standard_normal(shape),
        "delay_ns": model.delay_rms_ns * rng.standard_normal(shape),
        "amplitude_drift_per_hour": model.amplitude_drift_rms_per_hour * rng.standard_normal(shape),
        "phase_drift_deg_per_hour": model.phase_drift_rms_deg_per_hour * rng.standard_normal(shape),
    }


def _gain_values(
    gains: dict[str, NDArray[np.float64]],
    hours: NDArray[np.float64],
    freq_hz: NDArray[np.float64],
    ref_hz: float,
) -> NDArray[np.complex128]:
    """Complex gains, shape (Nant, Ntimes, Nfreqs, Npols)."""
    amp = gains["amplitude"][:, None, None, :] * (
        1.0 + gains["amplitude_drift_per_hour"][:, None, None, :] * hours[None, :, None, None]
    )
    phase = (
        np.radians(gains["phase_deg"])[:, None, None, :]
        + np.radians(gains["phase_drift_deg_per_hour"])[:, None, None, :] * hours[None, :, None, None]
        + 2e-9 * np.pi * gains["delay_ns"][:, None, None, :] * (freq_hz - ref_hz)[None, None, :, None]
    )
    return np.asarray(amp * np.exp(1j * phase))


def correlator_order(stations: tuple[Station, ...]) -> list[int]:
    """Antenna numbers in the order a correlator lists them: not sorted, so ant_1 > ant_2 on many rows.

    A fixed permutation (the same stations always give the same order).
    """
    numbers = [s.antenna_number for s in stations]
    permutation = np.random.default_rng(len(numbers)).permutation(len(numbers))
    return [numbers[i] for i in permutation]


def _template(config: ObservationConfig, stations: tuple[Station, ...], times: Time) -> UVData:
    location = array_location()
    origin = np.array([location.x.to_value(u.m), location.y.to_value(u.m), location.z.to_value(u.m)])
    telescope = Telescope.new(
        name=TELESCOPE_NAME,
        location=location,
        antenna_positions=station_ecef(stations) - origin,
        antenna_names=[s.name for s in stations],
        antenna_numbers=[s.antenna_number for s in stations],
        instrument="DSA-110",
        antenna_diameters=np.full(len(stations), DISH_DIAMETER_M),
        feeds=["x", "y"],
        mount_type="alt-az",
        update_from_known=False,
    )
    numbers = (
        correlator_order(stations) if config.layout == "correlator" else [s.antenna_number for s in stations]
    )
    first = 0 if config.include_autos else 1
    antpairs = [(a, b) for i, a in enumerate(numbers) for b in numbers[i + first :]]
    return UVData.new(
        freq_array=subband_frequencies(config.n_channels)[0],
        polarization_array=["xx", "yy"],
        telescope=telescope,
        times=times.jd,
        antpairs=antpairs,
        do_blt_outer=True,
        time_axis_faster_than_bls=False,
        integration_time=config.integration_s,
        channel_width=SUBBAND_BANDWIDTH_HZ / config.n_channels,
        empty=True,
        vis_units="uncalib",
    )


def _move_to_correlator_site(uvd: UVData) -> None:
    """Re-reference raw (unprojected) data to the correlator's site, as its files are.

    Raw visibilities depend only on the baselines and the sky, so only the metadata change.
    """
    site = correlator_location()
    origin = np.array([site.x.to_value(u.m), site.y.to_value(u.m), site.z.to_value(u.m)])
    absolute = uvd.telescope.antenna_positions + np.array(
        [
            uvd.telescope.location.x.to_value(u.m),
            uvd.telescope.location.y.to_value(u.m),
            uvd.telescope.location.z.to_value(u.m),
        ]
    )
    uvd.telescope.location = site
    uvd.telescope.antenna_positions = absolute - origin
    uvd.set_lsts_from_time_array()
    uvd.set_uvws_from_antenna_positions()


def _jittered_stamps(config: ObservationConfig, rng: np.random.Generator) -> list[str]:
    jitter = rng.uniform(-config.name_jitter_s, config.name_jitter_s, N_SUBBANDS)
    return [(config.start_time + timedelta(seconds=float(j))).strftime(FILENAME_TIME_FORMAT) for j in jitter]


def _subband_time_indices(config: ObservationConfig, index: int) -> NDArray[np.int_]:
    """Integrations of the simulated grid (one longer if a subband is shifted) that subband ``index`` has."""
    faults = config.faults
    n = config.n_integrations
    if faults.shifted_subband == index:
        return np.arange(1, n + 1)
    if faults.short_subband == index:
        return np.arange(min(faults.short_integrations, n))
    return np.arange(n)


def _inject_faults(
    config: ObservationConfig,
    index: int,
    data: NDArray[np.complex128],
    row_time: NDArray[np.int_],
    a1: NDArray[np.int_],
    a2: NDArray[np.int_],
    rng: np.random.Generator,
) -> None:
    faults = config.faults
    last = config.n_integrations - 1
    if faults.nan_last_integration > 0:
        rows = np.flatnonzero(row_time == last)
        hit = rows[rng.random(rows.size) < faults.nan_last_integration]
        data[hit] = np.nan
    cross = a1 != a2
    amplitude = faults.rfi_amplitude_jy
    for subband, channel in faults.rfi_channels:
        if subband == index and 0 <= channel < data.shape[1]:
            phase = np.exp(2j * np.pi * rng.random(int(cross.sum())))
            data[cross, channel] += amplitude * phase[:, None]
    for subband, integration in faults.rfi_bursts:
        if subband == index:
            rows = cross & (row_time == integration)
            phase = np.exp(2j * np.pi * rng.random((int(rows.sum()), data.shape[1])))
            data[rows] += amplitude * phase[:, :, None]
    dead = [n - 1 for n in faults.dead_stations]
    if dead:  # last: a dead antenna shows no RFI either
        data[np.isin(a1, dead) | np.isin(a2, dead)] = 0.0


def simulate_observation(config: ObservationConfig, out_dir: Path) -> SimulatedObservation:
    """Write the 16 subband files of ``config`` and its truth files into ``out_dir``.

    Returns the paths written and the truth (pointing, noise, sources) to check results against.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    stations = config.stations()
    n_grid = config.n_integrations + (1 if config.faults.shifted_subband is not None else 0)
    offsets = (np.arange(n_grid) + 0.5) * config.integration_s
    times = Time(config.start_time) + offsets * u.s
    mid = config.mid_time()
    ref_hz = band_center_hz()
    ra0, dec0 = config.pointing_center()
    center = SkyCoord(ra0 * u.deg, dec0 * u.deg)
    # The dishes stay at the alt/az of the pointing centre at mid-time for the whole drift scan, and the
    # correlator fringestops towards that same fixed (hour angle 0, apparent dec) direction.
    location = array_location()
    beam_altaz = center.transform_to(AltAz(obstime=mid, location=location))
    alt, az = beam_altaz.alt.rad, beam_altaz.az.rad
    beam_enu = np.array([np.cos(alt) * np.sin(az), np.cos(alt) * np.cos(az), np.sin(alt)])
    pointing_dec_rad = float(np.radians(apparent_dec_deg(ra0, dec0, mid)))
    geometry = SourceGeometry(list(config.sources), times, beam_enu)

    gain_rng = rng if config.gain_seed is None else np.random.default_rng(config.gain_seed)
    gains = _draw_gains(gain_rng, len(stations), config.gains)
    stamps = _jittered_stamps(config, rng)
    sigma = noise_sigma_jy(config)
    hours = (times - mid).to_value(u.hour)

    uvd = _template(config, stations, times)
    ant_index = {s.antenna_number: i for i, s in enumerate(stations)}
    row_a1 = np.array([ant_index[a] for a in uvd.ant_1_array])
    row_a2 = np.array([ant_index[a] for a in uvd.ant_2_array])
    row_time = np.searchsorted(np.unique(uvd.time_array), uvd.time_array)
    autos = row_a1 == row_a2
    fringestop_uvw = uvd.uvw_array @ uvw_basis(beam_enu, location.lat.rad).T
    all_ecef = station_ecef(load_stations())

    paths = []
    for index, freqs in enumerate(subband_frequencies(config.n_channels)):
        model = drift_visibilities(geometry, uvd.uvw_array, row_time, freqs)
        g = _gain_values(gains, hours, freqs, ref_hz)
        data = g[row_a1, row_time] * np.conj(g[row_a2, row_time]) * model[:, :, None]
        if config.noise is not None:
            data[autos] += (np.abs(g[row_a1[autos], row_time[autos]]) ** 2) * config.noise.sefd_jy
            noise = rng.standard_normal(data.shape) + 1j * rng.standard_normal(data.shape)
            noise[autos] = np.sqrt(2.0) * noise[autos].real
            data += sigma * noise
        # Autocorrelations are real by construction; drop rounding residue so pyuvdata accepts them.
        data[autos] = data[autos].real
        _inject_faults(config, index, data, row_time, uvd.ant_1_array, uvd.ant_2_array, rng)
        data *= config.raw_units_per_jy
        keep = np.isin(row_time, _subband_time_indices(config, index))
        path = out_dir / f"{stamps[index]}_{subband_name(index)}.hdf5"
        if config.layout == "correlator":
            dec_rad = pointing_dec_rad
            if config.faults.misdeclined_subband == index:
                dec_rad += float(np.radians(0.5))
            data *= fringestop_phase(fringestop_uvw[:, 2], freqs)[:, :, None]
            write_correlator_file(
                path,
                times_jd=uvd.time_array[keep],
                integration_s=config.integration_s,
                ant_1=uvd.ant_1_array[keep],
                ant_2=uvd.ant_2_array[keep],
                uvw_m=fringestop_uvw[keep],
                freq_hz=freqs,
                channel_width_hz=SUBBAND_BANDWIDTH_HZ / config.n_channels,
                visdata=data[keep].astype(np.complex64),
                nsamples=np.full(data[keep].shape, CORRELATOR_NSAMPLES, dtype=np.float32),
                antenna_positions_ecef=all_ecef,
                pointing_dec_rad=dec_rad,
            )
        else:
            part = uvd.select(blt_inds=np.flatnonzero(keep), inplace=False)
            part.freq_array = freqs
            part.data_array = data[keep].astype(np.complex64)
            part.flag_array = np.zeros(part.data_array.shape, dtype=bool)
            part.nsample_array = np.ones(part.data_array.shape, dtype=np.float32)
            part.extra_keywords["phase_center_dec"] = pointing_dec_rad
            _move_to_correlator_site(part)
            part.write_uvh5(str(path), clobber=True, run_check=False)
        paths.append(path)

    nominal = config.start_time.strftime(FILENAME_TIME_FORMAT)
    truths = [
        SourceTruth(
            **s.model_dump(),
            apparent_flux_jy=_drift_apparent_flux(s, geometry, k, config.n_integrations, ref_hz),
        )
        for k, s in enumerate(config.sources)
    ]
    sources_csv = out_dir / f"{nominal}_sources.csv"
    _write_sources_csv(sources_csv, truths)
    truth_json = out_dir / f"{nominal}_truth.json"
    truth = {
        "convention": "V_obs = raw_units_per_jy * g_ant1 * conj(g_ant2) * V_true;"
        " g = amplitude*(1 + amplitude_drift*dt_h)"
        " * exp(i*(phase + phase_drift*dt_h + 2*pi*(freq - ref_freq)*delay)); dt_h from mid-time",
        "ref_freq_hz": ref_hz,
        "mid_time_mjd": mid.mjd,
        "pointing_ra_deg": ra0,
        "pointing_dec_deg": dec0,
        "noise_sigma_jy": sigma,
        "raw_units_per_jy": config.raw_units_per_jy,
        "gains": [
            {"antenna_name": s.name, "antenna_number": s.antenna_number, "pol": pol}
            | {key: float(values[i, p]) for key, values in gains.items()}
            for i, s in enumerate(stations)
            for p, pol in enumerate(("XX", "YY"))
        ],
        "config": json.loads(config.model_dump_json()),
    }
    truth_json.write_text(json.dumps(truth, indent=1))
    log.info(
        "simulated observation", out_dir=str(out_dir), start=nominal, n_ant=len(stations), sigma_jy=sigma
    )
    return SimulatedObservation(
        subband_paths=paths,
        sources_csv=sources_csv,
        truth_json=truth_json,
        start_time=config.start_time,
        mid_time_mjd=float(mid.mjd),
        dec_deg=config.dec_deg,
        pointing_ra_deg=ra0,
        pointing_dec_deg=dec0,
        band_center_hz=ref_hz,
        noise_sigma_jy=sigma,
        antenna_names=[s.name for s in stations],
        sources=truths,
    )


def _drift_apparent_flux(
    source: SkySource, geometry: SourceGeometry, index: int, n_integrations: int, freq_hz: float
) -> float:
    """The source's flux at ``freq_hz`` times the beam response averaged over the observation's integrations:
    what an image of the whole drift scan holds."""
    response = airy_response(geometry.beam_offset[index, :n_integrations], freq_hz)
    return float(source.flux_at(freq_hz) * np.mean(response))


def _write_sources_csv(path: Path, truths: list[SourceTruth]) -> None:
    columns = list(SourceTruth.model_fields)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for truth in truths:
            writer.writerow(truth.model_dump())


def read_sources_csv(path: Path) -> list[SourceTruth]:
    """Read a truth catalogue written by :func:`simulate_observation`."""
    with Path(path).open(newline="") as handle:
        return [SourceTruth.model_validate(row) for row in csv.DictReader(handle)]


# --- Scenes ---------------------------------------------------------------------------------------


def transit_start_time(
    ra_deg: float,
    dec_deg: float,
    near: datetime,
    n_integrations: int = INTEGRATIONS_PER_TILE,
    integration_s: float = INTEGRATION_S,
) -> datetime:
    """Start time, within half a sidereal day of ``near``, of an observation whose mid-time is the transit
    of the ICRS position (ra_deg, dec_deg)."""
    half = timedelta(seconds=0.5 * n_integrations * integration_s)
    mid = transit_time(
        ra_deg,
        dec_deg,
        Time(near if near.tzinfo is None else near.astimezone(UTC).replace(tzinfo=None), scale="utc"),
    )
    return mid.to_datetime().replace(tzinfo=UTC) - half


def calibrator_transit(
    near: datetime,
    *,
    name: str = "3C286",
    ra_deg: float | None = None,
    dec_deg: float | None = None,
    flux_jy: float | None = None,
    spectral_index: float | None = None,
    **config: Any,
) -> ObservationConfig:
    """A bright calibrator transiting the meridian at the mid-time, pointed at its declination.

    Position and spectrum come from the calibrator catalogue entry ``name`` (the one the solver
    models it with); any of them given here overrides the catalogue. ``config`` passes other
    ObservationConfig fields.
    """
    try:
        entry = get_calibrator(name)
    except KeyError:
        raise InvalidInputError(
            f"calibrator {name!r} is not in the calibrator catalogue; name one of it, e.g. 3C286"
        ) from None
    ra_deg = entry.ra_deg if ra_deg is None else ra_deg
    dec_deg = entry.dec_deg if dec_deg is None else dec_deg
    flux_jy = entry.flux_jy if flux_jy is None else flux_jy
    spectral_index = entry.spectral_index if spectral_index is None else spectral_index
    n_int = int(config.get("n_integrations", INTEGRATIONS_PER_TILE))
    t_int = float(config.get("integration_s", INTEGRATION_S))
    start = transit_start_time(ra_deg, dec_deg, near, n_int, t_int)
    calibrator = SkySource(
        name=name, ra_deg=ra_deg, dec_deg=dec_deg, flux_jy=flux_jy, spectral_index=spectral_index
    )
    return ObservationConfig(start_time=start, dec_deg=dec_deg, sources=[calibrator], **config)


# Offsets (east, north in degrees), fluxes (Jy at 1.4 GHz) and spectral indices of the default target field:
# a spread of SNRs, all inside the primary beam's half-power radius (about 1.35°).
DEFAULT_TARGET_SOURCES: tuple[tuple[str, float, float, float, float], ...] = (
    ("T1", 0.30, 0.20, 0.500, -0.7),
    ("T2", -0.45, 0.10, 0.150, -0.7),
    ("T3", 0.15, -0.40, 0.050, -0.5),
    ("T4", -0.20, -0.25, 0.020, -0.8),
    ("T5", 0.55, 0.45, 0.010, -0.7),
)


def target_field(
    start_time: datetime,
    dec_deg: float,
    *,
    sources: Sequence[tuple[str, float, float, float, float]] = DEFAULT_TARGET_SOURCES,
    extended: bool = False,
    **config: Any,
) -> ObservationConfig:
    """Sources at (name, east_deg, north_deg, flux_jy, spectral_index) offsets from the pointing centre.

    ``extended`` adds one 0.2 Jy elliptical Gaussian (40″×25″). ``config`` passes other
    ObservationConfig fields.
    """
    base = ObservationConfig(start_time=start_time, dec_deg=dec_deg, **config)
    ra0, dec0 = base.pointing_center()
    placed = [
        offset_source(name, ra0, dec0, east, north, flux_jy=flux, spectral_index=alpha)
        for name, east, north, flux, alpha in sources
    ]
    if extended:
        placed.append(
            offset_source(
                "G1",
                ra0,
                dec0,
                -0.6,
                -0.5,
                flux_jy=0.2,
                spectral_index=-0.7,
                kind="gaussian",
                major_fwhm_arcsec=40.0,
                minor_fwhm_arcsec=25.0,
                pa_deg=30.0,
            )
        )
    return base.model_copy(update={"sources": placed})


def epoch_series(
    base: ObservationConfig,
    variable_source: str,
    lightcurve: Sequence[float] | Callable[[int], float],
    n_epochs: int | None = None,
    epoch_step_s: float = SIDEREAL_DAY_S,
) -> list[ObservationConfig]:
    """Configs for repeated transits of the same field, one source scaled by ``lightcurve`` per epoch.

    ``lightcurve`` is a list of flux multipliers or a function of the epoch index. Epochs are one
    sidereal day apart by default so the field transits at the same point of each observation; each
    epoch gets its own seed so its noise and gains differ.
    """
    if variable_source not in {s.name for s in base.sources}:
        raise ValueError(f"variable source {variable_source!r} is not in the scene")
    if callable(lightcurve):
        if n_epochs is None:
            raise ValueError("n_epochs is required when the lightcurve is a function")
        factors = [float(lightcurve(i)) for i in range(n_epochs)]
    else:
        factors = [float(f) for f in lightcurve][: n_epochs or None]
    configs = []
    for epoch, factor in enumerate(factors):
        sources = [
            s.model_copy(update={"flux_jy": s.flux_jy * factor}) if s.name == variable_source else s
            for s in base.sources
        ]
        configs.append(
            base.model_copy(
                update={
                    "start_time": base.start_time + timedelta(seconds=epoch * epoch_step_s),
                    "sources": sources,
                    "seed": base.seed + epoch,
                }
            )
        )
    return configs


def simulate_epochs(configs: Sequence[ObservationConfig], out_dir: Path) -> list[SimulatedObservation]:
    """Simulate each config into its own subdirectory ``epoch_NN`` of ``out_dir``."""
    return [simulate_observation(c, Path(out_dir) / f"epoch_{i:02d}") for i, c in enumerate(configs)]
