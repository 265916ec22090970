-- UUIDs are 16-byte BLOBs, times are INTEGER microseconds since the Unix epoch, enums are TEXT.

CREATE TABLE users (
    id            BLOB    NOT NULL PRIMARY KEY,
    username      TEXT    NOT NULL,
    -- Lowercased copies carry the case-insensitive uniqueness, so lookups can use plain indexes.
    username_key  TEXT    NOT NULL,
    display_name  TEXT    NOT NULL,
    email         TEXT,
    email_key     TEXT,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_username_key ON users (username_key);
CREATE UNIQUE INDEX users_email_key ON users (email_key);

CREATE TABLE auth_sessions (
    id           BLOB    NOT NULL PRIMARY KEY,
    user_id      BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_hash TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE UNIQUE INDEX auth_sessions_refresh_hash ON auth_sessions (refresh_hash);
CREATE INDEX auth_sessions_user ON auth_sessions (user_id);

CREATE TABLE rooms (
    id              BLOB    NOT NULL PRIMARY KEY,
    kind            TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    topic           TEXT,
    visibility      TEXT    NOT NULL,
    created_by      BLOB    NOT NULL,
    created_at      INTEGER NOT NULL,
    member_count    INTEGER NOT NULL DEFAULT 0,
    last_seq        INTEGER NOT NULL DEFAULT 0,
    rev             INTEGER NOT NULL DEFAULT 0,
    last_message_at INTEGER,
    -- The two member ids of a direct room, sorted: at most one direct room per pair.
    direct_key      TEXT
);
CREATE UNIQUE INDEX rooms_direct_key ON rooms (direct_key);

CREATE TABLE memberships (
    room_id       BLOB    NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id       BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          TEXT    NOT NULL,
    joined_at     INTEGER NOT NULL,
    read_seq      INTEGER NOT NULL DEFAULT 0,
    delivered_seq INTEGER NOT NULL DEFAULT 0,
    pinned        INTEGER NOT NULL DEFAULT 0,
    muted         INTEGER NOT NULL DEFAULT 0,
    archived      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE messages (
    room_id    BLOB    NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    id         BLOB    NOT NULL,
    sender_id  BLOB    NOT NULL,
    kind       TEXT    NOT NULL,
    body       TEXT,
    client_id  TEXT,
    reply_to   BLOB,
    thread_id  BLOB,
    -- The mentioned user ids as written, comma-separated; the mentions table is what gets counted.
    mentions   TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    edited_at  INTEGER,
    deleted    INTEGER NOT NULL DEFAULT 0,
    rev        INTEGER NOT NULL,
    PRIMARY KEY (room_id, seq)
);
CREATE UNIQUE INDEX messages_id ON messages (id);
CREATE UNIQUE INDEX messages_client_id ON messages (room_id, sender_id, client_id);
CREATE INDEX messages_rev ON messages (room_id, rev);
-- Covers the thread summaries: the count of a root's replies and the newest one's time.
CREATE INDEX messages_thread ON messages (room_id, thread_id, created_at);

CREATE TABLE mentions (
    room_id BLOB    NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    user_id BLOB    NOT NULL,
    -- Ordered for the unread-mention count: one user's mentions in one room after a seq.
    PRIMARY KEY (room_id, user_id, seq)
);
