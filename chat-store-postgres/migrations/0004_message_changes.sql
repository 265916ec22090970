-- Changes to posted messages: reactions, and full-text search of message text.

CREATE TABLE reactions (
    room_id    uuid        NOT NULL,
    seq        bigint      NOT NULL,
    emoji      text        NOT NULL,
    user_id    uuid        NOT NULL,
    created_at timestamptz NOT NULL,
    -- The rev that first put this emoji on the message, shared by every row of the emoji for as
    -- long as anyone still reacts with it. Emojis list in the order of first use by it: revs
    -- never tie, where clocks can, and an emoji everyone took back starts over at the end.
    first_rev  bigint      NOT NULL,
    -- Also the lookup of a message's reactions, which reads whole (room_id, seq) prefixes.
    CONSTRAINT reactions_pkey PRIMARY KEY (room_id, seq, emoji, user_id),
    CONSTRAINT reactions_message_fkey FOREIGN KEY (room_id, seq)
        REFERENCES messages (room_id, seq) ON DELETE CASCADE
);
-- Which messages of a page one user reacted to.
CREATE INDEX reactions_room_id_user_id_seq_idx ON reactions (room_id, user_id, seq);

-- The engine's words of the text (chat_core::domain::search::words) as the lexemes of a
-- tsvector, put there as they are by array_to_tsvector: no text search parser or dictionary
-- runs, on either side of a match, so search finds exactly what the engine's words say, whatever
-- the database's locale. NULL for deleted messages and messages without text.
ALTER TABLE messages ADD COLUMN search tsvector;

-- Messages written before this migration get an approximation of those words: [:alnum:] and
-- lower() follow the database's locale where the engine follows Unicode. What is written or
-- edited from now on is indexed with the engine's own words.
UPDATE messages
SET search = array_to_tsvector(ARRAY(
    SELECT left(word, 64)
    FROM regexp_split_to_table(lower(body), '[^[:alnum:]]+') AS word
    WHERE word <> ''
))
WHERE NOT deleted AND body IS NOT NULL;

CREATE INDEX messages_search_idx ON messages USING gin (search);
