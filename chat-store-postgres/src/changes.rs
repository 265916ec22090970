//! Changes to posted messages: edits and deletes. Each takes the room's next rev, as appends and
//! reactions do.

use chat_core::domain::{Message, MessageEdit, MessageId, RoomId, Seq};
use chat_core::outbox::{Envelope, EventType};
use chat_core::StoreError;
use sea_query::{Expr, Keyword, Query, SimpleExpr};
use sqlx::{PgConnection, PgPool};

use crate::error::db;
use crate::messages::{in_room, insert_mentions, mentions_array, message_at};
use crate::outbox::{self, Channels};
use crate::query::{execute, fetch_optional};
use crate::schema::{Mentions, Messages, Reactions, Rooms};
use crate::search::indexed;

/// Takes the room's next rev for a change of one of its messages; `None` when there is no such
/// room. The update locks the room's row until commit, as an append's does, so the changes of a
/// room take their revs one at a time and without gaps, from any node, and whatever the change
/// reads next no other change of the room is altering. Rolling back gives the rev back.
pub(crate) async fn next_rev(
    conn: &mut PgConnection,
    room: RoomId,
) -> Result<Option<i64>, StoreError> {
    let bump = Query::update()
        .table(Rooms::Table)
        .value(Rooms::Rev, Expr::col(Rooms::Rev).add(1))
        .and_where(Expr::col(Rooms::Id).eq(room.0))
        .returning_col(Rooms::Rev)
        .to_owned();
    let rev: Option<(i64,)> = fetch_optional(conn, &bump).await.map_err(db)?;
    Ok(rev.map(|(rev,)| rev))
}

/// Sets `values` on the live message `id` of the room; its seq, or `None` when there is no such
/// message or it is deleted.
async fn change_live(
    conn: &mut PgConnection,
    room: RoomId,
    id: MessageId,
    values: Vec<(Messages, SimpleExpr)>,
) -> Result<Option<Seq>, StoreError> {
    let update = Query::update()
        .table(Messages::Table)
        .values(values)
        .and_where(in_room(room))
        .and_where(Expr::col((Messages::Table, Messages::Id)).eq(id.0))
        .and_where(Expr::col((Messages::Table, Messages::Deleted)).eq(false))
        .returning_col(Messages::Seq)
        .to_owned();
    let seq: Option<(i64,)> = fetch_optional(conn, &update).await.map_err(db)?;
    Ok(seq.map(|(seq,)| Seq(seq)))
}

/// Deletes the mentions rows of the message at `seq`.
async fn delete_mentions(
    conn: &mut PgConnection,
    room: RoomId,
    seq: Seq,
) -> Result<(), StoreError> {
    let delete = Query::delete()
        .from_table(Mentions::Table)
        .and_where(Expr::col(Mentions::RoomId).eq(room.0))
        .and_where(Expr::col(Mentions::Seq).eq(seq.0))
        .to_owned();
    execute(conn, &delete).await.map_err(db)?;
    Ok(())
}

/// Replaces a live message's text, mentions and search words; see
/// [`chat_core::ports::MessageStore::edit_message`].
pub(crate) async fn edit(
    pool: &PgPool,
    channels: &Channels,
    edit: &MessageEdit,
) -> Result<Option<Message>, StoreError> {
    // Returning early drops the transaction, which rolls back whatever it had done.
    let mut tx = pool.begin().await.map_err(db)?;
    let Some(rev) = next_rev(&mut tx, edit.room_id).await? else {
        return Ok(None);
    };
    let body = edit.body.as_str();
    let values = vec![
        (Messages::Body, body.into()),
        (Messages::Mentions, mentions_array(&edit.mentions)),
        (Messages::EditedAt, edit.edited_at.into()),
        (Messages::Rev, rev.into()),
        (Messages::Search, indexed(Some(body))),
    ];
    let Some(seq) = change_live(&mut tx, edit.room_id, edit.id, values).await? else {
        return Ok(None);
    };
    // The mentions rows are what unread mentions count, so they follow the new text.
    delete_mentions(&mut tx, edit.room_id, seq).await?;
    insert_mentions(&mut tx, edit.room_id, seq, &edit.mentions).await?;
    let message = message_at(&mut tx, edit.room_id, seq).await?;
    let event = Envelope::of_message(EventType::MessageUpdated, &message);
    outbox::record(&mut tx, channels, &[event]).await?;
    tx.commit().await.map_err(db)?;
    Ok(Some(message))
}

