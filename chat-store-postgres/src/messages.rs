//! Messages and history: how messages are appended and read. Edits and deletes are in
//! [`crate::changes`], reactions in [`crate::reactions`], full-text search in [`crate::search`].

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chat_core::domain::{
    from_micros, micros, Appended, Attachment, ClientId, Cursor, Emoji, HistoryAnchor, HistoryPage,
    Message, MessageEdit, MessageId, MessageKind, NewMessage, ReactionChange, ReactionEdit, Rev,
    RoomId, SearchQuery, Seq, ThreadSummary, UserId,
};
use chat_core::outbox::{Envelope, EventType};
use chat_core::ports::{Hint, HintKind, MessageStore, NodeId};
use chat_core::StoreError;
use sea_query::{Asterisk, Expr, Func, JoinType, Order, Query, SelectStatement, SimpleExpr};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{corrupt, db};
use crate::outbox::{self, Channels};
use crate::query::{execute, fetch_all, fetch_optional};
use crate::schema::{Derived, Memberships, Mentions, Messages, Rooms};
use crate::store::PgStore;
use crate::uploads::{self, AttachedRow};
use crate::{changes, reactions, search};

const MESSAGE_COLUMNS: [Messages; 14] = [
    Messages::Id,
    Messages::RoomId,
    Messages::Seq,
    Messages::Rev,
    Messages::SenderId,
    Messages::Kind,
    Messages::Body,
    Messages::ClientId,
    Messages::ReplyTo,
    Messages::ThreadId,
    Messages::Mentions,
    Messages::CreatedAt,
    Messages::EditedAt,
    Messages::Deleted,
];

#[derive(Debug, sqlx::FromRow)]
struct MessageRow {
    id: Uuid,
    room_id: Uuid,
    seq: i64,
    rev: i64,
    sender_id: Uuid,
    kind: String,
    body: Option<String>,
    client_id: Option<String>,
    reply_to: Option<Uuid>,
    thread_id: Option<Uuid>,
    mentions: Vec<Uuid>,
    created_at: OffsetDateTime,
    edited_at: Option<OffsetDateTime>,
    deleted: bool,
    reply_count: i64,
    last_reply_at: Option<OffsetDateTime>,
    #[sqlx(flatten)]
    attachment: AttachedRow,
}

impl TryFrom<MessageRow> for Message {
    type Error = StoreError;

    fn try_from(row: MessageRow) -> Result<Self, StoreError> {
        let kind =
            MessageKind::parse(&row.kind).ok_or_else(|| corrupt("messages.kind", row.kind))?;
        let client_id = row
            .client_id
            .map(|c| ClientId::parse(&c).map_err(|_| corrupt("messages.client_id", c.as_str())))
            .transpose()?;
        Ok(Message {
            id: MessageId(row.id),
            room_id: RoomId(row.room_id),
            seq: Seq(row.seq),
            rev: Rev(row.rev),
            sender_id: UserId(row.sender_id),
            kind,
            // A deleted message keeps no text or attachment, whatever the row still holds.
            body: if row.deleted { None } else { row.body },
            attachment: if row.deleted {
                None
            } else {
                row.attachment.into_attachment()
            },
            reply_to: row.reply_to.map(MessageId),
            thread_id: row.thread_id.map(MessageId),
            thread: (row.reply_count > 0).then_some(ThreadSummary {
                reply_count: row.reply_count,
                last_reply_at: row.last_reply_at,
            }),
            mentions: row.mentions.into_iter().map(UserId).collect(),
            client_id,
            created_at: row.created_at,
            edited_at: row.edited_at,
            deleted: row.deleted,
            reactions: Vec::new(),
        })
    }
}

/// The mentioned ids as a `uuid[]` value. sea-query binds no arrays without its
/// `postgres-array` feature (which would change its `Value` for every crate of the workspace),
/// so the array is bound in its text form and cast by the server.
pub(crate) fn mentions_array(mentions: &[UserId]) -> SimpleExpr {
    let elements: Vec<String> = mentions
        .iter()
        .map(|u| u.0.hyphenated().to_string())
        .collect();
    Func::cast_as(format!("{{{}}}", elements.join(",")), Derived::UuidArray).into()
}

