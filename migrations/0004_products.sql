-- Science products: one row per thing the pipeline's tasks wrote to disk, and the variability metrics and
-- alerts of the monitored sources.
-- Rows are written by the tasks' completion hooks, in the transaction that completes the task, so a
-- retried or re-run task replaces its row (the unique keys below) and never adds a second one.
CREATE SCHEMA products;

-- Measurement Sets written by convert-uvh5; apply-calibration fills the calibrated_* columns.
CREATE TABLE products.ms_index (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    path                    text NOT NULL UNIQUE,
    group_id                text NOT NULL,
    start_mjd               double precision NOT NULL,
    end_mjd                 double precision NOT NULL,
    mid_mjd                 double precision NOT NULL,
    mid_time                timestamptz NOT NULL,
    ra_deg                  double precision NOT NULL,
    dec_deg                 double precision NOT NULL,
    n_antennas              integer NOT NULL,
    n_channels              integer NOT NULL,
    subbands_missing        text[] NOT NULL DEFAULT '{}',
    status                  text NOT NULL CHECK (status IN ('complete', 'partial')),
    calibrated_with         bigint,
    calibrated_at           timestamptz,
    flagged_fraction_after  double precision,
    task_id                 bigint,
    recorded_at             timestamptz NOT NULL DEFAULT now(),
    -- What conversion undid: 'fringestopped' (the correlator's hour-angle-0 fringestop, undone with each
    -- file's own uvw) or 'unprojected' (raw drift data); NULL when not recorded.
    phasing                 text CHECK (phasing IN ('fringestopped', 'unprojected')),
    pointing_dec_apparent_deg double precision,             -- the header's phase_center_dec, of date
    subbands_flagged        jsonb NOT NULL DEFAULT '{}',    -- subband -> why it is a stand-in
    flag_summary            jsonb,                          -- science/flagging.py: FlagSummary
    -- A late subband leads to a reconversion of the group with every file it has: a new version of its MS
    -- (<group>.vN.ms), recorded as a new row that supersedes the old one. Light curves use only
    -- unsuperseded MSs.
    version                 integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    superseded_by           bigint REFERENCES products.ms_index (id) ON DELETE SET NULL,
    CHECK (start_mjd <= mid_mjd AND mid_mjd <= end_mjd)
);
CREATE INDEX ms_index_mid ON products.ms_index (mid_mjd);
CREATE UNIQUE INDEX ms_index_group_version ON products.ms_index (group_id, version);

-- One row per solve: the tables it wrote, which to apply (in order), its QA and validity window.
CREATE TABLE products.caltables (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ms_path                 text NOT NULL,
    mode                    text NOT NULL CHECK (mode IN ('bandpass', 'full')),
    calibrator              text NOT NULL,
    calibrator_offset_deg   double precision NOT NULL,
    calibrator_flux_jy      double precision NOT NULL,
    refant                  text NOT NULL,
    tables                  jsonb NOT NULL,
    apply_tables            text[] NOT NULL CHECK (cardinality(apply_tables) > 0),
    mid_mjd                 double precision NOT NULL,
    valid_start_mjd         double precision NOT NULL,
    valid_end_mjd           double precision NOT NULL,
    valid_from              timestamptz NOT NULL,
    valid_until             timestamptz NOT NULL,
    qa_passed               boolean NOT NULL,
    qa                      jsonb NOT NULL,
    plots                   jsonb NOT NULL DEFAULT '{}',
    task_id                 bigint,
    recorded_at             timestamptz NOT NULL DEFAULT now(),
    -- The ICRS declination of the calibrator transit's phase centre: a caltable may be applied at another
    -- declination, and the operators want to see how far.
    pointing_dec_deg        double precision,
    UNIQUE (ms_path, mode),
    CHECK (valid_start_mjd <= mid_mjd AND mid_mjd <= valid_end_mjd)
);
-- apply-calibration asks for passing solves made up to max_age before a target time.
CREATE INDEX caltables_usable_by_time ON products.caltables (mid_mjd) WHERE qa_passed;

-- Added here because caltables comes after ms_index.
ALTER TABLE products.ms_index
    ADD CONSTRAINT ms_index_calibrated_with FOREIGN KEY (calibrated_with) REFERENCES products.caltables (id);

-- Bumped once per recorded solve, in the same transaction; apply tasks wait for the next value
-- (event 'caltable-ready:<generation>'). A row-locked counter has no gaps, unlike a sequence.
CREATE TABLE products.calibration_generation (
    only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    generation  bigint NOT NULL
);
INSERT INTO products.calibration_generation (generation) VALUES (0);

CREATE TABLE products.images (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    path            text NOT NULL UNIQUE,
    ms_path         text NOT NULL,
    ms_id           bigint REFERENCES products.ms_index (id) ON DELETE SET NULL,
    imager          text NOT NULL CHECK (imager IN ('wsclean', 'tclean')),
    residual_path   text NOT NULL,
    psf_path        text NOT NULL,
    pb_path         text,
    pbcor_path      text,
    preview_path    text NOT NULL,
    noise_jy        double precision NOT NULL,
    peak_jy         double precision NOT NULL,
    bmaj_arcsec     double precision NOT NULL,
    bmin_arcsec     double precision NOT NULL,
    bpa_deg         double precision NOT NULL,
    center_ra_deg   double precision NOT NULL,
    center_dec_deg  double precision NOT NULL,
    freq_hz         double precision NOT NULL,
    mid_mjd         double precision NOT NULL,
    mid_time        timestamptz NOT NULL,
    params          jsonb NOT NULL,
    task_id         bigint,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
-- Mosaic planning selects images by time.
CREATE INDEX images_mid ON products.images (mid_mjd);

-- Plans stored by `contimg mosaic plan`; create-mosaic may build one by name.
CREATE TABLE products.mosaic_plans (
    name        text PRIMARY KEY,
    start_mjd   double precision NOT NULL,
    end_mjd     double precision NOT NULL,
    image_ids   bigint[] NOT NULL,
    plan        jsonb NOT NULL,
    planned_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (start_mjd <= end_mjd)
);

CREATE TABLE products.mosaics (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                text NOT NULL UNIQUE,
    path                text NOT NULL UNIQUE,
    noise_path          text NOT NULL,
    preview_path        text,
    method              text NOT NULL CHECK (method IN ('mean', 'weighted', 'pbweighted')),
    image_paths         text[] NOT NULL,
    image_ids           bigint[] NOT NULL DEFAULT '{}',
    n_inputs            integer NOT NULL CHECK (n_inputs > 0),
    width_px            integer NOT NULL,
    height_px           integer NOT NULL,
    bmaj_arcsec         double precision NOT NULL,
    bmin_arcsec         double precision NOT NULL,
    bpa_deg             double precision NOT NULL,
    mid_mjd             double precision,
    min_noise_jy        double precision NOT NULL,
    median_noise_jy     double precision NOT NULL,
    covered_fraction    double precision NOT NULL,
    task_id             bigint,
    recorded_at         timestamptz NOT NULL DEFAULT now()
);

-- The monitoring catalogue, upserted from the CSV each photometry run measured.
CREATE TABLE products.sources (
    name            text PRIMARY KEY,
    ra_deg          double precision NOT NULL CHECK (ra_deg >= 0 AND ra_deg < 360),
    dec_deg         double precision NOT NULL CHECK (dec_deg BETWEEN -90 AND 90),
    priority        integer,
    reference       boolean NOT NULL DEFAULT false,
    flux_mjy        double precision,
    catalogue_path  text NOT NULL,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Forced photometry: one row per (image or mosaic, source). image_path is the key because a
-- measurement may be of a mosaic or of a FITS file the products database never recorded.
CREATE TABLE products.photometry (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    image_path      text NOT NULL,
    image_id        bigint REFERENCES products.images (id) ON DELETE CASCADE,
    mosaic_id       bigint REFERENCES products.mosaics (id) ON DELETE CASCADE,
    source_name     text NOT NULL REFERENCES products.sources (name),
    ra_deg          double precision NOT NULL,
    dec_deg         double precision NOT NULL,
    mjd             double precision,
    peak_jy         double precision,
    peak_err_jy     double precision,
    flux_jy         double precision,
    flux_err_jy     double precision,
    local_rms_jy    double precision,
    snr             double precision,
    pb_response     double precision,
    flags           text[] NOT NULL DEFAULT '{}',
    task_id         bigint,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (image_path, source_name),
    CHECK (image_id IS NULL OR mosaic_id IS NULL)
);
-- Light curves read one source's rows in time order.
CREATE INDEX photometry_by_source ON products.photometry (source_name, mjd);

-- Light curves ------------------------------------------------------------------------------------------

-- update-lightcurves writes the variability metrics and the alerts from its completion hook, so the
-- metrics a reader sees are the ones stored with the last update; nothing is recomputed when read.

-- One row per source: the latest metrics of its normalised light curve (science/variability.py).
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
