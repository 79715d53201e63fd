"""Flux accuracy on one small, fixed realisation of the accuracy benchmark (``bench/accuracy.py``).

A 3C286 transit and a target field five minutes later, in the correlator's layout, through the real
chain (convert → solve → apply → WSClean → forced photometry) with the default settings. The
sources are all bright enough (50–500σ) that the median flux bias must be under 2 %, the errors
must describe the scatter, and the fitted positions must be within a fifth of the beam's minor axis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.accuracy import ChainSettings, SourceRow, _scene, measure, prepare, summarise


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> list[SourceRow]:
    settings = ChainSettings()
    scene = _scene(np.random.default_rng(2026), 10, settings, (50.0, 500.0))
    work: Path = tmp_path_factory.mktemp("accuracy")
    prepared = prepare(0, scene, settings, work, seed=3)
    return measure(prepared, settings, work)


@pytest.mark.science
def test_bright_sources_unbiased_to_two_percent(rows: list[SourceRow]) -> None:
    bright = [r for r in rows if r.true_jy / r.image_rms_jy >= 50 and r.flux_jy is not None]
    assert len(bright) >= 8
    ratios = [r.flux_jy / r.true_jy for r in bright if r.flux_jy is not None]
    report = ", ".join(
        f"{r.name} {r.true_jy * 1e3:.0f} mJy: {q:.4f}" for r, q in zip(bright, ratios, strict=True)
    )
    print(report)
    assert abs(float(np.median(ratios)) - 1.0) < 0.02, report


@pytest.mark.science
def test_errors_describe_the_scatter_and_positions_are_right(rows: list[SourceRow]) -> None:
    pulls = [(r.flux_jy - r.true_jy) / r.flux_err_jy for r in rows if r.flux_jy is not None and r.flux_err_jy]
    assert len(pulls) == len(rows)
    # Ten sources: a loose bound that a wrong error model (a factor 2 either way) still fails.
    assert float(np.sqrt(np.mean(np.square(pulls)))) < 2.5, pulls
    errors = [r.position_error_minor for r in rows]
    assert all(e is not None and e < 0.2 for e in errors), errors
    (summary,) = [b for b in summarise(rows) if b.n == max(b.n for b in summarise(rows))]
    assert summary.median_ratio == pytest.approx(1.0, abs=0.02)
