//! Rooms, memberships and direct rooms.

use serde::{Deserialize, Serialize};

use super::{ChatEngine, Inner};
use crate::domain::{
    Cursor, Member, Membership, MembershipView, NewRoom, PageSize, Role, Room, RoomId, RoomKind,
    RoomListItem, RoomName, RoomPatch, Seq, SettingsPatch, Topic, UserId, Visibility,
};
use crate::error::{ChatError, FieldCheck, FieldErrors, StoreError};
use crate::events::Event;
use crate::ports::{constraint, HintKind};

/// A new group room.
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateRoom {
    /// 1-100 characters.
    #[cfg_attr(feature = "openapi", schema(value_type = RoomName))]
    pub name: String,
    /// Up to 500 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Topic>))]
    pub topic: Option<String>,
    /// `public` or `private` (default).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Visibility>))]
    pub visibility: Option<String>,
    /// Users to add as members (up to 100).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = initial_members))]
    pub members: Option<Vec<String>>,
}

/// The schema of [`CreateRoom::members`]: user ids, at most the default
/// [`Limits::max_initial_members`](super::Limits::max_initial_members) (a server with other
/// limits states its own), or `null`.
#[cfg(feature = "openapi")]
fn initial_members() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::ArrayBuilder;
    use utoipa::PartialSchema;
    let ids = ArrayBuilder::new()
        .items(UserId::schema())
        .max_items(Some(super::Limits::default().max_initial_members))
        .description(Some("Users to add as members."));
    crate::domain::schemas::nullable(ids)
}

/// A member to add.
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// The user to add.
    #[cfg_attr(feature = "openapi", schema(value_type = UserId))]
    pub user_id: String,
    /// `member` (default) or `admin`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = added_role))]
    pub role: Option<String>,
}

/// The roles a member can be added with (the owner hands ownership over by changing a role).
const ADDED_ROLES: [Role; 2] = [Role::Member, Role::Admin];

/// The schema of [`AddMember::role`]: one of [`ADDED_ROLES`], or `null`.
#[cfg(feature = "openapi")]
fn added_role() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    let roles = crate::domain::schemas::roles(&ADDED_ROLES)
        .description(Some("`member` (default) or `admin`."));
    crate::domain::schemas::nullable(roles)
}

/// The caller's own settings of a room; absent fields stay as they are.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RoomSettings {
    /// Pin the room to the top of the caller's list.
    #[serde(default)]
    pub pinned: Option<bool>,
    /// Leave the room out of the caller's unread total.
    #[serde(default)]
    pub muted: Option<bool>,
    /// Hide the room from the caller's list unless asked for.
    #[serde(default)]
    pub archived: Option<bool>,
}

/// A change to a room's details; absent fields stay, `topic: null` clears the topic.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateRoom {
    /// 1-100 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<RoomName>))]
    pub name: Option<String>,
    /// Up to 500 characters, or `null`.
    #[serde(default, deserialize_with = "super::accounts::present")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Topic>))]
    pub topic: Option<Option<String>>,
    /// `public` or `private`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Visibility>))]
    pub visibility: Option<String>,
}

/// A room's figures.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomStats {
    /// Its messages, deleted ones left out.
    pub message_count: i64,
    /// Its members.
    pub member_count: i64,
    /// Its newest message.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub last_message: Option<Box<crate::domain::Message>>,
}

/// A page of public rooms found by a search.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicRoomPage {
    /// The rooms, most members first.
    pub rooms: Vec<Room>,
    /// The cursor of the next page, `None` on the last.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub next_cursor: Option<String>,
}

/// A page of the caller's rooms.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomPage {
    /// The rooms, pinned first, then by last activity.
    pub rooms: Vec<RoomListItem>,
    /// The cursor of the next page, `None` on the last.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub next_cursor: Option<String>,
}

/// A page of a room's members.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberPage {
    /// The members, oldest first.
    pub members: Vec<Member>,
    /// The cursor of the next page, `None` on the last.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub next_cursor: Option<String>,
}

/// A direct room, and whether this call created it.
#[derive(Clone, Debug)]
pub struct DirectRoom {
    /// The room.
    pub room: Room,
    /// `true` when it did not exist before.
    pub created: bool,
}

/// A page's cursor; an empty one (`?cursor=`, as clients and generated ones send for the first
/// page) is the first page, like none.
pub(super) fn parse_cursor(cursor: Option<&str>) -> Result<Option<Cursor>, ChatError> {
    cursor
        .filter(|c| !c.is_empty())
        .map(|c| Cursor::decode(c).ok_or_else(|| ChatError::BadRequest("invalid cursor".into())))
        .transpose()
}

