//! `/openapi.json` against the server itself: every route the server has is in the document
//! with the methods it answers, and nothing else is; the responses of a walk through the API
//! (success and error) match the schemas the document gives for their operation and status;
//! and `/docs` renders the document without any network.

mod schema;

use std::collections::BTreeSet;

use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{TestServer, TestUser};
use crate::uploads::png;

/// The route templates of the server, read from the list its metrics label requests with.
fn templates() -> Vec<&'static str> {
    let source = include_str!("../../src/http/templates.rs");
    let list = source
        .split_once("const TEMPLATES: &[&str] = &[")
        .and_then(|(_, rest)| rest.split_once("];"))
        .expect("the TEMPLATES list in templates.rs")
        .0;
    list.split('"').skip(1).step_by(2).collect()
}

/// Whether `path` is an instance of `template`.
fn matches(template: &str, path: &str) -> bool {
    let (wanted, given): (Vec<_>, Vec<_>) =
        (template.split('/').collect(), path.split('/').collect());
    wanted.len() == given.len()
        && wanted
            .iter()
            .zip(&given)
            .all(|(w, g)| w == g || (w.starts_with('{') && !g.is_empty()))
}

async fn document(server: &TestServer) -> Value {
    let res = reqwest::get(format!("{}/openapi.json", server.base))
        .await
        .expect("request sent");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/json");
    res.json().await.expect("a JSON document")
}

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

#[tokio::test]
async fn openapi_lists_every_route_with_the_methods_it_answers_and_nothing_else() {
    let server = TestServer::start().await;
    let doc = document(&server).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    server.register("prober").await;
    let id = uuid::Uuid::new_v4();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            documented.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    // What the server answers: a method a route lacks on a known path is 405; any other answer
    // (404 for an unknown id, 400 for a missing body, ...) means some route takes that method.
    let mut served = BTreeSet::new();
    for template in templates() {
        // A fresh token each time: probing `/v1/auth/logout` revokes the one it was sent with.
        let token = server.login("prober").await;
        let path = template
            .split('/')
            .map(|segment| match segment.starts_with('{') {
                true if segment == "{emoji}" => "%F0%9F%91%8D".to_owned(),
                true => id.to_string(),
                false => segment.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in METHODS {
            let res = reqwest::Client::new()
                .request(method.clone(), format!("{}{path}", server.base))
                .bearer_auth(&token)
                .send()
                .await
                .expect("request sent");
            if res.status() == StatusCode::METHOD_NOT_ALLOWED {
                continue;
            }
            // `/v1/rooms/public` is also a `/v1/rooms/{id}`: a method answered there may be
            // the other route's.
            let answered_by = templates()
                .into_iter()
                .filter(|t| matches(t, &path))
                .find(|t| documented.contains(&format!("{method} {t}")))
                .unwrap_or(template);
            served.insert(format!("{method} {answered_by}"));
        }
    }
    let missing: Vec<_> = served.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&served).collect();
    assert!(missing.is_empty(), "routes the document lacks: {missing:?}");
    assert!(
        unknown.is_empty(),
        "operations the server lacks: {unknown:?}"
    );
    // Every template was reached at all, so the probe itself cannot hide a route.
    for template in templates() {
        assert!(
            served
                .iter()
                .any(|op| op.ends_with(&format!(" {template}"))),
            "{template} answered no method"
        );
    }
}

/// A request of the walk.
enum Body {
    None,
    Json(Value),
    Form(&'static str),
    Multipart(Form),
}

/// Sends requests and checks each answer against the document: the status must be one the
/// operation lists, and a JSON body must match the schema given for it.
struct Walk<'a> {
    server: &'a TestServer,
    doc: Value,
    http: reqwest::Client,
    /// `METHOD template status`, of each response checked.
    checked: BTreeSet<String>,
}

impl Walk<'_> {
    /// `method` on `template` with `args` filling its `{}`s in order, with `query` appended.
    async fn call(
        &mut self,
        method: Method,
        template: &str,
        args: &[&str],
        query: &str,
        token: Option<&str>,
        body: Body,
    ) -> (StatusCode, Value) {
        let mut path = String::new();
        let mut args = args.iter();
        for segment in template.split('/').skip(1) {
            path.push('/');
            if segment.starts_with('{') {
                path.push_str(args.next().expect("an argument for each parameter"));
            } else {
                path.push_str(segment);
            }
        }
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}{query}", self.server.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req = match body {
            Body::None => req,
            Body::Json(value) => req.json(&value),
            Body::Form(form) => req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form),
            Body::Multipart(form) => req.multipart(form),
        };
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let media_type = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = res.bytes().await.expect("body read");
        let name = format!("{method} {template} {}", status.as_u16());
        let operation = &self.doc["paths"][template][method.as_str().to_lowercase()];
        assert!(operation.is_object(), "{name}: no such operation");
        let response = &operation["responses"][status.as_str()];
        let body_text = String::from_utf8_lossy(&bytes);
        assert!(
            response.is_object(),
            "{name}: a status the document does not list; body {body_text}"
        );
        let value = match response.get("content") {
            None => {
                assert!(bytes.is_empty(), "{name}: a body where none is documented");
                Value::Null
            }
            Some(content) => {
                let media_type = media_type.expect("a content type");
                let essence = media_type.split(';').next().unwrap().trim();
                if essence == "application/json" {
                    let value: Value = serde_json::from_slice(&bytes)
                        .unwrap_or_else(|_| panic!("{name}: not JSON: {body_text}"));
                    let schema = &content["application/json"]["schema"];
                    assert!(schema.is_object(), "{name}: no JSON schema documented");
                    if let Err(e) = schema::check(&self.doc, schema, &value) {
                        panic!("{name}: the body does not match the document: {e}\n{value:#}");
                    }
                    value
                } else {
                    // Bytes of an upload: any media type, documented as binary.
                    assert!(
                        content.get(essence).is_some()
                            || content.get("application/octet-stream").is_some(),
                        "{name}: {media_type} is not documented"
                    );
                    Value::Null
                }
            }
        };
        self.checked.insert(name);
        (status, value)
    }
}

