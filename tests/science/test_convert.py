"""Grouping of subband files and their conversion to Measurement Sets, checked through casatools."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.time import Time
from pyuvdata import UVData
from typer.testing import CliRunner

from contimg.cli.convert import app
from science import casa_env
from science.convert import IncompletePolicy, convert_group
from science.errors import (
    ChannelMismatchError,
    CorruptFileError,
    GroupNotReadyError,
    InvalidInputError,
    MissingSubbandError,
)
from science.grouping import FILENAME_TIME_FORMAT, SubbandGroup, find_groups
from science.pointing import hour_angle_deg
from science.simulate import ObservationConfig, SimulatedObservation, simulate_observation
from science.sky_model import offset_source
from science.stations import select_stations, station_ecef

pytestmark = pytest.mark.science

START = datetime(2025, 6, 1, 20, 0, tzinfo=UTC)
C = 299_792_458.0


@pytest.fixture(scope="module")
def casa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """casatools, configured for offline use."""
    casa_env.configure(tmp_path_factory.mktemp("casa-logs"))
    import casatools

    yield casatools


def read_ms(
    casatools: Any, ms: Path, table: str = "", columns: tuple[str, ...] = ()
) -> dict[str, np.ndarray]:
    tb = casatools.table()
    tb.open(str(ms / table) if table else str(ms))
    try:
        return {c: tb.getcol(c) for c in columns}
    finally:
        tb.close()


def touch_group(directory: Path, when: datetime, jitter_s: list[float], subbands: range = range(16)) -> None:
    for index, jitter in zip(subbands, jitter_s, strict=True):
        stamp = (when + timedelta(seconds=jitter)).strftime(FILENAME_TIME_FORMAT)
        (directory / f"{stamp}_sb{index:02d}.hdf5").touch()


# --- Grouping (names only) ---------------------------------------------------------------------------


def test_grouping_finds_jittered_groups_and_rejects_strays(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    touch_group(tmp_path, START, list(rng.uniform(-60, 60, 16)))
    later = START + timedelta(seconds=309)
    touch_group(tmp_path, later, list(rng.uniform(-60, 60, 16)))
    stray = (START + timedelta(seconds=200)).strftime(FILENAME_TIME_FORMAT)
    (tmp_path / f"{stray}_sb03.hdf5").touch()
    (tmp_path / "notes.txt").touch()

    groups = find_groups(tmp_path)
    complete = [g for g in groups if g.is_complete]
    assert len(complete) == 2
    assert all(abs((g.timestamp - START).total_seconds()) <= 60 for g in complete[:1])
    strays = [g for g in groups if not g.is_complete]
    assert [g.present for g in strays] == [["sb03"]]
    assert f"{stray}_sb03.hdf5" not in {p.name for p in complete[0].files.values()}

    in_range = find_groups(tmp_path, START - timedelta(seconds=30), START + timedelta(seconds=30))
    assert len(in_range) == 1 and in_range[0].group_id == complete[0].group_id


def test_grouping_reports_missing_subbands(tmp_path: Path) -> None:
    touch_group(tmp_path, START, [0.0] * 14, subbands=range(14))
    (group,) = find_groups(tmp_path)
    assert not group.is_complete
    assert group.missing == ["sb14", "sb15"]


# --- Conversion of the shared calibrator observation -------------------------------------------------


def test_ms_has_the_layout_and_positions_expected(converted_pair, simulated_pair, casa) -> None:
    record = converted_pair.calibrator
    ms = record.ms_path
    assert ms.is_dir() and ms.name == f"{record.group_id}.ms"
    assert record.status == "complete" and record.subbands_missing == []
    assert record.n_antennas == 24 and record.n_channels == 16 * 8

    freqs = read_ms(casa, ms, "SPECTRAL_WINDOW", ("CHAN_FREQ",))["CHAN_FREQ"][:, 0]
    assert freqs.size == 128 and np.all(np.diff(freqs) > 0)
    main = read_ms(casa, ms, columns=("ANTENNA1", "ANTENNA2", "DATA"))
    assert main["DATA"].shape[2] == 24 * 25 // 2 * 10
    assert main["DATA"].shape[0] == 2
    ant = read_ms(casa, ms, "ANTENNA", ("NAME", "POSITION"))
    stations = select_stations(24)
    assert list(ant["NAME"]) == [s.name for s in stations]
    assert np.abs(ant["POSITION"].T - station_ecef(stations)).max() < 1.0

    md = casa.msmetadata()
    md.open(str(ms))
    try:
        assert md.nantennas() == 24
        # CASA's own view of where antenna 0 is, as longitude, latitude and geocentric radius.
        position = md.antennaposition(0)
        assert position["refer"] == "ITRF"
        lon, lat, radius = (position[k]["value"] for k in ("m0", "m1", "m2"))
        seen = radius * np.array([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
        assert np.linalg.norm(seen - station_ecef(stations)[0]) < 1.0
        field = md.phasecenter(0)
    finally:
        md.close()
    ra, dec = np.degrees(field["m0"]["value"]) % 360, np.degrees(field["m1"]["value"])
    assert ra == pytest.approx(record.ra_deg, abs=1e-6) and dec == pytest.approx(record.dec_deg, abs=1e-6)
    # Phase centre on the meridian at the mid-time, at the pointing declination.
    mid = Time(record.mid_mjd, format="mjd", scale="utc")
    assert abs(hour_angle_deg(ra, dec, mid)) * 3600 < 1.0
    assert dec == pytest.approx(simulated_pair.calibrator.dec_deg)
    assert record.mid_mjd == pytest.approx(simulated_pair.calibrator.mid_time_mjd, abs=1e-8)
    assert record.start_mjd < record.mid_mjd < record.end_mjd


# --- Visibility phases after conversion --------------------------------------------------------------


def clean_source_ms(tmp_path: Path, east_deg: float, north_deg: float) -> tuple[Path, SimulatedObservation]:
    # In Jy (not the correlator's raw units), so that DATA compares with the sky model directly.
    base = ObservationConfig(
        start_time=START,
        dec_deg=40.0,
        n_channels=4,
        n_integrations=3,
        gains=None,
        noise=None,
        raw_units_per_jy=1.0,
    )
    ra0, dec0 = base.pointing_center()
    source = offset_source("S", ra0, dec0, east_deg, north_deg, flux_jy=2.0, spectral_index=-0.7)
    obs = simulate_observation(base.model_copy(update={"sources": [source]}), tmp_path / "in")
    (group,) = find_groups(tmp_path / "in")
    return convert_group(group, tmp_path / "out").ms_path, obs


def test_source_at_phase_centre_is_real_and_positive(tmp_path: Path, casa) -> None:
    ms, obs = clean_source_ms(tmp_path, 0.0, 0.0)
    main = read_ms(casa, ms, columns=("DATA", "ANTENNA1", "ANTENNA2"))
    cross = main["ANTENNA1"] != main["ANTENNA2"]
    vis = main["DATA"][:, :, cross]
    assert np.degrees(np.abs(np.angle(vis))).max() < 0.5
    assert np.median(vis.real) == pytest.approx(obs.sources[0].apparent_flux_jy, rel=0.02)


@pytest.fixture(scope="module")
def off_centre_ms(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimulatedObservation]:
    """A noiseless, gain-free MS of one source 0.6° east and 0.4° south of the phase centre."""
    return clean_source_ms(tmp_path_factory.mktemp("off_centre"), 0.6, -0.4)


def test_off_centre_source_follows_the_sign_convention(off_centre_ms, casa) -> None:
    """V = S·exp(+2πi(u·l + v·m + w·(n−1))) with the MS's own uvw; the opposite sign must not fit."""
    ms, obs = off_centre_ms
    main = read_ms(casa, ms, columns=("DATA", "UVW", "ANTENNA1", "ANTENNA2"))
    freqs = read_ms(casa, ms, "SPECTRAL_WINDOW", ("CHAN_FREQ",))["CHAN_FREQ"][:, 0]
    field = read_ms(casa, ms, "FIELD", ("PHASE_DIR",))["PHASE_DIR"][:, 0, 0]
    centre = SkyCoord(field[0], field[1], unit="rad")
    source = SkyCoord(obs.sources[0].ra_deg, obs.sources[0].dec_deg, unit="deg")
    east, north = centre.spherical_offsets_to(source)
    assert east.deg == pytest.approx(0.6, abs=1e-3) and north.deg == pytest.approx(-0.4, abs=1e-3)
    d0, d, dra = centre.dec.rad, source.dec.rad, source.ra.rad - centre.ra.rad
    l_ = np.cos(d) * np.sin(dra)
    m_ = np.sin(d) * np.cos(d0) - np.cos(d) * np.sin(d0) * np.cos(dra)
    n_ = np.sqrt(1 - l_**2 - m_**2)
    u, v, w = main["UVW"]
    cross = main["ANTENNA1"] != main["ANTENNA2"]
    phase = 2 * np.pi * (u * l_ + v * m_ + w * (n_ - 1))[None, :] * freqs[:, None] / C
    vis = main["DATA"][0][:, cross]

    def coherence(sign: int) -> float:
        model = np.exp(sign * 1j * phase[:, cross])
        return float(np.abs(np.mean(vis * np.conj(model))) / np.mean(np.abs(vis)))

    assert coherence(+1) > 0.999
    assert coherence(-1) < 0.2


