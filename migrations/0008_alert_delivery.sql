-- Science alerts delivered as VOEvents: the document built once per alert, and its delivery to each
-- configured sink (a directory, a webhook, a VOEvent broker).
--
-- The document is stored the first time it is built, so every sink, and every retry, sends the same
-- bytes under the same IVORN. A delivery row is locked (SELECT ... FOR UPDATE) while its sink is being
-- written to, and marked delivered in that same transaction: two notifiers never send at once, and a
-- sink marked delivered is never sent to again.
CREATE TABLE products.alert_voevents (
    alert_id    bigint PRIMARY KEY REFERENCES products.alerts (id) ON DELETE CASCADE,
    ivorn       text NOT NULL UNIQUE CHECK (ivorn LIKE 'ivo://%'),
    document    text NOT NULL,
    built_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE products.alert_deliveries (
    alert_id        bigint NOT NULL REFERENCES products.alerts (id) ON DELETE CASCADE,
    sink            text NOT NULL CHECK (sink ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    sink_kind       text NOT NULL CHECK (sink_kind IN ('directory', 'webhook', 'broker')),
    -- pending: not yet sent (or the last try failed and a retry is due); delivered: the sink took it;
    -- rejected: the sink refused it for good (an HTTP 4xx, a broker's nak), so it is not retried.
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'rejected')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      text,
    -- Where it went: the file written, the HTTP status, the broker's acknowledgement.
    detail          text,
    delivered_at    timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (alert_id, sink),
    CHECK ((state = 'delivered') = (delivered_at IS NOT NULL))
);
-- Alerts with a delivery still to make, for `contimg alerts` and the operators.
CREATE INDEX alert_deliveries_pending ON products.alert_deliveries (alert_id) WHERE state = 'pending';