/// The thread summary of the outer query's message: how many replies it has and when the
/// newest was posted. An aggregate without `GROUP BY` yields one row even for no replies.
fn thread_summary() -> SelectStatement {
    Query::select()
        .expr_as(Expr::col(Asterisk).count(), Derived::ReplyCount)
        .expr_as(
            Func::max(Expr::col((Derived::Replies, Messages::CreatedAt))),
            Derived::LastReplyAt,
        )
        .from_as(Messages::Table, Derived::Replies)
        .and_where(
            Expr::col((Derived::Replies, Messages::RoomId))
                .equals((Messages::Table, Messages::RoomId)),
        )
        .and_where(
            Expr::col((Derived::Replies, Messages::ThreadId))
                .equals((Messages::Table, Messages::Id)),
        )
        .to_owned()
}

/// Selects [`MessageRow`]s from `messages`, with their thread summaries and attachments. The
/// summary is a lateral subquery, so both of its aggregates come from one scan of the thread
/// index, and only for the rows the outer query keeps.
pub(crate) fn select_messages() -> SelectStatement {
    let mut q = Query::select()
        .columns(MESSAGE_COLUMNS.map(|c| (Messages::Table, c)))
        .columns([
            (Derived::Thread, Derived::ReplyCount),
            (Derived::Thread, Derived::LastReplyAt),
        ])
        .from(Messages::Table)
        .join_lateral(
            JoinType::LeftJoin,
            thread_summary(),
            Derived::Thread,
            Expr::cust("TRUE"),
        )
        .to_owned();
    uploads::with_attachment(&mut q);
    q
}

/// Whether a `messages` row is in the room.
pub(crate) fn in_room(room: RoomId) -> SimpleExpr {
    Expr::col((Messages::Table, Messages::RoomId)).eq(room.0)
}

