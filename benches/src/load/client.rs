//! The server as the load generator sees it: a few calls of the HTTP API (API.md), and
//! WebSocket subscribers that tally the `message.created` frames of their room (posting over
//! their own socket on request), or only hold their connection open.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{stream, SinkExt, StreamExt, TryStreamExt};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
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
/// `POST /v1/rooms` names at most this many members (API.md); the rest are added one by one.
const MAX_INITIAL_MEMBERS: usize = 100;
/// Requests in flight while adding the members beyond [`MAX_INITIAL_MEMBERS`].
const ADD_MEMBER_CONCURRENCY: usize = 8;
/// tungstenite zeroes its whole read buffer (128 KiB by default) before every read; thousands
/// of sockets that receive small frames need far less.
const READ_BUFFER_BYTES: usize = 8 * 1024;

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

#[derive(Deserialize)]
struct HistoryPage {
    messages: Vec<SeqOnly>,
    has_more: bool,
}

/// One page of a room's history (`GET /v1/rooms/{id}/messages`).
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The seqs of its messages, as listed (ascending).
    pub seqs: Vec<u64>,
    /// More exist in the direction of paging.
    pub has_more: bool,
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

    async fn get<T: DeserializeOwned>(&self, path: &str, token: &str) -> Result<T, Error> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(format!("GET {path}: {status}: {text}").into());
        }
        Ok(response.json().await?)
    }

    /// The id of the user `token` belongs to; a host application's user is provisioned by
    /// this first use of its token.
    pub async fn me(&self, token: &str) -> Result<String, Error> {
        Ok(self.get::<IdOnly>("/v1/users/me", token).await?.id)
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

    /// Creates a room owned by `owner` with the users `members` (the first hundred named at
    /// creation, API.md's cap, the rest added one by one); returns its id. A public room's
    /// history is readable by every signed-in user.
    pub async fn create_room(
        &self,
        owner: &User,
        name: &str,
        members: &[String],
        public: bool,
    ) -> Result<String, Error> {
        let (initial, later) = members.split_at(members.len().min(MAX_INITIAL_MEMBERS));
        let visibility = if public { "public" } else { "private" };
        let room: IdOnly = self
            .post(
                "/v1/rooms",
                Some(&owner.token),
                &json!({"name": name, "members": initial, "visibility": visibility}),
            )
            .await?;
        stream::iter(later)
            .map(|id| self.add_member(owner, &room.id, id))
            .buffer_unordered(ADD_MEMBER_CONCURRENCY)
            .try_collect::<()>()
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
        let room: RoomSeq = self.get(&format!("/v1/rooms/{room}"), &user.token).await?;
        Ok(room.last_seq)
    }

    /// The newest `limit` messages of `room`, or with `before` the newest `limit` below that
    /// seq; an error is a short label, as with [`Api::send_message`].
    pub async fn history_page(
        &self,
        user: &User,
        room: &str,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Page, String> {
        let mut url = format!("{}/v1/rooms/{room}/messages?limit={limit}", self.base);
        if let Some(before) = before {
            url.push_str(&format!("&before={before}"));
        }
        let response = self
            .http
            .get(url)
            .bearer_auth(&user.token)
            .send()
            .await
            .map_err(|e| error_label(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("http {}", status.as_u16()));
        }
        match response.json::<HistoryPage>().await {
            Ok(page) => Ok(Page {
                seqs: page.messages.iter().map(|m| m.seq).collect(),
                has_more: page.has_more,
            }),
            Err(e) => Err(error_label(&e)),
        }
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

/// A message for a subscriber to post over its own socket (`message.send`), and where the
/// outcome goes: the seq of the `ack`, or a short label of what went wrong.
#[derive(Debug)]
pub struct WsSend {
    /// The room to post in.
    pub room: String,
    /// The body.
    pub body: String,
    /// The sender's key of the message, unique per run.
    pub client_id: String,
    /// Where the seq or the error goes.
    pub outcome: oneshot::Sender<Result<u64, String>>,
}

/// The frames the load generator reads; everything else is `Other`.
#[derive(Deserialize)]
#[serde(tag = "type")]
enum Frame {
    #[serde(rename = "ready")]
    Ready,
    #[serde(rename = "message.created")]
    Created { message: FrameMessage },
    #[serde(rename = "ack")]
    Ack {
        client_id: String,
        message: FrameMessage,
    },
    #[serde(rename = "error")]
    Error {
        code: String,
        #[serde(default)]
        client_id: Option<String>,
    },
    #[serde(other)]
    Other,
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

/// Opens a socket at `url` for each of `tokens`, `concurrency` handshakes at a time; the
/// results in the order of `tokens`.
pub async fn connect_each<'a>(
    url: &str,
    tokens: impl IntoIterator<Item = &'a str>,
    concurrency: usize,
) -> Vec<Result<Subscriber, Error>> {
    stream::iter(tokens)
        .map(|token| Subscriber::connect(url, token))
        .buffered(concurrency)
        .collect()
        .await
}

/// The frame an item of the stream holds, or why the connection ended.
fn frame_or_end(
    item: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
) -> Result<Message, String> {
    match item {
        Some(Ok(Message::Close(close))) => Err(close.map_or_else(
            || "closed without a code".into(),
            |c| format!("closed {} {}", u16::from(c.code), c.reason),
        )),
        Some(Ok(frame)) => Ok(frame),
        Some(Err(e)) => Err(format!("error: {e}")),
        None => Err("connection ended".into()),
    }
}

/// The next message to post, or never when there is no outbox (or it is closed).
async fn next_send(outbox: &mut Option<mpsc::Receiver<WsSend>>) -> Option<WsSend> {
    match outbox {
        Some(outbox) => outbox.recv().await,
        None => std::future::pending().await,
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
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
        let connect = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
        let (mut socket, _) = timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| format!("{url}: no WebSocket handshake within {CONNECT_TIMEOUT:?}"))??;
        let ready = async {
            loop {
                if let Message::Text(text) = frame_or_end(socket.next().await)? {
                    if let Frame::Ready = serde_json::from_str(&text)? {
                        return Ok(());
                    }
                }
            }
        };
        timeout(READY_TIMEOUT, ready)
            .await
            .map_err(|_| format!("{url}: no `ready` within {READY_TIMEOUT:?}"))?
            .map_err(|e: Error| format!("{url}: before `ready`: {e}"))?;
        Ok(Self { socket })
    }

    /// Tallies the `message.created` frames of `room` until shortly after every seq up to the
    /// target (once `target` holds one) has arrived, or until `deadline`, or until the server
    /// closes the connection. Meanwhile it posts what `outbox` brings over this socket and
    /// reports each `ack` (or `error`) to its sender.
    pub async fn receive(
        mut self,
        room: &str,
        mut target: watch::Receiver<Option<u64>>,
        deadline: Instant,
        mut outbox: Option<mpsc::Receiver<WsSend>>,
    ) -> Tally {
        let mut tally = Tally::new(room);
        // Posted over this socket, not acked yet, by client_id.
        let mut pending = HashMap::new();
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
                send = next_send(&mut outbox) => {
                    match send {
                        Some(send) => self.post(send, &mut pending).await,
                        None => outbox = None,
                    }
                    continue;
                }
                () = sleep_until(until) => break,
            };
            // Taken before parsing, so the latency does not include the client's own work.
            let received_us = unix_micros();
            let text = match frame_or_end(frame) {
                Ok(Message::Text(text)) => text,
                // Pings are answered by tungstenite itself; binary frames are not in the API.
                Ok(_) => continue,
                Err(reason) => {
                    tally.closed = Some(reason);
                    break;
                }
            };
            match serde_json::from_str::<Frame>(&text) {
                Ok(Frame::Created { message: m }) if m.room_id == room => {
                    let sent_us = m.body.as_deref().and_then(parse_stamp);
                    tally.record(m.seq, sent_us, received_us);
                }
                Ok(Frame::Ack { client_id, message }) => {
                    if let Some(outcome) = pending.remove(&client_id) {
                        // The sender may have given up waiting; nothing to tell then.
                        let _ = outcome.send(Ok(message.seq));
                    }
                }
                Ok(Frame::Error {
                    code,
                    client_id: Some(client_id),
                }) => {
                    if let Some(outcome) = pending.remove(&client_id) {
                        let _ = outcome.send(Err(format!("ws {code}")));
                    }
                }
                Ok(_) => {}
                Err(_) => tally.unparsed += 1,
            }
        }
        if tally.closed.is_none() {
            // Best effort: the server drops the session either way.
            let _ = timeout(CLOSE_TIMEOUT, self.socket.close(None)).await;
        }
        tally
    }

    /// Writes `send` as a `message.send` frame; its outcome comes with the `ack`.
    async fn post(
        &mut self,
        send: WsSend,
        pending: &mut HashMap<String, oneshot::Sender<Result<u64, String>>>,
    ) {
        let frame = json!({
            "type": "message.send",
            "room_id": send.room,
            "client_id": send.client_id,
            "body": send.body,
        });
        match self.socket.send(Message::text(frame.to_string())).await {
            Ok(()) => {
                pending.insert(send.client_id, send.outcome);
            }
            Err(e) => {
                let _ = send.outcome.send(Err(format!("ws write: {e}")));
            }
        }
    }

    /// Keeps the connection open until `until`, reading (and so answering the server's pings)
    /// and dropping what arrives; returns why it ended early, if it did.
    pub async fn hold(mut self, until: Instant) -> Option<String> {
        loop {
            let frame = tokio::select! {
                frame = self.socket.next() => frame,
                () = sleep_until(until) => break,
            };
            if let Err(reason) = frame_or_end(frame) {
                return Some(reason);
            }
        }
        let _ = timeout(CLOSE_TIMEOUT, self.socket.close(None)).await;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_by_type() {
        let ready = r#"{"type":"ready","user":{"id":"u"},"rooms":[]}"#;
        assert!(matches!(serde_json::from_str(ready), Ok(Frame::Ready)));
        let created = r#"{"type":"message.created","message":{"room_id":"r","seq":3,"body":"t=1 n=0","x":1}}"#;
        assert!(matches!(
            serde_json::from_str(created),
            Ok(Frame::Created { message }) if message.seq == 3 && message.room_id == "r"
        ));
        let ack = r#"{"type":"ack","client_id":"c","message":{"room_id":"r","seq":4,"body":null}}"#;
        assert!(
            matches!(serde_json::from_str(ack), Ok(Frame::Ack { client_id, .. }) if client_id == "c")
        );
        // An error's `message` is text, unlike the other frames'.
        let error =
            r#"{"type":"error","code":"rate_limited","message":"slow down","client_id":"c"}"#;
        assert!(matches!(
            serde_json::from_str(error),
            Ok(Frame::Error { code, client_id: Some(_) }) if code == "rate_limited"
        ));
        let presence = r#"{"type":"presence","user_id":"u","status":"online"}"#;
        assert!(matches!(serde_json::from_str(presence), Ok(Frame::Other)));
    }
}
