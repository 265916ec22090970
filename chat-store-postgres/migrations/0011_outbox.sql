-- Domain events waiting for their delivery channels: one row per event and channel, written in
-- the transaction of the change the event describes (only when a channel is configured).
CREATE TABLE outbox (
    position    bigserial   PRIMARY KEY,
    channel     text        NOT NULL,
    event_id    uuid        NOT NULL,
    kind        text        NOT NULL,
    body        text        NOT NULL,
    attempts    bigint      NOT NULL DEFAULT 0,
    -- When it was sent, or given up (then `dead`).
    done_at     timestamptz,
    dead        boolean     NOT NULL DEFAULT false
);
-- A relay reads its channel's pending events in order.
CREATE INDEX outbox_pending_idx ON outbox (channel, position) WHERE done_at IS NULL;
-- Pruning finds what was done before the retention.
CREATE INDEX outbox_done_idx ON outbox (done_at) WHERE done_at IS NOT NULL;

-- One row per channel, locked by the relay that holds the channel's turn: several nodes relay
-- from one database, one at a time per channel.
CREATE TABLE outbox_turns (
    channel text PRIMARY KEY
);
