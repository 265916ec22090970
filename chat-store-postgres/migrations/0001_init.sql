-- Ids are uuid, times timestamptz (microseconds, the precision chat-core keeps), positions and
-- counters bigint, enums text with a CHECK naming their values. The unique keys a store reports
-- in a conflict carry the names of chat_core::ports::constraint; errors are matched on them.

CREATE TABLE users (
    id            uuid        NOT NULL,
    username      text        NOT NULL,
    -- The keys are lowercased by the domain types (ASCII for usernames, Unicode for emails), so
    -- uniqueness is exactly the domain's and does not depend on the database's locale.
    username_key  text        NOT NULL,
    display_name  text        NOT NULL,
    email         text,
    email_key     text,
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_username_key UNIQUE (username_key),
    CONSTRAINT users_email_key UNIQUE (email_key)
);

CREATE TABLE auth_sessions (
    id           uuid        NOT NULL,
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_hash text        NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    CONSTRAINT auth_sessions_pkey PRIMARY KEY (id),
    CONSTRAINT auth_sessions_refresh_hash_key UNIQUE (refresh_hash)
);
CREATE INDEX auth_sessions_user_id_idx ON auth_sessions (user_id);

CREATE TABLE rooms (
    id              uuid        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('group', 'direct')),
    name            text        NOT NULL,
    topic           text,
    visibility      text        NOT NULL CHECK (visibility IN ('public', 'private')),
    created_by      uuid        NOT NULL,
    created_at      timestamptz NOT NULL,
    member_count    bigint      NOT NULL DEFAULT 0 CHECK (member_count >= 0),
    -- The row lock taken to bump these serializes the appends to one room across all nodes.
    last_seq        bigint      NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    rev             bigint      NOT NULL DEFAULT 0 CHECK (rev >= 0),
    last_message_at timestamptz,
    -- The two member ids of a direct room, sorted: at most one direct room per pair, and the
    -- conflict target of the race-free get-or-create. NULL (never equal) for group rooms.
    direct_key      text,
    CONSTRAINT rooms_pkey PRIMARY KEY (id),
    CONSTRAINT rooms_direct_key_key UNIQUE (direct_key)
);

CREATE TABLE memberships (
    room_id       uuid        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          text        NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    joined_at     timestamptz NOT NULL,
    read_seq      bigint      NOT NULL DEFAULT 0,
    delivered_seq bigint      NOT NULL DEFAULT 0,
    pinned        boolean     NOT NULL DEFAULT false,
    muted         boolean     NOT NULL DEFAULT false,
    archived      boolean     NOT NULL DEFAULT false,
    CONSTRAINT memberships_pkey PRIMARY KEY (room_id, user_id)
);
-- A user's rooms: the room list, the positions and the membership checks start from the user.
CREATE INDEX memberships_user_id_idx ON memberships (user_id);

CREATE TABLE messages (
    room_id    uuid        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq        bigint      NOT NULL CHECK (seq > 0),
    id         uuid        NOT NULL,
    sender_id  uuid        NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('text', 'file', 'system')),
    body       text,
    client_id  text,
    reply_to   uuid,
    thread_id  uuid,
    -- The mentioned user ids as the message was written; the mentions table is what gets counted.
    mentions   uuid[]      NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    edited_at  timestamptz,
    deleted    boolean     NOT NULL DEFAULT false,
    rev        bigint      NOT NULL,
    -- History pages and unread counts are ranges of seq within a room.
    CONSTRAINT messages_pkey PRIMARY KEY (room_id, seq),
    CONSTRAINT messages_id_key UNIQUE (id),
    -- NULL client ids never collide, so messages without one are not constrained.
    CONSTRAINT messages_client_id_key UNIQUE (room_id, sender_id, client_id)
);
CREATE INDEX messages_room_id_rev_idx ON messages (room_id, rev);
-- The thread summaries: a root's replies, counted, and the newest one's time. Most messages are
-- in no thread, so they stay out of the index.
CREATE INDEX messages_room_id_thread_id_idx ON messages (room_id, thread_id, created_at)
    WHERE thread_id IS NOT NULL;

CREATE TABLE mentions (
    -- Messages are only ever deleted with their room, so the room is what mentions hang on.
    room_id uuid   NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq     bigint NOT NULL,
    user_id uuid   NOT NULL,
    -- Ordered for the unread-mention count: one user's mentions in one room after a seq.
    CONSTRAINT mentions_pkey PRIMARY KEY (room_id, user_id, seq)
);
