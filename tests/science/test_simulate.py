"""The simulator: correlator-like files, determinism, and truth that matches the data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.time import Time
from pyuvdata import UVData
from typer.testing import CliRunner

from contimg.cli.simulate import app
from science.beam import airy_response
from science.constants import (
    CHANNEL_WIDTH_HZ,
    CHANNELS_PER_SUBBAND,
    NOMINAL_SEFD_JY,
    SIDEREAL_DAY_S,
    channel_frequency_hz,
)
from science.grouping import parse_subband_path
from science.pointing import apparent_dec_deg, hour_angle_deg
from science.simulate import (
    RAW_UNITS_PER_JY,
    NoiseModel,
    ObservationConfig,
    epoch_series,
    read_sources_csv,
    simulate_observation,
    target_field,
)
from science.sky_model import SkySource
from science.stations import load_stations, select_stations, station_ecef
from science.subband_file import read_subband

pytestmark = pytest.mark.science

START = datetime(2025, 6, 1, 20, 0, tzinfo=UTC)


def tiny(**fields: object) -> ObservationConfig:
    """A small observation (6 stations, 2 channels, 2 integrations) for fast checks."""
    base: dict[str, object] = {
        "start_time": START,
        "dec_deg": 40.0,
        "n_antennas": 6,
        "n_channels": 2,
        "n_integrations": 2,
    } | fields
    return ObservationConfig.model_validate(base)


def read(path: Path) -> UVData:
    return read_subband(path)


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    config = target_field(START, 40.0, n_antennas=6, n_channels=2, n_integrations=2, seed=7)
    first = simulate_observation(config, tmp_path / "a")
    second = simulate_observation(config, tmp_path / "b")
    other = simulate_observation(config.model_copy(update={"seed": 8}), tmp_path / "c")
    assert [p.name for p in first.subband_paths] == [p.name for p in second.subband_paths]
    for a, b, c in zip(first.subband_paths, second.subband_paths, other.subband_paths, strict=True):
        with h5py.File(a) as fa, h5py.File(b) as fb, h5py.File(c) as fc:
            assert np.array_equal(fa["Data/visdata"][()], fb["Data/visdata"][()])
            assert not np.array_equal(fa["Data/visdata"][()], fc["Data/visdata"][()])


def test_files_look_like_the_correlators(simulated_pair) -> None:
    obs = simulated_pair.target
    assert [parse_subband_path(p).subband for p in obs.subband_paths] == list(range(16))  # type: ignore[union-attr]
    stamps = [parse_subband_path(p).timestamp for p in obs.subband_paths]  # type: ignore[union-attr]
    offsets = [(s - obs.start_time.replace(microsecond=0)).total_seconds() for s in stamps]
    assert all(-61 <= o <= 60 for o in offsets)
    assert len(set(stamps)) > 1, "file-name times should be jittered"

    parts = [read(p) for p in obs.subband_paths]
    tops = [p.freq_array.max() for p in parts]
    assert tops == sorted(tops, reverse=True), "sb00 must be the highest subband"
    assert np.all(np.diff(parts[0].freq_array) < 0), "channels descend within a subband"
    band = max(tops) - min(p.freq_array.min() for p in parts) + parts[0].channel_width[0]
    assert band == pytest.approx(16 * CHANNELS_PER_SUBBAND * CHANNEL_WIDTH_HZ)
    for p in parts[1:]:
        assert np.array_equal(p.time_array, parts[0].time_array)
    first = parts[0]
    assert first.Npols == 2 and first.Ntimes == 10 and first.Nfreqs == 8
    assert first.telescope.name == "OVRO_MMA"
    assert first.telescope.location.lat.deg == pytest.approx(37.2334051)


def test_files_have_the_real_writers_layout(simulated_pair) -> None:
    """Field by field, what docs/instrument.md says the correlator's writer puts in a file."""
    obs = simulated_pair.target
    with h5py.File(obs.subband_paths[3]) as f:
        header = f["Header"]
        for absent in ("phase_center_catalog", "version", "lst_array", "vis_units", "mount_type"):
            assert absent not in header, absent
        assert header["phase_type"][()] == b"drift"
        assert header["uvw_array"].dtype == np.float32
        assert header["freq_array"].shape == (1, 8)
        assert header["channel_width"].shape == ()
        assert header["channel_width"][()] > 0 and np.all(np.diff(header["freq_array"][0]) < 0)
        assert list(header["spw_array"][()]) == [1]
        assert header["Nants_telescope"][()] == 117
        assert [n.decode() for n in header["antenna_names"][()]] == [str(i) for i in range(1, 118)]
        assert list(header["antenna_numbers"][()]) == list(range(117))
        a1, a2 = header["ant_1_array"][()], header["ant_2_array"][()]
        assert (a1 > a2).sum() > 0.25 * a1.size, "correlator order, not sorted"
        assert np.any(a1 == a2), "autocorrelations included"
        extra = header["extra_keywords"]
        assert extra["phase_center_epoch"][()] in (b"HADEC", "HADEC")
        assert extra["ha_phase_center"][()] == 0.0
        assert "fs_table" in extra
        # The header dec is apparent (of date), not the ICRS dec of the pointing.
        assert np.degrees(extra["phase_center_dec"][()]) != pytest.approx(obs.pointing_dec_deg, abs=0.02)
        mid = Time(obs.mid_time_mjd, format="mjd")
        assert np.degrees(extra["phase_center_dec"][()]) == pytest.approx(
            apparent_dec_deg(obs.pointing_ra_deg, obs.pointing_dec_deg, mid), abs=1e-6
        )
        # Fringestopped: the same uvw (towards the meridian) for every integration.
        uvw = header["uvw_array"][()]
        n_bls = int(header["Nbls"][()])
        assert np.array_equal(uvw[:n_bls], uvw[-n_bls:])
        data = f["Data"]
        assert data["visdata"].shape[1] == 1 and data["visdata"].dtype == np.complex64
        assert not data["flags"][()].any()
        assert np.all(data["nsamples"][()] == 96)
    channels = [channel_frequency_hz(3, j) for j in range(48)]
    assert parts_freqs(obs.subband_paths[3]) == pytest.approx(np.reshape(channels, (8, 6)).mean(axis=1))


