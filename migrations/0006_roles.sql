-- Least-privilege roles: queue state changes only through the queue's functions (every function of the
-- absurd schema is SECURITY DEFINER). The worker and scheduler roles may call the functions their daemon
-- needs, read what it reads, and write only their own registry rows (and, for the scheduler, the schedules
-- it syncs). docs/roles.md has the table; tests/queue/test_roles.py logs in as each role alone and checks it.

-- NOLOGIN: grant them to login roles (docs/roles.md). Roles are global to the cluster, so they are created
-- only when missing; without CREATEROLE the migration goes on without them.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['absurd_worker', 'absurd_scheduler', 'absurd_readonly'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN insufficient_privilege THEN
                RAISE NOTICE 'cannot create role % (no CREATEROLE); create it by hand, see docs/roles.md', r;
            END;
        END IF;
    END LOOP;
END
$$;

-- Functions are executable by PUBLIC by default; the queue's are for the roles below (and the owner).
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA absurd FROM PUBLIC;
-- Functions that later migrations create (as the role applying this one) are not executable by PUBLIC either;
-- each migration grants what a role needs. Per-schema default privileges cannot revoke PUBLIC's, so this is
-- the database-wide default of the migrating role.
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'absurd_worker') THEN
        GRANT USAGE ON SCHEMA absurd TO absurd_worker;
        GRANT SELECT ON
            absurd.queues, absurd.tasks, absurd.runs, absurd.checkpoints, absurd.events, absurd.workers,
            absurd.workflows, absurd.task_deps, absurd.dlq, absurd.dlq_actions, absurd.gates,
            absurd.gate_calls, absurd.gate_transitions, absurd.workflow_status
            TO absurd_worker;
        GRANT INSERT, UPDATE ON absurd.workers TO absurd_worker;
        GRANT EXECUTE ON FUNCTION
            absurd.claim(text, text, integer, double precision),
            absurd.complete_runs(bigint[], bigint[], jsonb[]),
            absurd.fail_run(bigint, bigint, text, jsonb, boolean),
            absurd.extend_leases(bigint[], bigint[], double precision),
            absurd.release_runs(bigint[], bigint[]),
            absurd.finish_cancelled(bigint, bigint),
            absurd.set_checkpoint(bigint, bigint, text, jsonb),
            absurd.suspend_run(bigint, bigint, timestamptz, text),
            absurd.await_event(bigint, bigint, text, double precision),
            absurd.emit_event(text, jsonb),
            absurd.ensure_queue(text),
            absurd.spawn_many(text, text[], jsonb[], text[], integer, timestamptz, integer, jsonb,
                              double precision, jsonb, text, integer),
            absurd.spawn_children(bigint, bigint, text, text[], text[], jsonb[], text),
            absurd.reap_expired(integer),
            absurd.cleanup(interval, integer)
            TO absurd_worker;
    END IF;
    -- The scheduler submits workflows only through fire_schedule: it may not write tasks or gates itself.
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'absurd_scheduler') THEN
        GRANT USAGE ON SCHEMA absurd TO absurd_scheduler;
        GRANT SELECT ON
            absurd.queues, absurd.tasks, absurd.workflows, absurd.task_deps, absurd.gates, absurd.dlq,
            absurd.runs, absurd.workers, absurd.events, absurd.workflow_status, absurd.schedule_fires
            TO absurd_scheduler;
        GRANT SELECT, INSERT, UPDATE, DELETE ON absurd.schedules TO absurd_scheduler;
        GRANT SELECT, INSERT, UPDATE ON absurd.schedulers TO absurd_scheduler;
        GRANT SELECT, DELETE ON absurd.event_log TO absurd_scheduler;
        GRANT EXECUTE ON FUNCTION
            absurd.fire_schedule(text, timestamptz, text, bigint, text, jsonb, jsonb, text)
            TO absurd_scheduler;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'absurd_readonly') THEN
        GRANT USAGE ON SCHEMA absurd TO absurd_readonly;
        GRANT SELECT ON ALL TABLES IN SCHEMA absurd TO absurd_readonly;
        GRANT SELECT ON public.absurd_migrations TO absurd_readonly;
        -- Dashboards should see tables later migrations add, when the same role applies them.
        ALTER DEFAULT PRIVILEGES IN SCHEMA absurd GRANT SELECT ON TABLES TO absurd_readonly;
    END IF;
END
$$;
