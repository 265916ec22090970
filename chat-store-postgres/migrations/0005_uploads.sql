-- Uploads: the metadata of uploaded files (their bytes are in the blob store, under the id), and
-- the upload a message carries.

CREATE TABLE uploads (
    id           uuid        NOT NULL,
    uploader     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    content_type text        NOT NULL,
    size         bigint      NOT NULL CHECK (size >= 0),
    sha256       text        NOT NULL,
    created_at   timestamptz NOT NULL,
    CONSTRAINT uploads_pkey PRIMARY KEY (id)
);
-- The sweep of unattached uploads reads them oldest first, in this order, from its cut-off down.
CREATE INDEX uploads_created_at_id_idx ON uploads (created_at, id);

-- Deleting an upload leaves the messages that carried it as files without an attachment.
ALTER TABLE messages ADD COLUMN attachment_id uuid
    CONSTRAINT messages_attachment_id_fkey REFERENCES uploads (id) ON DELETE SET NULL;
-- The messages carrying an upload: who may read it, whether it is unattached, and the SET NULL
-- of its deletion look them up. Most messages carry none, so they stay out of the index.
CREATE INDEX messages_attachment_id_idx ON messages (attachment_id)
    WHERE attachment_id IS NOT NULL;
