"""Simulated DSA-110 drift-scan observations: 16 UVH5 subband files plus the truth behind them.

The files look like the correlator's: named ``YYYY-MM-DDTHH:MM:SS_sbNN.hdf5`` (sb00 the highest
frequency, channels descending within a subband), unprojected, with the pointing declination in
``extra_keywords["phase_center_dec"]`` (radians). Name timestamps are jittered per subband; the data
times are identical across subbands so that the files concatenate.

Gains follow pyuvdata's convention, V_obs = g_ant1 · conj(g_ant2) · V_true (CASA then solves for conj(g)).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from astropy import units as u
from astropy.coordinates import AltAz, SkyCoord
from astropy.time import Time
from numpy.typing import NDArray
from pydantic import BaseModel, Field, field_validator
from pyuvdata import Telescope, UVData

from pipeline_tasks.constants import (
    BAND_BOTTOM_HZ,
    CHANNEL_WIDTH_HZ,
    CHANNELS_PER_SUBBAND,
    DISH_DIAMETER_M,
    GROUP_TOLERANCE_S,
    INTEGRATION_S,
    N_STATIONS,
    N_SUBBANDS,
    NOMINAL_SEFD_JY,
    SIDEREAL_DAY_S,
    TELESCOPE_NAME,
    subband_name,
)
from pipeline_tasks.pointing import hour_angle_deg, meridian_icrs
from pipeline_tasks.sky_model import (
    SkySource,
    SourceGeometry,
    apparent_flux,
    drift_visibilities,
    offset_source,
)
from pipeline_tasks.stations import Station, array_location, select_stations, station_ecef, stations_by_number

log = structlog.get_logger(__name__)

FILENAME_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
SUBBAND_BANDWIDTH_HZ = CHANNELS_PER_SUBBAND * CHANNEL_WIDTH_HZ


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


class ObservationConfig(BaseModel):
    """Everything that defines one simulated observation; the same config and seed give the same files."""

    start_time: datetime = Field(description="UTC start of the first integration.")
    dec_deg: float = Field(ge=-90, le=90, description="Pointing declination (ICRS).")
    n_antennas: int = Field(default=24, ge=3, le=N_STATIONS)
    station_numbers: list[int] | None = Field(
        default=None, description="Explicit stations (1-117); overrides n_antennas."
    )
    n_channels: int = Field(default=8, ge=1, le=CHANNELS_PER_SUBBAND, description="Channels per subband.")
    n_integrations: int = Field(default=10, ge=1)
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
    seed: int = 0
    gain_seed: int | None = Field(
        default=None,
        description="Seed of the gain draw alone, so that observations can share one set of gains.",
    )

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
    apparent_flux_jy: float = Field(description="Beam-attenuated flux at the band centre at the mid-time.")
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

    The 16 subbands always span the real band; fewer channels per subband means wider channels.
    """
    width = SUBBAND_BANDWIDTH_HZ / n_channels
    band_low_edge = BAND_BOTTOM_HZ - CHANNEL_WIDTH_HZ / 2
    result = []
    for index in range(N_SUBBANDS):
        low_edge = band_low_edge + (N_SUBBANDS - 1 - index) * SUBBAND_BANDWIDTH_HZ
        result.append(np.asarray(low_edge + (np.arange(n_channels)[::-1] + 0.5) * width, dtype=np.float64))
    return result


def band_center_hz() -> float:
    """Middle of the simulated band."""
    return float(BAND_BOTTOM_HZ - CHANNEL_WIDTH_HZ / 2 + N_SUBBANDS * SUBBAND_BANDWIDTH_HZ / 2)


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


def _template(config: ObservationConfig, stations: tuple[Station, ...], freqs: NDArray[np.float64]) -> UVData:
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
    numbers = [s.antenna_number for s in stations]
    first = 0 if config.include_autos else 1
    antpairs = [(a, b) for i, a in enumerate(numbers) for b in numbers[i + first :]]
    uvd = UVData.new(
        freq_array=freqs,
        polarization_array=["xx", "yy"],
        telescope=telescope,
        times=config.times().jd,
        antpairs=antpairs,
        do_blt_outer=True,
        time_axis_faster_than_bls=False,
        integration_time=config.integration_s,
        channel_width=SUBBAND_BANDWIDTH_HZ / config.n_channels,
        empty=True,
        vis_units="uncalib",
    )
    uvd.extra_keywords["phase_center_dec"] = float(np.radians(config.dec_deg))
    return uvd


