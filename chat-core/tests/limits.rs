//! Engine tests of rate limits: sends per user, failed logins per account and per address.

#[macro_use]
mod support;

use std::net::{IpAddr, Ipv4Addr};

use chat_core::rate::Rate;
use support::*;

async fn limited(limits: Limits) -> (ChatEngine, Arc<MemoryStore>, Arc<ManualClock>) {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let engine = ChatEngine::builder(store.clone())
        .clock(clock.clone())
        .limits(limits)
        .build()
        .await
        .expect("engine builds");
    (engine, store, clock)
}

#[tokio::test]
async fn sends_beyond_the_burst_wait_for_the_rate() {
    let (engine, store, clock) = limited(Limits {
        send_rate: Some(Rate {
            burst: 3,
            per_sec: 1.0,
        }),
        ..limits()
    })
    .await;
    let alice = seed_user(&store, "alice").await;
    let bob = seed_user(&store, "bob").await;
    let room = private_room(&engine, alice, &[bob]).await;
    for i in 0..3 {
        say(&engine, alice, room, &format!("m{i}")).await;
    }
    assert_err!(
        engine.send(alice, room, text("one too many")).await,
        ChatError::RateLimited {
            retry_after_secs: 1
        }
    );
    say(&engine, bob, room, "bob has his own budget").await;
    clock.advance(Duration::from_secs(1));
    say(&engine, alice, room, "after a second").await;
    let history = engine
        .history(alice, room, history(None, None, None))
        .await
        .expect("history");
    assert_eq!(history.messages.len(), 5, "the refused send stored nothing");
}

#[tokio::test]
async fn failed_logins_are_limited_per_account_and_per_address() {
    let (engine, _, clock) = limited(Limits {
        failed_login_rate: Some(Rate::per_minute(2)),
        ..limits()
    })
    .await;
    engine
        .register(register("alice", "alice's password", None))
        .await
        .expect("registered");
    let home = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    let cafe = Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)));

    for _ in 0..2 {
        assert_err!(
            engine.login("alice", "wrong", cafe).await,
            ChatError::Unauthorized
        );
    }
    assert_err!(
        engine.login("ALICE", "alice's password", home).await,
        ChatError::RateLimited { .. }
    );
    clock.advance(Duration::from_secs(30));
    engine
        .login("alice", "alice's password", home)
        .await
        .expect("a token is back after 30 s");
    engine
        .login("alice", "alice's password", home)
        .await
        .expect("successes do not count");

    // One address trying many accounts runs out too.
    let (engine, _, _) = limited(Limits {
        failed_login_rate: Some(Rate::per_minute(2)),
        ..limits()
    })
    .await;
    for name in ["nobody1", "nobody2"] {
        assert_err!(
            engine.login(name, "guess", cafe).await,
            ChatError::Unauthorized
        );
    }
    assert_err!(
        engine.login("nobody3", "guess", cafe).await,
        ChatError::RateLimited { .. }
    );
    assert_err!(
        engine.login("nobody3", "guess", home).await,
        ChatError::Unauthorized
    );
}
