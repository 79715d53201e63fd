-- Schedules: workflows started by cron, by interval or by events, fired exactly once however many
-- schedulers run; and the scheduler registry.

-- One row per schedule, loaded from schedules/*.yaml by `absurd schedule sync`.
CREATE TABLE absurd.schedules (
    name            text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$'),
    description     text NOT NULL DEFAULT '',
    enabled         boolean NOT NULL DEFAULT true,
    trigger_kind    text NOT NULL CHECK (trigger_kind IN ('cron', 'interval', 'event')),
    cron            text,
    timezone        text,
    interval_s      double precision CHECK (interval_s IS NULL OR interval_s > 0),
    event_name      text,
    catch_up        text NOT NULL DEFAULT 'fire_once' CHECK (catch_up IN ('skip', 'fire_once', 'fire_all')),
    catch_up_limit  integer NOT NULL DEFAULT 10 CHECK (catch_up_limit > 0),
    template        jsonb NOT NULL,
    source_file     text,
    source_line     integer,
    checksum        text NOT NULL,
    -- Event schedules start from events logged after this id, so old events do not fire a new schedule.
    event_cursor    bigint NOT NULL DEFAULT 0,
    next_fire_at    timestamptz,
    last_fired_at   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((trigger_kind = 'cron') = (cron IS NOT NULL AND timezone IS NOT NULL)),
    CHECK ((trigger_kind = 'interval') = (interval_s IS NOT NULL)),
    CHECK ((trigger_kind = 'event') = (event_name IS NOT NULL))
);
CREATE INDEX schedules_due ON absurd.schedules (next_fire_at) WHERE enabled AND trigger_kind <> 'event';
CREATE INDEX schedules_event ON absurd.schedules (event_name) WHERE enabled AND trigger_kind = 'event';

-- Every emission of every event, with an id: absurd.events keeps only the latest payload per name, and an
-- event trigger must see each emission once. Filled by a trigger, so every emitter is covered.
CREATE TABLE absurd.event_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    payload     jsonb,
    emitted_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX event_log_name ON absurd.event_log (name, id);
CREATE INDEX event_log_emitted ON absurd.event_log (emitted_at);

CREATE FUNCTION absurd.log_event() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO absurd.event_log (name, payload) VALUES (NEW.name, NEW.payload);
    RETURN NULL;
END
$$;

-- An upsert that updates fires the UPDATE trigger, so re-emitting a name is logged too.
CREATE TRIGGER events_logged AFTER INSERT OR UPDATE ON absurd.events
    FOR EACH ROW EXECUTE FUNCTION absurd.log_event();

-- One row per fire. The unique indexes are the exactly-once guarantee: a scheduler inserts the fire and
-- submits the workflow in one transaction, and a second scheduler's insert of the same fire conflicts.
-- No foreign key: the history outlives a removed schedule, and a re-added one cannot fire a time twice.
CREATE TABLE absurd.schedule_fires (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schedule      text NOT NULL,
    fire_time     timestamptz NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('scheduled', 'catch_up', 'event', 'manual')),
    event_id      bigint,
    workflow_id   bigint,
    error         text,
    scheduler_id  text,
    fired_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX schedule_fires_once ON absurd.schedule_fires (schedule, fire_time) WHERE event_id IS NULL;
CREATE UNIQUE INDEX schedule_fires_event_once ON absurd.schedule_fires (schedule, event_id)
    WHERE event_id IS NOT NULL;
CREATE INDEX schedule_fires_recent ON absurd.schedule_fires (schedule, fired_at DESC);

-- Record one fire and submit its workflow, in the caller's transaction. Returns the fire's id, or NULL
-- when that fire already exists (another scheduler made it). p_tasks NULL records a fire that could not
-- be built (p_error says why), so a broken template is reported once instead of on every tick.
CREATE FUNCTION absurd.fire_schedule(p_schedule text, p_fire_time timestamptz, p_kind text, p_event_id bigint,
                                     p_scheduler text, p_params jsonb, p_tasks jsonb, p_error text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_fire bigint;
    v_workflow bigint;
BEGIN
    IF p_event_id IS NULL THEN
        INSERT INTO absurd.schedule_fires (schedule, fire_time, kind, scheduler_id, error)
        VALUES (p_schedule, p_fire_time, p_kind, p_scheduler, p_error)
        ON CONFLICT (schedule, fire_time) WHERE event_id IS NULL DO NOTHING
        RETURNING id INTO v_fire;
    ELSE
        INSERT INTO absurd.schedule_fires (schedule, fire_time, kind, event_id, scheduler_id, error)
        VALUES (p_schedule, p_fire_time, p_kind, p_event_id, p_scheduler, p_error)
        ON CONFLICT (schedule, event_id) WHERE event_id IS NOT NULL DO NOTHING
        RETURNING id INTO v_fire;
    END IF;
    IF v_fire IS NULL THEN
        RETURN NULL;
    END IF;
    IF p_tasks IS NOT NULL THEN
        v_workflow := absurd.submit_workflow(p_schedule, p_params, p_tasks);
        UPDATE absurd.schedule_fires SET workflow_id = v_workflow WHERE id = v_fire;
    END IF;
    UPDATE absurd.schedules SET last_fired_at = greatest(last_fired_at, p_fire_time) WHERE name = p_schedule;
    RETURN v_fire;
END
$$;

-- Schedulers register and heartbeat like workers, so `absurd health` can tell whether one is alive.
CREATE TABLE absurd.schedulers (
    id            text PRIMARY KEY,
    hostname      text NOT NULL,
    pid           integer NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now(),
    stopped_at    timestamptz
);
