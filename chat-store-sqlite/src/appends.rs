//! New messages, committed in batches (group commit, see [`chat_core::batch`]): as many as
//! waited for the writer go into one transaction, one fsync for the lot.
//!
//! A batch is written with a handful of statements whatever its size (one per step below, not
//! one per message): each statement is a round trip to SQLite's connection thread, and those
//! trips, not SQLite itself, are what an append costs. Each message still ends exactly as if it
//! had been appended alone: a repeated client id returns the original, a missing room or upload
//! fails that message and stores nothing for it. When a statement fails for the whole batch
//! (a constraint no check here foresees), the batch is appended again one message at a time,
//! each in a savepoint, so the failure stays with the message that caused it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chat_core::domain::search::index_text;
use chat_core::domain::{
    from_micros, micros, Appended, Attachment, Message, NewMessage, Rev, RoomId, Seq, Upload,
    UserId,
};
use chat_core::outbox::{Envelope, EventType};
use chat_core::StoreError;
use sea_query::{CaseStatement, Cond, Expr, Func, OnConflict, Query, SimpleExpr};
use sqlx::{SqliteConnection, SqlitePool};

use crate::error::db;
use crate::messages::{encode_mentions, read_messages, select_messages};
use crate::outbox::{self, Channels};
use crate::query::{execute, fetch_all};
use crate::schema::{Memberships, Mentions, MessageWords, Messages, Rooms};
use crate::uploads;

/// Rows per multi-row INSERT: at 13 values a row, far below SQLite's 32,766 bound variables.
const ROWS_PER_INSERT: usize = 1000;

type Outcome = Result<Appended, StoreError>;

/// Appends a batch; one result per message, in order. When the transaction itself fails, every
/// message fails and none was stored.
pub(crate) async fn append_batch(
    writer: SqlitePool,
    channels: Arc<Channels>,
    batch: Vec<NewMessage>,
) -> Vec<Outcome> {
    let written = match together(&writer, &channels, &batch).await {
        Ok(Some(results)) => Ok(results),
        Ok(None) | Err(_) => one_by_one(&writer, &channels, &batch).await,
    };
    written.unwrap_or_else(|e| {
        let reason = e.to_string();
        batch
            .iter()
            .map(|_| Err(StoreError::Unavailable(reason.clone())))
            .collect()
    })
}

/// The batch in one transaction and a few statements; `None` when it has to go one by one.
async fn together(
    writer: &SqlitePool,
    channels: &Channels,
    batch: &[NewMessage],
) -> Result<Option<Vec<Outcome>>, StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
    let Some(results) = write_together(&mut tx, channels, batch).await? else {
        return Ok(None);
    };
    tx.commit().await.map_err(db)?;
    Ok(Some(results))
}

/// What becomes of one message of the batch.
enum Fate {
    /// It is stored as a new message.
    New,
    /// It repeats a stored message's client id: that message is the answer.
    Repeat(Box<Message>),
    /// It repeats the client id of an earlier message of this batch.
    RepeatOf(usize),
    /// It cannot be stored.
    Failed(StoreError),
}

/// (room, sender, client id): what makes a message a repeat.
type RepeatKey<'a> = (RoomId, UserId, &'a str);

