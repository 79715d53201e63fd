"""Forced photometry, the FITS reader and the monitoring catalogue, on synthetic images of known truth."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import structlog
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.modeling.models import Gaussian2D
from synthetic_images import ImageSpec, Source, make_image, make_wcs, offset_position
from typer.testing import CliRunner

from contimg.cli.photometry import app
from science.catalogs import CatalogError, SkyPosition, parse_coords, read_catalog, select_bright
from science.errors import InvalidInputError
from science.fits_image import BeamKeywordsMissingError, read_image
from science.photometry import Flag, PeakMode, PhotometryOptions, measure, measure_file, measure_many

SPEC = ImageSpec()
N_SOURCES = 20
runner = CliRunner()


@pytest.fixture(autouse=True)
def logs_to_stderr() -> Iterator[None]:
    """Keep log lines out of stdout, as the contimg entry point does, so --json output parses."""
    saved = structlog.get_config()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    yield
    structlog.configure(**saved)


def _sources(spec: ImageSpec, n: int, seed: int) -> list[Source]:
    """Sources at random sub-pixel positions well inside the image, 5-100 mJy."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        dx, dy = rng.uniform(-90, 90, size=2)
        ra, dec = offset_position(spec, dx, dy)
        out.append(Source(f"src{i:02d}", ra, dec, float(rng.uniform(0.005, 0.1))))
    return out


def _positions(sources: list[Source]) -> list[SkyPosition]:
    return [SkyPosition(name=s.name, ra_deg=s.ra_deg, dec_deg=s.dec_deg) for s in sources]


@pytest.fixture(scope="module")
def field(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Source]]:
    sources = _sources(SPEC, N_SOURCES, seed=11)
    path = make_image(tmp_path_factory.mktemp("phot") / "field.fits", sources, SPEC, seed=5)
    return path, sources


def test_fluxes_recovered_within_errors(field: tuple[Path, list[Source]]) -> None:
    path, sources = field
    # These images have thermal noise only: no systematic part.
    results = measure_many(read_image(path), _positions(sources), PhotometryOptions(systematic_fraction=0.0))
    z = np.array([(r.flux_jy - s.flux_jy) / r.flux_err_jy for r, s in zip(results, sources, strict=True)])
    assert np.all(np.abs(z) < 3.0), z
    # The errors are neither too small nor too large across the ensemble, and there is no bias.
    assert abs(z.mean()) < 3.0 / np.sqrt(N_SOURCES)
    assert 0.6 < z.std(ddof=1) < 1.5
    assert all(not r.flags for r in results)


def test_local_rms_matches_injected_noise(field: tuple[Path, list[Source]]) -> None:
    path, sources = field
    rms = np.array([r.local_rms_jy for r in measure_many(read_image(path), _positions(sources))])
    assert abs(np.median(rms) / SPEC.noise_jy - 1.0) < 0.10
    assert np.all(np.abs(rms / SPEC.noise_jy - 1.0) < 0.25)


def test_snr_and_peak(field: tuple[Path, list[Source]]) -> None:
    path, sources = field
    image = read_image(path)
    bright = max(sources, key=lambda s: s.flux_jy)
    options = PhotometryOptions(systematic_fraction=0.01)
    result = measure(image, bright.ra_deg, bright.dec_deg, name="bright", options=options)
    assert result.snr is not None and result.flux_jy is not None and result.flux_err_jy is not None
    assert result.peak_err_jy is not None
    # The SNR is over the thermal error; the flux error adds the systematic part in quadrature.
    thermal = result.flux_jy / result.snr
    systematic = 0.01 * result.flux_jy
    assert result.flux_err_jy == pytest.approx(np.hypot(thermal, systematic))
    assert result.snr > 50
    # The nearest pixel lies within ~half a pixel of the peak: at most a few per cent low, plus noise.
    assert result.peak_jy == pytest.approx(bright.flux_jy, abs=0.06 * bright.flux_jy + 3 * result.peak_err_jy)
    assert result.mjd == pytest.approx(SPEC.mjd)

    # A blank position: the SNR is that of noise.
    ra, dec = offset_position(SPEC, 100, -100)
    blank = measure(image, ra, dec)
    assert blank.snr is not None and abs(blank.snr) < 4