# --- Bad input ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_observation(tmp_path_factory: pytest.TempPathFactory) -> SimulatedObservation:
    config = ObservationConfig(start_time=START, dec_deg=40.0, n_antennas=6, n_channels=2, n_integrations=2)
    return simulate_observation(config, tmp_path_factory.mktemp("small"))


@pytest.fixture()
def group_copy(small_observation: SimulatedObservation, tmp_path: Path) -> SubbandGroup:
    """A private copy of the small observation's files, free to damage."""
    work = tmp_path / "in"
    work.mkdir()
    for path in small_observation.subband_paths:
        shutil.copy(path, work / path.name)
    (group,) = find_groups(work)
    return group


def assert_no_output(directory: Path) -> None:
    assert not directory.exists() or list(directory.iterdir()) == []


def test_truncated_file_is_a_clear_permanent_error(group_copy: SubbandGroup, tmp_path: Path) -> None:
    victim = group_copy.files[7]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    with pytest.raises(CorruptFileError, match=victim.name) as caught:
        convert_group(group_copy, tmp_path / "out")
    assert isinstance(caught.value, InvalidInputError)
    assert_no_output(tmp_path / "out")


def test_channel_count_mismatch_names_the_odd_file(group_copy: SubbandGroup, tmp_path: Path) -> None:
    odd = simulate_observation(
        ObservationConfig(start_time=START, dec_deg=40.0, n_antennas=6, n_channels=4, n_integrations=2),
        tmp_path / "odd",
    )
    victim = group_copy.files[3]
    shutil.copy(odd.subband_paths[3], victim)
    with pytest.raises(ChannelMismatchError, match=rf"{victim.name}: has 4 channels .* have 2"):
        convert_group(group_copy, tmp_path / "out")
    assert_no_output(tmp_path / "out")


