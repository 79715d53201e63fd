"""The overview's "oldest pending" tiles: live work and background work apart, each counted from the time
its task became due, as the queue-latency alert reads it."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from absurd.client import Client
from contimg.store.operations import overview
from contimg.web.templating import templates


def test_oldest_pending_splits_live_from_background_work(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn, Client(dsn) as client:
        empty = overview(conn, 3600)
        assert (empty.oldest_pending_s, empty.oldest_background_s) == (None, None)
        live = client.spawn("echo", {"i": 1}, queue="nobody-serves").task_id
        behind = client.spawn("echo", {"i": 2}, queue="nobody-serves", priority=-5).task_id
        # Created long ago, but in a retry's backoff until five minutes ago: it has waited five minutes.
        conn.execute(
            "UPDATE absurd.tasks SET created_at = now() - interval '2 days', "
            "available_at = now() - interval '5 minutes' WHERE id = %s",
            (live,),
        )
        conn.execute(
            "UPDATE absurd.tasks SET available_at = now() - interval '3 hours' WHERE id = %s", (behind,)
        )
        # Not due yet: not waiting on a worker.
        client.spawn("echo", {"i": 3}, queue="nobody-serves", not_before=datetime(2100, 1, 1, tzinfo=UTC))
        seen = overview(conn, 3600)
    assert seen.live["pending"] == 3
    assert seen.oldest_pending_s is not None and 300 <= seen.oldest_pending_s < 360
    assert seen.oldest_background_s is not None and 10800 <= seen.oldest_background_s < 10900
    html = templates.get_template("_overview.html").render(ov=seen, user=None)
    assert '<span class="n" id="oldest-pending">5 min</span>' in html
    assert '<span class="n" id="oldest-background">3.0 h</span>' in html
