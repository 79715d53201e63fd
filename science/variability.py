"""Variability metrics of light curves, after the conventions of the VAST and LOFAR TraP pipelines.

With fluxes f, errors σ, weights w = 1/σ² and N epochs:

- η = N/(N−1)·(⟨w·f²⟩ − ⟨w·f⟩²/⟨w⟩), the weighted reduced χ² about the weighted mean;
- V = s/⟨f⟩, the sample standard deviation (ddof=1) over the unweighted mean;
- χ²_ν = Σ((f − f̄_w)²/σ²)/(N−1). Written out, this is the same number as η; both are reported
  because operators quote thresholds for each;
- two-epoch Vs = (fa − fb)/√(σa² + σb²) and m = 2(fa − fb)/(fa + fb), for the pair of epochs
  (a earlier than b) with the largest |Vs|.

Decision rule: a source is *variable* when η and V both exceed their thresholds (η alone flags
tiny but significant changes in bright sources; V alone flags noise in faint ones). χ²_ν is used
for the separate verdict ``consistent_with_constant`` (χ²_ν at or below its threshold).

Per-epoch systematics (a calibration scale error hitting every source in an image) are removed by
``normalise`` against stable reference sources.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence

import numpy as np
import structlog
from pydantic import BaseModel, Field

from science.constants import CHI2_NU_THRESHOLD, ETA_THRESHOLD, V_THRESHOLD
from science.photometry import Flag, PhotometryResult

log = structlog.get_logger(__name__)

# Efficiency of the median relative to the mean for Gaussian data: sqrt(pi/2).
MEDIAN_ERROR_FACTOR = math.sqrt(math.pi / 2.0)
# Two measurements belong to the same epoch when their MJDs agree to within a second.
EPOCH_MATCH_S = 1.0


class Measurement(BaseModel):
    """One flux measurement of a source at one epoch."""

    mjd: float
    flux_jy: float
    flux_err_jy: float = Field(gt=0.0)
    image_path: str | None = None


class LightCurve(BaseModel):
    """All measurements of one source; ``reference`` marks a stable source used for normalisation."""

    name: str
    measurements: list[Measurement]
    reference: bool = False

    def sorted_by_time(self) -> list[Measurement]:
        """Measurements in time order."""
        return sorted(self.measurements, key=lambda m: m.mjd)


class VariabilityThresholds(BaseModel):
    """Thresholds for the variability verdicts; defaults are the operators' values."""

    eta: float = ETA_THRESHOLD
    v: float = V_THRESHOLD
    chi2_nu: float = CHI2_NU_THRESHOLD


class VariabilityMetrics(BaseModel):
    """Metrics and verdicts for one light curve; metrics are None when there are fewer than 2 epochs."""

    name: str
    n_epochs: int
    mean_flux_jy: float | None = None
    weighted_mean_flux_jy: float | None = None
    eta: float | None = None
    v: float | None = None
    chi2_nu: float | None = None
    vs: float | None = Field(default=None, description="signed Vs of the epoch pair with the largest |Vs|")
    m: float | None = Field(default=None, description="modulation index m of that same pair")
    vs_epochs_mjd: tuple[float, float] | None = None
    is_variable: bool = False
    consistent_with_constant: bool | None = None
    exceeded: list[str] = Field(
        default_factory=list, description="which of eta, v, chi2_nu exceed thresholds"
    )


class EpochScale(BaseModel):
    """The flux scale of one epoch relative to the reference sources' typical flux."""

    mjd: float
    factor: float
    factor_err: float
    n_references: int


class Normalisation(BaseModel):
    """Normalised light curves and the per-epoch scale factors that were divided out."""

    lightcurves: list[LightCurve]
    scales: list[EpochScale]


def compute_metrics(
    lightcurve: LightCurve, thresholds: VariabilityThresholds | None = None
) -> VariabilityMetrics:
    """η, V, χ²_ν, the largest two-epoch Vs with its m, and the verdicts, for one light curve."""
    thresholds = thresholds or VariabilityThresholds()
    points = lightcurve.sorted_by_time()
    n = len(points)
    metrics = VariabilityMetrics(name=lightcurve.name, n_epochs=n)
    if n < 2:
        return metrics

    flux = np.array([p.flux_jy for p in points])
    err = np.array([p.flux_err_jy for p in points])
    weight = 1.0 / err**2
    weighted_mean = float(np.sum(weight * flux) / np.sum(weight))
    mean = float(np.mean(flux))
    # Same value as the η formula in the module docstring, without its cancellation of large terms.
    eta = float(np.sum(weight * (flux - weighted_mean) ** 2) / (n - 1))
    metrics.mean_flux_jy = mean
    metrics.weighted_mean_flux_jy = weighted_mean
    metrics.eta = eta
    metrics.chi2_nu = eta
    metrics.v = float(np.std(flux, ddof=1) / mean) if mean != 0.0 else None

    # All pairs a < b in time order.
    ia, ib = np.triu_indices(n, k=1)
    vs = (flux[ia] - flux[ib]) / np.sqrt(err[ia] ** 2 + err[ib] ** 2)
    best = int(np.argmax(np.abs(vs)))
    a, b = int(ia[best]), int(ib[best])
    metrics.vs = float(vs[best])
    pair_sum = flux[a] + flux[b]
    metrics.m = float(2.0 * (flux[a] - flux[b]) / pair_sum) if pair_sum != 0.0 else None
    metrics.vs_epochs_mjd = (points[a].mjd, points[b].mjd)

    if eta > thresholds.eta:
        metrics.exceeded.append("eta")
    if metrics.v is not None and metrics.v > thresholds.v:
        metrics.exceeded.append("v")
    if eta > thresholds.chi2_nu:
        metrics.exceeded.append("chi2_nu")
    metrics.is_variable = "eta" in metrics.exceeded and "v" in metrics.exceeded
    metrics.consistent_with_constant = eta <= thresholds.chi2_nu
    return metrics


