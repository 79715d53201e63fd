"""The scheduler when one schedule cannot fire, and across a fall-back hour when its zone is the DB's."""

from __future__ import annotations

import textwrap
import threading
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

from absurd.builtin_tasks import builtin
from absurd.client import Client
from absurd.scheduler import Scheduler
from absurd.schedules import load_paths
from absurd.schedules.cron import cron_between
from absurd.schedules.sync import sync
from tests.support.processes import wait_until_lock_wait

TWO = """
schedules:
  - name: a-bad
    trigger: {every: 60s}
    workflow:
      tasks: [{name: a, type: noop}]
  - name: b-good
    trigger: {every: 60s}
    workflow:
      tasks: [{name: b, type: noop}]
"""


def test_one_schedule_that_cannot_fire_does_not_stop_the_others(
    dsn: str, client: Client, tmp_path: Path
) -> None:
    (tmp_path / "s.yaml").write_text(textwrap.dedent(TWO))
    loaded, problems = load_paths([tmp_path], builtin)
    assert not problems
    start = datetime(2026, 11, 30, tzinfo=UTC)
    with psycopg.connect(dsn, autocommit=True) as conn:
        sync(conn, loaded, now=start)
    # A fault the database raises for one schedule only, every time it fires.
    client.conn.execute(
        """
        CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.schedule = 'a-bad' AND NEW.error IS NULL THEN
                RAISE EXCEPTION 'value out of range' USING ERRCODE = '22003';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER test_refuse BEFORE INSERT ON absurd.schedule_fires
            FOR EACH ROW EXECUTE FUNCTION test_refuse();
        """
    )
    scheduler = Scheduler(dsn=dsn)
    try:
        for minute in (5, 6):
            scheduler.tick(start.replace(minute=minute))
    finally:
        scheduler.conn.close()
    fires = client.conn.execute(
        "SELECT schedule, workflow_id IS NOT NULL, error IS NOT NULL FROM absurd.schedule_fires ORDER BY id"
    ).fetchall()
    good = [f for f in fires if f[0] == "b-good"]
    assert good and set(good) == {("b-good", True, False)}
    # The bad one is recorded as failed fires, not retried on every tick, and its next fire moved on.
    assert [f for f in fires if f[0] == "a-bad"] == [("a-bad", False, True)] * 2
    row = client.conn.execute("SELECT next_fire_at FROM absurd.schedules WHERE name = 'a-bad'").fetchone()
    assert row is not None and row[0] > start.replace(minute=6)


def test_a_catch_up_walk_across_fall_back_compares_instants_not_wall_clocks() -> None:
    zone = ZoneInfo("America/Los_Angeles")
    # 01:55 PDT, then the clocks fall back; the walk ends at 01:10 PST. Both carry the same tzinfo, as
    # psycopg returns them when the session's TimeZone is the schedule's zone.
    start = datetime(2024, 11, 3, 1, 55, tzinfo=zone)
    end = datetime(2024, 11, 3, 1, 10, tzinfo=zone, fold=1)
    assert start.astimezone(UTC) < end.astimezone(UTC)
    times = cron_between("*/30 * * * *", "America/Los_Angeles", start, end, 10)
    assert [t.astimezone(UTC) for t in times] == [datetime(2024, 11, 3, 9, 0, tzinfo=UTC)]


def test_sync_does_not_write_back_a_next_fire_time_read_before_a_fire_moved_it(
    dsn: str, client: Client, tmp_path: Path
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(TWO))
    loaded, _ = load_paths([tmp_path], builtin)
    start = datetime(2026, 11, 30, tzinfo=UTC)
    with psycopg.connect(dsn, autocommit=True) as conn:
        sync(conn, loaded, now=start)
    path.write_text(
        textwrap.dedent(TWO).replace("tasks: [{name: b, type: noop}]", "tasks: [{name: c, type: noop}]")
    )
    changed, _ = load_paths([tmp_path], builtin)
    moved = datetime(2026, 12, 1, tzinfo=UTC)
    with psycopg.connect(dsn) as firing, psycopg.connect(dsn, autocommit=True) as syncing:
        # A scheduler is firing b-good: it holds the row and has moved next_fire_at, not yet committed.
        firing.execute("UPDATE absurd.schedules SET next_fire_at = %s WHERE name = 'b-good'", (moved,))
        pid = syncing.info.backend_pid
        thread = threading.Thread(target=sync, args=(syncing, changed), kwargs={"now": start})
        thread.start()
        wait_until_lock_wait(client.conn, pid, "sync to wait for the firing scheduler")
        firing.commit()
        thread.join(30)
    row = client.conn.execute(
        "SELECT next_fire_at, template FROM absurd.schedules WHERE name = 'b-good'"
    ).fetchone()
    assert row is not None
    assert row[0] == moved and row[1]["tasks"][0]["name"] == "c"
