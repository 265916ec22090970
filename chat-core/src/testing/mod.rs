//! The store conformance suite (feature `testing`). An adapter crate runs it with
//!
//! ```ignore
//! async fn make_store() -> std::sync::Arc<dyn chat_core::ports::Store> { /* a fresh store */ }
//! async fn make_recording_store(channels: Vec<String>) -> std::sync::Arc<dyn chat_core::ports::Store> {
//!     /* a fresh store recording domain events for these outbox channels */
//! }
//! chat_core::store_conformance_tests!();
//! ```
//!
//! which expands into one `#[tokio::test]` per behaviour below. Every behaviour is a public
//! `async fn` taking a fresh store, so a failure names exactly what broke. A store that needs
//! an outside service may return `Option<Arc<dyn Store>>` instead: `None` skips the test, and
//! `make_store` says why (e.g. "skipped: CHAT_TEST_POSTGRES_URL is not set").

use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::domain::{
    ClientId, Cursor, DisplayName, Email, ExternalId, HistoryAnchor, MessageBody, MessageId,
    MessageKind, NewMessage, NewRoom, Rev, Role, RoomId, RoomKind, RoomName, RoomPatch, Seq,
    SessionId, SettingsPatch, Topic, User, UserId, UserPatch, Username, Visibility,
};
use crate::error::StoreError;
use crate::ports::{constraint, AuthSession, NodeId, Rotation, Store};

mod accounts;
mod changes;
mod moderation;
mod outbox;
mod uploads;
pub use accounts::*;
pub use changes::*;
pub use moderation::*;
pub use outbox::*;
pub use uploads::*;

/// Expands into one `#[tokio::test]` per conformance behaviour; needs an
/// `async fn make_store()` in scope returning `Arc<dyn Store>` or `Option<Arc<dyn Store>>`
/// (`None`: skip), and an `async fn make_recording_store(channels: Vec<String>)` returning the
/// same for a store that records domain events for those outbox channels.
#[macro_export]
macro_rules! store_conformance_tests {
    () => {
        $crate::store_conformance_tests!(@each
            users_are_created_and_found,
            usernames_and_emails_are_unique_case_insensitively,
            users_are_updated,
            external_users_are_provisioned_once,
            concurrent_provisioning_makes_one_user,
            refresh_tokens_rotate_once,
            concurrent_rotations_of_one_token_rotate_once,
            revoked_sessions_refresh_nothing,
            password_changes_revoke_the_other_sessions,
            closed_accounts_are_nobody_and_signed_out,
            closed_accounts_list_what_their_purge_removes,
            usernames_of_closed_accounts_are_released_after_quarantine,
            rooms_are_created_with_their_members,
            room_creation_with_an_unknown_member_writes_nothing,
            appends_assign_consecutive_seq_and_rev,
            appends_are_idempotent_per_sender_and_client_id,
            concurrent_appends_leave_no_gaps,
            failing_and_repeated_appends_in_a_burst_leave_the_others_intact,
            appends_move_the_senders_watermarks,
            appending_to_a_missing_room_is_not_found,
            history_pages_in_both_directions,
            messages_are_found_by_id_within_their_room,
            threads_and_mentions_round_trip,
            changed_since_selects_by_rev,
            room_lists_order_by_pin_and_activity_with_cursors,
            room_lists_count_unread_and_mentions,
            members_are_listed_oldest_first_without_email,
            adding_members_reports_conflicts_and_the_baseline,
            removing_a_member_can_hand_over_ownership,
            roles_change_together_or_not_at_all,
            only_empty_rooms_are_deleted,
            direct_rooms_are_one_per_pair,
            concurrent_direct_rooms_are_one_per_pair,
            room_positions_list_the_users_rooms,
            members_are_found_by_username,
            the_oldest_member_of_a_role_is_found,
            presence_counts_connections_across_nodes,
            presence_ignores_nodes_without_a_recent_heartbeat,
            reaping_forgets_dead_nodes_once,
            a_node_that_leaves_is_forgotten,
            away_is_kept_and_unknown_users_are_left_out,
            read_watermarks_only_move_forward,
            delivered_watermarks_only_move_forward,
            receipts_page_by_user,
            unread_counts_follow_the_read_watermark,
            settings_order_filter_and_mute,
            users_are_found_by_prefix,
            public_rooms_are_found_by_name,
            rooms_are_updated,
            messages_are_counted,
            threads_list_their_replies_in_order,
            edits_replace_text_and_mentions_with_a_new_rev,
            deletes_leave_tombstones,
            unread_counts_are_exact_after_reads_and_deletes,
            unread_counts_do_not_drift_under_concurrent_sends_and_reads,
            reactions_count_per_emoji_in_order_of_first_use,
            an_emoji_keeps_its_place_while_anyone_reacts_with_it,
            search_finds_every_word_in_the_users_rooms_only,
            search_follows_edits_and_deletes,
            search_pages_newest_first,
            uploads_are_stored_and_found,
            attachments_show_on_messages_and_let_members_read,
            appending_with_an_unknown_upload_is_not_found,
            deleting_an_upload_detaches_it,
            unattached_uploads_are_found_oldest_first,
            tickets_work_once_until_they_expire,
            blocks_are_recorded_once_and_listed_oldest_first,
            blocks_are_found_through_the_other_members,
            bans_end_the_membership_and_keep_the_user_out,
            a_join_racing_a_ban_never_leaves_a_banned_member,
            deleting_a_room_frees_the_uploads_only_it_carried,
            without_channels_nothing_is_recorded,
            ping_answers,
        );
        $crate::store_conformance_tests!(@recording
            changes_record_their_events_for_every_channel,
            outbox_turns_are_exclusive_and_delivered_events_stay_sent,
            outbox_failures_count_attempts_and_give_up_at_the_limit,
            outbox_pruning_keeps_pending_events,
        );
    };
    (@recording $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let channels = $crate::testing::CHANNELS.map(String::from).to_vec();
                let store: Option<std::sync::Arc<dyn $crate::ports::Store>> =
                    make_recording_store(channels).await.into();
                if let Some(store) = store {
                    $crate::testing::$name(store).await;
                }
            }
        )*
    };
    (@each $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store: Option<std::sync::Arc<dyn $crate::ports::Store>> =
                    make_store().await.into();
                if let Some(store) = store {
                    $crate::testing::$name(store).await;
                }
            }
        )*
    };
}

fn t(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + Duration::days(20_000) + Duration::seconds(seconds)
}

fn new_user(name: &str) -> User {
    User {
        id: UserId(Uuid::new_v4()),
        username: Username::parse(name).expect("valid username"),
        display_name: DisplayName::parse(name).expect("valid display name"),
        email: Some(Email::parse(&format!("{name}@example.com")).expect("valid email")),
        created_at: t(0),
    }
}

async fn add_user(store: &Arc<dyn Store>, name: &str) -> UserId {
    let user = new_user(name);
    store.create_user(&user, "hash").await.expect("create user");
    user.id
}

fn new_room(creator: UserId, at: OffsetDateTime) -> NewRoom {
    NewRoom {
        id: RoomId(Uuid::new_v4()),
        kind: RoomKind::Group,
        name: "general".into(),
        topic: Some("chat".into()),
        visibility: Visibility::Private,
        created_by: creator,
        created_at: at,
    }
}

async fn add_room(store: &Arc<dyn Store>, owner: UserId, others: &[UserId]) -> RoomId {
    add_room_at(store, owner, others, t(1)).await
}

