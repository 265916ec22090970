//! The authorization matrix: every route that names a room, message or user, called by someone
//! signed out, an outsider, a plain member and an admin of a private and of a public room, on
//! each backend. An outsider of a private room gets exactly the answer a random id gets.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{TestServer, TestUser};

/// Who calls: signed out, not a member, a member, an admin.
const ACTORS: [&str; 4] = ["anonymous", "outsider", "member", "admin"];

/// One route as each actor calls it (actors may need their own target, so that one actor's
/// call does not change what the next one meets), and the status each must get.
struct Case {
    name: &'static str,
    method: Method,
    /// The path and body per actor (anonymous, outsider, member, admin).
    calls: [(String, Option<Value>); 4],
    expect: [u16; 4],
}

/// A case whose outsider, member and admin calls differ; anonymous makes the outsider's.
fn case(
    name: &'static str,
    method: Method,
    paths: [String; 3],
    bodies: [Option<Value>; 3],
    expect: [u16; 3],
) -> Case {
    let [o, m, a] = paths;
    let [ob, mb, ab] = bodies;
    Case {
        name,
        method,
        calls: [(o.clone(), ob.clone()), (o, ob), (m, mb), (a, ab)],
        expect: [401, expect[0], expect[1], expect[2]],
    }
}

/// A case every actor calls alike.
fn same(
    name: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
    expect: [u16; 3],
) -> Case {
    case(
        name,
        method,
        [path.clone(), path.clone(), path],
        [body.clone(), body.clone(), body],
        expect,
    )
}

const RANDOM: &str = "00000000-0000-4000-8000-00000000abcd";

/// A room with alice as owner, bob as admin, carol as member, and what the cases act on.
struct Fixture {
    room: String,
    /// A message of alice's that every case reads, edits or reacts to.
    message: String,
    /// Per actor (outsider, member, admin): a message of alice's to try to delete.
    to_delete: [String; 3],
    /// Per actor: a message of their own (the outsider has none: alice's).
    own: [String; 3],
    /// Per actor: a user to try to add.
    to_add: [String; 3],
    /// Per actor: a member to try to remove.
    to_remove: [String; 3],
    /// Per actor: a member to try to ban (the admin's ban is then lifted).
    to_ban: [String; 3],
}

struct People {
    alice: TestUser,
    bob: TestUser,
    carol: TestUser,
    eve: TestUser,
    spare: Vec<TestUser>,
}

async fn people(server: &TestServer) -> People {
    let mut spare = Vec::new();
    for i in 0..18 {
        spare.push(server.register(&format!("spare{i}")).await);
    }
    People {
        alice: server.register("alice").await,
        bob: server.register("bob").await,
        carol: server.register("carol").await,
        eve: server.register("eve").await,
        spare,
    }
}

async fn fixture(server: &TestServer, p: &People, visibility: &str, spare: &[TestUser]) -> Fixture {
    let (to_add, rest) = spare.split_at(3);
    let (to_remove, to_ban) = rest.split_at(3);
    let mut members = vec![p.carol.id.as_str()];
    members.extend(rest.iter().map(|u| u.id.as_str()));
    let (status, room) = server
        .post(
            "/v1/rooms",
            Some(&p.alice.token),
            json!({"name": "matrix", "visibility": visibility, "members": members}),
        )
        .await;
    assert_eq!(status, 201, "{room}");
    let room = room["id"].as_str().unwrap().to_owned();
    let (status, admin) = server
        .post(
            &format!("/v1/rooms/{room}/members"),
            Some(&p.alice.token),
            json!({"user_id": p.bob.id, "role": "admin"}),
        )
        .await;
    assert_eq!(status, 201, "{admin}");
    let id = |m: Value| m["id"].as_str().unwrap().to_owned();
    let message = id(server.send(&p.alice, &room, "hello from alice").await);
    let mut to_delete = Vec::new();
    for i in 0..3 {
        to_delete.push(id(server
            .send(&p.alice, &room, &format!("delete me {i}"))
            .await));
    }
    let own = [
        message.clone(),
        id(server.send(&p.carol, &room, "carol's").await),
        id(server.send(&p.bob, &room, "bob's").await),
    ];
    let ids = |users: &[TestUser]| -> [String; 3] { [0, 1, 2].map(|i| users[i].id.clone()) };
    Fixture {
        room,
        message,
        to_delete: to_delete.try_into().unwrap(),
        own,
        to_add: ids(to_add),
        to_remove: ids(to_remove),
        to_ban: ids(to_ban),
    }
}

