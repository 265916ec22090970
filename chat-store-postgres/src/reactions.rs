//! Reactions: who reacted to which message with what, and the counts messages are read with.

use std::collections::HashMap;

use chat_core::domain::{
    Emoji, Message, Reaction, ReactionChange, ReactionEdit, RoomId, Seq, UserId,
};
use chat_core::outbox::Envelope;
use chat_core::StoreError;
use sea_query::{Asterisk, Expr, Func, OnConflict, Order, Query, SimpleExpr};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::changes::next_rev;
use crate::error::{corrupt, db};
use crate::messages::{in_room, message_at};
use crate::outbox::{self, Channels};
use crate::query::{execute, fetch_all, fetch_optional};
use crate::schema::{Messages, Reactions};

/// A stored emoji, checked as the domain checks it.
fn emoji(stored: String) -> Result<Emoji, StoreError> {
    Emoji::parse(&stored).map_err(|_| corrupt("reactions.emoji", stored.as_str()))
}

/// Fills in the reactions of the messages, with one query for all of them: per emoji the count,
/// in the order of first use. Deleted messages have none.
pub(crate) async fn fill(
    conn: &mut PgConnection,
    messages: &mut [Message],
) -> Result<(), StoreError> {
    let keys: Vec<(Uuid, i64)> = messages
        .iter()
        .filter(|m| !m.deleted)
        .map(|m| (m.room_id.0, m.seq.0))
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    let q = Query::select()
        .columns([Reactions::RoomId, Reactions::Seq, Reactions::Emoji])
        .expr(Expr::col(Asterisk).count())
        .from(Reactions::Table)
        .and_where(
            Expr::tuple([
                Expr::col(Reactions::RoomId).into(),
                Expr::col(Reactions::Seq).into(),
            ])
            .in_tuples(keys),
        )
        .group_by_columns([Reactions::RoomId, Reactions::Seq, Reactions::Emoji])
        // All rows of one emoji on a message share `first_rev`, and no two emojis do.
        .order_by_expr(Func::min(Expr::col(Reactions::FirstRev)).into(), Order::Asc)
        .to_owned();
    let rows: Vec<(Uuid, i64, String, i64)> = fetch_all(conn, &q).await.map_err(db)?;
    let mut by_message: HashMap<(Uuid, i64), Vec<Reaction>> = HashMap::new();
    for (room, seq, stored, count) in rows {
        by_message.entry((room, seq)).or_default().push(Reaction {
            emoji: emoji(stored)?,
            count,
            // Counts are the same for every reader; `me` is the engine's to add.
            me: None,
        });
    }
    for message in messages.iter_mut().filter(|m| !m.deleted) {
        if let Some(reactions) = by_message.remove(&(message.room_id.0, message.seq.0)) {
            message.reactions = reactions;
        }
    }
    Ok(())
}

/// Adds or takes back one user's reaction; see
/// [`chat_core::ports::MessageStore::set_reaction`].
pub(crate) async fn set(
    pool: &PgPool,
    channels: &Channels,
    edit: &ReactionEdit,
) -> Result<Option<ReactionChange>, StoreError> {
    let room = edit.room_id;
    // Returning early drops the transaction, which rolls back whatever it had done. Taking the
    // rev first locks the room's row, which a delete takes first too: the message found next
    // stays live until commit.
    let mut tx = pool.begin().await.map_err(db)?;
    let Some(rev) = next_rev(&mut tx, room).await? else {
        return Ok(None);
    };
    let live = Query::select()
        .column(Messages::Seq)
        .from(Messages::Table)
        .and_where(in_room(room))
        .and_where(Expr::col((Messages::Table, Messages::Id)).eq(edit.message_id.0))
        .and_where(Expr::col((Messages::Table, Messages::Deleted)).eq(false))
        .to_owned();
    let Some((seq,)) = fetch_optional::<(i64,), _>(&mut *tx, &live)
        .await
        .map_err(db)?
    else {
        return Ok(None);
    };
    let key = [
        (Reactions::RoomId, SimpleExpr::from(room.0)),
        (Reactions::Seq, seq.into()),
        (Reactions::Emoji, edit.emoji.as_str().into()),
        (Reactions::UserId, edit.user_id.0.into()),
    ];
    let changed = if edit.add {
        // The emoji's first use: that of the others still reacting with it, else this one.
        let first_use = Query::select()
            .expr(Func::min(Expr::col(Reactions::FirstRev)))
            .from(Reactions::Table)
            .and_where(Expr::col(Reactions::RoomId).eq(room.0))
            .and_where(Expr::col(Reactions::Seq).eq(seq))
            .and_where(Expr::col(Reactions::Emoji).eq(edit.emoji.as_str()))
            .to_owned();
        let first_rev = Func::coalesce([
            SimpleExpr::SubQuery(None, Box::new(first_use.into_sub_query_statement())),
            rev.into(),
        ]);
        let (mut columns, mut values): (Vec<_>, Vec<_>) = key.into_iter().unzip();
        columns.extend([Reactions::CreatedAt, Reactions::FirstRev]);
        values.extend([edit.at.into(), first_rev.into()]);
        let insert = Query::insert()
            .into_table(Reactions::Table)
            .columns(columns)
            .values(values)
            .map_err(StoreError::backend)?
            .on_conflict(OnConflict::new().do_nothing().to_owned())
            .to_owned();
        execute(&mut *tx, &insert).await.map_err(db)?
    } else {
        let mut delete = Query::delete();
        delete.from_table(Reactions::Table);
        for (column, value) in key {
            delete.and_where(Expr::col(column).eq(value));
        }
        execute(&mut *tx, &delete).await.map_err(db)?
    } > 0;
    if changed {
        let update = Query::update()
            .table(Messages::Table)
            .value(Messages::Rev, rev)
            .and_where(in_room(room))
            .and_where(Expr::col((Messages::Table, Messages::Seq)).eq(seq))
            .to_owned();
        execute(&mut *tx, &update).await.map_err(db)?;
    }
    let message = message_at(&mut tx, room, Seq(seq)).await?;
    if changed {
        let event = Envelope::of_reaction(edit, &message);
        outbox::record(&mut tx, channels, &[event]).await?;
        tx.commit().await.map_err(db)?;
    } else {
        // Nothing changed: rolling back gives the rev taken above back to the room.
        tx.rollback().await.map_err(db)?;
    }
    Ok(Some(ReactionChange { message, changed }))
}

