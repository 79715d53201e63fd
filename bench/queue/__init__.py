"""The queue benchmark: ``python -m bench.queue [--quick] [--json] [--only KEYS] [--dsn DSN]``.

It measures the engine the way an operator runs it: tasks are spawned through ``Client`` and drained
by real ``python -m absurd worker`` processes running the built-in ``noop`` task. Everything runs in a
scratch database (``bench_<hex>``) that is migrated at the start and dropped at the end. Without
``--dsn`` or ``ABSURD_DSN`` a fresh embedded Postgres is started in a temporary directory, so a run
never touches the user's data. Durability settings are left as the server has them and reported.

Rates are taken on the database clock wherever possible: a drain is timed from the first run's
``started_at`` to the N-th run's ``finished_at``, which leaves out worker start-up; spawn-to-start
latency is a run's ``started_at`` minus its task's ``created_at``. (``python -m bench.peers`` times
drains by the wall clock from the workers' launch instead, side by side with PgQueuer.)

The modules: ``plan`` (what is measured, at which sizes), ``workload`` (spawning, commits, enqueue),
``drain`` (draining measurements), ``latency``, ``report`` (targets, table, JSON) and ``cli``.
"""