#[tokio::test]
async fn openapi_schemas_match_real_responses() {
    for (backend, server) in TestServer::on_each_backend().await {
        let doc = document(&server).await;
        let mut walk = Walk {
            server: &server,
            doc,
            http: reqwest::Client::new(),
            checked: BTreeSet::new(),
        };
        walk_the_api(&mut walk, &server).await;
        // The walk covers the kinds of answer the API has, so a schema that drifts from its
        // type's serialization cannot go unnoticed for long.
        for status in [200, 201, 204, 206, 400, 401, 403, 404, 409, 422] {
            assert!(
                walk.checked
                    .iter()
                    .any(|c| c.ends_with(&format!(" {status}"))),
                "{backend}: no {status} was checked"
            );
        }
    }
}

async fn walk_the_api(walk: &mut Walk<'_>, server: &TestServer) {
    use Method as M;
    let random = uuid::Uuid::new_v4().to_string();
    let random = random.as_str();

    // Accounts and tokens.
    let register = |name: &str| json!({"username": name, "password": "password-123", "email": format!("{name}@example.com")});
    let (s, alice) = walk
        .call(
            M::POST,
            "/v1/auth/register",
            &[],
            "",
            None,
            Body::Json(register("alice")),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = walk
        .call(
            M::POST,
            "/v1/auth/register",
            &[],
            "",
            None,
            Body::Json(register("alice")),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = walk
        .call(
            M::POST,
            "/v1/auth/register",
            &[],
            "",
            None,
            Body::Json(json!({"username": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let login = json!({"login": "alice", "password": "password-123"});
    let (s, signed_in) = walk
        .call(M::POST, "/v1/auth/login", &[], "", None, Body::Json(login))
        .await;
    assert_eq!(s, StatusCode::OK);
    let wrong = json!({"login": "alice", "password": "wrong-password"});
    let (s, _) = walk
        .call(M::POST, "/v1/auth/login", &[], "", None, Body::Json(wrong))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let form = "grant_type=password&username=alice&password=password-123";
    let (s, _) = walk
        .call(M::POST, "/v1/auth/token", &[], "", None, Body::Form(form))
        .await;
    assert_eq!(s, StatusCode::OK);
    let refresh = json!({"refresh_token": signed_in["refresh_token"]});
    let (s, refreshed) = walk
        .call(
            M::POST,
            "/v1/auth/refresh",
            &[],
            "",
            None,
            Body::Json(refresh),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let a = refreshed["access_token"].as_str().unwrap().to_owned();
    let a = a.as_str();
    let alice_id = alice["id"].as_str().unwrap();
    let bob: TestUser = server.register("bob").await;
    let (b, bob_id) = (bob.token.as_str(), bob.id.as_str());

    // Users.
    walk.call(M::GET, "/v1/users/me", &[], "", Some(a), Body::None)
        .await;
    let (s, _) = walk
        .call(M::GET, "/v1/users/me", &[], "", None, Body::None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let patch = json!({"display_name": "Alice", "email": null});
    walk.call(
        M::PATCH,
        "/v1/users/me",
        &[],
        "",
        Some(a),
        Body::Json(patch),
    )
    .await;
    walk.call(M::GET, "/v1/users/{id}", &[bob_id], "", Some(a), Body::None)
        .await;
    let (s, _) = walk
        .call(M::GET, "/v1/users/{id}", &[random], "", Some(a), Body::None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    walk.call(
        M::GET,
        "/v1/users",
        &[],
        "?q=b&limit=1",
        Some(a),
        Body::None,
    )
    .await;
    let (s, _) = walk
        .call(M::GET, "/v1/users", &[], "?limit=0", Some(a), Body::None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    walk.call(
        M::GET,
        "/v1/users/me/presence",
        &[],
        "",
        Some(a),
        Body::None,
    )
    .await;
    let away = json!({"status": "away"});
    walk.call(
        M::PUT,
        "/v1/users/me/presence",
        &[],
        "",
        Some(a),
        Body::Json(away),
    )
    .await;
    let ids = format!("?user_ids={alice_id},{bob_id}");
    walk.call(M::GET, "/v1/presence", &[], &ids, Some(b), Body::None)
        .await;

    // Rooms and members.
    let create = json!({"name": "general", "topic": "all", "visibility": "public"});
    let (s, room) = walk
        .call(M::POST, "/v1/rooms", &[], "", Some(a), Body::Json(create))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let room = room["id"].as_str().unwrap().to_owned();
    let r = room.as_str();
    let (s, _) = walk
        .call(
            M::POST,
            "/v1/rooms",
            &[],
            "",
            Some(a),
            Body::Json(json!({"name": "x", "seq": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    walk.call(
        M::GET,
        "/v1/rooms/public",
        &[],
        "?q=gen",
        Some(b),
        Body::None,
    )
    .await;
    walk.call(M::GET, "/v1/rooms/{id}", &[r], "", Some(a), Body::None)
        .await;
    let (s, _) = walk
        .call(M::GET, "/v1/rooms/{id}", &[random], "", Some(a), Body::None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = walk
        .call(
            M::POST,
            "/v1/rooms/{id}/join",
            &[r],
            "",
            Some(b),
            Body::None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let rename = json!({"name": "renamed", "topic": null});
    let (s, _) = walk
        .call(
            M::PATCH,
            "/v1/rooms/{id}",
            &[r],
            "",
            Some(b),
            Body::Json(rename.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    walk.call(
        M::PATCH,
        "/v1/rooms/{id}",
        &[r],
        "",
        Some(a),
        Body::Json(rename),
    )
    .await;
    let member = json!({"user_id": bob_id});
    let (s, _) = walk
        .call(
            M::POST,
            "/v1/rooms/{id}/members",
            &[r],
            "",
            Some(a),
            Body::Json(member),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let role = json!({"role": "admin"});
    walk.call(
        M::PATCH,
        "/v1/rooms/{id}/members/{user_id}",
        &[r, bob_id],
        "",
        Some(a),
        Body::Json(role),
    )
    .await;
    walk.call(
        M::GET,
        "/v1/rooms/{id}/members",
        &[r],
        "?limit=10",
        Some(a),
        Body::None,
    )
    .await;
    let settings = json!({"pinned": true, "muted": false});
    walk.call(
        M::PUT,
        "/v1/rooms/{id}/settings",
        &[r],
        "",
        Some(a),
        Body::Json(settings),
    )
    .await;
    let (s, dm) = walk
        .call(
            M::POST,
            "/v1/dms",
            &[],
            "",
            Some(a),
            Body::Json(json!({"user_id": bob_id})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = walk
        .call(
            M::POST,
            "/v1/dms",
            &[],
            "",
            Some(b),
            Body::Json(json!({"user_id": alice_id})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let dm = dm["id"].as_str().unwrap().to_owned();

    // Messages, threads and reactions.
    let send = json!({"body": "hi @bob", "client_id": "c-1"});
    let (s, first) = walk
        .call(
            M::POST,
            "/v1/rooms/{id}/messages",
            &[r],
            "",
            Some(a),
            Body::Json(send.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = walk
        .call(
            M::POST,
            "/v1/rooms/{id}/messages",
            &[r],
            "",
            Some(a),
            Body::Json(send),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let m = first["id"].as_str().unwrap().to_owned();
    let m = m.as_str();
    let reply = json!({"body": "in thread", "thread_id": m, "reply_to": m});
    walk.call(
        M::POST,
        "/v1/rooms/{id}/messages",
        &[r],
        "",
        Some(b),
        Body::Json(reply),
    )
    .await;
    let messages = "/v1/rooms/{id}/messages/{message_id}";
    let reaction = "/v1/rooms/{id}/messages/{message_id}/reactions/{emoji}";
    walk.call(
        M::PUT,
        reaction,
        &[r, m, "%F0%9F%91%8D"],
        "",
        Some(b),
        Body::None,
    )
    .await;
    walk.call(M::PUT, reaction, &[r, m, ":tada:"], "", Some(a), Body::None)
        .await;
    walk.call(
        M::DELETE,
        reaction,
        &[r, m, ":tada:"],
        "",
        Some(a),
        Body::None,
    )
    .await;
    let edit = json!({"body": "hi again @bob"});
    walk.call(M::PATCH, messages, &[r, m], "", Some(a), Body::Json(edit))
        .await;
    let (_, one) = walk
        .call(M::GET, messages, &[r, m], "", Some(b), Body::None)
        .await;
    assert_eq!(one["thread"]["reply_count"], 1, "{one}");
    walk.call(
        M::GET,
        "/v1/rooms/{id}/messages",
        &[r],
        "?limit=10",
        Some(b),
        Body::None,
    )
    .await;
    walk.call(
        M::GET,
        "/v1/rooms/{id}/messages",
        &[r],
        "?after=0",
        Some(b),
        Body::None,
    )
    .await;
    let (s, _) = walk
        .call(
            M::GET,
            "/v1/rooms/{id}/messages",
            &[r],
            "?before=1&after=1",
            Some(b),
            Body::None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    walk.call(
        M::GET,
        "/v1/rooms/{id}/messages/{message_id}/thread",
        &[r, m],
        "",
        Some(a),
        Body::None,
    )
    .await;
    walk.call(M::GET, "/v1/search", &[], "?q=thread", Some(a), Body::None)
        .await;
    walk.call(
        M::GET,
        "/v1/rooms/{id}/stats",
        &[r],
        "",
        Some(a),
        Body::None,
    )
    .await;

    // Receipts, unread, typing.
    let (_, page) = walk
        .call(M::GET, "/v1/rooms", &[], "", Some(b), Body::None)
        .await;
    assert!(page["rooms"][0]["membership"].is_object(), "{page}");
    walk.call(
        M::POST,
        "/v1/rooms/{id}/delivered",
        &[r],
        "",
        Some(b),
        Body::Json(json!({"seq": 1})),
    )
    .await;
    walk.call(
        M::POST,
        "/v1/rooms/{id}/read",
        &[r],
        "",
        Some(b),
        Body::Json(json!({"seq": 9})),
    )
    .await;
    walk.call(
        M::GET,
        "/v1/rooms/{id}/receipts",
        &[r],
        "",
        Some(a),
        Body::None,
    )
    .await;
    walk.call(M::GET, "/v1/unread", &[], "", Some(a), Body::None)
        .await;
    let typing = json!({"typing": true});
    walk.call(
        M::POST,
        "/v1/rooms/{id}/typing",
        &[r],
        "",
        Some(a),
        Body::Json(typing),
    )
    .await;

    // Uploads: multipart in, JSON metadata, bytes with Range out, attached, deleted.
    let form = Form::new().part("file", Part::bytes(png(2048)).file_name("pic.png"));
    let (s, upload) = walk
        .call(
            M::POST,
            "/v1/uploads",
            &[],
            "",
            Some(a),
            Body::Multipart(form),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let u = upload["id"].as_str().unwrap().to_owned();
    let u = u.as_str();
    walk.call(
        M::GET,
        "/v1/uploads/types/allowed",
        &[],
        "",
        Some(a),
        Body::None,
    )
    .await;
    walk.call(M::GET, "/v1/uploads/{id}", &[u], "", Some(a), Body::None)
        .await;
    walk.call(
        M::GET,
        "/v1/uploads/{id}/link",
        &[u],
        "",
        Some(a),
        Body::None,
    )
    .await;
    let (s, _) = walk
        .call(
            M::GET,
            "/v1/uploads/{id}/content",
            &[u],
            "",
            Some(a),
            Body::None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let ranged = walk
        .http
        .get(format!("{}/v1/uploads/{u}/content", server.base))
        .bearer_auth(a)
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    let documented = &walk.doc["paths"]["/v1/uploads/{id}/content"]["get"]["responses"]["206"];
    assert!(documented["headers"]["Content-Range"].is_object());
    walk.checked
        .insert("GET /v1/uploads/{id}/content 206".into());
    let file = json!({"attachment_id": u});
    let (_, carried) = walk
        .call(
            M::POST,
            "/v1/rooms/{id}/messages",
            &[r],
            "",
            Some(a),
            Body::Json(file),
        )
        .await;
    assert!(carried["attachment"].is_object(), "{carried}");
    walk.call(M::DELETE, "/v1/uploads/{id}", &[u], "", Some(a), Body::None)
        .await;
    let text = Form::new().part(
        "file",
        Part::bytes(vec![0u8, 1, 2, 0xff]).file_name("x.bin"),
    );
    let (s, _) = walk
        .call(
            M::POST,
            "/v1/uploads",
            &[],
            "",
            Some(a),
            Body::Multipart(text),
        )
        .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // A tombstone keeps its shape.
    walk.call(M::DELETE, messages, &[r, m], "", Some(a), Body::None)
        .await;
    let (_, tombstone) = walk
        .call(M::GET, messages, &[r, m], "", Some(b), Body::None)
        .await;
    assert_eq!(tombstone["deleted"], true);

    // Blocks and bans.
    let block = "/v1/users/me/blocks/{user_id}";
    walk.call(M::PUT, block, &[bob_id], "", Some(a), Body::None)
        .await;
    walk.call(M::GET, "/v1/users/me/blocks", &[], "", Some(a), Body::None)
        .await;
    walk.call(M::DELETE, block, &[bob_id], "", Some(a), Body::None)
        .await;
    let carol = server.register("carol").await;
    walk.call(
        M::DELETE,
        "/v1/rooms/{id}/members/{user_id}",
        &[r, &carol.id],
        "?ban=true",
        Some(a),
        Body::None,
    )
    .await;
    walk.call(M::GET, "/v1/rooms/{id}/bans", &[r], "", Some(a), Body::None)
        .await;
    walk.call(
        M::DELETE,
        "/v1/rooms/{id}/bans/{user_id}",
        &[r, &carol.id],
        "",
        Some(a),
        Body::None,
    )
    .await;
    let (s, _) = walk
        .call(
            M::POST,
            "/v1/rooms/{id}/leave",
            &[dm.as_str()],
            "",
            Some(a),
            Body::None,
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // The rest: the socket's ticket, operations, signing out.
    walk.call(M::POST, "/v1/ws/ticket", &[], "", Some(a), Body::None)
        .await;
    walk.call(M::GET, "/health", &[], "", None, Body::None)
        .await;
    walk.call(M::GET, "/ready", &[], "", None, Body::None).await;
    walk.call(M::GET, "/metrics", &[], "", None, Body::None)
        .await;
    walk.call(
        M::POST,
        "/v1/rooms/{id}/leave",
        &[r],
        "",
        Some(b),
        Body::None,
    )
    .await;
    walk.call(M::DELETE, "/v1/rooms/{id}", &[r], "", Some(a), Body::None)
        .await;
    let password = json!({"current_password": "password-123", "new_password": "password-456"});
    walk.call(
        M::POST,
        "/v1/users/me/password",
        &[],
        "",
        Some(a),
        Body::Json(password),
    )
    .await;
    walk.call(M::POST, "/v1/auth/logout", &[], "", Some(a), Body::None)
        .await;
    let gone = json!({"password": "password-123"});
    walk.call(
        M::DELETE,
        "/v1/users/me",
        &[],
        "",
        Some(b),
        Body::Json(gone),
    )
    .await;
}

#[tokio::test]
async fn openapi_docs_page_needs_nothing_but_the_document() {
    let server = TestServer::start().await;
    let res = reqwest::get(format!("{}/docs", server.base))
        .await
        .expect("request sent");
    assert_eq!(res.status(), StatusCode::OK);
    let kind = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/html"), "{kind}");
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let page = res.text().await.unwrap();
    assert!(
        page.contains("fetch(\"/openapi.json\")"),
        "the page loads the document"
    );
    for external in ["http:", "https:", "//", "@import", "<link", "<iframe"] {
        let outside_comments = page
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            !outside_comments.contains(external),
            "the page refers to something outside the server: {external}"
        );
    }
    assert!(
        !page.contains(" src="),
        "the page loads no script or image of its own"
    );
}
