-- Users provisioned from a host application's tokens, found again by the token's issuer and
-- subject. Such a user has an empty password_hash: no password signs them in here.

CREATE TABLE external_users (
    issuer  TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (issuer, subject)
);
-- Deleting a user finds their external id (ON DELETE CASCADE).
CREATE INDEX external_users_user ON external_users (user_id);
