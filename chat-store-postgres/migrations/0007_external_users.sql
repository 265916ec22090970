-- Users provisioned from a host application's tokens, found again by the token's issuer and
-- subject. Such a user has an empty password_hash: no password signs them in here.

CREATE TABLE external_users (
    issuer  text NOT NULL,
    subject text NOT NULL,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT external_users_pkey PRIMARY KEY (issuer, subject)
);
-- Deleting a user finds their external id (ON DELETE CASCADE).
CREATE INDEX external_users_user_id_idx ON external_users (user_id);
