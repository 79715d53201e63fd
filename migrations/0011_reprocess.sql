-- Archival reprocessing (`contimg reprocess`): a run covers the observations found in a directory and a
-- time range, and submits one workflow per observation plus one per night for its mosaic.
--
-- The unique index on reprocess_steps is the exactly-once guarantee: a step of one unit (an observation's
-- group id, or 'night:YYYY-MM-DD') at one product version is recorded once, in the transaction that
-- submits its workflow, so a rerun, a resume after a crash, or two commands at once submit it once.

CREATE TABLE products.reprocess_runs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The same request again resumes its run; a --force run has no key (each is a new version).
    request_key     text,
    input_dir       text NOT NULL,
    output_dir      text NOT NULL,
    start_time      timestamptz NOT NULL,
    end_time        timestamptz NOT NULL,
    steps           text[] NOT NULL,
    priority        integer NOT NULL,
    force           boolean NOT NULL,
    settings        jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    submitted_at    timestamptz,
    cancelled_at    timestamptz,
    CHECK (end_time >= start_time),
    CHECK (force = (request_key IS NULL))
);
CREATE UNIQUE INDEX reprocess_runs_request ON products.reprocess_runs (request_key)
    WHERE request_key IS NOT NULL;

-- Every unit a run found, with the product version it makes.
CREATE TABLE products.reprocess_units (
    run_id      bigint NOT NULL REFERENCES products.reprocess_runs (id) ON DELETE CASCADE,
    unit        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('observation', 'mosaic')),
    night       date NOT NULL,
    version     integer NOT NULL CHECK (version >= 1),
    PRIMARY KEY (run_id, unit)
);
CREATE INDEX reprocess_units_night ON products.reprocess_units (run_id, night);

-- Each submitted step, and the workflow that holds its task.
CREATE TABLE products.reprocess_steps (
    unit            text NOT NULL,
    version         integer NOT NULL,
    step            text NOT NULL,
    run_id          bigint NOT NULL REFERENCES products.reprocess_runs (id) ON DELETE CASCADE,
    workflow_id     bigint NOT NULL,
    submitted_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (unit, version, step)
);
CREATE INDEX reprocess_steps_workflow ON products.reprocess_steps (workflow_id);

-- Each unit of a run and where its steps stand: the state of the newest task of each step (a task
-- requeued from the dead-letter queue is replaced by its copy, which has the higher id). A task the
-- pruner has deleted had finished long ago; it counts as completed.
CREATE VIEW products.reprocess_progress AS
SELECT u.run_id, u.unit, u.kind, u.night, u.version,
       count(s.step) AS steps,
       count(s.step) FILTER (WHERE coalesce(t.state, 'completed') = 'completed') AS completed,
       count(s.step) FILTER (WHERE t.state IN ('failed', 'cancelled')) AS failed,
       CASE
           WHEN count(s.step) = 0 THEN 'unsubmitted'
           WHEN count(s.step) FILTER (WHERE t.state IN ('failed', 'cancelled')) > 0 THEN 'failed'
           WHEN count(s.step) FILTER (WHERE coalesce(t.state, 'completed') = 'completed') = count(s.step)
               THEN 'done'
           ELSE 'in_flight'
       END AS state,
       max(t.finished_at) AS finished_at
FROM products.reprocess_units u
LEFT JOIN products.reprocess_steps s ON s.unit = u.unit AND s.version = u.version
LEFT JOIN LATERAL (
    SELECT x.state, x.finished_at FROM absurd.tasks x
    WHERE x.workflow_id = s.workflow_id AND x.step_name = s.step
    ORDER BY x.id DESC LIMIT 1
) t ON true
GROUP BY u.run_id, u.unit, u.kind, u.night, u.version;
