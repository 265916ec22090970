//! Two users chat live: register, log in, create a room, add a friend, talk.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{seqs, TestServer};

#[tokio::test]
async fn two_users_chat_live_and_history_keeps_order() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let mut bob_ws = server.ws(&bob.token).await;

    let (status, room) = server
        .post("/v1/rooms", Some(&alice.token), json!({"name": "friends"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(room["member_count"], 1);
    let room_id = room["id"].as_str().unwrap();
    let (status, member) = server
        .post(
            &format!("/v1/rooms/{room_id}/members"),
            Some(&alice.token),
            json!({"user_id": bob.id}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    assert_eq!(member["role"], "member");
    assert_eq!(member["user"]["id"], bob.id.as_str());

    // Bob's open socket follows the room from the moment he is added.
    let joined = bob_ws.next().await;
    assert_eq!(joined["type"], "member.joined", "{joined}");
    assert_eq!(joined["room_id"], room_id);
    for text in ["hi bob", "how are you?", "see you"] {
        server.send(&alice, room_id, text).await;
    }
    let mut live = Vec::new();
    for _ in 0..3 {
        let frame = bob_ws.next().await;
        assert_eq!(frame["type"], "message.created", "{frame}");
        live.push(frame["message"].clone());
    }
    assert_eq!(seqs(&live), vec![1, 2, 3]);
    assert_eq!(live[0]["body"], "hi bob");
    assert_eq!(live[0]["sender_id"], alice.id.as_str());

    // Bob answers over the socket; history has every message in seq order, no gaps.
    bob_ws
        .send(json!({"type": "message.send", "room_id": room_id, "client_id": "b-1", "body": "fine!"}))
        .await;
    let mut got_ack = false;
    let mut got_created = false;
    while !(got_ack && got_created) {
        let frame = bob_ws.next().await;
        match frame["type"].as_str().unwrap() {
            "ack" => {
                assert_eq!(frame["client_id"], "b-1");
                assert_eq!(frame["message"]["seq"], 4);
                got_ack = true;
            }
            "message.created" => {
                assert_eq!(frame["message"]["seq"], 4);
                got_created = true;
            }
            other => panic!("unexpected {other}: {frame}"),
        }
    }
    let history = server.history(&alice, room_id).await;
    assert_eq!(seqs(&history), vec![1, 2, 3, 4]);
    assert_eq!(history[3]["body"], "fine!");
    assert_eq!(history[3]["client_id"], "b-1");

    // Both see the room in their room list, with Bob's unread count exact.
    let (_, rooms) = server.get("/v1/rooms", &bob.token).await;
    let listed = &rooms["rooms"][0];
    assert_eq!(listed["id"], room_id);
    assert_eq!(listed["last_seq"], 4);
    assert_eq!(listed["membership"]["role"], "member");
    assert_eq!(listed["membership"]["read_seq"], 4);
    assert_eq!(listed["membership"]["unread_count"], 0);
    assert!(rooms["next_cursor"].is_null());
    let (_, one) = server
        .get(
            &format!(
                "/v1/rooms/{room_id}/messages/{}",
                history[0]["id"].as_str().unwrap()
            ),
            &bob.token,
        )
        .await;
    assert_eq!(one, history[0]);
}

#[tokio::test]
async fn history_pages_with_before_after_and_limit() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = server.room(&alice, &[]).await;
    for i in 1..=7 {
        server.send(&alice, &room, &format!("m{i}")).await;
    }
    let page = |query: &'static str| {
        let server = &server;
        let token = alice.token.clone();
        let room = room.clone();
        async move {
            let (status, page) = server
                .get(&format!("/v1/rooms/{room}/messages{query}"), &token)
                .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            (
                seqs(page["messages"].as_array().unwrap()),
                page["has_more"].as_bool().unwrap(),
            )
        }
    };
    assert_eq!(page("").await, ((1..=7).collect(), false));
    assert_eq!(page("?limit=3").await, (vec![5, 6, 7], true));
    assert_eq!(page("?before=5&limit=3").await, (vec![2, 3, 4], true));
    assert_eq!(page("?before=3&limit=3").await, (vec![1, 2], false));
    assert_eq!(page("?after=0&limit=3").await, (vec![1, 2, 3], true));
    assert_eq!(page("?after=5&limit=3").await, (vec![6, 7], false));
    assert_eq!(
        page("?after=2&limit=1000").await,
        ((3..=7).collect(), false)
    );
}

#[tokio::test]
async fn room_lists_and_members_page_with_cursors() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let carol = server.register("carol").await;
    let mut rooms = Vec::new();
    for _ in 0..3 {
        rooms.push(server.room(&alice, &[&bob, &carol]).await);
    }
    // The oldest room becomes the most recently active one.
    server.send(&bob, &rooms[0], "bump").await;
    let (_, first) = server.get("/v1/rooms?limit=2", &alice.token).await;
    let ids: Vec<&str> = first["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![rooms[0].as_str(), rooms[2].as_str()]);
    assert_eq!(first["rooms"][0]["membership"]["unread_count"], 1);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let (_, second) = server
        .get(&format!("/v1/rooms?limit=2&cursor={cursor}"), &alice.token)
        .await;
    assert_eq!(second["rooms"][0]["id"], rooms[1].as_str());
    assert_eq!(second["rooms"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null());

    // Members page oldest first; the three joined together, so the id breaks the tie.
    let (_, page) = server
        .get(
            &format!("/v1/rooms/{}/members?limit=2", rooms[0]),
            &bob.token,
        )
        .await;
    let cursor = page["next_cursor"].as_str().expect("a second page");
    let (_, rest) = server
        .get(
            &format!("/v1/rooms/{}/members?limit=2&cursor={cursor}", rooms[0]),
            &bob.token,
        )
        .await;
    assert!(rest["next_cursor"].is_null());
    let mut members = page["members"].as_array().unwrap().clone();
    members.extend(rest["members"].as_array().unwrap().iter().cloned());
    let mut ids: Vec<&str> = members
        .iter()
        .map(|m| m["user"]["id"].as_str().unwrap())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 3, "every member once: {members:?}");
    let keys: Vec<(&str, &str)> = members
        .iter()
        .map(|m| {
            (
                m["joined_at"].as_str().unwrap(),
                m["user"]["id"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {keys:?}"
    );
    let owner = members
        .iter()
        .find(|m| m["user"]["id"] == alice.id.as_str())
        .unwrap();
    assert_eq!(owner["role"], "owner");
    assert!(members.iter().all(|m| m["user"].get("email").is_none()));
}

#[tokio::test]
async fn public_rooms_are_joined_and_owners_hand_over_when_leaving() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let carol = server.register("carol").await;
    let (_, room) = server
        .post(
            "/v1/rooms",
            Some(&alice.token),
            json!({"name": "lobby", "visibility": "public", "topic": "all welcome"}),
        )
        .await;
    let room_id = room["id"].as_str().unwrap();
    // Readable before joining, but posting needs a membership.
    let (status, _) = server
        .get(&format!("/v1/rooms/{room_id}"), &bob.token)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server
        .post(
            &format!("/v1/rooms/{room_id}/messages"),
            Some(&bob.token),
            json!({"body": "hi"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    for user in [&bob, &carol] {
        let (status, member) = server
            .post(
                &format!("/v1/rooms/{room_id}/join"),
                Some(&user.token),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{member}");
        assert_eq!(member["role"], "member");
    }
    // Joining again answers the same membership.
    let (status, again) = server
        .post(
            &format!("/v1/rooms/{room_id}/join"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, again["user"]["id"].as_str()),
        (StatusCode::OK, Some(bob.id.as_str()))
    );

    let (status, _) = server
        .post(
            &format!("/v1/rooms/{room_id}/leave"),
            Some(&alice.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, members) = server
        .get(&format!("/v1/rooms/{room_id}/members"), &bob.token)
        .await;
    let roles: Vec<(&str, &str)> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user"]["username"].as_str().unwrap(),
                m["role"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(roles, vec![("bob", "owner"), ("carol", "member")]);
    for user in [&bob, &carol] {
        let (status, _) = server
            .post(
                &format!("/v1/rooms/{room_id}/leave"),
                Some(&user.token),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    // The last one out deleted the room.
    let (status, _) = server
        .get(&format!("/v1/rooms/{room_id}"), &bob.token)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn direct_rooms_are_one_per_pair() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let (status, dm) = server
        .post("/v1/dms", Some(&alice.token), json!({"user_id": bob.id}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{dm}");
    assert_eq!(
        (dm["kind"].as_str(), dm["name"].as_str()),
        (Some("direct"), Some(""))
    );
    assert_eq!(dm["member_count"], 2);
    let (status, again) = server
        .post("/v1/dms", Some(&bob.token), json!({"user_id": alice.id}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["id"], dm["id"]);
    let (status, body) = server
        .post("/v1/dms", Some(&alice.token), json!({"user_id": alice.id}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let dm_id = dm["id"].as_str().unwrap();
    let (status, _) = server
        .post(
            &format!("/v1/rooms/{dm_id}/leave"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let carol = server.register("carol").await;
    let (status, _) = server
        .post(
            &format!("/v1/rooms/{dm_id}/members"),
            Some(&alice.token),
            json!({"user_id": carol.id}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn users_and_public_rooms_are_found_by_search() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    server.register("alfred").await;
    server.register("bob").await;
    let (status, found) = server.get("/v1/users?q=AL&limit=1", &alice.token).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["users"][0]["username"], "alfred");
    assert!(found["users"][0].get("email").is_none());
    let cursor = found["next_cursor"].as_str().expect("a second page");
    let (_, rest) = server
        .get(
            &format!("/v1/users?q=al&limit=1&cursor={cursor}"),
            &alice.token,
        )
        .await;
    assert_eq!(rest["users"][0]["username"], "alice");
    assert!(rest["next_cursor"].is_null());

    for (name, visibility) in [
        ("Rust lovers", "public"),
        ("rust secret", "private"),
        ("100% rust", "public"),
    ] {
        let (status, _) = server
            .post(
                "/v1/rooms",
                Some(&alice.token),
                json!({"name": name, "visibility": visibility}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let bob_token = server.login("bob").await;
    let (status, rooms) = server.get("/v1/rooms/public?q=RUST", &bob_token).await;
    assert_eq!(status, StatusCode::OK, "{rooms}");
    let mut names: Vec<&str> = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        vec!["100% rust", "Rust lovers"],
        "private rooms are never listed"
    );
    // Nothing in q is syntax, and nothing in it is an error.
    for q in ["%25", "_", "%5C", "'%3B--", "%22", "%F0%9F%98%80"] {
        let (status, body) = server
            .get(&format!("/v1/rooms/public?q={q}"), &bob_token)
            .await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        let (status, body) = server.get(&format!("/v1/users?q={q}"), &bob_token).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
    }
    let (_, percent) = server.get("/v1/rooms/public?q=0%25", &bob_token).await;
    assert_eq!(percent["rooms"].as_array().unwrap().len(), 1);
    let (status, _) = server.get("/v1/users?cursor=zz", &bob_token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn owners_and_admins_change_a_room_and_everyone_in_it_hears() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let eve = server.register("eve").await;
    let room = server.room(&alice, &[&bob]).await;
    server.send(&bob, &room, "one").await;
    let mut bob_ws = server.ws(&bob.token).await;
    let patch = |token: &str, body: &str| {
        let path = format!("/v1/rooms/{room}");
        let token = token.to_owned();
        let body = body.to_owned();
        let server = &server;
        async move {
            server
                .request(reqwest::Method::PATCH, &path, Some(&token), Some(&body))
                .await
        }
    };
    let (status, updated) = patch(
        &alice.token,
        r#"{"name": " renamed ", "topic": "plans", "visibility": "public"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(
        (
            updated["name"].as_str(),
            updated["topic"].as_str(),
            updated["visibility"].as_str()
        ),
        (Some("renamed"), Some("plans"), Some("public"))
    );
    let event = bob_ws.next().await;
    assert_eq!(event["type"], "room.updated");
    assert_eq!(event["room"]["name"], "renamed");
    let (_, cleared) = patch(&alice.token, r#"{"topic": null}"#).await;
    assert!(cleared["topic"].is_null());
    assert_eq!(cleared["name"], "renamed");

    let (status, _) = patch(&bob.token, r#"{"name": "mine now"}"#).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a plain member cannot");
    let (status, _) = patch(&bob.token, r#"{"name": 5}"#).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "permission before validation"
    );
    let (status, body) = patch(&alice.token, r#"{"name": ""}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = patch(&alice.token, r#"{"kind": "direct"}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (status, stats) = server
        .get(&format!("/v1/rooms/{room}/stats"), &eve.token)
        .await;
    assert_eq!(status, StatusCode::OK, "public now: {stats}");
    assert_eq!(
        (
            stats["message_count"].as_i64(),
            stats["member_count"].as_i64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(stats["last_message"]["body"], "one");
    patch(&alice.token, r#"{"visibility": "private"}"#).await;
    let (status, _) = server
        .get(&format!("/v1/rooms/{room}/stats"), &eve.token)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