async fn add_room_at(
    store: &Arc<dyn Store>,
    owner: UserId,
    others: &[UserId],
    at: OffsetDateTime,
) -> RoomId {
    let room = new_room(owner, at);
    let mut members = vec![(owner, Role::Owner)];
    members.extend(others.iter().map(|&u| (u, Role::Member)));
    store
        .create_room(&room, &members)
        .await
        .expect("create room");
    room.id
}

fn text(room: RoomId, sender: UserId, body: &str) -> NewMessage {
    NewMessage {
        id: MessageId(Uuid::new_v4()),
        room_id: room,
        sender_id: sender,
        kind: MessageKind::Text,
        body: Some(MessageBody::parse(body, 4000).expect("valid body")),
        client_id: None,
        reply_to: None,
        thread_id: None,
        attachment: None,
        mentions: Vec::new(),
        created_at: t(10),
    }
}

async fn post(store: &Arc<dyn Store>, room: RoomId, sender: UserId, body: &str) -> MessageId {
    let appended = store
        .append_message(&text(room, sender, body))
        .await
        .expect("append");
    appended.message.id
}

fn seqs(messages: &[crate::domain::Message]) -> Vec<i64> {
    messages.iter().map(|m| m.seq.0).collect()
}

/// Roles change together (a hand-over makes one owner and the other admin), and not at all
/// when one of those named is not a member.
pub async fn roles_change_together_or_not_at_all(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let eve = add_user(&store, "eve").await;
    let room = add_room(&store, alice, &[bob]).await;
    let role = |user| {
        let store = store.clone();
        async move { store.membership(room, user).await.unwrap().map(|m| m.role) }
    };
    store
        .set_roles(room, &[(bob, Role::Owner), (alice, Role::Admin)])
        .await
        .expect("handed over");
    assert_eq!(
        (role(alice).await, role(bob).await),
        (Some(Role::Admin), Some(Role::Owner))
    );
    let refused = store
        .set_roles(room, &[(alice, Role::Member), (eve, Role::Admin)])
        .await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
    assert_eq!(role(alice).await, Some(Role::Admin), "nothing changed");
    assert_eq!(role(eve).await, None);
    let missing = store
        .set_roles(RoomId(Uuid::new_v4()), &[(alice, Role::Member)])
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
}

/// A ticket is taken once, only before it expires; creating tickets forgets expired ones.
pub async fn tickets_work_once_until_they_expire(store: Arc<dyn Store>) {
    use crate::ports::TicketGrant;
    let alice = add_user(&store, "alice").await;
    let grant = TicketGrant {
        user: alice,
        session: Some(SessionId(Uuid::new_v4())),
    };
    store
        .create_ticket("hash-1", grant, t(30), t(0))
        .await
        .expect("stored");
    store
        .create_ticket("hash-2", grant, t(30), t(0))
        .await
        .expect("stored");
    assert_eq!(
        store.take_ticket("hash-1", t(10)).await.unwrap(),
        Some(grant)
    );
    assert_eq!(
        store.take_ticket("hash-1", t(10)).await.unwrap(),
        None,
        "once"
    );
    assert_eq!(store.take_ticket("nope", t(10)).await.unwrap(), None);
    assert_eq!(
        store.take_ticket("hash-2", t(31)).await.unwrap(),
        None,
        "expired"
    );
    let anonymous = TicketGrant {
        user: alice,
        session: None,
    };
    store
        .create_ticket("hash-3", anonymous, t(100), t(40))
        .await
        .expect("stored");
    assert_eq!(
        store.take_ticket("hash-3", t(100)).await.unwrap(),
        Some(anonymous)
    );
}

/// A created user is found by id, and by username or email in any case.
pub async fn users_are_created_and_found(store: Arc<dyn Store>) {
    let user = new_user("Alice");
    store.create_user(&user, "phc-hash").await.unwrap();
    assert_eq!(store.user(user.id).await.unwrap(), Some(user.clone()));
    for login in ["alice", "ALICE", "Alice@Example.com"] {
        let creds = store.credentials(login).await.unwrap().expect(login);
        assert_eq!(creds.user, user);
        assert_eq!(creds.password_hash, "phc-hash");
    }
    assert!(store.credentials("bob").await.unwrap().is_none());
    assert!(store.user(UserId(Uuid::new_v4())).await.unwrap().is_none());
}

/// Usernames and emails conflict case-insensitively, naming the constraint.
pub async fn usernames_and_emails_are_unique_case_insensitively(store: Arc<dyn Store>) {
    add_user(&store, "alice").await;
    let dup = new_user("ALICE");
    match store.create_user(&dup, "h").await {
        Err(StoreError::Conflict { constraint: c }) => assert_eq!(c, constraint::USERNAME),
        other => panic!("expected username conflict, got {other:?}"),
    }
    let mut other = new_user("bob");
    other.email = Some(Email::parse("ALICE@example.COM").unwrap());
    match store.create_user(&other, "h").await {
        Err(StoreError::Conflict { constraint: c }) => assert_eq!(c, constraint::EMAIL),
        other => panic!("expected email conflict, got {other:?}"),
    }
    assert!(store.credentials("bob").await.unwrap().is_none());
}

fn external(subject: &str) -> ExternalId {
    ExternalId {
        issuer: "https://host.example".into(),
        subject: subject.into(),
    }
}

/// A host's subject gets one user, found again by issuer and subject, with no password; a
/// taken username is a conflict that stores nothing.
pub async fn external_users_are_provisioned_once(store: Arc<dyn Store>) {
    add_user(&store, "alice").await;
    let id = external("42");
    assert_eq!(store.external_user(&id).await.unwrap(), None);
    let mut taken = new_user("ALICE");
    taken.email = None;
    match store.provision_external_user(&id, &taken).await {
        Err(StoreError::Conflict { constraint: c }) => assert_eq!(c, constraint::USERNAME),
        other => panic!("expected a username conflict, got {other:?}"),
    }
    assert_eq!(store.external_user(&id).await.unwrap(), None);
    assert_eq!(store.user(taken.id).await.unwrap(), None);

    let mut carol = new_user("carol");
    carol.email = None;
    assert_eq!(
        store.provision_external_user(&id, &carol).await.unwrap(),
        carol
    );
    assert_eq!(store.external_user(&id).await.unwrap(), Some(carol.clone()));
    assert_eq!(store.user(carol.id).await.unwrap(), Some(carol.clone()));
    // Another provisioning of the same subject returns the first user and stores nothing.
    let mut again = new_user("carol2");
    again.email = None;
    assert_eq!(
        store.provision_external_user(&id, &again).await.unwrap(),
        carol
    );
    assert_eq!(store.user(again.id).await.unwrap(), None);
    // The same subject from another issuer is someone else.
    let other = ExternalId {
        issuer: "https://other.example".into(),
        subject: "42".into(),
    };
    assert_eq!(store.external_user(&other).await.unwrap(), None);
    let creds = store.credentials("carol").await.unwrap().expect("carol");
    assert_eq!(
        creds.password_hash, "",
        "a provisioned user has no password"
    );
}

