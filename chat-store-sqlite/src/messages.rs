//! Messages: appending, reading (history, threads, changes) and changing them (edits, deletes,
//! reactions). The statements of reactions and search live in their own modules.

use std::collections::HashMap;

use async_trait::async_trait;
use chat_core::domain::{
    from_micros, micros, Appended, ClientId, Cursor, Emoji, HistoryAnchor, HistoryPage, Message,
    MessageEdit, MessageId, MessageKind, NewMessage, ReactionChange, ReactionEdit, Rev, RoomId,
    SearchQuery, Seq, ThreadSummary, UserId,
};
use chat_core::outbox::{Envelope, EventType};
use chat_core::ports::MessageStore;
use chat_core::StoreError;
use sea_query::{Asterisk, Expr, Func, Order, Query, SelectStatement, SimpleExpr};
use sqlx::SqliteConnection;
use uuid::Uuid;

use crate::error::{corrupt, db};
use crate::outbox;
use crate::query::{execute, fetch_all, fetch_optional};
use crate::reactions;
use crate::schema::{Derived, Mentions, Messages, Rooms};
use crate::search;
use crate::store::SqliteStore;
use crate::uploads::{self, AttachmentRow};

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
    mentions: String,
    created_at: i64,
    edited_at: Option<i64>,
    deleted: bool,
    reply_count: i64,
    last_reply_at: Option<i64>,
    #[sqlx(flatten)]
    attachment: AttachmentRow,
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
            thread: (row.reply_count > 0).then(|| ThreadSummary {
                reply_count: row.reply_count,
                last_reply_at: row.last_reply_at.map(from_micros),
            }),
            mentions: decode_mentions(&row.mentions)?,
            client_id,
            created_at: from_micros(row.created_at),
            edited_at: row.edited_at.map(from_micros),
            deleted: row.deleted,
            reactions: Vec::new(),
        })
    }
}

