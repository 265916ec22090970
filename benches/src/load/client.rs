//! The server as the load generator sees it: a few calls of the HTTP API (API.md) and
//! WebSocket subscribers that tally the `message.created` frames of one room.

use std::time::Duration;

use futures_util::StreamExt;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::stats::{parse_stamp, unix_micros, Tally};

/// Errors of setup steps, reported to the user as text.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Every generated user gets this password (API.md: 8 characters or more).
pub const PASSWORD: &str = "load-generator-password";

/// Eight hex digits that keep one run's users (`load-<run id>-...`) apart from earlier runs' on
/// the same server.
pub fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// A server that does not accept a TCP connection within this time is not going to.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The server sends `ready` right after the upgrade; waiting longer means it is stuck.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Closing politely must not hold up the report.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a receiver that has every seq keeps listening, to catch late duplicates.
const LINGER: Duration = Duration::from_millis(500);

/// The HTTP API of one server node.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct User {
    /// The user's id.
    pub id: String,
    /// The access token (`Authorization: Bearer`).
    pub token: String,
}

#[derive(Deserialize)]
struct Login {
    access_token: String,
    user: IdOnly,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Deserialize)]
struct SeqOnly {
    seq: u64,
}

#[derive(Deserialize)]
struct RoomSeq {
    last_seq: u64,
}

impl Api {
    /// A client of the server at `base` (`http://host:port`). `connections` is how many
    /// keep-alive connections the pool keeps (one per concurrent request); `request_timeout`
    /// bounds every request, so no step can hang.
    pub fn new(base: &str, connections: usize, request_timeout: Duration) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(request_timeout)
            .pool_max_idle_per_host(connections)
            // Small requests back to back: Nagle's algorithm would only add delay.
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// The HTTP client, for requests this module has no method for.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The absolute URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<T, Error> {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(format!("POST {path}: {status}: {text}").into());
        }
        Ok(response.json().await?)
    }

    /// Registers `username` and logs in.
    pub async fn register_and_login(&self, username: &str, password: &str) -> Result<User, Error> {
        let _: IgnoredAny = self
            .post(
                "/v1/auth/register",
                None,
                &json!({"username": username, "password": password}),
            )
            .await?;
        let login: Login = self
            .post(
                "/v1/auth/login",
                None,
                &json!({"login": username, "password": password}),
            )
            .await?;
        Ok(User {
            id: login.user.id,
            token: login.access_token,
        })
    }

    /// Creates a private room owned by `owner` with `members` (at most 100, API.md); returns
    /// its id.
    pub async fn create_room(
        &self,
        owner: &User,
        name: &str,
        members: &[String],
    ) -> Result<String, Error> {
        let room: IdOnly = self
            .post(
                "/v1/rooms",
                Some(&owner.token),
                &json!({"name": name, "members": members}),
            )
            .await?;
        Ok(room.id)
    }

    /// Adds `user_id` to `room` as a member; `owner` must own it.
    pub async fn add_member(&self, owner: &User, room: &str, user_id: &str) -> Result<(), Error> {
        let _: IgnoredAny = self
            .post(
                &format!("/v1/rooms/{room}/members"),
                Some(&owner.token),
                &json!({"user_id": user_id}),
            )
            .await?;
        Ok(())
    }

    /// The room's newest seq.
    pub async fn last_seq(&self, user: &User, room: &str) -> Result<u64, Error> {
        let response = self
            .http
            .get(format!("{}/v1/rooms/{room}", self.base))
            .bearer_auth(&user.token)
            .send()
            .await?
            .error_for_status()?;
        Ok(response.json::<RoomSeq>().await?.last_seq)
    }

    /// Posts a message; returns its seq, or a short label of what went wrong (an HTTP status,
    /// `timeout`, `connect`, ...) under which the report counts the error.
    pub async fn send_message(
        &self,
        user: &User,
        room: &str,
        body: &str,
        client_id: &str,
    ) -> Result<u64, String> {
        let response = self
            .http
            .post(format!("{}/v1/rooms/{room}/messages", self.base))
            .bearer_auth(&user.token)
            .json(&json!({"body": body, "client_id": client_id}))
            .send()
            .await
            .map_err(|e| error_label(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("http {}", status.as_u16()));
        }
        match response.json::<SeqOnly>().await {
            Ok(message) => Ok(message.seq),
            Err(e) => Err(error_label(&e)),
        }
    }
}

