//! Engine-level tests: the rules of `ChatEngine` (accounts, rooms, memberships, messages) and the
//! delivery rules of live sessions, on one node and on two nodes sharing a store and a bus.
//!
//! Password hashing (argon2) is slow in debug builds, so only the account tests register users
//! through the engine; the others seed users straight into the `MemoryStore` (the engine only
//! needs the user row to exist).

#[macro_use]
mod support;

use chat_core::engine::{ChangePassword, ChangeRole};
use support::*;

// ---------------------------------------------------------------------------------------------
// Accounts
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn duplicate_username_or_email_is_a_conflict_whatever_the_case() {
    let (engine, _) = engine().await;
    engine
        .register(register(
            "Alice",
            "correct horse",
            Some("alice@example.com"),
        ))
        .await
        .expect("first registration");
    assert_err!(
        engine
            .register(register("aLICE", "another password", None))
            .await,
        ChatError::Conflict(_)
    );
    assert_err!(
        engine
            .register(register(
                "alice2",
                "another password",
                Some("ALICE@Example.COM")
            ))
            .await,
        ChatError::Conflict(_)
    );
}

#[tokio::test]
async fn invalid_registration_names_every_failing_field() {
    let (engine, store) = engine().await;
    let fields = invalid_fields(
        engine
            .register(register("ab", "short", Some("not-an-email")))
            .await,
    );
    assert_eq!(fields, ["email", "password", "username"]);

    let fields = invalid_fields(
        engine
            .register(register("al ice", "long enough password", None))
            .await,
    );
    assert_eq!(fields, ["username"]);

    let fields = invalid_fields(
        engine
            .register(register(&"a".repeat(33), &"p".repeat(1025), None))
            .await,
    );
    assert_eq!(fields, ["password", "username"]);
    assert!(
        store
            .credentials("ab")
            .await
            .expect("store answers")
            .is_none(),
        "an invalid registration stores nothing"
    );
}

#[tokio::test]
async fn login_by_username_or_email_and_wrong_credentials_are_unauthorized() {
    let (engine, _) = engine().await;
    let user = engine
        .register(register("bob", "bob's password", Some("bob@example.com")))
        .await
        .expect("registered");

    let by_name = engine
        .login("bob", "bob's password", None)
        .await
        .expect("login by name");
    assert_eq!(by_name.user.id, user.id);
    assert_eq!(by_name.token_type, "bearer");
    assert!(by_name.expires_in > 0);
    let by_email = engine
        .login("bob@example.com", "bob's password", None)
        .await
        .expect("login by email");
    assert_eq!(by_email.user.id, user.id);
    assert_ne!(by_name.refresh_token, by_email.refresh_token);

    assert_err!(
        engine.login("bob", "not bob's password", None).await,
        ChatError::Unauthorized
    );
    assert_err!(
        engine.login("nobody", "bob's password", None).await,
        ChatError::Unauthorized
    );
}

#[tokio::test]
async fn refresh_tokens_work_once_and_access_tokens_authenticate() {
    let (engine, _) = engine().await;
    let user = engine
        .register(register("carol", "carol's password", None))
        .await
        .expect("registered");
    let login = engine
        .login("carol", "carol's password", None)
        .await
        .expect("logged in");

    let identity = engine
        .authenticate(&login.access_token)
        .await
        .expect("the access token authenticates");
    assert_eq!(identity.user, user.id);
    assert_err!(
        engine.authenticate("not.a.token").await,
        ChatError::Unauthorized
    );
    assert_err!(
        engine.authenticate(&login.refresh_token).await,
        ChatError::Unauthorized
    );

    let refreshed = engine
        .refresh(&login.refresh_token)
        .await
        .expect("first use of the refresh token");
    assert_eq!(refreshed.user.id, user.id);
    assert_ne!(refreshed.refresh_token, login.refresh_token);
    let identity = engine
        .authenticate(&refreshed.access_token)
        .await
        .expect("the new access token authenticates");
    assert_eq!(identity.user, user.id);
    // The rotated token works (once) in turn.
    let again = engine
        .refresh(&refreshed.refresh_token)
        .await
        .expect("the rotated refresh token works");
    assert_err!(engine.refresh("made-up").await, ChatError::Unauthorized);
    engine
        .authenticate(&again.access_token)
        .await
        .expect("a made-up token signs nobody out");

    // A spent token presented again: someone else has it too, so the whole session goes.
    assert_err!(
        engine.refresh(&login.refresh_token).await,
        ChatError::Unauthorized
    );
    for access in [
        &login.access_token,
        &refreshed.access_token,
        &again.access_token,
    ] {
        assert_err!(engine.authenticate(access).await, ChatError::Unauthorized);
    }
    assert_err!(
        engine.refresh(&again.refresh_token).await,
        ChatError::Unauthorized
    );
    let other = engine
        .login("carol", "carol's password", None)
        .await
        .expect("signing in again works");
    engine
        .authenticate(&other.access_token)
        .await
        .expect("a new session is not the revoked one");
}

#[tokio::test]
async fn logout_ends_the_session_and_its_live_connections_only() {
    let (engine, _store) = engine().await;
    engine
        .register(register("dave", "dave's password", None))
        .await
        .expect("registered");
    let phone = engine.login("dave", "dave's password", None).await.unwrap();
    let laptop = engine.login("dave", "dave's password", None).await.unwrap();
    let phone_id = engine.authenticate(&phone.access_token).await.unwrap();
    let laptop_id = engine.authenticate(&laptop.access_token).await.unwrap();
    let mut phone_live = engine.connect(phone_id).await.expect("connected");
    let mut laptop_live = engine.connect(laptop_id).await.expect("connected");

    engine.logout(phone_id).await.expect("signed out");
    assert_err!(
        engine.authenticate(&phone.access_token).await,
        ChatError::Unauthorized
    );
    assert_err!(
        engine.refresh(&phone.refresh_token).await,
        ChatError::Unauthorized
    );
    let ended = tokio::time::timeout(Duration::from_secs(5), phone_live.next_frame())
        .await
        .expect("the signed-out connection ends at once");
    assert_eq!(ended.err(), Some(SessionEnd::SignedOut));
    assert!(
        tokio::time::timeout(Duration::from_millis(200), laptop_live.next_frame())
            .await
            .is_err(),
        "the other session's connection stays open and quiet"
    );
    engine
        .authenticate(&laptop.access_token)
        .await
        .expect("the other session still works");
    engine
        .logout(phone_id)
        .await
        .expect("signing out twice is fine");
    assert_err!(
        engine.logout(phone_id.user.into()).await,
        ChatError::Forbidden(_)
    );
}

