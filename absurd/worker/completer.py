"""Records run outcomes in batches: one round trip completes many runs.

A database outage never drops an outcome: the completer keeps it and retries with backoff. If
the lease expired meanwhile, the fencing check refuses the write and the run is retried
elsewhere, so a task is never completed twice. An outcome that cannot be written for a reason of
its own (a hook past ``statement_timeout``, a value Postgres rejects) is retried a few times after
the others, then its run is failed: it never holds back, or drops, the rest of its batch.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from absurd import queries
from absurd.registry import CompletionHook
from absurd.worker.execution import Claimed, Outcome

log = structlog.get_logger("absurd.completer")


@dataclass
class Finished:
    """A run that ended, with what to record."""

    claimed: Claimed
    outcome: Outcome
    hook: CompletionHook | None = None
    hook_params: Any = None
    recorded: bool = False
    write_failures: int = 0
    retry_at: float = 0.0


_UNASKED_CANCEL = {
    "type": "absurd.errors.TaskCancelledError",
    "message": "the task raised TaskCancelledError, but no cancel was requested",
}

# SQLSTATEs that mean the server, not this outcome, is the problem: retried for as long as it takes.
_SERVER_GONE = ("57P01", "57P02", "57P03")


def server_unavailable(exc: BaseException) -> bool:
    """True for a lost connection or a server shutting down, False for an error the outcome itself causes
    (a statement or lock timeout, a value Postgres rejects): those are retried a bounded number of times."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _SERVER_GONE


def storable(value: Any) -> Any:
    """``value`` with NUL characters replaced: Postgres jsonb cannot hold U+0000."""
    text = json.dumps(value)
    return json.loads(text.replace("\\u0000", "\\ufffd")) if "\\u0000" in text else value


