-- Presence: connections are counted per node; a node's heartbeat tells whether its counts still
-- hold, so the users of a node that died go offline once its heartbeat is stale.

CREATE TABLE nodes (
    id           uuid        PRIMARY KEY,
    heartbeat_at timestamptz NOT NULL
);

CREATE TABLE connections (
    node_id uuid   NOT NULL,
    user_id uuid   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    count   bigint NOT NULL,
    PRIMARY KEY (node_id, user_id)
);
CREATE INDEX connections_user ON connections (user_id);

-- Also the per-user lock that serializes presence changes of one user across nodes.
CREATE TABLE user_presence (
    user_id   uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    away      boolean     NOT NULL DEFAULT false,
    last_seen timestamptz
);
