"""Small survey tables written in the layouts the real releases use, with known contents."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io.votable import from_table
from astropy.table import Table


def random_sky(n: int, ra_deg: float, dec_deg: float, radius_deg: float, seed: int) -> tuple[np.ndarray, ...]:
    """``n`` positions uniform within a cap, and fluxes (mJy) log-uniform from 1 to 1000."""
    rng = np.random.default_rng(seed)
    centre = SkyCoord(ra_deg * u.deg, dec_deg * u.deg)
    rho = np.degrees(np.arccos(1 - rng.uniform(0, 1, n) * (1 - np.cos(np.radians(radius_deg)))))
    pa = rng.uniform(0, 360, n)
    points = centre.directional_offset_by(pa * u.deg, rho * u.deg)
    flux = 10 ** rng.uniform(0, 3, n)
    return points.ra.deg, points.dec.deg, flux


def nvss_nrao_fits(path: Path, ra: np.ndarray, dec: np.ndarray, flux_mjy: np.ndarray) -> Path:
    """NRAO's FITS release: degrees, peak in Jy/beam, sizes in degrees, no names."""
    table = Table()
    table["RA(2000)"] = ra * u.deg
    table["DEC(2000)"] = dec * u.deg
    table["PEAK INT"] = flux_mjy / 1000.0 * u.Jy / u.beam
    table["MAJOR AX"] = np.full(len(ra), 45.0 / 3600) * u.deg
    table["MINOR AX"] = np.full(len(ra), 45.0 / 3600) * u.deg
    table["POSANGLE"] = np.zeros(len(ra)) * u.deg
    table.write(path, format="fits", overwrite=True)
    return path


def nvss_vizier_csv(path: Path, ra: np.ndarray, dec: np.ndarray, flux_mjy: np.ndarray) -> Path:
    """VizieR VIII/65 as CSV: sexagesimal positions, S1.4 in mJy, a units row and a dashes row."""
    coords = SkyCoord(ra * u.deg, dec * u.deg)
    lines = [
        "NVSS,RAJ2000,DEJ2000,S1.4,e_S1.4,MajAxis,MinAxis,PA",
        ',"h:m:s",deg,mJy,mJy,arcsec,arcsec,deg',
        "----,-------,-------,----,------,-------,-------,--",
    ]
    for i, c in enumerate(coords):
        ra_s = c.ra.to_string(unit=u.hourangle, sep=" ", precision=2, pad=True)
        dec_s = c.dec.to_string(sep=" ", precision=1, alwayssign=True, pad=True)
        lines.append(
            f"{c.ra.to_string(unit=u.hourangle, sep='', precision=1)}{i},{ra_s},{dec_s},"
            f"{flux_mjy[i]:.1f},0.5,50,45,0"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def first_fits(path: Path, ra: np.ndarray, dec: np.ndarray, flux_mjy: np.ndarray) -> Path:
    """The FIRST team's catalogue: degrees, FPEAK and FINT in mJy, sizes in arcsec."""
    table = Table()
    table["RA"] = ra
    table["DEC"] = dec
    table["FPEAK"] = flux_mjy * 0.9
    table["FINT"] = flux_mjy
    table["RMS"] = np.full(len(ra), 0.15)
    table["MAJOR"] = np.full(len(ra), 2.0)
    table["MINOR"] = np.full(len(ra), 1.0)
    table["POSANG"] = np.full(len(ra), 30.0)
    table.write(path, format="fits", overwrite=True)
    return path


def vlass_csv(path: Path, ra: np.ndarray, dec: np.ndarray, flux_mjy: np.ndarray) -> Path:
    """The CIRADA VLASS component catalogue as CSV: names, degrees, mJy at 3 GHz."""
    table = Table()
    table["Component_name"] = [f"VLASS1QLCIR J{i:06d}" for i in range(len(ra))]
    table["RA"] = ra
    table["DEC"] = dec
    table["Total_flux"] = flux_mjy
    table["E_Total_flux"] = flux_mjy * 0.05
    table["Peak_flux"] = flux_mjy * 0.8
    table.write(path, format="ascii.csv", overwrite=True)
    return path


def racs_votable(path: Path, ra: np.ndarray, dec: np.ndarray, flux_mjy: np.ndarray) -> Path:
    """CASDA's RACS-low source catalogue as a VOTable, with units on the columns."""
    table = Table()
    table["Source_Name"] = [f"RACS_{i:04d}" for i in range(len(ra))]
    table["RA"] = ra * u.deg
    table["Dec"] = dec * u.deg
    table["Total_flux_Source"] = flux_mjy * u.mJy
    table["E_Total_flux_Source"] = flux_mjy * 0.05 * u.mJy
    table["Maj"] = np.full(len(ra), 20.0) * u.arcsec
    table["Min"] = np.full(len(ra), 15.0) * u.arcsec
    table["PA"] = np.full(len(ra), 10.0) * u.deg
    from_table(table).to_xml(str(path))
    return path
