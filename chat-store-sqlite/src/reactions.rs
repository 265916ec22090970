//! Reactions: which user reacted to which message with what, and the counts per emoji that
//! messages are read with.

use std::collections::{BTreeMap, HashMap};

use chat_core::domain::{micros, Emoji, Message, Reaction, ReactionEdit, RoomId, Seq, UserId};
use chat_core::StoreError;
use sea_query::{Asterisk, Condition, Expr, Func, OnConflict, Order, Query, SimpleExpr};
use sqlx::{Executor, Sqlite, SqliteConnection};
use uuid::Uuid;

use crate::error::{corrupt, db};
use crate::query::{execute, fetch_all};
use crate::schema::{Derived, Reactions};

#[derive(Debug, sqlx::FromRow)]
struct CountRow {
    room_id: Uuid,
    seq: i64,
    emoji: String,
    reaction_count: i64,
}

fn parse_emoji(raw: String) -> Result<Emoji, StoreError> {
    Emoji::parse(&raw).map_err(|_| corrupt("reactions.emoji", raw))
}

/// Fills in the reactions of the live messages among `messages`: per emoji, how many users
/// reacted with it, in the order of its first use (its `first_rev`, which no other emoji on the
/// message shares, so reactions made in the same microsecond keep their order too). One
/// statement for all the messages, whatever rooms they are in; tombstones keep none.
pub(crate) async fn attach(
    conn: &mut SqliteConnection,
    messages: &mut [Message],
) -> Result<(), StoreError> {
    let mut seqs_by_room: BTreeMap<Uuid, Vec<i64>> = BTreeMap::new();
    for m in messages.iter().filter(|m| !m.deleted) {
        seqs_by_room.entry(m.room_id.0).or_default().push(m.seq.0);
    }
    if seqs_by_room.is_empty() {
        return Ok(());
    }
    // One `room = ? AND seq IN (...)` term per room: each is a range of the key. (A row-value
    // `(room, seq) IN (...)` would read the whole table.)
    let of_messages = seqs_by_room
        .into_iter()
        .fold(Condition::any(), |any, (room, seqs)| {
            any.add(
                Expr::col(Reactions::RoomId)
                    .eq(room)
                    .and(Expr::col(Reactions::Seq).is_in(seqs)),
            )
        });
    let q = Query::select()
        .columns([Reactions::RoomId, Reactions::Seq, Reactions::Emoji])
        .expr_as(Expr::col(Asterisk).count(), Derived::ReactionCount)
        .from(Reactions::Table)
        .cond_where(of_messages)
        .group_by_columns([Reactions::RoomId, Reactions::Seq, Reactions::Emoji])
        // All rows of one emoji on a message share `first_rev`; the emoji only breaks ties that
        // no write makes.
        .order_by_expr(Func::min(Expr::col(Reactions::FirstRev)).into(), Order::Asc)
        .order_by(Reactions::Emoji, Order::Asc)
        .to_owned();
    let rows: Vec<CountRow> = fetch_all(conn, &q).await.map_err(db)?;
    let mut by_message: HashMap<(Uuid, i64), Vec<Reaction>> = HashMap::new();
    for row in rows {
        by_message
            .entry((row.room_id, row.seq))
            .or_default()
            .push(Reaction {
                emoji: parse_emoji(row.emoji)?,
                count: row.reaction_count,
                // Counts are the same for every reader; the engine fills in `me` per reader.
                me: None,
            });
    }
    for m in messages.iter_mut() {
        if let Some(reactions) = by_message.remove(&(m.room_id.0, m.seq.0)) {
            m.reactions = reactions;
        }
    }
    Ok(())
}

