"""update-lightcurves through a real worker: stored metrics, flags, alerts and the alert event."""

from __future__ import annotations

import pytest

from science.variability import compute_metrics, lightcurves_from_photometry, normalise
from tests.lightcurves.conftest import CONSTANT, REFERENCES, TRANSIENT, VARIABLE, MakeSky

METRIC_COLUMNS = "eta, v, chi2_nu, vs, m, mean_flux_jy, weighted_mean_flux_jy, vs_mjd_a, vs_mjd_b, n_epochs"


def test_stored_metrics_are_those_of_the_normalised_series(make_sky: MakeSky) -> None:
    sky = make_sky()
    row = sky.update()
    assert row["state"] == "completed", row["last_error"]

    expected_curves = normalise(lightcurves_from_photometry(sky.results, set(REFERENCES)), set(REFERENCES))
    for curve in expected_curves.lightcurves:
        expected = compute_metrics(curve)
        [stored] = sky.rows(
            f"SELECT {METRIC_COLUMNS}, is_variable, task_id, n_references FROM products.variability "
            "WHERE source_name = %s",
            curve.name,
        )
        assert expected.vs_epochs_mjd is not None
        assert stored[:9] == pytest.approx(
            (
                expected.eta,
                expected.v,
                expected.chi2_nu,
                expected.vs,
                expected.m,
                expected.mean_flux_jy,
                expected.weighted_mean_flux_jy,
                *expected.vs_epochs_mjd,
            ),
            rel=1e-9,
        ), curve.name
        assert stored[9] == 8
        assert stored[10] is expected.is_variable
        assert stored[11] == row["id"] and stored[12] == len(REFERENCES)


def test_only_the_variable_is_flagged_despite_the_shared_systematic(make_sky: MakeSky) -> None:
    sky = make_sky()
    assert sky.update()["state"] == "completed"
    flagged = dict(sky.rows("SELECT source_name, is_variable FROM products.variability"))
    assert flagged == {name: name in VARIABLE for name in [*REFERENCES, *CONSTANT, *VARIABLE]}
    [(eta, v, exceeded)] = sky.rows(
        "SELECT eta, v, exceeded FROM products.variability WHERE source_name = 'VAR_1'"
    )
    assert eta > 2 and v > 0.25 and set(exceeded) == {"eta", "v", "chi2_nu"}
    for name in CONSTANT:
        [(v_const,)] = sky.rows("SELECT v FROM products.variability WHERE source_name = %s", name)
        assert v_const < 0.05, name


def test_without_normalisation_the_systematic_flags_constant_sources(make_sky: MakeSky) -> None:
    sky = make_sky()
    assert sky.update({"reference_sources": []})["state"] == "completed"
    flagged = {name for (name,) in sky.rows("SELECT source_name FROM products.variability WHERE is_variable")}
    # The ±15 % epoch errors alone exceed V = 0.1: this is what normalisation is for.
    assert set(CONSTANT) <= flagged
    assert sky.rows("SELECT DISTINCT n_references FROM products.variability") == [(0,)]


def test_a_new_variable_raises_one_alert_and_one_event_and_reruns_add_none(make_sky: MakeSky) -> None:
    sky = make_sky()
    first = sky.update()
    assert first["state"] == "completed"
    alerts = sky.rows("SELECT source_name, kind, task_id, metrics->>'eta', acknowledged FROM products.alerts")
    assert len(alerts) == 1
    source, kind, task_id, eta, acknowledged = alerts[0]
    assert (source, kind, task_id, acknowledged) == ("VAR_1", "variable", first["id"], False)
    assert float(eta) > 2

    [(payload, emitted_at)] = sky.rows(
        "SELECT payload, emitted_at FROM absurd.events WHERE name = 'variability-alert'"
    )
    assert payload["task_id"] == first["id"]
    assert [(a["source"], a["kind"]) for a in payload["alerts"]] == [("VAR_1", "variable")]

    second = sky.update()
    assert second["state"] == "completed"
    assert sky.rows("SELECT count(*) FROM products.alerts") == [(1,)]
    # The metrics were rewritten by the second update, but no event was emitted again.
    assert sky.rows("SELECT DISTINCT task_id FROM products.variability") == [(second["id"],)]
    assert sky.rows("SELECT emitted_at FROM absurd.events WHERE name = 'variability-alert'") == [
        (emitted_at,)
    ]


def test_thresholds_and_selection_are_parameters(make_sky: MakeSky) -> None:
    sky = make_sky()
    # With V's threshold above VAR_1's variation nothing is variable; only the named sources are stored.
    row = sky.update({"sources": ["VAR_1", "CONST_1"], "thresholds": {"v": 0.9}})
    assert row["state"] == "completed"
    assert sky.rows(
        "SELECT source_name, is_variable, thresholds->>'v' FROM products.variability ORDER BY 1"
    ) == [
        ("CONST_1", False, "0.9"),
        ("VAR_1", False, "0.9"),
    ]
    assert sky.rows("SELECT count(*) FROM products.alerts") == [(0,)]

    # Too few epochs: the epoch count is stored, the metrics are not.
    assert sky.update({"sources": ["CONST_2"], "min_epochs": 9})["state"] == "completed"
    assert sky.rows(
        "SELECT n_epochs, eta, is_variable FROM products.variability WHERE source_name = 'CONST_2'"
    ) == [(8, None, False)]


def test_unknown_source_fails_at_once(make_sky: MakeSky) -> None:
    sky = make_sky()
    row = sky.update({"sources": ["NO_SUCH_SOURCE"]})
    assert row["state"] == "failed"
    assert "NO_SUCH_SOURCE" in str(row["last_error"]) and row["attempts"] == 1


def test_transient_candidate_raises_its_own_alert(make_sky: MakeSky) -> None:
    sky = make_sky(with_transient=True)
    assert sky.update()["state"] == "completed"
    [(transient, snr)] = sky.rows(
        "SELECT transient_candidate, latest_snr FROM products.variability WHERE source_name = %s", TRANSIENT
    )
    assert transient and snr > 5
    assert sky.rows("SELECT count(*) FROM products.variability WHERE transient_candidate") == [(1,)]
    kinds = set(sky.rows("SELECT source_name, kind FROM products.alerts WHERE source_name = %s", TRANSIENT))
    assert ("TRANS_1", "transient") in kinds
    [(payload,)] = sky.rows("SELECT payload FROM absurd.events WHERE name = 'variability-alert'")
    assert ("TRANS_1", "transient") in {(a["source"], a["kind"]) for a in payload["alerts"]}