def test_missing_subband_follows_the_policy(group_copy: SubbandGroup, tmp_path: Path, casa) -> None:
    group_copy.files.pop(5).unlink()
    out = tmp_path / "out"
    with pytest.raises(GroupNotReadyError, match="sb05"):
        convert_group(group_copy, out, IncompletePolicy.WAIT)
    with pytest.raises(MissingSubbandError, match="sb05") as caught:
        convert_group(group_copy, out, IncompletePolicy.SKIP)
    assert isinstance(caught.value, InvalidInputError)
    assert_no_output(out)

    record = convert_group(group_copy, out, IncompletePolicy.FLAG)
    assert record.status == "partial" and record.subbands_missing == ["sb05"] and record.n_channels == 32
    freqs = read_ms(casa, record.ms_path, "SPECTRAL_WINDOW", ("CHAN_FREQ",))["CHAN_FREQ"][:, 0]
    assert np.allclose(np.diff(freqs), freqs[1] - freqs[0]), "the flagged subband keeps the grid regular"
    flags = read_ms(casa, record.ms_path, columns=("FLAG",))["FLAG"]
    flagged_channels = np.flatnonzero(flags.all(axis=(0, 2)))
    # sb05 is the sixth from the top, so its two channels are 21 and 20 counting up from the bottom.
    assert list(flagged_channels) == [20, 21]