/// The messages `q` selects (see [`select_messages`]), with their reactions.
pub(crate) async fn fetch_messages(
    conn: &mut PgConnection,
    q: &SelectStatement,
) -> Result<Vec<Message>, StoreError> {
    let rows: Vec<MessageRow> = fetch_all(&mut *conn, q).await.map_err(db)?;
    let mut messages = rows
        .into_iter()
        .map(Message::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    reactions::fill(conn, &mut messages).await?;
    Ok(messages)
}

/// [`fetch_messages`] outside a transaction. The reactions are read a moment after the
/// messages, so they may be newer than a message's rev, never older: a reader that syncs by rev
/// gets that message again with the change's rev, and loses nothing.
pub(crate) async fn read_messages(
    pool: &PgPool,
    q: &SelectStatement,
) -> Result<Vec<Message>, StoreError> {
    let mut conn = pool.acquire().await.map_err(db)?;
    fetch_messages(&mut conn, q).await
}

/// The message at `seq` of the room, as read inside the transaction that just changed it.
pub(crate) async fn message_at(
    conn: &mut PgConnection,
    room: RoomId,
    seq: Seq,
) -> Result<Message, StoreError> {
    let q = select_messages()
        .and_where(in_room(room))
        .and_where(Expr::col((Messages::Table, Messages::Seq)).eq(seq.0))
        .to_owned();
    fetch_messages(conn, &q)
        .await?
        .pop()
        .ok_or(StoreError::NotFound)
}

/// Writes the mentions rows of the message at `seq`: each mentioned user once.
pub(crate) async fn insert_mentions(
    conn: &mut PgConnection,
    room: RoomId,
    seq: Seq,
    mentions: &[UserId],
) -> Result<(), StoreError> {
    let mut mentioned = mentions.to_vec();
    mentioned.sort_unstable();
    mentioned.dedup();
    if mentioned.is_empty() {
        return Ok(());
    }
    let mut insert = Query::insert();
    insert
        .into_table(Mentions::Table)
        .columns([Mentions::RoomId, Mentions::Seq, Mentions::UserId]);
    for user in mentioned {
        insert
            .values([room.0.into(), seq.0.into(), user.0.into()])
            .map_err(StoreError::backend)?;
    }
    execute(conn, &insert).await.map_err(db)?;
    Ok(())
}

/// The messages at the given positions, by room: the newest message of each room, when called
/// with the `last_seq` read together with the room. Naming the seq (rather than joining `rooms`
/// again) keeps the message the one that row named, even if a message was appended since.
pub(crate) async fn last_messages(
    pool: &PgPool,
    positions: impl IntoIterator<Item = (RoomId, Seq)>,
) -> Result<HashMap<RoomId, Message>, StoreError> {
    let keys: Vec<(Uuid, i64)> = positions
        .into_iter()
        .map(|(room, seq)| (room.0, seq.0))
        .collect();
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let q = select_messages()
        .and_where(
            Expr::tuple([
                Expr::col((Messages::Table, Messages::RoomId)).into(),
                Expr::col((Messages::Table, Messages::Seq)).into(),
            ])
            .in_tuples(keys),
        )
        .to_owned();
    let messages = read_messages(pool, &q).await?;
    Ok(messages.into_iter().map(|m| (m.room_id, m)).collect())
}

/// The room's message at `seq`, read in the caller's transaction.
pub(crate) async fn message_at_seq(
    conn: &mut PgConnection,
    room: RoomId,
    seq: Seq,
) -> Result<Option<Message>, StoreError> {
    let q = select_messages()
        .and_where(in_room(room))
        .and_where(Expr::col((Messages::Table, Messages::Seq)).eq(seq.0))
        .to_owned();
    Ok(fetch_messages(conn, &q).await?.pop())
}

/// Appends a batch of messages in one transaction: one commit, one WAL flush, however many
/// messages waited (see [`chat_core::batch`]). Each message runs in a savepoint of its own, so
/// one that fails (its room or upload is gone) stores nothing and leaves the others in; when
/// the transaction itself fails, every message in it fails and none was stored. Messages are
/// appended in the order of their rooms' ids (each room's own in the order they came): every
/// batch, from every node, then takes its rooms' locks in one order and no two deadlock.
pub(crate) async fn append_batch(
    pool: PgPool,
    hints_as: Option<NodeId>,
    channels: Arc<Channels>,
    batch: Vec<NewMessage>,
) -> Vec<Result<Appended, StoreError>> {
    let count = batch.len();
    match append_all(&pool, hints_as, &channels, &batch).await {
        Ok(results) => results,
        Err(e) => {
            let reason = e.to_string();
            (0..count)
                .map(|_| Err(StoreError::Unavailable(reason.clone())))
                .collect()
        }
    }
}

async fn append_all(
    pool: &PgPool,
    hints_as: Option<NodeId>,
    channels: &Channels,
    batch: &[NewMessage],
) -> Result<Vec<Result<Appended, StoreError>>, StoreError> {
    if let [message] = batch {
        // Alone, the transaction is the message's own: no savepoint round trips.
        let mut tx = pool.begin().await.map_err(db)?;
        let result = append(&mut tx, channels, message).await;
        match &result {
            Ok(appended) if appended.created => {
                let hint = hints_as.map(|node| hint(node, appended));
                notify(&mut tx, hint.as_slice()).await?;
                tx.commit().await.map_err(db)?;
            }
            _ => tx.rollback().await.map_err(db)?,
        }
        return Ok(vec![result]);
    }
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by_key(|&i| batch[i].room_id);
    let mut results: Vec<Option<Result<Appended, StoreError>>> =
        std::iter::repeat_with(|| None).take(batch.len()).collect();
    let mut hints = Vec::new();
    let mut tx = pool.begin().await.map_err(db)?;
    for i in order {
        let message = &batch[i];
        let mut savepoint = sqlx::Connection::begin(&mut *tx).await.map_err(db)?;
        let result = append(&mut savepoint, channels, message).await;
        match &result {
            Ok(appended) if appended.created => {
                savepoint.commit().await.map_err(db)?;
                hints.extend(hints_as.map(|node| hint(node, appended)));
            }
            // A repeat gives back the seq it took; a failure leaves nothing behind.
            _ => savepoint.rollback().await.map_err(db)?,
        }
        results[i] = Some(result);
    }
    notify(&mut tx, &hints).await?;
    tx.commit().await.map_err(db)?;
    Ok(results.into_iter().flatten().collect())
}

/// The hint that tells other nodes about a new message.
fn hint(node: NodeId, appended: &Appended) -> Hint {
    Hint {
        origin: node,
        room: Some(appended.message.room_id),
        kind: HintKind::Message {
            seq: appended.message.seq,
        },
    }
}

/// Sends the hints inside the transaction, so PostgreSQL delivers them exactly when the
/// messages commit, and never for messages that did not.
async fn notify(conn: &mut PgConnection, hints: &[Hint]) -> Result<(), StoreError> {
    for payload in crate::notifier::payloads(hints) {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(crate::notifier::CHANNEL)
            .bind(payload)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    Ok(())
}

/// Appends one message inside the caller's transaction; a repeated `client_id` returns the
/// original (the caller rolls back what this did) and stores nothing.
async fn append(
    conn: &mut PgConnection,
    channels: &Channels,
    message: &NewMessage,
) -> Result<Appended, StoreError> {
    // Taking the room's next position first locks its row until commit: every other append
    // to the room, from any node, waits here, so seqs are handed out one at a time and
    // without gaps, and what this transaction reads next includes every earlier append.
    let created_at = from_micros(micros(message.created_at));
    let bump = Query::update()
        .table(Rooms::Table)
        .values([
            (Rooms::LastSeq, Expr::col(Rooms::LastSeq).add(1)),
            (Rooms::Rev, Expr::col(Rooms::Rev).add(1)),
            (Rooms::LastMessageAt, created_at.into()),
        ])
        .and_where(Expr::col(Rooms::Id).eq(message.room_id.0))
        .returning(Query::returning().columns([Rooms::LastSeq, Rooms::Rev]))
        .to_owned();
    let position: Option<(i64, i64)> = fetch_optional(&mut *conn, &bump).await.map_err(db)?;
    let (seq, rev) = position.ok_or(StoreError::NotFound)?;

    if let Some(client_id) = &message.client_id {
        let q = select_messages()
            .and_where(in_room(message.room_id))
            .and_where(Expr::col((Messages::Table, Messages::SenderId)).eq(message.sender_id.0))
            .and_where(Expr::col((Messages::Table, Messages::ClientId)).eq(client_id.as_str()))
            .to_owned();
        if let Some(original) = fetch_messages(&mut *conn, &q).await?.pop() {
            // The caller's savepoint rolls back, giving the seq and rev taken above back.
            return Ok(Appended {
                message: original,
                created: false,
            });
        }
    }

    // After the repeat check, so a retry returns its original even when its upload is gone
    // since. A missing upload stores nothing: returning rolls the seq taken above back. The
    // upload cannot be deleted until the message commits.
    let attachment = match message.attachment {
        Some(id) => {
            let upload = uploads::locked(&mut *conn, id).await?;
            Some(Attachment::of(&upload.ok_or(StoreError::NotFound)?))
        }
        None => None,
    };

    let insert = Query::insert()
        .into_table(Messages::Table)
        .columns([
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
            Messages::Search,
            Messages::AttachmentId,
        ])
        .values([
            message.room_id.0.into(),
            seq.into(),
            message.id.0.into(),
            message.sender_id.0.into(),
            message.kind.as_str().into(),
            message.body.as_ref().map(|b| b.as_str()).into(),
            message.client_id.as_ref().map(ClientId::as_str).into(),
            message.reply_to.map(|m| m.0).into(),
            message.thread_id.map(|m| m.0).into(),
            mentions_array(&message.mentions),
            created_at.into(),
            rev.into(),
            search::indexed(message.body.as_ref().map(|b| b.as_str())),
            message.attachment.map(|u| u.0).into(),
        ])
        .map_err(StoreError::backend)?
        .to_owned();
    execute(&mut *conn, &insert).await.map_err(db)?;
    insert_mentions(&mut *conn, message.room_id, Seq(seq), &message.mentions).await?;

    // The sender has seen what they wrote. GREATEST keeps a watermark from moving
    // backwards; a sender without a membership row has no watermark to move.
    let watermarks = Query::update()
        .table(Memberships::Table)
        .values([
            (
                Memberships::ReadSeq,
                Func::greatest([Expr::col(Memberships::ReadSeq).into(), seq.into()]).into(),
            ),
            (
                Memberships::DeliveredSeq,
                Func::greatest([Expr::col(Memberships::DeliveredSeq).into(), seq.into()]).into(),
            ),
        ])
        .and_where(Expr::col(Memberships::RoomId).eq(message.room_id.0))
        .and_where(Expr::col(Memberships::UserId).eq(message.sender_id.0))
        .to_owned();
    execute(&mut *conn, &watermarks).await.map_err(db)?;

    let created = Message {
        id: message.id,
        room_id: message.room_id,
        seq: Seq(seq),
        rev: Rev(rev),
        sender_id: message.sender_id,
        kind: message.kind,
        body: message.body.as_ref().map(|b| b.as_str().to_owned()),
        attachment,
        reply_to: message.reply_to,
        thread_id: message.thread_id,
        thread: None,
        mentions: message.mentions.clone(),
        client_id: message.client_id.clone(),
        created_at,
        edited_at: None,
        deleted: false,
        reactions: Vec::new(),
    };
    let event = Envelope::of_message(EventType::MessageCreated, &created);
    outbox::record(conn, channels, &[event]).await?;
    Ok(Appended {
        message: created,
        created: true,
    })
}

#[async_trait]
impl MessageStore for PgStore {
    #[tracing::instrument(name = "db.message.append", skip_all, err)]
    async fn append_message(&self, message: &NewMessage) -> Result<Appended, StoreError> {
        self.appender(message.room_id)
            .submit(message.clone())
            .await
            .unwrap_or_else(|| {
                Err(StoreError::Unavailable(
                    "the store's writer has stopped".into(),
                ))
            })
    }

    #[tracing::instrument(name = "db.message.count", skip_all, err)]
    async fn message_count(&self, room: RoomId) -> Result<i64, StoreError> {
        let q = Query::select()
            .expr(Expr::col(Messages::Seq).count())
            .from(Messages::Table)
            .and_where(Expr::col(Messages::RoomId).eq(room.0))
            .and_where(Expr::col(Messages::Deleted).eq(false))
            .to_owned();
        let row: Option<(i64,)> = fetch_optional(&self.pool, &q).await.map_err(db)?;
        Ok(row.map_or(0, |(n,)| n))
    }

    #[tracing::instrument(name = "db.message.get", skip_all, err)]
    async fn message(&self, room: RoomId, id: MessageId) -> Result<Option<Message>, StoreError> {
        let q = select_messages()
            .and_where(in_room(room))
            .and_where(Expr::col((Messages::Table, Messages::Id)).eq(id.0))
            .to_owned();
        Ok(read_messages(&self.pool, &q).await?.pop())
    }

    #[tracing::instrument(name = "db.message.history", skip_all, err)]
    async fn history(
        &self,
        room: RoomId,
        anchor: HistoryAnchor,
        limit: u32,
    ) -> Result<HistoryPage, StoreError> {
        let seq = (Messages::Table, Messages::Seq);
        let mut q = select_messages();
        q.and_where(in_room(room));
        let newest_first = match anchor {
            HistoryAnchor::Latest => true,
            HistoryAnchor::Before(before) => {
                q.and_where(Expr::col(seq).lt(before.0));
                true
            }
            HistoryAnchor::After(after) => {
                q.and_where(Expr::col(seq).gt(after.0));
                false
            }
        };
        let order = if newest_first {
            Order::Desc
        } else {
            Order::Asc
        };
        // One more than asked for tells whether there is more beyond the page.
        q.order_by(seq, order).limit(u64::from(limit) + 1);
        let mut messages = read_messages(&self.pool, &q).await?;
        let has_more = messages.len() > limit as usize;
        messages.truncate(limit as usize);
        if newest_first {
            messages.reverse();
        }
        Ok(HistoryPage { messages, has_more })
    }

    #[tracing::instrument(name = "db.message.changed_since", skip_all, err)]
    async fn changed_since(
        &self,
        room: RoomId,
        through: Seq,
        after_rev: Rev,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let q = select_messages()
            .and_where(in_room(room))
            .and_where(Expr::col((Messages::Table, Messages::Seq)).lte(through.0))
            .and_where(Expr::col((Messages::Table, Messages::Rev)).gt(after_rev.0))
            .order_by((Messages::Table, Messages::Rev), Order::Asc)
            .limit(u64::from(limit))
            .to_owned();
        read_messages(&self.pool, &q).await
    }

    #[tracing::instrument(name = "db.message.thread", skip_all, err)]
    async fn thread(
        &self,
        room: RoomId,
        root: MessageId,
        after: Seq,
        limit: u32,
    ) -> Result<HistoryPage, StoreError> {
        let seq = (Messages::Table, Messages::Seq);
        // One more than asked for tells whether more follow.
        let q = select_messages()
            .and_where(in_room(room))
            .and_where(Expr::col((Messages::Table, Messages::ThreadId)).eq(root.0))
            .and_where(Expr::col(seq).gt(after.0))
            .order_by(seq, Order::Asc)
            .limit(u64::from(limit) + 1)
            .to_owned();
        let mut messages = read_messages(&self.pool, &q).await?;
        let has_more = messages.len() > limit as usize;
        messages.truncate(limit as usize);
        Ok(HistoryPage { messages, has_more })
    }

    #[tracing::instrument(name = "db.message.edit", skip_all, err)]
    async fn edit_message(&self, edit: &MessageEdit) -> Result<Option<Message>, StoreError> {
        changes::edit(&self.pool, &self.channels, edit).await
    }

    #[tracing::instrument(name = "db.message.delete", skip_all, err)]
    async fn delete_message(
        &self,
        room: RoomId,
        id: MessageId,
    ) -> Result<Option<Message>, StoreError> {
        changes::delete(&self.pool, &self.channels, room, id).await
    }

    #[tracing::instrument(name = "db.message.react", skip_all, err)]
    async fn set_reaction(
        &self,
        edit: &ReactionEdit,
    ) -> Result<Option<ReactionChange>, StoreError> {
        reactions::set(&self.pool, &self.channels, edit).await
    }

    #[tracing::instrument(name = "db.message.reactions_by", skip_all, err)]
    async fn reactions_by(
        &self,
        room: RoomId,
        user: UserId,
        seqs: &[Seq],
    ) -> Result<Vec<(Seq, Emoji)>, StoreError> {
        reactions::of_user(&self.pool, room, user, seqs).await
    }

    #[tracing::instrument(name = "db.message.search", skip_all, err)]
    async fn search_messages(
        &self,
        user: UserId,
        query: &SearchQuery,
        room: Option<RoomId>,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        search::search(&self.pool, user, query, room, after, limit).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chat_core::domain::ClientId;
    use chat_core::ports::RoomStore;

    use super::*;
    use crate::test_support::{at, post, room, scratch, second_node, text, user};

    #[tokio::test]
    async fn appends_from_two_nodes_leave_no_gaps() {
        let Some(one) = scratch().await else { return };
        let two = second_node(&one).await;
        let alice = user(&one, "alice").await;
        let room = room(&one, &[alice], at(0)).await;
        let nodes = [Arc::new(one), Arc::new(two)];
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let node = nodes[i % 2].clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    for _ in 0..25 {
                        let appended = node
                            .append_message(&text(room, alice, Vec::new()))
                            .await
                            .unwrap();
                        got.push(appended.message.seq.0);
                    }
                    got
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all.sort_unstable();
        assert_eq!(all, (1..=200).collect::<Vec<i64>>());
        let stored = nodes[1]
            .history(room, HistoryAnchor::After(Seq::ZERO), 500)
            .await
            .unwrap();
        let seqs: Vec<i64> = stored.messages.iter().map(|m| m.seq.0).collect();
        assert_eq!(seqs, all);
        let r = nodes[0].room(room).await.unwrap().unwrap();
        assert_eq!((r.last_seq, r.rev), (Seq(200), Rev(200)));
    }

    #[tokio::test]
    async fn a_client_id_racing_on_two_nodes_is_stored_once_without_a_gap() {
        let Some(one) = scratch().await else { return };
        let two = second_node(&one).await;
        let alice = user(&one, "alice").await;
        let room = room(&one, &[alice], at(0)).await;
        let mut message = text(room, alice, Vec::new());
        message.client_id = Some(ClientId::parse("retry-1").unwrap());
        let tasks: Vec<_> = [Arc::new(one.clone()), Arc::new(two)]
            .into_iter()
            .cycle()
            .take(6)
            .map(|node| {
                let mut attempt = message.clone();
                attempt.id = MessageId(Uuid::new_v4());
                tokio::spawn(async move { node.append_message(&attempt).await.unwrap() })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        assert_eq!(results.iter().filter(|a| a.created).count(), 1);
        assert!(results.iter().all(|a| a.message == results[0].message));
        // The attempts that found the original gave their seq back.
        let next = one
            .append_message(&text(room, alice, Vec::new()))
            .await
            .unwrap();
        assert_eq!(next.message.seq, Seq(2));
    }

    #[tokio::test]
    async fn deleted_rows_read_back_as_tombstones_and_are_not_unread() {
        let Some(store) = scratch().await else { return };
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        let room = room(&store, &[alice, bob], at(0)).await;
        let gone = post(&store, room, bob).await;
        post(&store, room, bob).await;
        let reaction = ReactionEdit {
            room_id: room,
            message_id: gone,
            user_id: alice,
            emoji: Emoji::parse("👍").unwrap(),
            add: true,
            at: at(20),
        };
        store.set_reaction(&reaction).await.unwrap();
        sqlx::query("UPDATE messages SET deleted = true WHERE id = $1")
            .bind(gone.0)
            .execute(store.pool())
            .await
            .unwrap();

        let tombstone = store.message(room, gone).await.unwrap().unwrap();
        assert!(tombstone.deleted);
        assert_eq!(tombstone.body, None);
        assert!(tombstone.reactions.is_empty());
        let items = store.rooms_of_user(alice, false, None, 50).await.unwrap();
        assert_eq!(items[0].membership.unread_count, 1);
    }

    #[tokio::test]
    async fn mentions_read_back_as_written_and_count_once() {
        let Some(store) = scratch().await else { return };
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        let room = room(&store, &[alice, bob], at(0)).await;
        let appended = store
            .append_message(&text(room, bob, vec![bob, alice, alice]))
            .await
            .unwrap();
        let stored = store
            .message(room, appended.message.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored, appended.message);
        let items = store.rooms_of_user(alice, false, None, 50).await.unwrap();
        assert_eq!(items[0].membership.mention_count, 1);
    }

    #[tokio::test]
    async fn times_keep_their_microseconds() {
        let Some(store) = scratch().await else { return };
        let alice = user(&store, "alice").await;
        let room = room(&store, &[alice], at(0)).await;
        let mut message = text(room, alice, Vec::new());
        message.created_at = at(5) + time::Duration::nanoseconds(123_456_789);
        let appended = store.append_message(&message).await.unwrap().message;
        assert_eq!(
            appended.created_at,
            at(5) + time::Duration::microseconds(123_456)
        );
        let stored = store.message(room, appended.id).await.unwrap().unwrap();
        assert_eq!(stored.created_at, appended.created_at);
    }

    #[tokio::test]
    async fn a_history_page_of_zero_only_tells_whether_more_exist() {
        let Some(store) = scratch().await else { return };
        let alice = user(&store, "alice").await;
        let room = room(&store, &[alice], at(0)).await;
        post(&store, room, alice).await;
        let page = store.history(room, HistoryAnchor::Latest, 0).await.unwrap();
        assert!(page.messages.is_empty() && page.has_more);
    }
}