/// The cases of one room; `outsider` is what a non-member gets where only members may look
/// (404 for a private room, the room's public answer otherwise), `denied` where they may look
/// but not act (404 for a private room, 403 for a public one).
fn cases(f: &Fixture, p: &People, read: u16, denied: u16) -> Vec<Case> {
    let r = &f.room;
    let m = &f.message;
    let thumbs = "%F0%9F%91%8D";
    let per =
        |make: &dyn Fn(&str) -> String, targets: &[String; 3]| targets.clone().map(|t| make(&t));
    vec![
        same(
            "room",
            Method::GET,
            format!("/v1/rooms/{r}"),
            None,
            [read, 200, 200],
        ),
        same(
            "patch room",
            Method::PATCH,
            format!("/v1/rooms/{r}"),
            Some(json!({"topic": "t"})),
            [denied, 403, 200],
        ),
        same(
            "members",
            Method::GET,
            format!("/v1/rooms/{r}/members"),
            None,
            [read, 200, 200],
        ),
        case(
            "add member",
            Method::POST,
            [0, 1, 2].map(|_| format!("/v1/rooms/{r}/members")),
            f.to_add.clone().map(|u| Some(json!({ "user_id": u }))),
            [denied, 403, 201],
        ),
        case(
            "remove member",
            Method::DELETE,
            per(&|u| format!("/v1/rooms/{r}/members/{u}"), &f.to_remove),
            [None, None, None],
            [denied, 403, 204],
        ),
        case(
            "ban member",
            Method::DELETE,
            per(
                &|u| format!("/v1/rooms/{r}/members/{u}?ban=true"),
                &f.to_ban,
            ),
            [None, None, None],
            [denied, 403, 204],
        ),
        same(
            "admin bans owner",
            Method::DELETE,
            format!("/v1/rooms/{r}/members/{}?ban=true", p.alice.id),
            None,
            [denied, 403, 403],
        ),
        same(
            "bans",
            Method::GET,
            format!("/v1/rooms/{r}/bans"),
            None,
            [denied, 403, 200],
        ),
        same(
            "unban",
            Method::DELETE,
            format!("/v1/rooms/{r}/bans/{}", f.to_ban[2]),
            None,
            [denied, 403, 204],
        ),
        same(
            "delete room",
            Method::DELETE,
            format!("/v1/rooms/{r}"),
            None,
            [denied, 403, 403],
        ),
        same(
            "change a role",
            Method::PATCH,
            format!("/v1/rooms/{r}/members/{}", p.carol.id),
            Some(json!({"role": "admin"})),
            [denied, 403, 403],
        ),
        same(
            "admin removes owner",
            Method::DELETE,
            format!("/v1/rooms/{r}/members/{}", p.alice.id),
            None,
            [denied, 403, 403],
        ),
        same(
            "settings",
            Method::PUT,
            format!("/v1/rooms/{r}/settings"),
            Some(json!({"pinned": true})),
            [denied, 200, 200],
        ),
        same(
            "stats",
            Method::GET,
            format!("/v1/rooms/{r}/stats"),
            None,
            [read, 200, 200],
        ),
        same(
            "history",
            Method::GET,
            format!("/v1/rooms/{r}/messages"),
            None,
            [read, 200, 200],
        ),
        same(
            "send",
            Method::POST,
            format!("/v1/rooms/{r}/messages"),
            Some(json!({"body": "hi"})),
            [denied, 201, 201],
        ),
        same(
            "message",
            Method::GET,
            format!("/v1/rooms/{r}/messages/{m}"),
            None,
            [read, 200, 200],
        ),
        same(
            "thread",
            Method::GET,
            format!("/v1/rooms/{r}/messages/{m}/thread"),
            None,
            [read, 200, 200],
        ),
        same(
            "edit another's",
            Method::PATCH,
            format!("/v1/rooms/{r}/messages/{m}"),
            Some(json!({"body": "x"})),
            [denied, 403, 403],
        ),
        case(
            "edit own",
            Method::PATCH,
            per(&|id| format!("/v1/rooms/{r}/messages/{id}"), &f.own),
            [0, 1, 2].map(|_| Some(json!({"body": "edited"}))),
            [denied, 200, 200],
        ),
        case(
            "delete another's",
            Method::DELETE,
            per(&|id| format!("/v1/rooms/{r}/messages/{id}"), &f.to_delete),
            [None, None, None],
            [denied, 403, 204],
        ),
        same(
            "react",
            Method::PUT,
            format!("/v1/rooms/{r}/messages/{m}/reactions/{thumbs}"),
            None,
            [denied, 204, 204],
        ),
        same(
            "unreact",
            Method::DELETE,
            format!("/v1/rooms/{r}/messages/{m}/reactions/{thumbs}"),
            None,
            [denied, 204, 204],
        ),
        same(
            "read",
            Method::POST,
            format!("/v1/rooms/{r}/read"),
            Some(json!({"seq": 1})),
            [denied, 200, 200],
        ),
        same(
            "delivered",
            Method::POST,
            format!("/v1/rooms/{r}/delivered"),
            Some(json!({"seq": 1})),
            [denied, 200, 200],
        ),
        same(
            "receipts",
            Method::GET,
            format!("/v1/rooms/{r}/receipts"),
            None,
            [read, 200, 200],
        ),
        same(
            "typing",
            Method::POST,
            format!("/v1/rooms/{r}/typing"),
            Some(json!({"typing": true})),
            [denied, 204, 204],
        ),
        same(
            "search in room",
            Method::GET,
            format!("/v1/search?q=hello&room_id={r}"),
            None,
            [read, 200, 200],
        ),
    ]
}

