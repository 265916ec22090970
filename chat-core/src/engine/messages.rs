//! Sending messages and reading history.

use serde::Deserialize;

use super::ChatEngine;
use crate::domain::{
    ClientId, HistoryAnchor, HistoryPage, Message, MessageBody, MessageId, MessageKind, NewMessage,
    PageSize, RoomId, Seq, UserId,
};
use crate::error::{ChatError, FieldCheck, FieldErrors};
use crate::events::Event;
use crate::ports::HintKind;

/// A message to send.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    /// The text: trimmed, 1 to `max_message_chars` characters.
    #[serde(default)]
    pub body: Option<String>,
    /// The sender's idempotency key (1-64 characters).
    #[serde(default)]
    pub client_id: Option<String>,
    /// A message of the same room to quote.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// A root message of the same room whose thread this message joins.
    #[serde(default)]
    pub thread_id: Option<String>,
    /// An upload to attach.
    #[serde(default)]
    pub attachment_id: Option<String>,
}

/// A sent message, and whether it was stored now (`false`: a repeated `client_id`).
#[derive(Clone, Debug)]
pub struct Sent {
    /// The message.
    pub message: Message,
    /// `false` when the `client_id` was used before and the original is returned.
    pub created: bool,
}

/// Which page of history to read.
#[derive(Clone, Copy, Debug, Default)]
pub struct HistoryQuery {
    /// The newest messages with a seq below this one.
    pub before: Option<i64>,
    /// The oldest messages with a seq above this one.
    pub after: Option<i64>,
    /// The page size (default 50, clamped to 100).
    pub limit: Option<PageSize>,
}

/// The usernames named as `@username` in a body, as lowercase keys. A name followed by
/// punctuation (`@bob.` or `@bob-`) also counts without it, since usernames may contain those.
fn mentioned_keys(body: &str) -> Vec<String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    let mut keys = Vec::new();
    let mut prev: Option<char> = None;
    for (i, c) in body.char_indices() {
        if c == '@' && !prev.is_some_and(is_name) {
            let name: String = body[i + 1..].chars().take_while(|&c| is_name(c)).collect();
            let trimmed = name.trim_end_matches(['.', '-']);
            for candidate in [name.as_str(), trimmed] {
                let len = candidate.chars().count();
                let key = candidate.to_ascii_lowercase();
                if (3..=32).contains(&len) && !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        prev = Some(c);
    }
    keys
}

impl ChatEngine {
    /// Posts a message in a room the caller is a member of. A repeated `client_id` returns the
    /// original message and stores nothing.
    pub async fn send(
        &self,
        actor: UserId,
        room: RoomId,
        input: SendMessage,
    ) -> Result<Sent, ChatError> {
        let inner = &self.inner;
        self.may_post(actor, room).await?;
        let mut errors = FieldErrors::default();
        let client_id = input
            .client_id
            .as_deref()
            .map(|c| ClientId::parse(c).check(&mut errors, "client_id"));
        if input.attachment_id.is_some() {
            errors.add(
                "attachment_id",
                "uploads are not available on this server yet",
            );
        }
        let body = match input.body.as_deref() {
            Some(b) => {
                MessageBody::parse(b, inner.limits.max_message_chars).check(&mut errors, "body")
            }
            None => {
                errors.add("body", "is required");
                None
            }
        };
        let reply_to = match input.reply_to.as_deref() {
            Some(raw) => self.referenced(room, raw, "reply_to", &mut errors).await?,
            None => None,
        };
        let thread_id = match input.thread_id.as_deref() {
            Some(raw) => match self.referenced(room, raw, "thread_id", &mut errors).await? {
                Some(root) if root.thread_id.is_some() => {
                    errors.add("thread_id", "a thread reply cannot start a thread");
                    None
                }
                other => other,
            },
            None => None,
        };
        errors.into_result()?;
        let Some(body) = body else {
            return Err(ChatError::Internal);
        };
        let keys = mentioned_keys(body.as_str());
        let mentions = if keys.is_empty() {
            Vec::new()
        } else {
            inner.store().members_named(room, &keys).await?
        };
        let new = NewMessage {
            id: MessageId(inner.ids.new_id()),
            room_id: room,
            sender_id: actor,
            kind: MessageKind::Text,
            body: Some(body),
            client_id: client_id.flatten(),
            reply_to: reply_to.map(|m| m.id),
            thread_id: thread_id.map(|m| m.id),
            mentions,
            created_at: inner.clock.now(),
        };
        let appended = inner.store().append_message(&new).await?;
        if appended.created {
            let seq = appended.message.seq;
            inner
                .announce(
                    Event::MessageCreated {
                        message: appended.message.clone(),
                    },
                    HintKind::Message { seq },
                )
                .await;
        }
        Ok(Sent {
            message: appended.message,
            created: appended.created,
        })
    }

    /// Whether the caller may post in the room (`NotFound` or `Forbidden` if not), before
    /// looking at the message: hosts call it to answer in the API's order of checks when the
    /// request itself is unreadable.
    pub async fn may_post(&self, actor: UserId, room: RoomId) -> Result<(), ChatError> {
        self.inner
            .require_member(actor, room, "join the room to post in it")
            .await
            .map(drop)
    }

    /// A message of this room named by a request field, or a field error.
    async fn referenced(
        &self,
        room: RoomId,
        raw: &str,
        field: &str,
        errors: &mut FieldErrors,
    ) -> Result<Option<Message>, ChatError> {
        let Some(id) = raw.parse::<MessageId>().check(errors, field) else {
            return Ok(None);
        };
        let found = self.inner.store().message(room, id).await?;
        if found.is_none() {
            errors.add(field, "no such message in this room");
        }
        Ok(found)
    }

    /// A page of a room's history in ascending seq.
    pub async fn history(
        &self,
        actor: UserId,
        room: RoomId,
        query: HistoryQuery,
    ) -> Result<HistoryPage, ChatError> {
        self.inner.visible_room(actor, room).await?;
        let anchor = match (query.before, query.after) {
            (Some(_), Some(_)) => {
                return Err(ChatError::BadRequest(
                    "use either before or after, not both".into(),
                ))
            }
            (Some(before), None) if before >= 0 => HistoryAnchor::Before(Seq(before)),
            (None, Some(after)) if after >= 0 => HistoryAnchor::After(Seq(after)),
            (None, None) => HistoryAnchor::Latest,
            _ => {
                return Err(ChatError::BadRequest(
                    "before and after must be 0 or more".into(),
                ))
            }
        };
        let limit = query.limit.unwrap_or(PageSize::DEFAULT);
        Ok(self
            .inner
            .store()
            .history(room, anchor, limit.get())
            .await?)
    }

    /// One message of a room the caller can see.
    pub async fn message(
        &self,
        actor: UserId,
        room: RoomId,
        id: MessageId,
    ) -> Result<Message, ChatError> {
        self.inner.visible_room(actor, room).await?;
        self.inner
            .store()
            .message(room, id)
            .await?
            .ok_or(ChatError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::mentioned_keys;

    #[test]
    fn mentions_are_found_at_word_starts() {
        assert_eq!(
            mentioned_keys("hi @Alice and @bob."),
            vec!["alice", "bob.", "bob"]
        );
        assert!(mentioned_keys("mail me at x@example.com").is_empty());
        assert!(mentioned_keys("@ab is too short").is_empty());
        assert_eq!(mentioned_keys("@carol @carol"), vec!["carol"]);
    }
}