def parts_freqs(path: Path) -> np.ndarray:
    with h5py.File(path) as f:
        return np.asarray(f["Header/freq_array"][0])


def test_antennas_come_from_the_station_file_numbered_from_zero(simulated_pair) -> None:
    uvd = read(simulated_pair.calibrator.subband_paths[0])
    stations = select_stations(24)
    tel = uvd.telescope
    assert tel.Nants == 117
    assert sorted(set(uvd.ant_1_array) | set(uvd.ant_2_array)) == [s.number - 1 for s in stations]
    origin = np.array(
        [tel.location.x.to_value("m"), tel.location.y.to_value("m"), tel.location.z.to_value("m")]
    )
    absolute = tel.antenna_positions + origin
    assert np.abs(absolute - station_ecef(load_stations())).max() < 1e-3
    assert uvd.Nbls == 24 * 25 // 2
    assert {s.is_core for s in stations} == {True, False}


def test_station_file_parsing() -> None:
    stations = load_stations()
    assert [s.number for s in stations] == list(range(1, 118))
    assert stations[0].name == "DSA-001" and stations[-1].name == "DSA-117"
    assert sum(s.is_core for s in stations) == 102
    assert all(1170 < s.height_m < 1200 for s in stations), "the blank elevation must be filled"


def test_truth_files_match_the_config(simulated_pair) -> None:
    obs = simulated_pair.target
    assert obs.sources_csv.exists() and obs.truth_json.exists()
    rows = read_sources_csv(obs.sources_csv)
    assert [r.name for r in rows] == ["T1", "T2", "T3", "T4", "T5"]
    for row in rows:
        # Off-centre sources are attenuated by the beam, but all lie inside its half-power radius.
        assert 0.5 * row.flux_jy < row.apparent_flux_jy < row.flux_jy
        assert row.kind == "point"
    truth = json.loads(obs.truth_json.read_text())
    assert len(truth["gains"]) == 24 * 2
    assert {g["pol"] for g in truth["gains"]} == {"XX", "YY"}
    expected_sigma = NOMINAL_SEFD_JY / np.sqrt(
        2 * 16 * CHANNELS_PER_SUBBAND * CHANNEL_WIDTH_HZ / 128 * 12.884901888
    )
    assert truth["noise_sigma_jy"] == pytest.approx(expected_sigma)
    assert truth["mid_time_mjd"] == pytest.approx(obs.mid_time_mjd)