/// Whether the list, fetched with one extra item, has more than a page; keeps only the page.
pub(super) fn more_than<T>(items: &mut Vec<T>, limit: PageSize) -> bool {
    let more = items.len() > limit.get() as usize;
    items.truncate(limit.get() as usize);
    more
}

fn parse_user_id(raw: &str) -> Result<UserId, &'static str> {
    raw.parse().map_err(|_| "must be a user id")
}

impl ChatEngine {
    /// Creates a group room; the caller becomes its owner and `members` its members.
    pub async fn create_room(&self, actor: UserId, input: CreateRoom) -> Result<Room, ChatError> {
        let inner = &self.inner;
        let mut errors = FieldErrors::default();
        let name = RoomName::parse(&input.name).check(&mut errors, "name");
        let topic = input
            .topic
            .as_deref()
            .map(|t| Topic::parse(t).check(&mut errors, "topic"));
        let visibility = match input.visibility.as_deref() {
            None => Some(Visibility::Private),
            Some(v) => Visibility::parse(v)
                .ok_or("must be public or private")
                .check(&mut errors, "visibility"),
        };
        let mut members = vec![(actor, Role::Owner)];
        let requested = input.members.unwrap_or_default();
        if requested.len() > inner.limits.max_initial_members {
            errors.add(
                "members",
                format!("at most {} members", inner.limits.max_initial_members),
            );
        } else {
            for (i, raw) in requested.iter().enumerate() {
                let field = format!("members.{i}");
                let Some(user) = parse_user_id(raw).check(&mut errors, &field) else {
                    continue;
                };
                if members.iter().any(|(u, _)| *u == user) {
                    continue;
                }
                if inner.store().user(user).await?.is_none() {
                    errors.add(field, "no such user");
                    continue;
                }
                members.push((user, Role::Member));
            }
        }
        errors.into_result()?;
        let (Some(name), Some(visibility)) = (name, visibility) else {
            return Err(ChatError::Internal);
        };
        let spec = NewRoom {
            id: RoomId(inner.ids.new_id()),
            kind: RoomKind::Group,
            name: name.as_str().to_owned(),
            topic: topic
                .flatten()
                .map(|t| t.as_str().to_owned())
                .filter(|t| !t.is_empty()),
            visibility,
            created_by: actor,
            created_at: inner.clock.now(),
        };
        inner.store().create_room(&spec, &members).await?;
        for (user, _) in &members {
            inner.joined(spec.id, *user, Seq::ZERO).await?;
        }
        inner
            .store()
            .room(spec.id)
            .await?
            .ok_or(ChatError::NotFound)
    }

    /// A page of the caller's rooms: pinned first, then by last activity, newest first.
    pub async fn rooms(
        &self,
        actor: UserId,
        include_archived: bool,
        cursor: Option<&str>,
        limit: PageSize,
    ) -> Result<RoomPage, ChatError> {
        let after = parse_cursor(cursor)?;
        let mut rooms = self
            .inner
            .store()
            .rooms_of_user(actor, include_archived, after, limit.get() + 1)
            .await?;
        let next_cursor = more_than(&mut rooms, limit)
            .then(|| rooms.last())
            .flatten()
            .map(|last| {
                Cursor::new(
                    i64::from(last.membership.pinned),
                    last.room.last_message_at.unwrap_or(last.room.created_at),
                    last.room.id.0,
                )
                .encode()
            });
        Ok(RoomPage { rooms, next_cursor })
    }

    /// Public rooms whose name contains `q` (any text: it is matched literally), most members
    /// first.
    pub async fn public_rooms(
        &self,
        _actor: UserId,
        q: &str,
        cursor: Option<&str>,
        limit: PageSize,
    ) -> Result<PublicRoomPage, ChatError> {
        let after = parse_cursor(cursor)?;
        let Some(text) = super::accounts::search_text(q) else {
            return Ok(PublicRoomPage {
                rooms: Vec::new(),
                next_cursor: None,
            });
        };
        let mut rooms = self
            .inner
            .store()
            .public_rooms(&text, after, limit.get() + 1)
            .await?;
        let next_cursor = more_than(&mut rooms, limit)
            .then(|| rooms.last())
            .flatten()
            .map(|r| Cursor::new(r.member_count, r.created_at, r.id.0).encode());
        Ok(PublicRoomPage { rooms, next_cursor })
    }

