-- Lightcurves: the variability metrics of each monitored source, and the alerts they raise.
-- update-lightcurves writes both from its completion hook, so the metrics a reader sees are the
-- ones stored with the last update; nothing is recomputed when read.

-- One row per source: the latest metrics of its normalised light curve (pipeline_tasks/variability.py).
-- Metric columns are NULL while the source has fewer epochs than the update's min_epochs.
CREATE TABLE products.variability (
    source_name             text PRIMARY KEY REFERENCES products.sources (name) ON DELETE CASCADE,
    n_epochs                integer NOT NULL CHECK (n_epochs >= 0),
    first_mjd               double precision,
    last_mjd                double precision,
    mean_flux_jy            double precision,
    weighted_mean_flux_jy   double precision,
    eta                     double precision,
    v                       double precision,
    chi2_nu                 double precision,
    -- The epoch pair (a before b) with the largest |Vs|; vs is signed, m is that pair's modulation index.
    vs                      double precision,
    m                       double precision,
    vs_mjd_a                double precision,
    vs_mjd_b                double precision,
    is_variable             boolean NOT NULL,
    consistent_with_constant boolean,
    transient_candidate     boolean NOT NULL DEFAULT false,
    latest_snr              double precision,
    exceeded                text[] NOT NULL DEFAULT '{}',
    thresholds              jsonb NOT NULL,
    n_references            integer NOT NULL DEFAULT 0,
    task_id                 bigint,
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CHECK ((vs_mjd_a IS NULL) = (vs_mjd_b IS NULL))
);
-- `contimg sources list --variable --sort eta` reads only the flagged rows.
CREATE INDEX variability_flagged_by_eta ON products.variability (eta DESC) WHERE is_variable;

-- A source newly flagged variable, or a transient candidate, with the metrics at the time.
CREATE TABLE products.alerts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_name     text NOT NULL REFERENCES products.sources (name) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('variable', 'transient')),
    metrics         jsonb NOT NULL,
    task_id         bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    acknowledged    boolean NOT NULL DEFAULT false,
    acknowledged_at timestamptz,
    CHECK (acknowledged = (acknowledged_at IS NOT NULL))
);
-- At most one open alert per source and kind: a re-run update, or two updates racing, adds none.
CREATE UNIQUE INDEX alerts_one_open ON products.alerts (source_name, kind) WHERE NOT acknowledged;
CREATE INDEX alerts_by_time ON products.alerts (created_at DESC);
