"""``notify-alert``: a science alert as a VOEvent, delivered once to each configured sink.

The hooks that raise alerts (``update-lightcurves``, ``find-sources``) spawn one ``notify-alert`` per new
alert, in the transaction that records the alert, with the idempotency key ``notify-alert:<id>``: an alert
exists exactly when its notifier is queued, and never has two.

What "once" means, sink by sink (docs/alerts.md has the whole argument):

- The VOEvent is built once and stored (``products.alert_voevents``); every sink and every retry sends
  those bytes under that IVORN.
- Each (alert, sink) delivery row is locked while its sink is written to and marked delivered in the
  same transaction; a retry skips a delivered sink, and two notifiers never send at once.
- A crash between a sink taking the event and that commit leaves the row pending, so the retry sends
  again: the directory sink rewrites the same file under the same name (still one file); the webhook
  repeats the POST with the same ``Idempotency-Key`` (the IVORN), for the receiver to drop; a broker
  drops an IVORN it has seen. Effectively once, given a receiver that honours the key.

A sink that fails leaves the others delivered and the task retried with backoff; a sink that refuses
the event (HTTP 4xx, a broker's nak) is marked rejected and not retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import psycopg
import structlog
from pydantic import BaseModel, ConfigDict, Field

import absurd
from absurd.context import TaskContext
from contimg.alerts.config import SINKS_ENV, Sink, configured_sinks
from contimg.alerts.sinks import DeliveryFailed, DeliveryRejected, deliver
from contimg.alerts.voevent import build_voevent, event_ivorn
from contimg.store import alert_delivery
from contimg.tasks import queues
from science.errors import InvalidInputError

NOTIFY_ALERT = "notify-alert"
# Quick retries for a receiver that blinked, then up to 10 min apart: about 2.5 hours in all.
OPTIONS = absurd.SpawnOptions(
    queue=queues.ALERTS,
    timeout_s=600,
    max_attempts=20,
    retry=absurd.ExponentialBackoff(base_s=2.0, cap_s=600.0),
)

log = structlog.get_logger("contimg.notify")
registry = absurd.Registry()


class NotifyAlertParams(BaseModel):
    """``notify-alert``: which alert, and optionally which sinks file (default ``$CONTIMG_ALERT_SINKS``)."""

    model_config = ConfigDict(extra="forbid")

    alert_id: int = Field(ge=1)
    sinks_file: Path | None = None


class NotifyAlertOutcome(BaseModel):
    """Where the alert went."""

    alert_id: int
    ivorn: str | None
    delivered: list[str]
    rejected: list[str]
    note: str | None = None


def spawn_notifiers(conn: psycopg.Connection, alert_ids: Sequence[int]) -> None:
    """Queue one ``notify-alert`` per alert on ``conn``, inside the caller's transaction."""
    if not alert_ids:
        return
    absurd.Client(conn=conn).spawn_many(
        NOTIFY_ALERT,
        [NotifyAlertParams(alert_id=i).model_dump(mode="json", exclude_none=True) for i in alert_ids],
        options=OPTIONS,
        keys=[f"{NOTIFY_ALERT}:{i}" for i in alert_ids],
    )


@registry.task(
    NOTIFY_ALERT,
    params=NotifyAlertParams,
    mode="thread",
    options=OPTIONS,
    permanent_errors=(InvalidInputError,),
)
def notify_alert(ctx: TaskContext, params: NotifyAlertParams) -> NotifyAlertOutcome:
    """Build the alert's VOEvent (once) and deliver it to every configured sink not yet delivered."""
    sinks = configured_sinks(params.sinks_file)
    if sinks is None or not sinks.sinks:
        note = f"no alert sinks configured (set {SINKS_ENV}); the alert is kept, not sent"
        log.warning(note, alert_id=params.alert_id)
        return NotifyAlertOutcome(alert_id=params.alert_id, ivorn=None, delivered=[], rejected=[], note=note)
    with ctx.connection() as conn:
        stored = alert_delivery.stored_voevent(conn, params.alert_id)
        if stored is None:
            subject = alert_delivery.alert_subject(conn, params.alert_id)
            if subject is None:
                raise InvalidInputError(f"alert {params.alert_id}: no such alert in products.alerts")
            ivorn, document = build_voevent(subject, sinks)
            assert ivorn == event_ivorn(sinks, params.alert_id)
            stored = alert_delivery.store_voevent(conn, params.alert_id, ivorn, document)
    ivorn, document = stored
    delivered: list[str] = []
    rejected: list[str] = []
    failed: list[str] = []
    for sink in sinks.sinks:
        state, error = _deliver_once(ctx, params.alert_id, sink, ivorn, document)
        {"delivered": delivered, "rejected": rejected, "pending": failed}[state].append(sink.name)
        if error:
            log.warning("alert delivery failed", alert_id=params.alert_id, sink=sink.name, error=error)
    if failed:
        raise DeliveryFailed(f"alert {params.alert_id}: not yet delivered to {', '.join(failed)}; retrying")
    return NotifyAlertOutcome(alert_id=params.alert_id, ivorn=ivorn, delivered=delivered, rejected=rejected)


def _deliver_once(
    ctx: TaskContext, alert_id: int, sink: Sink, ivorn: str, document: str
) -> tuple[str, str | None]:
    """Deliver to one sink unless it has been; returns the delivery's state and the error, if any."""
    with ctx.connection() as conn:
        alert_delivery.add_delivery(conn, alert_id, sink.name, sink.kind)
        try:
            with conn.transaction():
                state = alert_delivery.lock_delivery(conn, alert_id, sink.name)
                if state != "pending":
                    return state, None
                detail = deliver(sink, ivorn, document)
                alert_delivery.mark_delivered(conn, alert_id, sink.name, detail)
            log.info("alert delivered", alert_id=alert_id, sink=sink.name, detail=detail)
            return "delivered", None
        except (DeliveryFailed, DeliveryRejected) as exc:
            refused = isinstance(exc, DeliveryRejected)
            with conn.transaction():
                alert_delivery.mark_failed(conn, alert_id, sink.name, str(exc), rejected=refused)
            return ("rejected" if refused else "pending"), str(exc)
