-- Uploads: what is known of each uploaded file (its bytes live in the blob store, under the
-- upload's id), and the upload a message carries.

CREATE TABLE uploads (
    id           BLOB    NOT NULL PRIMARY KEY,
    uploader     BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
);
-- The sweep of unattached uploads reads them oldest first, in exactly this order.
CREATE INDEX uploads_created_at ON uploads (created_at, id);

-- Deleting an upload leaves the messages that carried it as files without an attachment.
-- (SQLite adds a column with a REFERENCES clause only when its default is NULL, as here.)
ALTER TABLE messages ADD COLUMN attachment_id BLOB REFERENCES uploads (id) ON DELETE SET NULL;
-- The messages that carry an upload: who may read it, whether it is unattached, and the
-- SET NULL above when it is deleted. Most messages carry none, so only those that do are in it.
CREATE INDEX messages_attachment ON messages (attachment_id) WHERE attachment_id IS NOT NULL;
