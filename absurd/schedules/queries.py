"""The named SQL of schedules and schedulers (tables and functions of migrations/0003_schedules.sql).
Values always travel as parameters."""

from __future__ import annotations

SYNC_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('absurd.schedule_sync', 0))"
ALL_SCHEDULES = "SELECT * FROM absurd.schedules ORDER BY name"
# Sync reads under the row locks it will write through: a scheduler moving next_fire_at meanwhile is waited
# for, so sync never writes back a value read before that move.
ALL_SCHEDULES_LOCKED = "SELECT * FROM absurd.schedules ORDER BY name FOR UPDATE"
SCHEDULE = "SELECT * FROM absurd.schedules WHERE name = %s"
EVENT_LOG_HEAD = "SELECT coalesce(max(id), 0) FROM absurd.event_log"

INSERT_SCHEDULE = """
INSERT INTO absurd.schedules (name, description, enabled, trigger_kind, cron, timezone, interval_s,
                              event_name, catch_up, catch_up_limit, template, source_file, source_line,
                              checksum, event_cursor, next_fire_at)
VALUES (%(name)s, %(description)s, %(enabled)s, %(trigger_kind)s, %(cron)s, %(timezone)s, %(interval_s)s,
        %(event_name)s, %(catch_up)s, %(catch_up_limit)s, %(template)s, %(source_file)s, %(source_line)s,
        %(checksum)s, %(event_cursor)s, %(next_fire_at)s)
"""
UPDATE_SCHEDULE = """
UPDATE absurd.schedules SET
    description = %(description)s, enabled = %(enabled)s, trigger_kind = %(trigger_kind)s, cron = %(cron)s,
    timezone = %(timezone)s, interval_s = %(interval_s)s, event_name = %(event_name)s,
    catch_up = %(catch_up)s, catch_up_limit = %(catch_up_limit)s, template = %(template)s,
    source_file = %(source_file)s, source_line = %(source_line)s, checksum = %(checksum)s,
    event_cursor = %(event_cursor)s, next_fire_at = %(next_fire_at)s, updated_at = now()
WHERE name = %(name)s
"""
UPDATE_SOURCE = "UPDATE absurd.schedules SET source_file = %s, source_line = %s WHERE name = %s"
DELETE_SCHEDULE = "DELETE FROM absurd.schedules WHERE name = %s"
SET_ENABLED = """
UPDATE absurd.schedules SET enabled = %(enabled)s, next_fire_at = %(next_fire_at)s,
    event_cursor = CASE WHEN %(enabled)s AND NOT enabled THEN %(event_cursor)s ELSE event_cursor END,
    updated_at = now()
WHERE name = %(name)s
"""

RECENT_FIRES = """
SELECT id, fire_time, kind, event_id, workflow_id, error, scheduler_id, fired_at
FROM absurd.schedule_fires WHERE schedule = %s ORDER BY fired_at DESC, id DESC LIMIT %s
"""

# The scheduler ---------------------------------------------------------------------------------------

DUE_SCHEDULES = """
SELECT name FROM absurd.schedules
WHERE enabled AND trigger_kind <> 'event' AND next_fire_at <= %s
ORDER BY next_fire_at LIMIT %s
"""
# Locked while one scheduler fires it; another skips it and sees the moved next_fire_at afterwards.
LOCK_DUE_SCHEDULE = """
SELECT * FROM absurd.schedules
WHERE name = %s AND enabled AND trigger_kind <> 'event' AND next_fire_at <= %s
FOR UPDATE SKIP LOCKED
"""
SET_NEXT_FIRE = "UPDATE absurd.schedules SET next_fire_at = %s WHERE name = %s"
PENDING_EVENTS = """
SELECT s.name, s.template, e.id AS event_id, e.payload, e.emitted_at
FROM absurd.schedules s
JOIN absurd.event_log e ON e.name = s.event_name AND e.id > s.event_cursor
WHERE s.enabled AND s.trigger_kind = 'event'
  AND NOT EXISTS (SELECT 1 FROM absurd.schedule_fires f WHERE f.schedule = s.name AND f.event_id = e.id)
ORDER BY e.id LIMIT %s
"""
FIRE = "SELECT absurd.fire_schedule(%s, %s, %s, %s, %s, %s, %s, %s)"
PRUNE_EVENT_LOG = "DELETE FROM absurd.event_log WHERE emitted_at < now() - make_interval(secs => %s)"

REGISTER_SCHEDULER = """
INSERT INTO absurd.schedulers (id, hostname, pid) VALUES (%s, %s, %s)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), stopped_at = NULL
"""
# As WORKER_HEARTBEAT (absurd/queries.py): a scheduler retired as replaced is live again if it beats.
SCHEDULER_HEARTBEAT = """
UPDATE absurd.schedulers
SET heartbeat_at = now(), stopped_at = CASE WHEN stopped_at = heartbeat_at THEN NULL ELSE stopped_at END
WHERE id = %s
"""
SCHEDULER_STOPPED = "UPDATE absurd.schedulers SET stopped_at = now() WHERE id = %s"
DB_NOW = "SELECT clock_timestamp()"
FIRE_WORKFLOW = "SELECT workflow_id FROM absurd.schedule_fires WHERE id = %s"
