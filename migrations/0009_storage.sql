-- Storage: what the retention pruner removed from disk, and what the disk guard last saw on each data
-- path. The policy itself is configuration (contimg/storage/policy.py); light curves, photometry and the
-- products database are never pruned, so a product's row outlives its files and says where they were.

-- One row per removed product (a Measurement Set, an image with its residual/PSF/PB files, ...): which
-- policy rule let it go, how many bytes it freed, and the night it belongs to.
CREATE TABLE products.storage_removals (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('raw', 'ms', 'caltables', 'images', 'image_aux', 'mosaics',
                                               'previews')),
    product     text NOT NULL,                 -- the product's main path
    paths       text[] NOT NULL,               -- every file or directory removed for it
    bytes       bigint NOT NULL CHECK (bytes >= 0),
    night       date,                          -- UTC date of the observation, when known
    reason      text NOT NULL,
    task_id     bigint,                        -- the prune-storage task, or NULL from the command line
    removed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX storage_removals_by_time ON products.storage_removals (removed_at DESC);
CREATE INDEX storage_removals_product ON products.storage_removals (product);

-- The disk guard's last probe of each data path: its level and which breakers it holds open for it.
CREATE TABLE products.storage_guard (
    path         text PRIMARY KEY,
    level        text NOT NULL CHECK (level IN ('ok', 'warning', 'critical')),
    free_bytes   bigint NOT NULL CHECK (free_bytes >= 0),
    total_bytes  bigint NOT NULL CHECK (total_bytes >= 0),
    held_keys    text[] NOT NULL DEFAULT '{}',
    checked_at   timestamptz NOT NULL DEFAULT now(),
    changed_at   timestamptz NOT NULL DEFAULT now()
);
