//! Blocks, bans and room deletion, on each backend: who may do them, what they keep out, and
//! that a refused one changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{TestServer, TestUser};

const RANDOM: &str = "00000000-0000-4000-8000-00000000abcd";

async fn call(server: &TestServer, method: Method, path: &str, who: &TestUser) -> u16 {
    let (status, answer) = server.request(method, path, Some(&who.token), None).await;
    if status.as_u16() >= 400 {
        assert!(answer["code"].is_string(), "the error shape: {answer}");
    }
    status.as_u16()
}

async fn open_dm(server: &TestServer, who: &TestUser, with: &TestUser) -> (u16, Value) {
    let (status, room) = server
        .post("/v1/dms", Some(&who.token), json!({"user_id": with.id}))
        .await;
    (status.as_u16(), room)
}

async fn try_send(server: &TestServer, who: &TestUser, room: &str) -> u16 {
    let (status, _) = server
        .post(
            &format!("/v1/rooms/{room}/messages"),
            Some(&who.token),
            json!({"body": "hi"}),
        )
        .await;
    status.as_u16()
}

fn ids(list: &Value, field: &str) -> Vec<String> {
    list[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["user"]["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn member_ids(server: &TestServer, who: &TestUser, room: &str) -> Vec<String> {
    let (status, page) = server
        .get(&format!("/v1/rooms/{room}/members"), &who.token)
        .await;
    assert_eq!(status, 200, "{page}");
    ids(&page, "members")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_user_cannot_open_or_write_to_the_blockers_direct_room() {
    for (backend, server) in TestServer::on_each_backend().await {
        let alice = server.register("alice").await;
        let bob = server.register("bob").await;
        let carol = server.register("carol").await;
        let (status, dm) = open_dm(&server, &bob, &alice).await;
        assert_eq!(status, 201, "{backend}: {dm}");
        let dm = dm["id"].as_str().unwrap().to_owned();
        let group = server.room(&alice, &[&bob]).await;
        let before = server.send(&bob, &dm, "before the block").await;
        let before = format!("/v1/rooms/{dm}/messages/{}", before["id"].as_str().unwrap());

        let block = |user: &str| format!("/v1/users/me/blocks/{user}");
        assert_eq!(
            call(&server, Method::PUT, &block(&bob.id), &alice).await,
            204
        );
        assert_eq!(
            call(&server, Method::PUT, &block(&bob.id), &alice).await,
            204
        );
        let (status, _) = server
            .request(Method::PUT, &block(&bob.id), None, None)
            .await;
        assert_eq!(status, 401, "{backend}");
        assert_eq!(
            call(&server, Method::PUT, &block(RANDOM), &alice).await,
            404
        );
        assert_eq!(call(&server, Method::PUT, &block("bob"), &alice).await, 404);
        assert_eq!(
            call(&server, Method::PUT, &block(&alice.id), &alice).await,
            422
        );
        let (status, list) = server.get("/v1/users/me/blocks", &alice.token).await;
        assert_eq!(status, 200, "{backend}: {list}");
        assert_eq!(ids(&list, "blocks"), [bob.id.as_str()], "{backend}");
        assert!(list["blocks"][0]["user"].get("email").is_none());
        assert!(list["next_cursor"].is_null());
        let (_, theirs) = server.get("/v1/users/me/blocks", &bob.token).await;
        assert_eq!(ids(&theirs, "blocks"), Vec::<String>::new(), "{backend}");

        // Bob can neither open nor write to alice's direct room, and his refused message
        // is not stored.
        let (status, answer) = open_dm(&server, &bob, &alice).await;
        assert_eq!((status, answer["code"].as_str()), (403, Some("forbidden")));
        assert_eq!(try_send(&server, &bob, &dm).await, 403, "{backend}");
        let mut ws = server.ws(&bob.token).await;
        ws.send(json!({"type": "message.send", "room_id": dm, "body": "hi", "client_id": "c1"}))
            .await;
        let error = ws.next_of("error").await;
        assert_eq!(error["code"], "forbidden", "{backend}: {error}");
        // Nor edit or react there; taking back what was his still works.
        let (status, _) = server
            .request(
                Method::PATCH,
                &before,
                Some(&bob.token),
                Some(&json!({"body": "edited"}).to_string()),
            )
            .await;
        assert_eq!(status, 403, "{backend}");
        let thumbs = format!("{before}/reactions/%F0%9F%91%8D");
        assert_eq!(call(&server, Method::PUT, &thumbs, &bob).await, 403);
        assert_eq!(call(&server, Method::DELETE, &thumbs, &bob).await, 204);
        let history = server.history(&alice, &dm).await;
        assert_eq!(history.len(), 1, "{backend}");
        assert_eq!(history[0]["body"], "before the block", "{backend}");
        assert_eq!(history[0]["reactions"], json!([]), "{backend}");

        // The blocker still writes; groups and other people are not affected.
        server.send(&alice, &dm, "alice may still write").await;
        server.send(&bob, &group, "groups are not affected").await;
        let (status, _) = open_dm(&server, &carol, &alice).await;
        assert_eq!(status, 201, "{backend}");
        let (status, _) = open_dm(&server, &alice, &bob).await;
        assert_eq!(status, 200, "{backend}");

        assert_eq!(
            call(&server, Method::DELETE, &block(&bob.id), &alice).await,
            204
        );
        assert_eq!(
            call(&server, Method::DELETE, &block(&bob.id), &alice).await,
            204
        );
        assert_eq!(
            call(&server, Method::DELETE, &block(RANDOM), &alice).await,
            404
        );
        let (status, _) = open_dm(&server, &bob, &alice).await;
        assert_eq!(status, 200, "{backend}");
        server.send(&bob, &dm, "after the unblock").await;
        let (_, list) = server.get("/v1/users/me/blocks", &alice.token).await;
        assert_eq!(ids(&list, "blocks"), Vec::<String>::new(), "{backend}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_banned_user_is_kept_out_until_unbanned() {
    for (backend, server) in TestServer::on_each_backend().await {
        let alice = server.register("alice").await;
        let bob = server.register("bob").await;
        let carol = server.register("carol").await;
        let frank = server.register("frank").await;
        let eve = server.register("eve").await;
        let (status, room) = server
            .post(
                "/v1/rooms",
                Some(&alice.token),
                json!({"name": "town square", "visibility": "public", "members": [frank.id]}),
            )
            .await;
        assert_eq!(status, 201, "{room}");
        let room = room["id"].as_str().unwrap().to_owned();
        let (status, _) = server
            .post(
                &format!("/v1/rooms/{room}/members"),
                Some(&alice.token),
                json!({"user_id": carol.id, "role": "admin"}),
            )
            .await;
        assert_eq!(status, 201);
        let (status, _) = server
            .post(
                &format!("/v1/rooms/{room}/join"),
                Some(&bob.token),
                json!({}),
            )
            .await;
        assert_eq!(status, 200);
        let mut bobs = server.ws(&bob.token).await;

        let ban = |user: &str| format!("/v1/rooms/{room}/members/{user}?ban=true");
        let bans = format!("/v1/rooms/{room}/bans");
        // Without the right, nothing changes: a member, an admin against the owner, a user
        // who is not in the room.
        assert_eq!(
            call(&server, Method::DELETE, &ban(&bob.id), &frank).await,
            403
        );
        assert_eq!(
            call(&server, Method::DELETE, &ban(&alice.id), &carol).await,
            403
        );
        assert_eq!(
            call(&server, Method::DELETE, &ban(&bob.id), &eve).await,
            403
        );
        assert_eq!(
            call(&server, Method::DELETE, &ban(&carol.id), &carol).await,
            422
        );
        assert_eq!(
            call(&server, Method::DELETE, &ban(RANDOM), &carol).await,
            404
        );
        assert_eq!(call(&server, Method::GET, &bans, &frank).await, 403);
        assert_eq!(call(&server, Method::GET, &bans, &eve).await, 403);
        let members = member_ids(&server, &alice, &room).await;
        assert_eq!(members.len(), 4, "{backend}: {members:?}");
        let (_, list) = server.get(&bans, &alice.token).await;
        assert_eq!(ids(&list, "bans"), Vec::<String>::new(), "{backend}");

        // The admin bans bob: he leaves at once and his socket hears nothing more.
        assert_eq!(
            call(&server, Method::DELETE, &ban(&bob.id), &carol).await,
            204
        );
        let left = bobs.next_of("member.left").await;
        assert_eq!(left["user_id"].as_str(), Some(bob.id.as_str()), "{backend}");
        server.send(&alice, &room, "after the ban").await;
        let heard = bobs.drain().await;
        assert!(
            heard.iter().all(|f| f["type"] == "presence"),
            "{backend}: a banned user got {heard:?}"
        );
        assert!(!member_ids(&server, &alice, &room).await.contains(&bob.id));

        // He cannot rejoin, be re-added or post; refusals change nothing.
        let (status, _) = server
            .post(
                &format!("/v1/rooms/{room}/join"),
                Some(&bob.token),
                json!({}),
            )
            .await;
        assert_eq!(status, 403, "{backend}");
        let (status, answer) = server
            .post(
                &format!("/v1/rooms/{room}/members"),
                Some(&alice.token),
                json!({"user_id": bob.id}),
            )
            .await;
        assert_eq!(
            (status.as_u16(), answer["code"].as_str()),
            (403, Some("forbidden"))
        );
        assert_eq!(try_send(&server, &bob, &room).await, 403, "{backend}");
        assert!(!member_ids(&server, &alice, &room).await.contains(&bob.id));

        // A user who never joined can be banned before they do; banning again is a no-op.
        assert_eq!(
            call(&server, Method::DELETE, &ban(&eve.id), &alice).await,
            204
        );
        assert_eq!(
            call(&server, Method::DELETE, &ban(&eve.id), &alice).await,
            204
        );
        let (status, _) = server
            .post(
                &format!("/v1/rooms/{room}/join"),
                Some(&eve.token),
                json!({}),
            )
            .await;
        assert_eq!(status, 403, "{backend}");
        let (status, list) = server.get(&format!("{bans}?limit=1"), &carol.token).await;
        assert_eq!(status, 200, "{backend}: {list}");
        assert_eq!(ids(&list, "bans"), [bob.id.as_str()], "{backend}");
        assert_eq!(
            list["bans"][0]["banned_by"].as_str(),
            Some(carol.id.as_str())
        );
        let cursor = list["next_cursor"].as_str().expect("a second page");
        let (_, rest) = server
            .get(&format!("{bans}?limit=1&cursor={cursor}"), &carol.token)
            .await;
        assert_eq!(ids(&rest, "bans"), [eve.id.as_str()], "{backend}");

        // Unbanning: owners and admins only; then bob may join again.
        let unban = format!("/v1/rooms/{room}/bans/{}", bob.id);
        assert_eq!(call(&server, Method::DELETE, &unban, &frank).await, 403);
        assert_eq!(call(&server, Method::DELETE, &unban, &eve).await, 403);
        assert_eq!(call(&server, Method::DELETE, &unban, &carol).await, 204);
        assert_eq!(call(&server, Method::DELETE, &unban, &carol).await, 404);
        let (status, _) = server
            .post(
                &format!("/v1/rooms/{room}/join"),
                Some(&bob.token),
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "{backend}");
        server.send(&bob, &room, "back again").await;

        // In a private room an outsider learns nothing.
        let private = server.room(&alice, &[&frank]).await;
        for path in [
            format!("/v1/rooms/{private}/members/{}?ban=true", frank.id),
            format!("/v1/rooms/{private}/bans/{}", frank.id),
        ] {
            assert_eq!(call(&server, Method::DELETE, &path, &eve).await, 404);
        }
        let private_bans = format!("/v1/rooms/{private}/bans");
        assert_eq!(call(&server, Method::GET, &private_bans, &eve).await, 404);
        assert!(member_ids(&server, &alice, &private)
            .await
            .contains(&frank.id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_room_tells_its_members_and_takes_its_messages_and_uploads() {
    for (backend, server) in TestServer::on_each_backend().await {
        let alice = server.register("alice").await;
        let bob = server.register("bob").await;
        let carol = server.register("carol").await;
        let eve = server.register("eve").await;
        let room = server.room(&alice, &[&carol]).await;
        let kept = server.room(&alice, &[&carol]).await;
        let (status, _) = server
            .post(
                &format!("/v1/rooms/{room}/members"),
                Some(&alice.token),
                json!({"user_id": bob.id, "role": "admin"}),
            )
            .await;
        assert_eq!(status, 201);
        let only_here = upload(&server, &alice).await;
        let shared = upload(&server, &alice).await;
        for (target, file) in [(&room, &only_here), (&room, &shared), (&kept, &shared)] {
            let (status, m) = server
                .post(
                    &format!("/v1/rooms/{target}/messages"),
                    Some(&alice.token),
                    json!({"attachment_id": file}),
                )
                .await;
            assert_eq!(status, 201, "{backend}: {m}");
        }
        server.send(&carol, &room, "hello").await;

        // Only the owner deletes it; a refusal changes nothing.
        let path = format!("/v1/rooms/{room}");
        assert_eq!(call(&server, Method::DELETE, &path, &bob).await, 403);
        assert_eq!(call(&server, Method::DELETE, &path, &carol).await, 403);
        assert_eq!(call(&server, Method::DELETE, &path, &eve).await, 404);
        let (status, _) = server.request(Method::DELETE, &path, None, None).await;
        assert_eq!(status, 401);
        assert_eq!(server.history(&carol, &room).await.len(), 3, "{backend}");

        let mut carols = server.ws(&carol.token).await;
        assert_eq!(call(&server, Method::DELETE, &path, &alice).await, 204);
        let deleted = carols.next().await;
        assert_eq!(
            deleted,
            json!({"type": "room.deleted", "room_id": room}),
            "{backend}"
        );
        // The socket stopped following it: writing there is refused, nothing else arrives.
        carols
            .send(json!({"type": "message.send", "room_id": room, "body": "hi", "client_id": "x"}))
            .await;
        let error = carols.next().await;
        assert_eq!(error["code"], "not_found", "{backend}: {error}");
        let heard = carols.drain().await;
        assert!(
            heard.iter().all(|f| f["type"] == "presence"),
            "{backend}: {heard:?}"
        );

        // The room answers 404 everywhere; its upload went with it, the shared one stays.
        for who in [&alice, &carol] {
            for p in [
                path.clone(),
                format!("{path}/messages"),
                format!("{path}/members"),
            ] {
                assert_eq!(
                    call(&server, Method::GET, &p, who).await,
                    404,
                    "{backend} {p}"
                );
            }
        }
        assert_eq!(call(&server, Method::DELETE, &path, &alice).await, 404);
        assert_eq!(try_send(&server, &alice, &room).await, 404);
        let (_, rooms) = server.get("/v1/rooms", &carol.token).await;
        let listed: Vec<&str> = rooms["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(listed, [kept.as_str()], "{backend}");
        let upload_path = |id: &str| format!("/v1/uploads/{id}");
        assert_eq!(
            call(&server, Method::GET, &upload_path(&only_here), &alice).await,
            404
        );
        assert_eq!(
            call(&server, Method::GET, &upload_path(&shared), &alice).await,
            200
        );
        assert_eq!(
            call(&server, Method::GET, &upload_path(&shared), &carol).await,
            200
        );
        for (file, expect) in [(&only_here, 404), (&shared, 200)] {
            let content = reqwest::Client::new()
                .get(format!("{}{}/content", server.base, upload_path(file)))
                .bearer_auth(&alice.token)
                .send()
                .await
                .expect("request sent");
            assert_eq!(content.status().as_u16(), expect, "{backend}");
        }

        // A direct room is archived, not deleted.
        let (_, dm) = open_dm(&server, &alice, &bob).await;
        let dm = format!("/v1/rooms/{}", dm["id"].as_str().unwrap());
        assert_eq!(call(&server, Method::DELETE, &dm, &alice).await, 422);
        assert_eq!(call(&server, Method::GET, &dm, &alice).await, 200);
    }
}

/// Uploads a small PNG and returns its id.
async fn upload(server: &TestServer, who: &TestUser) -> String {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend_from_slice(&[7; 64]);
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name("pic.png"),
    );
    let res = reqwest::Client::new()
        .post(format!("{}/v1/uploads", server.base))
        .bearer_auth(&who.token)
        .multipart(form)
        .send()
        .await
        .expect("upload sent");
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}
