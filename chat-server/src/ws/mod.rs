//! The WebSocket protocol of API.md on top of [`chat_core::Session`]: one connection carries
//! every room of the user. Frames are JSON text; limits on inbound frame size, the outbound
//! queue (in the session) and idle time are explicit settings.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chat_core::auth::Identity;
use chat_core::domain::{RoomId, User};
use chat_core::engine::{SendMessage, SessionEnd, SyncSince, SyncedRoom};
use chat_core::{ChatEngine, ChatError, Session};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;
use warp::filters::ws::Ws;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::connections::Upgrade;
use crate::error::{error_response, one_line, status_and_code};
use crate::http::{authenticated, bearer, query, respond, with_engine, Query};
use crate::metrics::Metrics;
use crate::State;

mod transport;

use transport::{Broken, Frame, Inbound};

/// Close codes the server uses.
mod close {
    pub(super) const GOING_AWAY: u16 = 1001;
    pub(super) const PROTOCOL_ERROR: u16 = 1002;
    pub(super) const INVALID_DATA: u16 = 1007;
    pub(super) const POLICY: u16 = 1008;
    pub(super) const TOO_BIG: u16 = 1009;
    pub(super) const INTERNAL: u16 = 1011;
    pub(super) const SIGNED_OUT: u16 = 4001;
    pub(super) const SLOW_CONSUMER: u16 = 4008;
}

/// `POST /v1/ws/ticket`: a single-use ticket for opening the WebSocket without headers.
pub(crate) fn ticket_route(state: &State) -> BoxedFilter<(Response,)> {
    warp::path!("v1" / "ws" / "ticket")
        .and(warp::post())
        .and(with_engine(state))
        .and(authenticated(state))
        .then(|engine: ChatEngine, who: Identity| async move {
            respond(StatusCode::OK, engine.ws_ticket(who).await)
        })
        .boxed()
}

/// `GET /v1/ws`: authenticates before the upgrade (`401`), checks the browser `Origin`
/// (`403`), then runs the protocol.
pub(crate) fn route(state: &State) -> BoxedFilter<(Response,)> {
    let state = state.clone();
    warp::path!("v1" / "ws")
        .and(warp::get())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("sec-websocket-protocol"))
        .and(warp::header::optional::<String>("origin"))
        .and(warp::header::optional::<String>("host"))
        .and(query())
        .and(warp::ws())
        .and(warp::header::<String>("sec-websocket-key"))
        .and(warp::ext::optional::<Upgrade>())
        .then(
            move |authorization: Option<String>,
                  protocols: Option<String>,
                  origin: Option<String>,
                  host: Option<String>,
                  q: Query,
                  ws: Ws,
                  key: String,
                  upgrade: Option<Upgrade>| {
                let state = state.clone();
                async move {
                    if !origin_allowed(origin.as_deref(), host.as_deref(), &state) {
                        return error_response(&ChatError::Forbidden("origin not allowed"));
                    }
                    // A browser cannot set headers on a WebSocket, so it may send the token as
                    // the second subprotocol; the server then answers with `bearer`.
                    let from_protocol = protocols.as_deref().and_then(|p| {
                        let mut parts = p.split(',').map(str::trim);
                        (parts.next() == Some("bearer"))
                            .then(|| parts.next())
                            .flatten()
                    });
                    // In the contract's order of preference: the header, a ticket, the
                    // subprotocol, then `?token=`.
                    let header = bearer(authorization.as_deref());
                    let identity = match (header, q.text("ticket")) {
                        (None, Some(ticket)) => state.engine.redeem_ws_ticket(ticket).await,
                        _ => match header.or(from_protocol).or(q.text("token")) {
                            Some(token) => state.engine.authenticate(token).await,
                            None => Err(ChatError::Unauthorized),
                        },
                    };
                    let identity = match identity
                        .and_then(|who| state.engine.may_connect(who.user).map(|()| who))
                    {
                        Ok(identity) => identity,
                        Err(e) => return error_response(&e),
                    };
                    let limit = state.settings.ws_max_frame_bytes;
                    let protocol = from_protocol.map(|_| "bearer");
                    // Under `crate::serve` the upgrade is ours to take; under `warp::serve`,
                    // warp's.
                    if let Some(upgrade) = upgrade.as_ref().and_then(Upgrade::take) {
                        tokio::spawn(async move {
                            match transport::upgraded(upgrade, limit).await {
                                Ok(socket) => serve(socket, state, identity).await,
                                Err(e) => tracing::debug!(error = %e, "WebSocket upgrade failed"),
                            }
                        });
                        return transport::switching_protocols(&key, protocol);
                    }
                    let upgrade = ws
                        .max_frame_size(limit)
                        .max_message_size(limit)
                        .on_upgrade(move |socket| serve(socket, state, identity));
                    match protocol {
                        Some(protocol) => {
                            warp::reply::with_header(upgrade, "sec-websocket-protocol", protocol)
                                .into_response()
                        }
                        None => upgrade.into_response(),
                    }
                }
            },
        )
        .boxed()
}

