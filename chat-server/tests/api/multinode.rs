//! Several `chat-server` processes on one PostgreSQL database: delivery across nodes, faults of
//! the bus and of the database, and a node that crashes. Skipped, saying so, without
//! `CHAT_TEST_POSTGRES_URL`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::support::{database, seqs, Database, Program, Remote, RemoteUser as User, Ws, SECRET};

/// A node: the binary on the shared database, named for `pg_stat_activity`.
fn node(db: &Database, name: &str, dir: &TempDir) -> Program {
    let url = format!("{}&application_name={name}", db.url);
    Program::start(
        dir.path(),
        &[
            ("CHAT_DATABASE_URL", url.as_str()),
            ("CHAT_JWT_SECRET", SECRET),
            // The storms below post far faster than the default per-user limit.
            ("CHAT_RATE_LIMITS", "off"),
            ("CHAT_LOG", "warn,chat_server=info"),
        ],
    )
}

async fn post(base: &str, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    Remote::new(base).post(path, token, body).await
}

async fn user(base: &str, name: &str) -> User {
    Remote::new(base).user(name).await
}

async fn room(base: &str, owner: &User, members: &[&User]) -> String {
    Remote::new(base).room(owner, members).await
}

/// Reads `message.created` frames until `count` arrived; returns their seqs as received.
async fn receive(ws: &mut Ws, count: usize) -> Vec<i64> {
    let mut seqs = Vec::with_capacity(count);
    while seqs.len() < count {
        let frame = ws.next().await;
        if frame["type"] == "message.created" {
            seqs.push(frame["message"]["seq"].as_i64().unwrap());
        }
    }
    seqs
}