async fn write_together(
    conn: &mut SqliteConnection,
    channels: &Channels,
    batch: &[NewMessage],
) -> Result<Option<Vec<Outcome>>, StoreError> {
    let stored = stored_originals(conn, batch).await?;
    let mut fates = Vec::with_capacity(batch.len());
    let mut first_of: HashMap<RepeatKey<'_>, usize> = HashMap::new();
    for (i, message) in batch.iter().enumerate() {
        let Some(client_id) = &message.client_id else {
            fates.push(Fate::New);
            continue;
        };
        let key = (message.room_id, message.sender_id, client_id.as_str());
        fates.push(if let Some(original) = stored.get(&key) {
            Fate::Repeat(Box::new(original.clone()))
        } else if let Some(&first) = first_of.get(&key) {
            Fate::RepeatOf(first)
        } else {
            first_of.insert(key, i);
            Fate::New
        });
    }

    let mut attached: Vec<Option<Upload>> = batch.iter().map(|_| None).collect();
    for (i, message) in batch.iter().enumerate() {
        if let (Fate::New, Some(id)) = (&fates[i], message.attachment) {
            match uploads::find(&mut *conn, id).await? {
                Some(upload) => attached[i] = Some(upload),
                None => fates[i] = Fate::Failed(StoreError::NotFound),
            }
        }
    }

    let positions = take_positions(conn, batch, &mut fates).await?;
    // A repeat of a message that failed would, on its own, be tried as a new message: that
    // rare case goes one by one rather than being guessed here.
    if fates
        .iter()
        .any(|f| matches!(f, Fate::RepeatOf(first) if !matches!(fates[*first], Fate::New)))
    {
        return Ok(None);
    }

    let new = positions;
    insert_messages(conn, batch, &new).await?;
    index_words(conn, batch, &new).await?;
    insert_all_mentions(conn, batch, &new).await?;
    move_watermarks(conn, batch, &new).await?;

    let mut created: HashMap<usize, Message> = HashMap::new();
    let mut events = Vec::with_capacity(new.len());
    for &(i, seq, rev) in &new {
        let message = new_message(&batch[i], seq, rev, attached[i].as_ref());
        events.push(Envelope::of_message(EventType::MessageCreated, &message));
        created.insert(i, message);
    }
    outbox::record(conn, channels, &events).await?;
    let results = fates
        .into_iter()
        .enumerate()
        .map(|(i, fate)| match fate {
            Fate::New => Ok(Appended {
                message: created[&i].clone(),
                created: true,
            }),
            Fate::Repeat(original) => Ok(Appended {
                message: *original,
                created: false,
            }),
            Fate::RepeatOf(first) => Ok(Appended {
                message: created[&first].clone(),
                created: false,
            }),
            Fate::Failed(e) => Err(e),
        })
        .collect();
    Ok(Some(results))
}

/// The stored messages whose client ids the batch repeats, by what makes them repeats.
async fn stored_originals<'a>(
    conn: &mut SqliteConnection,
    batch: &'a [NewMessage],
) -> Result<HashMap<RepeatKey<'a>, Message>, StoreError> {
    let keyed: Vec<&NewMessage> = batch.iter().filter(|m| m.client_id.is_some()).collect();
    if keyed.is_empty() {
        return Ok(HashMap::new());
    }
    // The IN lists may select more than the exact triples; the lookup below keeps only those.
    let q = select_messages()
        .and_where(
            Expr::col((Messages::Table, Messages::RoomId)).is_in(keyed.iter().map(|m| m.room_id.0)),
        )
        .and_where(
            Expr::col((Messages::Table, Messages::ClientId)).is_in(
                keyed
                    .iter()
                    .filter_map(|m| m.client_id.as_ref())
                    .map(|c| c.as_str()),
            ),
        )
        .to_owned();
    let found = read_messages(conn, &q).await?;
    let mut originals = HashMap::new();
    for message in &keyed {
        let Some(client_id) = &message.client_id else {
            continue;
        };
        let original = found.iter().find(|m| {
            m.room_id == message.room_id
                && m.sender_id == message.sender_id
                && m.client_id.as_ref() == Some(client_id)
        });
        if let Some(original) = original {
            originals.insert(
                (message.room_id, message.sender_id, client_id.as_str()),
                original.clone(),
            );
        }
    }
    Ok(originals)
}