/// Same-origin requests and those without `Origin` (not from a browser) pass; others must be
/// listed in `CHAT_ALLOWED_ORIGINS`.
fn origin_allowed(origin: Option<&str>, host: Option<&str>, state: &State) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    let same_origin = host.is_some_and(|host| {
        origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest.trim_end_matches('/') == host)
    });
    same_origin
        || state
            .settings
            .allowed_origins
            .iter()
            .any(|allowed| allowed.trim_end_matches('/') == origin.trim_end_matches('/'))
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum Out<'a> {
    #[serde(rename = "ready")]
    Ready {
        user: &'a User,
        rooms: &'a [chat_core::domain::RoomPosition],
    },
    #[serde(rename = "ack")]
    Ack {
        client_id: &'a str,
        message: &'a chat_core::domain::Message,
    },
    #[serde(rename = "synced")]
    Synced {
        rooms: &'a BTreeMap<RoomId, SyncedRoom>,
    },
    #[serde(rename = "pong")]
    Pong,
    #[serde(rename = "error")]
    Error {
        code: &'static str,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        room_id: Option<&'a str>,
    },
}

impl Out<'_> {
    fn text<M: Frame>(&self) -> M {
        match serde_json::to_string(self) {
            Ok(json) => M::text(json),
            // Replies hold only strings, numbers and ids: serialization cannot fail.
            Err(e) => unreachable!("reply serialization failed: {e}"),
        }
    }
}