def test_failed_write_leaves_no_ms(group_copy: SubbandGroup, tmp_path: Path, monkeypatch) -> None:
    def broken_write(self: UVData, filename: str, **kwargs: object) -> None:
        Path(filename).mkdir()
        (Path(filename) / "table.dat").write_text("half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(UVData, "write_ms", broken_write)
    with pytest.raises(RuntimeError, match="disk full"):
        convert_group(group_copy, tmp_path / "out")
    assert_no_output(tmp_path / "out")


def test_cli_converts_complete_groups_and_reports_the_rest(
    small_observation: SimulatedObservation, tmp_path: Path
) -> None:
    work = tmp_path / "in"
    work.mkdir()
    for path in small_observation.subband_paths:
        shutil.copy(path, work / path.name)
    later = START + timedelta(hours=1)
    touch_group(work, later, [0.0] * 3, subbands=range(3))
    runner = CliRunner()
    args = ["groups", "--direct", "--input-dir", str(work), "--output-dir", str(tmp_path / "out")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    # stdout only: log lines go to stderr, which the runner also captures.
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [line["status"] for line in lines] == ["complete", "waiting"]
    assert Path(lines[0]["ms_path"]).is_dir()
    assert lines[0]["phasing"] == "fringestopped" and lines[0]["flagged_fraction"] < 0.05

    again = runner.invoke(app, [*args, "--policy", "skip"])
    statuses = [json.loads(line)["status"] for line in again.output.splitlines() if line.startswith("{")]
    assert statuses == ["exists", "skipped"]


def test_casa_predicts_the_same_phases_for_the_off_centre_source(off_centre_ms, casa, tmp_path: Path) -> None:
    """CASA's own model of a point source at the true position (ft) matches the data: no mirrored sky."""
    from casatasks import ft

    ms, obs = off_centre_ms
    work = tmp_path / ms.name
    shutil.copytree(ms, work)
    truth = obs.sources[0]
    components = str(tmp_path / "source.cl")
    cl = casa.componentlist()
    cl.addcomponent(
        dir=f"J2000 {truth.ra_deg}deg {truth.dec_deg}deg",
        flux=1.0,
        fluxunit="Jy",
        shape="point",
        freq="1.4GHz",
    )
    cl.rename(components)
    cl.close()
    ft(vis=str(work), complist=components, usescratch=True)
    main = read_ms(casa, work, columns=("DATA", "MODEL_DATA", "ANTENNA1", "ANTENNA2"))
    cross = main["ANTENNA1"] != main["ANTENNA2"]
    data, model = main["DATA"][0][:, cross], main["MODEL_DATA"][0][:, cross]
    coherence = np.abs(np.mean(data * np.conj(model))) / np.mean(np.abs(data) * np.abs(model))
    mirrored = np.abs(np.mean(data * model)) / np.mean(np.abs(data) * np.abs(model))
    assert coherence > 0.99
    assert mirrored < 0.2
