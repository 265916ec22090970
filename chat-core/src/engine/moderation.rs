//! Moderation: users' blocks, rooms' bans, and deleting a room.

use serde::Serialize;

use super::rooms::{more_than, parse_cursor};
use super::ChatEngine;
use crate::domain::{Ban, Block, Cursor, PageSize, Role, RoomId, RoomKind, UserId};
use crate::error::{ChatError, StoreError};
use crate::events::Event;
use crate::ports::HintKind;

/// A page of the users the caller blocks.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlockPage {
    /// The blocks, oldest first.
    pub blocks: Vec<Block>,
    /// The cursor of the next page, `None` on the last.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub next_cursor: Option<String>,
}

/// A page of a room's bans.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BanPage {
    /// The bans, oldest first.
    pub bans: Vec<Ban>,
    /// The cursor of the next page, `None` on the last.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub next_cursor: Option<String>,
}

impl ChatEngine {
    /// Blocks a user: they can no longer open or write to a direct room with the caller.
    /// Blocking again changes nothing.
    pub async fn block_user(&self, actor: UserId, user: UserId) -> Result<(), ChatError> {
        let inner = &self.inner;
        self.blockable(actor, user).await?;
        match inner
            .store()
            .block_user(actor, user, inner.clock.now())
            .await
        {
            // The account went away meanwhile.
            Err(StoreError::NotFound) => Err(ChatError::NotFound),
            other => Ok(other?),
        }
    }

    /// Lifts a block; lifting one that is not there changes nothing.
    pub async fn unblock_user(&self, actor: UserId, user: UserId) -> Result<(), ChatError> {
        self.blockable(actor, user).await?;
        Ok(self.inner.store().unblock_user(actor, user).await?)
    }

    /// A page of the users the caller blocks, oldest block first.
    pub async fn blocks(
        &self,
        actor: UserId,
        cursor: Option<&str>,
        limit: PageSize,
    ) -> Result<BlockPage, ChatError> {
        let after = parse_cursor(cursor)?;
        let mut blocks = self
            .inner
            .store()
            .blocks(actor, after, limit.get() + 1)
            .await?;
        let next_cursor = more_than(&mut blocks, limit)
            .then(|| blocks.last())
            .flatten()
            .map(|b| Cursor::new(0, b.blocked_at, b.user.id.0).encode());
        Ok(BlockPage {
            blocks,
            next_cursor,
        })
    }

    /// An existing user other than the caller (`NotFound`, then a field error, if not).
    async fn blockable(&self, actor: UserId, user: UserId) -> Result<(), ChatError> {
        if self.inner.store().user(user).await?.is_none() {
            return Err(ChatError::NotFound);
        }
        if user == actor {
            return Err(ChatError::field("user_id", "you cannot block yourself"));
        }
        Ok(())
    }

    /// Bans a user from a group room: removes them if they are a member (owners and admins
    /// ban members of lower rank) and keeps them from joining or being added until unbanned.
    /// A user who is not a member can be banned before they join.
    pub async fn ban_member(
        &self,
        actor: UserId,
        room: RoomId,
        user: UserId,
    ) -> Result<(), ChatError> {
        let inner = &self.inner;
        let (found, me) = inner.require_member(actor, room, "not a member").await?;
        if inner.store().user(user).await?.is_none() {
            return Err(ChatError::NotFound);
        }
        if found.kind == RoomKind::Direct {
            return Err(ChatError::Forbidden(
                "a direct room has exactly two members",
            ));
        }
        if me.role < Role::Admin {
            return Err(ChatError::Forbidden("only owners and admins ban"));
        }
        if user == actor {
            return Err(ChatError::field(
                "user_id",
                "you cannot ban yourself; leave the room instead",
            ));
        }
        let target = inner.store().membership(room, user).await?;
        if target.is_some_and(|t| t.role >= me.role) {
            return Err(ChatError::Forbidden(
                "only owners and admins ban members of lower rank",
            ));
        }
        let ended = inner
            .store()
            .ban(room, user, actor, inner.clock.now())
            .await
            .map_err(|e| match e {
                // The room was deleted meanwhile.
                StoreError::NotFound => ChatError::NotFound,
                e => e.into(),
            })?;
        match ended {
            Some(remaining) => inner.announce_left(room, user, remaining).await,
            None => Ok(()),
        }
    }

    /// Lifts a ban (owners and admins); `NotFound` when the user is not banned.
    pub async fn unban(&self, actor: UserId, room: RoomId, user: UserId) -> Result<(), ChatError> {
        self.may_moderate(actor, room).await?;
        if !self.inner.store().unban(room, user).await? {
            return Err(ChatError::NotFound);
        }
        Ok(())
    }

    /// A page of the room's bans, oldest first (owners and admins).
    pub async fn bans(
        &self,
        actor: UserId,
        room: RoomId,
        cursor: Option<&str>,
        limit: PageSize,
    ) -> Result<BanPage, ChatError> {
        self.may_moderate(actor, room).await?;
        let after = parse_cursor(cursor)?;
        let mut bans = self
            .inner
            .store()
            .bans(room, after, limit.get() + 1)
            .await?;
        let next_cursor = more_than(&mut bans, limit)
            .then(|| bans.last())
            .flatten()
            .map(|b| Cursor::new(0, b.banned_at, b.user.id.0).encode());
        Ok(BanPage { bans, next_cursor })
    }

    async fn may_moderate(&self, actor: UserId, room: RoomId) -> Result<(), ChatError> {
        let (_, me) = self
            .inner
            .require_member(actor, room, "not a member")
            .await?;
        if me.role < Role::Admin {
            return Err(ChatError::Forbidden("only owners and admins manage bans"));
        }
        Ok(())
    }

    /// Deletes a group room (its owner only) with its messages, and the uploads only its
    /// messages carried. Members' sessions get `room.deleted` and stop following it at once.
    /// A direct room cannot be deleted: archive it.
    pub async fn delete_room(&self, actor: UserId, room: RoomId) -> Result<(), ChatError> {
        let inner = &self.inner;
        let (found, me) = inner
            .require_member(actor, room, "only the owner deletes a room")
            .await?;
        // Nobody owns a direct room, so its members get the reason rather than a refusal.
        if found.kind == RoomKind::Direct {
            return Err(ChatError::field(
                "room",
                "a direct room cannot be deleted; archive it instead",
            ));
        }
        if me.role != Role::Owner {
            return Err(ChatError::Forbidden("only the owner deletes a room"));
        }
        let uploads = inner
            .store()
            .delete_room(room)
            .await?
            .ok_or(ChatError::NotFound)?;
        inner
            .hub
            .close_room(Event::RoomDeleted { room_id: room }.into_frame());
        inner.hint(Some(room), HintKind::RoomDeleted).await;
        // The room is gone whatever happens here: an upload left behind carries nothing now,
        // so the collector takes it later.
        for id in uploads {
            if let Err(e) = inner.discard_upload(id).await {
                tracing::warn!(error = %e, upload = %id, "deleting a deleted room's upload failed");
            }
        }
        Ok(())
    }
}