/// Moves each room's last seq and rev past its new messages in one statement and hands out the
/// positions in between, in batch order; the messages of a room that does not exist fail.
async fn take_positions(
    conn: &mut SqliteConnection,
    batch: &[NewMessage],
    fates: &mut [Fate],
) -> Result<Vec<(usize, Seq, Rev)>, StoreError> {
    // Per room: how many new messages, and the time of its last one.
    let mut rooms: BTreeMap<RoomId, (i64, i64)> = BTreeMap::new();
    for (i, message) in batch.iter().enumerate() {
        if matches!(fates[i], Fate::New) {
            let entry = rooms.entry(message.room_id).or_insert((0, 0));
            entry.0 += 1;
            entry.1 = micros(message.created_at);
        }
    }
    if rooms.is_empty() {
        return Ok(Vec::new());
    }
    let per_room = |value: fn(&(i64, i64)) -> i64| -> SimpleExpr {
        rooms
            .iter()
            .fold(CaseStatement::new(), |case, (room, counts)| {
                case.case(Expr::col(Rooms::Id).eq(room.0), value(counts))
            })
            .into()
    };
    let bump = Query::update()
        .table(Rooms::Table)
        .values([
            (
                Rooms::LastSeq,
                Expr::col(Rooms::LastSeq).add(per_room(|c| c.0)),
            ),
            (Rooms::Rev, Expr::col(Rooms::Rev).add(per_room(|c| c.0))),
            (Rooms::LastMessageAt, per_room(|c| c.1)),
        ])
        .and_where(Expr::col(Rooms::Id).is_in(rooms.keys().map(|r| r.0)))
        .returning(Query::returning().columns([Rooms::Id, Rooms::LastSeq, Rooms::Rev]))
        .to_owned();
    let bumped: Vec<(uuid::Uuid, i64, i64)> = fetch_all(&mut *conn, &bump).await.map_err(db)?;
    // Per room: the seq and rev before its first new message, counting up from there.
    let mut next: HashMap<RoomId, (i64, i64)> = bumped
        .into_iter()
        .map(|(id, last_seq, rev)| {
            let count = rooms[&RoomId(id)].0;
            (RoomId(id), (last_seq - count, rev - count))
        })
        .collect();
    let mut positions = Vec::new();
    for (i, message) in batch.iter().enumerate() {
        if !matches!(fates[i], Fate::New) {
            continue;
        }
        match next.get_mut(&message.room_id) {
            Some((seq, rev)) => {
                *seq += 1;
                *rev += 1;
                positions.push((i, Seq(*seq), Rev(*rev)));
            }
            None => fates[i] = Fate::Failed(StoreError::NotFound),
        }
    }
    Ok(positions)
}

async fn insert_messages(
    conn: &mut SqliteConnection,
    batch: &[NewMessage],
    new: &[(usize, Seq, Rev)],
) -> Result<(), StoreError> {
    for chunk in new.chunks(ROWS_PER_INSERT) {
        let mut insert = Query::insert();
        insert.into_table(Messages::Table).columns([
            Messages::RoomId,
            Messages::Seq,
            Messages::Id,
            Messages::SenderId,
            Messages::Kind,
            Messages::Body,
            Messages::ClientId,
            Messages::ReplyTo,
            Messages::ThreadId,
            Messages::Mentions,
            Messages::CreatedAt,
            Messages::Rev,
            Messages::AttachmentId,
        ]);
        for &(i, seq, rev) in chunk {
            let m = &batch[i];
            insert
                .values([
                    m.room_id.0.into(),
                    seq.0.into(),
                    m.id.0.into(),
                    m.sender_id.0.into(),
                    m.kind.as_str().into(),
                    m.body.as_ref().map(|b| b.as_str()).into(),
                    m.client_id.as_ref().map(|c| c.as_str()).into(),
                    m.reply_to.map(|r| r.0).into(),
                    m.thread_id.map(|t| t.0).into(),
                    encode_mentions(&m.mentions).into(),
                    micros(m.created_at).into(),
                    rev.0.into(),
                    m.attachment.map(|u| u.0).into(),
                ])
                .map_err(StoreError::backend)?;
        }
        execute(&mut *conn, &insert).await.map_err(db)?;
    }
    Ok(())
}