async fn history_seqs(base: &str, token: &str, room: &str) -> Vec<i64> {
    seqs(&Remote::new(base).history(token, room).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_socket_on_both_nodes_gets_every_message_once_in_order() {
    let Some(db) = database().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (node(&db, "node-a", &dir), node(&db, "node-b", &dir));
    let mut users = Vec::new();
    for i in 0..10 {
        users.push(user(&a.base, &format!("user{i}")).await);
    }
    let others: Vec<&User> = users[1..].iter().collect();
    let room = room(&a.base, &users[0], &others).await;

    let mut readers = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let base = if i < 5 { &a.base } else { &b.base };
        let mut ws = Ws::connect(base, &u.token, None).await;
        readers.push(tokio::spawn(async move { receive(&mut ws, 1000).await }));
    }
    let mut senders = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let (token, room) = (u.token.clone(), room.clone());
        senders.push(tokio::spawn(async move {
            for n in 0..100 {
                let body = json!({"body": format!("{i}/{n}"), "client_id": format!("{i}-{n}")});
                let path = format!("/v1/rooms/{room}/messages");
                let (status, answer) = post(&base, &path, Some(&token), body).await;
                assert_eq!(status, StatusCode::CREATED, "{answer}");
            }
        }));
    }
    for sender in senders {
        sender.await.unwrap();
    }
    let all: Vec<i64> = (1..=1000).collect();
    for (i, reader) in readers.into_iter().enumerate() {
        assert_eq!(
            reader.await.unwrap(),
            all,
            "socket {i} got every seq once, in order"
        );
    }
    assert_eq!(history_seqs(&b.base, &users[9].token, &room).await, all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listener_loses_no_message_for_its_sockets() {
    let Some(db) = database().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (node(&db, "node-a", &dir), node(&db, "node-b", &dir));
    let alice = user(&a.base, "alice").await;
    let bob = user(&a.base, "bob").await;
    let room = room(&a.base, &alice, &[&bob]).await;
    let mut bob_on_b = Ws::connect(&b.base, &bob.token, None).await;
    let reader = tokio::spawn(async move { receive(&mut bob_on_b, 200).await });

    let (base, token, path) = (
        a.base.clone(),
        alice.token.clone(),
        format!("/v1/rooms/{room}/messages"),
    );
    let sender = tokio::spawn(async move {
        for n in 0..200 {
            let (status, _) =
                post(&base, &path, Some(&token), json!({"body": format!("m{n}")})).await;
            assert_eq!(status, StatusCode::CREATED);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(600)).await;
    let killed: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'node-b' \
         AND query ILIKE 'LISTEN%'",
    )
    .fetch_all(db.store.pool())
    .await
    .unwrap();
    assert_eq!(killed, vec![(true,)], "node B's listener was terminated");
    sender.await.unwrap();
    let seqs = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("every message reached B's socket")
        .unwrap();
    assert_eq!(seqs, (1..=200).collect::<Vec<i64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_nodes_connections_fails_requests_cleanly_and_loses_nothing_acked() {
    let Some(db) = database().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let a = node(&db, "node-a", &dir);
    let alice = user(&a.base, "alice").await;
    let room = room(&a.base, &alice, &[]).await;
    let mut senders = Vec::new();
    for t in 0..4 {
        let (base, token) = (a.base.clone(), alice.token.clone());
        let path = format!("/v1/rooms/{room}/messages");
        senders.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for n in 0..100 {
                let body = json!({"body": "x", "client_id": format!("{t}-{n}")});
                let (status, answer) = post(&base, &path, Some(&token), body).await;
                match status {
                    StatusCode::CREATED => acked.push(answer["id"].as_str().unwrap().to_owned()),
                    StatusCode::SERVICE_UNAVAILABLE => assert_eq!(answer["code"], "unavailable"),
                    other => panic!("a request got {other}: {answer}"),
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'node-a'",
    )
    .fetch_all(db.store.pool())
    .await
    .unwrap();
    assert!(!killed.is_empty(), "node A had connections to kill");
    let mut acked = Vec::new();
    for sender in senders {
        acked.extend(sender.await.unwrap());
    }

    // The node recovers on its own.
    let deadline = Instant::now() + Duration::from_secs(20);
    let path = format!("/v1/rooms/{room}/messages");
    loop {
        let (status, _) = post(&a.base, &path, Some(&alice.token), json!({"body": "after"})).await;
        if status == StatusCode::CREATED {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node A did not recover: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seqs = history_seqs(&a.base, &alice.token, &room).await;
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<i64>>(),
        "no gaps"
    );
    let client = reqwest::Client::new();
    let stored: HashSet<String> = {
        let mut ids = HashSet::new();
        let mut after = 0;
        loop {
            let page: Value = client
                .get(format!(
                    "{}/v1/rooms/{room}/messages?after={after}&limit=100",
                    a.base
                ))
                .bearer_auth(&alice.token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for m in page["messages"].as_array().unwrap() {
                ids.insert(m["id"].as_str().unwrap().to_owned());
                after = m["seq"].as_i64().unwrap();
            }
            if !page["has_more"].as_bool().unwrap() {
                break ids;
            }
        }
    };
    for id in &acked {
        assert!(stored.contains(id), "acked message {id} is in history");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_nodes_users_go_offline_within_30_seconds() {
    let Some(db) = database().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let (mut a, b) = (node(&db, "node-a", &dir), node(&db, "node-b", &dir));
    let alice = user(&b.base, "alice").await;
    let bob = user(&b.base, "bob").await;
    let room = room(&b.base, &bob, &[&alice]).await;
    let mut bob_on_b = Ws::connect(&b.base, &bob.token, None).await;
    let _alice_on_a = Ws::connect(&a.base, &alice.token, None).await;
    let online = bob_on_b.next_of("presence").await;
    assert_eq!(
        (online["user_id"].as_str(), online["status"].as_str()),
        (Some(alice.id.as_str()), Some("online"))
    );

    a.kill();
    let started = Instant::now();
    let offline = loop {
        let left = Duration::from_secs(30).saturating_sub(started.elapsed());
        let frame = bob_on_b.next_any_within(left).await;
        if frame["type"] == "presence" && frame["user_id"] == alice.id.as_str() {
            assert_eq!(frame["status"], "offline", "{frame}");
            break frame;
        }
    };
    assert!(started.elapsed() < Duration::from_secs(30), "within 30 s");
    assert!(offline["last_seen"].is_string());
    let res: Value = reqwest::Client::new()
        .get(format!("{}/v1/presence?user_ids={}", b.base, alice.id))
        .bearer_auth(&bob.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(res["presence"][0]["status"], "offline");
    // Node B serves on.
    let path = format!("/v1/rooms/{room}/messages");
    let (status, _) = post(
        &b.base,
        &path,
        Some(&bob.token),
        json!({"body": "still here"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}

async fn delete(base: &str, path: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .delete(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request sent")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_and_a_room_deletion_on_one_node_reach_sockets_on_the_other() {
    let Some(db) = database().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (node(&db, "node-a", &dir), node(&db, "node-b", &dir));
    let alice = user(&a.base, "alice").await;
    let bob = user(&a.base, "bob").await;
    let carol = user(&a.base, "carol").await;
    let room = room(&a.base, &alice, &[&bob, &carol]).await;
    let mut bobs = Ws::connect(&b.base, &bob.token, None).await;
    let mut carols = Ws::connect(&b.base, &carol.token, None).await;

    let ban = format!("/v1/rooms/{room}/members/{}?ban=true", bob.id);
    assert_eq!(delete(&a.base, &ban, &alice.token).await, 204);
    let left = bobs.next_of("member.left").await;
    assert_eq!(left["user_id"].as_str(), Some(bob.id.as_str()));
    let (status, _) = post(
        &a.base,
        &format!("/v1/rooms/{room}/messages"),
        Some(&alice.token),
        json!({"body": "after the ban"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let created = carols.next_of("message.created").await;
    assert_eq!(created["message"]["body"], "after the ban");
    let heard = bobs.drain().await;
    assert!(
        heard.iter().all(|f| f["type"] == "presence"),
        "the banned user's socket on node B got {heard:?}"
    );

    assert_eq!(
        delete(&a.base, &format!("/v1/rooms/{room}"), &alice.token).await,
        204
    );
    let deleted = carols.next_of("room.deleted").await;
    assert_eq!(deleted["room_id"].as_str(), Some(room.as_str()));
    let heard = carols.drain().await;
    assert!(
        heard.iter().all(|f| f["type"] == "presence"),
        "after room.deleted node B sent {heard:?}"
    );
    let gone = reqwest::Client::new()
        .get(format!("{}/v1/rooms/{room}", b.base))
        .bearer_auth(&carol.token)
        .send()
        .await
        .expect("request sent");
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_node_signs_the_session_out_on_the_other() {
    let Some(db) = database().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (node(&db, "node-a", &dir), node(&db, "node-b", &dir));
    let alice = user(&a.base, "alice").await;
    let status_on = |base: String, token: String| async move {
        reqwest::Client::new()
            .get(format!("{base}/v1/users/me"))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
            .status()
    };
    // Node B has seen the session live (and may trust that for a while) and holds its socket.
    assert_eq!(
        status_on(b.base.clone(), alice.token.clone()).await,
        StatusCode::OK
    );
    let mut on_b = Ws::connect(&b.base, &alice.token, None).await;

    let (status, body) = post(&a.base, "/v1/auth/logout", Some(&alice.token), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        on_b.closed().await,
        Some(4001),
        "node B closes the session's socket"
    );
    assert_eq!(
        status_on(b.base.clone(), alice.token.clone()).await,
        StatusCode::UNAUTHORIZED,
        "node B refuses the revoked token"
    );
}
