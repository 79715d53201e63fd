-- The web dashboard's own tables: the audit log of every mutating action (done or refused), the
-- triage state of alerts, and photometry measured by hand in the sky view. A trigger tells the
-- dashboard's live pages (LISTEN contimg_web) when tasks change state or a product lands.

CREATE SCHEMA web;

CREATE TABLE web.audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    role        text NOT NULL CHECK (role IN ('viewer', 'operator')),
    action      text NOT NULL,
    target      text NOT NULL,
    allowed     boolean NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON web.audit_log (at DESC);

-- One row per alert once someone triages it; an alert without a row is 'new'.
CREATE TABLE web.alert_triage (
    alert_id        bigint PRIMARY KEY REFERENCES products.alerts (id) ON DELETE CASCADE,
    state           text NOT NULL CHECK (state IN ('new', 'acknowledged', 'classified')),
    classification  text,
    notes           text NOT NULL DEFAULT '',
    updated_by      text NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'classified') = (classification IS NOT NULL))
);

CREATE TABLE web.measurements (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    image_id        bigint NOT NULL REFERENCES products.images (id) ON DELETE CASCADE,
    ra_deg          double precision NOT NULL,
    dec_deg         double precision NOT NULL,
    peak_jy         double precision,
    peak_err_jy     double precision,
    flux_jy         double precision,
    flux_err_jy     double precision,
    local_rms_jy    double precision,
    snr             double precision,
    label           text NOT NULL DEFAULT '',
    measured_by     text NOT NULL,
    measured_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX measurements_image ON web.measurements (image_id);

-- The payload names the table only; the pages re-read what they show. Postgres folds identical
-- notifications of one transaction into one, so a batch of completions wakes the pages once.
CREATE FUNCTION web.notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('contimg_web', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

-- Only a task that finishes calls the function (the WHEN clause is checked without it): claims and
-- lease renewals, the queue's hot path, send nothing. Spawns already notify absurd_wake, which the
-- pages also hear.
CREATE TRIGGER tasks_notify_web AFTER UPDATE OF state ON absurd.tasks
    FOR EACH ROW WHEN (NEW.state IN ('completed', 'failed', 'cancelled') AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION web.notify_change();
CREATE TRIGGER images_notify_web AFTER INSERT ON products.images
    FOR EACH STATEMENT EXECUTE FUNCTION web.notify_change();
CREATE TRIGGER variability_notify_web AFTER INSERT OR UPDATE ON products.variability
    FOR EACH STATEMENT EXECUTE FUNCTION web.notify_change();
