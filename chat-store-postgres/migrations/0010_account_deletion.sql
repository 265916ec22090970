-- Account deletion: a closed account keeps its row (its messages name it as sender) but reads as
-- no user from `deleted_at` on; `purged_at` records that what it left is gone.
ALTER TABLE users ADD COLUMN deleted_at timestamptz;
ALTER TABLE users ADD COLUMN purged_at timestamptz;
-- The purger's question: closed accounts not yet purged, oldest first.
CREATE INDEX users_unpurged_idx ON users (deleted_at)
    WHERE deleted_at IS NOT NULL AND purged_at IS NULL;
-- A purge finds the account's messages and uploads without reading every room.
CREATE INDEX messages_sender_id_idx ON messages (sender_id);
CREATE INDEX uploads_uploader_idx ON uploads (uploader);
