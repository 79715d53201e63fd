"""The rapid-rise trigger over a simulated night: one injected rise flagged, constant sources never."""

from __future__ import annotations

import numpy as np

from science.lightcurves import TransientCriteria, assess, rise_significance
from science.photometry import PhotometryResult
from science.variability import Measurement

MJD0 = 61000.0
EPOCHS = 24  # two hours of 5-minute tiles
SOURCES = 25
REFERENCES = 4


def _night(rise_at: int | None, rise_sigma: float, seed: int) -> list[list[PhotometryResult]]:
    """Per epoch, the forced measurements of constant sources (one of which, ``R0``, may rise at the
    epoch ``rise_at`` by ``rise_sigma`` of its error) and of reference sources; each epoch has its own
    1 % calibration scale error, which normalisation must take out."""
    rng = np.random.default_rng(seed)
    fluxes = {f"S{i:02d}": float(10 ** rng.uniform(-2, -0.5)) for i in range(SOURCES)}
    fluxes |= {f"REF{i}": 0.5 for i in range(REFERENCES)}
    fluxes["R0"] = 0.05
    epochs = []
    for epoch in range(EPOCHS):
        scale = 1.0 + rng.normal(0, 0.01)
        rows = []
        for name, flux in fluxes.items():
            err = float(np.hypot(1e-3, 0.004 * flux))
            true = flux
            if name == "R0" and rise_at is not None and epoch >= rise_at:
                true = flux + rise_sigma * err
            rows.append(
                PhotometryResult(
                    name=name,
                    ra_deg=0.0,
                    dec_deg=0.0,
                    image_path=f"/images/e{epoch:02d}.fits",
                    mjd=MJD0 + epoch * 300 / 86400,
                    flux_jy=scale * true + float(rng.normal(0, err)),
                    flux_err_jy=err,
                    snr=true / err,
                )
            )
        epochs.append(rows)
    return epochs


def _flagged_over_the_night(epochs: list[list[PhotometryResult]]) -> dict[str, list[int]]:
    """Assess after every epoch, as the streaming pipeline does; which sources rose, and when."""
    flagged: dict[str, list[int]] = {}
    names = sorted({r.name for r in epochs[0]} - {f"REF{i}" for i in range(REFERENCES)})
    references = [f"REF{i}" for i in range(REFERENCES)]
    seen: list[PhotometryResult] = []
    for index, rows in enumerate(epochs):
        seen.extend(rows)
        update = assess(seen, names, references, min_epochs=3, criteria=TransientCriteria())
        for source in update.sources:
            if source.rapid_rise:
                flagged.setdefault(source.metrics.name, []).append(index)
    return flagged


def test_a_constant_night_raises_no_rise() -> None:
    assert _flagged_over_the_night(_night(None, 0.0, seed=11)) == {}


def test_a_five_sigma_rise_is_flagged_when_it_happens_and_nothing_else_is() -> None:
    flagged = _flagged_over_the_night(_night(rise_at=20, rise_sigma=5.0, seed=12))
    assert set(flagged) == {"R0"}
    # At 4σ a 5σ step is caught on its first epoch five times in six; a step that stays up is caught
    # on the next one when noise hid the first (this seed's case).
    assert flagged["R0"][0] in (20, 21)


def test_the_rise_is_measured_against_the_earlier_mean() -> None:
    points = [
        Measurement(mjd=MJD0 + i, flux_jy=f, flux_err_jy=0.1) for i, f in enumerate([1.0, 1.2, 0.8, 1.5])
    ]
    # Baseline 1.0 ± 0.1/√3; the last point is 0.5 above it: 0.5 / √(0.01 + 0.01/3) = 4.33σ.
    assert rise_significance(points) == np.float64(0.5 / np.sqrt(0.01 + 0.01 / 3)).item()
    assert rise_significance(points[:1]) is None
