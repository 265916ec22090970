-- Account deletion: a closed account keeps its row (its messages name it as sender) but reads as
-- no user from `deleted_at` on; `purged_at` records that what it left is gone.
ALTER TABLE users ADD COLUMN deleted_at INTEGER;
ALTER TABLE users ADD COLUMN purged_at INTEGER;
-- The purger's question: closed accounts not yet purged, oldest first.
CREATE INDEX users_unpurged ON users (deleted_at) WHERE deleted_at IS NOT NULL AND purged_at IS NULL;
-- A purge finds the account's messages and uploads without reading every room.
CREATE INDEX messages_sender ON messages (sender_id);
CREATE INDEX uploads_uploader ON uploads (uploader);
