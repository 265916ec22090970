-- Domain events waiting for their delivery channels: one row per event and channel, written in
-- the transaction of the change the event describes (only when a channel is configured).
CREATE TABLE outbox (
    position    INTEGER PRIMARY KEY AUTOINCREMENT,
    channel     TEXT    NOT NULL,
    event_id    BLOB    NOT NULL,
    kind        TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    -- When it was sent, or given up (then `dead`).
    done_at     INTEGER,
    dead        INTEGER NOT NULL DEFAULT 0
);
-- A relay reads its channel's pending events in order.
CREATE INDEX outbox_pending ON outbox (channel, position) WHERE done_at IS NULL;
-- Pruning finds what was done before the retention.
CREATE INDEX outbox_done ON outbox (done_at) WHERE done_at IS NOT NULL;