    /// A room the caller is in, or any public room.
    pub async fn room(&self, actor: UserId, room: RoomId) -> Result<Room, ChatError> {
        Ok(self.inner.visible_room(actor, room).await?.0)
    }

    /// Changes a group room's name, topic or visibility; owners and admins only.
    pub async fn update_room(
        &self,
        actor: UserId,
        room: RoomId,
        input: UpdateRoom,
    ) -> Result<Room, ChatError> {
        let inner = &self.inner;
        self.may_update_room(actor, room).await?;
        let mut errors = FieldErrors::default();
        let name = input
            .name
            .as_deref()
            .map(|n| RoomName::parse(n).check(&mut errors, "name"));
        let topic = input.topic.as_ref().map(|t| {
            t.as_deref()
                .map(|t| Topic::parse(t).check(&mut errors, "topic"))
                .and_then(|t| t.filter(|t| !t.as_str().is_empty()))
        });
        let visibility = input.visibility.as_deref().map(|v| {
            Visibility::parse(v)
                .ok_or("must be public or private")
                .check(&mut errors, "visibility")
        });
        errors.into_result()?;
        let patch = RoomPatch {
            name: name.flatten(),
            topic,
            visibility: visibility.flatten(),
        };
        let updated = inner
            .store()
            .update_room(room, &patch)
            .await?
            .ok_or(ChatError::NotFound)?;
        inner
            .announce(
                Event::RoomUpdated {
                    room: updated.clone(),
                },
                HintKind::RoomUpdated,
            )
            .await;
        Ok(updated)
    }

    /// Whether the caller may change the room (`NotFound` or `Forbidden` if not), before
    /// looking at the change: hosts call it to answer in the API's order of checks when the
    /// request itself is unreadable.
    pub async fn may_update_room(&self, actor: UserId, room: RoomId) -> Result<(), ChatError> {
        let (found, me) = self
            .inner
            .require_member(actor, room, "not a member")
            .await?;
        if found.kind == RoomKind::Direct {
            return Err(ChatError::Forbidden("a direct room has no name or topic"));
        }
        if me.role < Role::Admin {
            return Err(ChatError::Forbidden("only owners and admins change a room"));
        }
        Ok(())
    }

    /// A room's message and member counts, for anyone who can see it.
    pub async fn room_stats(&self, actor: UserId, room: RoomId) -> Result<RoomStats, ChatError> {
        let (found, _) = self.inner.visible_room(actor, room).await?;
        let message_count = self.inner.store().message_count(room).await?;
        Ok(RoomStats {
            message_count,
            member_count: found.member_count,
            last_message: found.last_message,
        })
    }

