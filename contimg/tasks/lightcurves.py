"""The ``update-lightcurves`` task: variability metrics for the monitored sources, and their alerts.

The task reads the stored photometry and assesses each source (``science.lightcurves``); its
completion hook stores the metrics in ``products.variability`` and, for sources newly flagged
variable or newly transient candidates, inserts ``products.alerts`` rows, queues a ``notify-alert``
for each (``contimg.tasks.notify``) and emits one ``variability-alert`` event listing them, all in the
transaction that completes the task. An update that raises no new alert emits nothing.

Event payload: ``{"task_id": int, "alerts": [{"alert_id", "source", "kind", "eta", "v", "chi2_nu",
"vs", "m", "latest_snr", "last_mjd"}, ...]}``.
"""

from __future__ import annotations

from typing import Any

import psycopg
from pydantic import BaseModel, ConfigDict, Field

import absurd
from contimg.store import lightcurves
from contimg.tasks import notify, queues
from science.errors import InvalidInputError
from science.lightcurves import DEFAULT_MIN_EPOCHS, LightcurveUpdate, TransientCriteria
from science.variability import VariabilityThresholds

# Emitted when an update raises alerts; the payload lists them.
VARIABILITY_ALERT = "variability-alert"

registry = absurd.Registry()


class UpdateLightcurvesParams(BaseModel):
    """``update-lightcurves``: which sources, normalised on which references, flagged by which limits."""

    model_config = ConfigDict(extra="forbid")

    sources: list[str] | None = Field(default=None, description="source names; default: every source")
    reference_sources: list[str] | None = Field(
        default=None,
        description="normalise on these sources; default: the catalogue's reference sources; [] for none",
    )
    thresholds: VariabilityThresholds = Field(default_factory=VariabilityThresholds)
    transient: TransientCriteria = Field(default_factory=TransientCriteria)
    min_epochs: int = Field(default=DEFAULT_MIN_EPOCHS, ge=2, description="fewer epochs: no metrics")
    include_mosaics: bool = Field(default=False, description="also use photometry measured on mosaics")


class UpdateLightcurvesOutcome(BaseModel):
    """What ``update-lightcurves`` assessed, with its task id for the hook."""

    task_id: int
    update: LightcurveUpdate


def _record(conn: psycopg.Connection, params: UpdateLightcurvesParams, result: Any) -> None:
    done = UpdateLightcurvesOutcome.model_validate(result)
    alerts = lightcurves.record_update(conn, done.update, done.task_id)
    if not alerts:
        return
    notify.spawn_notifiers(conn, [alert.id for alert in alerts])
    # One event per update: events are stored by name, so one per alert would keep only the last.
    absurd.emit_event(
        conn,
        VARIABILITY_ALERT,
        {
            "task_id": done.task_id,
            "alerts": [
                {
                    "alert_id": alert.id,
                    "source": alert.source_name,
                    "kind": alert.kind,
                    **{
                        key: alert.metrics.get(key)
                        for key in ("eta", "v", "chi2_nu", "vs", "m", "latest_snr", "last_mjd")
                    },
                }
                for alert in alerts
            ],
        },
    )


# Thread mode: the work is one query and numpy over small arrays, not worth a child process.
@registry.task(
    "update-lightcurves",
    params=UpdateLightcurvesParams,
    options=absurd.SpawnOptions(queue=queues.PHOTOMETRY, timeout_s=600, max_attempts=3),
    permanent_errors=(InvalidInputError,),
    on_complete=_record,
)
def update_lightcurves(ctx: absurd.TaskContext, params: UpdateLightcurvesParams) -> UpdateLightcurvesOutcome:
    """Assess the light curves of the chosen sources from the stored photometry."""
    with ctx.connection() as conn:
        update = assess(conn, params)
    return UpdateLightcurvesOutcome(task_id=ctx.task_id, update=update)


def assess(conn: psycopg.Connection, params: UpdateLightcurvesParams) -> LightcurveUpdate:
    """The assessment the params ask for, from the stored photometry; nothing is stored here."""
    return lightcurves.compute_update(
        conn,
        names=params.sources,
        reference_names=params.reference_sources,
        thresholds=params.thresholds,
        min_epochs=params.min_epochs,
        criteria=params.transient,
        include_mosaics=params.include_mosaics,
    )