/// The mentioned ids as the `messages.mentions` column keeps them: comma-separated.
pub(crate) fn encode_mentions(mentions: &[UserId]) -> String {
    mentions
        .iter()
        .map(|u| u.0.hyphenated().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn decode_mentions(s: &str) -> Result<Vec<UserId>, StoreError> {
    s.split(',')
        .filter(|part| !part.is_empty())
        .map(|part| {
            Uuid::parse_str(part)
                .map(UserId)
                .map_err(|_| corrupt("messages.mentions", s))
        })
        .collect()
}

/// A subquery over the replies in the thread of the outer query's message.
fn replies(aggregate: SimpleExpr) -> SimpleExpr {
    let q = Query::select()
        .expr(aggregate)
        .from_as(Messages::Table, Derived::Replies)
        .and_where(
            Expr::col((Derived::Replies, Messages::RoomId))
                .equals((Messages::Table, Messages::RoomId)),
        )
        .and_where(
            Expr::col((Derived::Replies, Messages::ThreadId))
                .equals((Messages::Table, Messages::Id)),
        )
        .to_owned();
    SimpleExpr::SubQuery(None, Box::new(q.into_sub_query_statement()))
}

/// Selects [`MessageRow`]s from `messages`, with their thread summaries and attachments.
pub(crate) fn select_messages() -> SelectStatement {
    let mut q = Query::select();
    q.columns(MESSAGE_COLUMNS.map(|c| (Messages::Table, c)))
        .expr_as(replies(Expr::col(Asterisk).count()), Derived::ReplyCount)
        .expr_as(
            replies(Func::max(Expr::col((Derived::Replies, Messages::CreatedAt))).into()),
            Derived::LastReplyAt,
        )
        .from(Messages::Table);
    uploads::join_attachments(&mut q);
    q
}

fn in_room(room: RoomId) -> SimpleExpr {
    Expr::col((Messages::Table, Messages::RoomId)).eq(room.0)
}

/// The messages a [`select_messages`] statement selects, with their reactions.
pub(crate) async fn read_messages(
    conn: &mut SqliteConnection,
    q: &SelectStatement,
) -> Result<Vec<Message>, StoreError> {
    let rows: Vec<MessageRow> = fetch_all(&mut *conn, q).await.map_err(db)?;
    let mut messages = rows
        .into_iter()
        .map(Message::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    reactions::attach(conn, &mut messages).await?;
    Ok(messages)
}

/// The message at `seq`, read back by the transaction that just changed it.
async fn message_at(
    conn: &mut SqliteConnection,
    room: RoomId,
    seq: i64,
) -> Result<Message, StoreError> {
    let q = select_messages()
        .and_where(in_room(room))
        .and_where(Expr::col((Messages::Table, Messages::Seq)).eq(seq))
        .to_owned();
    read_messages(conn, &q)
        .await?
        .pop()
        .ok_or(StoreError::NotFound)
}

/// A message that is not deleted, as the writes that change it need it.
struct LiveMessage {
    seq: i64,
    /// Who its text mentions: exactly the keys of its rows in `mentions`.
    mentions: Vec<UserId>,
}

/// The live message with this id in this room; `None` when there is none or it is deleted.
async fn live_message(
    conn: &mut SqliteConnection,
    room: RoomId,
    id: MessageId,
) -> Result<Option<LiveMessage>, StoreError> {
    let q = Query::select()
        .columns([Messages::Seq, Messages::Mentions])
        .from(Messages::Table)
        .and_where(Expr::col(Messages::RoomId).eq(room.0))
        .and_where(Expr::col(Messages::Id).eq(id.0))
        .and_where(Expr::col(Messages::Deleted).eq(false))
        .to_owned();
    let row: Option<(i64, String)> = fetch_optional(conn, &q).await.map_err(db)?;
    row.map(|(seq, mentions)| {
        Ok(LiveMessage {
            seq,
            mentions: decode_mentions(&mentions)?,
        })
    })
    .transpose()
}

/// Takes the room's next `rev` for a change to one of its messages. Unlike an append it moves
/// neither `last_seq` nor `last_message_at`: a change is not new activity.
async fn next_rev(conn: &mut SqliteConnection, room: RoomId) -> Result<i64, StoreError> {
    let bump = Query::update()
        .table(Rooms::Table)
        .value(Rooms::Rev, Expr::col(Rooms::Rev).add(1))
        .and_where(Expr::col(Rooms::Id).eq(room.0))
        .returning_col(Rooms::Rev)
        .to_owned();
    let rev: Option<(i64,)> = fetch_optional(conn, &bump).await.map_err(db)?;
    rev.map(|(rev,)| rev).ok_or(StoreError::NotFound)
}

/// Writes the `mentions` rows of a message: one per mentioned user, however often named.
async fn insert_mentions(
    conn: &mut SqliteConnection,
    room: RoomId,
    seq: i64,
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
            .values([room.0.into(), seq.into(), user.0.into()])
            .map_err(StoreError::backend)?;
    }
    execute(conn, &insert).await.map_err(db)?;
    Ok(())
}

/// Removes the `mentions` rows of a message. The key leads with the user, so the statement
/// names the users the message mentioned rather than scanning the room's mentions for its seq.
async fn delete_mentions(
    conn: &mut SqliteConnection,
    room: RoomId,
    seq: i64,
    mentions: &[UserId],
) -> Result<(), StoreError> {
    if mentions.is_empty() {
        return Ok(());
    }
    let delete = Query::delete()
        .from_table(Mentions::Table)
        .and_where(Expr::col(Mentions::RoomId).eq(room.0))
        .and_where(Expr::col(Mentions::UserId).is_in(mentions.iter().map(|u| u.0)))
        .and_where(Expr::col(Mentions::Seq).eq(seq))
        .to_owned();
    execute(conn, &delete).await.map_err(db)?;
    Ok(())
}

/// The newest message of each of the given rooms that has one.
pub(crate) async fn last_messages(
    conn: &mut SqliteConnection,
    rooms: impl IntoIterator<Item = RoomId>,
) -> Result<HashMap<RoomId, Message>, StoreError> {
    let ids: Vec<Uuid> = rooms.into_iter().map(|r| r.0).collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let q = select_messages()
        .inner_join(
            Rooms::Table,
            Expr::col((Rooms::Table, Rooms::Id))
                .equals((Messages::Table, Messages::RoomId))
                .and(
                    Expr::col((Rooms::Table, Rooms::LastSeq))
                        .equals((Messages::Table, Messages::Seq)),
                ),
        )
        .and_where(Expr::col((Messages::Table, Messages::RoomId)).is_in(ids))
        .to_owned();
    let messages = read_messages(conn, &q).await?;
    Ok(messages.into_iter().map(|m| (m.room_id, m)).collect())
}

#[async_trait]
impl MessageStore for SqliteStore {
    #[tracing::instrument(name = "db.message.append", skip_all, err)]
    async fn append_message(&self, message: &NewMessage) -> Result<Appended, StoreError> {
        self.appender
            .submit(message.clone())
            .await
            .unwrap_or_else(|| {
                Err(StoreError::Unavailable(
                    "the store's writer has stopped".into(),
                ))
            })
    }

    #[tracing::instrument(name = "db.message.get", skip_all, err)]
    async fn message(&self, room: RoomId, id: MessageId) -> Result<Option<Message>, StoreError> {
        let q = select_messages()
            .and_where(in_room(room))
            .and_where(Expr::col((Messages::Table, Messages::Id)).eq(id.0))
            .to_owned();
        // One snapshot for the message and its reactions.
        let mut tx = self.read().await?;
        let message = read_messages(&mut tx, &q).await?.pop();
        tx.commit().await.map_err(db)?;
        Ok(message)
    }

    #[tracing::instrument(name = "db.message.count", skip_all, err)]
    async fn message_count(&self, room: RoomId) -> Result<i64, StoreError> {
        let q = Query::select()
            .expr(Expr::col(Messages::Seq).count())
            .from(Messages::Table)
            .and_where(Expr::col(Messages::RoomId).eq(room.0))
            .and_where(Expr::col(Messages::Deleted).eq(false))
            .to_owned();
        let row: Option<(i64,)> = fetch_optional(&self.reader, &q).await.map_err(db)?;
        Ok(row.map_or(0, |(n,)| n))
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
        let mut tx = self.read().await?;
        let mut messages = read_messages(&mut tx, &q).await?;
        tx.commit().await.map_err(db)?;
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
        let mut tx = self.read().await?;
        let messages = read_messages(&mut tx, &q).await?;
        tx.commit().await.map_err(db)?;
        Ok(messages)
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
        let q = select_messages()
            .and_where(in_room(room))
            .and_where(Expr::col((Messages::Table, Messages::ThreadId)).eq(root.0))
            .and_where(Expr::col(seq).gt(after.0))
            .order_by(seq, Order::Asc)
            // One more than asked for tells whether more replies follow.
            .limit(u64::from(limit) + 1)
            .to_owned();
        let mut tx = self.read().await?;
        let mut messages = read_messages(&mut tx, &q).await?;
        tx.commit().await.map_err(db)?;
        let has_more = messages.len() > limit as usize;
        messages.truncate(limit as usize);
        Ok(HistoryPage { messages, has_more })
    }

    #[tracing::instrument(name = "db.message.edit", skip_all, err)]
    async fn edit_message(&self, edit: &MessageEdit) -> Result<Option<Message>, StoreError> {
        let mut tx = self.write().await?;
        let Some(live) = live_message(&mut tx, edit.room_id, edit.id).await? else {
            tx.rollback().await.map_err(db)?;
            return Ok(None);
        };
        let rev = next_rev(&mut tx, edit.room_id).await?;
        let update = Query::update()
            .table(Messages::Table)
            .values([
                (Messages::Body, edit.body.as_str().into()),
                (Messages::Mentions, encode_mentions(&edit.mentions).into()),
                (Messages::EditedAt, micros(edit.edited_at).into()),
                (Messages::Rev, rev.into()),
            ])
            .and_where(Expr::col(Messages::RoomId).eq(edit.room_id.0))
            .and_where(Expr::col(Messages::Seq).eq(live.seq))
            .to_owned();
        execute(&mut *tx, &update).await.map_err(db)?;
        delete_mentions(&mut tx, edit.room_id, live.seq, &live.mentions).await?;
        insert_mentions(&mut tx, edit.room_id, live.seq, &edit.mentions).await?;
        search::index(&mut tx, edit.room_id, live.seq, edit.body.as_str()).await?;
        let message = message_at(&mut tx, edit.room_id, live.seq).await?;
        let event = Envelope::of_message(EventType::MessageUpdated, &message);
        outbox::record(&mut tx, &self.channels, &[event]).await?;
        tx.commit().await.map_err(db)?;
        Ok(Some(message))
    }

    #[tracing::instrument(name = "db.message.delete", skip_all, err)]
    async fn delete_message(
        &self,
        room: RoomId,
        id: MessageId,
    ) -> Result<Option<Message>, StoreError> {
        let mut tx = self.write().await?;
        let Some(live) = live_message(&mut tx, room, id).await? else {
            tx.rollback().await.map_err(db)?;
            return Ok(None);
        };
        let rev = next_rev(&mut tx, room).await?;
        // The row stays as the tombstone that keeps the message's place in history and its
        // thread; what it said, the upload it carried, who it named and who reacted go.
        let update = Query::update()
            .table(Messages::Table)
            .values([
                (Messages::Deleted, true.into()),
                (Messages::Body, Option::<String>::None.into()),
                (Messages::AttachmentId, Option::<Uuid>::None.into()),
                (Messages::Mentions, "".into()),
                (Messages::Rev, rev.into()),
            ])
            .and_where(Expr::col(Messages::RoomId).eq(room.0))
            .and_where(Expr::col(Messages::Seq).eq(live.seq))
            .to_owned();
        execute(&mut *tx, &update).await.map_err(db)?;
        delete_mentions(&mut tx, room, live.seq, &live.mentions).await?;
        reactions::clear(&mut tx, room, live.seq).await?;
        search::unindex(&mut tx, room, live.seq).await?;
        let tombstone = message_at(&mut tx, room, live.seq).await?;
        let event = Envelope::of_message(EventType::MessageDeleted, &tombstone);
        outbox::record(&mut tx, &self.channels, &[event]).await?;
        tx.commit().await.map_err(db)?;
        Ok(Some(tombstone))
    }

    #[tracing::instrument(name = "db.message.react", skip_all, err)]
    async fn set_reaction(
        &self,
        edit: &ReactionEdit,
    ) -> Result<Option<ReactionChange>, StoreError> {
        let mut tx = self.write().await?;
        let Some(live) = live_message(&mut tx, edit.room_id, edit.message_id).await? else {
            tx.rollback().await.map_err(db)?;
            return Ok(None);
        };
        // The rev is taken before the change, which a new emoji's first use records. Only a
        // change keeps it: a repeated add or remove is nothing to sync, and rolls it back below.
        let rev = next_rev(&mut tx, edit.room_id).await?;
        let changed = if edit.add {
            reactions::add(&mut tx, edit, live.seq, rev).await?
        } else {
            reactions::remove(&mut tx, edit, live.seq).await?
        };
        if changed {
            let update = Query::update()
                .table(Messages::Table)
                .value(Messages::Rev, rev)
                .and_where(Expr::col(Messages::RoomId).eq(edit.room_id.0))
                .and_where(Expr::col(Messages::Seq).eq(live.seq))
                .to_owned();
            execute(&mut *tx, &update).await.map_err(db)?;
        }
        let message = message_at(&mut tx, edit.room_id, live.seq).await?;
        if changed {
            let event = Envelope::of_reaction(edit, &message);
            outbox::record(&mut tx, &self.channels, &[event]).await?;
            tx.commit().await.map_err(db)?;
        } else {
            tx.rollback().await.map_err(db)?;
        }
        Ok(Some(ReactionChange { message, changed }))
    }

    #[tracing::instrument(name = "db.message.reactions_by", skip_all, err)]
    async fn reactions_by(
        &self,
        room: RoomId,
        user: UserId,
        seqs: &[Seq],
    ) -> Result<Vec<(Seq, Emoji)>, StoreError> {
        reactions::by_user(&self.reader, room, user, seqs).await
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
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let q = search::select_matches(user, query, room, after, limit);
        let mut tx = self.read().await?;
        let messages = read_messages(&mut tx, &q).await?;
        tx.commit().await.map_err(db)?;
        Ok(messages)
    }
}

#[cfg(test)]
mod tests {
    use chat_core::ports::RoomStore;

    use super::*;
    use crate::test_support::{at, post, room, scratch, text, user};

    #[tokio::test]
    async fn deleted_rows_read_back_as_tombstones_and_are_not_unread() {
        let (_dir, store) = scratch().await;
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        let room = room(&store, &[alice, bob], at(0)).await;
        let gone = post(&store, room, bob).await;
        post(&store, room, bob).await;
        sqlx::query("UPDATE messages SET deleted = 1 WHERE id = ?")
            .bind(gone.0)
            .execute(&store.writer)
            .await
            .unwrap();

        let tombstone = store.message(room, gone).await.unwrap().unwrap();
        assert!(tombstone.deleted);
        assert_eq!(tombstone.body, None);
        let items = store.rooms_of_user(alice, false, None, 50).await.unwrap();
        assert_eq!(items[0].membership.unread_count, 1);
    }

    #[tokio::test]
    async fn a_user_mentioned_twice_is_one_unread_mention() {
        let (_dir, store) = scratch().await;
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        let room = room(&store, &[alice, bob], at(0)).await;
        let appended = store
            .append_message(&text(room, bob, vec![alice, alice]))
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
    async fn a_history_page_of_zero_only_tells_whether_more_exist() {
        let (_dir, store) = scratch().await;
        let alice = user(&store, "alice").await;
        let room = room(&store, &[alice], at(0)).await;
        post(&store, room, alice).await;
        let page = store.history(room, HistoryAnchor::Latest, 0).await.unwrap();
        assert!(page.messages.is_empty() && page.has_more);
    }
}