class Completer:
    """Owns a thread that writes outcomes; ``submit`` never blocks on the database.

    A batch is written in one round trip. If that fails for any reason but a lost server, its outcomes
    are written one by one, so one poisoned outcome never holds back the others; the poisoned one is
    retried later, at most ``max_write_attempts`` times, and then its run is failed instead.
    """

    def __init__(
        self,
        pool: ConnectionPool,
        on_recorded: Callable[[Finished, bool], None],
        batch_size: int = 500,
        linger_s: float = 0.002,
        max_write_attempts: int = 5,
    ) -> None:
        self._pool = pool
        self._on_recorded = on_recorded
        self._batch_size = batch_size
        self._linger_s = linger_s
        self._max_write_attempts = max_write_attempts
        self._queue: queue.SimpleQueue[Finished | None] = queue.SimpleQueue()
        self._deferred: list[Finished] = []
        self._thread = threading.Thread(target=self._loop, name="absurd-completer", daemon=True)

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def submit(self, finished: Finished) -> None:
        """Queue an outcome to be recorded."""
        self._queue.put(finished)

    def stop(self, timeout: float = 30.0) -> None:
        """Record everything submitted so far, then stop."""
        if self._thread.ident is None:
            return  # never started: the worker failed while starting
        self._queue.put(None)
        self._thread.join(timeout)

    def _loop(self) -> None:
        stopping = False
        while True:
            batch = self._take_due()
            if not batch:
                if stopping and not self._deferred and self._queue.empty():
                    return
                try:
                    item = self._queue.get(timeout=self._idle_wait())
                except queue.Empty:
                    continue  # a deferred outcome is due
                if item is None:
                    stopping = True
                    continue
                batch.append(item)
            # Linger once, then take what arrived: waiting in get() for each outcome would wake this thread
            # (and hand it the GIL) once per finished run.
            if not stopping:
                time.sleep(self._linger_s)
            while len(batch) < self._batch_size:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    continue
                batch.append(item)
            self._write_batch(batch)

    def _take_due(self) -> list[Finished]:
        now = time.monotonic()
        due = [f for f in self._deferred if f.retry_at <= now]
        self._deferred = [f for f in self._deferred if f.retry_at > now]
        return due

    def _idle_wait(self) -> float | None:
        if not self._deferred:
            return None
        return max(0.0, min(f.retry_at for f in self._deferred) - time.monotonic())

    def _write_batch(self, batch: list[Finished]) -> None:
        delay = 0.1
        while True:
            # What was written before a failure is not written again.
            pending = [f for f in batch if not f.recorded]
            if not pending:
                return
            try:
                self._write(pending)
                return
            except Exception as exc:
                if server_unavailable(exc):
                    log.warning(
                        "database unavailable; outcomes kept for retry", error=str(exc), pending=len(pending)
                    )
                    time.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                if len(pending) > 1:
                    log.warning("could not record a batch; recording its outcomes one by one", error=str(exc))
                for f in pending:
                    if not f.recorded:
                        self._write_alone(f)
                return

    def _write_alone(self, f: Finished) -> None:
        try:
            self._write([f])
            return
        except Exception as exc:
            if server_unavailable(exc):
                # Not the outcome's fault: kept, and not counted against it.
                self._defer(f, 1.0)
                return
            f.write_failures += 1
            if f.write_failures < self._max_write_attempts:
                log.warning(
                    "could not record an outcome; retrying it after the others",
                    task_id=f.claimed.task_id,
                    run_id=f.claimed.run_id,
                    attempt=f.write_failures,
                    error=str(exc),
                )
                self._defer(f, min(0.2 * 2**f.write_failures, 5.0))
            else:
                self._give_up(f, exc)

    def _defer(self, f: Finished, delay_s: float) -> None:
        f.retry_at = time.monotonic() + delay_s
        self._deferred.append(f)

    def _give_up(self, f: Finished, exc: BaseException) -> None:
        """Fail the run with the reason its outcome could not be written; if even that cannot be written,
        let its lease lapse (the reaper then retries it)."""
        log.error(
            "outcome cannot be recorded; failing the run instead",
            task_id=f.claimed.task_id,
            run_id=f.claimed.run_id,
            outcome=f.outcome.kind,
            attempts=f.write_failures,
            error=str(exc),
        )
        error = {
            "type": "absurd.OutcomeNotRecorded",
            "message": f"the {f.outcome.kind} outcome of run {f.claimed.run_id} could not be recorded "
            f"after {f.write_failures} attempts: {exc}",
        }
        accepted = False
        try:
            with self._pool.connection() as conn:
                row = conn.execute(
                    queries.FAIL_RUN,
                    (f.claimed.task_id, f.claimed.run_id, "error", Jsonb(storable(error)), False),
                ).fetchone()
            accepted = bool(row and row[0] is not None)
        except Exception as fail_exc:
            log.error(
                "could not fail the run either; its lease will lapse",
                task_id=f.claimed.task_id,
                error=str(fail_exc),
            )
        self._record(f, accepted if f.outcome.kind == "failed" else False)

    def _write(self, batch: list[Finished]) -> None:
        plain = [f for f in batch if f.outcome.kind == "completed" and f.hook is None]
        with self._pool.connection() as conn:
            if plain:
                rows = conn.execute(
                    queries.COMPLETE_RUNS_PACKED,
                    (
                        "{" + ",".join(str(f.claimed.task_id) for f in plain) + "}",
                        "{" + ",".join(str(f.claimed.run_id) for f in plain) + "}",
                        "["
                        + ",".join(f.outcome.result_json or json.dumps(f.outcome.result) for f in plain)
                        + "]",
                    ),
                ).fetchall()
                accepted = {r[0] for r in rows}
                for f in plain:
                    self._record(f, f.claimed.task_id in accepted or self._already_completed(conn, f))
            for f in batch:
                if f.outcome.kind == "completed" and f.hook is not None:
                    self._record(f, self._complete_with_hook(conn, f))
                elif f.outcome.kind == "failed":
                    row = conn.execute(
                        queries.FAIL_RUN,
                        (
                            f.claimed.task_id,
                            f.claimed.run_id,
                            f.outcome.reason,
                            Jsonb(storable(f.outcome.error)),
                            f.outcome.permanent,
                        ),
                    ).fetchone()
                    self._record(f, bool(row and row[0] is not None))
                elif f.outcome.kind == "cancelled":
                    row = conn.execute(
                        queries.FINISH_CANCELLED, (f.claimed.task_id, f.claimed.run_id)
                    ).fetchone()
                    if not (row and row[0]):
                        # No cancel was asked for (the task raised TaskCancelledError itself), or the lease is
                        # gone: fail it now rather than hold the run until its lease lapses.
                        row = conn.execute(
                            queries.FAIL_RUN,
                            (f.claimed.task_id, f.claimed.run_id, "error", Jsonb(_UNASKED_CANCEL), False),
                        ).fetchone()
                        row = (bool(row and row[0] is not None),)
                    self._record(f, bool(row and row[0]))
                elif f.outcome.kind in ("suspended", "lease_lost"):
                    self._record(f, True)

    def _complete_with_hook(self, conn: psycopg.Connection, f: Finished) -> bool:
        """Complete one run and write its products in the same transaction."""
        assert f.hook is not None
        try:
            with conn.transaction():
                rows = conn.execute(
                    queries.COMPLETE_RUNS,
                    ([f.claimed.task_id], [f.claimed.run_id], [json.dumps(f.outcome.result)]),
                ).fetchall()
                if not rows:
                    return self._already_completed(conn, f)
                f.hook(conn, f.hook_params, f.outcome.result)
            return True
        except psycopg.OperationalError:
            raise
        except Exception as exc:
            # The products could not be written: the run fails and nothing of it is kept.
            from absurd.worker.execution import describe

            log.warning(
                "completion hook failed; run fails instead", task_id=f.claimed.task_id, error=str(exc)
            )
            conn.execute(
                queries.FAIL_RUN,
                (f.claimed.task_id, f.claimed.run_id, "error", Jsonb(storable(describe(exc))), False),
            )
            return False

    @staticmethod
    def _already_completed(conn: psycopg.Connection, f: Finished) -> bool:
        """True when this run's completion is already in the database: a retry after a commit whose
        acknowledgement was lost is refused by fencing, yet the outcome was recorded, not lost."""
        row = conn.execute(queries.COMPLETED_BY_RUN, (f.claimed.task_id, f.claimed.run_id)).fetchone()
        return bool(row and row[0])

    def _record(self, f: Finished, accepted: bool) -> None:
        f.recorded = True
        try:
            self._on_recorded(f, accepted)
        except Exception:  # a callback bug must not kill the writer thread
            log.exception("outcome callback failed", task_id=f.claimed.task_id)