#[tokio::test]
async fn a_password_change_signs_out_every_other_session() {
    let (engine, _store) = engine().await;
    engine
        .register(register("erin", "erin's password", None))
        .await
        .expect("registered");
    let here = engine.login("erin", "erin's password", None).await.unwrap();
    let there = engine.login("erin", "erin's password", None).await.unwrap();
    let me = engine.authenticate(&here.access_token).await.unwrap();
    let change = |current: &str, new: &str| ChangePassword {
        current_password: current.into(),
        new_password: new.into(),
    };

    let wrong = engine
        .change_password(me, change("not it", "a new password"))
        .await;
    assert!(
        matches!(&wrong, Err(ChatError::Validation(f)) if f.0.contains_key("current_password")),
        "{wrong:?}"
    );
    let short = engine
        .change_password(me, change("erin's password", "short"))
        .await;
    assert!(
        matches!(&short, Err(ChatError::Validation(f)) if f.0.contains_key("new_password")),
        "{short:?}"
    );
    engine
        .authenticate(&there.access_token)
        .await
        .expect("refused changes sign nobody out");

    engine
        .change_password(me, change("erin's password", "a new password"))
        .await
        .expect("changed");
    engine
        .authenticate(&here.access_token)
        .await
        .expect("the current session goes on");
    assert_err!(
        engine.authenticate(&there.access_token).await,
        ChatError::Unauthorized
    );
    assert_err!(
        engine.refresh(&there.refresh_token).await,
        ChatError::Unauthorized
    );
    assert_err!(
        engine.login("erin", "erin's password", None).await,
        ChatError::Unauthorized
    );
    engine
        .login("erin", "a new password", None)
        .await
        .expect("the new password signs in");
    engine
        .refresh(&here.refresh_token)
        .await
        .expect("the current session's refresh token still works");
}

// ---------------------------------------------------------------------------------------------
// Visibility and permissions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_private_room_is_not_found_for_non_members() {
    let (engine, store) = engine().await;
    let owner = seed_user(&store, "owner").await;
    let outsider = seed_user(&store, "outsider").await;
    let room = private_room(&engine, owner, &[]).await;
    let message = say(&engine, owner, room, "secret").await;

    // The member sees everything.
    engine
        .room(owner, room)
        .await
        .expect("member sees the room");
    engine
        .message(owner, room, message)
        .await
        .expect("member sees the message");

    assert_err!(engine.room(outsider, room).await, ChatError::NotFound);
    assert_err!(
        engine
            .history(outsider, room, HistoryQuery::default())
            .await,
        ChatError::NotFound
    );
    assert_err!(
        engine.message(outsider, room, message).await,
        ChatError::NotFound
    );
    assert_err!(
        engine.members(outsider, room, None, page(50)).await,
        ChatError::NotFound
    );
    assert_err!(
        engine.send(outsider, room, text("let me in")).await,
        ChatError::NotFound
    );
    assert_err!(engine.leave(outsider, room).await, ChatError::NotFound);
    // Exactly like a room that does not exist.
    let unknown = RoomId(Uuid::new_v4());
    assert_err!(engine.room(outsider, unknown).await, ChatError::NotFound);
    assert_err!(engine.join(outsider, unknown).await, ChatError::NotFound);
}

#[tokio::test]
async fn a_public_room_is_readable_by_anyone_but_posting_requires_joining() {
    let (engine, store) = engine().await;
    let owner = seed_user(&store, "owner").await;
    let reader = seed_user(&store, "reader").await;
    let room = public_room(&engine, owner, &[]).await;
    let message = say(&engine, owner, room, "hello world").await;

    assert_eq!(engine.room(reader, room).await.expect("room").id, room);
    let read = engine
        .history(reader, room, HistoryQuery::default())
        .await
        .expect("history");
    assert_eq!(read.messages.len(), 1);
    assert_eq!(
        engine
            .message(reader, room, message)
            .await
            .expect("message")
            .body
            .as_deref(),
        Some("hello world")
    );
    let members = engine
        .members(reader, room, None, page(50))
        .await
        .expect("members");
    assert_eq!(members.members.len(), 1);
    assert_eq!(members.members[0].user.id, owner);

    assert_err!(
        engine.send(reader, room, text("hi")).await,
        ChatError::Forbidden(_)
    );
    assert_eq!(
        engine.room(owner, room).await.expect("room").last_seq,
        Seq(1),
        "a refused message is not stored"
    );
    engine.join(reader, room).await.expect("joined");
    let sent = engine.send(reader, room, text("hi")).await.expect("sent");
    assert_eq!(sent.message.seq, Seq(2));
}

#[tokio::test]
async fn join_is_for_public_group_rooms_and_repeatable() {
    let (engine, store) = engine().await;
    let owner = seed_user(&store, "owner").await;
    let joiner = seed_user(&store, "joiner").await;
    let private = private_room(&engine, owner, &[]).await;
    let public = public_room(&engine, owner, &[]).await;

    assert_err!(engine.join(joiner, private).await, ChatError::NotFound);
    assert_eq!(
        engine
            .room(owner, private)
            .await
            .expect("room")
            .member_count,
        1
    );

    let first = engine.join(joiner, public).await.expect("first join");
    assert_eq!(first.user.id, joiner);
    assert_eq!(first.room_id, public);
    assert_eq!(first.role, Role::Member);
    let second = engine.join(joiner, public).await.expect("second join");
    assert_eq!(first, second, "joining again returns the same membership");
    assert_eq!(
        engine.room(owner, public).await.expect("room").member_count,
        2
    );
    // The owner joining their own room is also just their membership.
    assert_eq!(
        engine.join(owner, public).await.expect("owner join").role,
        Role::Owner
    );
}

#[tokio::test]
async fn adding_members_follows_ranks() {
    let (engine, store) = engine().await;
    let owner = seed_user(&store, "owner").await;
    let admin = seed_user(&store, "admin").await;
    let member = seed_user(&store, "member").await;
    let newbie = seed_user(&store, "newbie").await;
    let other = seed_user(&store, "other").await;
    let outsider = seed_user(&store, "outsider").await;
    let room = private_room(&engine, owner, &[member]).await;

    let added = engine
        .add_member(owner, room, add(admin, Some("admin")))
        .await
        .expect("the owner adds an admin");
    assert_eq!(added.role, Role::Admin);

    assert_err!(
        engine.add_member(outsider, room, add(newbie, None)).await,
        ChatError::NotFound
    );
    assert_err!(
        engine.add_member(member, room, add(newbie, None)).await,
        ChatError::Forbidden(_)
    );
    assert_err!(
        engine
            .add_member(admin, room, add(newbie, Some("admin")))
            .await,
        ChatError::Forbidden(_)
    );
    assert_eq!(
        invalid_fields(
            engine
                .add_member(owner, room, add(newbie, Some("owner")))
                .await
        ),
        ["role"]
    );
    assert_eq!(
        invalid_fields(
            engine
                .add_member(owner, room, add(UserId(Uuid::new_v4()), None))
                .await
        ),
        ["user_id"]
    );
    assert!(store
        .membership(room, newbie)
        .await
        .expect("store answers")
        .is_none());

    let added = engine
        .add_member(admin, room, add(newbie, None))
        .await
        .expect("an admin adds a member");
    assert_eq!(added.role, Role::Member);
    assert_err!(
        engine.add_member(owner, room, add(newbie, None)).await,
        ChatError::Conflict(_)
    );
    assert_err!(
        engine.add_member(admin, room, add(member, None)).await,
        ChatError::Conflict(_)
    );
    engine
        .add_member(owner, room, add(other, None))
        .await
        .expect("the owner adds a member");
    assert_eq!(
        engine.room(owner, room).await.expect("room").member_count,
        5
    );
}

fn role(name: &str) -> ChangeRole {
    ChangeRole { role: name.into() }
}

