//! The two ways a WebSocket reaches the connection loop, behind one small trait each for its
//! messages and its errors:
//!
//! - under [`crate::serve`], the route takes the connection upgrade and builds the socket with
//!   tokio-tungstenite itself, with a small read buffer;
//! - under `warp::serve` (a host application's own server), warp builds it, with
//!   tungstenite's default 128 KiB read buffer, which warp does not let a route set.

use std::error::Error as _;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tokio_tungstenite::WebSocketStream;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

use super::close;

/// The read buffer of a socket the route builds, which every idle socket holds for its
/// lifetime: client frames are mostly far smaller, and a larger one grows the buffer to fit.
/// With it a socket costs about 10 KiB of server memory in all (BENCHMARKS.md, `idle`).
const READ_BUFFER_BYTES: usize = 2 * 1024;

/// What a client sent, as the connection loop sees it.
pub(super) enum Inbound<'a> {
    Text(&'a str),
    Binary,
    Close,
    /// Ping and pong: the transport answers pings itself.
    Control,
}

/// A message of either transport.
pub(super) trait Frame: Send + Sized + 'static {
    fn text(json: String) -> Self;
    fn ping() -> Self;
    fn close(code: u16, reason: &'static str) -> Self;
    fn inbound(&self) -> Inbound<'_>;
}

/// A transport's read error: the close code for a client that broke the protocol (RFC 6455
/// 7.4.1: the server says which rule before it hangs up), or `None` when there is nobody left
/// to tell (the client hung up, the connection failed).
pub(super) trait Broken: Send + 'static {
    fn close_code(&self) -> Option<(u16, &'static str)>;
}

impl Frame for WsMessage {
    fn text(json: String) -> Self {
        WsMessage::text(json)
    }

    fn ping() -> Self {
        WsMessage::Ping(Default::default())
    }

    fn close(code: u16, reason: &'static str) -> Self {
        WsMessage::Close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        }))
    }

    fn inbound(&self) -> Inbound<'_> {
        match self {
            WsMessage::Text(text) => Inbound::Text(text.as_str()),
            WsMessage::Binary(_) => Inbound::Binary,
            WsMessage::Close(_) => Inbound::Close,
            WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => Inbound::Control,
        }
    }
}

impl Broken for WsError {
    fn close_code(&self) -> Option<(u16, &'static str)> {
        match self {
            WsError::Capacity(_) => Some((close::TOO_BIG, "frame too large")),
            WsError::Utf8(_) => Some((close::INVALID_DATA, "text must be UTF-8")),
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
            WsError::Protocol(_) | WsError::AttackAttempt => {
                Some((close::PROTOCOL_ERROR, "protocol error"))
            }
            _ => None,
        }
    }
}

impl Frame for warp::ws::Message {
    fn text(json: String) -> Self {
        warp::ws::Message::text(json)
    }

    fn ping() -> Self {
        warp::ws::Message::ping(Vec::new())
    }

    fn close(code: u16, reason: &'static str) -> Self {
        warp::ws::Message::close_with(code, reason)
    }

    fn inbound(&self) -> Inbound<'_> {
        if self.is_close() {
            Inbound::Close
        } else if let Ok(text) = self.to_str() {
            Inbound::Text(text)
        } else if self.is_binary() {
            Inbound::Binary
        } else {
            Inbound::Control
        }
    }
}

/// warp wraps tungstenite's error: the same rules apply to it.
impl Broken for warp::Error {
    fn close_code(&self) -> Option<(u16, &'static str)> {
        self.source()?.downcast_ref::<WsError>()?.close_code()
    }
}

/// The socket the route builds, with frames and messages capped at `max_bytes`.
pub(super) async fn upgraded(
    upgrade: OnUpgrade,
    max_bytes: usize,
) -> Result<WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>, hyper::Error> {
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_frame_size(Some(max_bytes))
        .max_message_size(Some(max_bytes));
    let io = TokioIo::new(upgrade.await?);
    Ok(WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await)
}

/// The `101` answer to a WebSocket request whose `Sec-WebSocket-Key` is `key` (RFC 6455
/// 4.2.2), naming the subprotocol the server picked, if any.
pub(super) fn switching_protocols(key: &str, protocol: Option<&'static str>) -> Response {
    let mut response = Response::default();
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert("connection", HeaderValue::from_static("upgrade"));
    headers.insert("upgrade", HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert("sec-websocket-accept", accept);
    }
    if let Some(protocol) = protocol {
        headers.insert("sec-websocket-protocol", HeaderValue::from_static(protocol));
    }
    response
}
