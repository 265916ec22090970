//! Sending messages and reading history.

use serde::Deserialize;

use std::collections::BTreeMap;

use serde::Serialize;

use super::rooms::{more_than, parse_cursor};
use super::ChatEngine;
use crate::domain::{
    ClientId, Cursor, HistoryAnchor, HistoryPage, Message, MessageBody, MessageId, MessageKind,
    NewMessage, PageSize, RoomId, SearchQuery, Seq, UploadId, UserId, Username,
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

/// The schema of a [`SendMessage`]: a text (`body`), or a file (`attachment_id`) whose caption
/// may be left out, `null` or blank. Written by hand, because no field alone says that.
#[cfg(feature = "openapi")]
mod send_schema {
    use utoipa::openapi::schema::{
        AdditionalProperties, AllOfBuilder, AnyOfBuilder, ObjectBuilder, OneOfBuilder, RefBuilder,
        Schema, Type,
    };
    use utoipa::openapi::RefOr;
    use utoipa::{PartialSchema, ToSchema};

    use super::SendMessage;
    use crate::domain::schemas::nullable;
    use crate::domain::{ClientId, MessageBody, MessageId, UploadId};

    fn component<T: ToSchema>(description: &str) -> RefOr<Schema> {
        RefBuilder::new()
            .ref_location_from_schema_name(T::name())
            .description(Some(description))
            .build()
            .into()
    }

    impl PartialSchema for SendMessage {
        fn schema() -> RefOr<Schema> {
            let caption = OneOfBuilder::new()
                .item(ObjectBuilder::new().schema_type(Type::Null))
                .item(MessageBody::blank_schema())
                .item(component::<MessageBody>("The text."))
                .description(Some(
                    "The text: trimmed, 1 to `max_message_chars` characters; a file's \
                     caption may also be blank or `null`.",
                ));
            let text = ObjectBuilder::new()
                .property("body", component::<MessageBody>("The text."))
                .required("body");
            let file = ObjectBuilder::new()
                .property("attachment_id", component::<UploadId>("The file."))
                .required("attachment_id");
            let fields = ObjectBuilder::new()
                .schema_type(Type::Object)
                .property("body", caption)
                .property(
                    "client_id",
                    nullable(component::<ClientId>(
                        "The sender's idempotency key (1-64 characters).",
                    )),
                )
                .property(
                    "reply_to",
                    nullable(component::<MessageId>(
                        "A message of the same room to quote.",
                    )),
                )
                .property(
                    "thread_id",
                    nullable(component::<MessageId>(
                        "A root message of the same room whose thread this message joins.",
                    )),
                )
                .property(
                    "attachment_id",
                    nullable(component::<UploadId>(
                        "An upload of the sender's to attach.",
                    )),
                )
                .additional_properties(Some(AdditionalProperties::FreeForm(false)));
            AllOfBuilder::new()
                .item(fields)
                .item(AnyOfBuilder::new().item(text).item(file))
                .description(Some(
                    "A message to send: a text (`body`), or a file (`attachment_id`) with an \
                     optional caption.",
                ))
                .into()
        }
    }

    impl ToSchema for SendMessage {
        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            schemas.push((MessageBody::name().into_owned(), MessageBody::schema()));
            schemas.push((ClientId::name().into_owned(), ClientId::schema()));
            schemas.push((MessageId::name().into_owned(), MessageId::schema()));
            schemas.push((UploadId::name().into_owned(), UploadId::schema()));
        }
    }
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

/// Which page of a thread to read.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadQuery {
    /// The oldest replies with a seq above this one (default 0: from the first).
    pub after: Option<i64>,
    /// The page size (default 50, clamped to 100).
    pub limit: Option<PageSize>,
}

/// A full-text search of the caller's rooms.
#[derive(Clone, Debug, Default)]
pub struct SearchMessages {
    /// The words every message found contains (plain text: no character has a meaning).
    pub q: String,
    /// Only this room.
    pub room_id: Option<RoomId>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// The page size (default 50, clamped to 100).
    pub limit: Option<PageSize>,
}

/// A page of search results, newest first.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchPage {
    /// The messages found, newest first.
    pub messages: Vec<Message>,
    /// The cursor of the next page, `None` on the last.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub next_cursor: Option<String>,
}