/// Adds the user's reaction to the message at `seq`; `false` when it was already there. `rev`
/// is the room's rev this change takes: the emoji's first use, unless others still react with
/// it, whose first use it shares. (The write transaction holds the database: nobody takes the
/// emoji back in between.)
pub(crate) async fn add(
    conn: &mut SqliteConnection,
    edit: &ReactionEdit,
    seq: i64,
    rev: i64,
) -> Result<bool, StoreError> {
    let first_use = Query::select()
        .expr(Func::min(Expr::col(Reactions::FirstRev)))
        .from(Reactions::Table)
        .and_where(Expr::col(Reactions::RoomId).eq(edit.room_id.0))
        .and_where(Expr::col(Reactions::Seq).eq(seq))
        .and_where(Expr::col(Reactions::Emoji).eq(edit.emoji.as_str()))
        .to_owned();
    let first_rev = Func::coalesce([
        SimpleExpr::SubQuery(None, Box::new(first_use.into_sub_query_statement())),
        rev.into(),
    ]);
    let insert = Query::insert()
        .into_table(Reactions::Table)
        .columns([
            Reactions::RoomId,
            Reactions::Seq,
            Reactions::Emoji,
            Reactions::UserId,
            Reactions::CreatedAt,
            Reactions::FirstRev,
        ])
        .values([
            edit.room_id.0.into(),
            seq.into(),
            edit.emoji.as_str().into(),
            edit.user_id.0.into(),
            micros(edit.at).into(),
            first_rev.into(),
        ])
        .map_err(StoreError::backend)?
        .on_conflict(
            OnConflict::columns([
                Reactions::RoomId,
                Reactions::Seq,
                Reactions::Emoji,
                Reactions::UserId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .to_owned();
    Ok(execute(conn, &insert).await.map_err(db)? > 0)
}

/// Takes back the user's reaction on the message at `seq`; `false` when there was none.
pub(crate) async fn remove(
    conn: &mut SqliteConnection,
    edit: &ReactionEdit,
    seq: i64,
) -> Result<bool, StoreError> {
    let delete = Query::delete()
        .from_table(Reactions::Table)
        .and_where(Expr::col(Reactions::RoomId).eq(edit.room_id.0))
        .and_where(Expr::col(Reactions::Seq).eq(seq))
        .and_where(Expr::col(Reactions::Emoji).eq(edit.emoji.as_str()))
        .and_where(Expr::col(Reactions::UserId).eq(edit.user_id.0))
        .to_owned();
    Ok(execute(conn, &delete).await.map_err(db)? > 0)
}

/// Removes every reaction on the message at `seq` (it is being deleted).
pub(crate) async fn clear(
    conn: &mut SqliteConnection,
    room: RoomId,
    seq: i64,
) -> Result<(), StoreError> {
    let delete = Query::delete()
        .from_table(Reactions::Table)
        .and_where(Expr::col(Reactions::RoomId).eq(room.0))
        .and_where(Expr::col(Reactions::Seq).eq(seq))
        .to_owned();
    execute(conn, &delete).await.map_err(db)?;
    Ok(())
}

/// The user's own reactions on the messages at `seqs`, by seq.
pub(crate) async fn by_user<'c, E>(
    exec: E,
    room: RoomId,
    user: UserId,
    seqs: &[Seq],
) -> Result<Vec<(Seq, Emoji)>, StoreError>
where
    E: Executor<'c, Database = Sqlite>,
{
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let q = Query::select()
        .columns([Reactions::Seq, Reactions::Emoji])
        .from(Reactions::Table)
        .and_where(Expr::col(Reactions::RoomId).eq(room.0))
        .and_where(Expr::col(Reactions::UserId).eq(user.0))
        .and_where(Expr::col(Reactions::Seq).is_in(seqs.iter().map(|s| s.0)))
        .order_by(Reactions::Seq, Order::Asc)
        .order_by(Reactions::Emoji, Order::Asc)
        .to_owned();
    let rows: Vec<(i64, String)> = fetch_all(exec, &q).await.map_err(db)?;
    rows.into_iter()
        .map(|(seq, emoji)| Ok((Seq(seq), parse_emoji(emoji)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use chat_core::domain::{HistoryAnchor, MessageId};
    use chat_core::ports::{MessageStore, RoomStore};
    use time::OffsetDateTime;

    use super::*;
    use crate::test_support::{at, post, room, scratch, user};
    use crate::SqliteStore;

    async fn set(
        store: &SqliteStore,
        room: RoomId,
        id: MessageId,
        user: UserId,
        emoji: &str,
        add: bool,
        when: OffsetDateTime,
    ) {
        let edit = ReactionEdit {
            room_id: room,
            message_id: id,
            user_id: user,
            emoji: Emoji::parse(emoji).unwrap(),
            add,
            at: when,
        };
        assert!(store.set_reaction(&edit).await.unwrap().unwrap().changed);
    }

    async fn react(
        store: &SqliteStore,
        room: RoomId,
        id: MessageId,
        user: UserId,
        emoji: &str,
        when: OffsetDateTime,
    ) {
        set(store, room, id, user, emoji, true, when).await;
    }

    fn counts(message: &Message) -> Vec<(&str, i64)> {
        message
            .reactions
            .iter()
            .map(|r| (r.emoji.as_str(), r.count))
            .collect()
    }

    #[tokio::test]
    async fn every_read_counts_reactions_in_order_of_first_use() {
        let (_dir, store) = scratch().await;
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        let room = room(&store, &[alice, bob], at(0)).await;
        let first = post(&store, room, alice).await;
        let last = post(&store, room, alice).await;
        // Used first, though it sorts after ":tada:" by name.
        react(&store, room, last, alice, "👍", at(20)).await;
        react(&store, room, last, bob, ":tada:", at(21)).await;
        react(&store, room, last, bob, "👍", at(22)).await;
        react(&store, room, first, bob, ":tada:", at(23)).await;
        let expected = [("👍", 2), (":tada:", 1)];

        let message = store.message(room, last).await.unwrap().unwrap();
        assert_eq!(counts(&message), expected);
        let page = store
            .history(room, HistoryAnchor::Latest, 10)
            .await
            .unwrap();
        assert_eq!(counts(&page.messages[0]), [(":tada:", 1)]);
        assert_eq!(counts(&page.messages[1]), expected);
        let listed = store.rooms_of_user(bob, false, None, 10).await.unwrap();
        let shown = listed[0].room.last_message.as_deref().unwrap();
        assert_eq!(counts(shown), expected);

        let tombstone = store.delete_message(room, last).await.unwrap().unwrap();
        assert!(tombstone.reactions.is_empty());
        let left: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM reactions")
            .fetch_one(&store.reader)
            .await
            .unwrap();
        assert_eq!(left, (1,), "only the first message's reaction is left");
    }

    #[tokio::test]
    async fn an_emoji_keeps_its_place_while_anyone_still_reacts_with_it() {
        let (_dir, store) = scratch().await;
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        let carol = user(&store, "carol").await;
        let room = room(&store, &[alice, bob, carol], at(0)).await;
        let id = post(&store, room, alice).await;
        // All at one instant: the order cannot come from the clock. "❤" sorts before "👍" as
        // text; first use puts "👍" first.
        let now = at(60);
        set(&store, room, id, bob, "👍", true, now).await;
        set(&store, room, id, alice, "❤", true, now).await;
        set(&store, room, id, carol, "👍", true, now).await;
        set(&store, room, id, bob, "👍", false, now).await;
        let message = store.message(room, id).await.unwrap().unwrap();
        assert_eq!(counts(&message), [("👍", 1), ("❤", 1)]);

        // A repeated add changes nothing and takes no rev.
        let again = ReactionEdit {
            room_id: room,
            message_id: id,
            user_id: carol,
            emoji: Emoji::parse("👍").unwrap(),
            add: true,
            at: now,
        };
        let change = store.set_reaction(&again).await.unwrap().unwrap();
        assert!(!change.changed);
        assert_eq!(change.message.rev, message.rev);
        assert_eq!(store.room(room).await.unwrap().unwrap().rev, message.rev);

        // Taken back by everyone, it starts over at the end.
        set(&store, room, id, carol, "👍", false, now).await;
        set(&store, room, id, bob, "👍", true, now).await;
        let message = store.message(room, id).await.unwrap().unwrap();
        assert_eq!(counts(&message), [("❤", 1), ("👍", 1)]);
    }
}
