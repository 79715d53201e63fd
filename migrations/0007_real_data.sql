-- Real correlator data (science.md, "What the correlator really writes"): how each Measurement Set was
-- phased and flagged on conversion, and the pointing each solve was made at.
--
-- ms_index.phasing is what conversion undid: 'fringestopped' (the correlator's hour-angle-0 fringestop,
-- undone with each file's own uvw) or 'unprojected' (raw drift data). Rows recorded before this migration
-- keep NULL: nobody recorded it then.
ALTER TABLE products.ms_index
    ADD COLUMN phasing                   text CHECK (phasing IN ('fringestopped', 'unprojected')),
    ADD COLUMN pointing_dec_apparent_deg double precision,   -- the header's phase_center_dec, of date
    ADD COLUMN subbands_flagged          jsonb NOT NULL DEFAULT '{}',  -- subband -> why it is a stand-in
    ADD COLUMN flag_summary              jsonb;              -- pipeline_tasks.flagging.FlagSummary

-- The ICRS declination of the calibrator transit's phase centre: a caltable may be applied at another
-- declination, and the operators want to see how far.
ALTER TABLE products.caltables
    ADD COLUMN pointing_dec_deg double precision;