/// Which of the messages at `seqs` the user reacted to, and with what; see
/// [`chat_core::ports::MessageStore::reactions_by`].
pub(crate) async fn of_user(
    pool: &PgPool,
    room: RoomId,
    user: UserId,
    seqs: &[Seq],
) -> Result<Vec<(Seq, Emoji)>, StoreError> {
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
        .order_by(Reactions::FirstRev, Order::Asc)
        .to_owned();
    let rows: Vec<(i64, String)> = fetch_all(pool, &q).await.map_err(db)?;
    rows.into_iter()
        .map(|(seq, stored)| Ok((Seq(seq), emoji(stored)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use chat_core::domain::MessageId;
    use chat_core::ports::{MessageStore, RoomStore};

    use super::*;
    use crate::test_support::{at, post, room, scratch, user};
    use crate::PgStore;

    async fn react(
        store: &PgStore,
        room: RoomId,
        id: MessageId,
        user: UserId,
        emoji: &str,
        add: bool,
    ) {
        let edit = ReactionEdit {
            room_id: room,
            message_id: id,
            user_id: user,
            emoji: Emoji::parse(emoji).unwrap(),
            add,
            // One time for all: the order cannot come from the clock.
            at: at(60),
        };
        let change = store.set_reaction(&edit).await.unwrap().unwrap();
        assert!(change.changed);
    }

    fn counts(message: &Message) -> Vec<(&str, i64)> {
        message
            .reactions
            .iter()
            .map(|r| (r.emoji.as_str(), r.count))
            .collect()
    }

    #[tokio::test]
    async fn an_emoji_keeps_its_place_while_anyone_still_reacts_with_it() {
        let Some(store) = scratch().await else { return };
        let [alice, bob, carol] = [
            user(&store, "alice").await,
            user(&store, "bob").await,
            user(&store, "carol").await,
        ];
        let room = room(&store, &[alice, bob, carol], at(0)).await;
        let id = post(&store, room, alice).await;
        // "❤" sorts before "👍" as text; first use puts "👍" first.
        react(&store, room, id, bob, "👍", true).await;
        react(&store, room, id, alice, "❤", true).await;
        react(&store, room, id, carol, "👍", true).await;
        react(&store, room, id, bob, "👍", false).await;
        let message = store.message(room, id).await.unwrap().unwrap();
        assert_eq!(counts(&message), [("👍", 1), ("❤", 1)]);
        // Room lists read the last message with its reactions too.
        let listed = store
            .room(room)
            .await
            .unwrap()
            .unwrap()
            .last_message
            .unwrap();
        assert_eq!(counts(&listed), counts(&message));

        // Taken back by everyone, it starts over at the end.
        react(&store, room, id, carol, "👍", false).await;
        react(&store, room, id, bob, "👍", true).await;
        let message = store.message(room, id).await.unwrap().unwrap();
        assert_eq!(counts(&message), [("❤", 1), ("👍", 1)]);
    }
}
