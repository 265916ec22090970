-- Changes to posted messages: reactions, and full-text search of message text.

-- A thread's replies in seq order, for paging through them. Only replies have entries.
CREATE INDEX messages_thread_replies ON messages (room_id, thread_id, seq)
    WHERE thread_id IS NOT NULL;

-- One row per user, emoji and message. The key puts a message's reactions together, so its
-- counts per emoji are one range read.
CREATE TABLE reactions (
    room_id    BLOB    NOT NULL,
    seq        INTEGER NOT NULL,
    emoji      TEXT    NOT NULL,
    user_id    BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    -- The rev that first put this emoji on the message, shared by every row of the emoji for as
    -- long as anyone still reacts with it. Emojis list in the order of first use by it: revs
    -- never tie, where clocks can, and an emoji everyone took back starts over at the end.
    first_rev  INTEGER NOT NULL,
    PRIMARY KEY (room_id, seq, emoji, user_id),
    FOREIGN KEY (room_id, seq) REFERENCES messages (room_id, seq) ON DELETE CASCADE
) WITHOUT ROWID;
-- One reader's own reactions on a page of messages, without reading everyone else's.
CREATE INDEX reactions_user ON reactions (room_id, user_id, seq);

-- The words of each live message with text, as chat_core's `search::index_text` writes them
-- (lowercased, joined by single spaces), so every store matches the same words. `id` is the
-- full-text row's rowid: an INTEGER PRIMARY KEY keeps it stable, where VACUUM may renumber the
-- implicit rowids of `messages`. Messages stored before this migration get their rows when the
-- store opens (`search::backfill`): only Rust computes `index_text`.
CREATE TABLE message_words (
    id      INTEGER NOT NULL PRIMARY KEY,
    room_id BLOB    NOT NULL,
    seq     INTEGER NOT NULL,
    words   TEXT    NOT NULL,
    FOREIGN KEY (room_id, seq) REFERENCES messages (room_id, seq) ON DELETE CASCADE
);
CREATE UNIQUE INDEX message_words_message ON message_words (room_id, seq);

-- The index over `message_words`, which holds the text (external content: stored once). The
-- `ascii` tokenizer splits on ASCII punctuation and spaces only and keeps every other character
-- in its token, so the tokens are exactly the words `index_text` wrote, whatever the alphabet
-- (`unicode61` would drop or split some that Rust counts as letters, such as `ⓐ`).
CREATE VIRTUAL TABLE message_search USING fts5(
    words,
    content = 'message_words',
    content_rowid = 'id',
    tokenize = 'ascii'
);

-- The index follows its content table, also when a deleted room's messages take their words
-- rows along by cascade.
CREATE TRIGGER message_words_insert AFTER INSERT ON message_words BEGIN
    INSERT INTO message_search (rowid, words) VALUES (new.id, new.words);
END;
CREATE TRIGGER message_words_delete AFTER DELETE ON message_words BEGIN
    INSERT INTO message_search (message_search, rowid, words) VALUES ('delete', old.id, old.words);
END;
CREATE TRIGGER message_words_update AFTER UPDATE OF words ON message_words BEGIN
    INSERT INTO message_search (message_search, rowid, words) VALUES ('delete', old.id, old.words);
    INSERT INTO message_search (rowid, words) VALUES (new.id, new.words);
END;