def test_gains_in_the_data_are_the_gains_in_the_truth(tmp_path: Path) -> None:
    source = SkySource(name="S", ra_deg=0.0, dec_deg=40.0, flux_jy=5.0)
    config = tiny(noise=None, seed=3)
    config = config.model_copy(
        update={"sources": [source.model_copy(update={"ra_deg": config.pointing_center()[0]})]}
    )
    with_gains = simulate_observation(config, tmp_path / "g")
    without = simulate_observation(config.model_copy(update={"gains": None}), tmp_path / "u")
    corrupted, clean = read(with_gains.subband_paths[5]), read(without.subband_paths[5])
    truth = json.loads(with_gains.truth_json.read_text())
    gains = {(g["antenna_number"], g["pol"]): g for g in truth["gains"]}
    hours = (clean.time_array - (with_gains.mid_time_mjd + 2400000.5)) * 24.0

    def gain(ant: np.ndarray, pol: str) -> np.ndarray:
        rows = [gains[(int(a), pol)] for a in ant]
        amp = np.array([r["amplitude"] for r in rows]) * (
            1 + np.array([r["amplitude_drift_per_hour"] for r in rows]) * hours
        )
        phase = (
            np.radians([r["phase_deg"] for r in rows])
            + np.radians([r["phase_drift_deg_per_hour"] for r in rows]) * hours
        )
        delay = np.array([r["delay_ns"] for r in rows]) * 1e-9
        return amp[:, None] * np.exp(
            1j
            * (
                phase[:, None]
                + 2 * np.pi * delay[:, None] * (clean.freq_array[None, :] - truth["ref_freq_hz"])
            )
        )

    for p, pol in enumerate(("XX", "YY")):
        expected = (
            gain(clean.ant_1_array, pol) * np.conj(gain(clean.ant_2_array, pol)) * clean.data_array[:, :, p]
        )
        np.testing.assert_allclose(corrupted.data_array[:, :, p], expected, rtol=1e-5, atol=1e-5)


def test_noise_has_the_stated_sigma(tmp_path: Path) -> None:
    obs = simulate_observation(tiny(gains=None, noise=NoiseModel(sigma_jy=0.5), n_integrations=20), tmp_path)
    uvd = read(obs.subband_paths[0])
    cross = uvd.ant_1_array != uvd.ant_2_array
    values = uvd.data_array[cross]
    assert obs.noise_sigma_jy == 0.5
    # The files hold raw correlator units: Jy times the simulator's scale.
    scale = json.loads(obs.truth_json.read_text())["raw_units_per_jy"]
    assert scale == RAW_UNITS_PER_JY != 1.0
    assert np.std(values.real) == pytest.approx(0.5 * scale, rel=0.1)
    assert np.std(values.imag) == pytest.approx(0.5 * scale, rel=0.1)


def test_epochs_vary_one_source_along_the_lightcurve(tmp_path: Path) -> None:
    base = target_field(START, 40.0, n_antennas=6, n_channels=2, n_integrations=2)
    configs = epoch_series(base, "T3", [1.0, 2.0, 0.5])
    assert [c.start_time - START for c in configs] == [
        timedelta(seconds=i * SIDEREAL_DAY_S) for i in range(3)
    ]
    for config, factor in zip(configs, [1.0, 2.0, 0.5], strict=True):
        fluxes = {s.name: s.flux_jy for s in config.sources}
        assert fluxes["T3"] == pytest.approx(0.05 * factor)
        assert fluxes["T1"] == pytest.approx(0.5)
    # The same field transits at the same point of each epoch: positions agree to well under a pixel.
    assert configs[2].pointing_center()[0] == pytest.approx(configs[0].pointing_center()[0], abs=0.01)
    with pytest.raises(ValueError, match="not in the scene"):
        epoch_series(base, "nope", [1.0])
    with_function = epoch_series(base, "T1", lambda i: 1.0 + i, n_epochs=2)
    assert [s.flux_jy for c in with_function for s in c.sources if s.name == "T1"] == [0.5, 1.0]