/// Makes the new messages with text findable (see `search.rs`).
async fn index_words(
    conn: &mut SqliteConnection,
    batch: &[NewMessage],
    new: &[(usize, Seq, Rev)],
) -> Result<(), StoreError> {
    let with_text: Vec<(&NewMessage, Seq)> = new
        .iter()
        .filter(|(i, _, _)| batch[*i].body.is_some())
        .map(|&(i, seq, _)| (&batch[i], seq))
        .collect();
    for chunk in with_text.chunks(ROWS_PER_INSERT) {
        let mut insert = Query::insert();
        insert
            .into_table(MessageWords::Table)
            .columns([MessageWords::RoomId, MessageWords::Seq, MessageWords::Words])
            .on_conflict(
                OnConflict::columns([MessageWords::RoomId, MessageWords::Seq])
                    .update_column(MessageWords::Words)
                    .to_owned(),
            );
        for (m, seq) in chunk {
            let body = m.body.as_ref().map_or("", |b| b.as_str());
            insert
                .values([m.room_id.0.into(), seq.0.into(), index_text(body).into()])
                .map_err(StoreError::backend)?;
        }
        execute(&mut *conn, &insert).await.map_err(db)?;
    }
    Ok(())
}

async fn insert_all_mentions(
    conn: &mut SqliteConnection,
    batch: &[NewMessage],
    new: &[(usize, Seq, Rev)],
) -> Result<(), StoreError> {
    let mut rows: Vec<(RoomId, Seq, UserId)> = Vec::new();
    for &(i, seq, _) in new {
        let mut mentioned = batch[i].mentions.clone();
        mentioned.sort_unstable();
        mentioned.dedup();
        rows.extend(mentioned.into_iter().map(|u| (batch[i].room_id, seq, u)));
    }
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut insert = Query::insert();
        insert.into_table(Mentions::Table).columns([
            Mentions::RoomId,
            Mentions::Seq,
            Mentions::UserId,
        ]);
        for (room, seq, user) in chunk {
            insert
                .values([room.0.into(), seq.0.into(), user.0.into()])
                .map_err(StoreError::backend)?;
        }
        execute(&mut *conn, &insert).await.map_err(db)?;
    }
    Ok(())
}

/// Each sender has seen what they wrote: their read and delivered watermarks move up to their
/// last new message in each room, never backwards (MAX); a sender without a membership row has
/// no watermark to move.
async fn move_watermarks(
    conn: &mut SqliteConnection,
    batch: &[NewMessage],
    new: &[(usize, Seq, Rev)],
) -> Result<(), StoreError> {
    let mut last: BTreeMap<(RoomId, UserId), i64> = BTreeMap::new();
    for &(i, seq, _) in new {
        let at = last
            .entry((batch[i].room_id, batch[i].sender_id))
            .or_default();
        *at = (*at).max(seq.0);
    }
    if last.is_empty() {
        return Ok(());
    }
    let row = |(room, user): &(RoomId, UserId)| {
        Expr::col(Memberships::RoomId)
            .eq(room.0)
            .and(Expr::col(Memberships::UserId).eq(user.0))
    };
    let seq_of = || -> SimpleExpr {
        last.iter()
            .fold(CaseStatement::new(), |case, (key, seq)| {
                case.case(row(key), *seq)
            })
            .into()
    };
    let raise = |column: Memberships| -> SimpleExpr {
        Func::greatest([Expr::col(column).into(), seq_of()]).into()
    };
    let update = Query::update()
        .table(Memberships::Table)
        .values([
            (Memberships::ReadSeq, raise(Memberships::ReadSeq)),
            (Memberships::DeliveredSeq, raise(Memberships::DeliveredSeq)),
        ])
        .cond_where(last.keys().fold(Cond::any(), |any, key| any.add(row(key))))
        .to_owned();
    execute(&mut *conn, &update).await.map_err(db)?;
    Ok(())
}

fn new_message(message: &NewMessage, seq: Seq, rev: Rev, upload: Option<&Upload>) -> Message {
    Message {
        id: message.id,
        room_id: message.room_id,
        seq,
        rev,
        sender_id: message.sender_id,
        kind: message.kind,
        body: message.body.as_ref().map(|b| b.as_str().to_owned()),
        attachment: upload.map(Attachment::of),
        reply_to: message.reply_to,
        thread_id: message.thread_id,
        thread: None,
        mentions: message.mentions.clone(),
        client_id: message.client_id.clone(),
        created_at: from_micros(micros(message.created_at)),
        edited_at: None,
        deleted: false,
        reactions: Vec::new(),
    }
}

