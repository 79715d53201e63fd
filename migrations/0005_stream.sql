-- The streaming converter's state (`contimg stream`): every subband file it registered, and every group
-- it sealed. Everything the daemon knows lives here, so a restart resumes where it stopped.
--
-- A file is registered once its size has settled, with group_id NULL ('new') until its group is sealed.
-- Unsealed files are regrouped on each pass (science/grouping.py), because a group is named after
-- its earliest file and an earlier one may still arrive. A group is sealed when all 16 subbands are in,
-- or when the subband timeout has passed since its first file arrived:
--
--   sealed ──► spawned ──► converted      (new_ms emitted in the same transaction)
--          │           └─► failed         (convert-uvh5 ended failed or cancelled; error says why)
--          └─► skipped                    (timed out incomplete under policy 'skip'; never spawned)
--
-- A file that arrives for a group already sealed is kept with status 'late' (a subband the group
-- lacked) or 'duplicate' (a second file for a subband it has); it is never converted on its own. A late
-- subband leads to a reconversion of the group with every file it has, as a new version of its MS:
--
--   converted / failed / skipped ──(late subband registered)──► spawned (version + 1) ──► converted ...

CREATE TABLE products.stream_groups (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_id            text NOT NULL UNIQUE,
    group_time          timestamptz NOT NULL,             -- the earliest file-name time
    min_file_time       timestamptz NOT NULL,
    max_file_time       timestamptz NOT NULL,
    incoming_dir        text NOT NULL,
    n_files             integer NOT NULL CHECK (n_files BETWEEN 1 AND 16),
    subbands_missing    text[] NOT NULL DEFAULT '{}',
    first_arrival_at    timestamptz NOT NULL,             -- earliest file arrival (the timeout runs from here)
    last_arrival_at     timestamptz NOT NULL,             -- latest file arrival (latency runs from here)
    sealed_at           timestamptz NOT NULL DEFAULT now(),
    status              text NOT NULL CHECK (status IN ('spawned', 'converted', 'failed', 'skipped')),
    convert_task_id     bigint,
    spawned_at          timestamptz,
    ms_path             text,
    mid_mjd             double precision,
    converted_at        timestamptz,                      -- when the MS was recorded in ms_index
    new_ms_emitted_at   timestamptz,
    latency_s           double precision,                 -- last_arrival_at → converted_at
    error               text,
    version             integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    CHECK (min_file_time <= max_file_time),
    CHECK ((status = 'skipped') = (convert_task_id IS NULL)),
    CHECK ((status = 'converted') = (new_ms_emitted_at IS NOT NULL))
);
CREATE INDEX stream_groups_open ON products.stream_groups (id) WHERE status = 'spawned';
CREATE INDEX stream_groups_window ON products.stream_groups (min_file_time, max_file_time);
CREATE INDEX stream_groups_converted ON products.stream_groups (converted_at) WHERE status = 'converted';

CREATE TABLE products.stream_files (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    path            text NOT NULL UNIQUE,
    subband         integer NOT NULL CHECK (subband BETWEEN 0 AND 15),
    file_time       timestamptz NOT NULL,                 -- the time in the file name
    size_bytes      bigint NOT NULL CHECK (size_bytes >= 0),
    arrived_at      timestamptz NOT NULL,                 -- last write (mtime), or first look if earlier
    first_seen_at   timestamptz NOT NULL,
    registered_at   timestamptz NOT NULL DEFAULT now(),
    group_id        text REFERENCES products.stream_groups (group_id),
    late            boolean NOT NULL DEFAULT false,
    status          text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'grouped', 'late', 'duplicate')),
    reconverted_in  integer,                              -- the group version that took this late file in
    CHECK ((status = 'new') = (group_id IS NULL)),
    CHECK (late = (status IN ('late', 'duplicate')))
);
CREATE INDEX stream_files_new ON products.stream_files (file_time) WHERE status = 'new';
CREATE INDEX stream_files_group ON products.stream_files (group_id);