def test_cli_writes_an_observation(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "target",
            "--out-dir",
            str(tmp_path),
            "--start-time",
            "2025-06-01T20:00:00",
            "--dec-deg",
            "40",
            "--n-antennas",
            "6",
            "--n-channels",
            "2",
            "--n-integrations",
            "2",
            "--no-noise",
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(list(tmp_path.glob("*_sb??.hdf5"))) == 16
    assert len(list(tmp_path.glob("*_sources.csv"))) == 1


def test_cli_injects_faults_and_refuses_bad_ones(tmp_path: Path) -> None:
    small = ["--n-antennas", "6", "--n-channels", "2", "--n-integrations", "2", "--no-noise"]
    base = ["target", "--start-time", "2025-06-01T20:00:00", "--dec-deg", "40", *small]
    faults = '{"dead_stations": [1], "short_subband": 3}'
    result = CliRunner().invoke(app, [*base, "--out-dir", str(tmp_path / "f"), "--faults", faults])
    assert result.exit_code == 0, result.output
    short = read(next((tmp_path / "f").glob("*_sb03.hdf5")))
    assert short.Ntimes == 1
    result = CliRunner().invoke(app, [*base, "--out-dir", str(tmp_path / "u"), "--layout", "unprojected"])
    assert result.exit_code == 0, result.output
    with h5py.File(next((tmp_path / "u").glob("*_sb00.hdf5"))) as f:
        assert "phase_center_catalog" in f["Header"]
    bad = CliRunner().invoke(app, [*base, "--out-dir", str(tmp_path / "b"), "--faults", '{"dead": 1}'])
    assert bad.exit_code != 0 and "--faults" in bad.output and "dead" in bad.output
    bad = CliRunner().invoke(app, [*base, "--out-dir", str(tmp_path / "b"), "--layout", "raw"])
    assert bad.exit_code != 0 and "correlator or unprojected" in bad.output


def test_cli_writes_epochs_and_reads_configs(tmp_path: Path) -> None:
    small = ["--n-antennas", "6", "--n-channels", "2", "--n-integrations", "2", "--no-noise"]
    result = CliRunner().invoke(
        app,
        [
            "epochs",
            "--out-dir",
            str(tmp_path),
            "--start-time",
            "2025-06-01T20:00:00",
            "--dec-deg",
            "40",
            "--variable",
            "T1",
            "--lightcurve",
            "1,3",
            *small,
        ],
    )
    assert result.exit_code == 0, result.output
    epochs = sorted(tmp_path.glob("epoch_*"))
    assert [e.name for e in epochs] == ["epoch_00", "epoch_01"]
    fluxes = [
        {r.name: r.flux_jy for r in read_sources_csv(next(e.glob("*_sources.csv")))}["T1"] for e in epochs
    ]
    assert fluxes == pytest.approx([0.5, 1.5])

    config_path = tmp_path / "config.json"
    config_path.write_text(tiny(seed=5).model_dump_json())
    result = CliRunner().invoke(app, ["from-config", str(config_path), "--out-dir", str(tmp_path / "cfg")])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "cfg").glob("*_sb??.hdf5"))) == 16


def test_calibrator_transits_at_the_mid_time(simulated_pair) -> None:
    cal = simulated_pair.calibrator
    (source,) = cal.sources
    mid = Time(cal.mid_time_mjd, format="mjd", scale="utc")
    assert abs(hour_angle_deg(source.ra_deg, source.dec_deg, mid)) * 3600 < 1.0
    assert cal.pointing_ra_deg == pytest.approx(source.ra_deg, abs=1e-4)
    intrinsic = source.flux_jy * (cal.band_center_hz / 1.4e9) ** -0.46
    # Seen through a fixed beam as it drifts past: the average of the Airy response along the beam's track.
    offsets_s = (np.arange(10) + 0.5 - 5) * 12.884901888
    track = SkyCoord(
        (cal.pointing_ra_deg + offsets_s * 360.0 / SIDEREAL_DAY_S) * u.deg, source.dec_deg * u.deg
    )
    position = SkyCoord(source.ra_deg * u.deg, source.dec_deg * u.deg)
    response = airy_response(position.separation(track).rad, cal.band_center_hz).mean()
    assert 0.99 < response < 1.0
    assert source.apparent_flux_jy == pytest.approx(intrinsic * response, rel=1e-4)
