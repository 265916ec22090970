//! A real server on a random port, and HTTP and WebSocket clients for it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chat_server::{Config, RunningServer};
use chat_store_postgres::{PgOptions, PgStore};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The JWT secret of test servers (tests craft tokens with it).
pub(crate) const SECRET: &str = "test-secret-test-secret-test-secret!";

/// How long a test waits for a frame before failing.
pub(crate) const FRAME_WAIT: Duration = Duration::from_secs(10);

pub(crate) struct TestServer {
    server: Option<RunningServer>,
    dir: Option<TempDir>,
    /// The PostgreSQL database the server runs on, dropped after the server.
    database: Option<Database>,
    pub(crate) base: String,
    pub(crate) ws_url: String,
    http: reqwest::Client,
}

pub(crate) struct TestUser {
    pub(crate) id: String,
    pub(crate) token: String,
}

impl TestServer {
    pub(crate) async fn start() -> TestServer {
        Self::start_in(tempfile::tempdir().expect("temp dir"), |_| {}).await
    }

    pub(crate) async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        Self::start_in(tempfile::tempdir().expect("temp dir"), tweak).await
    }

    /// Starts a server whose data lives in `dir`.
    pub(crate) async fn start_in(dir: TempDir, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = Config::defaults();
        config.addr = "127.0.0.1:0".parse().unwrap();
        config.data_dir = dir.path().to_path_buf();
        config.database_url = None;
        config.jwt_secret = Some(SECRET.into());
        // Tests post far faster than any person; the limits have their own test.
        config.rate_limits = "off".into();
        tweak(&mut config);
        let server = chat_server::start(config).await.expect("server starts");
        let addr = server.addr();
        TestServer {
            server: Some(server),
            dir: Some(dir),
            database: None,
            base: format!("http://{addr}"),
            ws_url: format!("ws://{addr}/v1/ws"),
            http: reqwest::Client::new(),
        }
    }

    /// The server's data directory.
    pub(crate) fn data_dir(&self) -> &std::path::Path {
        self.dir.as_ref().expect("data dir").path()
    }

    /// A server on each backend: SQLite, and PostgreSQL when `CHAT_TEST_POSTGRES_URL` is set.
    pub(crate) async fn on_each_backend() -> Vec<(&'static str, TestServer)> {
        Self::on_each_backend_with(|_| {}).await
    }

    /// [`TestServer::on_each_backend`], each configured by `tweak` too.
    pub(crate) async fn on_each_backend_with(
        tweak: impl Fn(&mut Config),
    ) -> Vec<(&'static str, TestServer)> {
        let mut servers = Vec::new();
        for backend in ["sqlite", "postgres"] {
            if let Some(server) = Self::start_on(backend, &tweak).await {
                servers.push((backend, server));
            }
        }
        servers
    }

    /// A server on `backend` (`sqlite`, or `postgres` on a temporary database of its own;
    /// `None`, saying so, without `CHAT_TEST_POSTGRES_URL`), configured by `tweak`.
    pub(crate) async fn start_on(backend: &str, tweak: impl Fn(&mut Config)) -> Option<TestServer> {
        if backend == "sqlite" {
            return Some(Self::start_with(tweak).await);
        }
        let db = database().await?;
        let url = db.url.clone();
        let mut server = Self::start_with(|c| {
            tweak(c);
            c.database_url = Some(url);
        })
        .await;
        server.database = Some(db);
        Some(server)
    }

    /// Stops the server gracefully and hands back its data directory.
    pub(crate) async fn stop(mut self) -> TempDir {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        self.dir.take().expect("data dir")
    }

    pub(crate) async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let text = res.text().await.expect("body read");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body, got {text:?}"))
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            panic!("the server answered 500 to {path}: {value}");
        }
        (status, value)
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.request(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        self.request(reqwest::Method::POST, path, token, Some(&body.to_string()))
            .await
    }

    pub(crate) async fn register(&self, name: &str) -> TestUser {
        let (status, user) = self
            .post(
                "/v1/auth/register",
                None,
                json!({"username": name, "password": "password-123"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{user}");
        let token = self.login(name).await;
        TestUser {
            id: user["id"].as_str().unwrap().to_owned(),
            token,
        }
    }

    pub(crate) async fn login(&self, name: &str) -> String {
        let (status, body) = self
            .post(
                "/v1/auth/login",
                None,
                json!({"login": name, "password": "password-123"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Creates a private room owned by `owner` with `members`, returning its id.
    pub(crate) async fn room(&self, owner: &TestUser, members: &[&TestUser]) -> String {
        let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        let (status, room) = self
            .post(
                "/v1/rooms",
                Some(&owner.token),
                json!({"name": "room", "members": ids}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{room}");
        room["id"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn send(&self, user: &TestUser, room: &str, body: &str) -> Value {
        let (status, message) = self
            .post(
                &format!("/v1/rooms/{room}/messages"),
                Some(&user.token),
                json!({ "body": body }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{message}");
        message
    }

    /// The whole history of a room, paged with `after`.
    pub(crate) async fn history(&self, user: &TestUser, room: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let (status, page) = self
                .get(
                    &format!("/v1/rooms/{room}/messages?after={after}&limit=100"),
                    &user.token,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let messages = page["messages"].as_array().unwrap().clone();
            if let Some(last) = messages.last() {
                after = last["seq"].as_i64().unwrap();
            }
            all.extend(messages);
            if !page["has_more"].as_bool().unwrap() {
                return all;
            }
        }
    }

    pub(crate) async fn ws(&self, token: &str) -> Ws {
        self.ws_with_receive_buffer(token, None).await
    }

    /// A socket whose kernel receive buffer is fixed at `bytes` (which turns off the kernel's
    /// autotuning), so a client that stops reading backs up into the server quickly.
    pub(crate) async fn ws_with_receive_buffer(&self, token: &str, bytes: Option<u32>) -> Ws {
        Ws::connect(&self.base, token, bytes).await
    }
}

/// A temporary database (dropped with the store) and the URL nodes use to reach it.
pub(crate) struct Database {
    pub(crate) store: PgStore,
    pub(crate) url: String,
}

pub(crate) async fn database() -> Option<Database> {
    let Ok(admin) = std::env::var("CHAT_TEST_POSTGRES_URL") else {
        eprintln!("skipped: CHAT_TEST_POSTGRES_URL is not set");
        return None;
    };
    let store = PgStore::open_temporary(&admin, PgOptions::default())
        .await
        .expect("temporary database");
    let (name,): (String,) = sqlx::query_as("SELECT current_database()")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let (base, params) = match admin.split_once('?') {
        Some((base, params)) => (base, format!("&{params}")),
        None => (admin.as_str(), String::new()),
    };
    let server = base
        .rsplit_once('/')
        .map(|(server, _)| server)
        .unwrap_or(base);
    Some(Database {
        url: format!("{server}/{name}?sslmode=disable{params}"),
        store,
    })
}

/// A WebSocket client speaking the JSON protocol.
pub(crate) struct Ws {
    pub(crate) stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    /// Connects to the server at `base` (`http://host:port`) and reads its `ready` frame.
    pub(crate) async fn connect(base: &str, token: &str, receive_buffer: Option<u32>) -> Ws {
        let addr = base.trim_start_matches("http://");
        let mut request = format!("ws://{addr}/v1/ws").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        if let Some(bytes) = receive_buffer {
            socket.set_recv_buffer_size(bytes).unwrap();
        }
        let tcp = socket
            .connect(addr.parse().unwrap())
            .await
            .expect("tcp connects");
        let (stream, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp))
            .await
            .expect("websocket connects");
        let mut ws = Ws { stream };
        let ready = ws.next().await;
        assert_eq!(ready["type"], "ready", "{ready}");
        ws
    }

    /// The next JSON frame, presence aside (users coming and going; `next_of("presence")`
    /// reads those); fails after [`FRAME_WAIT`].
    pub(crate) async fn next(&mut self) -> Value {
        loop {
            let frame = self.next_any().await;
            if frame["type"] != "presence" {
                return frame;
            }
        }
    }

    /// The next JSON frame of any type (control frames skipped).
    pub(crate) async fn next_any(&mut self) -> Value {
        self.next_any_within(FRAME_WAIT).await
    }

    /// The next JSON frame of any type, waiting at most `wait`.
    pub(crate) async fn next_any_within(&mut self, wait: Duration) -> Value {
        loop {
            let frame = tokio::time::timeout(wait, self.stream.next())
                .await
                .expect("a frame within the wait")
                .expect("the socket is open")
                .expect("a valid frame");
            match frame {
                Message::Text(text) => return serde_json::from_str(&text).expect("JSON frame"),
                Message::Close(close) => panic!("socket closed: {close:?}"),
                _ => continue,
            }
        }
    }

    /// The next frame of the given type, skipping others.
    pub(crate) async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next_any().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    pub(crate) async fn send(&mut self, frame: Value) {
        self.stream
            .send(Message::text(frame.to_string()))
            .await
            .expect("frame sent");
    }

    /// Pings and returns every frame (presence included) that arrived before the pong: what
    /// the server had queued for this socket until then.
    pub(crate) async fn drain(&mut self) -> Vec<Value> {
        self.send(json!({"type": "ping"})).await;
        let mut before = Vec::new();
        loop {
            let frame = self.next_any().await;
            if frame["type"] == "pong" {
                return before;
            }
            before.push(frame);
        }
    }

    /// Waits for the server to close the socket; returns the close code.
    pub(crate) async fn closed(&mut self) -> Option<u16> {
        loop {
            let frame = tokio::time::timeout(FRAME_WAIT, self.stream.next())
                .await
                .expect("the server closes within the wait");
            match frame {
                Some(Ok(Message::Close(close))) => return close.map(|c| u16::from(c.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }
}

/// The sign-in session (`sid`) an access token of the server names, read from its payload:
/// tokens forged for a test must name a live session to pass.
pub(crate) fn session_of(token: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).unwrap();
    claims["sid"].as_str().expect("a sid claim").to_owned()
}

/// The seqs of a list of messages.
pub(crate) fn seqs(messages: &[Value]) -> Vec<i64> {
    messages
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect()
}

/// The `chat-server` binary running as a process of its own.
pub(crate) struct Program {
    child: Child,
    pub(crate) base: String,
    /// Everything it has logged so far (standard output).
    log: std::sync::Arc<std::sync::Mutex<String>>,
    /// The thread reading the log; it ends when the process does.
    drain: Option<std::thread::JoinHandle<()>>,
}

impl Program {
    /// Runs the binary in `dir` (its `./data` is `dir/data`), on a free port, with nothing
    /// configured but `env`.
    pub(crate) fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Program {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .current_dir(dir)
            .env_clear()
            .env("CHAT_ADDR", "127.0.0.1:0")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("the server logs where it listens")
                .unwrap();
            if let Some(at) = line.find("listening on http://") {
                // The address ends at a space in text lines, at a quote in JSON ones.
                let rest = &line[at + "listening on ".len()..];
                break rest
                    .split(|c: char| c.is_whitespace() || c == '"')
                    .next()
                    .unwrap()
                    .to_owned();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe, and keep it for
        // tests that read what was logged.
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let kept = log.clone();
        let drain = std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut kept = kept.lock().unwrap();
                kept.push_str(&line);
                kept.push('\n');
            }
        });
        Program {
            child,
            base,
            log,
            drain: Some(drain),
        }
    }

    /// What the server has logged so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The process id (for reading its memory from /proc).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        for _ in 0..100 {
            if let Some(exit) = self.child.try_wait().unwrap() {
                // The whole log is in once the reader saw the pipe close.
                if let Some(drain) = self.drain.take() {
                    let _ = drain.join();
                }
                return exit;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the server did not stop within 10 s of SIGTERM");
    }
}

impl Program {
    /// Kills the process at once, as a crash would.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // A failing test must not leave a server running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A memory figure of process `pid` from `/proc/<pid>/status` (`VmRSS`: resident now, `VmHWM`:
/// the peak), in KiB.
pub(crate) fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// A user of a server reached by URL (a [`Program`]).
#[derive(Clone)]
pub(crate) struct RemoteUser {
    pub(crate) id: String,
    pub(crate) token: String,
}

/// The HTTP API of a server reached by URL, such as a [`Program`] that a test may kill.
#[derive(Clone)]
pub(crate) struct Remote {
    pub(crate) base: String,
    http: reqwest::Client,
}

impl Remote {
    pub(crate) fn new(base: &str) -> Remote {
        Remote {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// A `GET` that must answer `200`.
    pub(crate) async fn get(&self, path: &str, token: &str) -> Value {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent");
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        res.json().await.expect("JSON body")
    }

    /// Registers `name` (password `password-123`) and logs in.
    pub(crate) async fn user(&self, name: &str) -> RemoteUser {
        let creds = json!({"username": name, "password": "password-123"});
        let (status, created) = self.post("/v1/auth/register", None, creds).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let login = json!({"login": name, "password": "password-123"});
        let (status, body) = self.post("/v1/auth/login", None, login).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        RemoteUser {
            id: created["id"].as_str().unwrap().to_owned(),
            token: body["access_token"].as_str().unwrap().to_owned(),
        }
    }

    /// A private room of `owner` with `members`.
    pub(crate) async fn room(&self, owner: &RemoteUser, members: &[&RemoteUser]) -> String {
        let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        let body = json!({"name": "shared", "members": ids});
        let (status, room) = self.post("/v1/rooms", Some(&owner.token), body).await;
        assert_eq!(status, StatusCode::CREATED, "{room}");
        room["id"].as_str().unwrap().to_owned()
    }

    /// A room's whole history, paged with `after`.
    pub(crate) async fn history(&self, token: &str, room: &str) -> Vec<Value> {
        let mut all: Vec<Value> = Vec::new();
        loop {
            let after = all.last().map_or(0, |m| m["seq"].as_i64().unwrap());
            let path = format!("/v1/rooms/{room}/messages?after={after}&limit=100");
            let page = self.get(&path, token).await;
            all.extend(
                page["messages"]
                    .as_array()
                    .expect("messages")
                    .iter()
                    .cloned(),
            );
            if page["has_more"] != true {
                return all;
            }
        }
    }
}

/// A seeded generator (SplitMix64): a few lines, the same sequence on every platform, so a
/// test's random choices repeat from run to run for one seed.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// A generator of its own for a task, so tasks do not share one.
    pub(crate) fn fork(&mut self) -> Rng {
        Rng(self.next())
    }
}