fn error_frame<M: Frame>(e: &ChatError, client_id: Option<&str>, room_id: Option<&str>) -> M {
    Out::Error {
        code: status_and_code(e).1,
        message: one_line(e),
        client_id,
        room_id,
    }
    .text()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendFrame {
    room_id: String,
    client_id: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    reply_to: Option<String>,
    #[serde(default)]
    thread_id: Option<String>,
    #[serde(default)]
    attachment_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkFrame {
    room_id: String,
    seq: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypingFrame {
    room_id: String,
    typing: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncFrame {
    rooms: BTreeMap<String, SyncSince>,
}

/// Runs one connection until the client leaves, the session is cut, or the server stops.
async fn serve<S, M, E>(socket: S, state: State, identity: Identity)
where
    S: Stream<Item = Result<M, E>> + Sink<M> + Send + Unpin,
    M: Frame,
    E: Broken,
{
    let (mut tx, mut rx) = socket.split();
    let engine = state.engine.clone();
    let opened = async {
        let me = engine.me(identity.user).await?;
        let session = engine.connect(identity).await?;
        Ok::<_, ChatError>((me, session))
    };
    let (me, mut session) = match opened.await {
        Ok(opened) => opened,
        // Another connection of the user's took the last place since the check before
        // the upgrade.
        Err(ChatError::RateLimited { .. }) => {
            let _ = tx
                .send(M::close(close::POLICY, "too many connections"))
                .await;
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "opening a live session failed");
            let _ = tx.send(M::close(close::INTERNAL, "try again")).await;
            return;
        }
    };
    let ready = Out::Ready {
        user: &me,
        rooms: session.positions(),
    };
    let idle = state.settings.ws_ping_interval;
    if !write(&mut tx, ready.text(), idle).await {
        return;
    }
    let mut shutdown: watch::Receiver<bool> = state.shutdown.clone();
    let mut ticks = tokio::time::interval(
        idle.min(Duration::from_secs(5))
            .max(Duration::from_millis(100)),
    );
    let mut last_heard = Instant::now();
    let mut ping_sent: Option<Instant> = None;
    // Sign-outs close sockets at once through the hub; this periodic look at the store also
    // catches one whose bus hint was lost.
    let mut session_checked = Instant::now();
    let end: Option<(u16, &'static str)> = loop {
        tokio::select! {
            frame = session.next_frame() => match frame {
                Ok(json) => {
                    if !write(&mut tx, M::text(String::from(&*json)), idle).await {
                        // A client that takes no bytes for that long is not reading at all.
                        state.metrics.write_timed_out();
                        break Some((close::SLOW_CONSUMER, "slow consumer"));
                    }
                }
                Err(SessionEnd::SlowConsumer) => break Some((close::SLOW_CONSUMER, "slow consumer")),
                Err(SessionEnd::SignedOut) => break Some((close::SIGNED_OUT, "signed out")),
                Err(SessionEnd::Closed) => break Some((close::GOING_AWAY, "server shutting down")),
            },
            incoming = rx.next() => match incoming {
                None => break None,
                Some(Err(e)) => break e.close_code(),
                Some(Ok(message)) => {
                    last_heard = Instant::now();
                    ping_sent = None;
                    let replies = match message.inbound() {
                        Inbound::Close => break None,
                        Inbound::Text(text) => handle(text, &engine, &mut session, &state.metrics).await,
                        Inbound::Binary => vec![error_frame(&ChatError::BadRequest("frames must be JSON text".into()), None, None)],
                        Inbound::Control => Vec::new(),
                    };
                    let mut failed = false;
                    for reply in replies {
                        if !write(&mut tx, reply, idle).await {
                            failed = true;
                            break;
                        }
                    }
                    if failed {
                        break None;
                    }
                }
            },
            _ = ticks.tick() => {
                if session_checked.elapsed() >= idle {
                    session_checked = Instant::now();
                    if let Err(ChatError::Unauthorized) = engine.check_signed_in(identity).await {
                        break Some((close::SIGNED_OUT, "signed out"));
                    }
                }
                if let Some(sent) = ping_sent {
                    if sent.elapsed() >= idle {
                        break Some((close::POLICY, "ping timeout"));
                    }
                } else if last_heard.elapsed() >= idle {
                    if !write(&mut tx, M::ping(), idle).await {
                        break None;
                    }
                    ping_sent = Some(Instant::now());
                }
            },
            _ = shutdown.changed() => break Some((close::GOING_AWAY, "server shutting down")),
        }
    };
    if let Some((code, reason)) = end {
        if write(&mut tx, M::close(code, reason), idle).await {
            let _ = tokio::time::timeout(idle, tx.close()).await;
        }
    }
}

/// Sends one frame, waiting at most `limit` for the client to take it: a client that stops
/// reading fills the kernel's buffers, and an unbounded wait would hold this loop (and its
/// ping timeout, shutdown and slow-consumer cut) for as long as the client likes.
async fn write<M>(tx: &mut (impl Sink<M> + Unpin), frame: M, limit: Duration) -> bool {
    matches!(
        tokio::time::timeout(limit, tx.send(frame)).await,
        Ok(Ok(()))
    )
}

/// Answers one client frame with the frames to send back, in order.
async fn handle<M: Frame>(
    text: &str,
    engine: &ChatEngine,
    session: &mut Session,
    metrics: &Metrics,
) -> Vec<M> {
    let bad = |reason: &str| {
        vec![error_frame(
            &ChatError::BadRequest(reason.into()),
            None,
            None,
        )]
    };
    let Ok(mut value) = serde_json::from_str::<Value>(text) else {
        return bad("malformed JSON");
    };
    let Some(kind) = value
        .as_object_mut()
        .and_then(|o| o.remove("type"))
        .and_then(|t| t.as_str().map(str::to_owned))
    else {
        return bad("a frame needs a string field `type`");
    };
    match kind.as_str() {
        "ping" => vec![Out::Pong.text()],
        "message.send" => match serde_json::from_value::<SendFrame>(value) {
            Ok(frame) => send(engine, session, frame, metrics).await,
            Err(e) => bad(&format!("invalid message.send: {e}")),
        },
        "typing" => match serde_json::from_value::<TypingFrame>(value) {
            Ok(frame) => typing(engine, session, frame).await,
            Err(e) => bad(&format!("invalid typing: {e}")),
        },
        "read" | "delivered" => match serde_json::from_value::<MarkFrame>(value) {
            Ok(frame) => mark(engine, session, &kind, frame).await,
            Err(e) => bad(&format!("invalid {kind}: {e}")),
        },
        "sync" => match serde_json::from_value::<SyncFrame>(value) {
            Ok(frame) => sync(engine, session, frame).await,
            Err(e) => bad(&format!("invalid sync: {e}")),
        },
        other => bad(&format!("unknown frame type `{other}`")),
    }
}

async fn send<M: Frame>(
    engine: &ChatEngine,
    session: &Session,
    frame: SendFrame,
    metrics: &Metrics,
) -> Vec<M> {
    let client_id = frame.client_id.as_str();
    let room: RoomId = match frame.room_id.parse() {
        Ok(room) => room,
        Err(_) => {
            return vec![error_frame(
                &ChatError::NotFound,
                Some(client_id),
                Some(&frame.room_id),
            )]
        }
    };
    let input = SendMessage {
        body: frame.body,
        client_id: Some(frame.client_id.clone()),
        reply_to: frame.reply_to,
        thread_id: frame.thread_id,
        attachment_id: frame.attachment_id,
    };
    match engine.send(session.user(), room, input).await {
        Ok(sent) => {
            if sent.created {
                metrics.message_sent();
            }
            vec![Out::Ack {
                client_id,
                message: &sent.message,
            }
            .text()]
        }
        Err(e) => vec![error_frame(&e, Some(client_id), Some(&frame.room_id))],
    }
}

async fn typing<M: Frame>(engine: &ChatEngine, session: &Session, frame: TypingFrame) -> Vec<M> {
    let result = match frame.room_id.parse::<RoomId>() {
        Ok(room) => {
            let input = chat_core::engine::Typing {
                typing: frame.typing,
            };
            engine.typing(session.user(), room, input).await
        }
        Err(_) => Err(ChatError::NotFound),
    };
    match result {
        Ok(()) => Vec::new(),
        Err(e) => vec![error_frame(&e, None, Some(&frame.room_id))],
    }
}

/// A `read` or `delivered` frame; success answers nothing (the room gets a `receipt`).
async fn mark<M: Frame>(
    engine: &ChatEngine,
    session: &Session,
    kind: &str,
    frame: MarkFrame,
) -> Vec<M> {
    let input = chat_core::engine::MarkSeq { seq: frame.seq };
    let result = match frame.room_id.parse::<RoomId>() {
        Ok(room) if kind == "read" => engine
            .mark_read(session.user(), room, input)
            .await
            .map(drop),
        Ok(room) => engine
            .mark_delivered(session.user(), room, input)
            .await
            .map(drop),
        Err(_) => Err(ChatError::NotFound),
    };
    match result {
        Ok(()) => Vec::new(),
        Err(e) => vec![error_frame(&e, None, Some(&frame.room_id))],
    }
}

async fn sync<M: Frame>(engine: &ChatEngine, session: &mut Session, frame: SyncFrame) -> Vec<M> {
    let max_rooms = engine.limits().max_rooms_per_user as usize;
    if frame.rooms.len() > max_rooms {
        return vec![error_frame(
            &ChatError::BadRequest(format!("sync at most {max_rooms} rooms at once")),
            None,
            None,
        )];
    }
    let mut out = Vec::new();
    let mut synced = BTreeMap::new();
    for (raw, since) in &frame.rooms {
        let result = match raw.parse::<RoomId>() {
            Ok(room) => session.sync(room, *since).await.map(|r| (room, r)),
            Err(_) => Err(ChatError::NotFound),
        };
        match result {
            Ok((room, (frames, state))) => {
                out.extend(frames.iter().map(|f| M::text(String::from(&**f))));
                synced.insert(room, state);
            }
            Err(e) => out.push(error_frame(&e, None, Some(raw))),
        }
    }
    out.push(Out::Synced { rooms: &synced }.text());
    out
}