fn error_label(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else if e.is_decode() {
        "bad response body".into()
    } else {
        "transport".into()
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket connection that has received its `ready` frame.
#[derive(Debug)]
pub struct Subscriber {
    socket: Socket,
}

#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    message: Option<FrameMessage>,
}

#[derive(Deserialize)]
struct FrameMessage {
    room_id: String,
    seq: u64,
    body: Option<String>,
}

/// The WebSocket URL of the server at `base` (`http://host:port`). Only plain HTTP: the
/// generator is built without TLS, and measures servers on this machine.
pub fn ws_url(base: &str) -> Result<String, Error> {
    match base.trim_end_matches('/').split_once("://") {
        Some(("http", rest)) => Ok(format!("ws://{rest}/v1/ws")),
        _ => Err(format!("{base}: only http:// URLs are supported").into()),
    }
}

impl Subscriber {
    /// Opens the WebSocket at `url` (see [`ws_url`]) as the holder of `token` and waits for
    /// `ready`, so that no message sent afterwards can be missed.
    pub async fn connect(url: &str, token: &str) -> Result<Self, Error> {
        let mut request = url.into_client_request()?;
        request
            .headers_mut()
            .insert(AUTHORIZATION, format!("Bearer {token}").parse()?);
        let connect = tokio_tungstenite::connect_async_with_config(request, None, true);
        let (mut socket, _) = timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| format!("{url}: no WebSocket handshake within {CONNECT_TIMEOUT:?}"))??;
        let ready = async {
            while let Some(frame) = socket.next().await {
                if let Message::Text(text) = frame? {
                    let frame: Frame = serde_json::from_str(&text)?;
                    if frame.kind == "ready" {
                        return Ok(());
                    }
                }
            }
            Err::<(), Error>("the connection closed before `ready`".into())
        };
        timeout(READY_TIMEOUT, ready)
            .await
            .map_err(|_| format!("{url}: no `ready` within {READY_TIMEOUT:?}"))??;
        Ok(Self { socket })
    }

    /// Tallies the `message.created` frames of `room` until shortly after every seq up to the
    /// target (once `target` holds one) has arrived, or until `deadline`, or until the server
    /// closes the connection.
    pub async fn receive(
        mut self,
        room: &str,
        mut target: watch::Receiver<Option<u64>>,
        deadline: Instant,
    ) -> Tally {
        let mut tally = Tally::default();
        // Once the sender is gone `changed()` fails at once; polling it then would spin.
        let mut target_open = true;
        let mut until = deadline;
        loop {
            if until > Instant::now() + LINGER
                && target.borrow().is_some_and(|t| tally.unique() >= t)
            {
                until = Instant::now() + LINGER;
            }
            let frame = tokio::select! {
                frame = self.socket.next() => frame,
                // Re-check the target at the top of the loop.
                changed = target.changed(), if target_open => {
                    target_open = changed.is_ok();
                    continue;
                }
                () = sleep_until(until) => break,
            };
            // Taken before parsing, so the latency does not include the client's own work.
            let received_us = unix_micros();
            let text = match frame {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(close))) => {
                    tally.closed = Some(close.map_or_else(
                        || "closed without a code".into(),
                        |c| format!("closed {} {}", u16::from(c.code), c.reason),
                    ));
                    break;
                }
                // Pings are answered by tungstenite itself; binary frames are not in the API.
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    tally.closed = Some(format!("error: {e}"));
                    break;
                }
                None => {
                    tally.closed = Some("connection ended".into());
                    break;
                }
            };
            let Ok(frame) = serde_json::from_str::<Frame>(&text) else {
                tally.unparsed += 1;
                continue;
            };
            if let (Some(m), "message.created") = (frame.message, frame.kind.as_str()) {
                if m.room_id == room {
                    let sent_us = m.body.as_deref().and_then(parse_stamp);
                    tally.record(m.seq, sent_us, received_us);
                }
            }
        }
        if tally.closed.is_none() {
            // Best effort: the server drops the session either way.
            let _ = timeout(CLOSE_TIMEOUT, self.socket.close(None)).await;
        }
        tally
    }
}
