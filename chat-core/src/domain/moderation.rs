//! Bans (per room) and blocks (per user).

use serde::Serialize;
use time::OffsetDateTime;

use super::{RoomId, User, UserId};

/// A user kept out of a room until unbanned.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ban {
    /// The room.
    pub room_id: RoomId,
    /// The banned user (without email).
    pub user: User,
    /// Who banned them; `null` once that account is gone.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub banned_by: Option<UserId>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub banned_at: OffsetDateTime,
}

/// A user someone blocked.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Block {
    /// The blocked user (without email).
    pub user: User,
    /// When they were blocked.
    #[serde(with = "time::serde::rfc3339")]
    pub blocked_at: OffsetDateTime,
}
