//! Rooms and memberships.
//!
//! Transactions that change a room and its memberships lock the room's row first, as appends
//! do; with one order of locks, two of them can wait for each other but never deadlock.

use std::collections::HashSet;

use async_trait::async_trait;
use chat_core::domain::{
    from_micros, micros, Cursor, Member, Membership, MembershipView, NewRoom, Rev, Role, Room,
    RoomId, RoomKind, RoomListItem, RoomPatch, RoomPosition, Seq, SettingsPatch, UploadId, User,
    UserId, Visibility,
};
use chat_core::outbox::{Envelope, EventType};
use chat_core::ports::{constraint, RoomStore};
use chat_core::StoreError;
use sea_query::{
    Asterisk, Expr, Func, InsertStatement, LockType, OnConflict, Order, Query, SelectStatement,
    SimpleExpr,
};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{corrupt, db};
use crate::messages::last_messages;
use crate::messages::message_at_seq;
use crate::outbox::{self, Channels};
use crate::query::{execute, fetch_all, fetch_optional};
use crate::schema::{Derived, Memberships, Mentions, Messages, RoomBans, Rooms, Uploads, Users};
use crate::store::PgStore;
use crate::uploads::carriers;
use crate::users::{UserRow, USER_COLUMNS};

const ROOM_COLUMNS: [Rooms; 11] = [
    Rooms::Id,
    Rooms::Kind,
    Rooms::Name,
    Rooms::Topic,
    Rooms::Visibility,
    Rooms::CreatedBy,
    Rooms::CreatedAt,
    Rooms::MemberCount,
    Rooms::LastSeq,
    Rooms::Rev,
    Rooms::LastMessageAt,
];

const MEMBERSHIP_COLUMNS: [Memberships; 9] = [
    Memberships::RoomId,
    Memberships::UserId,
    Memberships::Role,
    Memberships::JoinedAt,
    Memberships::ReadSeq,
    Memberships::DeliveredSeq,
    Memberships::Pinned,
    Memberships::Muted,
    Memberships::Archived,
];

#[derive(Debug, sqlx::FromRow)]
struct RoomRow {
    id: Uuid,
    kind: String,
    name: String,
    topic: Option<String>,
    visibility: String,
    created_by: Uuid,
    created_at: OffsetDateTime,
    member_count: i64,
    last_seq: i64,
    rev: i64,
    last_message_at: Option<OffsetDateTime>,
}

impl TryFrom<RoomRow> for Room {
    type Error = StoreError;

