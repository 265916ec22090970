-- WebSocket tickets: short-lived, single-use credentials, kept by the hash of their secret so a
-- ticket issued on one node works once on any. `session_id` names the sign-in session it was
-- issued from, if any; it has no foreign key (a ticket may come from a token this store does
-- not hold a session for), and a ticket outlives its session by seconds at most.

CREATE TABLE ws_tickets (
    hash       TEXT    NOT NULL PRIMARY KEY,
    user_id    BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id BLOB,
    expires_at INTEGER NOT NULL
);
-- Creating a ticket forgets the expired ones.
CREATE INDEX ws_tickets_expires_at ON ws_tickets (expires_at);
-- Deleting a user finds their tickets (ON DELETE CASCADE).
CREATE INDEX ws_tickets_user ON ws_tickets (user_id);
