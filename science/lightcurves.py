"""Light curves: assess normalised forced photometry for variability and transients.

A source's light curve is its forced-photometry rows (``products.photometry``) in time order. Fluxes
are normalised against stable reference sources (``sources.reference``, or a given list) to take out
per-epoch calibration errors, then ``variability.compute_metrics`` gives η, V, χ²_ν and the largest
two-epoch Vs and m. A source is a *transient candidate* when its latest epoch is a detection
(SNR ≥ ``detection_snr``) and every earlier epoch a non-detection (SNR < ``nondetection_snr``).
Storing and loading them is ``contimg.store.lightcurves``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from science.photometry import PhotometryResult
from science.variability import (
    LightCurve,
    Measurement,
    VariabilityMetrics,
    VariabilityThresholds,
    compute_metrics,
    lightcurves_from_photometry,
    normalise,
)

# Fewer epochs than this give metrics too noisy to flag on.
DEFAULT_MIN_EPOCHS = 3

AlertKind = Literal["variable", "transient", "rapid_rise", "new_source"]
SortKey = Literal["eta", "v", "chi2", "name"]


class TransientCriteria(BaseModel):
    """The transient tests: detected now and never before, or a rapid rise since the last epoch."""

    detection_snr: float = Field(default=5.0, gt=0.0, description="latest epoch at or above this SNR")
    nondetection_snr: float = Field(default=3.0, gt=0.0, description="earlier epochs all below this SNR")
    # 4σ: a night is ~100 epochs of every monitored source, and at 3σ a hundred constant sources would
    # raise about 13 false rises a night (0.13 % per check); at 4σ, 0.3.
    rise_sigma: float = Field(
        default=4.0, gt=0.0, description="latest epoch above the earlier ones' mean by more than this many σ"
    )

    @model_validator(mode="after")
    def _ordered(self) -> TransientCriteria:
        if self.nondetection_snr > self.detection_snr:
            raise ValueError(
                f"nondetection_snr {self.nondetection_snr} is above detection_snr {self.detection_snr}"
            )
        return self


class SourceVariability(BaseModel):
    """The assessment of one source by one update."""

    metrics: VariabilityMetrics
    first_mjd: float | None = None
    last_mjd: float | None = None
    transient_candidate: bool = False
    latest_snr: float | None = None
    # (latest − mean of the earlier epochs) / the error of that difference, on the normalised curve.
    rise_sigma: float | None = None
    rapid_rise: bool = False


class LightcurveUpdate(BaseModel):
    """What one update assessed, and with which thresholds and references."""

    sources: list[SourceVariability]
    thresholds: VariabilityThresholds
    min_epochs: int
    references: list[str]


class Alert(BaseModel):
    """A row of ``products.alerts``."""

    id: int
    source_name: str | None = None
    detection_id: int | None = None
    kind: AlertKind
    metrics: dict[str, Any]
    task_id: int | None = None
    created_at: datetime
    acknowledged: bool = False


class StoredVariability(BaseModel):
    """A row of ``products.variability``: the metrics as the last update stored them."""

    source_name: str
    n_epochs: int
    first_mjd: float | None
    last_mjd: float | None
    mean_flux_jy: float | None
    weighted_mean_flux_jy: float | None
    eta: float | None
    v: float | None
    chi2_nu: float | None
    vs: float | None
    m: float | None
    vs_mjd_a: float | None
    vs_mjd_b: float | None
    is_variable: bool
    consistent_with_constant: bool | None
    transient_candidate: bool
    latest_snr: float | None
    rise_sigma: float | None = None
    rapid_rise: bool = False
    exceeded: list[str]
    thresholds: dict[str, Any]
    n_references: int
    task_id: int | None
    updated_at: datetime

    def to_metrics(self) -> VariabilityMetrics:
        """The stored values as ``VariabilityMetrics`` (for plots)."""
        pair = (self.vs_mjd_a, self.vs_mjd_b)
        return VariabilityMetrics(
            name=self.source_name,
            **self.model_dump(
                include={
                    "n_epochs",
                    "mean_flux_jy",
                    "weighted_mean_flux_jy",
                    "eta",
                    "v",
                    "chi2_nu",
                    "vs",
                    "m",
                    "is_variable",
                    "consistent_with_constant",
                    "exceeded",
                }
            ),
            vs_epochs_mjd=pair if pair[0] is not None and pair[1] is not None else None,
        )


class Epoch(BaseModel):
    """One epoch of a stored light curve: as measured, and after normalisation."""

    mjd: float
    flux_jy: float
    flux_err_jy: float
    norm_flux_jy: float
    norm_flux_err_jy: float
    snr: float | None
    image_path: str | None


class SourceLightcurve(BaseModel):
    """A source's light curve for display and export."""

    name: str
    reference: bool
    epochs: list[Epoch]
    references: list[str]

    def normalised(self) -> LightCurve:
        """The normalised fluxes as a ``LightCurve`` (what the metrics were computed on)."""
        return LightCurve(
            name=self.name,
            reference=self.reference,
            measurements=[
                Measurement(
                    mjd=e.mjd, flux_jy=e.norm_flux_jy, flux_err_jy=e.norm_flux_err_jy, image_path=e.image_path
                )
                for e in self.epochs
            ],
        )


