"""The worker: claims batches of tasks, runs them in threads or child processes, keeps their
leases alive, enforces timeouts and cancellations, and shuts down gracefully."""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import socket
import threading
import time
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
import structlog
from psycopg.types.json import set_json_loads
from psycopg_pool import ConnectionPool
from pydantic import BaseModel, ConfigDict, Field

from absurd import queries
from absurd.context import RunSignals
from absurd.daemon import Daemon, default_daemon_id
from absurd.errors import TaskTimeoutError, UnknownTaskError
from absurd.maintenance import (
    MaintenanceDuty,
    MaintenanceRunner,
    Pruner,
    PrunerSettings,
    Reaper,
    ReaperSettings,
)
from absurd.registry import Registry, TaskDefinition
from absurd.worker.completer import Completer, Finished
from absurd.worker.execution import (
    Claimed,
    Outcome,
    child_initializer,
    describe,
    run_claimed,
    run_in_child,
)
from absurd.worker.threads import TaskThreads
from absurd.worker.wakeup import WakeListener

if TYPE_CHECKING:
    from pebble import ProcessPool  # imported when the first process-mode task runs
    from prometheus_client.metrics import Counter, Histogram

log = structlog.get_logger("absurd.worker")
# How often a worker whose slots are all taken looks again for one freed alone (see _claim_loop).
FULL_RECHECK_S = 0.02


class WorkerSettings(BaseModel):
    """How a worker behaves; every field has a default an operator may override."""

    model_config = ConfigDict(extra="forbid")
    queues: list[str] = Field(default_factory=lambda: ["default"], min_length=1)
    concurrency: int = Field(8, ge=1, description="tasks run at once by this worker")
    processes: int | None = Field(None, ge=1, description="child processes for process-mode tasks")
    lease_s: float = Field(30.0, gt=0)
    heartbeat_s: float | None = Field(None, gt=0, description="defaults to a third of the lease")
    poll_s: float = Field(1.0, gt=0, description="fallback poll when no notification arrives")
    claim_batch: int = Field(256, ge=1)
    shutdown_grace_s: float = Field(30.0, ge=0)
    cancel_grace_s: float = Field(10.0, ge=0)
    reaper: ReaperSettings = Field(default_factory=ReaperSettings)
    pruner: PrunerSettings | None = Field(
        default_factory=PrunerSettings, description="None: this worker deletes no finished tasks"
    )
    worker_id: str | None = None
    log_level: str = "INFO"
    metrics_port: int | None = Field(None, ge=0, le=65535, description="serve Prometheus metrics here")


_decode_json = json.JSONDecoder().decode


def _json_loads(data: str | bytes) -> Any:
    # Most runs have no headers, and many no params: an empty object needs no parser (a new dict each time:
    # a task may change its own). The server sends UTF-8: decoding it directly skips json.loads' encoding
    # detection on bytes.
    if data == b"{}" or data == "{}":
        return {}
    return _decode_json(data.decode() if isinstance(data, bytes) else data)


def _configure_connection(conn: psycopg.Connection) -> None:
    """Every pooled connection parses json and jsonb (a claimed run's params and headers) with _json_loads."""
    set_json_loads(_json_loads, conn)


@dataclass(slots=True)
class Running:
    """A run this worker holds."""

    claimed: Claimed
    definition: TaskDefinition | None
    started: float
    signals: RunSignals | None = None
    future: Future[Any] | None = None
    cancel_seen: float | None = None
    finished: bool = False
    # A thread-mode run's function has returned (its thread is free again).
    thread_done: bool = False

    def occupies_a_slot(self) -> bool:
        """Whether the run still holds a thread or a child process, finished or not."""
        if self.signals is not None:
            return not self.thread_done
        return self.future is not None and not self.future.done()


class _NotCounted:
    """Stands in for a metric child in a worker that serves no metrics: nothing could read the count, and
    counting takes a lock per call."""

    def inc(self, amount: float = 1) -> None:
        """Count nothing."""

    def observe(self, amount: float) -> None:
        """Observe nothing."""


class TaskMetrics:
    """One task name's metric children, looked up once rather than per run."""

    def __init__(self, metrics: Any, task: str) -> None:
        self.claimed: Counter = metrics.claimed.labels(task)
        self.completed: Counter = metrics.completed.labels(task)
        self.failed: Counter = metrics.failed.labels(task)
        self.lease_lost: Counter = metrics.lease_lost.labels(task)
        self._duration = metrics.duration
        self._task = task
        self._durations: dict[str, Histogram] = {}

    def duration(self, outcome: str) -> Histogram:
        """The duration histogram of this task and ``outcome``."""
        child = self._durations.get(outcome)
        if child is None:
            child = self._durations[outcome] = self._duration.labels(self._task, outcome)
        return child


