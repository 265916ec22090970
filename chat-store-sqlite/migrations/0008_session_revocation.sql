-- Sign-out: a revoked session keeps its row (its access tokens name it) with the time it ended.
ALTER TABLE auth_sessions ADD COLUMN revoked_at INTEGER;

-- Refresh tokens already traded in, by hash, until they would have expired: one presented again
-- is in two hands, and its session is signed out.
CREATE TABLE spent_refresh_tokens (
    hash       TEXT    NOT NULL PRIMARY KEY,
    session_id BLOB    NOT NULL REFERENCES auth_sessions (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
);
CREATE INDEX spent_refresh_tokens_session ON spent_refresh_tokens (session_id);
CREATE INDEX spent_refresh_tokens_expiry ON spent_refresh_tokens (expires_at);