@pytest.mark.parametrize("bpa", [0.0, 30.0, 100.0, -45.0])
def test_noise_free_flux_is_exact_for_any_beam_angle(tmp_path: Path, bpa: float) -> None:
    """Without noise the beam fit returns the injected flux at sub-pixel positions: orientation is right."""
    spec = ImageSpec(noise_jy=0.0, bpa_deg=bpa, bmaj_arcsec=24.0, bmin_arcsec=10.0)
    sources = [
        Source("a", *offset_position(spec, 10.3, -20.7), 0.02),
        Source("b", *offset_position(spec, -40.5, 33.5), 0.1),
    ]
    results = measure_many(
        read_image(make_image(tmp_path / "clean.fits", sources, spec)), _positions(sources)
    )
    for result, source in zip(results, sources, strict=True):
        assert result.flux_jy == pytest.approx(source.flux_jy, rel=1e-3)


def test_peak_max_mode_finds_the_peak(tmp_path: Path) -> None:
    spec = ImageSpec(noise_jy=0.0)
    source = Source("a", *offset_position(spec, 10.5, 7.5), 0.05)
    image = read_image(make_image(tmp_path / "clean.fits", [source], spec))
    nearest = measure(image, source.ra_deg, source.dec_deg)
    best = measure(image, source.ra_deg, source.dec_deg, options=PhotometryOptions(peak_mode=PeakMode.MAX))
    assert best.peak_jy is not None and nearest.peak_jy is not None
    assert nearest.peak_jy <= best.peak_jy <= source.flux_jy


def test_edge_and_off_image_flags(tmp_path: Path) -> None:
    spec = ImageSpec()
    near = Source("near", *offset_position(spec, 0, spec.npix / 2 - 2), 0.05)
    path = make_image(tmp_path / "edge.fits", [near], spec)
    off_ra, off_dec = offset_position(spec, 0, spec.npix)
    results = measure_many(
        read_image(path), [*_positions([near]), SkyPosition(name="off", ra_deg=off_ra, dec_deg=off_dec)]
    )
    assert Flag.NEAR_EDGE in results[0].flags
    assert results[0].flux_jy is not None
    assert results[1].flags == [Flag.OFF_IMAGE]
    assert results[1].flux_jy is None and results[1].snr is None


def test_low_primary_beam_flag(field: tuple[Path, list[Source]]) -> None:
    path, sources = field
    image = read_image(path)
    at_centre = PhotometryOptions(pointing_ra_deg=SPEC.ra0_deg, pointing_dec_deg=SPEC.dec0_deg)
    result = measure(image, sources[0].ra_deg, sources[0].dec_deg, options=at_centre)
    assert result.pb_response is not None and result.pb_response > 0.99
    assert Flag.LOW_PB not in result.flags
    # A pointing 3° away puts the position beyond the first null region of the 2.7° FWHM beam.
    far = PhotometryOptions(pointing_ra_deg=SPEC.ra0_deg, pointing_dec_deg=SPEC.dec0_deg + 3.0)
    result = measure(image, sources[0].ra_deg, sources[0].dec_deg, options=far)
    assert result.pb_response is not None and result.pb_response < 0.1
    assert Flag.LOW_PB in result.flags


def test_missing_beam_keywords_name_the_file(tmp_path: Path) -> None:
    path = make_image(tmp_path / "nobeam.fits", [], ImageSpec(), with_beam=False)
    with pytest.raises(BeamKeywordsMissingError, match=r"nobeam\.fits.*BMAJ") as info:
        read_image(path)
    assert isinstance(info.value, InvalidInputError)


def test_cube_and_date_obs(tmp_path: Path) -> None:
    spec = ImageSpec(noise_jy=0.0, mjd=None)
    source = Source("a", *offset_position(spec, 3.2, -4.9), 0.03)
    path = make_image(tmp_path / "cube.fits", [source], spec, cube=True)
    with fits.open(path, mode="update") as hdul:
        hdul[0].header["DATE-OBS"] = "2025-01-02T03:04:05"
    image = read_image(path)
    assert image.data.shape == (spec.npix, spec.npix)
    assert image.mjd == pytest.approx(60677.127835648, abs=1e-6)
    assert measure(image, source.ra_deg, source.dec_deg).flux_jy == pytest.approx(0.03, rel=1e-3)


def test_catalogue_reading(tmp_path: Path) -> None:
    path = tmp_path / "monitoring_sources.csv"
    path.write_text(
        "# monitoring list\nname,ra_deg,dec_deg,priority,reference,flux_mjy\n"
        "J1000+5000,150.0,50.0,1,true,120\n\nJ1001+5001,150.25,50.02,,no,8\n"
    )
    sources = read_catalog(path)
    assert [s.name for s in sources] == ["J1000+5000", "J1001+5001"]
    assert sources[0].reference and sources[0].priority == 1
    assert not sources[1].reference and sources[1].priority is None
    assert [s.name for s in select_bright(sources, 10.0)] == ["J1000+5000"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("J1,abc,50.0", r"line 3: ra_deg 'abc' is not a number"),
        ("J1,150.0,95.0", r"line 3: dec_deg 95.0 is outside"),
        ("J1,150.0", r"line 3: expected 3 fields, found 2"),
        ("J0,151.0,50.0", r"line 3: name 'J0' already used on line 2"),
    ],
)
def test_catalogue_errors_give_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f"name,ra_deg,dec_deg\nJ0,150.0,50.0\n{row}\n")
    with pytest.raises(CatalogError, match=rf"bad\.csv {message}"):
        read_catalog(path)


