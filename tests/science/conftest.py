"""Shared science fixtures: one calibrator transit and one target field, simulated once per session.

Both use the same stations and the same gains (``gain_seed``), so a calibration solved on the calibrator
applies to the target. The target starts an hour after the calibrator, at the calibrator's declination.
``converted_pair`` gives their Measurement Sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from science.convert import ConversionRecord, convert_group
from science.grouping import find_groups
from science.simulate import (
    SimulatedObservation,
    calibrator_transit,
    simulate_observation,
    target_field,
)

GAIN_SEED = 1234
N_ANTENNAS = 24
N_CHANNELS = 8
N_INTEGRATIONS = 10


@dataclass(frozen=True)
class SimulatedPair:
    """A calibrator transit and a later target field; each ``.dir`` holds its 16 subband files and truth."""

    calibrator: SimulatedObservation
    calibrator_dir: Path
    target: SimulatedObservation
    target_dir: Path


@pytest.fixture(scope="session")
def simulated_pair(tmp_path_factory: pytest.TempPathFactory) -> SimulatedPair:
    """3C286-like calibrator transit (sources at the phase centre) and a 5-source target field, both noisy."""
    common: dict[str, Any] = {
        "n_antennas": N_ANTENNAS,
        "n_channels": N_CHANNELS,
        "n_integrations": N_INTEGRATIONS,
        "gain_seed": GAIN_SEED,
    }
    cal_config = calibrator_transit(datetime(2025, 6, 1, 4, 0, tzinfo=UTC), seed=1, **common)
    target_start = cal_config.start_time + timedelta(hours=1)
    target_config = target_field(target_start, cal_config.dec_deg, seed=2, **common)
    cal_dir = tmp_path_factory.mktemp("calibrator")
    target_dir = tmp_path_factory.mktemp("target")
    return SimulatedPair(
        calibrator=simulate_observation(cal_config, cal_dir),
        calibrator_dir=cal_dir,
        target=simulate_observation(target_config, target_dir),
        target_dir=target_dir,
    )


@dataclass(frozen=True)
class ConvertedPair:
    """The Measurement Sets of :func:`simulated_pair`, with their conversion records."""

    calibrator: ConversionRecord
    target: ConversionRecord


@pytest.fixture(scope="session")
def converted_pair(simulated_pair: SimulatedPair, tmp_path_factory: pytest.TempPathFactory) -> ConvertedPair:
    """Both simulated observations converted to meridian-phased Measurement Sets."""
    out = tmp_path_factory.mktemp("ms")
    (cal_group,) = find_groups(simulated_pair.calibrator_dir)
    (target_group,) = find_groups(simulated_pair.target_dir)
    return ConvertedPair(calibrator=convert_group(cal_group, out), target=convert_group(target_group, out))