def compute_all(
    lightcurves: Iterable[LightCurve], thresholds: VariabilityThresholds | None = None
) -> list[VariabilityMetrics]:
    """Metrics for each light curve, in the given order."""
    return [compute_metrics(lc, thresholds) for lc in lightcurves]


def _epoch_key(mjd: float) -> int:
    return round(mjd * 86400.0 / EPOCH_MATCH_S)


def normalise(
    lightcurves: Sequence[LightCurve], reference_names: Collection[str] | None = None
) -> Normalisation:
    """Divide out per-epoch flux-scale errors measured on stable reference sources.

    References are the light curves named in ``reference_names`` or, if that is None, those with
    ``reference=True``. For each reference, each epoch's flux is divided by the reference's median
    flux; the epoch's scale factor is the median of these ratios over references. Every source's flux
    and error at that epoch are divided by the factor, and the factor's own uncertainty is added to
    the error in quadrature. Epochs no reference was measured in keep a factor of 1.
    """
    refs = [
        lc
        for lc in lightcurves
        if (lc.name in reference_names if reference_names is not None else lc.reference)
    ]
    if not refs:
        log.warning("no reference sources; fluxes left unnormalised")

    ratios: dict[int, list[tuple[float, float]]] = defaultdict(list)
    epoch_mjd: dict[int, float] = {}
    for lc in lightcurves:
        for point in lc.measurements:
            epoch_mjd.setdefault(_epoch_key(point.mjd), point.mjd)
    for ref in refs:
        baseline = float(np.median([p.flux_jy for p in ref.measurements]))
        if not baseline > 0.0:
            log.warning("reference source skipped: non-positive median flux", source=ref.name)
            continue
        for point in ref.measurements:
            ratios[_epoch_key(point.mjd)].append((point.flux_jy / baseline, point.flux_err_jy / baseline))

    scales: dict[int, EpochScale] = {}
    for key, mjd in sorted(epoch_mjd.items()):
        pairs = ratios.get(key, [])
        if not pairs:
            scales[key] = EpochScale(mjd=mjd, factor=1.0, factor_err=0.0, n_references=0)
            if refs:
                log.warning("epoch has no reference measurement; left unnormalised", mjd=mjd)
            continue
        values = np.array([r for r, _ in pairs])
        errs = np.array([e for _, e in pairs])
        err_of_mean = 1.0 / math.sqrt(float(np.sum(1.0 / errs**2)))
        # The median of two values is their mean; beyond that it is less efficient than the mean.
        factor_err = err_of_mean * (MEDIAN_ERROR_FACTOR if len(pairs) > 2 else 1.0)
        scales[key] = EpochScale(
            mjd=mjd, factor=float(np.median(values)), factor_err=factor_err, n_references=len(pairs)
        )

    normalised = []
    for lc in lightcurves:
        points = []
        for point in lc.measurements:
            scale = scales[_epoch_key(point.mjd)]
            flux = point.flux_jy / scale.factor
            err = math.hypot(point.flux_err_jy / scale.factor, flux * scale.factor_err / scale.factor)
            points.append(point.model_copy(update={"flux_jy": flux, "flux_err_jy": err}))
        normalised.append(lc.model_copy(update={"measurements": points}))
    return Normalisation(lightcurves=normalised, scales=list(scales.values()))


def lightcurves_from_photometry(
    results: Iterable[PhotometryResult], reference_names: Collection[str] = ()
) -> list[LightCurve]:
    """Group forced-photometry results by source name into light curves of their fluxes (``flux_jy``).

    Results without a flux, error or epoch, or flagged off the image, near the edge or blanked, are left out.
    """
    unusable = {Flag.OFF_IMAGE, Flag.NEAR_EDGE, Flag.BLANKED}
    grouped: dict[str, list[Measurement]] = defaultdict(list)
    for result in results:
        if result.flux_jy is None or result.flux_err_jy is None or result.mjd is None:
            continue
        if unusable.intersection(result.flags) or not result.flux_err_jy > 0:
            continue
        grouped[result.name].append(
            Measurement(
                mjd=result.mjd,
                flux_jy=result.flux_jy,
                flux_err_jy=result.flux_err_jy,
                image_path=result.image_path,
            )
        )
    return [
        LightCurve(name=name, measurements=points, reference=name in reference_names)
        for name, points in grouped.items()
    ]
