//! Edits, deletes, reactions, threads and search over HTTP, with the events members' sockets
//! get, on each backend.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{TestServer, TestUser};

async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    who: &TestUser,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let (status, answer) = server
        .request(method, path, Some(&who.token), body.as_deref())
        .await;
    (status.as_u16(), answer)
}

fn reactions(message: &Value) -> Vec<(String, i64, Option<bool>)> {
    message["reactions"]
        .as_array()
        .expect("reactions are a list")
        .iter()
        .map(|r| {
            (
                r["emoji"].as_str().unwrap().to_owned(),
                r["count"].as_i64().unwrap(),
                r.get("me").and_then(Value::as_bool),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_deletes_and_reactions_reach_members_live() {
    for (backend, server) in TestServer::on_each_backend().await {
        let alice = server.register("alice").await;
        let bob = server.register("bob").await;
        let room = server.room(&alice, &[&bob]).await;
        let mut bob_ws = server.ws(&bob.token).await;
        let posted = server.send(&alice, &room, "helo").await;
        let id = posted["id"].as_str().unwrap();
        let path = format!("/v1/rooms/{room}/messages/{id}");
        assert_eq!(bob_ws.next_of("message.created").await["message"]["id"], id);

        let (status, edited) = call(
            &server,
            Method::PATCH,
            &path,
            &alice,
            Some(json!({"body": "hello"})),
        )
        .await;
        assert_eq!(status, 200, "{backend}: {edited}");
        assert_eq!(edited["body"], "hello");
        assert!(edited["edited_at"].is_string(), "{edited}");
        assert_eq!(edited["rev"], 2);
        let update = bob_ws.next_of("message.updated").await;
        assert_eq!(update["message"]["body"], "hello", "{backend}");
        let (status, answer) = call(
            &server,
            Method::PATCH,
            &path,
            &bob,
            Some(json!({"body": "mine now"})),
        )
        .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (403, Some("forbidden")),
            "{backend}"
        );
        let (status, answer) = call(
            &server,
            Method::PATCH,
            &path,
            &alice,
            Some(json!({"body": "x", "seq": 9})),
        )
        .await;
        assert_eq!(status, 422, "{backend}: {answer}");
        assert_eq!(answer["details"]["fields"]["seq"], "unknown field");

        let thumbs = format!("{path}/reactions/%F0%9F%91%8D");
        let (status, _) = call(&server, Method::PUT, &thumbs, &bob, None).await;
        assert_eq!(status, 204, "{backend}");
        let event = bob_ws.next_of("reaction.updated").await;
        assert_eq!(event["emoji"], "👍", "{backend}");
        assert_eq!(event["added"], true);
        assert_eq!(
            event["reactions"],
            json!([{"emoji": "👍", "count": 1}]),
            "no `me` in events"
        );
        let (status, _) = call(
            &server,
            Method::PUT,
            &format!("{path}/reactions/:tada:"),
            &alice,
            None,
        )
        .await;
        assert_eq!(status, 204, "{backend}");
        assert_eq!(bob_ws.next_of("reaction.updated").await["emoji"], ":tada:");
        let (_, seen) = server.get(&path, &bob.token).await;
        assert_eq!(
            reactions(&seen),
            [
                ("👍".into(), 1, Some(true)),
                (":tada:".into(), 1, Some(false))
            ],
            "{backend}"
        );
        let (_, page) = server
            .get(&format!("/v1/rooms/{room}/messages"), &alice.token)
            .await;
        assert_eq!(
            reactions(&page["messages"][0]),
            [
                ("👍".into(), 1, Some(false)),
                (":tada:".into(), 1, Some(true))
            ],
            "{backend}"
        );
        for bad in ["abc", "%FF", "%F0%9F%91%8D%20", &"%F0%9F%91%8D".repeat(9)] {
            let (status, answer) = call(
                &server,
                Method::PUT,
                &format!("{path}/reactions/{bad}"),
                &bob,
                None,
            )
            .await;
            assert_eq!(status, 422, "{backend} {bad}: {answer}");
            assert!(answer["details"]["fields"]["emoji"].is_string(), "{answer}");
        }
        let (status, _) = call(&server, Method::DELETE, &thumbs, &bob, None).await;
        assert_eq!(status, 204, "{backend}");
        let event = bob_ws.next_of("reaction.updated").await;
        assert_eq!(
            (event["added"].as_bool(), event["emoji"].as_str()),
            (Some(false), Some("👍"))
        );

        let (status, _) = call(&server, Method::DELETE, &path, &bob, None).await;
        assert_eq!(status, 403, "{backend}: a member deletes only their own");
        let (status, _) = call(&server, Method::DELETE, &path, &alice, None).await;
        assert_eq!(status, 204, "{backend}");
        let deleted = bob_ws.next_of("message.deleted").await;
        assert_eq!(
            (
                deleted["message_id"].as_str(),
                deleted["seq"].as_i64(),
                deleted["room_id"].as_str()
            ),
            (Some(id), Some(1), Some(room.as_str())),
            "{backend}"
        );
        let (_, tombstone) = server.get(&path, &bob.token).await;
        assert_eq!(tombstone["deleted"], true, "{backend}");
        assert_eq!(tombstone["body"], Value::Null);
        assert_eq!(tombstone["attachment"], Value::Null);
        assert_eq!(tombstone["reactions"], json!([]));
        let (status, answer) = call(
            &server,
            Method::PATCH,
            &path,
            &alice,
            Some(json!({"body": "undo"})),
        )
        .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (409, Some("conflict")),
            "{backend}"
        );
        let (status, _) = call(&server, Method::PUT, &thumbs, &bob, None).await;
        assert_eq!(status, 409, "{backend}");
        let (status, _) = call(&server, Method::DELETE, &path, &alice, None).await;
        assert_eq!(status, 204, "{backend}: deleting again changes nothing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_search_and_unread_counts_follow_changes() {
    for (backend, server) in TestServer::on_each_backend().await {
        let alice = server.register("alice").await;
        let bob = server.register("bob").await;
        let eve = server.register("eve").await;
        let room = server.room(&alice, &[&bob]).await;
        let secret = server.room(&eve, &[]).await;
        server.send(&eve, &secret, "release notes draft").await;

        let root = server.send(&alice, &room, "Release notes for v2?").await;
        let root_id = root["id"].as_str().unwrap();
        let mut ids = Vec::new();
        for i in 0..3 {
            let (status, reply) = server
                .post(
                    &format!("/v1/rooms/{room}/messages"),
                    Some(&alice.token),
                    json!({"body": format!("notes part {i} @bob"), "thread_id": root_id}),
                )
                .await;
            assert_eq!(status, 201, "{backend}: {reply}");
            assert_eq!(reply["mentions"], json!([bob.id]));
            ids.push(reply["id"].as_str().unwrap().to_owned());
        }
        let (status, thread) = server
            .get(
                &format!("/v1/rooms/{room}/messages/{root_id}/thread?after=2&limit=1"),
                &bob.token,
            )
            .await;
        assert_eq!(status, 200, "{backend}: {thread}");
        assert_eq!(thread["messages"][0]["body"], "notes part 1 @bob");
        assert_eq!(thread["has_more"], true);
        let (_, root) = server
            .get(&format!("/v1/rooms/{room}/messages/{root_id}"), &bob.token)
            .await;
        assert_eq!(root["thread"]["reply_count"], 3, "{backend}: {root}");

        // Bob has read the root: three replies unread, all mentioning him. One read, two deleted.
        let (status, _) = server
            .post(
                &format!("/v1/rooms/{room}/read"),
                Some(&bob.token),
                json!({"seq": 2}),
            )
            .await;
        assert_eq!(status, 200);
        for id in &ids[1..] {
            let (status, _) = call(
                &server,
                Method::DELETE,
                &format!("/v1/rooms/{room}/messages/{id}"),
                &alice,
                None,
            )
            .await;
            assert_eq!(status, 204, "{backend}");
        }
        let (_, unread) = server.get("/v1/unread", &bob.token).await;
        assert_eq!(unread["total"], 0, "{backend}: {unread}");
        let (_, rooms) = server.get("/v1/rooms", &bob.token).await;
        assert_eq!(
            rooms["rooms"][0]["membership"]["unread_count"], 0,
            "{backend}"
        );
        let (status, _) = server
            .post(
                &format!("/v1/rooms/{room}/read"),
                Some(&bob.token),
                json!({"seq": 1}),
            )
            .await;
        assert_eq!(status, 200);
        server.send(&alice, &room, "one more").await;
        let (_, unread) = server.get("/v1/unread", &bob.token).await;
        assert_eq!(unread["rooms"][0]["unread_count"], 1, "{backend}: {unread}");
        assert_eq!(
            unread["rooms"][0]["mention_count"], 0,
            "{backend}: deleted mentions are gone"
        );

        // Search: only bob's rooms, every word, never a deleted message.
        let (status, found) = server.get("/v1/search?q=NOTES%20part", &bob.token).await;
        assert_eq!(status, 200, "{backend}: {found}");
        let bodies: Vec<&str> = found["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["body"].as_str().unwrap())
            .collect();
        assert_eq!(bodies, ["notes part 0 @bob"], "{backend}");
        assert_eq!(found["next_cursor"], Value::Null);
        let (_, found) = server.get("/v1/search?q=release", &bob.token).await;
        assert_eq!(
            found["messages"].as_array().unwrap().len(),
            1,
            "{backend}: not eve's room"
        );
        let (status, found) = server
            .get(
                &format!("/v1/search?q=release&room_id={secret}"),
                &bob.token,
            )
            .await;
        assert_eq!(
            (status.as_u16(), found["code"].as_str()),
            (404, Some("not_found")),
            "{backend}"
        );
        for q in [
            "%22%20OR%20*",
            "%27%3B--",
            "NEAR(a%20b)",
            "",
            "%F0%9F%91%8D",
        ] {
            let (status, found) = server.get(&format!("/v1/search?q={q}"), &bob.token).await;
            assert_eq!(status, 200, "{backend} q={q}: {found}");
        }
        let (status, _) = server.get("/v1/search?q=x&room_id=nope", &bob.token).await;
        assert_eq!(status, 400, "{backend}");
        let (status, _) = server.get("/v1/search?q=x&cursor=nope", &bob.token).await;
        assert_eq!(status, 400, "{backend}");
        let (status, _) = server.get("/v1/search?q=x&limit=0", &bob.token).await;
        assert_eq!(status, 400, "{backend}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_changes_roles_and_members_hear_of_it() {
    for (backend, server) in TestServer::on_each_backend().await {
        let alice = server.register("alice").await;
        let bob = server.register("bob").await;
        let room = server.room(&alice, &[&bob]).await;
        let mut bob_ws = server.ws(&bob.token).await;
        let path = format!("/v1/rooms/{room}/members/{}", bob.id);

        let (status, answer) = call(
            &server,
            Method::PATCH,
            &path,
            &alice,
            Some(json!({"role": "boss"})),
        )
        .await;
        assert_eq!(status, 422, "{backend}: {answer}");
        assert!(answer["details"]["fields"]["role"].is_string());
        let (status, member) = call(
            &server,
            Method::PATCH,
            &path,
            &alice,
            Some(json!({"role": "admin"})),
        )
        .await;
        assert_eq!(status, 200, "{backend}: {member}");
        assert_eq!(member["role"], "admin");
        let event = bob_ws.next_of("member.updated").await;
        assert_eq!(event["member"]["role"], "admin", "{backend}");

        let (status, member) = call(
            &server,
            Method::PATCH,
            &path,
            &alice,
            Some(json!({"role": "owner"})),
        )
        .await;
        assert_eq!(
            (status, member["role"].as_str()),
            (200, Some("owner")),
            "{backend}"
        );
        let (_, members) = server
            .get(&format!("/v1/rooms/{room}/members"), &bob.token)
            .await;
        let mut roles: Vec<(&str, &str)> = members["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["user"]["id"].as_str().unwrap(),
                    m["role"].as_str().unwrap(),
                )
            })
            .collect();
        roles.sort();
        let mut expected = [(alice.id.as_str(), "admin"), (bob.id.as_str(), "owner")];
        expected.sort();
        assert_eq!(roles, expected, "{backend}");
        let (status, _) = call(
            &server,
            Method::PATCH,
            &format!("/v1/rooms/{room}/members/{}", alice.id),
            &alice,
            Some(json!({"role": "owner"})),
        )
        .await;
        assert_eq!(status, 403, "{backend}: alice is no longer the owner");
    }
}
