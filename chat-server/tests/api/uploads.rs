//! Uploads: streamed in under a cap, typed by their bytes, attached to messages, served with
//! safe headers and ranges to those who may see them, and to no one else.

use bytes::Bytes;
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::{memory_kib, Program, Remote, TestServer, TestUser};

const MIB: usize = 1024 * 1024;

/// A PNG signature followed by `len - 8` bytes of a pattern: the bytes decide the type.
pub(crate) fn png(len: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..len.saturating_sub(8)).map(|i| (i % 251) as u8));
    bytes
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) async fn upload_to(
    base: &str,
    token: &str,
    name: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let form = Form::new().part("file", Part::bytes(bytes).file_name(name.to_owned()));
    send_form(base, token, form).await
}

async fn send_form(base: &str, token: &str, form: Form) -> (StatusCode, Value) {
    let res = reqwest::Client::new()
        .post(format!("{base}/v1/uploads"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .expect("request sent");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A `file` part of `len` bytes sent without a length: the body goes chunked.
fn streamed_png(len: usize) -> Form {
    let bytes = Bytes::from(png(len));
    let chunks: Vec<Result<Bytes, std::io::Error>> = (0..bytes.len())
        .step_by(256 * 1024)
        .map(|at| Ok(bytes.slice(at..(at + 256 * 1024).min(bytes.len()))))
        .collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    Form::new().part("file", Part::stream(body).file_name("big.png"))
}

async fn get_raw(
    server: &TestServer,
    path: &str,
    token: Option<&str>,
    range: Option<&str>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(format!("{}{path}", server.base));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(range) = range {
        req = req.header("range", range);
    }
    req.send().await.expect("request sent")
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

async fn attach(
    server: &TestServer,
    user: &TestUser,
    room: &str,
    upload: &str,
) -> (StatusCode, Value) {
    server
        .post(
            &format!("/v1/rooms/{room}/messages"),
            Some(&user.token),
            json!({"attachment_id": upload, "body": "see attached"}),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attached_upload_reaches_members_byte_for_byte_and_no_one_else() {
    for (_, server) in TestServer::on_each_backend().await {
        attached_upload_on(server).await;
    }
}

async fn attached_upload_on(server: TestServer) {
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let eve = server.register("eve").await;
    let room = server.room(&alice, &[&bob]).await;
    let bytes = png(300_000);

    let (status, upload) = upload_to(
        &server.base,
        &alice.token,
        "holiday photo.png",
        bytes.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{upload}");
    assert_eq!(upload["content_type"], "image/png");
    assert_eq!(upload["size"], bytes.len());
    assert_eq!(upload["sha256"], sha256_hex(&bytes));
    assert_eq!(upload["name"], "holiday photo.png");
    let id = upload["id"].as_str().unwrap().to_owned();
    let content = format!("/v1/uploads/{id}/content");
    assert_eq!(upload["url"], content);

    // Before any message carries it, only alice sees it; nobody else may attach it.
    for path in [
        format!("/v1/uploads/{id}"),
        content.clone(),
        format!("/v1/uploads/{id}/link"),
    ] {
        let (status, _) = server.get(&path, &bob.token).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let bobs_room = server.room(&bob, &[]).await;
    let (status, _) = attach(&server, &bob, &bobs_room, &id).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "only the uploader attaches");

    let (status, message) = attach(&server, &alice, &room, &id).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    assert_eq!(message["kind"], "file");
    assert_eq!(
        message["attachment"],
        json!({"id": id, "name": "holiday photo.png", "content_type": "image/png",
               "size": bytes.len(), "url": content})
    );

    let res = get_raw(&server, &content, Some(&bob.token), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let headers = res.headers().clone();
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("inline;"));
    assert_eq!(headers["content-length"], bytes.len().to_string().as_str());
    let got = res.bytes().await.unwrap();
    assert_eq!(sha256_hex(&got), sha256_hex(&bytes));

    let res = get_raw(&server, &content, Some(&bob.token), Some("bytes=100-199")).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes 100-199/{}", bytes.len()).as_str()
    );
    assert_eq!(&res.bytes().await.unwrap()[..], &bytes[100..200]);
    let res = get_raw(&server, &content, Some(&bob.token), Some("bytes=-10")).await;
    assert_eq!(&res.bytes().await.unwrap()[..], &bytes[bytes.len() - 10..]);
    let res = get_raw(
        &server,
        &content,
        Some(&bob.token),
        Some("bytes=999999999-"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes */{}", bytes.len()).as_str()
    );

    for path in [
        format!("/v1/uploads/{id}"),
        content.clone(),
        format!("/v1/uploads/{id}/link"),
    ] {
        let (status, body) = server.get(&path, &eve.token).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{path}"
        );
    }
    let res = get_raw(&server, &content, None, None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // A signed link works without a header, and only as signed.
    let (status, link) = server
        .get(&format!("/v1/uploads/{id}/link"), &bob.token)
        .await;
    assert_eq!(status, StatusCode::OK, "{link}");
    assert!(link["expires_at"].is_string());
    let url = link["url"].as_str().unwrap();
    let res = get_raw(&server, url, None, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(sha256_hex(&res.bytes().await.unwrap()), sha256_hex(&bytes));
    let tampered = url.replace("sig=", "sig=00");
    assert_eq!(
        get_raw(&server, &tampered, None, None).await.status(),
        StatusCode::NOT_FOUND
    );
    let longer = url.replacen("expires=", "expires=9", 1);
    assert_eq!(
        get_raw(&server, &longer, None, None).await.status(),
        StatusCode::NOT_FOUND
    );

    // A link is both halves or neither: one alone is 400, with a token too (schemathesis found
    // `expires` alone ignored).
    let (path, query) = url.split_once('?').unwrap();
    for half in query.split('&') {
        let res = get_raw(&server, &format!("{path}?{half}"), Some(&bob.token), None).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{half}");
    }

    // Deleting the message takes bob's access away; deleting the upload takes alice's.
    let (status, _) = server
        .request(
            Method::DELETE,
            &format!(
                "/v1/rooms/{room}/messages/{}",
                message["id"].as_str().unwrap()
            ),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server.get(&content, &bob.token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .request(
            Method::DELETE,
            &format!("/v1/uploads/{id}"),
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "bob cannot see it any more");
    let (status, _) = server
        .request(
            Method::DELETE,
            &format!("/v1/uploads/{id}"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server.get(&content, &alice.token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let blobs = files_under(&server.data_dir().join("uploads"));
    assert!(blobs.is_empty(), "the blob is gone: {blobs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_over_the_cap_are_refused_while_streaming_and_leave_nothing() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let cap = 50 * MIB;

    let (status, body) = upload_to(&server.base, &alice.token, "big.png", png(cap + 1)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    let (status, body) = send_form(&server.base, &alice.token, streamed_png(cap + 1)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")),
        "without a Content-Length too"
    );
    let left = files_under(&server.data_dir().join("uploads"));
    assert!(left.is_empty(), "nothing is left behind: {left:?}");

    let (status, upload) = send_form(&server.base, &alice.token, streamed_png(cap)).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "exactly the cap is fine: {upload}"
    );
    assert_eq!(upload["size"], cap);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bytes_decide_the_type_and_names_cannot_escape() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    let html = b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>".to_vec();
    let (status, body) = upload_to(&server.base, &alice.token, "innocent.png", html).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );
    let elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    let (status, _) = upload_to(&server.base, &alice.token, "photo.jpg", elf).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Plain text is accepted, and served as text, as an attachment, never sniffed.
    let (status, text) = upload_to(
        &server.base,
        &alice.token,
        "notes.png",
        b"just some notes\n".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_eq!(text["content_type"], "text/plain; charset=utf-8");
    let res = get_raw(
        &server,
        text["url"].as_str().unwrap(),
        Some(&alice.token),
        None,
    )
    .await;
    assert!(res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");

    let long = "x".repeat(10_000);
    // A NUL or a line break cannot even travel in a part's header: the form is malformed.
    for broken in ["a\0b.png", "x.png\r\nSet-Cookie: a=b"] {
        let (status, body) = upload_to(&server.base, &alice.token, broken, png(100)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request")),
            "{broken:?}"
        );
    }
    for evil in [
        "../../../etc/passwd",
        "..\\..\\boot.ini",
        long.as_str(),
        "\"; filename=x.html; x=\"y\\\"",
    ] {
        let (status, upload) = upload_to(&server.base, &alice.token, evil, png(100)).await;
        assert_eq!(status, StatusCode::CREATED, "{evil:?}: {upload}");
        let name = upload["name"].as_str().unwrap();
        assert!(
            !name.contains('/') && !name.contains('\\') && !name.contains('\0'),
            "{name:?}"
        );
        assert!(name.len() <= 255, "{} bytes", name.len());
        let res = get_raw(
            &server,
            upload["url"].as_str().unwrap(),
            Some(&alice.token),
            None,
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers().get("set-cookie").is_none());
        let disposition = res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            disposition.starts_with("inline; filename=\""),
            "{disposition}"
        );
    }
    // Every blob sits in the uploads directory, named by its key.
    for file in files_under(server.data_dir()) {
        let relative = file
            .strip_prefix(server.data_dir())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            relative.starts_with("uploads/")
                || relative.starts_with("chat.db")
                || relative == "jwt_secret",
            "{relative}"
        );
    }

    let (status, body) =
        send_form(&server.base, &alice.token, Form::new().text("note", "hi")).await;
    assert_eq!(
        (status, body["details"]["fields"]["note"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown field"))
    );
    // Also after the file (schemathesis found it kept then): nothing of the file stays.
    let blobs = files_under(&server.data_dir().join("uploads")).len();
    let form = Form::new()
        .part("file", Part::bytes(png(64)).file_name("a.png"))
        .text("note", "hi");
    let (status, body) = send_form(&server.base, &alice.token, form).await;
    assert_eq!(
        (status, body["details"]["fields"]["note"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown field")),
        "{body}"
    );
    assert_eq!(files_under(&server.data_dir().join("uploads")).len(), blobs);
    // A form without parts has no closing boundary either: it is malformed.
    let (status, body) = send_form(&server.base, &alice.token, Form::new()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = server
        .post("/v1/uploads", Some(&alice.token), json!({"file": "x"}))
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, types) = server.get("/v1/uploads/types/allowed", &alice.token).await;
    assert_eq!(status, StatusCode::OK);
    let types = types["types"].as_array().unwrap();
    assert!(types
        .iter()
        .any(|t| t["content_type"] == "application/pdf" && t["extensions"] == json!(["pdf"])));
}

/// VmHWM (peak resident memory) of a process, in bytes.
fn peak_rss(pid: u32) -> usize {
    memory_kib(pid, "VmHWM") as usize * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_stream_without_growing_the_servers_memory() {
    let dir = tempfile::tempdir().unwrap();
    let program = Program::start(dir.path(), &[]);
    let base = program.base.clone();
    let alice = Remote::new(&base).user("alice").await;
    let token = alice.token.as_str();
    // Warm up (first request paths, allocator arenas), then measure the peak across 45 MiB.
    let (status, _) = upload_to(&base, token, "small.png", png(MIB)).await;
    assert_eq!(status, StatusCode::CREATED);
    let before = peak_rss(program.pid());
    let (status, _) = send_form(&base, token, streamed_png(45 * MIB)).await;
    assert_eq!(status, StatusCode::CREATED);
    let grown = peak_rss(program.pid()).saturating_sub(before);
    assert!(
        grown < 16 * MIB,
        "the server's peak memory grew by {} MiB",
        grown / MIB
    );
}
