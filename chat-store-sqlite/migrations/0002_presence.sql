-- Presence: connections are counted per node; a node's heartbeat tells whether its counts still
-- hold, so the users of a node that died go offline once its heartbeat is stale.

CREATE TABLE nodes (
    id           BLOB    NOT NULL PRIMARY KEY,
    heartbeat_at INTEGER NOT NULL
);

CREATE TABLE connections (
    node_id BLOB    NOT NULL,
    user_id BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    count   INTEGER NOT NULL,
    PRIMARY KEY (node_id, user_id)
);
CREATE INDEX connections_user ON connections (user_id);

CREATE TABLE user_presence (
    user_id   BLOB    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    away      INTEGER NOT NULL DEFAULT 0,
    last_seen INTEGER
);