/// Many first uses of one subject at once, some wanting the same username, make exactly one
/// user and all return it.
pub async fn concurrent_provisioning_makes_one_user(store: Arc<dyn Store>) {
    let id = external("7");
    let attempts = (0..8).map(|i| {
        let store = store.clone();
        let id = id.clone();
        async move {
            // Half of them want the same username: on a store with real concurrency the losers
            // meet the winner's uncommitted user before its link.
            let name = if i % 2 == 0 {
                "dave".to_owned()
            } else {
                format!("dave{i}")
            };
            let mut user = new_user(&name);
            user.email = None;
            store.provision_external_user(&id, &user).await
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    let ids: std::collections::HashSet<UserId> = results
        .into_iter()
        .map(|r| r.expect("every attempt returns the user").id)
        .collect();
    assert_eq!(ids.len(), 1, "one user for the subject");
    let winner = *ids.iter().next().unwrap();
    assert_eq!(
        store.external_user(&id).await.unwrap().map(|u| u.id),
        Some(winner)
    );
    let made = store.search_users("dave", None, 50).await.unwrap();
    assert_eq!(made.len(), 1, "the losers' users were not kept: {made:?}");
}

/// Profile changes apply, clear the email, and refuse a taken email.
pub async fn users_are_updated(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    add_user(&store, "bob").await;
    let patch = UserPatch {
        display_name: Some(DisplayName::parse("Alice A.").unwrap()),
        email: Some(None),
    };
    let updated = store.update_user(alice, &patch).await.unwrap();
    assert_eq!(updated.display_name.as_str(), "Alice A.");
    assert_eq!(updated.email, None);
    assert_eq!(store.user(alice).await.unwrap(), Some(updated));
    let taken = UserPatch {
        display_name: None,
        email: Some(Some(Email::parse("Bob@example.com").unwrap())),
    };
    assert!(matches!(
        store.update_user(alice, &taken).await,
        Err(StoreError::Conflict {
            constraint: constraint::EMAIL
        })
    ));
    assert!(matches!(
        store.update_user(UserId(Uuid::new_v4()), &patch).await,
        Err(StoreError::NotFound)
    ));
}

fn new_session(user: UserId, refresh_hash: &str, expires_at: OffsetDateTime) -> AuthSession {
    AuthSession {
        id: SessionId(Uuid::new_v4()),
        user_id: user,
        refresh_hash: refresh_hash.into(),
        created_at: t(0),
        expires_at,
        revoked_at: None,
    }
}

/// A refresh token rotates once; presented again it is `Reused` (and changes nothing), and an
/// expired or never-issued one is `Unknown`.
pub async fn refresh_tokens_rotate_once(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let session = new_session(alice, "old", t(100));
    store.create_session(&session).await.unwrap();
    assert_eq!(
        store.session(session.id).await.unwrap(),
        Some(session.clone())
    );
    let Rotation::Rotated(rotated) = store
        .rotate_refresh("old", "new", t(50), t(200))
        .await
        .unwrap()
    else {
        panic!("the current token rotates");
    };
    assert_eq!((rotated.id, rotated.user_id), (session.id, alice));
    assert_eq!(rotated.refresh_hash, "new");
    assert_eq!(rotated.expires_at, t(200));
    assert_eq!(rotated.revoked_at, None);
    assert_eq!(
        store
            .rotate_refresh("old", "x", t(51), t(300))
            .await
            .unwrap(),
        Rotation::Reused(session.id)
    );
    assert_eq!(
        store
            .session(session.id)
            .await
            .unwrap()
            .map(|s| s.refresh_hash),
        Some("new".into()),
        "a reused token changes nothing"
    );
    assert_eq!(
        store
            .rotate_refresh("never", "y", t(52), t(300))
            .await
            .unwrap(),
        Rotation::Unknown
    );
    assert_eq!(
        store
            .rotate_refresh("new", "y", t(200), t(300))
            .await
            .unwrap(),
        Rotation::Unknown,
        "expired"
    );
    assert_eq!(
        store
            .rotate_refresh("old", "z", t(101), t(300))
            .await
            .unwrap(),
        Rotation::Unknown,
        "a spent token is forgotten once it would have expired"
    );
}

/// Two rotations of one token at once: exactly one gets the session, the other finds it spent.
pub async fn concurrent_rotations_of_one_token_rotate_once(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let session = new_session(alice, "old", t(100));
    store.create_session(&session).await.unwrap();
    let (a, b) = tokio::join!(
        store.rotate_refresh("old", "a", t(1), t(200)),
        store.rotate_refresh("old", "b", t(1), t(200)),
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    let rotated: Vec<&Rotation> = outcomes
        .iter()
        .filter(|r| matches!(r, Rotation::Rotated(_)))
        .collect();
    assert_eq!(rotated.len(), 1, "{outcomes:?}");
    assert!(
        outcomes.contains(&Rotation::Reused(session.id)),
        "{outcomes:?}"
    );
}

/// A revoked session stays readable with its time, and neither its current nor its spent
/// refresh tokens work any more.
pub async fn revoked_sessions_refresh_nothing(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let session = new_session(alice, "old", t(100));
    let other = new_session(alice, "other", t(100));
    store.create_session(&session).await.unwrap();
    store.create_session(&other).await.unwrap();
    assert!(matches!(
        store
            .rotate_refresh("old", "new", t(1), t(100))
            .await
            .unwrap(),
        Rotation::Rotated(_)
    ));
    assert!(store.revoke_session(session.id, t(2)).await.unwrap());
    assert!(
        !store.revoke_session(session.id, t(3)).await.unwrap(),
        "already revoked"
    );
    assert!(!store
        .revoke_session(SessionId(Uuid::new_v4()), t(3))
        .await
        .unwrap());
    let found = store.session(session.id).await.unwrap().expect("kept");
    assert_eq!(found.revoked_at, Some(t(2)));
    for token in ["new", "old"] {
        assert_eq!(
            store
                .rotate_refresh(token, "x", t(4), t(100))
                .await
                .unwrap(),
            Rotation::Unknown,
            "{token}"
        );
    }
    assert_eq!(
        store.session(other.id).await.unwrap().map(|s| s.revoked_at),
        Some(None),
        "the user's other session is untouched"
    );
    assert!(store
        .session(SessionId(Uuid::new_v4()))
        .await
        .unwrap()
        .is_none());
}

/// A password change replaces the hash and revokes every live session of the user but the one
/// kept, and only theirs.
pub async fn password_changes_revoke_the_other_sessions(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let kept = new_session(alice, "a1", t(100));
    let other = new_session(alice, "a2", t(100));
    let revoked_before = new_session(alice, "a3", t(100));
    let bobs = new_session(bob, "b1", t(100));
    for s in [&kept, &other, &revoked_before, &bobs] {
        store.create_session(s).await.unwrap();
    }
    store.revoke_session(revoked_before.id, t(1)).await.unwrap();
    let revoked = store
        .change_password(alice, "new-hash", Some(kept.id), t(5))
        .await
        .unwrap();
    assert_eq!(revoked, vec![other.id]);
    assert_eq!(
        store
            .credentials("alice")
            .await
            .unwrap()
            .map(|c| c.password_hash),
        Some("new-hash".into())
    );
    let state = |id| {
        let store = store.clone();
        async move { store.session(id).await.unwrap().and_then(|s| s.revoked_at) }
    };
    assert_eq!(state(kept.id).await, None);
    assert_eq!(state(other.id).await, Some(t(5)));
    assert_eq!(state(revoked_before.id).await, Some(t(1)));
    assert_eq!(state(bobs.id).await, None);
    let all = store
        .change_password(alice, "newer", None, t(6))
        .await
        .unwrap();
    assert_eq!(all, vec![kept.id]);
    assert!(matches!(
        store
            .change_password(UserId(Uuid::new_v4()), "x", None, t(7))
            .await,
        Err(StoreError::NotFound)
    ));
}

/// A new room has its fields, its members with their roles, and no messages.
pub async fn rooms_are_created_with_their_members(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let spec = new_room(alice, t(1));
    store
        .create_room(&spec, &[(alice, Role::Owner), (bob, Role::Member)])
        .await
        .unwrap();
    let room = store.room(spec.id).await.unwrap().expect("room");
    assert_eq!(room.name, "general");
    assert_eq!(room.topic.as_deref(), Some("chat"));
    assert_eq!(room.kind, RoomKind::Group);
    assert_eq!(room.visibility, Visibility::Private);
    assert_eq!(room.created_by, alice);
    assert_eq!(room.created_at, t(1));
    assert_eq!(room.member_count, 2);
    assert_eq!((room.last_seq, room.rev), (Seq::ZERO, Rev(0)));
    assert!(room.last_message.is_none() && room.last_message_at.is_none());
    let owner = store.membership(spec.id, alice).await.unwrap().unwrap();
    assert_eq!(owner.role, Role::Owner);
    assert_eq!(owner.joined_at, t(1));
    assert_eq!(
        (owner.read_seq, owner.delivered_seq),
        (Seq::ZERO, Seq::ZERO)
    );
    assert!(!owner.pinned && !owner.muted && !owner.archived);
    let member = store.membership(spec.id, bob).await.unwrap().unwrap();
    assert_eq!(member.role, Role::Member);
    assert!(store.room(RoomId(Uuid::new_v4())).await.unwrap().is_none());
}

/// A room naming a user who does not exist is refused whole.
pub async fn room_creation_with_an_unknown_member_writes_nothing(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let spec = new_room(alice, t(1));
    let ghost = UserId(Uuid::new_v4());
    let result = store
        .create_room(&spec, &[(alice, Role::Owner), (ghost, Role::Member)])
        .await;
    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
    assert!(store.room(spec.id).await.unwrap().is_none());
    assert!(store.membership(spec.id, alice).await.unwrap().is_none());
}

/// Each append takes the room's next seq and rev, and becomes its last message.
pub async fn appends_assign_consecutive_seq_and_rev(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let room = add_room(&store, alice, &[]).await;
    for i in 1..=3 {
        let new = text(room, alice, &format!("m{i}"));
        let appended = store.append_message(&new).await.unwrap();
        assert!(appended.created);
        let m = appended.message;
        assert_eq!((m.seq, m.rev), (Seq(i), Rev(i)));
        assert_eq!((m.id, m.room_id, m.sender_id), (new.id, room, alice));
        assert_eq!(m.body.as_deref(), Some(format!("m{i}").as_str()));
        assert_eq!(m.kind, MessageKind::Text);
        assert_eq!(m.created_at, t(10));
        assert!(!m.deleted && m.edited_at.is_none() && m.reactions.is_empty());
    }
    let r = store.room(room).await.unwrap().unwrap();
    assert_eq!((r.last_seq, r.rev), (Seq(3), Rev(3)));
    assert_eq!(r.last_message_at, Some(t(10)));
    assert_eq!(r.last_message.unwrap().body.as_deref(), Some("m3"));
}

/// A repeated client id from the same sender returns the original and stores nothing.
pub async fn appends_are_idempotent_per_sender_and_client_id(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let room = add_room(&store, alice, &[bob]).await;
    let mut first = text(room, alice, "hello");
    first.client_id = Some(ClientId::parse("c-1").unwrap());
    let original = store.append_message(&first).await.unwrap();
    assert!(original.created);
    let mut retry = text(room, alice, "a different body");
    retry.client_id = first.client_id.clone();
    let again = store.append_message(&retry).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.message, original.message);
    let mut bobs = text(room, bob, "bob's own c-1");
    bobs.client_id = first.client_id.clone();
    let other = store.append_message(&bobs).await.unwrap();
    assert!(other.created);
    assert_eq!(other.message.seq, Seq(2));
    let page = store
        .history(room, HistoryAnchor::Latest, 10)
        .await
        .unwrap();
    assert_eq!(seqs(&page.messages), vec![1, 2]);
}

/// Appends racing from many tasks get seq 1..=N exactly once each.
pub async fn concurrent_appends_leave_no_gaps(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let room = add_room(&store, alice, &[]).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..25 {
                    let m = store.append_message(&text(room, alice, "x")).await.unwrap();
                    got.push(m.message.seq.0);
                }
                got
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (1..=200).collect::<Vec<i64>>());
    let r = store.room(room).await.unwrap().unwrap();
    assert_eq!(r.last_seq, Seq(200));
}

/// A burst of appends at once, a third of them to a missing room and a third repeating one
/// client id: the failures store nothing, the repeats all get the one original, and the rest
/// get seqs that, with the original's, are 1..=N exactly once (a store that commits appends
/// together must keep a failing one from taking the others down with it).
pub async fn failing_and_repeated_appends_in_a_burst_leave_the_others_intact(
    store: Arc<dyn Store>,
) {
    let alice = add_user(&store, "alice").await;
    let room = add_room(&store, alice, &[]).await;
    let missing = RoomId(Uuid::new_v4());
    let repeated = ClientId::parse("burst-1").unwrap();
    let tasks: Vec<_> = (0..90)
        .map(|i| {
            let store = store.clone();
            let mut message = text(if i % 3 == 0 { missing } else { room }, alice, "x");
            if i % 3 == 1 {
                message.client_id = Some(repeated.clone());
            }
            tokio::spawn(async move { (i % 3, store.append_message(&message).await) })
        })
        .collect();
    let mut created = Vec::new();
    let mut repeats = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (0, result) => assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}"),
            (1, result) => repeats.push(result.unwrap()),
            (_, result) => {
                let appended = result.unwrap();
                assert!(appended.created);
                created.push(appended.message.seq.0);
            }
        }
    }
    let originals: Vec<_> = repeats.iter().filter(|a| a.created).collect();
    assert_eq!(originals.len(), 1, "exactly one repeat creates the message");
    let original = &originals[0].message;
    assert!(repeats.iter().all(|a| a.message.id == original.id));
    created.push(original.seq.0);
    created.sort_unstable();
    assert_eq!(created, (1..=31).collect::<Vec<i64>>());
    let page = store
        .history(room, HistoryAnchor::Latest, 100)
        .await
        .unwrap();
    assert_eq!(seqs(&page.messages), (1..=31).collect::<Vec<i64>>());
    assert_eq!(store.room(room).await.unwrap().unwrap().last_seq, Seq(31));
}

