//! Conformance behaviours of moderation: blocks, bans, and deleting a room.

use std::sync::Arc;

use uuid::Uuid;

use crate::domain::{Cursor, HistoryAnchor, MessageKind, NewRoom, Role, RoomId, RoomKind, UserId};
use crate::error::StoreError;
use crate::ports::{constraint, Store};

use super::uploads::stored;
use super::{add_room, add_user, new_room, post, t, text};

/// A block is recorded once (blocking again keeps the first time), goes one way, is listed
/// oldest first with a cursor, and is lifted by unblocking (also when there is none).
pub async fn blocks_are_recorded_once_and_listed_oldest_first(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let carol = add_user(&store, "carol").await;
    store.block_user(alice, bob, t(1)).await.unwrap();
    store.block_user(alice, carol, t(2)).await.unwrap();
    store.block_user(alice, bob, t(3)).await.unwrap();
    assert!(store.is_blocked(alice, bob).await.unwrap());
    assert!(!store.is_blocked(bob, alice).await.unwrap());

    let all = store.blocks(alice, None, 10).await.unwrap();
    let listed: Vec<(UserId, _)> = all.iter().map(|b| (b.user.id, b.blocked_at)).collect();
    assert_eq!(listed, [(bob, t(1)), (carol, t(2))]);
    assert_eq!(all[0].user.email, None, "a block shows no email");
    let first = store.blocks(alice, None, 1).await.unwrap();
    let after = Cursor::new(0, first[0].blocked_at, first[0].user.id.0);
    let rest = store.blocks(alice, Some(after), 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].user.id, carol);
    assert!(store.blocks(bob, None, 10).await.unwrap().is_empty());

    let nobody = UserId(Uuid::new_v4());
    assert!(matches!(
        store.block_user(alice, nobody, t(4)).await,
        Err(StoreError::NotFound)
    ));
    store.unblock_user(alice, bob).await.unwrap();
    store.unblock_user(alice, bob).await.unwrap();
    assert!(!store.is_blocked(alice, bob).await.unwrap());
    let left: Vec<UserId> = store
        .blocks(alice, None, 10)
        .await
        .unwrap()
        .iter()
        .map(|b| b.user.id)
        .collect();
    assert_eq!(left, [carol]);
}

/// A block is found through the rooms the blocker is in, never through the blocked user's own
/// membership.
pub async fn blocks_are_found_through_the_other_members(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let spec = NewRoom {
        kind: RoomKind::Direct,
        name: String::new(),
        ..new_room(alice, t(1))
    };
    let (dm, _) = store.direct_room(&spec, alice, bob).await.unwrap();
    assert!(!store.blocked_by_member(dm, bob).await.unwrap());
    store.block_user(alice, bob, t(2)).await.unwrap();
    assert!(store.blocked_by_member(dm, bob).await.unwrap());
    assert!(!store.blocked_by_member(dm, alice).await.unwrap());
    store.unblock_user(alice, bob).await.unwrap();
    assert!(!store.blocked_by_member(dm, bob).await.unwrap());
}