def _jittered_stamps(config: ObservationConfig, rng: np.random.Generator) -> list[str]:
    jitter = rng.uniform(-config.name_jitter_s, config.name_jitter_s, N_SUBBANDS)
    return [(config.start_time + timedelta(seconds=float(j))).strftime(FILENAME_TIME_FORMAT) for j in jitter]


def simulate_observation(config: ObservationConfig, out_dir: Path) -> SimulatedObservation:
    """Write the 16 subband files of ``config`` and its truth files into ``out_dir``.

    Returns the paths written and the truth (pointing, noise, sources) to check results against.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    stations = config.stations()
    times = config.times()
    mid = config.mid_time()
    ref_hz = band_center_hz()
    ra0, dec0 = config.pointing_center()
    center = SkyCoord(ra0 * u.deg, dec0 * u.deg)
    # The dishes stay at the alt/az of the pointing centre at mid-time for the whole drift scan.
    beam_altaz = center.transform_to(AltAz(obstime=mid, location=array_location()))
    alt, az = beam_altaz.alt.rad, beam_altaz.az.rad
    beam_enu = np.array([np.cos(alt) * np.sin(az), np.cos(alt) * np.cos(az), np.sin(alt)])
    geometry = SourceGeometry(list(config.sources), times, beam_enu)

    gain_rng = rng if config.gain_seed is None else np.random.default_rng(config.gain_seed)
    gains = _draw_gains(gain_rng, len(stations), config.gains)
    stamps = _jittered_stamps(config, rng)
    sigma = noise_sigma_jy(config)
    hours = (times - mid).to_value(u.hour)

    paths = []
    uvd: UVData | None = None
    for index, freqs in enumerate(subband_frequencies(config.n_channels)):
        if uvd is None:
            uvd = _template(config, stations, freqs)
            ant_index = {s.antenna_number: i for i, s in enumerate(stations)}
            row_a1 = np.array([ant_index[a] for a in uvd.ant_1_array])
            row_a2 = np.array([ant_index[a] for a in uvd.ant_2_array])
            row_time = np.searchsorted(np.unique(uvd.time_array), uvd.time_array)
            autos = row_a1 == row_a2
        else:
            uvd.freq_array = freqs
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
        uvd.data_array = data.astype(np.complex64)
        uvd.nsample_array = np.ones(data.shape, dtype=np.float32)
        path = out_dir / f"{stamps[index]}_{subband_name(index)}.hdf5"
        uvd.write_uvh5(str(path), clobber=True)
        paths.append(path)

    nominal = config.start_time.strftime(FILENAME_TIME_FORMAT)
    truths = [
        SourceTruth(**s.model_dump(), apparent_flux_jy=apparent_flux(s, center, ref_hz))
        for s in config.sources
    ]
    sources_csv = out_dir / f"{nominal}_sources.csv"
    _write_sources_csv(sources_csv, truths)
    truth_json = out_dir / f"{nominal}_truth.json"
    truth = {
        "convention": "V_obs = g_ant1 * conj(g_ant2) * V_true; g = amplitude*(1 + amplitude_drift*dt_h)"
        " * exp(i*(phase + phase_drift*dt_h + 2*pi*(freq - ref_freq)*delay)); dt_h from mid-time",
        "ref_freq_hz": ref_hz,
        "mid_time_mjd": mid.mjd,
        "pointing_ra_deg": ra0,
        "pointing_dec_deg": dec0,
        "noise_sigma_jy": sigma,
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
    n_integrations: int = 10,
    integration_s: float = INTEGRATION_S,
) -> datetime:
    """Start time, within half a sidereal day of ``near``, of an observation whose mid-time is the transit
    of the ICRS position (ra_deg, dec_deg)."""
    half = timedelta(seconds=0.5 * n_integrations * integration_s)
    mid = Time(near if near.tzinfo is None else near.astimezone(UTC).replace(tzinfo=None), scale="utc")
    for _ in range(3):
        mid = mid - hour_angle_deg(ra_deg, dec_deg, mid) / 360.0 * SIDEREAL_DAY_S * u.s
    return mid.to_datetime().replace(tzinfo=UTC) - half


def calibrator_transit(
    near: datetime,
    *,
    name: str = "3C286",
    ra_deg: float = 202.784533,
    dec_deg: float = 30.509156,
    flux_jy: float = 14.9,
    spectral_index: float = -0.46,
    **config: Any,
) -> ObservationConfig:
    """A bright calibrator transiting the meridian at the mid-time, pointed at its declination.

    The defaults approximate 3C286 at 1.4 GHz. ``config`` passes other ObservationConfig fields.
    """
    n_int = int(config.get("n_integrations", 10))
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