/// Sending moves the sender's own read and delivered watermarks to the new seq.
pub async fn appends_move_the_senders_watermarks(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let room = add_room(&store, alice, &[bob]).await;
    post(&store, room, alice, "one").await;
    post(&store, room, alice, "two").await;
    let a = store.membership(room, alice).await.unwrap().unwrap();
    assert_eq!((a.read_seq, a.delivered_seq), (Seq(2), Seq(2)));
    let b = store.membership(room, bob).await.unwrap().unwrap();
    assert_eq!((b.read_seq, b.delivered_seq), (Seq::ZERO, Seq::ZERO));
}

/// A message for a room that does not exist is `NotFound`.
pub async fn appending_to_a_missing_room_is_not_found(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let result = store
        .append_message(&text(RoomId(Uuid::new_v4()), alice, "x"))
        .await;
    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
}

/// History pages come back ascending, with `has_more` in the direction of paging.
pub async fn history_pages_in_both_directions(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let room = add_room(&store, alice, &[]).await;
    for i in 1..=10 {
        post(&store, room, alice, &format!("m{i}")).await;
    }
    let cases = [
        (HistoryAnchor::Latest, 3, vec![8, 9, 10], true),
        (HistoryAnchor::Latest, 20, (1..=10).collect(), false),
        (HistoryAnchor::Before(Seq(8)), 3, vec![5, 6, 7], true),
        (HistoryAnchor::Before(Seq(3)), 5, vec![1, 2], false),
        (HistoryAnchor::Before(Seq(1)), 5, vec![], false),
        (HistoryAnchor::After(Seq(0)), 4, vec![1, 2, 3, 4], true),
        (HistoryAnchor::After(Seq(8)), 4, vec![9, 10], false),
        (HistoryAnchor::After(Seq(6)), 4, vec![7, 8, 9, 10], false),
        (HistoryAnchor::After(Seq(10)), 4, vec![], false),
    ];
    for (anchor, limit, want, more) in cases {
        let page = store.history(room, anchor, limit).await.unwrap();
        assert_eq!(seqs(&page.messages), want, "{anchor:?} limit {limit}");
        assert_eq!(page.has_more, more, "{anchor:?} limit {limit}");
    }
    let first = &store
        .history(room, HistoryAnchor::After(Seq(0)), 1)
        .await
        .unwrap()
        .messages[0];
    assert_eq!(first.body.as_deref(), Some("m1"));
}