    /// Joins a public room; joining a room one is already in returns the membership.
    pub async fn join(&self, actor: UserId, room: RoomId) -> Result<Member, ChatError> {
        let inner = &self.inner;
        let (found, membership) = inner.visible_room(actor, room).await?;
        if let Some(m) = membership {
            return inner.member_view(m).await;
        }
        if found.kind != RoomKind::Group || found.visibility != Visibility::Public {
            return Err(ChatError::NotFound);
        }
        match inner
            .store()
            .add_member(room, actor, Role::Member, inner.clock.now())
            .await
        {
            Ok((member, baseline)) => {
                inner.announce_join(member.clone(), baseline).await;
                Ok(member)
            }
            Err(StoreError::Conflict {
                constraint: constraint::BAN,
            }) => Err(ChatError::Forbidden("banned from this room")),
            // A concurrent join of the same user won the race: the result is the same.
            Err(StoreError::Conflict { .. }) => {
                let m = inner
                    .store()
                    .membership(room, actor)
                    .await?
                    .ok_or(ChatError::NotFound)?;
                inner.member_view(m).await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Leaves a room. An owner who leaves hands the room to the oldest admin, else the oldest
    /// member; the last member to leave deletes it. Direct rooms cannot be left.
    pub async fn leave(&self, actor: UserId, room: RoomId) -> Result<(), ChatError> {
        let inner = &self.inner;
        let (found, membership) = inner.require_member(actor, room, "not a member").await?;
        if found.kind == RoomKind::Direct {
            return Err(ChatError::field(
                "room",
                "a direct room cannot be left; archive it instead",
            ));
        }
        inner.end_membership(room, membership).await
    }

    /// A page of a room's members, oldest first.
    pub async fn members(
        &self,
        actor: UserId,
        room: RoomId,
        cursor: Option<&str>,
        limit: PageSize,
    ) -> Result<MemberPage, ChatError> {
        self.inner.visible_room(actor, room).await?;
        let after = parse_cursor(cursor)?;
        let mut members = self
            .inner
            .store()
            .members(room, after, limit.get() + 1)
            .await?;
        let next_cursor = more_than(&mut members, limit)
            .then(|| members.last())
            .flatten()
            .map(|m| Cursor::new(0, m.joined_at, m.user.id.0).encode());
        Ok(MemberPage {
            members,
            next_cursor,
        })
    }

    /// Adds a user to a group room; owners and admins may add members, owners also admins.
    pub async fn add_member(
        &self,
        actor: UserId,
        room: RoomId,
        input: AddMember,
    ) -> Result<Member, ChatError> {
        let inner = &self.inner;
        let me = self.may_add_members(actor, room).await?;
        let mut errors = FieldErrors::default();
        let user = parse_user_id(&input.user_id).check(&mut errors, "user_id");
        let role = match input.role.as_deref() {
            None => Some(Role::Member),
            Some(r) => match Role::parse(r) {
                Some(role) if ADDED_ROLES.contains(&role) => Some(role),
                // The owner.
                Some(_) => {
                    errors.add(
                        "role",
                        "ownership is handed over by changing a member's role",
                    );
                    None
                }
                None => {
                    errors.add("role", "must be member or admin");
                    None
                }
            },
        };
        errors.into_result()?;
        let (Some(user), Some(role)) = (user, role) else {
            return Err(ChatError::Internal);
        };
        if role >= me.role {
            return Err(ChatError::Forbidden("only the owner adds admins"));
        }
        match inner
            .store()
            .add_member(room, user, role, inner.clock.now())
            .await
        {
            Ok((member, baseline)) => {
                inner.announce_join(member.clone(), baseline).await;
                Ok(member)
            }
            Err(StoreError::Conflict {
                constraint: constraint::BAN,
            }) => Err(ChatError::Forbidden(
                "banned from this room; unban them first",
            )),
            Err(StoreError::Conflict { .. }) => Err(ChatError::Conflict("already a member")),
            Err(StoreError::NotFound) => Err(ChatError::field("user_id", "no such user")),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the caller may add members to the room (`NotFound` or `Forbidden` if not),
    /// before looking at whom: hosts call it to answer in the API's order of checks when the
    /// request itself is unreadable.
    pub async fn may_add_members(
        &self,
        actor: UserId,
        room: RoomId,
    ) -> Result<Membership, ChatError> {
        let (found, me) = self
            .inner
            .require_member(actor, room, "not a member")
            .await?;
        if found.kind == RoomKind::Direct {
            return Err(ChatError::Forbidden(
                "a direct room has exactly two members",
            ));
        }
        if me.role < Role::Admin {
            return Err(ChatError::Forbidden("only owners and admins add members"));
        }
        Ok(me)
    }

    /// Removes a member of lower rank (owners and admins); removing oneself is leaving.
    pub async fn remove_member(
        &self,
        actor: UserId,
        room: RoomId,
        user: UserId,
    ) -> Result<(), ChatError> {
        if actor == user {
            return self.leave(actor, room).await;
        }
        let inner = &self.inner;
        let (found, me) = inner.require_member(actor, room, "not a member").await?;
        let target = inner
            .store()
            .membership(room, user)
            .await?
            .ok_or(ChatError::NotFound)?;
        if found.kind == RoomKind::Direct {
            return Err(ChatError::Forbidden(
                "a direct room has exactly two members",
            ));
        }
        if me.role < Role::Admin || target.role >= me.role {
            return Err(ChatError::Forbidden(
                "only owners and admins remove members of lower rank",
            ));
        }
        inner.end_membership(room, target).await
    }

    /// Changes the caller's own settings of a room and returns their membership as room lists
    /// show it.
    pub async fn update_settings(
        &self,
        actor: UserId,
        room: RoomId,
        input: RoomSettings,
    ) -> Result<MembershipView, ChatError> {
        let inner = &self.inner;
        inner.require_member(actor, room, "not a member").await?;
        let patch = SettingsPatch {
            pinned: input.pinned,
            muted: input.muted,
            archived: input.archived,
        };
        let m = inner
            .store()
            .update_settings(room, actor, &patch)
            .await?
            .ok_or(ChatError::NotFound)?;
        let unread = inner.store().unread(actor, Some(room), 1).await?;
        let counts = unread.first();
        Ok(MembershipView {
            role: m.role,
            joined_at: m.joined_at,
            read_seq: m.read_seq,
            delivered_seq: m.delivered_seq,
            unread_count: counts.map_or(0, |c| c.unread_count),
            mention_count: counts.map_or(0, |c| c.mention_count),
            pinned: m.pinned,
            muted: m.muted,
            archived: m.archived,
        })
    }

    /// The direct room of the caller and `other`, created on first use (one per pair).
    pub async fn open_direct(&self, actor: UserId, other: &str) -> Result<DirectRoom, ChatError> {
        let inner = &self.inner;
        let other = parse_user_id(other).map_err(|reason| ChatError::field("user_id", reason))?;
        if other == actor {
            return Err(ChatError::field(
                "user_id",
                "a direct room needs another user",
            ));
        }
        if inner.store().user(other).await?.is_none() {
            return Err(ChatError::field("user_id", "no such user"));
        }
        if inner.store().is_blocked(other, actor).await? {
            return Err(ChatError::Forbidden("this user has blocked you"));
        }
        let now = inner.clock.now();
        let spec = NewRoom {
            id: RoomId(inner.ids.new_id()),
            kind: RoomKind::Direct,
            name: String::new(),
            topic: None,
            visibility: Visibility::Private,
            created_by: actor,
            created_at: now,
        };
        let (id, created) = inner.store().direct_room(&spec, actor, other).await?;
        if created {
            for user in [actor, other] {
                inner.joined(id, user, Seq::ZERO).await?;
            }
        }
        let room = inner.store().room(id).await?.ok_or(ChatError::NotFound)?;
        Ok(DirectRoom { room, created })
    }
}

impl Inner {
    pub(super) async fn member_view(&self, m: Membership) -> Result<Member, ChatError> {
        let user = self
            .store()
            .user(m.user_id)
            .await?
            .ok_or(ChatError::NotFound)?;
        Ok(Member {
            room_id: m.room_id,
            user: user.public(),
            role: m.role,
            joined_at: m.joined_at,
        })
    }

    /// Subscribes the member's sessions, then tells the room.
    async fn announce_join(&self, member: Member, baseline: Seq) {
        let (room, user) = (member.room_id, member.user.id);
        self.hub.join(user, room, baseline);
        self.announce(
            Event::MemberJoined {
                room_id: room,
                member,
            },
            HintKind::MemberJoined { user, baseline },
        )
        .await;
    }

    /// Announces a membership that the store already holds (room creation, direct rooms).
    async fn joined(&self, room: RoomId, user: UserId, baseline: Seq) -> Result<(), ChatError> {
        let m = self
            .store()
            .membership(room, user)
            .await?
            .ok_or(ChatError::NotFound)?;
        let member = self.member_view(m).await?;
        self.announce_join(member, baseline).await;
        Ok(())
    }

    /// Ends a membership: hands ownership over when the owner goes, deletes the room when it
    /// empties, tells the room, and unsubscribes the user's sessions at once.
    pub(super) async fn end_membership(
        &self,
        room: RoomId,
        leaving: Membership,
    ) -> Result<(), ChatError> {
        let user = leaving.user_id;
        // The successor may itself leave meanwhile; the store then refuses the pair and the
        // next oldest is tried.
        let mut attempts = 0;
        let remaining = loop {
            let promote = if leaving.role == Role::Owner {
                match self.store().oldest_member(room, Role::Admin, user).await? {
                    Some(admin) => Some(admin),
                    None => self.store().oldest_member(room, Role::Member, user).await?,
                }
            } else {
                None
            };
            match self.store().remove_member(room, user, promote).await {
                Ok(remaining) => break remaining,
                Err(StoreError::NotFound) if promote.is_some() && attempts < 3 => attempts += 1,
                Err(e) => return Err(e.into()),
            }
        };
        self.announce_left(room, user, remaining).await
    }

    /// Tells the room that a membership ended, unsubscribes the user's sessions at once, and
    /// deletes the room when nobody is left.
    pub(super) async fn announce_left(
        &self,
        room: RoomId,
        user: UserId,
        remaining: i64,
    ) -> Result<(), ChatError> {
        self.announce(
            Event::MemberLeft {
                room_id: room,
                user_id: user,
            },
            HintKind::MemberLeft { user },
        )
        .await;
        self.hub.leave(user, room);
        if remaining == 0 {
            self.store().delete_room_if_empty(room).await?;
        }
        Ok(())
    }
}