def test_parse_coords() -> None:
    positions = parse_coords("150.1,50.2; 10:00:00,+50:00:00")
    assert [p.name for p in positions] == ["pos1", "pos2"]
    assert positions[1].ra_deg == pytest.approx(150.0) and positions[1].dec_deg == pytest.approx(50.0)
    with pytest.raises(CatalogError, match=r"coordinate 2 '150\.1 50\.2'"):
        parse_coords("150,50; 150.1 50.2")


def test_cli_peak_and_peak_many(field: tuple[Path, list[Source]]) -> None:
    path, sources = field
    src = sources[0]
    result = runner.invoke(
        app, ["peak", "--fits", str(path), "--ra", str(src.ra_deg), "--dec", str(src.dec_deg)]
    )
    assert result.exit_code == 0, result.output
    assert "target" in result.output

    coords = "; ".join(f"{s.ra_deg},{s.dec_deg}" for s in sources[:3])
    result = runner.invoke(app, ["peak-many", "--fits", str(path), "--coords", coords, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == ["pos1", "pos2", "pos3"]
    for row, source in zip(rows, sources[:3], strict=True):
        assert abs(row["flux_jy"] - source.flux_jy) < 3 * row["flux_err_jy"]


def test_cli_catalog_with_min_flux(field: tuple[Path, list[Source]], tmp_path: Path) -> None:
    path, sources = field
    catalog = tmp_path / "monitoring_sources.csv"
    lines = ["name,ra_deg,dec_deg,flux_mjy"] + [
        f"{s.name},{s.ra_deg},{s.dec_deg},{s.flux_jy * 1e3}" for s in sources
    ]
    catalog.write_text("\n".join(lines) + "\n")
    result = runner.invoke(
        app,
        ["catalog", "--direct", "--fits", str(path), "--catalog", str(catalog), "--min-mjy", "50", "--json"],
    )
    assert result.exit_code == 0, result.output
    names = {r["name"] for r in json.loads(result.stdout)}
    assert names == {s.name for s in sources if s.flux_jy >= 0.05}


def test_cli_bad_input(field: tuple[Path, list[Source]], tmp_path: Path) -> None:
    path, _ = field
    missing = runner.invoke(
        app, ["peak", "--fits", str(tmp_path / "nope.fits"), "--ra", "150", "--dec", "50"]
    )
    assert missing.exit_code == 1
    assert "nope.fits: no such FITS image" in missing.output

    bad = runner.invoke(app, ["peak-many", "--fits", str(path), "--coords", "150.0,50.0; 150.1;50.2"])
    assert bad.exit_code == 1
    assert "coordinate 2 '150.1': expected one comma" in bad.output

    out_of_range = runner.invoke(app, ["peak", "--fits", str(path), "--ra", "400", "--dec", "50"])
    assert out_of_range.exit_code == 1
    assert "RA must be in [0, 360)" in out_of_range.output

    bad_catalog = tmp_path / "bad.csv"
    bad_catalog.write_text("name,ra,dec\nA,1,2\n")
    result = runner.invoke(app, ["catalog", "--direct", "--fits", str(path), "--catalog", str(bad_catalog)])
    assert result.exit_code == 1
    assert "header lacks column(s) ra_deg, dec_deg" in result.output


def test_the_fitted_gaussian_recovers_sources_away_from_the_forced_position(tmp_path: Path) -> None:
    """Catalogue positions 3″ (0.75 pixel) off the truth: the forced flux drops, the photutils fit
    with a free centre recovers flux and position, and its error bars are the right size."""
    spec = ImageSpec(npix=512)
    rng = np.random.default_rng(4)
    ratios, pulls, position_ratios, forced_ratios = [], [], [], []
    for realisation in range(4):
        sources, forced = [], []
        for i in range(12):
            dx, dy = rng.uniform(-220, 220, 2)
            ra, dec = offset_position(spec, dx, dy)
            sources.append(Source(f"S{i}", ra, dec, float(10 ** rng.uniform(-2, -0.5))))
            angle = rng.uniform(0, 2 * np.pi)
            ra_f, dec_f = offset_position(spec, dx + 0.75 * np.cos(angle), dy + 0.75 * np.sin(angle))
            forced.append(SkyPosition(name=f"S{i}", ra_deg=ra_f, dec_deg=dec_f))
        image = make_image(tmp_path / f"r{realisation}.fits", sources, spec, seed=realisation)
        for truth, got in zip(sources, measure_file(image, forced, PhotometryOptions()), strict=True):
            assert got.fit_flux_jy is not None and got.fit_flux_err_jy is not None
            assert got.fit_ra_deg is not None and got.fit_dec_deg is not None and got.fit_pos_err_arcsec
            assert got.flux_jy is not None
            forced_ratios.append(got.flux_jy / truth.flux_jy)
            ratios.append(got.fit_flux_jy / truth.flux_jy)
            pulls.append((got.fit_flux_jy - truth.flux_jy) / got.fit_flux_err_jy)
            miss = float(
                SkyCoord(truth.ra_deg, truth.dec_deg, unit="deg")
                .separation(SkyCoord(got.fit_ra_deg, got.fit_dec_deg, unit="deg"))
                .arcsec
            )
            position_ratios.append(miss / got.fit_pos_err_arcsec)
    # 3″ off a 20″ × 14″ beam costs the forced flux ~5 %; the fit gets it back.
    assert np.median(forced_ratios) < 0.97
    assert abs(np.median(ratios) - 1.0) < 0.01
    assert 0.75 < np.std(pulls) < 1.3 and abs(np.mean(pulls)) < 0.35
    # The error is a 1σ radius: the rms of miss/error is 1 for a 2-D Gaussian scatter.
    assert 0.7 < float(np.sqrt(np.mean(np.square(position_ratios)))) < 1.3


def test_a_resolved_source_is_measured_with_a_free_shape(tmp_path: Path) -> None:
    """A Gaussian twice the beam's size: the beam-shaped fit misses flux, the free-shape fit does not."""
    spec = ImageSpec(npix=256, noise_jy=2e-4)
    path = make_image(tmp_path / "empty.fits", [], spec, seed=9)
    with fits.open(path) as hdul:
        data = hdul[0].data.astype(float)
        header = hdul[0].header
    flux = 0.2  # Jy, integrated
    major, minor = 2 * spec.bmaj_arcsec / spec.pixel_arcsec, 2 * spec.bmin_arcsec / spec.pixel_arcsec
    # Peak in Jy/beam: the integrated flux times the beam's area over the source's (4 times larger).
    peak = flux / 4.0
    sigma = 1 / np.sqrt(8 * np.log(2))
    model = Gaussian2D(peak, 128.3, 127.6, major * sigma, minor * sigma, np.radians(90 + spec.bpa_deg))
    yy, xx = np.mgrid[0:256, 0:256].astype(float)
    fits.PrimaryHDU((data + model(xx, yy)).astype(np.float32), header).writeto(path, overwrite=True)
    ra, dec = make_wcs(spec).pixel_to_world_values(128.3, 127.6)
    position = [SkyPosition(name="big", ra_deg=float(ra), dec_deg=float(dec))]
    point = measure_file(path, position, PhotometryOptions(fit_radius_fwhm=2.5))[0]
    resolved = measure_file(path, position, PhotometryOptions(fit_radius_fwhm=2.5, fit_shape=True))[0]
    assert point.fit_flux_jy is not None and point.fit_flux_jy < 0.5 * flux
    assert resolved.fit_flux_jy == pytest.approx(flux, rel=0.03)
    assert resolved.fit_major_arcsec == pytest.approx(2 * spec.bmaj_arcsec, rel=0.05)
    assert resolved.fit_minor_arcsec == pytest.approx(2 * spec.bmin_arcsec, rel=0.05)
    # Held at a position 8″ (2 pixels) off, the fit stays there and stretches to reach the flux.
    off_ra, off_dec = make_wcs(spec).pixel_to_world_values(130.3, 127.6)
    off = [SkyPosition(name="off", ra_deg=float(off_ra), dec_deg=float(off_dec))]
    held = measure_file(
        path, off, PhotometryOptions(fit_radius_fwhm=2.5, fit_shape=True, fit_fixed_position=True)
    )[0]
    free = measure_file(path, off, PhotometryOptions(fit_radius_fwhm=2.5, fit_shape=True))[0]
    assert held.fit_offset_arcsec is not None and held.fit_offset_arcsec < 0.01
    assert free.fit_offset_arcsec == pytest.approx(8.0, abs=1.0)
    assert free.fit_flux_jy == pytest.approx(flux, rel=0.03)
    assert held.fit_major_arcsec is not None and free.fit_major_arcsec is not None
    assert held.fit_major_arcsec > free.fit_major_arcsec + 1.0