/// Makes a live message a tombstone; see [`chat_core::ports::MessageStore::delete_message`].
pub(crate) async fn delete(
    pool: &PgPool,
    channels: &Channels,
    room: RoomId,
    id: MessageId,
) -> Result<Option<Message>, StoreError> {
    // Returning early drops the transaction, which rolls back whatever it had done.
    let mut tx = pool.begin().await.map_err(db)?;
    let Some(rev) = next_rev(&mut tx, room).await? else {
        return Ok(None);
    };
    // The row stays, keeping its seq, thread and place in history; its content goes, the
    // attachment too, so an upload no other message carries becomes unattached.
    let values = vec![
        (Messages::Deleted, true.into()),
        (Messages::Body, Keyword::Null.into()),
        (Messages::AttachmentId, Keyword::Null.into()),
        (Messages::Mentions, mentions_array(&[])),
        (Messages::Search, Keyword::Null.into()),
        (Messages::Rev, rev.into()),
    ];
    let Some(seq) = change_live(&mut tx, room, id, values).await? else {
        return Ok(None);
    };
    delete_mentions(&mut tx, room, seq).await?;
    let reactions = Query::delete()
        .from_table(Reactions::Table)
        .and_where(Expr::col(Reactions::RoomId).eq(room.0))
        .and_where(Expr::col(Reactions::Seq).eq(seq.0))
        .to_owned();
    execute(&mut *tx, &reactions).await.map_err(db)?;
    let message = message_at(&mut tx, room, seq).await?;
    let event = Envelope::of_message(EventType::MessageDeleted, &message);
    outbox::record(&mut tx, channels, &[event]).await?;
    tx.commit().await.map_err(db)?;
    Ok(Some(message))
}

#[cfg(test)]
mod tests {
    use chat_core::domain::{Emoji, MessageBody, ReactionEdit, Rev};
    use chat_core::ports::{MessageStore, RoomStore};

    use super::*;
    use crate::test_support::{at, post, room, scratch, second_node, user};

    #[tokio::test]
    async fn changes_on_two_nodes_take_the_rooms_revs_without_gaps() {
        let Some(one) = scratch().await else { return };
        let two = second_node(&one).await;
        let alice = user(&one, "alice").await;
        let room = room(&one, &[alice], at(0)).await;
        let target = post(&one, room, alice).await;
        let appends = tokio::spawn({
            let one = one.clone();
            async move {
                for _ in 0..20 {
                    post(&one, room, alice).await;
                }
            }
        });
        let edits = tokio::spawn({
            let one = one.clone();
            async move {
                for i in 0..20 {
                    let edit = MessageEdit {
                        room_id: room,
                        id: target,
                        body: MessageBody::parse(&format!("edit {i}"), 100).unwrap(),
                        mentions: Vec::new(),
                        edited_at: at(i),
                    };
                    one.edit_message(&edit).await.unwrap().unwrap();
                }
            }
        });
        for i in 0..20 {
            let reaction = ReactionEdit {
                room_id: room,
                message_id: target,
                user_id: alice,
                emoji: Emoji::parse(&format!(":e{i}:")).unwrap(),
                add: true,
                at: at(1),
            };
            two.set_reaction(&reaction).await.unwrap().unwrap();
        }
        appends.await.unwrap();
        edits.await.unwrap();

        // One rev per change: the first message, 20 appends, 20 edits and 20 reactions.
        let r = one.room(room).await.unwrap().unwrap();
        assert_eq!(r.rev, Rev(61));
        let changed = one
            .changed_since(room, r.last_seq, Rev(0), 100)
            .await
            .unwrap();
        let revs: Vec<i64> = changed.iter().map(|m| m.rev.0).collect();
        assert!(revs.windows(2).all(|w| w[0] < w[1]), "{revs:?}");
        let edited = one.message(room, target).await.unwrap().unwrap();
        assert_eq!(edited.body.as_deref(), Some("edit 19"));
        let emojis: Vec<&str> = edited.reactions.iter().map(|r| r.emoji.as_str()).collect();
        let expected: Vec<String> = (0..20).map(|i| format!(":e{i}:")).collect();
        assert_eq!(emojis, expected);
    }
}