/// A message is found by id only within its own room.
pub async fn messages_are_found_by_id_within_their_room(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let room = add_room(&store, alice, &[]).await;
    let other = add_room(&store, alice, &[]).await;
    let id = post(&store, room, alice, "hi").await;
    let found = store.message(room, id).await.unwrap().expect("found");
    assert_eq!((found.id, found.seq), (id, Seq(1)));
    assert!(store.message(other, id).await.unwrap().is_none());
    assert!(store
        .message(room, MessageId(Uuid::new_v4()))
        .await
        .unwrap()
        .is_none());
}

/// Replies, thread membership and mentions are stored; roots carry a thread summary.
pub async fn threads_and_mentions_round_trip(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let room = add_room(&store, alice, &[bob]).await;
    let root = post(&store, room, alice, "root").await;
    let mut reply = text(room, bob, "@alice yes");
    reply.thread_id = Some(root);
    reply.reply_to = Some(root);
    reply.mentions = vec![alice];
    reply.created_at = t(30);
    let stored = store.append_message(&reply).await.unwrap().message;
    assert_eq!(stored.thread_id, Some(root));
    assert_eq!(stored.reply_to, Some(root));
    assert_eq!(stored.mentions, vec![alice]);
    assert_eq!(stored.thread, None);
    let root_msg = store.message(room, root).await.unwrap().unwrap();
    let summary = root_msg.thread.expect("root has a thread summary");
    assert_eq!(summary.reply_count, 1);
    assert_eq!(summary.last_reply_at, Some(t(30)));
    let page = store
        .history(room, HistoryAnchor::Latest, 10)
        .await
        .unwrap();
    assert_eq!(page.messages[1].mentions, vec![alice]);
    assert!(page.messages[0].thread.is_some());
}

/// `changed_since` returns messages up to a seq whose rev is newer than the given one.
pub async fn changed_since_selects_by_rev(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let room = add_room(&store, alice, &[]).await;
    for i in 1..=4 {
        post(&store, room, alice, &format!("m{i}")).await;
    }
    let changed = store.changed_since(room, Seq(3), Rev(1), 10).await.unwrap();
    assert_eq!(seqs(&changed), vec![2, 3]);
    let capped = store.changed_since(room, Seq(4), Rev(0), 2).await.unwrap();
    assert_eq!(seqs(&capped), vec![1, 2]);
    assert!(store
        .changed_since(room, Seq(4), Rev(4), 10)
        .await
        .unwrap()
        .is_empty());
}

/// The room list puts newer activity first and pages with a cursor without overlap.
pub async fn room_lists_order_by_pin_and_activity_with_cursors(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let r1 = add_room_at(&store, alice, &[], t(1)).await;
    let r2 = add_room_at(&store, alice, &[], t(2)).await;
    let r3 = add_room_at(&store, alice, &[], t(3)).await;
    let mut m = text(r1, alice, "bump");
    m.created_at = t(4);
    store.append_message(&m).await.unwrap();
    let page_size = 2;
    let first = store
        .rooms_of_user(alice, false, None, page_size)
        .await
        .unwrap();
    let ids: Vec<RoomId> = first.iter().map(|i| i.room.id).collect();
    assert_eq!(ids, vec![r1, r3]);
    assert_eq!(first[0].room.last_message_at, Some(t(4)));
    let last = &first[1];
    let cursor = Cursor::new(
        i64::from(last.membership.pinned),
        last.room.last_message_at.unwrap_or(last.room.created_at),
        last.room.id.0,
    );
    let second = store
        .rooms_of_user(alice, false, Some(cursor), page_size)
        .await
        .unwrap();
    let ids: Vec<RoomId> = second.iter().map(|i| i.room.id).collect();
    assert_eq!(ids, vec![r2]);
    let bob = add_user(&store, "bob").await;
    assert!(store
        .rooms_of_user(bob, true, None, 50)
        .await
        .unwrap()
        .is_empty());
}

/// Unread counts others' messages after the read watermark; mentions count those naming the user.
pub async fn room_lists_count_unread_and_mentions(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let room = add_room(&store, alice, &[bob]).await;
    post(&store, room, alice, "mine").await;
    post(&store, room, bob, "one").await;
    let mut mention = text(room, bob, "@alice two");
    mention.mentions = vec![alice];
    store.append_message(&mention).await.unwrap();
    let items = store.rooms_of_user(alice, false, None, 50).await.unwrap();
    assert_eq!(items.len(), 1);
    let view = &items[0].membership;
    assert_eq!(view.role, Role::Owner);
    assert_eq!(view.read_seq, Seq(1));
    assert_eq!((view.unread_count, view.mention_count), (2, 1));
    let bobs = store.rooms_of_user(bob, false, None, 50).await.unwrap();
    assert_eq!(bobs[0].membership.read_seq, Seq(3));
    assert_eq!(
        (
            bobs[0].membership.unread_count,
            bobs[0].membership.mention_count
        ),
        (0, 0)
    );
}

/// Members come oldest first, page by cursor, and never show an email.
pub async fn members_are_listed_oldest_first_without_email(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let carol = add_user(&store, "carol").await;
    let room = add_room(&store, alice, &[]).await;
    store
        .add_member(room, bob, Role::Admin, t(5))
        .await
        .unwrap();
    store
        .add_member(room, carol, Role::Member, t(6))
        .await
        .unwrap();
    let first = store.members(room, None, 2).await.unwrap();
    let ids: Vec<UserId> = first.iter().map(|m| m.user.id).collect();
    assert_eq!(ids, vec![alice, bob]);
    assert!(first.iter().all(|m| m.user.email.is_none()));
    assert_eq!(first[1].role, Role::Admin);
    assert_eq!(first[1].joined_at, t(5));
    let cursor = Cursor::new(0, first[1].joined_at, first[1].user.id.0);
    let rest = store.members(room, Some(cursor), 2).await.unwrap();
    let ids: Vec<UserId> = rest.iter().map(|m| m.user.id).collect();
    assert_eq!(ids, vec![carol]);
}

/// Adding reports the room's last seq; a second add conflicts; unknown ids are `NotFound`.
pub async fn adding_members_reports_conflicts_and_the_baseline(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let room = add_room(&store, alice, &[]).await;
    post(&store, room, alice, "before bob").await;
    let (member, baseline) = store
        .add_member(room, bob, Role::Member, t(20))
        .await
        .unwrap();
    assert_eq!(baseline, Seq(1));
    let joined = store.membership(room, bob).await.unwrap().unwrap();
    assert_eq!((joined.read_seq, joined.delivered_seq), (Seq(1), Seq(1)));
    assert_eq!(
        (member.room_id, member.user.id, member.role),
        (room, bob, Role::Member)
    );
    assert_eq!(store.room(room).await.unwrap().unwrap().member_count, 2);
    assert!(matches!(
        store.add_member(room, bob, Role::Member, t(21)).await,
        Err(StoreError::Conflict {
            constraint: constraint::MEMBERSHIP
        })
    ));
    assert!(matches!(
        store
            .add_member(room, UserId(Uuid::new_v4()), Role::Member, t(21))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .add_member(RoomId(Uuid::new_v4()), bob, Role::Member, t(21))
            .await,
        Err(StoreError::NotFound)
    ));
}

