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

-- A late subband (the streaming converter's 'late' file: a subband a group lacked when it was sealed) now
-- leads to a reconversion of the group with every file it has: a new version of its MS (<group>.vN.ms),
-- recorded as a new ms_index row that supersedes the old one. Light curves use only unsuperseded MSs.
ALTER TABLE products.ms_index
    ADD COLUMN version       integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    ADD COLUMN superseded_by bigint REFERENCES products.ms_index (id) ON DELETE SET NULL;
CREATE UNIQUE INDEX ms_index_group_version ON products.ms_index (group_id, version);

--   converted / failed / skipped ──(late subband registered)──► spawned (version + 1) ──► converted ...
ALTER TABLE products.stream_groups
    ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1);
ALTER TABLE products.stream_files
    ADD COLUMN reconverted_in integer;  -- the group version that took this late file in
