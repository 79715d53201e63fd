"""A reconverted observation (a late subband came in) replaces the old one in the light curves."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from contimg.store import products
from contimg.store.lightcurves import load_photometry
from science.convert import ConversionRecord, Phasing


def conversion(version: int, missing: list[str]) -> ConversionRecord:
    suffix = "" if version == 1 else f".v{version}"
    return ConversionRecord(
        ms_path=Path(f"/data/ms/2025-06-01T05:00:00{suffix}.ms"),
        group_id="2025-06-01T05:00:00",
        start_mjd=60827.208,
        end_mjd=60827.212,
        mid_mjd=60827.210,
        ra_deg=10.0,
        dec_deg=40.0,
        pointing_dec_apparent_deg=40.1,
        phasing=Phasing.FRINGESTOPPED,
        subbands_present=[f"sb{i:02d}" for i in range(16) if f"sb{i:02d}" not in missing],
        subbands_missing=missing,
        version=version,
        n_antennas=24,
        n_channels=768,
        status="partial" if missing else "complete",
    )


def measure(conn: psycopg.Connection, ms_path: Path, flux_jy: float) -> None:
    image = f"{ms_path}.img.fits"
    conn.execute(
        """INSERT INTO products.images (path, ms_path, ms_id, imager, residual_path, psf_path, preview_path,
               noise_jy, peak_jy, bmaj_arcsec, bmin_arcsec, bpa_deg, center_ra_deg, center_dec_deg, freq_hz,
               mid_mjd, mid_time, params)
           VALUES (%s, %s, (SELECT id FROM products.ms_index WHERE path = %s), 'wsclean', 'r', 'p', 'v',
               0.001, 1, 20, 10, 0, 10, 40, 1.4e9, 60827.21, now(), %s)""",
        (image, str(ms_path), str(ms_path), Jsonb({})),
    )
    conn.execute(
        """INSERT INTO products.photometry (image_path, image_id, source_name, ra_deg, dec_deg, mjd, flux_jy,
               flux_err_jy)
           VALUES (%s, (SELECT id FROM products.images WHERE path = %s), 'S1', 10, 40, 60827.21, %s,
                   0.001)""",
        (image, image, flux_jy),
    )


def test_only_the_newest_version_of_an_observation_is_in_the_light_curve(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO products.sources (name, ra_deg, dec_deg, catalogue_path) VALUES ('S1', 10, 40, 'x')"
        )
        first = products.record_ms(conn, conversion(1, ["sb05"]))
        measure(conn, conversion(1, ["sb05"]).ms_path, 0.093)
        assert [r.flux_jy for r in load_photometry(conn, ["S1"])] == [0.093]

        second = products.record_ms(conn, conversion(2, []))
        measure(conn, conversion(2, []).ms_path, 0.100)
        rows = conn.execute(
            "SELECT id, version, superseded_by FROM products.ms_index ORDER BY version"
        ).fetchall()
        assert rows == [(first, 1, second), (second, 2, None)]
        assert [r.flux_jy for r in load_photometry(conn, ["S1"])] == [pytest.approx(0.100)]
        # Recording version 2 again (a retried hook) changes nothing.
        assert products.record_ms(conn, conversion(2, [])) == second
        with pytest.raises(psycopg.errors.UniqueViolation):
            products.record_ms(conn, conversion(2, []).model_copy(update={"ms_path": Path("/elsewhere.ms")}))


def test_a_mosaic_takes_only_the_newest_version_of_an_observation(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO products.sources (name, ra_deg, dec_deg, catalogue_path) VALUES ('S1', 10, 40, 'x')"
        )
        products.record_ms(conn, conversion(1, ["sb05"]))
        measure(conn, conversion(1, ["sb05"]).ms_path, 0.093)
        assert [Path(i.path).name for i in products.images_in_range(conn, 60827.0, 60828.0)] == [
            "2025-06-01T05:00:00.ms.img.fits"
        ]
        products.record_ms(conn, conversion(2, []))
        measure(conn, conversion(2, []).ms_path, 0.100)
        # The reconversion's image replaces the old one: the observation is in the mosaic once.
        assert [Path(i.path).name for i in products.images_in_range(conn, 60827.0, 60828.0)] == [
            "2025-06-01T05:00:00.v2.ms.img.fits"
        ]