/// Removing a member and promoting a successor happen together, or not at all.
pub async fn removing_a_member_can_hand_over_ownership(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let carol = add_user(&store, "carol").await;
    let room = add_room(&store, alice, &[bob]).await;
    let ghost = UserId(Uuid::new_v4());
    assert!(matches!(
        store.remove_member(room, alice, Some(carol)).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.membership(room, alice).await.unwrap().is_some());
    assert!(matches!(
        store.remove_member(room, ghost, None).await,
        Err(StoreError::NotFound)
    ));
    let left = store.remove_member(room, alice, Some(bob)).await.unwrap();
    assert_eq!(left, 1);
    assert!(store.membership(room, alice).await.unwrap().is_none());
    assert_eq!(
        store.membership(room, bob).await.unwrap().unwrap().role,
        Role::Owner
    );
    assert_eq!(store.room(room).await.unwrap().unwrap().member_count, 1);
}

/// A room is deleted only once it has no members.
pub async fn only_empty_rooms_are_deleted(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let room = add_room(&store, alice, &[]).await;
    post(&store, room, alice, "x").await;
    assert!(!store.delete_room_if_empty(room).await.unwrap());
    assert!(store.room(room).await.unwrap().is_some());
    assert_eq!(store.remove_member(room, alice, None).await.unwrap(), 0);
    assert!(store.delete_room_if_empty(room).await.unwrap());
    assert!(store.room(room).await.unwrap().is_none());
    assert!(store
        .history(room, HistoryAnchor::Latest, 10)
        .await
        .unwrap()
        .messages
        .is_empty());
}

/// The direct room of a pair is created once and found again from either side.
pub async fn direct_rooms_are_one_per_pair(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let mut spec = new_room(alice, t(1));
    spec.kind = RoomKind::Direct;
    spec.name = String::new();
    spec.topic = None;
    let (id, created) = store.direct_room(&spec, alice, bob).await.unwrap();
    assert!(created);
    assert_eq!(id, spec.id);
    let mut again = spec.clone();
    again.id = RoomId(Uuid::new_v4());
    let (same, created) = store.direct_room(&again, bob, alice).await.unwrap();
    assert_eq!((same, created), (id, false));
    let room = store.room(id).await.unwrap().unwrap();
    assert_eq!((room.kind, room.member_count), (RoomKind::Direct, 2));
    for u in [alice, bob] {
        let m = store.membership(id, u).await.unwrap().expect("member");
        assert_eq!(m.role, Role::Member);
    }
}

/// Both users opening their direct room at once still get one room.
pub async fn concurrent_direct_rooms_are_one_per_pair(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut spec = new_room(alice, t(1));
                spec.kind = RoomKind::Direct;
                spec.name = String::new();
                let (a, b) = if i % 2 == 0 {
                    (alice, bob)
                } else {
                    (bob, alice)
                };
                store.direct_room(&spec, a, b).await.unwrap()
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
    assert_eq!(ids.len(), 1, "one room for the pair");
    assert_eq!(created, 1, "created exactly once");
}

/// Positions list every room of the user with its last seq, rev and the user's read seq.
pub async fn room_positions_list_the_users_rooms(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let r1 = add_room(&store, alice, &[bob]).await;
    let r2 = add_room(&store, bob, &[]).await;
    post(&store, r1, bob, "x").await;
    post(&store, r1, bob, "y").await;
    let mut positions = store.room_positions(alice, 100).await.unwrap();
    assert_eq!(positions.len(), 1);
    let p = positions.remove(0);
    assert_eq!(
        (p.room_id, p.last_seq, p.rev, p.read_seq),
        (r1, Seq(2), Rev(2), Seq::ZERO)
    );
    let mut bobs: Vec<RoomId> = store
        .room_positions(bob, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.room_id)
        .collect();
    bobs.sort();
    let mut want = vec![r1, r2];
    want.sort();
    assert_eq!(bobs, want);
    assert_eq!(store.room_positions(bob, 1).await.unwrap().len(), 1);
}

/// Mentions resolve to members by username key, never to non-members.
pub async fn members_are_found_by_username(store: Arc<dyn Store>) {
    let alice = add_user(&store, "Alice").await;
    let bob = add_user(&store, "bob").await;
    add_user(&store, "carol").await;
    let room = add_room(&store, alice, &[bob]).await;
    let mut found = store
        .members_named(room, &["alice".into(), "carol".into(), "nobody".into()])
        .await
        .unwrap();
    found.sort();
    assert_eq!(found, vec![alice]);
}

/// The oldest member of a role is found, skipping the excluded user.
pub async fn the_oldest_member_of_a_role_is_found(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let carol = add_user(&store, "carol").await;
    let room = add_room(&store, alice, &[]).await;
    store
        .add_member(room, carol, Role::Admin, t(7))
        .await
        .unwrap();
    store
        .add_member(room, bob, Role::Admin, t(6))
        .await
        .unwrap();
    assert_eq!(
        store.oldest_member(room, Role::Admin, alice).await.unwrap(),
        Some(bob)
    );
    assert_eq!(
        store.oldest_member(room, Role::Admin, bob).await.unwrap(),
        Some(carol)
    );
    assert_eq!(
        store
            .oldest_member(room, Role::Member, alice)
            .await
            .unwrap(),
        None
    );
}

fn node() -> NodeId {
    NodeId(Uuid::new_v4())
}

async fn connections(store: &Arc<dyn Store>, user: UserId, alive_since: OffsetDateTime) -> i64 {
    store.presence(&[user], alive_since).await.unwrap()[0].connections
}

/// Connections are counted per node and user, across nodes, up and down.
pub async fn presence_counts_connections_across_nodes(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let (a, b) = (node(), node());
    store.node_heartbeat(a, t(100)).await.unwrap();
    store.node_heartbeat(b, t(100)).await.unwrap();
    let since = t(90);
    assert_eq!(
        store
            .connection_opened(a, alice, t(101), since)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .connection_opened(b, alice, t(102), since)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .connection_opened(a, alice, t(103), since)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store
            .connection_closed(a, alice, t(104), since)
            .await
            .unwrap(),
        2
    );
    let record = store.presence(&[alice], since).await.unwrap().remove(0);
    assert_eq!(
        (record.user_id, record.connections, record.away),
        (alice, 2, false)
    );
    assert_eq!(record.last_seen, Some(t(104)));
    assert_eq!(
        store
            .connection_closed(a, alice, t(105), since)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .connection_closed(b, alice, t(106), since)
            .await
            .unwrap(),
        0
    );
    assert_eq!(connections(&store, alice, since).await, 0);
}

/// A node whose heartbeat is older than `alive_since` does not count.
pub async fn presence_ignores_nodes_without_a_recent_heartbeat(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let (stale, fresh) = (node(), node());
    store.node_heartbeat(stale, t(0)).await.unwrap();
    store.node_heartbeat(fresh, t(100)).await.unwrap();
    assert_eq!(
        store
            .connection_opened(stale, alice, t(1), t(-10))
            .await
            .unwrap(),
        1
    );
    assert_eq!(connections(&store, alice, t(50)).await, 0);
    assert_eq!(
        store
            .connection_opened(fresh, alice, t(101), t(50))
            .await
            .unwrap(),
        1
    );
    store.node_heartbeat(stale, t(120)).await.unwrap();
    assert_eq!(
        connections(&store, alice, t(100)).await,
        2,
        "a renewed heartbeat counts again"
    );
}

/// Dead nodes are reaped once, with their connections; their users are reported.
pub async fn reaping_forgets_dead_nodes_once(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let carol = add_user(&store, "carol").await;
    let (dead, alive) = (node(), node());
    store.node_heartbeat(dead, t(10)).await.unwrap();
    store.node_heartbeat(alive, t(100)).await.unwrap();
    for (n, u) in [(dead, alice), (dead, carol), (alive, bob), (alive, carol)] {
        store.connection_opened(n, u, t(11), t(0)).await.unwrap();
    }
    let mut reaped = store.reap_nodes(t(50)).await.unwrap();
    reaped.sort();
    let mut want = vec![alice, carol];
    want.sort();
    assert_eq!(reaped, want);
    assert!(
        store.reap_nodes(t(50)).await.unwrap().is_empty(),
        "reaped once"
    );
    let record = store.presence(&[alice], t(0)).await.unwrap().remove(0);
    assert_eq!(record.connections, 0, "gone even for a lenient alive_since");
    assert_eq!(
        record.last_seen,
        Some(t(10)),
        "last seen when its node was last heard from"
    );
    assert_eq!(connections(&store, carol, t(50)).await, 1);
    assert_eq!(connections(&store, bob, t(50)).await, 1);
}

/// A node that leaves takes its connections with it.
pub async fn a_node_that_leaves_is_forgotten(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let n = node();
    store.node_heartbeat(n, t(100)).await.unwrap();
    store
        .connection_opened(n, alice, t(101), t(90))
        .await
        .unwrap();
    store
        .connection_opened(n, alice, t(102), t(90))
        .await
        .unwrap();
    assert_eq!(store.forget_node(n, t(103)).await.unwrap(), vec![alice]);
    let record = store.presence(&[alice], t(90)).await.unwrap().remove(0);
    assert_eq!((record.connections, record.last_seen), (0, Some(t(103))));
}

/// Away is kept per user; presence leaves out unknown users.
pub async fn away_is_kept_and_unknown_users_are_left_out(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let ghost = UserId(Uuid::new_v4());
    let fresh = store.presence(&[alice, ghost], t(0)).await.unwrap();
    assert_eq!(fresh.len(), 1);
    assert_eq!(
        (fresh[0].connections, fresh[0].away, fresh[0].last_seen),
        (0, false, None)
    );
    store.set_away(alice, true).await.unwrap();
    assert!(store.presence(&[alice], t(0)).await.unwrap()[0].away);
    store.set_away(alice, false).await.unwrap();
    assert!(!store.presence(&[alice], t(0)).await.unwrap()[0].away);
}

/// Read watermarks move forward only, clamp to the last seq, and carry delivered along.
pub async fn read_watermarks_only_move_forward(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let room = add_room(&store, alice, &[bob]).await;
    for i in 1..=5 {
        post(&store, room, alice, &format!("m{i}")).await;
    }
    let change = store
        .mark_read(room, bob, Seq(3), t(50))
        .await
        .unwrap()
        .unwrap();
    assert!(change.changed);
    assert_eq!(
        (
            change.receipt.user_id,
            change.receipt.read_seq,
            change.receipt.delivered_seq
        ),
        (bob, Seq(3), Seq(3))
    );
    assert_eq!(change.receipt.read_at, Some(t(50)));
    let back = store
        .mark_read(room, bob, Seq(2), t(60))
        .await
        .unwrap()
        .unwrap();
    assert!(!back.changed);
    assert_eq!(
        (back.receipt.read_seq, back.receipt.read_at),
        (Seq(3), Some(t(50)))
    );
    let past = store
        .mark_read(room, bob, Seq(99), t(70))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (past.receipt.read_seq, past.receipt.delivered_seq),
        (Seq(5), Seq(5))
    );
    let m = store.membership(room, bob).await.unwrap().unwrap();
    assert_eq!((m.read_seq, m.delivered_seq), (Seq(5), Seq(5)));
    let stranger = add_user(&store, "carol").await;
    assert!(store
        .mark_read(room, stranger, Seq(1), t(80))
        .await
        .unwrap()
        .is_none());
}