    fn try_from(row: RoomRow) -> Result<Self, StoreError> {
        Ok(Room {
            id: RoomId(row.id),
            kind: RoomKind::parse(&row.kind).ok_or_else(|| corrupt("rooms.kind", row.kind))?,
            name: row.name,
            topic: row.topic,
            visibility: Visibility::parse(&row.visibility)
                .ok_or_else(|| corrupt("rooms.visibility", row.visibility))?,
            created_by: UserId(row.created_by),
            created_at: row.created_at,
            member_count: row.member_count,
            last_seq: Seq(row.last_seq),
            rev: Rev(row.rev),
            last_message_at: row.last_message_at,
            last_message: None,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
struct MembershipRow {
    room_id: Uuid,
    user_id: Uuid,
    role: String,
    joined_at: OffsetDateTime,
    read_seq: i64,
    delivered_seq: i64,
    pinned: bool,
    muted: bool,
    archived: bool,
}

fn parse_role(role: String) -> Result<Role, StoreError> {
    Role::parse(&role).ok_or_else(|| corrupt("memberships.role", role))
}

impl TryFrom<MembershipRow> for Membership {
    type Error = StoreError;

    fn try_from(row: MembershipRow) -> Result<Self, StoreError> {
        Ok(Membership {
            room_id: RoomId(row.room_id),
            user_id: UserId(row.user_id),
            role: parse_role(row.role)?,
            joined_at: row.joined_at,
            read_seq: Seq(row.read_seq),
            delivered_seq: Seq(row.delivered_seq),
            pinned: row.pinned,
            muted: row.muted,
            archived: row.archived,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
struct RoomListRow {
    #[sqlx(flatten)]
    room: RoomRow,
    #[sqlx(flatten)]
    membership: MembershipRow,
    unread_count: i64,
    mention_count: i64,
}

impl TryFrom<RoomListRow> for RoomListItem {
    type Error = StoreError;

    fn try_from(row: RoomListRow) -> Result<Self, StoreError> {
        let m = Membership::try_from(row.membership)?;
        Ok(RoomListItem {
            room: row.room.try_into()?,
            membership: MembershipView {
                role: m.role,
                joined_at: m.joined_at,
                read_seq: m.read_seq,
                delivered_seq: m.delivered_seq,
                unread_count: row.unread_count,
                mention_count: row.mention_count,
                pinned: m.pinned,
                muted: m.muted,
                archived: m.archived,
            },
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
struct MemberRow {
    #[sqlx(flatten)]
    user: UserRow,
    room_id: Uuid,
    role: String,
    joined_at: OffsetDateTime,
}

impl TryFrom<MemberRow> for Member {
    type Error = StoreError;

    fn try_from(row: MemberRow) -> Result<Self, StoreError> {
        Ok(Member {
            room_id: RoomId(row.room_id),
            user: User::try_from(row.user)?.public(),
            role: parse_role(row.role)?,
            joined_at: row.joined_at,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
struct PositionRow {
    room_id: Uuid,
    last_seq: i64,
    rev: i64,
    read_seq: i64,
}

impl From<PositionRow> for RoomPosition {
    fn from(row: PositionRow) -> Self {
        RoomPosition {
            room_id: RoomId(row.room_id),
            last_seq: Seq(row.last_seq),
            rev: Rev(row.rev),
            read_seq: Seq(row.read_seq),
        }
    }
}

/// The key that makes a pair's direct room unique, the same whichever of them asks.
fn direct_key(a: UserId, b: UserId) -> String {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    format!("{}:{}", low.0.hyphenated(), high.0.hyphenated())
}

/// A room's rank in its member's list: pinned rooms (1) before the others (0). The cast makes
/// it comparable with a cursor's rank.
fn rank() -> SimpleExpr {
    Expr::col((Memberships::Table, Memberships::Pinned)).cast_as(Derived::Integer)
}

/// A room's last activity: its newest message, else its creation.
fn activity() -> SimpleExpr {
    Func::coalesce([
        Expr::col((Rooms::Table, Rooms::LastMessageAt)).into(),
        Expr::col((Rooms::Table, Rooms::CreatedAt)).into(),
    ])
    .into()
}

/// A room in the user's list, from the `memberships` of `user` joined with `rooms`.
pub(crate) fn my_rooms(user: UserId) -> SelectStatement {
    Query::select()
        .from(Memberships::Table)
        .inner_join(
            Rooms::Table,
            Expr::col((Rooms::Table, Rooms::Id)).equals((Memberships::Table, Memberships::RoomId)),
        )
        .and_where(Expr::col((Memberships::Table, Memberships::UserId)).eq(user.0))
        .order_by_expr(rank(), Order::Desc)
        .order_by_expr(activity(), Order::Desc)
        .order_by((Rooms::Table, Rooms::Id), Order::Desc)
        .to_owned()
}

/// Counts the messages of others in the outer membership's room after its read watermark,
/// not deleted; with `mentioning`, only those that mention that user.
pub(crate) fn unread(user: UserId, mentioning: bool) -> SimpleExpr {
    let mut q = Query::select();
    q.expr(Expr::col(Asterisk).count())
        .from(Messages::Table)
        .and_where(
            Expr::col((Messages::Table, Messages::RoomId))
                .equals((Memberships::Table, Memberships::RoomId)),
        )
        .and_where(
            Expr::col((Messages::Table, Messages::Seq))
                .gt(Expr::col((Memberships::Table, Memberships::ReadSeq))),
        )
        .and_where(Expr::col((Messages::Table, Messages::SenderId)).ne(user.0))
        .and_where(Expr::col((Messages::Table, Messages::Deleted)).eq(false));
    if mentioning {
        q.inner_join(
            Mentions::Table,
            Expr::col((Mentions::Table, Mentions::RoomId))
                .equals((Messages::Table, Messages::RoomId))
                .and(
                    Expr::col((Mentions::Table, Mentions::Seq))
                        .equals((Messages::Table, Messages::Seq)),
                )
                .and(Expr::col((Mentions::Table, Mentions::UserId)).eq(user.0)),
        );
    }
    SimpleExpr::SubQuery(None, Box::new(q.into_sub_query_statement()))
}

fn select_rooms() -> SelectStatement {
    Query::select()
        .columns(ROOM_COLUMNS.map(|c| (Rooms::Table, c)))
        .from(Rooms::Table)
        .to_owned()
}

fn membership_key(room: RoomId, user: UserId) -> [SimpleExpr; 2] {
    [
        Expr::col((Memberships::Table, Memberships::RoomId)).eq(room.0),
        Expr::col((Memberships::Table, Memberships::UserId)).eq(user.0),
    ]
}

fn insert_room(
    room: &NewRoom,
    direct_key: Option<String>,
    member_count: usize,
) -> Result<InsertStatement, StoreError> {
    Ok(Query::insert()
        .into_table(Rooms::Table)
        .columns([
            Rooms::Id,
            Rooms::Kind,
            Rooms::Name,
            Rooms::Topic,
            Rooms::Visibility,
            Rooms::CreatedBy,
            Rooms::CreatedAt,
            Rooms::MemberCount,
            Rooms::DirectKey,
        ])
        .values([
            room.id.0.into(),
            room.kind.as_str().into(),
            room.name.as_str().into(),
            room.topic.as_deref().into(),
            room.visibility.as_str().into(),
            room.created_by.0.into(),
            room.created_at.into(),
            (member_count as i64).into(),
            direct_key.into(),
        ])
        .map_err(StoreError::backend)?
        .to_owned())
}

/// Inserts memberships with the given watermarks; a user that does not exist fails the foreign
/// key (`NotFound`), one that is already a member `memberships_pkey` (`Conflict`).
async fn insert_members(
    conn: &mut PgConnection,
    room: RoomId,
    members: &[(UserId, Role)],
    joined_at: OffsetDateTime,
    watermark: Seq,
) -> Result<(), StoreError> {
    if members.is_empty() {
        return Ok(());
    }
    // Every member must be an open account (the foreign key alone would let closed ones in);
    // the share locks make a concurrent closing wait for us, or us see it closed.
    let ids: HashSet<Uuid> = members.iter().map(|(user, _)| user.0).collect();
    let open = Query::select()
        .column(Users::Id)
        .from(Users::Table)
        .and_where(Expr::col(Users::Id).is_in(ids.iter().copied()))
        .and_where(Expr::col(Users::DeletedAt).is_null())
        .lock(LockType::Share)
        .to_owned();
    let found: Vec<(Uuid,)> = fetch_all(&mut *conn, &open).await.map_err(db)?;
    if found.len() != ids.len() {
        return Err(StoreError::NotFound);
    }
    let mut insert = Query::insert();
    insert.into_table(Memberships::Table).columns([
        Memberships::RoomId,
        Memberships::UserId,
        Memberships::Role,
        Memberships::JoinedAt,
        Memberships::ReadSeq,
        Memberships::DeliveredSeq,
    ]);
    for (user, role) in members {
        insert
            .values([
                room.0.into(),
                user.0.into(),
                role.as_str().into(),
                joined_at.into(),
                watermark.0.into(),
                watermark.0.into(),
            ])
            .map_err(StoreError::backend)?;
    }
    execute(conn, &insert).await.map_err(db)?;
    Ok(())
}

/// Locks the room's row for the rest of the caller's transaction (every writer of a room takes
/// it first, so they never deadlock); `false` when there is no such room.
async fn lock_room(
    conn: &mut PgConnection,
    room: RoomId,
    lock: LockType,
) -> Result<bool, StoreError> {
    let q = Query::select()
        .column(Rooms::Id)
        .from(Rooms::Table)
        .and_where(Expr::col(Rooms::Id).eq(room.0))
        .lock(lock)
        .to_owned();
    let locked: Option<(Uuid,)> = fetch_optional(conn, &q).await.map_err(db)?;
    Ok(locked.is_some())
}

/// The room as the API shows it, read in the caller's transaction.
pub(crate) async fn room_in(
    conn: &mut PgConnection,
    id: RoomId,
) -> Result<Option<Room>, StoreError> {
    let q = select_rooms()
        .and_where(Expr::col((Rooms::Table, Rooms::Id)).eq(id.0))
        .to_owned();
    let row: Option<RoomRow> = fetch_optional(&mut *conn, &q).await.map_err(db)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut room = Room::try_from(row)?;
    if room.last_seq > Seq::ZERO {
        room.last_message = message_at_seq(conn, room.id, room.last_seq)
            .await?
            .map(Box::new);
    }
    Ok(Some(room))
}

/// The room's members, oldest first (joined at, then user id), closed accounts included.
fn select_members(room: RoomId) -> SelectStatement {
    let joined_at = (Memberships::Table, Memberships::JoinedAt);
    let user_id = (Memberships::Table, Memberships::UserId);
    Query::select()
        .columns(USER_COLUMNS.map(|c| (Users::Table, c)))
        .columns([
            (Memberships::Table, Memberships::RoomId),
            (Memberships::Table, Memberships::Role),
            joined_at,
        ])
        .from(Memberships::Table)
        .inner_join(
            Users::Table,
            Expr::col((Users::Table, Users::Id)).equals(user_id),
        )
        .and_where(Expr::col((Memberships::Table, Memberships::RoomId)).eq(room.0))
        .order_by(joined_at, Order::Asc)
        .order_by(user_id, Order::Asc)
        .to_owned()
}

/// Those of `users` who are members of the room, oldest first, read in the caller's
/// transaction.
pub(crate) async fn members_in(
    conn: &mut PgConnection,
    room: RoomId,
    users: &[UserId],
) -> Result<Vec<Member>, StoreError> {
    let q = select_members(room)
        .and_where(
            Expr::col((Memberships::Table, Memberships::UserId)).is_in(users.iter().map(|u| u.0)),
        )
        .to_owned();
    let rows: Vec<MemberRow> = fetch_all(conn, &q).await.map_err(db)?;
    rows.into_iter().map(Member::try_from).collect()
}

/// Records `room.created` and its first members' `member.joined` in the caller's transaction.
async fn record_created(
    conn: &mut PgConnection,
    channels: &Channels,
    room: RoomId,
    members: &[(UserId, Role)],
) -> Result<(), StoreError> {
    if !channels.enabled() {
        return Ok(());
    }
    let mut events = Vec::with_capacity(members.len() + 1);
    if let Some(view) = room_in(&mut *conn, room).await? {
        events.push(Envelope::of_room(EventType::RoomCreated, &view));
    }
    let users: Vec<UserId> = members.iter().map(|(u, _)| *u).collect();
    for member in members_in(&mut *conn, room, &users).await? {
        events.push(Envelope::of_member(EventType::MemberJoined, &member));
    }
    outbox::record(conn, channels, &events).await
}

#[async_trait]
impl RoomStore for PgStore {
    #[tracing::instrument(name = "db.room.create", skip_all, err)]
    async fn create_room(
        &self,
        room: &NewRoom,
        members: &[(UserId, Role)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let insert = insert_room(room, None, members.len())?;
        execute(&mut *tx, &insert).await.map_err(db)?;
        insert_members(&mut tx, room.id, members, room.created_at, Seq::ZERO).await?;
        record_created(&mut tx, &self.channels, room.id, members).await?;
        tx.commit().await.map_err(db)
    }

    #[tracing::instrument(name = "db.room.direct", skip_all, err)]
    async fn direct_room(
        &self,
        room: &NewRoom,
        a: UserId,
        b: UserId,
    ) -> Result<(RoomId, bool), StoreError> {
        let key = direct_key(a, b);
        let mut members = vec![(a, Role::Member)];
        if b != a {
            members.push((b, Role::Member));
        }
        let insert = insert_room(room, Some(key.clone()), members.len())?
            .on_conflict(OnConflict::column(Rooms::DirectKey).do_nothing().to_owned())
            .returning_col(Rooms::Id)
            .to_owned();
        let existing = Query::select()
            .column(Rooms::Id)
            .from(Rooms::Table)
            .and_where(Expr::col(Rooms::DirectKey).eq(key.as_str()))
            .to_owned();
        loop {
            // Of two nodes inserting the pair's room at once, the second waits on the unique
            // key until the first commits, then inserts nothing and finds the first's room.
            let mut tx = self.pool.begin().await.map_err(db)?;
            let inserted: Option<(Uuid,)> = fetch_optional(&mut *tx, &insert).await.map_err(db)?;
            if inserted.is_some() {
                insert_members(&mut tx, room.id, &members, room.created_at, Seq::ZERO).await?;
                record_created(&mut tx, &self.channels, room.id, &members).await?;
                tx.commit().await.map_err(db)?;
                return Ok((room.id, true));
            }
            let found: Option<(Uuid,)> = fetch_optional(&mut *tx, &existing).await.map_err(db)?;
            tx.rollback().await.map_err(db)?;
            if let Some((id,)) = found {
                return Ok((RoomId(id), false));
            }
            // The room that was in the way has been deleted since (its members all left), so
            // the pair has none again: try once more.
        }
    }

    #[tracing::instrument(name = "db.room.get", skip_all, err)]
    async fn room(&self, id: RoomId) -> Result<Option<Room>, StoreError> {
        let q = select_rooms()
            .and_where(Expr::col((Rooms::Table, Rooms::Id)).eq(id.0))
            .to_owned();
        let row: Option<RoomRow> = fetch_optional(&self.pool, &q).await.map_err(db)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut room = Room::try_from(row)?;
        if room.last_seq > Seq::ZERO {
            room.last_message = last_messages(&self.pool, [(room.id, room.last_seq)])
                .await?
                .remove(&room.id)
                .map(Box::new);
        }
        Ok(Some(room))
    }

    #[tracing::instrument(name = "db.room.update", skip_all, err)]
    async fn update_room(
        &self,
        room: RoomId,
        patch: &RoomPatch,
    ) -> Result<Option<Room>, StoreError> {
        let mut values: Vec<(Rooms, SimpleExpr)> = Vec::new();
        if let Some(name) = &patch.name {
            values.push((Rooms::Name, name.as_str().into()));
        }
        if let Some(topic) = &patch.topic {
            values.push((Rooms::Topic, topic.as_ref().map(|t| t.as_str()).into()));
        }
        if let Some(visibility) = patch.visibility {
            values.push((Rooms::Visibility, visibility.as_str().into()));
        }
        if values.is_empty() {
            return self.room(room).await;
        }
        let mut tx = self.pool.begin().await.map_err(db)?;
        let update = Query::update()
            .table(Rooms::Table)
            .values(values)
            .and_where(Expr::col(Rooms::Id).eq(room.0))
            .to_owned();
        if execute(&mut *tx, &update).await.map_err(db)? == 0 {
            return Ok(None);
        }
        let updated = room_in(&mut tx, room).await?;
        if let Some(view) = &updated {
            let event = Envelope::of_room(EventType::RoomUpdated, view);
            outbox::record(&mut tx, &self.channels, &[event]).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(updated)
    }

    #[tracing::instrument(name = "db.room.public", skip_all, err)]
    async fn public_rooms(
        &self,
        text: &str,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<Room>, StoreError> {
        let pattern = format!("%{}%", crate::query::like_literal(&text.to_lowercase()));
        let mut q = select_rooms()
            .and_where(Expr::col((Rooms::Table, Rooms::Kind)).eq(RoomKind::Group.as_str()))
            .and_where(Expr::col((Rooms::Table, Rooms::Visibility)).eq(Visibility::Public.as_str()))
            .and_where(
                Expr::expr(Func::lower(Expr::col((Rooms::Table, Rooms::Name))))
                    .like(sea_query::LikeExpr::new(pattern).escape('\\')),
            )
            .order_by((Rooms::Table, Rooms::MemberCount), Order::Desc)
            .order_by((Rooms::Table, Rooms::Id), Order::Desc)
            .limit(u64::from(limit))
            .to_owned();
        if let Some(after) = after {
            q.and_where(
                Expr::tuple([
                    Expr::col((Rooms::Table, Rooms::MemberCount)).into(),
                    Expr::col((Rooms::Table, Rooms::Id)).into(),
                ])
                .lt(Expr::tuple([after.rank.into(), after.id.into()])),
            );
        }
        let rows: Vec<RoomRow> = fetch_all(&self.pool, &q).await.map_err(db)?;
        let mut rooms = rows
            .into_iter()
            .map(Room::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let with_messages = rooms
            .iter()
            .filter(|r| r.last_seq > Seq::ZERO)
            .map(|r| (r.id, r.last_seq));
        let mut last = last_messages(&self.pool, with_messages).await?;
        for room in &mut rooms {
            room.last_message = last.remove(&room.id).map(Box::new);
        }
        Ok(rooms)
    }

    #[tracing::instrument(name = "db.room.list_of_user", skip_all, err)]
    async fn rooms_of_user(
        &self,
        user: UserId,
        include_archived: bool,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<RoomListItem>, StoreError> {
        let mut q = my_rooms(user);
        q.columns(ROOM_COLUMNS.map(|c| (Rooms::Table, c)))
            .columns(MEMBERSHIP_COLUMNS.map(|c| (Memberships::Table, c)))
            .expr_as(unread(user, false), Derived::UnreadCount)
            .expr_as(unread(user, true), Derived::MentionCount)
            .limit(u64::from(limit));
        if !include_archived {
            q.and_where(Expr::col((Memberships::Table, Memberships::Archived)).eq(false));
        }
        if let Some(after) = after {
            // Every key sorts descending, so "after the cursor" is "less than it" as a row value.
            q.and_where(
                Expr::tuple([
                    rank(),
                    activity(),
                    Expr::col((Rooms::Table, Rooms::Id)).into(),
                ])
                .lt(Expr::tuple([
                    after.rank.into(),
                    from_micros(after.at_micros).into(),
                    after.id.into(),
                ])),
            );
        }
        let rows: Vec<RoomListRow> = fetch_all(&self.pool, &q).await.map_err(db)?;
        let mut items = rows
            .into_iter()
            .map(RoomListItem::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let with_messages = items
            .iter()
            .filter(|i| i.room.last_seq > Seq::ZERO)
            .map(|i| (i.room.id, i.room.last_seq));
        let mut last = last_messages(&self.pool, with_messages).await?;
        for item in &mut items {
            item.room.last_message = last.remove(&item.room.id).map(Box::new);
        }
        Ok(items)
    }

    #[tracing::instrument(name = "db.room.positions", skip_all, err)]
    async fn room_positions(
        &self,
        user: UserId,
        max: u32,
    ) -> Result<Vec<RoomPosition>, StoreError> {
        let q = my_rooms(user)
            .column((Memberships::Table, Memberships::RoomId))
            .columns([(Rooms::Table, Rooms::LastSeq), (Rooms::Table, Rooms::Rev)])
            .column((Memberships::Table, Memberships::ReadSeq))
            .limit(u64::from(max))
            .to_owned();
        let rows: Vec<PositionRow> = fetch_all(&self.pool, &q).await.map_err(db)?;
        Ok(rows.into_iter().map(RoomPosition::from).collect())
    }

    #[tracing::instrument(name = "db.membership.get", skip_all, err)]
    async fn membership(
        &self,
        room: RoomId,
        user: UserId,
    ) -> Result<Option<Membership>, StoreError> {
        let mut q = Query::select();
        q.columns(MEMBERSHIP_COLUMNS).from(Memberships::Table);
        for key in membership_key(room, user) {
            q.and_where(key);
        }
        let row: Option<MembershipRow> = fetch_optional(&self.pool, &q).await.map_err(db)?;
        row.map(Membership::try_from).transpose()
    }

    #[tracing::instrument(name = "db.membership.list", skip_all, err)]
    async fn members(
        &self,
        room: RoomId,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<Member>, StoreError> {
        let joined_at = (Memberships::Table, Memberships::JoinedAt);
        let user_id = (Memberships::Table, Memberships::UserId);
        let mut q = select_members(room);
        q.limit(u64::from(limit));
        if let Some(after) = after {
            q.and_where(
                Expr::tuple([Expr::col(joined_at).into(), Expr::col(user_id).into()]).gt(
                    Expr::tuple([from_micros(after.at_micros).into(), after.id.into()]),
                ),
            );
        }
        let rows: Vec<MemberRow> = fetch_all(&self.pool, &q).await.map_err(db)?;
        rows.into_iter().map(Member::try_from).collect()
    }

    #[tracing::instrument(name = "db.membership.oldest", skip_all, err)]
    async fn oldest_member(
        &self,
        room: RoomId,
        role: Role,
        except: UserId,
    ) -> Result<Option<UserId>, StoreError> {
        let q = Query::select()
            .column(Memberships::UserId)
            .from(Memberships::Table)
            .and_where(Expr::col(Memberships::RoomId).eq(room.0))
            .and_where(Expr::col(Memberships::Role).eq(role.as_str()))
            .and_where(Expr::col(Memberships::UserId).ne(except.0))
            .order_by(Memberships::JoinedAt, Order::Asc)
            .order_by(Memberships::UserId, Order::Asc)
            .limit(1)
            .to_owned();
        let row: Option<(Uuid,)> = fetch_optional(&self.pool, &q).await.map_err(db)?;
        Ok(row.map(|(id,)| UserId(id)))
    }

    #[tracing::instrument(name = "db.membership.named", skip_all, err)]
    async fn members_named(
        &self,
        room: RoomId,
        username_keys: &[String],
    ) -> Result<Vec<UserId>, StoreError> {
        if username_keys.is_empty() {
            return Ok(Vec::new());
        }
        let q = Query::select()
            .column((Memberships::Table, Memberships::UserId))
            .from(Memberships::Table)
            .inner_join(
                Users::Table,
                Expr::col((Users::Table, Users::Id))
                    .equals((Memberships::Table, Memberships::UserId)),
            )
            .and_where(Expr::col((Memberships::Table, Memberships::RoomId)).eq(room.0))
            .and_where(
                Expr::col((Users::Table, Users::UsernameKey))
                    .is_in(username_keys.iter().map(String::as_str)),
            )
            .order_by((Users::Table, Users::UsernameKey), Order::Asc)
            .to_owned();
        let rows: Vec<(Uuid,)> = fetch_all(&self.pool, &q).await.map_err(db)?;
        Ok(rows.into_iter().map(|(id,)| UserId(id)).collect())
    }

    #[tracing::instrument(name = "db.membership.add", skip_all, err)]
    async fn add_member(
        &self,
        room: RoomId,
        user: UserId,
        role: Role,
        joined_at: OffsetDateTime,
    ) -> Result<(Member, Seq), StoreError> {
        // The time as stored, so the member returned equals the member read back.
        let joined_at = from_micros(micros(joined_at));
        // Returning early drops the transaction, which rolls back whatever it had done.
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The room's row lock orders the join among the appends: every message after the
        // `last_seq` read here is appended after the member is in, and counts as unread.
        let count = Query::update()
            .table(Rooms::Table)
            .value(Rooms::MemberCount, Expr::col(Rooms::MemberCount).add(1))
            .and_where(Expr::col(Rooms::Id).eq(room.0))
            .returning(Query::returning().column(Rooms::LastSeq))
            .to_owned();
        let last_seq: Option<(i64,)> = fetch_optional(&mut *tx, &count).await.map_err(db)?;
        let (last_seq,) = last_seq.ok_or(StoreError::NotFound)?;

        let q = Query::select()
            .columns(USER_COLUMNS)
            .from(Users::Table)
            .and_where(Expr::col(Users::Id).eq(user.0))
            .and_where(Expr::col(Users::DeletedAt).is_null())
            // Closing the account updates this row: it waits for us, or we see it closed.
            .lock(LockType::Share)
            .to_owned();
        let row: Option<UserRow> = fetch_optional(&mut *tx, &q).await.map_err(db)?;
        let member = User::try_from(row.ok_or(StoreError::NotFound)?)?.public();

        // A ban takes the room's row lock too, so it is either visible here or waits for us.
        let ban = Query::select()
            .expr(Expr::val(1))
            .from(RoomBans::Table)
            .and_where(Expr::col(RoomBans::RoomId).eq(room.0))
            .and_where(Expr::col(RoomBans::UserId).eq(user.0))
            .to_owned();
        let banned: Option<(i32,)> = fetch_optional(&mut *tx, &ban).await.map_err(db)?;
        if banned.is_some() {
            return Err(StoreError::Conflict {
                constraint: constraint::BAN,
            });
        }
        insert_members(&mut tx, room, &[(user, role)], joined_at, Seq(last_seq)).await?;
        let member = Member {
            room_id: room,
            user: member,
            role,
            joined_at,
        };
        let event = Envelope::of_member(EventType::MemberJoined, &member);
        outbox::record(&mut tx, &self.channels, &[event]).await?;
        tx.commit().await.map_err(db)?;
        Ok((member, Seq(last_seq)))
    }

    #[tracing::instrument(name = "db.membership.remove", skip_all, err)]
    async fn remove_member(
        &self,
        room: RoomId,
        user: UserId,
        promote: Option<UserId>,
    ) -> Result<i64, StoreError> {
        // Returning early drops the transaction, which rolls back whatever it had done.
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The room's row first, as appends take it before the sender's membership: locking the
        // membership first would deadlock with a message the leaving member is sending.
        if !lock_room(&mut tx, room, LockType::NoKeyUpdate).await? {
            return Err(StoreError::NotFound);
        }
        let mut events = Vec::new();
        if self.channels.enabled() {
            for member in members_in(&mut tx, room, &[user]).await? {
                events.push(Envelope::of_member(EventType::MemberLeft, &member));
            }
        }
        let mut delete = Query::delete();
        delete.from_table(Memberships::Table);
        for key in membership_key(room, user) {
            delete.and_where(key);
        }
        if execute(&mut *tx, &delete).await.map_err(db)? == 0 {
            return Err(StoreError::NotFound);
        }
        if let Some(heir) = promote {
            let mut update = Query::update();
            update
                .table(Memberships::Table)
                .value(Memberships::Role, Role::Owner.as_str());
            for key in membership_key(room, heir) {
                update.and_where(key);
            }
            if execute(&mut *tx, &update).await.map_err(db)? == 0 {
                return Err(StoreError::NotFound);
            }
            if self.channels.enabled() {
                for member in members_in(&mut tx, room, &[heir]).await? {
                    events.push(Envelope::of_member(EventType::MemberUpdated, &member));
                }
            }
        }
        outbox::record(&mut tx, &self.channels, &events).await?;
        let count = Query::update()
            .table(Rooms::Table)
            .value(Rooms::MemberCount, Expr::col(Rooms::MemberCount).sub(1))
            .and_where(Expr::col(Rooms::Id).eq(room.0))
            .returning(Query::returning().column(Rooms::MemberCount))
            .to_owned();
        let left: Option<(i64,)> = fetch_optional(&mut *tx, &count).await.map_err(db)?;
        let (left,) = left.ok_or(StoreError::NotFound)?;
        tx.commit().await.map_err(db)?;
        Ok(left)
    }

    #[tracing::instrument(name = "db.membership.set_roles", skip_all, err)]
    async fn set_roles(&self, room: RoomId, roles: &[(UserId, Role)]) -> Result<(), StoreError> {
        // Returning early drops the transaction, which rolls back whatever it had done.
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The room's row first, in the order every writer of a room takes its locks.
        if !lock_room(&mut tx, room, LockType::NoKeyUpdate).await? {
            return Err(StoreError::NotFound);
        }
        for (user, role) in roles {
            let mut update = Query::update();
            update
                .table(Memberships::Table)
                .value(Memberships::Role, role.as_str());
            for key in membership_key(room, *user) {
                update.and_where(key);
            }
            if execute(&mut *tx, &update).await.map_err(db)? == 0 {
                return Err(StoreError::NotFound);
            }
        }
        if self.channels.enabled() {
            let users: Vec<UserId> = roles.iter().map(|(u, _)| *u).collect();
            let events: Vec<Envelope> = members_in(&mut tx, room, &users)
                .await?
                .iter()
                .map(|m| Envelope::of_member(EventType::MemberUpdated, m))
                .collect();
            outbox::record(&mut tx, &self.channels, &events).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.membership.settings", skip_all, err)]
    async fn update_settings(
        &self,
        room: RoomId,
        user: UserId,
        settings: &SettingsPatch,
    ) -> Result<Option<Membership>, StoreError> {
        let values: Vec<(Memberships, SimpleExpr)> = [
            (Memberships::Pinned, settings.pinned),
            (Memberships::Muted, settings.muted),
            (Memberships::Archived, settings.archived),
        ]
        .into_iter()
        .filter_map(|(column, value)| value.map(|v| (column, v.into())))
        .collect();
        if values.is_empty() {
            return self.membership(room, user).await;
        }
        // One statement: the change and the row it leaves, with no window between them.
        let mut update = Query::update();
        update
            .table(Memberships::Table)
            .values(values)
            .returning(Query::returning().columns(MEMBERSHIP_COLUMNS));
        for key in membership_key(room, user) {
            update.and_where(key);
        }
        let row: Option<MembershipRow> = fetch_optional(&self.pool, &update).await.map_err(db)?;
        row.map(Membership::try_from).transpose()
    }

    #[tracing::instrument(name = "db.room.delete_if_empty", skip_all, err)]
    async fn delete_room_if_empty(&self, room: RoomId) -> Result<bool, StoreError> {
        // One statement decides and deletes: it waits for a join in progress and then sees its
        // member. The cascades take the memberships, messages and mentions along.
        let delete = Query::delete()
            .from_table(Rooms::Table)
            .and_where(Expr::col(Rooms::Id).eq(room.0))
            .and_where(Expr::col(Rooms::MemberCount).eq(0))
            .to_owned();
        if !self.channels.enabled() {
            return Ok(execute(&self.pool, &delete).await.map_err(db)? > 0);
        }
        // With events, the room is read under its row lock first, for `room.deleted`.
        let mut tx = self.pool.begin().await.map_err(db)?;
        if !lock_room(&mut tx, room, LockType::Update).await? {
            return Ok(false);
        }
        let gone = room_in(&mut tx, room).await?;
        let deleted = execute(&mut *tx, &delete).await.map_err(db)? > 0;
        if let Some(view) = gone.filter(|_| deleted) {
            let event = Envelope::of_room(EventType::RoomDeleted, &view);
            outbox::record(&mut tx, &self.channels, &[event]).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(deleted)
    }

    #[tracing::instrument(name = "db.room.delete", skip_all, err)]
    async fn delete_room(&self, room: RoomId) -> Result<Option<Vec<UploadId>>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The room's row first: appends in progress finish, later ones find no room.
        if !lock_room(&mut tx, room, LockType::Update).await? {
            return Ok(None);
        }
        // The uploads its live messages carry, read before the cascade takes the messages.
        let carried = Query::select()
            .distinct()
            .column(Messages::AttachmentId)
            .from(Messages::Table)
            .and_where(Expr::col(Messages::RoomId).eq(room.0))
            .and_where(Expr::col(Messages::AttachmentId).is_not_null())
            .and_where(Expr::col(Messages::Deleted).eq(false))
            .to_owned();
        let carried: Vec<(Uuid,)> = fetch_all(&mut *tx, &carried).await.map_err(db)?;
        if self.channels.enabled() {
            if let Some(view) = room_in(&mut tx, room).await? {
                let event = Envelope::of_room(EventType::RoomDeleted, &view);
                outbox::record(&mut tx, &self.channels, &[event]).await?;
            }
        }
        // The cascades take the memberships, messages, mentions, reactions and bans along.
        let delete = Query::delete()
            .from_table(Rooms::Table)
            .and_where(Expr::col(Rooms::Id).eq(room.0))
            .to_owned();
        execute(&mut *tx, &delete).await.map_err(db)?;
        let mut freed = Vec::new();
        if !carried.is_empty() {
            let id = (Uploads::Table, Uploads::Id);
            let q = Query::select()
                .column(id)
                .from(Uploads::Table)
                .and_where(Expr::col(id).is_in(carried.into_iter().map(|(id,)| id)))
                .and_where(Expr::exists(carriers(Expr::col(id))).not())
                .to_owned();
            let rows: Vec<(Uuid,)> = fetch_all(&mut *tx, &q).await.map_err(db)?;
            freed = rows.into_iter().map(|(id,)| UploadId(id)).collect();
        }
        tx.commit().await.map_err(db)?;
        Ok(Some(freed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{at, new_room, post, room, scratch, second_node, user};

    async fn set(store: &PgStore, room: RoomId, user: UserId, column: &str) {
        sqlx::query(&format!(
            "UPDATE memberships SET {column} = true WHERE room_id = $1 AND user_id = $2"
        ))
        .bind(room.0)
        .bind(user.0)
        .execute(store.pool())
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn pinned_rooms_lead_and_archived_ones_show_only_on_request() {
        let Some(store) = scratch().await else { return };
        let alice = user(&store, "alice").await;
        let old = room(&store, &[alice], at(1)).await;
        let pinned = room(&store, &[alice], at(2)).await;
        let archived = room(&store, &[alice], at(3)).await;
        let busy = room(&store, &[alice], at(4)).await;
        post(&store, busy, alice).await;
        set(&store, pinned, alice, "pinned").await;
        set(&store, archived, alice, "archived").await;

        // Page by one to walk the cursor through the pinned rank into the unpinned one.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.rooms_of_user(alice, false, after, 1).await.unwrap();
            let Some(item) = page.first() else { break };
            seen.push(item.room.id);
            after = Some(Cursor::new(
                i64::from(item.membership.pinned),
                item.room.last_message_at.unwrap_or(item.room.created_at),
                item.room.id.0,
            ));
        }
        assert_eq!(seen, vec![pinned, busy, old]);
        let everything = store.rooms_of_user(alice, true, None, 100).await.unwrap();
        assert_eq!(everything.len(), 4);
        let last = everything[1]
            .room
            .last_message
            .as_ref()
            .expect("busy has a last message");
        assert_eq!(last.seq, Seq(1));
    }

    #[tokio::test]
    async fn rooms_with_the_same_activity_page_by_id() {
        let Some(store) = scratch().await else { return };
        let alice = user(&store, "alice").await;
        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.push(room(&store, &[alice], at(1)).await);
        }
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.rooms_of_user(alice, false, after, 2).await.unwrap();
            let Some(item) = page.last() else { break };
            after = Some(Cursor::new(0, item.room.created_at, item.room.id.0));
            seen.extend(page.iter().map(|i| i.room.id));
        }
        assert_eq!(seen, ids);
    }

    #[tokio::test]
    async fn a_direct_room_with_an_unknown_user_writes_nothing() {
        let Some(store) = scratch().await else { return };
        let alice = user(&store, "alice").await;
        let mut spec = new_room(alice, at(0));
        spec.kind = RoomKind::Direct;
        let result = store
            .direct_room(&spec, alice, UserId(Uuid::new_v4()))
            .await;
        assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
        assert!(store.room(spec.id).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn direct_rooms_opened_on_two_nodes_at_once_are_one() {
        let Some(one) = scratch().await else { return };
        let two = second_node(&one).await;
        let alice = user(&one, "alice").await;
        let bob = user(&one, "bob").await;
        let tasks: Vec<_> = [one.clone(), two]
            .into_iter()
            .cycle()
            .take(10)
            .enumerate()
            .map(|(i, node)| {
                tokio::spawn(async move {
                    let mut spec = new_room(alice, at(0));
                    spec.kind = RoomKind::Direct;
                    let (a, b) = if i % 2 == 0 {
                        (alice, bob)
                    } else {
                        (bob, alice)
                    };
                    node.direct_room(&spec, a, b).await.unwrap()
                })
            })
            .collect();
        let mut ids = Vec::new();
        let mut created = 0;
        for task in tasks {
            let (id, c) = task.await.unwrap();
            ids.push(id);
            created += usize::from(c);
        }
        ids.dedup();
        assert_eq!((ids.len(), created), (1, 1));
        let room = one.room(ids[0]).await.unwrap().unwrap();
        assert_eq!(room.member_count, 2);
    }

    #[tokio::test]
    async fn a_direct_room_deleted_when_empty_is_made_again() {
        let Some(store) = scratch().await else { return };
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        let mut spec = new_room(alice, at(0));
        spec.kind = RoomKind::Direct;
        let (first, _) = store.direct_room(&spec, alice, bob).await.unwrap();
        store.remove_member(first, alice, None).await.unwrap();
        store.remove_member(first, bob, None).await.unwrap();
        assert!(store.delete_room_if_empty(first).await.unwrap());
        spec.id = RoomId(Uuid::new_v4());
        assert_eq!(
            store.direct_room(&spec, bob, alice).await.unwrap(),
            (spec.id, true)
        );
    }

    #[tokio::test]
    async fn leaving_while_sending_neither_deadlocks_nor_miscounts() {
        let Some(one) = scratch().await else { return };
        let two = second_node(&one).await;
        let alice = user(&one, "alice").await;
        let bob = user(&one, "bob").await;
        let room = room(&one, &[alice, bob], at(0)).await;
        let sender = tokio::spawn({
            let one = one.clone();
            async move {
                for _ in 0..50 {
                    post(&one, room, bob).await;
                }
            }
        });
        for i in 0..25 {
            two.remove_member(room, bob, None).await.unwrap();
            two.add_member(room, bob, Role::Member, at(i))
                .await
                .unwrap();
        }
        sender.await.unwrap();
        let r = one.room(room).await.unwrap().unwrap();
        assert_eq!((r.member_count, r.last_seq), (2, Seq(50)));
    }
}
