-- Bans: who may not become a member of a room again until unbanned. Apart from memberships,
-- since a ban outlives the membership it ended and may come before any. Joins and bans both
-- lock the room's row first, so a join cannot slip past a ban being written.
CREATE TABLE room_bans (
    room_id   uuid        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- NULL once the banning account is gone; the ban stays.
    banned_by uuid                 REFERENCES users (id) ON DELETE SET NULL,
    banned_at timestamptz NOT NULL,
    CONSTRAINT room_bans_pkey PRIMARY KEY (room_id, user_id)
);
-- The ban list pages in exactly this order.
CREATE INDEX room_bans_listed_idx ON room_bans (room_id, banned_at, user_id);
-- Deleting an account finds the bans it made (ON DELETE SET NULL).
CREATE INDEX room_bans_banned_by_idx ON room_bans (banned_by);

-- Blocks: whom each user blocks.
CREATE TABLE user_blocks (
    blocker_id uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_at timestamptz NOT NULL,
    CONSTRAINT user_blocks_pkey PRIMARY KEY (blocker_id, blocked_id)
);
-- A user's block list pages in exactly this order.
CREATE INDEX user_blocks_listed_idx ON user_blocks (blocker_id, blocked_at, blocked_id);
-- Deleting an account finds the blocks of it (ON DELETE CASCADE).
CREATE INDEX user_blocks_blocked_idx ON user_blocks (blocked_id);
