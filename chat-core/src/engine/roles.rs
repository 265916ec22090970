//! Changing members' roles: the owner promotes and demotes, and hands the room over.

use serde::Deserialize;

use super::{ChatEngine, Inner};
use crate::domain::{Member, Membership, Role, Room, RoomId, RoomKind, UserId};
use crate::error::ChatError;
use crate::events::Event;
use crate::ports::HintKind;

/// A member's new role.
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangeRole {
    /// `owner`, `admin` or `member`.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::domain::Role))]
    pub role: String,
}

impl ChatEngine {
    /// Gives a member of a group room a new role; the owner only. Making someone else `owner`
    /// hands the room over: the old owner becomes `admin`. Each changed member goes to the room
    /// as `member.updated`; the target's member is returned.
    pub async fn change_role(
        &self,
        actor: UserId,
        room: RoomId,
        user: UserId,
        input: ChangeRole,
    ) -> Result<Member, ChatError> {
        let inner = &self.inner;
        let (found, target) = self.may_change_roles(actor, room, user).await?;
        let role = Role::parse(&input.role)
            .ok_or_else(|| ChatError::field("role", "must be owner, admin or member"))?;
        if found.kind == RoomKind::Direct {
            return Err(ChatError::field("role", "a direct room has no roles"));
        }
        if target.role == role {
            return inner.member_view(target).await;
        }
        if user == actor {
            return Err(ChatError::field(
                "role",
                "the owner hands the room over by making another member owner",
            ));
        }
        let changes = if role == Role::Owner {
            vec![(user, Role::Owner), (actor, Role::Admin)]
        } else {
            vec![(user, role)]
        };
        inner.store().set_roles(room, &changes).await?;
        let member = inner.member_updated(room, user).await?;
        if role == Role::Owner {
            inner.member_updated(room, actor).await?;
        }
        Ok(member)
    }

    /// Whether the caller may change the roles of the room's members (`NotFound` or
    /// `Forbidden` if not), before looking at the request body.
    pub async fn may_change_roles(
        &self,
        actor: UserId,
        room: RoomId,
        user: UserId,
    ) -> Result<(Room, Membership), ChatError> {
        let inner = &self.inner;
        let (found, me) = inner.require_member(actor, room, "not a member").await?;
        let target = inner
            .store()
            .membership(room, user)
            .await?
            .ok_or(ChatError::NotFound)?;
        if me.role != Role::Owner {
            return Err(ChatError::Forbidden("only the owner changes roles"));
        }
        Ok((found, target))
    }
}

impl Inner {
    /// Reads a member whose role changed and tells the room.
    async fn member_updated(&self, room: RoomId, user: UserId) -> Result<Member, ChatError> {
        let m = self.store().membership(room, user).await?;
        let member = self.member_view(m.ok_or(ChatError::NotFound)?).await?;
        self.announce(
            Event::MemberUpdated {
                room_id: room,
                member: member.clone(),
            },
            HintKind::MemberUpdated { user },
        )
        .await;
        Ok(member)
    }
}
