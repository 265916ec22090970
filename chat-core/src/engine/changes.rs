//! Changing posted messages: edits by their author, deletes by the author or a room admin,
//! and reactions by any member.

use serde::Deserialize;

use super::messages::mentioned_keys;
use super::ChatEngine;
use crate::domain::{
    Emoji, Message, MessageBody, MessageEdit, MessageId, ReactionEdit, Role, RoomId, UserId,
};
use crate::error::ChatError;
use crate::events::{changed_event, reaction_event};
use crate::ports::HintKind;

const DELETED: &str = "the message was deleted";

/// A new text for a message.
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EditMessage {
    /// The text: trimmed, 1 to `max_message_chars` characters.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::domain::MessageBody))]
    pub body: String,
}

impl ChatEngine {
    /// A message of a room the caller is a member of, for changing it: `NotFound` when the room
    /// or message cannot be seen, `Forbidden` for a non-member of a public room, and, when the
    /// change `writes` something new (an edit, a reaction added), for a user blocked by the
    /// other member of a direct room.
    async fn changeable(
        &self,
        actor: UserId,
        room: RoomId,
        id: MessageId,
        writes: bool,
    ) -> Result<(Message, Role), ChatError> {
        let inner = &self.inner;
        let (found, membership) = inner.visible_room(actor, room).await?;
        let message = inner
            .store()
            .message(room, id)
            .await?
            .ok_or(ChatError::NotFound)?;
        let membership = membership.ok_or(ChatError::Forbidden("join the room first"))?;
        if writes {
            inner.refuse_if_blocked(&found, actor).await?;
        }
        Ok((message, membership.role))
    }

    /// Whether the caller may edit the message (`NotFound`, `Forbidden` or `Conflict` if not),
    /// before looking at the new text; see [`ChatEngine::may_post`].
    pub async fn may_edit(
        &self,
        actor: UserId,
        room: RoomId,
        id: MessageId,
    ) -> Result<Message, ChatError> {
        let (message, _) = self.changeable(actor, room, id, true).await?;
        if message.sender_id != actor {
            return Err(ChatError::Forbidden("only the author edits a message"));
        }
        if message.deleted {
            return Err(ChatError::Conflict(DELETED));
        }
        Ok(message)
    }

    /// Replaces the text of the caller's own message; the room gets `message.updated`. Its
    /// mentions are found again in the new text.
    pub async fn edit_message(
        &self,
        actor: UserId,
        room: RoomId,
        id: MessageId,
        input: EditMessage,
    ) -> Result<Message, ChatError> {
        let inner = &self.inner;
        self.may_edit(actor, room, id).await?;
        let body = MessageBody::parse(&input.body, inner.limits.max_message_chars)
            .map_err(|reason| ChatError::field("body", reason))?;
        let keys = mentioned_keys(body.as_str());
        let mentions = if keys.is_empty() {
            Vec::new()
        } else {
            inner.store().members_named(room, &keys).await?
        };
        let edit = MessageEdit {
            room_id: room,
            id,
            body,
            mentions,
            edited_at: inner.clock.now(),
        };
        let edited = inner
            .store()
            .edit_message(&edit)
            .await?
            // Deleted between the check and the edit.
            .ok_or(ChatError::Conflict(DELETED))?;
        inner
            .announce(
                changed_event(edited.clone()),
                HintKind::MessageChanged { id },
            )
            .await;
        self.for_viewer(actor, vec![edited])
            .await?
            .pop()
            .ok_or(ChatError::Internal)
    }

    /// Deletes a message, leaving a tombstone; its author, or a room owner or admin, may. The
    /// room gets `message.deleted`. Deleting a tombstone again changes nothing.
    pub async fn delete_message(
        &self,
        actor: UserId,
        room: RoomId,
        id: MessageId,
    ) -> Result<(), ChatError> {
        let inner = &self.inner;
        let (message, role) = self.changeable(actor, room, id, false).await?;
        if message.sender_id != actor && role < Role::Admin {
            return Err(ChatError::Forbidden(
                "only the author or a room admin deletes a message",
            ));
        }
        if let Some(tombstone) = inner.store().delete_message(room, id).await? {
            inner
                .announce(changed_event(tombstone), HintKind::MessageChanged { id })
                .await;
        }
        Ok(())
    }

    /// Adds (`add`) or takes back the caller's reaction on a message of their room; the room
    /// gets `reaction.updated` when that changed anything. `emoji` is the reaction as the
    /// client sent it (see [`Emoji`]); a message takes at most
    /// [`Limits::max_reaction_kinds`](super::Limits::max_reaction_kinds) different ones.
    pub async fn react(
        &self,
        actor: UserId,
        room: RoomId,
        id: MessageId,
        emoji: &str,
        add: bool,
    ) -> Result<(), ChatError> {
        let inner = &self.inner;
        let (message, _) = self.changeable(actor, room, id, add).await?;
        if message.deleted {
            return Err(ChatError::Conflict(DELETED));
        }
        let emoji = Emoji::parse(emoji).map_err(|reason| ChatError::field("emoji", reason))?;
        let max = inner.limits.max_reaction_kinds;
        let new_kind = !message.reactions.iter().any(|r| r.emoji == emoji);
        if add && new_kind && message.reactions.len() >= max {
            return Err(ChatError::field(
                "emoji",
                format!("a message takes at most {max} different reactions"),
            ));
        }
        let edit = ReactionEdit {
            room_id: room,
            message_id: id,
            user_id: actor,
            emoji: emoji.clone(),
            add,
            at: inner.clock.now(),
        };
        let change = inner
            .store()
            .set_reaction(&edit)
            .await?
            .ok_or(ChatError::Conflict(DELETED))?;
        if change.changed {
            let hint = HintKind::Reaction {
                message: id,
                user: actor,
                emoji: emoji.clone(),
                added: add,
            };
            inner
                .announce(reaction_event(change.message, actor, emoji, add), hint)
                .await;
        }
        Ok(())
    }
}
