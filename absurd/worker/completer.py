"""Records run outcomes in batches: one round trip completes many runs.

A database outage never drops an outcome: the completer keeps it and retries with backoff. If
the lease expired meanwhile, the fencing check refuses the write and the run is retried
elsewhere, so a task is never completed twice.
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


class Completer:
    """Owns a thread that writes outcomes; ``submit`` never blocks on the database."""

    def __init__(
        self,
        pool: ConnectionPool,
        on_recorded: Callable[[Finished, bool], None],
        batch_size: int = 500,
        linger_s: float = 0.002,
    ) -> None:
        self._pool = pool
        self._on_recorded = on_recorded
        self._batch_size = batch_size
        self._linger_s = linger_s
        self._queue: queue.SimpleQueue[Finished | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="absurd-completer", daemon=True)
        self._stopping = False

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def submit(self, finished: Finished) -> None:
        """Queue an outcome to be recorded."""
        self._queue.put(finished)

    def stop(self, timeout: float = 30.0) -> None:
        """Record everything submitted so far, then stop."""
        self._stopping = True
        self._queue.put(None)
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            batch = [] if first is None else [first]
            stop = first is None
            deadline = time.monotonic() + self._linger_s
            while len(batch) < self._batch_size:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    continue
                batch.append(item)
            if batch:
                self._write_with_retry(batch)
            if stop and self._queue.empty():
                return

    def _write_with_retry(self, batch: list[Finished]) -> None:
        delay = 0.1
        while batch:
            try:
                self._write(batch)
                return
            except psycopg.OperationalError as exc:
                # What was written before the failure is not written again.
                batch = [f for f in batch if not f.recorded]
                log.warning(
                    "database unavailable; outcomes kept for retry", error=str(exc), pending=len(batch)
                )
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception:
                # A bug must not stop all recording: these runs' leases lapse and the reaper retries them.
                log.exception("could not record outcomes; their runs will be retried", count=len(batch))
                for f in batch:
                    if not f.recorded:
                        self._record(f, False)
                return

    def _write(self, batch: list[Finished]) -> None:
        plain = [f for f in batch if f.outcome.kind == "completed" and f.hook is None]
        with self._pool.connection() as conn:
            if plain:
                rows = conn.execute(
                    queries.COMPLETE_RUNS,
                    (
                        [f.claimed.task_id for f in plain],
                        [f.claimed.run_id for f in plain],
                        [json.dumps(f.outcome.result) for f in plain],
                    ),
                ).fetchall()
                accepted = {r[0] for r in rows}
                for f in plain:
                    self._record(f, f.claimed.task_id in accepted)
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
                            Jsonb(f.outcome.error),
                            f.outcome.permanent,
                        ),
                    ).fetchone()
                    self._record(f, bool(row and row[0] is not None))
                elif f.outcome.kind == "cancelled":
                    row = conn.execute(
                        queries.FINISH_CANCELLED, (f.claimed.task_id, f.claimed.run_id)
                    ).fetchone()
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
                    return False
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
                queries.FAIL_RUN, (f.claimed.task_id, f.claimed.run_id, "error", Jsonb(describe(exc)), False)
            )
            return False

    def _record(self, f: Finished, accepted: bool) -> None:
        f.recorded = True
        try:
            self._on_recorded(f, accepted)
        except Exception:  # a callback bug must not kill the writer thread
            log.exception("outcome callback failed", task_id=f.claimed.task_id)