#[tokio::test]
async fn only_the_owner_changes_roles_and_hands_the_room_over() {
    let (engine, store) = engine().await;
    let owner = seed_user(&store, "owner").await;
    let admin = seed_user(&store, "admin").await;
    let member = seed_user(&store, "member").await;
    let outsider = seed_user(&store, "outsider").await;
    let room = private_room(&engine, owner, &[member]).await;
    engine
        .add_member(owner, room, add(admin, Some("admin")))
        .await
        .expect("admin added");
    let mut live = engine.connect(member).await.expect("connected");

    assert_err!(
        engine.change_role(admin, room, member, role("admin")).await,
        ChatError::Forbidden(_)
    );
    assert_err!(
        engine
            .change_role(member, room, admin, role("member"))
            .await,
        ChatError::Forbidden(_)
    );
    assert_err!(
        engine
            .change_role(outsider, room, member, role("admin"))
            .await,
        ChatError::NotFound
    );
    assert_err!(
        engine
            .change_role(owner, room, outsider, role("admin"))
            .await,
        ChatError::NotFound
    );
    assert_eq!(
        invalid_fields(engine.change_role(owner, room, member, role("root")).await),
        ["role"]
    );
    assert_eq!(
        invalid_fields(engine.change_role(owner, room, owner, role("member")).await),
        ["role"],
        "an owner cannot leave the room without one"
    );

    let promoted = engine
        .change_role(owner, room, member, role("admin"))
        .await
        .expect("promoted");
    assert_eq!(promoted.role, Role::Admin);
    let frame = next(&mut live).await;
    assert_eq!(kind(&frame), "member.updated", "{frame}");
    assert_eq!(frame["member"]["role"], "admin");
    engine
        .change_role(owner, room, member, role("admin"))
        .await
        .expect("no change");
    assert_quiet(&mut live).await;

    let heir = engine
        .change_role(owner, room, admin, role("owner"))
        .await
        .expect("handed over");
    assert_eq!(heir.role, Role::Owner);
    let frames = [next(&mut live).await, next(&mut live).await];
    let roles: Vec<(String, String)> = frames
        .iter()
        .map(|f| {
            assert_eq!(kind(f), "member.updated", "{f}");
            (
                f["member"]["user"]["id"].as_str().unwrap().to_owned(),
                f["member"]["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            (admin.to_string(), "owner".to_owned()),
            (owner.to_string(), "admin".to_owned())
        ]
    );
    assert_err!(
        engine
            .change_role(owner, room, member, role("member"))
            .await,
        ChatError::Forbidden(_)
    );
    engine
        .change_role(admin, room, owner, role("member"))
        .await
        .expect("the new owner demotes the old one");
}

#[tokio::test]
async fn removing_members_needs_a_higher_rank() {
    let (engine, store) = engine().await;
    let owner = seed_user(&store, "owner").await;
    let admin = seed_user(&store, "admin").await;
    let admin2 = seed_user(&store, "admin2").await;
    let member = seed_user(&store, "member").await;
    let member2 = seed_user(&store, "member2").await;
    let room = private_room(&engine, owner, &[member, member2]).await;
    for a in [admin, admin2] {
        engine
            .add_member(owner, room, add(a, Some("admin")))
            .await
            .expect("admin added");
    }

    assert_err!(
        engine.remove_member(member, room, member2).await,
        ChatError::Forbidden(_)
    );
    assert_err!(
        engine.remove_member(member, room, admin).await,
        ChatError::Forbidden(_)
    );
    assert_err!(
        engine.remove_member(admin, room, admin2).await,
        ChatError::Forbidden(_)
    );
    assert_err!(
        engine.remove_member(admin, room, owner).await,
        ChatError::Forbidden(_)
    );
    assert_eq!(
        engine.room(owner, room).await.expect("room").member_count,
        5
    );

    engine
        .remove_member(admin, room, member)
        .await
        .expect("an admin removes a member");
    assert!(store
        .membership(room, member)
        .await
        .expect("store")
        .is_none());
    assert_err!(engine.room(member, room).await, ChatError::NotFound);
    engine
        .remove_member(owner, room, admin2)
        .await
        .expect("the owner removes an admin");
    assert!(store
        .membership(room, admin2)
        .await
        .expect("store")
        .is_none());
    assert_err!(
        engine.remove_member(owner, room, member).await,
        ChatError::NotFound
    );
    assert_eq!(
        engine.room(owner, room).await.expect("room").member_count,
        3
    );
}

// ---------------------------------------------------------------------------------------------
// Leaving
// ---------------------------------------------------------------------------------------------

async fn role_of(store: &MemoryStore, room: RoomId, user: UserId) -> Option<Role> {
    store
        .membership(room, user)
        .await
        .expect("store answers")
        .map(|m| m.role)
}

#[tokio::test]
async fn an_owner_leaving_hands_the_room_to_the_oldest_admin_else_the_oldest_member() {
    let (engine, store, clock) = engine_with_clock().await;
    let owner = seed_user(&store, "owner").await;
    let old_member = seed_user(&store, "old_member").await;
    let old_admin = seed_user(&store, "old_admin").await;
    let young_admin = seed_user(&store, "young_admin").await;
    let young_member = seed_user(&store, "young_member").await;
    let room = private_room(&engine, owner, &[]).await;
    for (user, role) in [
        (old_member, None),
        (old_admin, Some("admin")),
        (young_admin, Some("admin")),
        (young_member, None),
    ] {
        clock.advance(Duration::from_millis(10));
        engine
            .add_member(owner, room, add(user, role))
            .await
            .expect("member added");
    }

    engine.leave(owner, room).await.expect("owner leaves");
    assert_eq!(role_of(&store, room, owner).await, None);
    assert_eq!(
        role_of(&store, room, old_admin).await,
        Some(Role::Owner),
        "the oldest admin wins over an older member"
    );
    assert_eq!(role_of(&store, room, young_admin).await, Some(Role::Admin));
    assert_eq!(role_of(&store, room, old_member).await, Some(Role::Member));

    engine
        .leave(old_admin, room)
        .await
        .expect("new owner leaves");
    assert_eq!(role_of(&store, room, young_admin).await, Some(Role::Owner));

    engine
        .leave(young_admin, room)
        .await
        .expect("next owner leaves");
    assert_eq!(
        role_of(&store, room, old_member).await,
        Some(Role::Owner),
        "with no admin left, the oldest member becomes owner"
    );
    assert_eq!(
        role_of(&store, room, young_member).await,
        Some(Role::Member)
    );

    // A plain member leaving hands nothing over.
    engine
        .leave(young_member, room)
        .await
        .expect("member leaves");
    assert_eq!(role_of(&store, room, old_member).await, Some(Role::Owner));
    let members = engine
        .members(old_member, room, None, page(50))
        .await
        .expect("members");
    assert_eq!(members.members.len(), 1);
}

#[tokio::test]
async fn the_last_member_leaving_deletes_the_room() {
    let (engine, store) = engine().await;
    let owner = seed_user(&store, "owner").await;
    let member = seed_user(&store, "member").await;
    let passer_by = seed_user(&store, "passer_by").await;
    // Public, so that a non-member would still see it if it were not deleted.
    let room = public_room(&engine, owner, &[member]).await;
    say(&engine, member, room, "bye").await;

    engine.leave(owner, room).await.expect("owner leaves");
    engine
        .room(passer_by, room)
        .await
        .expect("the room lives on with one member");
    assert_eq!(role_of(&store, room, member).await, Some(Role::Owner));

    engine
        .leave(member, room)
        .await
        .expect("last member leaves");
    assert_err!(engine.room(passer_by, room).await, ChatError::NotFound);
    assert_err!(engine.room(member, room).await, ChatError::NotFound);
    assert_err!(
        engine
            .history(passer_by, room, HistoryQuery::default())
            .await,
        ChatError::NotFound
    );
    assert_err!(engine.join(passer_by, room).await, ChatError::NotFound);
    assert!(store.room(room).await.expect("store answers").is_none());
}

#[tokio::test]
async fn a_direct_room_cannot_be_left() {
    let (engine, store) = engine().await;
    let alice = seed_user(&store, "alice").await;
    let bob = seed_user(&store, "bob").await;
    let dm = engine
        .open_direct(alice, &bob.to_string())
        .await
        .expect("dm")
        .room
        .id;
    assert_eq!(invalid_fields(engine.leave(alice, dm).await), ["room"]);
    assert_eq!(role_of(&store, dm, alice).await, Some(Role::Member));
    assert_eq!(engine.room(alice, dm).await.expect("room").member_count, 2);
    // Nor can anyone be added to or removed from it.
    let carol = seed_user(&store, "carol").await;
    assert_err!(
        engine.add_member(alice, dm, add(carol, None)).await,
        ChatError::Forbidden(_)
    );
    assert_err!(
        engine.remove_member(alice, dm, bob).await,
        ChatError::Forbidden(_)
    );
}

// ---------------------------------------------------------------------------------------------
// Direct rooms
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn open_direct_creates_the_room_once_for_the_pair() {
    let (engine, store) = engine().await;
    let alice = seed_user(&store, "alice").await;
    let bob = seed_user(&store, "bob").await;

    let first = engine
        .open_direct(alice, &bob.to_string())
        .await
        .expect("created");
    assert!(first.created);
    assert_eq!(first.room.kind, RoomKind::Direct);
    assert_eq!(first.room.name, "");
    assert_eq!(first.room.member_count, 2);

    let other_side = engine
        .open_direct(bob, &alice.to_string())
        .await
        .expect("found");
    assert!(!other_side.created);
    assert_eq!(other_side.room.id, first.room.id);
    let again = engine
        .open_direct(alice, &bob.to_string())
        .await
        .expect("found");
    assert!(!again.created);
    assert_eq!(again.room.id, first.room.id);

    let members: HashSet<UserId> = engine
        .members(bob, first.room.id, None, page(50))
        .await
        .expect("members")
        .members
        .into_iter()
        .map(|m| m.user.id)
        .collect();
    assert_eq!(members, HashSet::from([alice, bob]));

    assert_eq!(
        invalid_fields(engine.open_direct(alice, &alice.to_string()).await),
        ["user_id"]
    );
    assert_eq!(
        invalid_fields(engine.open_direct(alice, "not-a-uuid").await),
        ["user_id"]
    );
    assert_eq!(
        invalid_fields(engine.open_direct(alice, &Uuid::new_v4().to_string()).await),
        ["user_id"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_open_direct_from_both_sides_makes_one_room() {
    let (engine, store) = engine().await;
    for i in 0..8 {
        let a = seed_user(&store, &format!("left{i}")).await;
        let b = seed_user(&store, &format!("right{i}")).await;
        let (ea, eb) = (engine.clone(), engine.clone());
        let one = tokio::spawn(async move { ea.open_direct(a, &b.to_string()).await });
        let two = tokio::spawn(async move { eb.open_direct(b, &a.to_string()).await });
        let one = one.await.expect("task").expect("open_direct");
        let two = two.await.expect("task").expect("open_direct");
        assert_eq!(one.room.id, two.room.id, "one room per pair");
        assert!(
            one.created ^ two.created,
            "exactly one call creates it ({} / {})",
            one.created,
            two.created
        );
        assert_eq!(
            engine
                .rooms(a, false, None, page(100))
                .await
                .expect("rooms")
                .rooms
                .len(),
            1
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn messages_take_consecutive_seqs() {
    let (engine, store) = engine().await;
    let alice = seed_user(&store, "alice").await;
    let bob = seed_user(&store, "bob").await;
    let room = private_room(&engine, alice, &[bob]).await;
    for n in 1..=6 {
        let sender = if n % 2 == 0 { alice } else { bob };
        let sent = engine
            .send(sender, room, text(&format!("message {n}")))
            .await
            .expect("sent");
        assert!(sent.created);
        assert_eq!(sent.message.seq, Seq(n));
        assert_eq!(sent.message.sender_id, sender);
        assert_eq!(sent.message.room_id, room);
    }
    let found = engine.room(alice, room).await.expect("room");
    assert_eq!(found.last_seq, Seq(6));
    assert_eq!(
        found.last_message.expect("last message").body.as_deref(),
        Some("message 6")
    );
    // Every room counts on its own.
    let other = private_room(&engine, bob, &[]).await;
    assert_eq!(
        engine
            .send(bob, other, text("first"))
            .await
            .expect("sent")
            .message
            .seq,
        Seq(1)
    );
}

#[tokio::test]
async fn a_repeated_client_id_returns_the_original_and_stores_nothing() {
    let (engine, store) = engine().await;
    let alice = seed_user(&store, "alice").await;
    let bob = seed_user(&store, "bob").await;
    let room = private_room(&engine, alice, &[bob]).await;
    let mut session = engine.connect(bob).await.expect("connected");

    let first = engine
        .send(alice, room, with_client_id("original", "c-1"))
        .await
        .expect("sent");
    assert!(first.created);
    let retry = engine
        .send(alice, room, with_client_id("a different body", "c-1"))
        .await
        .expect("retried");
    assert!(!retry.created);
    assert_eq!(retry.message, first.message);
    assert_eq!(retry.message.body.as_deref(), Some("original"));
    assert_eq!(
        engine.room(alice, room).await.expect("room").last_seq,
        Seq(1)
    );
    let page = engine
        .history(alice, room, HistoryQuery::default())
        .await
        .expect("history");
    assert_eq!(page.messages.len(), 1);

    // The key belongs to its sender: another sender's same key is a new message.
    let bobs = engine
        .send(bob, room, with_client_id("bob's", "c-1"))
        .await
        .expect("sent");
    assert!(bobs.created);
    assert_eq!(bobs.message.seq, Seq(2));

    // Live sessions hear of the original once, and never of the retry.
    assert_eq!(
        next_created(&mut session, room).await,
        (1, "original".into())
    );
    assert_eq!(next_created(&mut session, room).await, (2, "bob's".into()));
    assert_quiet(&mut session).await;
}

#[tokio::test]
async fn bodies_are_trimmed_and_bounded() {
    let (engine, store) = engine_with(Limits {
        max_message_chars: 20,
        ..limits()
    })
    .await;
    let alice = seed_user(&store, "alice").await;
    let room = private_room(&engine, alice, &[]).await;

    let sent = engine
        .send(alice, room, text("  \n hello there \t "))
        .await
        .expect("sent");
    assert_eq!(sent.message.body.as_deref(), Some("hello there"));
    engine
        .send(alice, room, text(&format!("  {}  ", "x".repeat(20))))
        .await
        .expect("20 characters after trimming are allowed");
    engine
        .send(alice, room, text(&"é".repeat(20)))
        .await
        .expect("the limit counts characters, not bytes");

    for bad in [
        text(""),
        text("   \n\t "),
        text(&"x".repeat(21)),
        SendMessage::default(),
    ] {
        assert_eq!(
            invalid_fields(engine.send(alice, room, bad).await),
            ["body"]
        );
    }
    assert_eq!(
        invalid_fields(engine.send(alice, room, with_client_id("ok", "")).await),
        ["client_id"]
    );
    assert_eq!(
        invalid_fields(
            engine
                .send(alice, room, with_client_id("ok", &"k".repeat(65)))
                .await
        ),
        ["client_id"]
    );
    assert_eq!(
        engine.room(alice, room).await.expect("room").last_seq,
        Seq(3)
    );
}

#[tokio::test]
async fn replies_and_threads_must_stay_in_the_room() {
    let (engine, store) = engine().await;
    let alice = seed_user(&store, "alice").await;
    let here = private_room(&engine, alice, &[]).await;
    let there = private_room(&engine, alice, &[]).await;
    let local = say(&engine, alice, here, "local").await;
    let foreign = say(&engine, alice, there, "foreign").await;

    let reply = |to: String| SendMessage {
        body: Some("reply".into()),
        reply_to: Some(to),
        ..Default::default()
    };
    let in_thread = |root: String| SendMessage {
        body: Some("in thread".into()),
        thread_id: Some(root),
        ..Default::default()
    };

    assert_eq!(
        invalid_fields(engine.send(alice, here, reply(foreign.to_string())).await),
        ["reply_to"]
    );
    assert_eq!(
        invalid_fields(
            engine
                .send(alice, here, in_thread(foreign.to_string()))
                .await
        ),
        ["thread_id"]
    );
    assert_eq!(
        invalid_fields(
            engine
                .send(alice, here, reply(Uuid::new_v4().to_string()))
                .await
        ),
        ["reply_to"]
    );
    assert_eq!(
        invalid_fields(engine.send(alice, here, in_thread("garbage".into())).await),
        ["thread_id"]
    );
    assert_eq!(
        engine.room(alice, here).await.expect("room").last_seq,
        Seq(1)
    );

    let ok = engine
        .send(alice, here, reply(local.to_string()))
        .await
        .expect("a reply in the same room");
    assert_eq!(ok.message.reply_to, Some(local));
    assert_eq!(ok.message.thread_id, None);
}

#[tokio::test]
async fn a_thread_reply_cannot_start_a_thread() {
    let (engine, store) = engine().await;
    let alice = seed_user(&store, "alice").await;
    let room = private_room(&engine, alice, &[]).await;
    let root = say(&engine, alice, room, "root").await;
    let in_thread = |root: MessageId| SendMessage {
        body: Some("in thread".into()),
        thread_id: Some(root.to_string()),
        ..Default::default()
    };

    let reply = engine
        .send(alice, room, in_thread(root))
        .await
        .expect("a reply to a root");
    assert_eq!(reply.message.thread_id, Some(root));
    assert_eq!(reply.message.seq, Seq(2), "thread replies take room seqs");

    assert_eq!(
        invalid_fields(engine.send(alice, room, in_thread(reply.message.id)).await),
        ["thread_id"]
    );
    assert_eq!(
        engine.room(alice, room).await.expect("room").last_seq,
        Seq(2)
    );

    let root_now = engine.message(alice, room, root).await.expect("root");
    let thread = root_now.thread.expect("the root carries its thread");
    assert_eq!(thread.reply_count, 1);
    // Quoting a thread reply (not threading under it) is fine.
    let quote = SendMessage {
        body: Some("quote".into()),
        reply_to: Some(reply.message.id.to_string()),
        ..Default::default()
    };
    engine
        .send(alice, room, quote)
        .await
        .expect("quoting a reply");
}

#[tokio::test]
async fn mentions_resolve_to_members_only() {
    let (engine, store) = engine().await;
    let alice = seed_user(&store, "alice").await;
    let bob = seed_user(&store, "bob").await;
    let carol = seed_user(&store, "carol").await;
    let room = private_room(&engine, alice, &[bob]).await;

    let sent = engine
        .send(
            alice,
            room,
            text("hi @BOB, @carol and @nobody; mail bob@example.com, @bob."),
        )
        .await
        .expect("sent");
    assert_eq!(sent.message.mentions, vec![bob]);

    let none = engine
        .send(alice, room, text("no one named, mail alice@bob.com"))
        .await
        .expect("sent");
    assert!(none.message.mentions.is_empty());

    engine
        .add_member(alice, room, add(carol, None))
        .await
        .expect("carol added");
    let both = engine
        .send(alice, room, text("@carol and @bob"))
        .await
        .expect("sent");
    let mentioned: HashSet<UserId> = both.message.mentions.iter().copied().collect();
    assert_eq!(mentioned, HashSet::from([bob, carol]));
    assert_eq!(both.message.mentions.len(), 2);
}

#[tokio::test]
async fn history_pages_before_and_after_with_has_more() {
    let (engine, store) = engine().await;
    let alice = seed_user(&store, "alice").await;
    let room = private_room(&engine, alice, &[]).await;
    for n in 1..=10 {
        say(&engine, alice, room, &format!("m{n}")).await;
    }
    let seqs = |page: &chat_core::domain::HistoryPage| -> Vec<i64> {
        page.messages.iter().map(|m| m.seq.0).collect()
    };
    let read = |q: HistoryQuery| engine.history(alice, room, q);

    let all = read(HistoryQuery::default()).await.expect("history");
    assert_eq!(seqs(&all), (1..=10).collect::<Vec<_>>());
    assert!(!all.has_more);

    let newest = read(history(None, None, Some(3))).await.expect("history");
    assert_eq!(seqs(&newest), [8, 9, 10]);
    assert!(newest.has_more);

    let before = read(history(Some(8), None, Some(3)))
        .await
        .expect("history");
    assert_eq!(seqs(&before), [5, 6, 7]);
    assert!(before.has_more);
    let first = read(history(Some(4), None, Some(3)))
        .await
        .expect("history");
    assert_eq!(seqs(&first), [1, 2, 3]);
    assert!(!first.has_more);
    let nothing = read(history(Some(1), None, Some(3)))
        .await
        .expect("history");
    assert!(nothing.messages.is_empty());
    assert!(!nothing.has_more);

    let oldest = read(history(None, Some(0), Some(3)))
        .await
        .expect("history");
    assert_eq!(seqs(&oldest), [1, 2, 3]);
    assert!(oldest.has_more);
    let after = read(history(None, Some(6), Some(3)))
        .await
        .expect("history");
    assert_eq!(seqs(&after), [7, 8, 9]);
    assert!(after.has_more);
    let last = read(history(None, Some(7), Some(3)))
        .await
        .expect("history");
    assert_eq!(seqs(&last), [8, 9, 10]);
    assert!(!last.has_more);
    let past = read(history(None, Some(10), Some(3)))
        .await
        .expect("history");
    assert!(past.messages.is_empty());
    assert!(!past.has_more);

    assert_err!(
        read(history(Some(5), Some(2), None)).await,
        ChatError::BadRequest(_)
    );
    assert_err!(
        read(history(None, Some(-1), None)).await,
        ChatError::BadRequest(_)
    );
}

// ---------------------------------------------------------------------------------------------
// Live sessions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn members_sessions_get_messages_in_seq_order() {
    let (engine, store) = engine().await;
    let alice = seed_user(&store, "alice").await;
    let bob = seed_user(&store, "bob").await;
    let room = private_room(&engine, alice, &[bob]).await;
    let mut bobs = engine.connect(bob).await.expect("connected");
    let mut alices = engine.connect(alice).await.expect("connected");
    let mut bobs_phone = engine.connect(bob).await.expect("connected");
    assert_eq!(bobs.positions().len(), 1);
    assert_eq!(bobs.positions()[0].room_id, room);

    for n in 1..=5 {
        say(&engine, alice, room, &format!("m{n}")).await;
    }
    for session in [&mut bobs, &mut alices, &mut bobs_phone] {
        for n in 1..=5 {
            assert_eq!(next_created(session, room).await, (n, format!("m{n}")));
        }
        assert_quiet(session).await;
    }
}

#[tokio::test]
async fn joining_subscribes_a_connected_session_at_once() {
    let (engine, store) = engine().await;
    let alice = seed_user(&store, "alice").await;
    let bob = seed_user(&store, "bob").await;
    let room = private_room(&engine, alice, &[]).await;
    say(&engine, alice, room, "before bob").await;
    let mut session = engine.connect(bob).await.expect("connected");
    assert!(session.positions().is_empty());

    engine
        .add_member(alice, room, add(bob, None))
        .await
        .expect("bob added");
    say(&engine, alice, room, "welcome").await;
    say(&engine, alice, room, "again").await;

    let joined = next(&mut session).await;
    assert_member_joined(&joined, room, bob);
    assert_eq!(
        next_created(&mut session, room).await,
        (2, "welcome".into())
    );
    assert_eq!(next_created(&mut session, room).await, (3, "again".into()));
    assert_quiet(&mut session).await;
}

#[tokio::test]
async fn joining_a_public_room_subscribes_the_joiners_sessions() {
    let (engine, store) = engine().await;
    let alice = seed_user(&store, "alice").await;
    let bob = seed_user(&store, "bob").await;
    let room = public_room(&engine, alice, &[]).await;
    say(&engine, alice, room, "one").await;
    let mut session = engine.connect(bob).await.expect("connected");
    // A public room is readable, but a non-member's session does not follow it.
    say(&engine, alice, room, "two").await;
    assert_quiet(&mut session).await;

    engine.join(bob, room).await.expect("joined");
    assert_member_joined(&next(&mut session).await, room, bob);
    say(&engine, alice, room, "three").await;
    assert_eq!(next_created(&mut session, room).await, (3, "three".into()));
    assert_quiet(&mut session).await;
}

#[tokio::test]
async fn leaving_or_removal_unsubscribes_at_once() {
    let (engine, store) = engine().await;
    let alice = seed_user(&store, "alice").await;
    let bob = seed_user(&store, "bob").await;
    let left = private_room(&engine, alice, &[bob]).await;
    let removed = private_room(&engine, alice, &[bob]).await;
    let stays = private_room(&engine, alice, &[bob]).await;
    let mut session = engine.connect(bob).await.expect("connected");
    let mut alices = engine.connect(alice).await.expect("connected");

    engine.leave(bob, left).await.expect("bob leaves");
    assert_member_left(&next(&mut session).await, left, bob);
    assert_member_left(&next(&mut alices).await, left, bob);
    say(&engine, alice, left, "after bob left").await;
    say(&engine, alice, stays, "still here").await;
    assert_eq!(
        next_created(&mut session, stays).await,
        (1, "still here".into())
    );

    engine
        .remove_member(alice, removed, bob)
        .await
        .expect("bob removed");
    assert_member_left(&next(&mut session).await, removed, bob);
    say(&engine, alice, removed, "after bob was removed").await;
    say(&engine, alice, stays, "still here 2").await;
    assert_eq!(
        next_created(&mut session, stays).await,
        (2, "still here 2".into())
    );
    assert_quiet(&mut session).await;

    // Alice still hears all three rooms.
    assert_eq!(next_created(&mut alices, left).await.0, 1);
    assert_eq!(next_created(&mut alices, stays).await.0, 1);
    assert_member_left(&next(&mut alices).await, removed, bob);
    assert_eq!(next_created(&mut alices, removed).await.0, 1);
    assert_eq!(next_created(&mut alices, stays).await.0, 2);
}

#[tokio::test]
async fn a_non_members_session_hears_nothing_of_a_private_room() {
    let (engine, store) = engine().await;
    let alice = seed_user(&store, "alice").await;
    let eve = seed_user(&store, "eve").await;
    let secret = private_room(&engine, alice, &[]).await;
    let shared = private_room(&engine, alice, &[eve]).await;
    let mut session = engine.connect(eve).await.expect("connected");

    say(&engine, alice, secret, "secret 1").await;
    say(&engine, alice, secret, "secret 2").await;
    say(&engine, alice, shared, "shared").await;
    assert_eq!(
        next_created(&mut session, shared).await,
        (1, "shared".into())
    );
    assert_quiet(&mut session).await;
    assert_err!(
        session.sync(secret, SyncSince::Seq(Seq::ZERO)).await,
        ChatError::NotFound
    );
}

#[tokio::test]
async fn sync_replays_exactly_the_messages_after_a_seq() {
    let (engine, store) = engine().await;
    let alice = seed_user(&store, "alice").await;
    let bob = seed_user(&store, "bob").await;
    let room = private_room(&engine, alice, &[bob]).await;
    for n in 1..=7 {
        say(&engine, alice, room, &format!("m{n}")).await;
    }
    let mut session = engine.connect(bob).await.expect("connected");
    assert_eq!(session.positions()[0].last_seq, Seq(7));

    let (frames, synced) = session
        .sync(room, SyncSince::Seq(Seq(3)))
        .await
        .expect("synced");
    let replayed: Vec<(i64, String)> = parse_frames(&frames)
        .iter()
        .map(|f| created(f, room))
        .collect();
    assert_eq!(
        replayed,
        (4..=7).map(|n| (n, format!("m{n}"))).collect::<Vec<_>>()
    );
    assert_eq!(synced.last_seq, Seq(7));
    assert!(synced.complete);

    let (frames, synced) = session
        .sync(room, SyncSince::Seq(Seq(7)))
        .await
        .expect("synced");
    assert!(frames.is_empty());
    assert_eq!(synced.last_seq, Seq(7));
    assert!(synced.complete);

    // A live message, then a sync from the start: seq 8 is not sent a second time.
    say(&engine, alice, room, "m8").await;
    assert_eq!(next_created(&mut session, room).await, (8, "m8".into()));
    let (frames, synced) = session
        .sync(room, SyncSince::Seq(Seq::ZERO))
        .await
        .expect("synced");
    let seqs: Vec<i64> = parse_frames(&frames)
        .iter()
        .map(|f| created(f, room).0)
        .collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>());
    assert_eq!(synced.last_seq, Seq(8));
    assert!(synced.complete);
    assert_quiet(&mut session).await;
}

#[tokio::test]
async fn sync_then_live_delivers_each_seq_once_in_order() {
    let (engine, store) = engine().await;
    let alice = seed_user(&store, "alice").await;
    let bob = seed_user(&store, "bob").await;
    let room = private_room(&engine, alice, &[bob]).await;
    say(&engine, alice, room, "m1").await;
    let mut session = engine.connect(bob).await.expect("connected");
    // Sent while the session is open but before the client reads its queue: the sync
    // replays them, and the queued live copies must not come again.
    say(&engine, alice, room, "m2").await;
    say(&engine, alice, room, "m3").await;
    let (frames, synced) = session
        .sync(room, SyncSince::Seq(Seq(1)))
        .await
        .expect("synced");
    let seqs: Vec<i64> = parse_frames(&frames)
        .iter()
        .map(|f| created(f, room).0)
        .collect();
    assert_eq!(seqs, [2, 3]);
    assert_eq!(synced.last_seq, Seq(3));
    say(&engine, alice, room, "m4").await;
    assert_eq!(next_created(&mut session, room).await, (4, "m4".into()));
    assert_quiet(&mut session).await;
}

#[tokio::test]
async fn sync_stops_at_the_cap_and_says_so() {
    let (engine, store) = engine_with(Limits {
        sync_max_messages: 5,
        ..limits()
    })
    .await;
    let alice = seed_user(&store, "alice").await;
    let room = private_room(&engine, alice, &[]).await;
    for n in 1..=8 {
        say(&engine, alice, room, &format!("m{n}")).await;
    }
    let mut session = engine.connect(alice).await.expect("connected");

    let (frames, synced) = session
        .sync(room, SyncSince::Seq(Seq::ZERO))
        .await
        .expect("synced");
    let seqs: Vec<i64> = parse_frames(&frames)
        .iter()
        .map(|f| created(f, room).0)
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(synced.last_seq, Seq(8));
    assert!(!synced.complete);

    let (frames, synced) = session
        .sync(room, SyncSince::Seq(Seq(5)))
        .await
        .expect("synced");
    let seqs: Vec<i64> = parse_frames(&frames)
        .iter()
        .map(|f| created(f, room).0)
        .collect();
    assert_eq!(seqs, [6, 7, 8]);
    assert!(synced.complete);

    // Exactly the cap left is complete.
    let (frames, synced) = session
        .sync(room, SyncSince::Seq(Seq(3)))
        .await
        .expect("synced");
    assert_eq!(frames.len(), 5);
    assert!(synced.complete);
}

#[tokio::test]
async fn sync_of_a_room_the_user_is_not_in_fails() {
    let (engine, store) = engine().await;
    let alice = seed_user(&store, "alice").await;
    let bob = seed_user(&store, "bob").await;
    let private = private_room(&engine, alice, &[]).await;
    let public = public_room(&engine, alice, &[]).await;
    say(&engine, alice, public, "public news").await;
    let mut session = engine.connect(bob).await.expect("connected");

    assert_err!(
        session.sync(private, SyncSince::Seq(Seq::ZERO)).await,
        ChatError::NotFound
    );
    assert!(
        session
            .sync(public, SyncSince::Seq(Seq::ZERO))
            .await
            .is_err(),
        "a public room is synced only by its members"
    );
    assert_err!(
        session
            .sync(RoomId(Uuid::new_v4()), SyncSince::Seq(Seq::ZERO))
            .await,
        ChatError::NotFound
    );
    // The failed syncs subscribed the session to nothing.
    say(&engine, alice, public, "more news").await;
    say(&engine, alice, private, "secret").await;
    assert_quiet(&mut session).await;
}

#[tokio::test]
async fn a_session_that_does_not_keep_up_is_cut() {
    let (engine, store) = engine_with(Limits {
        session_queue: 4,
        ..limits()
    })
    .await;
    let alice = seed_user(&store, "alice").await;
    let bob = seed_user(&store, "bob").await;
    let room = private_room(&engine, alice, &[bob]).await;
    let mut slow = engine.connect(bob).await.expect("connected");
    let mut fast = engine.connect(alice).await.expect("connected");
    assert_eq!(engine.hub().session_count(), 2);

    for n in 1..=8 {
        say(&engine, alice, room, &format!("m{n}")).await;
        // The fast session keeps up (its queue never holds more than one frame).
        assert_eq!(next_created(&mut fast, room).await.0, n);
    }
    let end = tokio::time::timeout(WAIT, slow.next_frame())
        .await
        .expect("the cut session answers at once");
    assert_eq!(end, Err(SessionEnd::SlowConsumer));
    assert_eq!(engine.hub().session_count(), 1);
    assert_eq!(
        engine
            .hub()
            .stats()
            .slow_consumers
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    // The fast session carries on.
    say(&engine, alice, room, "m9").await;
    assert_eq!(next_created(&mut fast, room).await.0, 9);
}

#[tokio::test]
async fn a_queue_within_its_bound_is_not_cut() {
    let (engine, store) = engine_with(Limits {
        session_queue: 4,
        ..limits()
    })
    .await;
    let alice = seed_user(&store, "alice").await;
    let room = private_room(&engine, alice, &[]).await;
    let mut session = engine.connect(alice).await.expect("connected");
    for n in 1..=4 {
        say(&engine, alice, room, &format!("m{n}")).await;
    }
    for n in 1..=4 {
        assert_eq!(next_created(&mut session, room).await.0, n);
    }
}

// ---------------------------------------------------------------------------------------------
// Two nodes on one store and one bus
// ---------------------------------------------------------------------------------------------

/// Reads frames until `count` messages of `room` arrived; other rooms' frames fail the test,
/// membership frames of the room are allowed.
async fn collect_seqs(session: &mut Session, room: RoomId, count: usize) -> Vec<i64> {
    let mut seqs = Vec::with_capacity(count);
    while seqs.len() < count {
        let frame = next(session).await;
        match kind(&frame) {
            "message.created" => seqs.push(created(&frame, room).0),
            "member.joined" => assert_eq!(frame_room(&frame), room.to_string()),
            other => panic!("unexpected frame {other}: {frame}"),
        }
    }
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_on_one_node_reach_a_session_on_another_in_order_exactly_once() {
    let store = Arc::new(MemoryStore::new());
    let bus = InProcessNotifier::default();
    let node_a = node(&store, &bus, limits()).await;
    let node_b = node(&store, &bus, limits()).await;
    let senders = [
        seed_user(&store, "sender1").await,
        seed_user(&store, "sender2").await,
        seed_user(&store, "sender3").await,
    ];
    let reader = seed_user(&store, "reader").await;
    let room = private_room(&node_a, senders[0], &[senders[1], senders[2], reader]).await;
    let mut remote = node_b.connect(reader).await.expect("connected on B");

    let mut tasks = tokio::task::JoinSet::new();
    for (i, sender) in senders.into_iter().enumerate() {
        let node_a = node_a.clone();
        tasks.spawn(async move {
            for n in 0..30 {
                node_a
                    .send(sender, room, text(&format!("sender {i} message {n}")))
                    .await
                    .expect("sent");
            }
        });
    }
    let seqs = collect_seqs(&mut remote, room, 90).await;
    while let Some(done) = tasks.join_next().await {
        done.expect("sender task");
    }
    assert_eq!(seqs, (1..=90).collect::<Vec<_>>());
    assert_eq!(
        node_b.room(reader, room).await.expect("room").last_seq,
        Seq(90)
    );
    // No duplicate comes late.
    assert_quiet(&mut remote).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_on_both_nodes_reach_sessions_on_both_nodes_in_order_exactly_once() {
    let store = Arc::new(MemoryStore::new());
    let bus = InProcessNotifier::default();
    let node_a = node(&store, &bus, limits()).await;
    let node_b = node(&store, &bus, limits()).await;
    let s1 = seed_user(&store, "sender1").await;
    let s2 = seed_user(&store, "sender2").await;
    let s3 = seed_user(&store, "sender3").await;
    let reader = seed_user(&store, "reader").await;
    let room = private_room(&node_a, s1, &[s2, s3, reader]).await;
    let mut on_a = node_a.connect(reader).await.expect("connected on A");
    let mut on_b = node_b.connect(reader).await.expect("connected on B");

    let mut tasks = tokio::task::JoinSet::new();
    for (sender, via) in [(s1, &node_a), (s2, &node_b), (s3, &node_a)] {
        let via = via.clone();
        tasks.spawn(async move {
            for n in 0..30 {
                via.send(sender, room, text(&format!("message {n}")))
                    .await
                    .expect("sent");
            }
        });
    }
    let reader_a = tokio::spawn(async move { collect_seqs(&mut on_a, room, 90).await });
    let reader_b = tokio::spawn(async move {
        let seqs = collect_seqs(&mut on_b, room, 90).await;
        assert_quiet(&mut on_b).await;
        seqs
    });
    while let Some(done) = tasks.join_next().await {
        done.expect("sender task");
    }
    let expected: Vec<i64> = (1..=90).collect();
    assert_eq!(reader_a.await.expect("reader on A"), expected);
    assert_eq!(reader_b.await.expect("reader on B"), expected);
}

#[tokio::test]
async fn joining_via_one_node_subscribes_a_session_on_another() {
    let store = Arc::new(MemoryStore::new());
    let bus = InProcessNotifier::default();
    let node_a = node(&store, &bus, limits()).await;
    let node_b = node(&store, &bus, limits()).await;
    let alice = seed_user(&store, "alice").await;
    let bob = seed_user(&store, "bob").await;
    let mut session = node_b.connect(bob).await.expect("connected on B");
    assert!(session.positions().is_empty());

    // Created with bob as a member on A: B's session is told through the bus.
    let other = private_room(&node_a, alice, &[bob]).await;
    assert_member_joined(&next(&mut session).await, other, bob);
    let room = private_room(&node_a, alice, &[]).await;
    say(&node_a, alice, room, "before bob").await;

    node_a
        .add_member(alice, room, add(bob, None))
        .await
        .expect("bob added on A");
    say(&node_a, alice, room, "welcome").await;
    say(&node_a, alice, room, "again").await;

    assert_member_joined(&next(&mut session).await, room, bob);
    assert_eq!(
        next_created(&mut session, room).await,
        (2, "welcome".into())
    );
    assert_eq!(next_created(&mut session, room).await, (3, "again".into()));

    // And leaving via A unsubscribes the session on B.
    node_a.leave(bob, room).await.expect("bob leaves on A");
    assert_member_left(&next(&mut session).await, room, bob);
    say(&node_a, alice, room, "after bob left").await;
    say(&node_a, alice, other, "elsewhere").await;
    assert_eq!(
        next_created(&mut session, other).await,
        (1, "elsewhere".into())
    );
    assert_quiet(&mut session).await;
}

/// Another node's message, stored without any announcement.
async fn store_quietly(store: &MemoryStore, room: RoomId, sender: UserId, body: &str) -> Seq {
    let new = NewMessage {
        id: MessageId(Uuid::new_v4()),
        room_id: room,
        sender_id: sender,
        kind: MessageKind::Text,
        body: Some(MessageBody::parse(body, 100).expect("valid body")),
        attachment: None,
        client_id: None,
        reply_to: None,
        thread_id: None,
        mentions: Vec::new(),
        created_at: OffsetDateTime::now_utc(),
    };
    store
        .append_message(&new)
        .await
        .expect("message stored")
        .message
        .seq
}

#[tokio::test]
async fn lost_or_repeated_hints_still_give_each_seq_once_in_order() {
    let store = Arc::new(MemoryStore::new());
    let bus = InProcessNotifier::default();
    let this_node = node(&store, &bus, limits()).await;
    let alice = seed_user(&store, "alice").await;
    let bob = seed_user(&store, "bob").await;
    let room = private_room(&this_node, alice, &[bob]).await;
    let mut session = this_node.connect(bob).await.expect("connected");

    // Another node stored seqs 1..=3; only the hint for 3 arrives, twice, then a late one for 2.
    for n in 1..=3 {
        store_quietly(&store, room, alice, &format!("m{n}")).await;
    }
    let other_node = NodeId(Uuid::new_v4());
    let hint = |seq: i64| Hint {
        origin: other_node,
        room: Some(room),
        kind: HintKind::Message { seq: Seq(seq) },
    };
    bus.publish(&[hint(3)]).await.expect("published");
    bus.publish(&[hint(3), hint(2)]).await.expect("published");

    for n in 1..=3 {
        assert_eq!(next_created(&mut session, room).await, (n, format!("m{n}")));
    }
    assert_quiet(&mut session).await;

    // Live delivery goes on from there.
    say(&this_node, alice, room, "m4").await;
    assert_eq!(next_created(&mut session, room).await, (4, "m4".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_crosses_nodes_to_members_only() {
    let store = Arc::new(MemoryStore::new());
    let bus = InProcessNotifier::default();
    let node_a = node(&store, &bus, limits()).await;
    let node_b = node(&store, &bus, limits()).await;
    let alice = seed_user(&store, "alice").await;
    let bob = seed_user(&store, "bob").await;
    let eve = seed_user(&store, "eve").await;
    let room = private_room(&node_a, alice, &[bob]).await;
    let mut bob_on_b = node_b.connect(bob).await.expect("bob on B");
    let mut eve_on_b = node_b.connect(eve).await.expect("eve on B");

    node_a
        .typing(alice, room, chat_core::engine::Typing { typing: true })
        .await
        .expect("typing");
    // The room's creation may still be arriving from node A as `member.joined`.
    let mut frame = next(&mut bob_on_b).await;
    while kind(&frame) == "member.joined" {
        frame = next(&mut bob_on_b).await;
    }
    assert_eq!(kind(&frame), "typing");
    assert_eq!(frame["user_id"], alice.to_string());
    assert_eq!(frame["typing"], true);
    // A renewal is not announced again; a stop is.
    node_a
        .typing(alice, room, chat_core::engine::Typing { typing: true })
        .await
        .expect("renewed");
    node_a
        .typing(alice, room, chat_core::engine::Typing { typing: false })
        .await
        .expect("stopped");
    let frame = next(&mut bob_on_b).await;
    assert_eq!(
        (kind(&frame), frame["typing"].as_bool()),
        ("typing", Some(false))
    );
    assert_quiet(&mut eve_on_b).await;
    assert!(matches!(
        node_b
            .typing(eve, room, chat_core::engine::Typing { typing: true })
            .await,
        Err(ChatError::NotFound)
    ));
}
