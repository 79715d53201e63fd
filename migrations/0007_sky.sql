-- The sky beyond the monitored sources: fitted measurements, operators' monitoring lists, what blind
-- source finding found in each image, and the two alerts that come from it: a new source where the
-- catalogues have nothing, and a rapid rise of a known one.

-- The fitted measurement (an elliptical Gaussian with a free centre) beside the forced one.
ALTER TABLE products.photometry
    ADD COLUMN fit_flux_jy          double precision,
    ADD COLUMN fit_flux_err_jy      double precision,
    ADD COLUMN fit_ra_deg           double precision,
    ADD COLUMN fit_dec_deg          double precision,
    ADD COLUMN fit_pos_err_arcsec   double precision;

-- Monitoring lists: named lists of sources (name, ra, dec, priority) that operators register and
-- remove. A source may be on several lists; removing a list keeps its sources and their photometry.
CREATE TABLE products.monitoring_lists (
    name            text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    path            text NOT NULL,
    registered_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE products.monitoring_members (
    list_name       text NOT NULL REFERENCES products.monitoring_lists (name) ON DELETE CASCADE,
    source_name     text NOT NULL REFERENCES products.sources (name) ON DELETE CASCADE,
    priority        integer,
    PRIMARY KEY (list_name, source_name)
);

-- Components found blindly in an image, and what each was identified as. A re-run of the finding
-- replaces the image's rows.
CREATE TABLE products.detections (
    id                          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    image_path                  text NOT NULL,
    mjd                         double precision,
    ra_deg                      double precision NOT NULL,
    dec_deg                     double precision NOT NULL,
    pos_err_arcsec              double precision,
    peak_jy                     double precision NOT NULL,
    peak_err_jy                 double precision,
    flux_jy                     double precision NOT NULL,
    flux_err_jy                 double precision,
    major_arcsec                double precision NOT NULL,
    minor_arcsec                double precision NOT NULL,
    pa_deg                      double precision NOT NULL,
    local_rms_jy                double precision NOT NULL,
    snr                         double precision NOT NULL,
    -- 'monitored', a survey's name, or NULL when nothing lies within the match radius.
    match_kind                  text,
    match_name                  text,
    separation_arcsec           double precision,
    nearest_survey              text,
    nearest_name                text,
    nearest_separation_arcsec   double precision,
    nearest_flux_mjy            double precision,
    task_id                     bigint,
    recorded_at                 timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX detections_by_image ON products.detections (image_path);
-- New-source alerts look for an open alert near the same position: a declination band first.
CREATE INDEX detections_by_dec ON products.detections (dec_deg);

-- Rapid rises are assessed with the other light-curve metrics.
ALTER TABLE products.variability
    ADD COLUMN rise_sigma   double precision,
    ADD COLUMN rapid_rise   boolean NOT NULL DEFAULT false;

-- Alerts are of a catalogued source (variable, transient, rapid_rise) or of a detection (new_source).
ALTER TABLE products.alerts ALTER COLUMN source_name DROP NOT NULL;
ALTER TABLE products.alerts ADD COLUMN detection_id bigint REFERENCES products.detections (id) ON DELETE CASCADE;
ALTER TABLE products.alerts DROP CONSTRAINT alerts_kind_check;
ALTER TABLE products.alerts ADD CONSTRAINT alerts_kind_check
    CHECK (kind IN ('variable', 'transient', 'rapid_rise', 'new_source'));
ALTER TABLE products.alerts ADD CONSTRAINT alerts_subject_check
    CHECK ((kind = 'new_source') = (detection_id IS NOT NULL AND source_name IS NULL));
