"""The pruner's decision and the guard's levels, as pure functions: no disk, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contimg.storage.decide import Candidate, decide, decide_one
from contimg.storage.guard import level_of
from contimg.storage.policy import DEFAULT_RULES, StoragePolicy, Threshold, parse_threshold

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
POLICY = StoragePolicy()


def cand(kind: str, days_old: float, *facts: str, paths: tuple[str, ...] = ("/d/x",)) -> Candidate:
    return Candidate(kind, paths, 100, NOW - timedelta(days=days_old), None, frozenset(facts))  # type: ignore[arg-type]


def test_defaults_keep_light_curve_inputs_and_let_an_ms_go_once_imaged_and_measured() -> None:
    assert DEFAULT_RULES["ms"].require == ("imaged", "measured")
    ms_days = DEFAULT_RULES["ms"].keep_days
    assert ms_days is not None
    assert decide_one(cand("ms", ms_days + 1, "imaged", "measured"), POLICY, NOW, []).remove
    assert not decide_one(cand("ms", ms_days + 1, "imaged"), POLICY, NOW, []).remove
    assert not decide_one(cand("ms", ms_days - 0.5, "imaged", "measured"), POLICY, NOW, []).remove
    # Mosaics and previews are kept for ever by default, however old.
    assert not decide_one(cand("mosaics", 10_000), POLICY, NOW, []).remove
    assert not decide_one(cand("previews", 10_000), POLICY, NOW, []).remove


@pytest.mark.parametrize(
    ("candidate", "remove", "reason"),
    [
        (cand("raw", 4, "converted"), True, "4.0 d old (keep 3 d), converted"),
        (cand("raw", 4), False, "not yet converted"),
        (cand("raw", 2.9, "converted"), False, "2.9 d old; raw are kept 3 d"),
        (cand("ms", 30), False, "not yet imaged and measured"),
        (cand("caltables", 31), True, "31.0 d old (keep 30 d)"),
        (cand("mosaics", 400), False, "mosaics are kept for ever"),
    ],
)
def test_each_rule_says_why(candidate: Candidate, remove: bool, reason: str) -> None:
    decision = decide_one(candidate, POLICY, NOW, [])
    assert (decision.remove, decision.reason) == (remove, reason)


@pytest.mark.parametrize(
    ("needed", "kept"),
    [
        (["/data/ms/a.ms"], True),  # named itself
        (["/data/ms/a.ms/table.f0"], True),  # a file inside it
        (["/data/ms"], True),  # a directory holding it (convert-uvh5 by input_dir)
        (["/data/ms/a.ms2"], False),  # a sibling with a longer name is not inside it
        (["/data/ms/b.ms", "/data/images"], False),
    ],
)
def test_a_path_an_unfinished_task_names_is_kept(needed: list[str], kept: bool) -> None:
    old = cand("ms", 30, "imaged", "measured", paths=("/data/ms/a.ms",))
    decision = decide_one(old, POLICY, NOW, needed)
    assert decision.remove is not kept
    if kept:
        assert decision.reason.startswith("an unfinished task needs ")


def test_decide_keeps_the_order_and_one_decision_per_candidate() -> None:
    candidates = [cand("raw", 10, "converted"), cand("images", 1, "measured"), cand("raw", 10)]
    assert [d.remove for d in decide(candidates, POLICY, NOW, [])] == [True, False, False]


@pytest.mark.parametrize(
    ("text", "total", "expected"),
    [
        ("10%", 1000, 100),
        ("50 GB", 0, 50 * 10**9),
        ("2GiB", 0, 2 * 2**30),
        ("1.5 MB", 0, 1_500_000),
        (4096, 0, 4096),
    ],
)
def test_thresholds(text: object, total: int, expected: int) -> None:
    assert Threshold.model_validate(parse_threshold(text)).bytes_of(total) == expected


def test_a_threshold_that_is_not_a_size_is_refused() -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_threshold("lots")


def test_levels_with_hysteresis() -> None:
    warning, critical, resume = Threshold(bytes=400), Threshold(bytes=100), Threshold(bytes=250)
    assert level_of(500, 1000, warning, critical, resume, None) == "ok"
    assert level_of(300, 1000, warning, critical, resume, "ok") == "warning"
    assert level_of(99, 1000, warning, critical, resume, "warning") == "critical"
    # Above critical but below resume: still critical for a path that was, a warning for one that was not.
    assert level_of(200, 1000, warning, critical, resume, "critical") == "critical"
    assert level_of(200, 1000, warning, critical, resume, "warning") == "warning"
    assert level_of(260, 1000, warning, critical, resume, "critical") == "warning"