/// A ban ends the membership (the count follows) and keeps the user from being added until
/// lifted; banning again keeps the first ban; a user who is not a member can be banned.
pub async fn bans_end_the_membership_and_keep_the_user_out(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let carol = add_user(&store, "carol").await;
    let room = add_room(&store, alice, &[bob]).await;

    assert_eq!(store.ban(room, bob, alice, t(2)).await.unwrap(), Some(1));
    assert!(store.membership(room, bob).await.unwrap().is_none());
    assert_eq!(store.room(room).await.unwrap().unwrap().member_count, 1);
    assert!(matches!(
        store.add_member(room, bob, Role::Member, t(3)).await,
        Err(StoreError::Conflict {
            constraint: constraint::BAN
        })
    ));
    assert!(store.membership(room, bob).await.unwrap().is_none());
    assert_eq!(store.room(room).await.unwrap().unwrap().member_count, 1);

    assert_eq!(store.ban(room, bob, alice, t(4)).await.unwrap(), None);
    assert_eq!(store.ban(room, carol, alice, t(5)).await.unwrap(), None);
    let bans = store.bans(room, None, 10).await.unwrap();
    let listed: Vec<(UserId, _, _)> = bans
        .iter()
        .map(|b| (b.user.id, b.banned_by, b.banned_at))
        .collect();
    assert_eq!(
        listed,
        [(bob, Some(alice), t(2)), (carol, Some(alice), t(5))]
    );
    assert!(bans
        .iter()
        .all(|b| b.room_id == room && b.user.email.is_none()));
    let after = Cursor::new(0, bans[0].banned_at, bans[0].user.id.0);
    let rest = store.bans(room, Some(after), 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].user.id, carol);

    assert!(store.unban(room, bob).await.unwrap());
    assert!(!store.unban(room, bob).await.unwrap());
    store
        .add_member(room, bob, Role::Member, t(6))
        .await
        .unwrap();
    assert_eq!(store.room(room).await.unwrap().unwrap().member_count, 2);
    let nobody = UserId(Uuid::new_v4());
    assert!(matches!(
        store.ban(room, nobody, alice, t(7)).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.ban(RoomId(Uuid::new_v4()), bob, alice, t(7)).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.bans(room, None, 10).await.unwrap().len(), 1);
}

/// Deleting a room takes its memberships, messages and bans, and names the uploads that only
/// its messages carried; a second delete finds nothing.
pub async fn deleting_a_room_frees_the_uploads_only_it_carried(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let carol = add_user(&store, "carol").await;
    let room = add_room(&store, alice, &[bob]).await;
    let other = add_room(&store, alice, &[bob]).await;
    let only_here = stored(&store, alice, "only-here.png").await;
    let shared = stored(&store, alice, "shared.png").await;
    for (target, upload) in [(room, &only_here), (room, &shared), (other, &shared)] {
        let mut file = text(target, alice, "file");
        file.kind = MessageKind::File;
        file.attachment = Some(upload.id);
        store.append_message(&file).await.unwrap();
    }
    post(&store, room, bob, "hello").await;
    store.ban(room, carol, alice, t(2)).await.unwrap();

    let freed = store.delete_room(room).await.unwrap();
    assert_eq!(freed, Some(vec![only_here.id]));
    assert!(store.room(room).await.unwrap().is_none());
    assert!(store.membership(room, bob).await.unwrap().is_none());
    assert!(store.bans(room, None, 10).await.unwrap().is_empty());
    assert!(store
        .history(room, HistoryAnchor::Latest, 10)
        .await
        .unwrap()
        .messages
        .is_empty());
    let positions = store.room_positions(bob, 10).await.unwrap();
    assert_eq!(
        positions.iter().map(|p| p.room_id).collect::<Vec<_>>(),
        [other]
    );
    // The store deletes no upload itself: the freed one is now unattached, the shared one
    // still readable where it is carried.
    assert_eq!(
        store.unattached_uploads(t(100), 10).await.unwrap(),
        [only_here.id]
    );
    assert!(store.may_read_upload(shared.id, bob).await.unwrap());
    assert_eq!(store.delete_room(room).await.unwrap(), None);
    assert!(store.room(other).await.unwrap().is_some());
}

/// A join racing a ban never leaves a banned member: either the join comes first and the ban
/// ends it, or the ban comes first and refuses the join.
pub async fn a_join_racing_a_ban_never_leaves_a_banned_member(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    for round in 0..20 {
        let room = add_room(&store, alice, &[]).await;
        let (joining, banning) = (store.clone(), store.clone());
        let join =
            tokio::spawn(async move { joining.add_member(room, bob, Role::Member, t(2)).await });
        let ban = tokio::spawn(async move { banning.ban(room, bob, alice, t(2)).await });
        let joined = join.await.expect("join task");
        ban.await.expect("ban task").expect("banned");
        assert!(
            matches!(
                joined,
                Ok(_)
                    | Err(StoreError::Conflict {
                        constraint: constraint::BAN
                    })
            ),
            "round {round}: {joined:?}"
        );
        assert!(
            store.membership(room, bob).await.unwrap().is_none(),
            "round {round}: the banned user is a member"
        );
        assert_eq!(store.room(room).await.unwrap().unwrap().member_count, 1);
    }
}
