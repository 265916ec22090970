//! The web client as a browser gets it: `/` and every file under `chat-server/web/`, each with
//! its media type and the headers that keep it safe and cached; the page loads nothing from
//! elsewhere and runs no inline code. (e2e/ drives it in a real browser.)

use std::collections::BTreeSet;

use reqwest::StatusCode;

use crate::support::TestServer;

/// The files of the client, by name, as they are in the source tree.
fn client_files() -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    std::fs::read_dir(dir)
        .expect("chat-server/web")
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// The `src="..."` and `href="..."` values of a page.
fn references(page: &str) -> Vec<&str> {
    [" src=\"", " href=\""]
        .iter()
        .flat_map(|attr| page.split(attr).skip(1))
        .filter_map(|rest| rest.split('"').next())
        .collect()
}

/// Whether a page has an attribute like ` onclick="..."`, which the policy would block anyway.
fn has_inline_handler(page: &str) -> bool {
    page.split(" on").skip(1).any(|rest| {
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase())
            .collect();
        !name.is_empty() && rest[name.len()..].starts_with('=')
    })
}

/// The modules a JavaScript module imports (`from "./x.js"`), relative to `/web/`.
fn imports(module: &str) -> Vec<String> {
    module
        .split("from \"./")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|name| format!("/web/{name}"))
        .collect()
}

#[tokio::test]
async fn web_client_is_served_whole_with_its_types_policy_and_nothing_from_elsewhere() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let res = http.get(format!("{}/", server.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let headers = res.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-cache");
    assert!(headers.contains_key("etag"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    let host = server.base.trim_start_matches("http://");
    for directive in [
        "default-src 'none'",
        "script-src 'self';",
        "style-src 'self';",
        &format!("connect-src 'self' ws://{host} wss://{host};"),
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");

    let page = res.text().await.unwrap();
    assert!(
        !page.contains("<script>") && !page.contains("<style"),
        "no inline script or style"
    );
    assert!(!has_inline_handler(&page), "no inline event handler");
    let mut pending: Vec<String> = references(&page).into_iter().map(str::to_owned).collect();
    assert!(pending.iter().any(|r| r == "/web/app.js"), "{pending:?}");
    // Every file the page loads, and every module those import, is this server's and served.
    let mut served = BTreeSet::from(["index.html".to_owned()]);
    while let Some(path) = pending.pop() {
        assert!(path.starts_with("/web/"), "{path} is not the server's own");
        let name = path.trim_start_matches("/web/").to_owned();
        if !served.insert(name.clone()) {
            continue;
        }
        let res = http
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        let kind = res.headers()["content-type"].to_str().unwrap().to_owned();
        let expected = match name.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            other => panic!("a client file of an unexpected kind: {other:?}"),
        };
        assert_eq!(kind, expected, "{path}");
        let text = res.text().await.unwrap();
        if name.ends_with(".js") {
            pending.extend(imports(&text));
            for outside in ["http://", "https://", "eval("] {
                assert!(!text.contains(outside), "{path} refers to {outside}");
            }
        }
    }
    // Every file of chat-server/web/ is reached from the page, so none is left out of the
    // binary or forgotten in the tree.
    assert_eq!(served, client_files());
}

#[tokio::test]
async fn web_client_files_revalidate_and_unknown_ones_are_not_found() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let url = format!("{}/web/app.js", server.base);
    let first = http.get(&url).send().await.unwrap();
    let etag = first.headers()["etag"].clone();
    let again = http
        .get(&url)
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["etag"], etag);
    assert!(again.text().await.unwrap().is_empty());
    let other = http
        .get(&url)
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);

    for path in [
        "/web/nothing.js",
        "/web/",
        "/web/../Cargo.toml",
        "/index.html",
    ] {
        let res = http
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["code"], "not_found");
    }
    let post = http.post(format!("{}/", server.base)).send().await.unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.headers()["allow"], "GET");
}