/// The batch in one transaction, each message in a savepoint of its own, so one that breaks a
/// statement fails alone.
async fn one_by_one(
    writer: &SqlitePool,
    channels: &Channels,
    batch: &[NewMessage],
) -> Result<Vec<Outcome>, StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
    let mut results = Vec::with_capacity(batch.len());
    for message in batch {
        let mut savepoint = sqlx::Connection::begin(&mut *tx).await.map_err(db)?;
        let result = append_one(&mut savepoint, channels, message).await;
        // Only a new message keeps what its savepoint did; a repeat or a failure wrote nothing
        // that should stay.
        if result.as_ref().is_ok_and(|a| a.created) {
            savepoint.commit().await.map_err(db)?;
        } else {
            savepoint.rollback().await.map_err(db)?;
        }
        results.push(result);
    }
    tx.commit().await.map_err(db)?;
    Ok(results)
}

/// Appends one message inside the caller's transaction; a repeated `client_id` returns the
/// original and writes nothing.
async fn append_one(
    conn: &mut SqliteConnection,
    channels: &Channels,
    message: &NewMessage,
) -> Outcome {
    if let Some(client_id) = &message.client_id {
        let q = select_messages()
            .and_where(Expr::col((Messages::Table, Messages::RoomId)).eq(message.room_id.0))
            .and_where(Expr::col((Messages::Table, Messages::SenderId)).eq(message.sender_id.0))
            .and_where(Expr::col((Messages::Table, Messages::ClientId)).eq(client_id.as_str()))
            .to_owned();
        if let Some(original) = read_messages(&mut *conn, &q).await?.pop() {
            return Ok(Appended {
                message: original,
                created: false,
            });
        }
    }
    let upload = match message.attachment {
        Some(id) => Some(
            uploads::find(&mut *conn, id)
                .await?
                .ok_or(StoreError::NotFound)?,
        ),
        None => None,
    };
    let mut fates = [Fate::New];
    let position = take_positions(conn, std::slice::from_ref(message), &mut fates).await?;
    let Some(&(_, seq, rev)) = position.first() else {
        return Err(StoreError::NotFound);
    };
    let batch = std::slice::from_ref(message);
    insert_messages(conn, batch, &position).await?;
    index_words(conn, batch, &position).await?;
    insert_all_mentions(conn, batch, &position).await?;
    move_watermarks(conn, batch, &position).await?;
    let created = new_message(message, seq, rev, upload.as_ref());
    let event = Envelope::of_message(EventType::MessageCreated, &created);
    outbox::record(conn, channels, &[event]).await?;
    Ok(Appended {
        message: created,
        created: true,
    })
}

#[cfg(test)]
mod tests {
    use chat_core::domain::{ClientId, HistoryAnchor, UploadId};
    use chat_core::ports::{MessageStore, RoomStore};
    use uuid::Uuid;

    use super::*;
    use crate::test_support::{at, room, scratch, text, user};

    fn seqs(results: &[Outcome]) -> Vec<Option<i64>> {
        results
            .iter()
            .map(|r| r.as_ref().ok().map(|a| a.message.seq.0))
            .collect()
    }

