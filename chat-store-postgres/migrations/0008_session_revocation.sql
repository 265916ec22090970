-- Sign-out: a revoked session keeps its row (its access tokens name it) with the time it ended.
ALTER TABLE auth_sessions ADD COLUMN revoked_at timestamptz;

-- Refresh tokens already traded in, by hash, until they would have expired: one presented again
-- is in two hands, and its session is signed out.
CREATE TABLE spent_refresh_tokens (
    hash       text        NOT NULL,
    session_id uuid        NOT NULL REFERENCES auth_sessions (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    CONSTRAINT spent_refresh_tokens_pkey PRIMARY KEY (hash)
);
CREATE INDEX spent_refresh_tokens_session_id_idx ON spent_refresh_tokens (session_id);
CREATE INDEX spent_refresh_tokens_expires_at_idx ON spent_refresh_tokens (expires_at);