# Assessment (pure) -----------------------------------------------------------------------------


def is_transient_candidate(snrs: Sequence[float | None], criteria: TransientCriteria) -> bool:
    """True when the last SNR is a detection and every earlier one (at least one) a non-detection.

    A missing SNR counts as a non-detection earlier and as no detection last.
    """
    if len(snrs) < 2:
        return False
    *earlier, latest = snrs
    if latest is None or latest < criteria.detection_snr:
        return False
    return all(s is None or s < criteria.nondetection_snr for s in earlier)


def rise_significance(points: Sequence[Measurement]) -> float | None:
    """How many σ the last point (in time order) lies above the weighted mean of the earlier ones.

    The baseline is all the earlier epochs, not the previous one alone: its error is smaller, so a
    real rise stands out more and a single low epoch cannot fake one. None with fewer than two points.
    """
    if len(points) < 2:
        return None
    *earlier, latest = points
    weights = [1.0 / m.flux_err_jy**2 for m in earlier]
    baseline = sum(w * m.flux_jy for w, m in zip(weights, earlier, strict=True)) / sum(weights)
    return (latest.flux_jy - baseline) / math.sqrt(latest.flux_err_jy**2 + 1.0 / sum(weights))


def assess(
    results: Sequence[PhotometryResult],
    names: Sequence[str],
    reference_names: Collection[str],
    thresholds: VariabilityThresholds | None = None,
    min_epochs: int = DEFAULT_MIN_EPOCHS,
    criteria: TransientCriteria | None = None,
) -> LightcurveUpdate:
    """Metrics and transient verdicts for ``names``, from photometry normalised on ``reference_names``.

    ``results`` must hold the references' rows as well as the assessed sources'. Sources with fewer
    than ``min_epochs`` usable epochs get their epoch count and no metrics.
    """
    thresholds = thresholds or VariabilityThresholds()
    criteria = criteria or TransientCriteria()
    snr_of: dict[tuple[str, str | None], float | None] = {(r.name, r.image_path): r.snr for r in results}
    curves = normalise(lightcurves_from_photometry(results, reference_names), reference_names)
    by_name = {lc.name: lc for lc in curves.lightcurves}
    used_refs = sorted(name for name in reference_names if name in by_name)

    assessed = []
    for name in names:
        curve = by_name.get(name)
        points = curve.sorted_by_time() if curve else []
        if curve is not None and len(points) >= min_epochs:
            metrics = compute_metrics(curve, thresholds)
        else:
            metrics = VariabilityMetrics(name=name, n_epochs=len(points))
        snrs = [snr_of.get((name, p.image_path)) for p in points]
        rise = rise_significance(points)
        assessed.append(
            SourceVariability(
                metrics=metrics,
                first_mjd=points[0].mjd if points else None,
                last_mjd=points[-1].mjd if points else None,
                transient_candidate=is_transient_candidate(snrs, criteria),
                latest_snr=snrs[-1] if snrs else None,
                rise_sigma=rise,
                rapid_rise=rise is not None and rise > criteria.rise_sigma,
            )
        )
    return LightcurveUpdate(
        sources=assessed, thresholds=thresholds, min_epochs=min_epochs, references=used_refs
    )


def alert_snapshot(assessed: SourceVariability) -> dict[str, Any]:
    """The metrics an alert keeps: what the operator saw when it was raised."""
    return {
        **assessed.metrics.model_dump(mode="json", exclude={"name"}),
        "first_mjd": assessed.first_mjd,
        "last_mjd": assessed.last_mjd,
        "latest_snr": assessed.latest_snr,
        "rise_sigma": assessed.rise_sigma,
    }