/// Delivered watermarks move forward only, clamp, and leave read where it is.
pub async fn delivered_watermarks_only_move_forward(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let room = add_room(&store, alice, &[bob]).await;
    for i in 1..=4 {
        post(&store, room, alice, &format!("m{i}")).await;
    }
    let change = store
        .mark_delivered(room, bob, Seq(2))
        .await
        .unwrap()
        .unwrap();
    assert!(change.changed);
    assert_eq!(
        (change.receipt.delivered_seq, change.receipt.read_seq),
        (Seq(2), Seq::ZERO)
    );
    assert_eq!(change.receipt.read_at, None);
    let same = store
        .mark_delivered(room, bob, Seq(1))
        .await
        .unwrap()
        .unwrap();
    assert!(!same.changed);
    assert_eq!(same.receipt.delivered_seq, Seq(2));
    let past = store
        .mark_delivered(room, bob, Seq(40))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(past.receipt.delivered_seq, Seq(4));
    let stranger = add_user(&store, "carol").await;
    assert!(store
        .mark_delivered(room, stranger, Seq(1))
        .await
        .unwrap()
        .is_none());
}

/// Receipts page by user id.
pub async fn receipts_page_by_user(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let carol = add_user(&store, "carol").await;
    let room = add_room(&store, alice, &[bob, carol]).await;
    post(&store, room, alice, "hi").await;
    store.mark_read(room, bob, Seq(1), t(5)).await.unwrap();
    let mut ids = [alice, bob, carol];
    ids.sort();
    let first = store.receipts(room, None, 2).await.unwrap();
    assert_eq!(
        first.iter().map(|r| r.user_id).collect::<Vec<_>>(),
        ids[..2].to_vec()
    );
    let rest = store
        .receipts(room, Some(first[1].user_id), 2)
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|r| r.user_id).collect::<Vec<_>>(),
        ids[2..].to_vec()
    );
    let all = store.receipts(room, None, 10).await.unwrap();
    let bobs = all.iter().find(|r| r.user_id == bob).unwrap();
    assert_eq!((bobs.read_seq, bobs.read_at), (Seq(1), Some(t(5))));
    let alices = all.iter().find(|r| r.user_id == alice).unwrap();
    assert_eq!(
        (alices.read_seq, alices.delivered_seq),
        (Seq(1), Seq(1)),
        "the sender read it"
    );
}

/// Unread counts others' messages after the read watermark, with mentions, per room.
pub async fn unread_counts_follow_the_read_watermark(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let r1 = add_room(&store, alice, &[bob]).await;
    let r2 = add_room(&store, alice, &[bob]).await;
    for i in 1..=3 {
        post(&store, r1, alice, &format!("m{i}")).await;
    }
    let mut mention = text(r1, alice, "@bob look");
    mention.mentions = vec![bob];
    store.append_message(&mention).await.unwrap();
    post(&store, r1, bob, "mine").await;
    post(&store, r2, alice, "other room").await;
    let mut counts = store.unread(bob, None, 100).await.unwrap();
    counts.sort_by_key(|c| c.room_id != r1);
    assert_eq!(counts.len(), 2);
    assert_eq!(
        (
            counts[0].room_id,
            counts[0].unread_count,
            counts[0].mention_count
        ),
        (r1, 0, 0),
        "bob's own message moved his watermark"
    );
    assert_eq!((counts[1].room_id, counts[1].unread_count), (r2, 1));
    assert!(!counts[0].muted);
    let a = store.unread(alice, Some(r1), 100).await.unwrap();
    assert_eq!(
        (a.len(), a[0].unread_count),
        (1, 1),
        "bob's message is unread for alice"
    );
    store
        .mark_read(room_of(&a), alice, Seq(5), t(9))
        .await
        .unwrap();
    assert_eq!(
        store.unread(alice, Some(r1), 100).await.unwrap()[0].unread_count,
        0
    );
    let eve = add_user(&store, "eve").await;
    assert!(store.unread(eve, Some(r1), 100).await.unwrap().is_empty());
}