    #[tokio::test]
    async fn one_batch_spans_rooms_and_a_missing_room_fails_alone() {
        let (_dir, store) = scratch().await;
        let alice = user(&store, "alice").await;
        let one = room(&store, &[alice], at(0)).await;
        let two = room(&store, &[alice], at(0)).await;
        let gone = RoomId(Uuid::new_v4());
        let batch = vec![
            text(one, alice, Vec::new()),
            text(gone, alice, Vec::new()),
            text(two, alice, vec![alice]),
            text(one, alice, Vec::new()),
        ];
        let results = append_batch(store.writer.clone(), store.channels.clone(), batch).await;
        assert_eq!(seqs(&results), vec![Some(1), None, Some(1), Some(2)]);
        assert!(matches!(results[1], Err(StoreError::NotFound)));
        let stored = store.history(one, HistoryAnchor::Latest, 10).await.unwrap();
        assert_eq!(stored.messages.len(), 2);
        assert_eq!(stored.messages[1], results[3].as_ref().unwrap().message);
        let r = store.room(one).await.unwrap().unwrap();
        assert_eq!((r.last_seq, r.rev), (Seq(2), Rev(2)));
        let watermark = store.membership(one, alice).await.unwrap().unwrap();
        assert_eq!(watermark.read_seq, Seq(2));
        let mentioned = store.history(two, HistoryAnchor::Latest, 10).await.unwrap();
        assert_eq!(mentioned.messages[0].mentions, vec![alice]);
    }

    #[tokio::test]
    async fn repeats_inside_a_batch_get_the_first_message() {
        let (_dir, store) = scratch().await;
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        let room = room(&store, &[alice, bob], at(0)).await;
        let with_id = |sender| {
            let mut m = text(room, sender, Vec::new());
            m.client_id = Some(ClientId::parse("c-1").unwrap());
            m
        };
        let batch = vec![with_id(alice), with_id(alice), with_id(bob)];
        let results = append_batch(store.writer.clone(), store.channels.clone(), batch).await;
        let [first, repeat, bobs] =
            [&results[0], &results[1], &results[2]].map(|r| r.as_ref().unwrap());
        assert!(first.created && !repeat.created && bobs.created);
        assert_eq!(repeat.message, first.message);
        assert_eq!(bobs.message.seq, Seq(2));
        // A later batch finds the stored original.
        let again = append_batch(
            store.writer.clone(),
            store.channels.clone(),
            vec![with_id(alice)],
        )
        .await;
        let again = again[0].as_ref().unwrap();
        assert!(!again.created);
        assert_eq!(again.message, first.message);
        assert_eq!(store.room(room).await.unwrap().unwrap().last_seq, Seq(2));
    }

    #[tokio::test]
    async fn a_statement_that_fails_for_the_batch_fails_only_its_message() {
        let (_dir, store) = scratch().await;
        let alice = user(&store, "alice").await;
        let room = room(&store, &[alice], at(0)).await;
        let first = text(room, alice, Vec::new());
        let mut same_id = text(room, alice, Vec::new());
        // Nothing checks ids before the INSERT: the multi-row statement fails for everyone.
        same_id.id = first.id;
        let batch = vec![first, same_id, text(room, alice, Vec::new())];
        let results = append_batch(store.writer.clone(), store.channels.clone(), batch).await;
        assert_eq!(seqs(&results), vec![Some(1), None, Some(2)]);
        let stored = store
            .history(room, HistoryAnchor::Latest, 10)
            .await
            .unwrap();
        assert_eq!(stored.messages.len(), 2);
        assert_eq!(store.room(room).await.unwrap().unwrap().last_seq, Seq(2));
    }

    #[tokio::test]
    async fn a_repeat_of_a_message_that_failed_is_tried_as_itself() {
        let (_dir, store) = scratch().await;
        let alice = user(&store, "alice").await;
        let room = room(&store, &[alice], at(0)).await;
        let mut with_missing_upload = text(room, alice, Vec::new());
        with_missing_upload.client_id = Some(ClientId::parse("c-1").unwrap());
        with_missing_upload.attachment = Some(UploadId(Uuid::new_v4()));
        let mut retry = text(room, alice, Vec::new());
        retry.client_id = with_missing_upload.client_id.clone();
        let results = append_batch(
            store.writer.clone(),
            store.channels.clone(),
            vec![with_missing_upload, retry],
        )
        .await;
        assert!(matches!(results[0], Err(StoreError::NotFound)));
        let retried = results[1].as_ref().unwrap();
        assert!(retried.created);
        assert_eq!(retried.message.seq, Seq(1));
    }
}
