"""Prometheus metrics for the daemons, each with its own registry and a local HTTP endpoint.

Counters and the duration histogram are kept by the process that sees the events (a worker's
claims and outcomes, a scheduler's fires). Queue depths and breaker states are read from the
database at scrape time, so any daemon can serve them and they are never stale.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = structlog.get_logger("absurd.metrics")

QUEUE_DEPTHS = """
SELECT q.name, s.state, count(t.id)
FROM absurd.queues q
CROSS JOIN unnest(ARRAY['waiting', 'pending', 'running', 'sleeping']) AS s(state)
LEFT JOIN absurd.tasks t ON t.queue = q.name AND t.state = s.state
GROUP BY q.name, s.state
"""
BREAKER_STATES = "SELECT key, breaker_state FROM absurd.gates WHERE breaker_enabled"
DLQ_OPEN = "SELECT queue, reason, count(*) FROM absurd.dlq WHERE resolved_at IS NULL GROUP BY queue, reason"
# Pending tasks whose time has come: how long the oldest has waited for a worker (0 when none waits), in
# each queue for each band. Background work (a negative priority: an archive's reprocessing) waits behind
# the rest by design, often for hours, so that an alert on the foreground's wait does not fire for it.
OLDEST_PENDING = """
SELECT q.name, b.band, coalesce(extract(epoch FROM now() - min(t.available_at)), 0)
FROM absurd.queues q
CROSS JOIN (VALUES ('foreground'), ('background')) AS b(band)
LEFT JOIN absurd.tasks t ON t.queue = q.name AND t.state = 'pending' AND t.available_at <= now()
     AND (t.priority < 0) = (b.band = 'background')
GROUP BY q.name, b.band
"""
# Registered daemons that have not said they stopped: one that died silently keeps ageing here.
HEARTBEAT_AGES = """
SELECT 'worker', id, extract(epoch FROM now() - heartbeat_at)
FROM absurd.workers WHERE stopped_at IS NULL
UNION ALL
SELECT 'scheduler', id, extract(epoch FROM now() - heartbeat_at)
FROM absurd.schedulers WHERE stopped_at IS NULL
"""
# Enabled time-triggered schedules; an event schedule has no next fire.
SCHEDULE_FIRES = """
SELECT name, extract(epoch FROM next_fire_at), extract(epoch FROM last_fired_at)
FROM absurd.schedules WHERE enabled AND next_fire_at IS NOT NULL
"""
BREAKER_VALUES = ("closed", "half_open", "open")
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)


class QueueCollector(Collector):
    """Queue depths by state, the oldest pending task's wait, open DLQ entries, breaker states,
    daemon heartbeat ages and schedule fire times, read from the database per scrape."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def collect(self) -> Iterator[Any]:
        """Yield the gauges; ``absurd_database_up`` is 0 when the database could not be read."""
        up = GaugeMetricFamily("absurd_database_up", "1 when the last scrape could read the database")
        depth = GaugeMetricFamily(
            "absurd_queue_depth", "tasks in a queue by state", labels=["queue", "state"]
        )
        # reason tells task failures (exhausted, permanent, no_retry) from worker crashes (lease_expired).
        dlq = GaugeMetricFamily(
            "absurd_dlq_open", "open dead-letter entries by queue and reason", labels=["queue", "reason"]
        )
        breaker = GaugeMetricFamily(
            "absurd_breaker_state", "1 for the state a circuit breaker is in", labels=["key", "state"]
        )
        waiting = GaugeMetricFamily(
            "absurd_queue_oldest_pending_age_seconds",
            "how long the oldest pending task whose time has come has waited (0 when none), by queue and"
            " band: background for a negative priority, foreground otherwise",
            labels=["queue", "band"],
        )
        heartbeat = GaugeMetricFamily(
            "absurd_heartbeat_age_seconds",
            "seconds since each registered, not stopped, worker or scheduler last beat",
            labels=["kind", "id"],
        )
        next_fire = GaugeMetricFamily(
            "absurd_schedule_next_fire_timestamp_seconds",
            "when an enabled cron or interval schedule is next due (Unix time)",
            labels=["schedule"],
        )
        last_fire = GaugeMetricFamily(
            "absurd_schedule_last_fire_timestamp_seconds",
            "when an enabled cron or interval schedule last fired (Unix time; absent before its first)",
            labels=["schedule"],
        )
        try:
            with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
                for queue, state, n in conn.execute(QUEUE_DEPTHS).fetchall():
                    depth.add_metric([queue, state], n)
                for queue, band, age in conn.execute(OLDEST_PENDING).fetchall():
                    waiting.add_metric([queue, band], float(age))
                for kind, daemon_id, age in conn.execute(HEARTBEAT_AGES).fetchall():
                    heartbeat.add_metric([kind, daemon_id], float(age))
                for name, due, fired in conn.execute(SCHEDULE_FIRES).fetchall():
                    next_fire.add_metric([name], float(due))
                    if fired is not None:
                        last_fire.add_metric([name], float(fired))
                for queue, reason, n in conn.execute(DLQ_OPEN).fetchall():
                    dlq.add_metric([queue, reason], n)
                for key, state in conn.execute(BREAKER_STATES).fetchall():
                    for value in BREAKER_VALUES:
                        breaker.add_metric([key, value], 1.0 if state == value else 0.0)
            up.add_metric([], 1.0)
        except psycopg.Error as exc:
            log.warning("metrics: cannot read the database", error=str(exc))
            up.add_metric([], 0.0)
        yield up
        yield depth
        yield dlq
        yield breaker
        yield waiting
        yield heartbeat
        yield next_fire
        yield last_fire


class Metrics:
    """One daemon's metrics. Nothing is served until ``serve()``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.claimed = Counter("absurd_tasks_claimed", "runs claimed, by task name", ["task"], registry=r)
        self.completed = Counter(
            "absurd_tasks_completed", "runs completed, by task name", ["task"], registry=r
        )
        self.failed = Counter("absurd_tasks_failed", "runs failed, by task name", ["task"], registry=r)
        self.lease_lost = Counter(
            "absurd_lease_losses", "runs whose lease was lost before they finished", ["task"], registry=r
        )
        self.duration = Histogram(
            "absurd_task_duration_seconds",
            "run time from claim to outcome, by task name and outcome",
            ["task", "outcome"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.fires = Counter(
            "absurd_schedule_fires", "schedule fires made by this scheduler", ["schedule", "kind"], registry=r
        )
        self.fire_errors = Counter(
            "absurd_schedule_fire_errors", "fires whose workflow could not be built", ["schedule"], registry=r
        )
        self._server: Any = None

    def serve(self, port: int, dsn: str | None = None, host: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` on ``host:port`` (0 picks a free port) and return the port. With a DSN,
        queue depths and breaker states are included."""
        if dsn is not None:
            self.registry.register(QueueCollector(dsn))
        self._server, _ = start_http_server(port, addr=host, registry=self.registry)
        bound = int(self._server.server_port)
        log.info("serving metrics", address=f"http://{host}:{bound}/metrics")
        return bound

    def close(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
