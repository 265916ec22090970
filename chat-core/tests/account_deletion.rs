//! Engine tests of account deletion: what a deleted account leaves, what others see of it, the
//! username's quarantine, and the purger finishing a purge that stopped half-way.

#[macro_use]
mod support;

use bytes::Bytes;
use chat_core::auth::Identity;
use chat_core::clock::Clock;
use chat_core::engine::DeleteAccount;
use chat_core::ports::AccountStore;
use support::*;

fn png() -> chat_core::ports::ByteStream {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.resize(64, 7);
    Box::pin(futures_util::stream::iter([Ok(Bytes::from(bytes))]))
}

fn confirm(password: &str) -> DeleteAccount {
    DeleteAccount {
        password: password.into(),
    }
}

/// Registers `name` with the password `"{name}'s password"` and signs in.
async fn signed_in(engine: &ChatEngine, name: &str) -> Identity {
    let password = format!("{name}'s password");
    engine
        .register(register(
            name,
            &password,
            Some(&format!("{name}@example.com")),
        ))
        .await
        .expect("registered");
    let login = engine
        .login(name, &password, None)
        .await
        .expect("signed in");
    engine
        .authenticate(&login.access_token)
        .await
        .expect("authenticated")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_account_leaves_tombstones_and_rooms_that_live_on() {
    let (engine, _store, clock) = engine_with_clock().await;
    let alice = signed_in(&engine, "alice").await;
    let bob = signed_in(&engine, "bob").await;
    let carol = signed_in(&engine, "carol").await;
    let room = private_room(&engine, alice.user, &[bob.user]).await;
    // Later than bob, so bob is the oldest member when the owner goes.
    clock.advance(Duration::from_secs(1));
    engine
        .add_member(alice.user, room, add(carol.user, None))
        .await
        .expect("carol added");
    let direct = engine
        .open_direct(bob.user, &alice.user.to_string())
        .await
        .expect("direct room")
        .room
        .id;
    say(&engine, alice.user, room, "hello all").await;
    say(&engine, alice.user, direct, "hello bob").await;
    say(&engine, bob.user, room, "hi alice").await;
    let upload = engine.upload(alice.user, "a.png", png()).await.expect("up");
    let mut alices = engine.connect(alice).await.expect("alice connected");
    let mut bobs = engine.connect(bob).await.expect("bob connected");

    let wrong = engine.delete_account(alice, confirm("not it")).await;
    assert_eq!(invalid_fields(wrong), ["password"]);
    engine
        .me(alice.user)
        .await
        .expect("a wrong password changes nothing");

    engine
        .delete_account(alice, confirm("alice's password"))
        .await
        .expect("deleted");

    let ended = tokio::time::timeout(WAIT, alices.next_frame())
        .await
        .expect("the deleted account's connection ends at once");
    assert_eq!(ended.err(), Some(SessionEnd::SignedOut));
    assert_err!(engine.check_signed_in(alice).await, ChatError::Unauthorized);
    assert_err!(
        engine.login("alice", "alice's password", None).await,
        ChatError::Unauthorized
    );
    assert_err!(engine.user(bob.user, alice.user).await, ChatError::NotFound);
    assert_eq!(
        invalid_fields(engine.open_direct(bob.user, &alice.user.to_string()).await),
        ["user_id"],
        "as for any unknown user"
    );
    assert_err!(
        engine.upload_info(alice.user, upload.id).await,
        ChatError::NotFound
    );

    let mut seen: Vec<(String, String)> = Vec::new();
    for _ in 0..4 {
        let frame = next(&mut bobs).await;
        seen.push((kind(&frame).to_owned(), frame_room(&frame)));
    }
    seen.sort();
    let mut expected = vec![
        ("member.left".to_owned(), direct.to_string()),
        ("member.left".to_owned(), room.to_string()),
        ("message.deleted".to_owned(), direct.to_string()),
        ("message.deleted".to_owned(), room.to_string()),
    ];
    expected.sort();
    assert_eq!(seen, expected);

    let history_page = engine
        .history(bob.user, room, history(None, None, None))
        .await
        .expect("the room lives on");
    let said: Vec<(bool, Option<&str>)> = history_page
        .messages
        .iter()
        .map(|m| (m.deleted, m.body.as_deref()))
        .collect();
    assert_eq!(said, [(true, None), (false, Some("hi alice"))]);
    let members = engine
        .members(bob.user, room, None, page(10))
        .await
        .expect("members");
    let roles: Vec<(UserId, Role)> = members
        .members
        .iter()
        .map(|m| (m.user.id, m.role))
        .collect();
    assert_eq!(
        roles,
        [(bob.user, Role::Owner), (carol.user, Role::Member)],
        "the oldest member took the room over"
    );
    engine
        .history(bob.user, direct, history(None, None, None))
        .await
        .expect("the direct room lives on for the other member");

    assert_err!(
        engine
            .register(register("alice", "a new password", None))
            .await,
        ChatError::Conflict(_)
    );
    let quarantine = limits().username_quarantine_secs.unsigned_abs();
    clock.advance(Duration::from_secs(quarantine + 1));
    let again = engine
        .register(register(
            "alice",
            "a new password",
            Some("alice@example.com"),
        ))
        .await
        .expect("the username and email are free again");
    assert_ne!(again.id, alice.user);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_purger_finishes_a_purge_that_stopped() {
    let (engine, store, clock) = engine_with_clock().await;
    let alice = signed_in(&engine, "alice").await;
    let bob = seed_user(&store, "bob").await;
    let room = private_room(&engine, alice.user, &[bob]).await;
    say(&engine, alice.user, room, "hello").await;
    // As if the node died right after closing the account.
    store
        .close_account(alice.user, clock.now())
        .await
        .expect("closed");

    assert_eq!(engine.finish_account_purges().await.unwrap(), 0, "too soon");
    clock.advance(Duration::from_secs(3600));
    assert_eq!(engine.finish_account_purges().await.unwrap(), 1);
    assert_eq!(engine.finish_account_purges().await.unwrap(), 0, "once");
    let page = engine
        .history(bob, room, history(None, None, None))
        .await
        .expect("history");
    assert!(page.messages[0].deleted);
    assert!(store.membership(room, alice.user).await.unwrap().is_none());
}

#[tokio::test]
async fn a_host_applications_user_is_deleted_by_the_host() {
    let (engine, store) = engine().await;
    let alice = seed_user(&store, "alice").await;
    let host_user = Identity {
        user: alice,
        session: None,
    };
    assert_err!(
        engine.delete_account(host_user, confirm("whatever")).await,
        ChatError::Forbidden(_)
    );
    engine.me(alice).await.expect("nothing changed");
}