fn room_of(counts: &[crate::ports::UnreadCount]) -> RoomId {
    counts[0].room_id
}

/// A member's settings pin, archive and mute rooms for them alone.
pub async fn settings_order_filter_and_mute(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let old = add_room_at(&store, alice, &[bob], t(1)).await;
    let new = add_room_at(&store, alice, &[bob], t(2)).await;
    let archived = add_room_at(&store, alice, &[bob], t(3)).await;
    let pin = SettingsPatch {
        pinned: Some(true),
        ..SettingsPatch::default()
    };
    let m = store
        .update_settings(old, alice, &pin)
        .await
        .unwrap()
        .unwrap();
    assert!(m.pinned && !m.muted && !m.archived);
    let archive = SettingsPatch {
        archived: Some(true),
        muted: Some(true),
        ..SettingsPatch::default()
    };
    store
        .update_settings(archived, alice, &archive)
        .await
        .unwrap()
        .unwrap();
    let list = |include_archived| {
        let store = store.clone();
        async move {
            store
                .rooms_of_user(alice, include_archived, None, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|i| i.room.id)
                .collect::<Vec<RoomId>>()
        }
    };
    assert_eq!(
        list(false).await,
        vec![old, new],
        "pinned first, archived hidden"
    );
    assert_eq!(list(true).await, vec![old, archived, new]);
    post(&store, archived, bob, "in a muted room").await;
    let unread = store.unread(alice, Some(archived), 10).await.unwrap();
    assert!(unread[0].muted);
    assert_eq!(unread[0].unread_count, 1);
    let bobs = store.membership(old, bob).await.unwrap().unwrap();
    assert!(!bobs.pinned, "settings are the member's own");
    let unpin = SettingsPatch {
        pinned: Some(false),
        ..SettingsPatch::default()
    };
    assert!(
        !store
            .update_settings(old, alice, &unpin)
            .await
            .unwrap()
            .unwrap()
            .pinned
    );
    let stranger = add_user(&store, "carol").await;
    assert!(store
        .update_settings(old, stranger, &pin)
        .await
        .unwrap()
        .is_none());
}

/// Users are found by username or display name prefix, literally and case-insensitively.
pub async fn users_are_found_by_prefix(store: Arc<dyn Store>) {
    add_user(&store, "alice").await;
    add_user(&store, "Alfred").await;
    let bob = new_user("bob_the_builder");
    let bob = User {
        display_name: DisplayName::parse("Alan B").unwrap(),
        ..bob
    };
    store.create_user(&bob, "h").await.unwrap();
    add_user(&store, "a_b").await;
    let names = |users: Vec<User>| -> Vec<String> {
        users
            .into_iter()
            .map(|u| u.username.as_str().to_owned())
            .collect()
    };
    assert_eq!(
        names(store.search_users("AL", None, 10).await.unwrap()),
        vec!["Alfred", "alice", "bob_the_builder"]
    );
    assert_eq!(
        names(store.search_users("al", None, 2).await.unwrap()),
        vec!["Alfred", "alice"]
    );
    assert_eq!(
        names(store.search_users("al", Some("alice"), 2).await.unwrap()),
        vec!["bob_the_builder"]
    );
    assert_eq!(
        names(store.search_users("a_", None, 10).await.unwrap()),
        vec!["a_b"],
        "_ is literal"
    );
    for odd in ["%", "\\", "'", "\"", "a%"] {
        assert!(
            store.search_users(odd, None, 10).await.unwrap().is_empty(),
            "{odd}"
        );
    }
}

/// Public group rooms are found by a part of their name, most members first.
pub async fn public_rooms_are_found_by_name(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let public = |name: &str| {
        let mut room = new_room(alice, t(1));
        room.name = name.into();
        room.visibility = Visibility::Public;
        room
    };
    let small = public("Rust lovers");
    let big = public("rustaceans");
    let other = public("Go club");
    let hidden = NewRoom {
        name: "rust secret".into(),
        ..new_room(alice, t(1))
    };
    let odd = public("100% rust_y");
    store
        .create_room(&small, &[(alice, Role::Owner)])
        .await
        .unwrap();
    store
        .create_room(&big, &[(alice, Role::Owner), (bob, Role::Member)])
        .await
        .unwrap();
    store
        .create_room(&other, &[(alice, Role::Owner)])
        .await
        .unwrap();
    store
        .create_room(&hidden, &[(alice, Role::Owner)])
        .await
        .unwrap();
    store
        .create_room(&odd, &[(alice, Role::Owner)])
        .await
        .unwrap();
    let found = store.public_rooms("RUST", None, 10).await.unwrap();
    let ids: Vec<RoomId> = found.iter().map(|r| r.id).collect();
    assert_eq!(ids[0], big.id, "most members first");
    let mut rest = ids[1..].to_vec();
    rest.sort();
    let mut want = vec![small.id, odd.id];
    want.sort();
    assert_eq!(rest, want, "private rooms and other names left out");
    let first = store.public_rooms("rust", None, 1).await.unwrap();
    let cursor = Cursor::new(first[0].member_count, first[0].created_at, first[0].id.0);
    let next = store.public_rooms("rust", Some(cursor), 10).await.unwrap();
    assert_eq!(next.len(), 2);
    assert!(next.iter().all(|r| r.id != big.id));
    assert_eq!(
        store.public_rooms("0% r", None, 10).await.unwrap()[0].id,
        odd.id,
        "% is literal"
    );
    assert!(
        store
            .public_rooms("rust_l", None, 10)
            .await
            .unwrap()
            .is_empty(),
        "_ is literal"
    );
    assert_eq!(store.public_rooms("", None, 10).await.unwrap().len(), 4);
}

/// A room's name, topic and visibility change; other fields stay.
pub async fn rooms_are_updated(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let room = add_room(&store, alice, &[]).await;
    post(&store, room, alice, "hi").await;
    let patch = RoomPatch {
        name: Some(RoomName::parse("renamed").unwrap()),
        topic: Some(None),
        visibility: Some(Visibility::Public),
    };
    let updated = store.update_room(room, &patch).await.unwrap().unwrap();
    assert_eq!(
        (updated.name.as_str(), updated.topic.as_deref()),
        ("renamed", None)
    );
    assert_eq!(updated.visibility, Visibility::Public);
    assert_eq!((updated.last_seq, updated.member_count), (Seq(1), 1));
    assert_eq!(store.room(room).await.unwrap().unwrap(), updated);
    let topic = RoomPatch {
        topic: Some(Some(Topic::parse("new topic").unwrap())),
        ..RoomPatch::default()
    };
    let again = store.update_room(room, &topic).await.unwrap().unwrap();
    assert_eq!(
        (again.name.as_str(), again.topic.as_deref()),
        ("renamed", Some("new topic"))
    );
    assert!(store
        .update_room(RoomId(Uuid::new_v4()), &topic)
        .await
        .unwrap()
        .is_none());
}

/// A room's messages are counted.
pub async fn messages_are_counted(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let room = add_room(&store, alice, &[]).await;
    assert_eq!(store.message_count(room).await.unwrap(), 0);
    for i in 1..=3 {
        post(&store, room, alice, &format!("m{i}")).await;
    }
    assert_eq!(store.message_count(room).await.unwrap(), 3);
}

/// A reachable store answers a ping.
pub async fn ping_answers(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
}