/// The usernames named as `@username` in a body, as lowercase keys. A name followed by
/// punctuation (`@bob.` or `@bob-`) also counts without it, since usernames may contain those.
pub(super) fn mentioned_keys(body: &str) -> Vec<String> {
    let is_name = Username::is_name_char;
    let mut keys = Vec::new();
    let mut prev: Option<char> = None;
    for (i, c) in body.char_indices() {
        if c == '@' && !prev.is_some_and(is_name) {
            let name: String = body[i + 1..].chars().take_while(|&c| is_name(c)).collect();
            let trimmed = name.trim_end_matches(['.', '-']);
            for candidate in [name.as_str(), trimmed] {
                let len = candidate.chars().count();
                let key = candidate.to_ascii_lowercase();
                if (Username::MIN_CHARS..=Username::MAX_CHARS).contains(&len)
                    && !keys.contains(&key)
                {
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
        if let Some(limiter) = &inner.sends {
            limiter
                .take(&actor, inner.clock.now())
                .map_err(|retry_after_secs| ChatError::RateLimited { retry_after_secs })?;
        }
        self.may_send(actor, room).await?;
        let mut errors = FieldErrors::default();
        let client_id = input
            .client_id
            .as_deref()
            .map(|c| ClientId::parse(c).check(&mut errors, "client_id"));
        let attachment = match input.attachment_id.as_deref() {
            Some(raw) => match raw.parse::<UploadId>().check(&mut errors, "attachment_id") {
                Some(id) => Some(self.attachable(actor, id).await?),
                None => None,
            },
            None => None,
        };
        let body = match (input.body.as_deref(), attachment) {
            // A file's caption is optional.
            (Some(b), Some(_)) if b.trim().is_empty() => None,
            (None, Some(_)) => None,
            (Some(b), _) => {
                MessageBody::parse(b, inner.limits.max_message_chars).check(&mut errors, "body")
            }
            (None, None) => {
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
        let keys = body
            .as_ref()
            .map(|b| mentioned_keys(b.as_str()))
            .unwrap_or_default();
        let mentions = if keys.is_empty() {
            Vec::new()
        } else {
            inner.store().members_named(room, &keys).await?
        };
        let new = NewMessage {
            id: MessageId(inner.ids.new_id()),
            room_id: room,
            sender_id: actor,
            kind: if attachment.is_some() {
                MessageKind::File
            } else {
                MessageKind::Text
            },
            body,
            attachment,
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

    /// Whether the caller may send a message to the room (as [`ChatEngine::may_post`]; also
    /// `Forbidden` in a direct room whose other member blocks the caller), before looking at
    /// the message.
    pub async fn may_send(&self, actor: UserId, room: RoomId) -> Result<(), ChatError> {
        let inner = &self.inner;
        let (found, _) = inner
            .require_member(actor, room, "join the room to post in it")
            .await?;
        inner.refuse_if_blocked(&found, actor).await
    }

    /// An upload the sender may attach: only their own (anyone else's is `NotFound`, exactly
    /// like an id that names nothing).
    async fn attachable(&self, actor: UserId, id: UploadId) -> Result<UploadId, ChatError> {
        match self.inner.store().upload(id).await? {
            Some(upload) if upload.uploader == actor => Ok(upload.id),
            _ => Err(ChatError::NotFound),
        }
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
        let page = self
            .inner
            .store()
            .history(room, anchor, limit.get())
            .await?;
        Ok(HistoryPage {
            messages: self.for_viewer(actor, page.messages).await?,
            has_more: page.has_more,
        })
    }

    /// A page of the replies in a root message's thread, ascending by seq.
    pub async fn thread(
        &self,
        actor: UserId,
        room: RoomId,
        root: MessageId,
        query: ThreadQuery,
    ) -> Result<HistoryPage, ChatError> {
        let inner = &self.inner;
        inner.visible_room(actor, room).await?;
        if inner.store().message(room, root).await?.is_none() {
            return Err(ChatError::NotFound);
        }
        let after = match query.after {
            Some(after) if after < 0 => {
                return Err(ChatError::BadRequest("after must be 0 or more".into()))
            }
            after => Seq(after.unwrap_or(0)),
        };
        let limit = query.limit.unwrap_or(PageSize::DEFAULT);
        let page = inner.store().thread(room, root, after, limit.get()).await?;
        Ok(HistoryPage {
            messages: self.for_viewer(actor, page.messages).await?,
            has_more: page.has_more,
        })
    }

    /// Messages of the caller's rooms (or of one of them) holding every word of the query,
    /// newest first; never a deleted one. A query without words finds nothing.
    pub async fn search(
        &self,
        actor: UserId,
        input: SearchMessages,
    ) -> Result<SearchPage, ChatError> {
        let inner = &self.inner;
        let after = parse_cursor(input.cursor.as_deref())?;
        if let Some(room) = input.room_id {
            inner.visible_room(actor, room).await?;
        }
        let query = SearchQuery::new(&input.q);
        if query.is_empty() {
            return Ok(SearchPage {
                messages: Vec::new(),
                next_cursor: None,
            });
        }
        let limit = input.limit.unwrap_or(PageSize::DEFAULT);
        let mut found = inner
            .store()
            .search_messages(actor, &query, input.room_id, after, limit.get() + 1)
            .await?;
        let next_cursor = more_than(&mut found, limit)
            .then(|| found.last())
            .flatten()
            .map(|m| Cursor::new(0, m.created_at, m.id.0).encode());
        Ok(SearchPage {
            messages: self.for_viewer(actor, found).await?,
            next_cursor,
        })
    }

    /// The messages as `viewer` sees them: each reaction says whether it is theirs.
    pub(super) async fn for_viewer(
        &self,
        viewer: UserId,
        mut messages: Vec<Message>,
    ) -> Result<Vec<Message>, ChatError> {
        let mut reacted: BTreeMap<RoomId, Vec<Seq>> = BTreeMap::new();
        for m in messages.iter_mut().filter(|m| !m.reactions.is_empty()) {
            reacted.entry(m.room_id).or_default().push(m.seq);
            for r in &mut m.reactions {
                r.me = Some(false);
            }
        }
        for (room, seqs) in reacted {
            let mine = self.inner.store().reactions_by(room, viewer, &seqs).await?;
            for (seq, emoji) in mine {
                let message = messages
                    .iter_mut()
                    .find(|m| m.room_id == room && m.seq == seq);
                let reaction = message
                    .into_iter()
                    .flat_map(|m| m.reactions.iter_mut())
                    .find(|r| r.emoji == emoji);
                if let Some(r) = reaction {
                    r.me = Some(true);
                }
            }
        }
        Ok(messages)
    }

    /// One message of a room the caller can see.
    pub async fn message(
        &self,
        actor: UserId,
        room: RoomId,
        id: MessageId,
    ) -> Result<Message, ChatError> {
        self.inner.visible_room(actor, room).await?;
        let found = self
            .inner
            .store()
            .message(room, id)
            .await?
            .ok_or(ChatError::NotFound)?;
        self.for_viewer(actor, vec![found])
            .await?
            .pop()
            .ok_or(ChatError::Internal)
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