async fn call(
    server: &TestServer,
    method: &Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let body = body.map(Value::to_string);
    let (status, answer) = server
        .request(method.clone(), path, token, body.as_deref())
        .await;
    (status.as_u16(), answer)
}

async fn run(server: &TestServer, backend: &str, p: &People, f: &Fixture, private: bool) {
    let (read, denied) = if private { (404, 404) } else { (200, 403) };
    let tokens = [
        None,
        Some(p.eve.token.as_str()),
        Some(p.carol.token.as_str()),
        Some(p.bob.token.as_str()),
    ];
    for case in cases(f, p, read, denied) {
        for (i, actor) in ACTORS.iter().enumerate() {
            let (path, body) = &case.calls[i];
            let expect = case.expect[i];
            let (status, answer) = call(server, &case.method, path, tokens[i], body.as_ref()).await;
            let room_kind = if private { "private" } else { "public" };
            assert_eq!(
                status, expect,
                "{backend}, {room_kind} room, {}: {actor} {} {path} answered {answer}",
                case.name, case.method
            );
            if status >= 400 {
                assert!(answer["code"].is_string(), "the error shape: {answer}");
            }
            if private && *actor == "outsider" {
                // Nothing tells a private room from one that does not exist.
                let random = path.replace(&f.room, RANDOM);
                let (other, unknown) =
                    call(server, &case.method, &random, tokens[i], body.as_ref()).await;
                assert_eq!(
                    (status, &answer),
                    (other, &unknown),
                    "{backend}, {}: {path}",
                    case.name
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_role_as_the_contract_says() {
    for (backend, server) in TestServer::on_each_backend().await {
        let p = people(&server).await;
        let private = fixture(&server, &p, "private", &p.spare[..9]).await;
        run(&server, backend, &p, &private, true).await;
        let public = fixture(&server, &p, "public", &p.spare[9..]).await;
        run(&server, backend, &p, &public, false).await;

        // Users are visible to anyone signed in; a random id is not found.
        for token in [&p.eve.token, &p.carol.token] {
            let (status, _) = server
                .get(&format!("/v1/users/{}", p.alice.id), token)
                .await;
            assert_eq!(status, 200, "{backend}");
            let (status, body) = server.get(&format!("/v1/users/{RANDOM}"), token).await;
            assert_eq!(
                (status.as_u16(), body["code"].as_str()),
                (404, Some("not_found")),
                "{backend}"
            );
        }
        let (status, _) = server
            .request(
                Method::GET,
                &format!("/v1/users/{}", p.alice.id),
                None,
                None,
            )
            .await;
        assert_eq!(status, 401, "{backend}");

        // A direct room is its two members' alone.
        let (status, dm) = server
            .post(
                "/v1/dms",
                Some(&p.carol.token),
                json!({"user_id": p.alice.id}),
            )
            .await;
        assert_eq!(status, 201, "{backend}: {dm}");
        let dm = dm["id"].as_str().unwrap();
        let (status, _) = server.get(&format!("/v1/rooms/{dm}"), &p.eve.token).await;
        assert_eq!(status, 404, "{backend}");
        let (status, _) = server
            .get(&format!("/v1/rooms/{dm}/messages"), &p.bob.token)
            .await;
        assert_eq!(status, 404, "{backend}");
        let (status, _) = server
            .post(
                &format!("/v1/rooms/{dm}/messages"),
                Some(&p.eve.token),
                json!({"body": "hi"}),
            )
            .await;
        assert_eq!(status, 404, "{backend}");

        // Joining: a public room takes anyone; a private one is not found; a member is one.
        // Leaving: members may; outsiders of a private room learn nothing.
        for (action, room, who, expect) in [
            ("join", &public.room, &p.eve, 200),
            ("join", &private.room, &p.eve, 404),
            ("join", &private.room, &p.carol, 200),
            ("leave", &private.room, &p.eve, 404),
            ("leave", &private.room, &p.carol, 204),
        ] {
            let path = format!("/v1/rooms/{room}/{action}");
            let (status, answer) = server.post(&path, Some(&who.token), json!({})).await;
            assert_eq!(status, expect, "{backend} {path}: {answer}");
        }
    }
}
