"""A simulated archive: a calibrator transit and a run of target observations in one directory, laid out
as the correlator writes them, with the monitoring catalogue of the target field. For the reprocessing
test, the benchmark and trying ``contimg reprocess`` out."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from science.grouping import find_groups
from science.simulate import DEFAULT_TARGET_SOURCES, calibrator_transit, simulate_observation, target_field


class ArchiveSettings(BaseModel):
    """How many observations, how small, and how far apart."""

    model_config = ConfigDict(extra="forbid")
    observations: int = Field(24, ge=2, description="the calibrator transit and the targets after it")
    antennas: int = Field(8, ge=6)
    channels: int = Field(2, ge=1)
    integrations: int = Field(3, ge=2)
    spacing_min: float = Field(5.0, gt=1.5, description="minutes between observations")
    # Close after the transit the calibrator is still in the beam, and a target's solve would try it.
    first_target_min: float = Field(
        30.0, ge=20.0, description="minutes from the calibrator to the first target"
    )
    seed: int = 11
    near: datetime = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Archive:
    """Where the subband files and the catalogue are, and the observations' group times."""

    directory: Path
    catalogue: Path
    group_times: list[datetime]
    group_ids: list[str]  # as the file names give them (the correlator's stamps jitter)
    calibrator_time: datetime
    sources: list[str]


def simulate_archive(settings: ArchiveSettings, out_dir: Path) -> Archive:
    """Write the archive's subband files into ``out_dir/incoming`` and its catalogue beside them."""
    shape: dict[str, Any] = {
        "n_antennas": settings.antennas,
        "n_channels": settings.channels,
        "n_integrations": settings.integrations,
        "gain_seed": settings.seed,
    }
    directory = out_dir / "archive"
    calibrator = simulate_observation(
        calibrator_transit(settings.near, seed=settings.seed, **shape), directory
    )
    times = [calibrator.start_time]
    catalogue_rows = []
    for i in range(1, settings.observations):
        start = calibrator.start_time + timedelta(
            minutes=settings.first_target_min + settings.spacing_min * (i - 1)
        )
        # The sky drifts through the beam, so each target has its own sources (named for it), pointed at
        # the calibrator's declination as a transit array observes all night.
        sources = [(f"O{i:02d}-{name}", e, n, f, a) for name, e, n, f, a in DEFAULT_TARGET_SOURCES]
        config = target_field(start, calibrator.dec_deg, sources=sources, seed=settings.seed + i, **shape)
        target = simulate_observation(config, directory)
        times.append(target.start_time)
        catalogue_rows += [
            (s.name, s.ra_deg, s.dec_deg, s.name.endswith(("T1", "T2"))) for s in target.sources
        ]
    catalogue = out_dir / "monitoring.csv"
    with catalogue.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["name", "ra_deg", "dec_deg", "priority", "reference"])
        for name, ra, dec, reference in catalogue_rows:
            writer.writerow([name, f"{ra:.6f}", f"{dec:.6f}", 1, str(reference).lower()])
    group_ids = [g.group_id for g in find_groups(directory)]
    if len(group_ids) != settings.observations:
        raise RuntimeError(f"{directory}: {len(group_ids)} groups for {settings.observations} observations")
    return Archive(
        directory, catalogue, times, group_ids, calibrator.start_time, [r[0] for r in catalogue_rows]
    )
