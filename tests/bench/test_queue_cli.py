"""``python -m bench.queue``: its --only keys pick measurements, and unknown keys are named."""

from __future__ import annotations

import pytest

from bench.queue.plan import MEASUREMENT_KEYS, parse_only


def test_only_picks_the_measurements_that_produce_the_keys() -> None:
    assert parse_only(None) == set(MEASUREMENT_KEYS)
    assert parse_only("latency_p99_ms, commit_per_s") == {"latency", "commit"}


def test_only_names_unknown_keys() -> None:
    with pytest.raises(SystemExit, match=r"unknown key.*drain_per_s_9w"):
        parse_only("drain_per_s_9w")
