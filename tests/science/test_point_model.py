"""The calibrator's point-source model, against CASA's ft on the same Measurement Set."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from science import casa_env
from science.errors import InvalidInputError
from science.point_model import write_point_model
from tests.support.processes import REPO


def _model(ms: Path) -> np.ndarray:
    from casatools import table

    tb = table()
    tb.open(str(ms))
    try:
        return np.asarray(tb.getcol("MODEL_DATA"))
    finally:
        tb.close()


def _without_model_column(source: Path, ms: Path) -> Path:
    from casatools import table

    shutil.copytree(source, ms)
    tb = table()
    tb.open(str(ms), nomodify=False)
    try:
        if "MODEL_DATA" in tb.colnames():
            tb.removecols("MODEL_DATA")
    finally:
        tb.close()
    return ms


# CASA's ft of the same component, run in an interpreter of its own: in a long-running process (the test
# session, after other CASA work) ft sometimes writes NaN into whole integrations (docs/flux-accuracy.md,
# "A calibrator model with NaN in it"), which would fail this test for CASA's sake, not ours.
FT_SCRIPT = """
import sys
from science import casa_env
casa_env.configure(sys.argv[4])
from casatasks import ft
from casatools import componentlist
ms, ra, dec, log_dir = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
cl = componentlist()
cl.done()
cl.addcomponent(dir=f"ICRS {ra}deg {dec}deg", flux=10.0, fluxunit="Jy", freq="1.4GHz", shape="point",
                spectrumtype="spectral index", index=-0.7)
cl.rename(log_dir + "/source.cl")
cl.close()
ft(vis=ms, complist=log_dir + "/source.cl", usescratch=True)
"""


def _ft_in_a_fresh_process(ms: Path, ra: float, dec: float, tmp_path: Path) -> None:
    log_dir = tmp_path / "ft"
    log_dir.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", FT_SCRIPT, str(ms), repr(ra), repr(dec), str(log_dir)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.science
def test_the_model_is_what_ft_writes(converted_pair, tmp_path: Path) -> None:
    """A 10 Jy source 0.4° east and 0.25° north of the phase centre, spectral index −0.7: the same
    visibilities as ft of the component (given in ICRS, the MS's frame) to 1e-6 of the flux."""
    casa_env.configure(tmp_path / "logs")
    from casatools import table

    ours = _without_model_column(converted_pair.calibrator.ms_path, tmp_path / "ours.ms")
    theirs = tmp_path / "theirs.ms"
    shutil.copytree(ours, theirs)
    tb = table()
    tb.open(str(ours / "FIELD"))
    ra0, dec0 = np.asarray(tb.getcol("PHASE_DIR"))[:, 0, 0]
    tb.close()
    ra = float(np.degrees(ra0) + 0.4 / np.cos(dec0))
    dec = float(np.degrees(dec0) + 0.25)

    write_point_model(ours, ra, dec, lambda f: 10.0 * (f / 1.4e9) ** -0.7)

    _ft_in_a_fresh_process(theirs, ra, dec, tmp_path)

    ours_model, theirs_model = _model(ours), _model(theirs)
    assert ours_model.shape == theirs_model.shape
    assert np.isfinite(theirs_model).all(), "CASA's ft wrote NaN: the reference, not the model under test"
    assert np.max(np.abs(ours_model - theirs_model)) < 1e-5
    # The phases are not trivial at this offset: a wrong sign would miss by up to twice the flux.
    assert np.ptp(np.angle(ours_model[0, 0])) > 3.0


@pytest.mark.science
def test_a_model_that_is_not_finite_is_refused(converted_pair, tmp_path: Path) -> None:
    casa_env.configure(tmp_path / "logs")
    ms = _without_model_column(converted_pair.calibrator.ms_path, tmp_path / "calibrator.ms")
    with pytest.raises(InvalidInputError, match=r"calibrator\.ms: the point-source model is not finite"):
        write_point_model(ms, 202.78, 30.51, lambda f: np.full(f.shape, np.nan))
