//! Nobody sees a private room they are not in, over HTTP or the socket; leaving cuts it off.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestServer;

#[tokio::test]
async fn a_non_member_sees_nothing_of_a_private_room() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let eve = server.register("eve").await;
    let room = server.room(&alice, &[]).await;
    let message = server.send(&alice, &room, "secret").await;
    let message_id = message["id"].as_str().unwrap();
    let mut eve_ws = server.ws(&eve.token).await;

    for path in [
        format!("/v1/rooms/{room}"),
        format!("/v1/rooms/{room}/messages"),
        format!("/v1/rooms/{room}/messages?after=0"),
        format!("/v1/rooms/{room}/messages/{message_id}"),
        format!("/v1/rooms/{room}/members"),
    ] {
        let (status, body) = server.get(&path, &eve.token).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["code"], "not_found");
    }
    // A room that does not exist answers exactly the same.
    let (_, unknown) = server
        .get("/v1/rooms/00000000-0000-4000-8000-000000000000", &eve.token)
        .await;
    let (_, private) = server.get(&format!("/v1/rooms/{room}"), &eve.token).await;
    assert_eq!(unknown, private);
    for (path, body) in [
        (
            format!("/v1/rooms/{room}/messages"),
            json!({"body": "let me in"}),
        ),
        (format!("/v1/rooms/{room}/join"), json!({})),
        (format!("/v1/rooms/{room}/leave"), json!({})),
        (
            format!("/v1/rooms/{room}/members"),
            json!({"user_id": eve.id}),
        ),
    ] {
        let (status, answer) = server.post(&path, Some(&eve.token), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {answer}");
    }
    // The order of checks: not seeing the room comes before anything wrong with the body.
    for (path, body) in [
        (
            format!("/v1/rooms/{room}/messages"),
            "{\"body\": 5, \"seq\": 1}",
        ),
        (format!("/v1/rooms/{room}/messages"), "{not json"),
        (format!("/v1/rooms/{room}/members"), "{\"nope\": true}"),
    ] {
        let (status, answer) = server
            .request(reqwest::Method::POST, &path, Some(&eve.token), Some(body))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path} {body}: {answer}");
    }
    eve_ws
        .send(json!({"type": "message.send", "room_id": room, "client_id": "x", "body": "hi"}))
        .await;
    let error = eve_ws.next().await;
    assert_eq!(
        (error["type"].as_str(), error["code"].as_str()),
        (Some("error"), Some("not_found"))
    );
    eve_ws
        .send(json!({"type": "sync", "rooms": { room.clone(): 0 }}))
        .await;
    let error = eve_ws.next().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["room_id"], room.as_str());
    assert_eq!(eve_ws.next().await["type"], "synced");

    server.send(&alice, &room, "still secret").await;
    let leaked = eve_ws.drain().await;
    assert!(leaked.is_empty(), "eve received {leaked:?}");
    assert_eq!(
        server.history(&alice, &room).await.len(),
        2,
        "nothing eve did was stored"
    );
}

#[tokio::test]
async fn after_leaving_a_socket_receives_nothing_more_from_the_room() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room = server.room(&alice, &[&bob]).await;
    let other = server.room(&alice, &[&bob]).await;
    let mut bob_ws = server.ws(&bob.token).await;
    server.send(&alice, &room, "before").await;
    assert_eq!(
        bob_ws.next_of("message.created").await["message"]["body"],
        "before"
    );

    let (status, _) = server
        .post(
            &format!("/v1/rooms/{room}/leave"),
            Some(&bob.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let left = bob_ws.next().await;
    assert_eq!(left["type"], "member.left");
    assert_eq!(left["user_id"], bob.id.as_str());

    server.send(&alice, &room, "after").await;
    server.send(&alice, &other, "elsewhere").await;
    let next = bob_ws.next().await;
    assert_eq!(next["type"], "message.created");
    assert_eq!(next["message"]["room_id"], other.as_str(), "{next}");
    assert!(bob_ws.drain().await.is_empty());
    let (status, _) = server
        .get(&format!("/v1/rooms/{room}/messages"), &bob.token)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_removed_member_is_cut_off_at_once() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room = server.room(&alice, &[&bob]).await;
    let mut bob_ws = server.ws(&bob.token).await;
    let (status, body) = server
        .request(
            reqwest::Method::DELETE,
            &format!("/v1/rooms/{room}/members/{}", alice.id),
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a member cannot remove the owner: {body}"
    );
    let (status, _) = server
        .request(
            reqwest::Method::DELETE,
            &format!("/v1/rooms/{room}/members/{}", bob.id),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(bob_ws.next().await["type"], "member.left");
    server.send(&alice, &room, "bob is gone").await;
    assert!(bob_ws.drain().await.is_empty());
}