class _Uncounted:
    """Metrics whose every child is _NotCounted (see TaskMetrics)."""

    def __init__(self) -> None:
        self.claimed = self.completed = self.failed = self.lease_lost = self.duration = self

    def labels(self, *values: str) -> _NotCounted:
        """The one child of every label."""
        return _NOT_COUNTED


_NOT_COUNTED = _NotCounted()
_UNCOUNTED = _Uncounted()


class Worker(Daemon):
    """One worker process's runtime. ``run()`` blocks until ``stop()`` or SIGTERM/SIGINT; running
    tasks then get ``shutdown_grace_s``."""

    kind = "worker"
    stopping_status = "draining running tasks"

    def __init__(self, registry: Registry, settings: WorkerSettings | None = None, dsn: str | None = None):
        self.registry = registry
        self.settings = settings or WorkerSettings()
        self.worker_id = self.settings.worker_id or default_daemon_id()
        super().__init__(
            log,
            {"worker_id": self.worker_id},
            dsn,
            metrics_port=self.settings.metrics_port,
            grace_s=self.settings.shutdown_grace_s,
        )
        # Heartbeats and maintenance outlive _stopping: leases must hold through the graceful drain.
        self._halted = threading.Event()
        self._wake = threading.Event()
        # Keyed by run id: a task reaped and claimed again by this worker may have an old run still recording.
        self._executing: dict[int, Running] = {}
        self._recording: dict[int, Running] = {}
        self._abandoned: list[Running] = []
        self._task_metrics: dict[str, TaskMetrics] = {}
        # Set when the completer's backlog, not the slots, held back the last claim.
        self._backlogged = False
        self._threads: list[threading.Thread] = []
        self._process_pool: ProcessPool | None = None
        self.pool = ConnectionPool(
            self.dsn,
            min_size=2,
            max_size=min(self.settings.concurrency, 16) + 4,
            kwargs={"autocommit": True},
            open=False,
            name=f"absurd-{self.worker_id}",
            reconnect_timeout=24 * 3600,
            configure=_configure_connection,
        )
        self.completer = Completer(self.pool, self._recorded)
        self._task_threads: TaskThreads[Running] = TaskThreads(
            self.settings.concurrency, self._run_in_thread, "absurd-task"
        )
        # The claim loop is woken when this many slots are free, so that one claim fetches a worthwhile
        # batch instead of one round trip per finished task.
        self._enough = max(1, min(self.settings.claim_batch, self.settings.concurrency) // 4)
        # One claimer at a time: the claim loop, or the listener when work arrives while the loop waits idle.
        self._claiming = threading.Lock()
        self._idle = False
        self._listener = WakeListener(self.dsn, set(self.settings.queues), self._work_arrived, self._stopping)
        self.counters = {"claimed": 0, "completed": 0, "failed": 0, "lease_lost": 0}
        duties: list[MaintenanceDuty] = [Reaper(self.settings.reaper)]
        if self.settings.pruner is not None:
            duties.append(Pruner(self.settings.pruner))
        self.maintenance = MaintenanceRunner(duties, context=self.identity)

    # Lifecycle (run() and stop() are the Daemon's) -------------------------------------------------

    def _on_stop(self) -> None:
        self._wake.set()  # no more claims

    def _start(self) -> None:
        self.pool.open(wait=False)
        self._task_threads.start()  # in the background, while the worker registers
        self._register()
        self.completer.start()
        for target, name in (
            (self._supervise, "absurd-supervisor"),
            (self._maintain, "absurd-maintenance"),
            (self._listener.run, "absurd-listener"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self) -> None:
        self._claim_loop()

    def _ready_status(self) -> str:
        return f"serving {', '.join(self.settings.queues)}"

    def _started_fields(self) -> dict[str, object]:
        return {"queues": self.settings.queues, "concurrency": self.settings.concurrency}

    def _stopped_fields(self) -> dict[str, object]:
        return dict(self.counters)

    # Claiming -----------------------------------------------------------------------------------

    def _claim_loop(self) -> None:
        backoff = 0.1
        enough = self._enough
        while not self._stopping.is_set():
            self._wake.clear()
            free = self._free_slots()
            if 0 < free < enough:
                time.sleep(0.001)
                free = self._free_slots()
            got = 0
            if free > 0:
                try:
                    with self._claiming:  # the listener may have claimed meanwhile
                        free = self._free_slots()
                        got = self._claim_some(free) if free > 0 else 0
                    backoff = 0.1
                except psycopg.OperationalError as exc:
                    self._log.warning(
                        "claim failed; database unavailable", error=str(exc), retry_in_s=backoff
                    )
                    self._stopping.wait(backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
            if free - got <= 0:
                # Every slot is taken. A finished run wakes us once a batch of slots is free; a slot
                # freed alone is picked up at the next look.
                self._wake.wait(min(self.settings.poll_s, FULL_RECHECK_S))
            elif got == 0:
                # Nothing ready: a notification wakes us, and the listener claims what it announces itself.
                self._idle = True
                self._wake.wait(self.settings.poll_s)
                self._idle = False

    def _work_arrived(self) -> None:
        """Called by the listener on a notification. While the claim loop waits idle, the listener's thread
        claims at once: one thread hand-off less between a spawn and its start. The loop is woken anyway."""
        if self._idle and self._claiming.acquire(blocking=False):
            try:
                free = self._free_slots()
                if free > 0 and not self._stopping.is_set():
                    self._claim_some(free)
            except Exception as exc:  # the claim loop, woken below, tries again
                self._log.warning("claim on notification failed", error=str(exc))
            finally:
                self._claiming.release()
        self._wake.set()

    def _free_slots(self) -> int:
        """Slots for new claims. Runs whose outcome the completer has not yet written count against a
        second bound, so a lagging database slows claiming instead of letting leases pile up."""
        backlog_room = 2 * max(self.settings.concurrency, self.settings.claim_batch) - len(self._recording)
        # An abandoned thread still holds its place in the thread pool until its function returns.
        if self._abandoned:
            self._abandoned = [r for r in self._abandoned if r.occupies_a_slot()]
        slots = self.settings.concurrency - len(self._executing) - len(self._abandoned)
        self._backlogged = backlog_room < min(slots, self._enough)
        return min(slots, backlog_room)

    def _metrics_of(self, task: str) -> TaskMetrics:
        found = self._task_metrics.get(task)
        if found is None:
            found = self._task_metrics[task] = TaskMetrics(
                self.metrics if self.settings.metrics_port is not None else _UNCOUNTED, task
            )
        return found

    def _claim_some(self, free: int) -> int:
        got = 0
        with self.pool.connection() as conn:
            for queue_name in self.settings.queues:
                want = min(free - got, self.settings.claim_batch)
                if want <= 0:
                    break
                rows = conn.execute(
                    queries.CLAIM, (queue_name, self.worker_id, want, self.settings.lease_s)
                ).fetchall()
                for row in rows:
                    claimed = Claimed(*row)
                    self._metrics_of(claimed.name).claimed.inc()
                    self._dispatch(claimed)
                got += len(rows)
        self.counters["claimed"] += got
        return got

    def _dispatch(self, claimed: Claimed) -> None:
        try:
            definition: TaskDefinition | None = self.registry.get(claimed.name)
        except UnknownTaskError as exc:
            definition = None
            running = Running(claimed, None, time.monotonic())
            self._executing[claimed.run_id] = running
            error = UnknownTaskError(f"{exc} (worker {self.worker_id})")
            self._finish(running, Outcome("failed", error=describe(error), permanent=True))
            return
        assert definition is not None
        running = Running(claimed, definition, time.monotonic())
        self._executing[claimed.run_id] = running
        if definition.mode == "process":
            future = self._processes().schedule(
                run_in_child,
                args=(definition, claimed, self.dsn, self.worker_id),
                timeout=claimed.timeout_s,
            )
            running.future = future
            future.add_done_callback(functools.partial(self._process_done, running))
        else:
            running.signals = RunSignals()
            self._task_threads.submit(running)

    def _processes(self) -> ProcessPool:
        if self._process_pool is None:
            from pebble import ProcessPool

            self._process_pool = ProcessPool(
                max_workers=self.settings.processes or self.settings.concurrency,
                initializer=child_initializer,
                initargs=(self.settings.log_level,),
                context=multiprocessing.get_context("forkserver"),
            )
        return self._process_pool

    # Running ------------------------------------------------------------------------------------

    def _run_in_thread(self, running: Running) -> None:
        assert running.definition is not None
        try:
            outcome = run_claimed(
                running.definition, running.claimed, self.worker_id, self.pool, running.signals
            )
            self._finish(running, outcome)
        finally:
            running.thread_done = True

    def _process_done(self, running: Running, future: Future[Any]) -> None:
        from pebble import ProcessExpired

        try:
            outcome: Outcome = future.result()
        except FutureTimeout:
            error = TaskTimeoutError(
                f"task {running.claimed.task_id} exceeded its {running.claimed.timeout_s} s timeout"
            )
            outcome = Outcome("failed", error=describe(error), reason="timeout")
        except CancelledError:
            outcome = Outcome("cancelled") if running.cancel_seen else Outcome("lease_lost")
        except ProcessExpired as exc:
            outcome = Outcome("failed", error=describe(exc), reason="process_died")
        except Exception as exc:
            outcome = Outcome("failed", error=describe(exc, getattr(exc, "traceback", None)))
        self._finish(running, outcome)

    def _finish(self, running: Running, outcome: Outcome) -> None:
        """Hand a run's outcome to the completer, once."""
        run_id = running.claimed.run_id
        # Whoever takes the run out of _executing finishes it: its thread, the supervisor abandoning it, or
        # the shutdown releasing it. One dict operation, atomic under the GIL, where a shared lock here
        # and in _dispatch and _recorded made every run's thread wait for the claim loop and the completer.
        if self._executing.pop(run_id, None) is None:
            return
        running.finished = True
        self._recording[run_id] = running
        # Wake the claim loop only once a worthwhile batch of slots is free (see _claim_loop).
        wake = len(self._executing) <= self.settings.concurrency - self._enough
        definition = running.definition
        hook = definition.on_complete if definition else None
        params = None
        if hook is not None and outcome.kind == "completed":
            params = definition.parse_params(running.claimed.params) if definition else None
        self.completer.submit(Finished(running.claimed, outcome, hook, params))
        if wake and not self._wake.is_set():  # set() takes the event's lock even when it is set
            self._wake.set()

    def _recorded(self, finished: Finished, accepted: bool) -> None:
        running = self._recording.pop(finished.claimed.run_id, None)
        if self._backlogged:
            # The claim loop is waiting for the completer to catch up (see _free_slots).
            self._wake.set()
        kind = finished.outcome.kind
        metrics = self._metrics_of(finished.claimed.name)
        if running is not None and self.settings.metrics_port is not None:
            outcome = kind if accepted else "lease_lost"
            metrics.duration(outcome).observe(time.monotonic() - running.started)
        if kind == "completed" and accepted:
            self.counters["completed"] += 1
            metrics.completed.inc()
        elif kind == "failed" and accepted:
            self.counters["failed"] += 1
            metrics.failed.inc()
            self._log.warning(
                "task failed",
                task_id=finished.claimed.task_id,
                task=finished.claimed.name,
                attempt=finished.claimed.attempt,
                reason=finished.outcome.reason,
                error=finished.outcome.error.get("message"),
            )
        if not accepted or kind == "lease_lost":
            self.counters["lease_lost"] += 1
            metrics.lease_lost.inc()
            self._log.warning("lease lost: outcome discarded", task_id=finished.claimed.task_id, outcome=kind)

    # Supervision: leases, timeouts, cancellations --------------------------------------------------

    def _supervise(self) -> None:
        heartbeat_s = self.settings.heartbeat_s or self.settings.lease_s / 3
        next_beat = time.monotonic() + heartbeat_s
        while not self._halted.wait(0.2):
            self._alive()
            self._enforce_deadlines()
            if time.monotonic() >= next_beat:
                try:
                    self._heartbeat()
                    next_beat = time.monotonic() + heartbeat_s
                except psycopg.OperationalError as exc:
                    self._log.warning("heartbeat failed; database unavailable", error=str(exc))
                    next_beat = time.monotonic() + min(1.0, heartbeat_s)
                except Exception:
                    # The thread must outlive any one beat: without it every lease of this worker lapses.
                    self._log.exception("heartbeat failed")
                    next_beat = time.monotonic() + min(1.0, heartbeat_s)

    def _heartbeat(self) -> None:
        # Each copy is one C-level operation, atomic under the GIL; a run passing from one dict to the
        # other between them is missed by this beat only.
        held = {**self._recording, **self._executing}
        with self.pool.connection() as conn:
            conn.execute(queries.WORKER_HEARTBEAT, (self.worker_id,))
            if not held:
                return
            rows = conn.execute(
                queries.EXTEND_LEASES,
                (
                    [r.claimed.task_id for r in held.values()],
                    [r.claimed.run_id for r in held.values()],
                    self.settings.lease_s,
                ),
            ).fetchall()
        alive = {task_id: cancel for task_id, cancel in rows}
        now = time.monotonic()
        for running in held.values():
            task_id = running.claimed.task_id
            if running.finished:
                continue
            if task_id not in alive:
                self._log.warning(
                    "lease lost; abandoning run", task_id=task_id, run_id=running.claimed.run_id
                )
                if running.signals:
                    running.signals.lease_lost = True
                self._abandon(running, Outcome("lease_lost"))
            elif alive[task_id] and running.cancel_seen is None:
                running.cancel_seen = now
                self._log.info("cancellation requested", task_id=task_id)
                if running.signals:
                    running.signals.cancel_requested = True

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for running in list(self._executing.values()):
            timeout = running.claimed.timeout_s
            # Process runs are killed by the pool at their timeout; threads cannot be killed, so the
            # run is failed now and the thread's eventual result discarded.
            if running.signals and timeout and now - running.started > timeout:
                running.signals.timed_out = True
                error = TaskTimeoutError(f"task {running.claimed.task_id} exceeded its {timeout} s timeout")
                self._abandon(running, Outcome("failed", error=describe(error), reason="timeout"))
            elif running.cancel_seen and now - running.cancel_seen > self.settings.cancel_grace_s:
                self._log.warning("cancel grace period over; stopping run", task_id=running.claimed.task_id)
                self._abandon(running, Outcome("cancelled"))

    def _abandon(self, running: Running, outcome: Outcome) -> None:
        """Stop waiting for a run: kill its child process if it has one, and record ``outcome``."""
        if running.signals is None and running.future is not None and not running.future.done():
            running.future.cancel()  # pebble kills the child; _process_done then finishes the run
            return
        if running.occupies_a_slot():
            self._abandoned.append(running)
        self._finish(running, outcome)

    # Maintenance -------------------------------------------------------------------------------

    def _maintain(self) -> None:
        # Runs until _halted, not _stopping: expired runs are reclaimed through the graceful drain too.
        self.maintenance.run_forever(self.pool.connection, self._halted)

    # Registry and shutdown ----------------------------------------------------------------------

    def _register(self) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            try:
                with self.pool.connection() as conn:
                    conn.execute(
                        queries.REGISTER_WORKER,
                        (
                            self.worker_id,
                            socket.gethostname(),
                            os.getpid(),
                            self.settings.queues,
                            self.settings.concurrency,
                            self.registry.names(),
                        ),
                    )
                return
            except psycopg.OperationalError as exc:
                self._log.warning("cannot register worker; retrying", error=str(exc), retry_in_s=delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, 10.0)

    def _shutdown(self) -> None:
        with self._claiming:  # a claim the listener began is dispatched before the drain; none starts after
            pass
        self._drain(lambda: bool(self._executing))
        leftover = []
        for run_id in list(self._executing):
            # Taken out one by one, as _finish takes a run: each run is either finished or released.
            running = self._executing.pop(run_id, None)
            if running is None:
                continue
            running.finished = True
            # Released runs may be claimed elsewhere at once: a thread must stop at its next heartbeat.
            if running.signals is not None:
                running.signals.lease_lost = True
            leftover.append(running)
        if leftover:
            self._release(leftover)
        if self._process_pool is not None:
            # Joined here: left to pebble's exit hook, each child (they ignore SIGTERM) took its 3 s grace
            # before SIGKILL, one after another, so stopping a worker with N children took 3N s.
            self._process_pool.stop()
            self._process_pool.join()
        self.completer.stop()
        self._halted.set()  # every outcome is written: heartbeats may end
        self._task_threads.stop()
        try:
            with self.pool.connection(timeout=5) as conn:
                conn.execute(queries.WORKER_STOPPED, (self.worker_id,))
        except Exception as exc:
            self._log.warning("could not mark worker stopped", error=str(exc))
        for thread in self._threads:
            thread.join(timeout=2)
        self.pool.close()

    def _release(self, leftover: list[Running]) -> None:
        try:
            with self.pool.connection(timeout=10) as conn:
                conn.execute(
                    queries.RELEASE_RUNS,
                    ([r.claimed.task_id for r in leftover], [r.claimed.run_id for r in leftover]),
                )
            self._log.info("released unfinished runs for other workers", count=len(leftover))
        except Exception as exc:
            self._log.warning("could not release runs; their leases will expire", error=str(exc))
