//! Conformance behaviours of closing accounts and what their purge reads.

use std::sync::Arc;

use uuid::Uuid;

use crate::domain::{Email, MessageId, Role, RoomId, UserId, UserPatch};
use crate::error::StoreError;
use crate::ports::{constraint, Store};

use super::uploads::stored;
use super::{add_room, add_user, new_room, new_session, new_user, post, t};

/// A closed account is no user to lookups, sign-in, search, profile changes or new
/// memberships; its sessions are revoked, its blocks and bans gone, its email free at once,
/// its username still taken. Closing it again is `NotFound`.
pub async fn closed_accounts_are_nobody_and_signed_out(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let room = add_room(&store, bob, &[]).await;
    let other_room = add_room(&store, bob, &[]).await;
    let first = new_session(alice, "a1", t(100));
    let second = new_session(alice, "a2", t(100));
    let bobs = new_session(bob, "b1", t(100));
    for s in [&first, &second, &bobs] {
        store.create_session(s).await.unwrap();
    }
    store.block_user(alice, bob, t(1)).await.unwrap();
    store.block_user(bob, alice, t(1)).await.unwrap();
    store.ban(other_room, alice, bob, t(1)).await.unwrap();

    let mut revoked = store.close_account(alice, t(10)).await.unwrap();
    revoked.sort();
    let mut expected = vec![first.id, second.id];
    expected.sort();
    assert_eq!(revoked, expected);
    let revoked_at = |id| {
        let store = store.clone();
        async move { store.session(id).await.unwrap().and_then(|s| s.revoked_at) }
    };
    assert_eq!(revoked_at(first.id).await, Some(t(10)));
    assert_eq!(revoked_at(bobs.id).await, None);

    assert_eq!(store.user(alice).await.unwrap(), None);
    assert!(store.credentials("alice").await.unwrap().is_none());
    assert!(store
        .credentials("alice@example.com")
        .await
        .unwrap()
        .is_none());
    assert!(store.search_users("al", None, 10).await.unwrap().is_empty());
    let patch = UserPatch {
        display_name: None,
        email: Some(None),
    };
    assert!(matches!(
        store.update_user(alice, &patch).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.add_member(room, alice, Role::Member, t(11)).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.membership(room, alice).await.unwrap().is_none());
    let with_alice = new_room(bob, t(11));
    assert!(matches!(
        store
            .create_room(&with_alice, &[(bob, Role::Owner), (alice, Role::Member)])
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.room(with_alice.id).await.unwrap(), None);
    let direct = new_room(bob, t(11));
    assert!(matches!(
        store.direct_room(&direct, bob, alice).await,
        Err(StoreError::NotFound)
    ));
    assert!(!store.is_blocked(alice, bob).await.unwrap());
    assert!(!store.is_blocked(bob, alice).await.unwrap());
    assert!(store.blocks(bob, None, 10).await.unwrap().is_empty());
    assert!(store.bans(other_room, None, 10).await.unwrap().is_empty());

    let mut carol = new_user("carol");
    carol.email = Some(Email::parse("alice@example.com").unwrap());
    store.create_user(&carol, "hash").await.unwrap();
    assert!(matches!(
        store.create_user(&new_user("Alice"), "hash").await,
        Err(StoreError::Conflict {
            constraint: constraint::USERNAME
        })
    ));
    assert!(matches!(
        store.close_account(alice, t(12)).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.close_account(UserId(Uuid::new_v4()), t(12)).await,
        Err(StoreError::NotFound)
    ));
}

/// A closed account waits for its purge, which finds its live messages (in every room) and its
/// uploads, until the purge is recorded as finished.
pub async fn closed_accounts_list_what_their_purge_removes(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let dave = add_user(&store, "dave").await;
    let first = add_room(&store, alice, &[bob]).await;
    let second = add_room(&store, bob, &[alice]).await;
    let kept = post(&store, first, alice, "one").await;
    let gone = post(&store, first, alice, "two").await;
    post(&store, first, bob, "bob's").await;
    let elsewhere = post(&store, second, alice, "three").await;
    store.delete_message(first, gone).await.unwrap();
    let upload = stored(&store, alice, "a.png").await;
    stored(&store, bob, "b.png").await;

    store.close_account(alice, t(10)).await.unwrap();
    store.close_account(dave, t(20)).await.unwrap();
    assert_eq!(
        store.unpurged_accounts(t(30), 10).await.unwrap(),
        [alice, dave],
        "oldest closure first"
    );
    assert_eq!(store.unpurged_accounts(t(30), 1).await.unwrap(), [alice]);
    assert_eq!(store.unpurged_accounts(t(10), 10).await.unwrap(), []);

    let mut live: Vec<(RoomId, MessageId)> = store.live_messages_by(alice, 10).await.unwrap();
    live.sort();
    let mut expected = vec![(first, kept), (second, elsewhere)];
    expected.sort();
    assert_eq!(live, expected);
    assert_eq!(store.live_messages_by(alice, 1).await.unwrap().len(), 1);
    assert_eq!(store.uploads_by(alice, 10).await.unwrap(), [upload.id]);

    store.finish_purge(alice).await.unwrap();
    assert_eq!(store.unpurged_accounts(t(30), 10).await.unwrap(), [dave]);
}

/// A closed account's username is freed only when it was closed before the given time, once;
/// an open account's username never.
pub async fn usernames_of_closed_accounts_are_released_after_quarantine(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    add_user(&store, "bob").await;
    store.close_account(alice, t(10)).await.unwrap();

    assert!(!store.release_username("alice", t(10)).await.unwrap());
    assert!(!store.release_username("bob", t(100)).await.unwrap());
    assert!(store.release_username("alice", t(11)).await.unwrap());
    assert!(!store.release_username("alice", t(11)).await.unwrap());
    let again = new_user("Alice");
    store.create_user(&again, "hash").await.unwrap();
    assert_eq!(
        store.credentials("alice").await.unwrap().map(|c| c.user.id),
        Some(again.id)
    );
    assert!(matches!(
        store.create_user(&new_user("bob"), "hash").await,
        Err(StoreError::Conflict {
            constraint: constraint::USERNAME
        })
    ));
}
