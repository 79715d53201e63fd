"""A point source's visibilities written into MODEL_DATA, in place of CASA's ``ft``.

``ft`` of a one-component list now and then left NaN in one integration of MODEL_DATA in a long-running
process, and every bandpass channel then failed to converge: 6 of 16 calibrator solves in two
48-antenna ``bench/accuracy.py`` runs, twice in a row for one of them, and never in a fresh process on
the same data. A point source needs no gridding: its visibility is S(ν)·exp(2πi(ul + vm + w(n − 1))ν/c)
on the parallel hands, which is what ``ft`` writes, to 1e-7, for a component given in ICRS
(``tests/science/test_point_model.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from science.beam import SPEED_OF_LIGHT_M_S
from science.constants import SECONDS_PER_DAY
from science.errors import InvalidInputError

_ROW_CHUNK = 20_000
# CORR_TYPE (casacore Stokes enum) of the parallel hands: RR, LL, XX, YY. Cross hands stay 0.
PARALLEL_HANDS = frozenset({5, 8, 9, 12})

Spectrum = Callable[[NDArray[np.float64]], NDArray[np.float64]]
"""Flux density (Jy) at each frequency (Hz)."""
Response = Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]]
"""Primary-beam power response towards the source at each time (MJD) × frequency (Hz)."""


def direction_cosines(
    ra_rad: float, dec_rad: float, ra0_rad: float, dec0_rad: float
) -> tuple[float, float, float]:
    """(l, m, n) of (ra, dec) about the phase centre (ra0, dec0)."""
    dra = ra_rad - ra0_rad
    l = np.cos(dec_rad) * np.sin(dra)  # noqa: E741  (the standard name)
    m = np.sin(dec_rad) * np.cos(dec0_rad) - np.cos(dec_rad) * np.sin(dec0_rad) * np.cos(dra)
    return float(l), float(m), float(np.sqrt(max(1.0 - l * l - m * m, 0.0)))


def write_point_model(
    ms: Path, ra_deg: float, dec_deg: float, spectrum: Spectrum, response: Response | None = None
) -> None:
    """Fill MODEL_DATA of ``ms`` (adding the column if needed) with an unpolarised point source at ICRS
    (``ra_deg``, ``dec_deg``), times ``response`` when given. Raises :class:`InvalidInputError`, naming
    the MS and the rows, rather than write a value that is not finite."""
    from casatools import table

    tb = table()
    ddid_spw, ddid_pol = _subtable_cols(tb, ms / "DATA_DESCRIPTION", "SPECTRAL_WINDOW_ID", "POLARIZATION_ID")
    tb.open(str(ms / "SPECTRAL_WINDOW"))
    try:
        spw_freqs = [np.asarray(tb.getcell("CHAN_FREQ", i), dtype=float) for i in range(tb.nrows())]
    finally:
        tb.close()
    tb.open(str(ms / "POLARIZATION"))
    try:
        parallel = [np.isin(tb.getcell("CORR_TYPE", i), list(PARALLEL_HANDS)) for i in range(tb.nrows())]
    finally:
        tb.close()
    tb.open(str(ms / "FIELD"))
    try:
        phase_dirs = np.asarray(tb.getcol("PHASE_DIR"))[:, 0, :]  # (2, nfield), radians
    finally:
        tb.close()
    source = (np.radians(ra_deg), np.radians(dec_deg))
    cosines = [direction_cosines(*source, *phase_dirs[:, f]) for f in range(phase_dirs.shape[1])]

    tb.open(str(ms), nomodify=False)
    try:
        if "MODEL_DATA" not in tb.colnames():
            _add_model_column(tb)
        nrows = tb.nrows()
        for start in range(0, nrows, _ROW_CHUNK):
            n = min(_ROW_CHUNK, nrows - start)
            uvw = np.asarray(tb.getcol("UVW", start, n), dtype=float)
            ddid = np.asarray(tb.getcol("DATA_DESC_ID", start, n))
            field = np.asarray(tb.getcol("FIELD_ID", start, n))
            times_mjd = np.asarray(tb.getcol("TIME", start, n), dtype=float) / SECONDS_PER_DAY
            shapes = {
                (parallel[int(ddid_pol[d])].size, spw_freqs[int(ddid_spw[d])].size) for d in np.unique(ddid)
            }
            if len(shapes) > 1:
                raise InvalidInputError(f"{ms}: rows {start}-{start + n} mix data shapes {sorted(shapes)}")
            model = np.zeros((*shapes.pop(), n), dtype=np.complex64)
            for dd in np.unique(ddid):
                freqs = spw_freqs[int(ddid_spw[dd])]
                hands = parallel[int(ddid_pol[dd])]
                for f in np.unique(field[ddid == dd]):
                    rows = (ddid == dd) & (field == f)
                    vis = _visibilities(uvw[:, rows], cosines[int(f)], freqs, spectrum)
                    if response is not None:
                        times, inverse = np.unique(times_mjd[rows], return_inverse=True)
                        vis *= response(times, freqs)[inverse]
                    model[np.ix_(hands, np.arange(freqs.size), np.flatnonzero(rows))] = vis.T[None, :, :]
            bad = ~np.isfinite(model).all(axis=(0, 1))
            if bad.any():
                raise InvalidInputError(
                    f"{ms}: the point-source model is not finite in {int(bad.sum())} rows from row "
                    f"{start + int(np.argmax(bad))} (source at {ra_deg}, {dec_deg}): "
                    "check UVW and the spectrum"
                )
            tb.putcol("MODEL_DATA", model, start, n)
    finally:
        tb.close()


def _visibilities(
    uvw: NDArray[np.float64], lmn: tuple[float, float, float], freqs: NDArray[np.float64], spectrum: Spectrum
) -> NDArray[np.complex128]:
    """(rows, channels) visibilities of a unit-response point source at (l, m, n)."""
    l, m, n = lmn  # noqa: E741
    delay_m = uvw[0] * l + uvw[1] * m + uvw[2] * (n - 1.0)
    phase = (2.0 * np.pi / SPEED_OF_LIGHT_M_S) * delay_m[:, None] * freqs[None, :]
    return np.asarray(spectrum(freqs)[None, :] * np.exp(1j * phase))


def _subtable_cols(tb: Any, path: Path, *columns: str) -> list[NDArray[np.int_]]:
    tb.open(str(path))
    try:
        return [np.asarray(tb.getcol(c)) for c in columns]
    finally:
        tb.close()


def _add_model_column(tb: Any) -> None:
    """MODEL_DATA described like DATA, in its own tiled storage manager (as CASA adds it)."""
    desc = dict(tb.getcoldesc("DATA"))
    desc["comment"] = "The model data column"
    desc.pop("keywords", None)
    tb.addcols({"MODEL_DATA": desc}, {"TYPE": "TiledShapeStMan", "NAME": "ModelTiled", "SPEC": {}})
