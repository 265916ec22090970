-- Bans: who may not become a member of a room again until unbanned. Apart from memberships,
-- since a ban outlives the membership it ended and may come before any.
CREATE TABLE room_bans (
    room_id   BLOB    NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- NULL once the banning account is gone; the ban stays.
    banned_by BLOB             REFERENCES users (id) ON DELETE SET NULL,
    banned_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
-- The ban list pages in exactly this order.
CREATE INDEX room_bans_listed ON room_bans (room_id, banned_at, user_id);
-- Deleting an account finds the bans it made (ON DELETE SET NULL).
CREATE INDEX room_bans_banned_by ON room_bans (banned_by);

-- Blocks: whom each user blocks.
CREATE TABLE user_blocks (
    blocker_id BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_at INTEGER NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
);
-- A user's block list pages in exactly this order.
CREATE INDEX user_blocks_listed ON user_blocks (blocker_id, blocked_at, blocked_id);
-- Deleting an account finds the blocks of it (ON DELETE CASCADE).
CREATE INDEX user_blocks_blocked ON user_blocks (blocked_id);
