//! Issue 6: fuzzing the WebSocket. Random and malformed JSON, binary frames, frames at and over
//! the size limit, and, written byte by byte after a hand-made upgrade, everything RFC 6455
//! forbids: text that is not UTF-8, reserved opcodes and bits, fragmented or oversized control
//! frames, a length field of 2^63, stray continuations, unmasked frames and truncated frames.
//!
//! What the server promises (API.md, `ws.rs`): a frame it can read but not understand gets an
//! `error` event and the socket stays open; a frame over `CHAT_WS_MAX_FRAME_BYTES` closes with
//! 1009; broken framing closes with 1002 and text that is not UTF-8 with 1007 (RFC 6455,
//! 7.4.1). Whatever one socket does, the server keeps answering HTTP and other sockets, the
//! fuzzing user's own included, keep receiving every message of the room in seq order.
//!
//! The random cases come from a seeded generator; the seed is printed, and `WS_FUZZ_SEED`
//! replays or varies a run.

use futures_util::SinkExt;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{seqs, Rng, TestServer, TestUser, Ws, FRAME_WAIT};

/// The inbound frame limit the fuzzed server runs with (the default of API.md).
const LIMIT: usize = 64 * 1024;

/// The seed when `WS_FUZZ_SEED` does not say otherwise, so that CI runs are reproducible.
const DEFAULT_SEED: u64 = 0x5eed_0006;

/// Close codes of RFC 6455.
const PROTOCOL_ERROR: u16 = 1002;
const INVALID_DATA: u16 = 1007;
const TOO_BIG: u16 = 1009;
/// The server's code for a socket that did not answer its ping (a policy violation).
const PING_TIMEOUT: u16 = 1008;

/// The first byte of a frame: FIN, the three reserved bits, the opcode.
const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
const RSV2: u8 = 0x20;
const RSV3: u8 = 0x10;
const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xa;

/// The frame types a client may send; any other `type` is refused with an `error`.
const CLIENT_TYPES: &[&str] = &[
    "message.send",
    "sync",
    "typing",
    "read",
    "delivered",
    "ping",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fuzzed_sockets_leave_the_server_and_other_sockets_healthy() {
    let seed = std::env::var("WS_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    println!("ws_fuzz seed: {seed} (WS_FUZZ_SEED={seed} replays this run)");
    let mut rng = Rng(seed);

    let server = TestServer::start_with(|c| c.ws_max_frame_bytes = LIMIT).await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room = server.room(&alice, &[&bob]).await;
    let mut fuzz = Fuzz {
        observers: vec![
            Observer::new("bob", server.ws(&bob.token).await),
            // The fuzzing user's own other connection must not suffer either.
            Observer::new("alice's other socket", server.ws(&alice.token).await),
        ],
        server: &server,
        alice: &alice,
        room: &room,
    };

    // Random text frames: each one the server cannot understand gets one `error`
    // (`check_replies`), and the socket stays open through all of them.
    let mut ws = server.ws(&alice.token).await;
    let mut marks = 0;
    for i in 0..300 {
        let text = fuzz_text(&mut rng, &room);
        ws.stream
            .send(Message::text(text.clone()))
            .await
            .expect("frame sent");
        let replies = replies(&mut ws, &mut marks).await;
        check_replies(&text, &replies);
        if i % 25 == 24 {
            fuzz.witness(&format!("{} random text frames", i + 1)).await;
        }
    }
    for i in 0..50 {
        let len = rng.below(2048);
        let bytes = rng.bytes(len);
        ws.stream
            .send(Message::binary(bytes))
            .await
            .expect("frame sent");
        let replies = replies(&mut ws, &mut marks).await;
        assert_eq!(
            errors(&replies),
            ["bad_request"],
            "binary frame {i} of {len} bytes"
        );
    }
    // At the limit a frame is still read (and refused as JSON); the client's pings are
    // answered by the WebSocket layer and do not disturb the protocol.
    ws.stream
        .send(Message::text("x".repeat(LIMIT)))
        .await
        .expect("frame sent");
    ws.stream
        .send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .expect("ping sent");
    assert_eq!(
        errors(&replies(&mut ws, &mut marks).await),
        ["bad_request"],
        "a frame of exactly the limit is read"
    );
    fuzz.witness("binary and limit-sized frames").await;

    // Over the limit: closed with 1009, as a whole frame or as a message in small fragments.
    for (case, frame) in [
        (
            "a text frame one byte over the limit",
            Message::text("x".repeat(LIMIT + 1)),
        ),
        (
            "a binary frame of 1 MiB",
            Message::binary(vec![0x42; 1 << 20]),
        ),
        (
            "a message over the limit in fragments under it",
            Message::Frame(Frame::message(
                vec![b' '; LIMIT / 2 + 1],
                OpCode::Data(Data::Text),
                false,
            )),
        ),
    ] {
        let mut ws = server.ws(&alice.token).await;
        // The server may close before it has read all of a big frame, failing the write.
        let _ = ws.stream.send(frame).await;
        if case.contains("fragments") {
            let rest = Frame::message(
                vec![b' '; LIMIT / 2 + 1],
                OpCode::Data(Data::Continue),
                true,
            );
            let _ = ws.stream.send(Message::Frame(rest)).await;
        }
        assert_eq!(ws.closed().await, Some(TOO_BIG), "{case}");
        fuzz.witness(case).await;
    }

    // The raw client itself speaks the protocol: a fragmented message with a ping between
    // its fragments (which RFC 6455 allows) is one message to the server.
    let mut raw = RawWs::connect(&server, &alice.token).await;
    raw.write(&frame(TEXT, b"{\"type\":")).await;
    raw.write(&frame(FIN | PING, b"mid-message")).await;
    raw.write(&frame(FIN | CONTINUATION, b"\"ping\"}")).await;
    assert_eq!(
        raw.next_frame().await,
        Some((PONG, b"mid-message".to_vec())),
        "the ping is answered"
    );
    let pong = raw.next_frame().await.expect("a reply");
    assert_eq!(
        (pong.0, json_of(&pong.1)["type"].clone()),
        (TEXT, json!("pong"))
    );
    raw.write(&frame(FIN | TEXT, b"{\"type\":\"ping\"}")).await;
    assert_eq!(
        json_of(&raw.next_frame().await.expect("a reply").1)["type"],
        "pong"
    );
    drop(raw);

    // Broken framing, written by hand: each closes with the code RFC 6455 names for it.
    let mut length_2_63 = vec![FIN | TEXT, 0x80 | 127];
    length_2_63.extend((1u64 << 63).to_be_bytes());
    length_2_63.extend(MASK);
    let mut length_max = vec![FIN | BINARY, 0x80 | 127];
    length_max.extend(u64::MAX.to_be_bytes());
    length_max.extend(MASK);
    let mut length_over_limit = vec![FIN | TEXT, 0x80 | 127];
    length_over_limit.extend((LIMIT as u64 + 1).to_be_bytes());
    length_over_limit.extend(MASK);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "text that is not UTF-8",
            frame(FIN | TEXT, b"{\"type\":\"ping\",\"x\":\"\xff\xfe\"}"),
            INVALID_DATA,
        ),
        (
            "an overlong UTF-8 encoding",
            frame(FIN | TEXT, b"\xc0\xaf"),
            INVALID_DATA,
        ),
        (
            "a UTF-16 surrogate in UTF-8",
            frame(FIN | TEXT, b"\xed\xa0\x80"),
            INVALID_DATA,
        ),
        (
            "a character cut between fragments and never finished",
            [frame(TEXT, b"caf\xc3"), frame(FIN | CONTINUATION, b"!")].concat(),
            INVALID_DATA,
        ),
        (
            "a close reason that is not UTF-8",
            frame(FIN | CLOSE, b"\x03\xe8\xff"),
            INVALID_DATA,
        ),
        (
            "a reserved data opcode",
            frame(FIN | 0x3, b"{}"),
            PROTOCOL_ERROR,
        ),
        (
            "a reserved control opcode",
            frame(FIN | 0xb, b""),
            PROTOCOL_ERROR,
        ),
        (
            "RSV1 without an extension",
            frame(FIN | RSV1 | TEXT, b"{\"type\":\"ping\"}"),
            PROTOCOL_ERROR,
        ),
        (
            "RSV2 and RSV3",
            frame(FIN | RSV2 | RSV3 | TEXT, b"{\"type\":\"ping\"}"),
            PROTOCOL_ERROR,
        ),
        (
            "a fragmented control frame",
            frame(PING, b"half"),
            PROTOCOL_ERROR,
        ),
        (
            "a control frame over 125 bytes",
            frame(FIN | PING, &[b'p'; 126]),
            PROTOCOL_ERROR,
        ),
        (
            "a continuation without a start",
            frame(FIN | CONTINUATION, b"{\"type\":\"ping\"}"),
            PROTOCOL_ERROR,
        ),
        (
            "a new message before the last one's end",
            [frame(TEXT, b"{\"type\":"), frame(FIN | TEXT, b"{}")].concat(),
            PROTOCOL_ERROR,
        ),
        (
            "an unmasked client frame",
            unmasked(FIN | TEXT, b"{\"type\":\"ping\"}"),
            PROTOCOL_ERROR,
        ),
        (
            "a close frame with a one-byte payload",
            frame(FIN | CLOSE, b"\x03"),
            PROTOCOL_ERROR,
        ),
        ("a length field of 2^63", length_2_63, TOO_BIG),
        ("a length field of 2^64 - 1", length_max, TOO_BIG),
        (
            "a length one byte over the limit",
            length_over_limit,
            TOO_BIG,
        ),
    ];
    for (case, bytes, code) in cases {
        let mut raw = RawWs::connect(&server, &alice.token).await;
        raw.write(&bytes).await;
        let ended = raw.until_end().await;
        assert_eq!(ended.close, Some(code), "{case}: {ended:?}");
        check_texts(case, &ended.texts);
        fuzz.witness(case).await;
    }

    // Frames cut short, then the client goes: the server lets the connection go.
    let truncated: Vec<(&str, Vec<u8>)> = vec![
        ("half a header", vec![FIN | TEXT]),
        (
            "a 16-bit length without its bytes",
            vec![FIN | TEXT, 0x80 | 126, 0x01],
        ),
        (
            "a header without its mask",
            vec![FIN | TEXT, 0x80 | 5, 0x01, 0x02],
        ),
        (
            "a payload cut short",
            frame(FIN | TEXT, b"{\"type\":\"ping\"}")[..10].to_vec(),
        ),
        (
            "an unfinished fragmented message",
            frame(TEXT, b"{\"type\":"),
        ),
        ("nothing at all", Vec::new()),
    ];
    for (case, bytes) in truncated {
        let mut raw = RawWs::connect(&server, &alice.token).await;
        raw.write(&bytes).await;
        raw.finish().await;
        let ended = raw.until_end().await;
        check_texts(case, &ended.texts);
        fuzz.witness(case).await;
    }

    // Random byte streams shaped like frames, then EOF: whatever they hold, the server answers
    // in the protocol (an `error`, a pong, a close with a fitting code) and lets go.
    for i in 0..40 {
        let mut bytes = Vec::new();
        let mut sent_close = false;
        for _ in 0..1 + rng.below(4) {
            let (frame, close) = random_frame(&mut rng);
            sent_close |= close;
            bytes.extend(frame);
        }
        // The seed replays a stream; its first bytes say which it was.
        let case = format!(
            "random frame stream {i}, starting {:02x?}",
            &bytes[..bytes.len().min(32)]
        );
        let mut raw = RawWs::connect(&server, &alice.token).await;
        raw.write(&bytes).await;
        raw.finish().await;
        let ended = raw.until_end().await;
        if let Some(code) = ended.close {
            assert!(
                [PROTOCOL_ERROR, INVALID_DATA, TOO_BIG].contains(&code) || sent_close,
                "{case}: closed with {code}"
            );
        }
        check_texts(&case, &ended.texts);
        if i % 10 == 9 {
            fuzz.witness(&format!("{} random frame streams", i + 1))
                .await;
        }
    }

    // The first fuzzed socket lived through all of it.
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next_of("pong").await["type"], "pong");
    fuzz.finish().await;
}

#[tokio::test]
async fn a_frame_that_never_ends_does_not_hold_a_connection() {
    let server = TestServer::start_with(|c| c.ws_ping_secs = 1).await;
    let alice = server.register("alice").await;
    let mut raw = RawWs::connect(&server, &alice.token).await;
    // A header that announces 100 bytes, and then nothing, without going away: the server's
    // ping goes unanswered, so the idle timeout closes it.
    raw.write(&[FIN | TEXT, 0x80 | 100]).await;
    let ended = raw.until_end().await;
    assert_eq!(ended.close, Some(PING_TIMEOUT), "{ended:?}");
    let (status, _) = server.get("/v1/users/me", &alice.token).await;
    assert_eq!(status, 200);
}

/// The fuzzed room and the healthy sockets in it.
struct Fuzz<'a> {
    server: &'a TestServer,
    alice: &'a TestUser,
    room: &'a str,
    observers: Vec<Observer>,
}

impl Fuzz<'_> {
    /// After a fuzz case: the server answers HTTP, and a message sent now reaches every
    /// healthy socket with its seq, after every message before it.
    async fn witness(&mut self, case: &str) {
        let (status, me) = self.server.get("/v1/users/me", &self.alice.token).await;
        assert_eq!(status, 200, "after {case}: {me}");
        let message = self
            .server
            .send(self.alice, self.room, &format!("after {case}"))
            .await;
        for observer in &mut self.observers {
            observer.sees(&message, case).await;
        }
    }

    /// Every healthy socket saw the room's whole history, and still answers.
    async fn finish(mut self) {
        let history = seqs(&self.server.history(self.alice, self.room).await);
        let last = self.server.send(self.alice, self.room, "the end").await;
        for observer in &mut self.observers {
            observer.sees(&last, "the end").await;
            assert_eq!(
                observer.seen[..history.len()],
                history[..],
                "{} saw the history",
                observer.name
            );
            observer.ws.send(json!({"type": "ping"})).await;
            assert_eq!(observer.ws.next_of("pong").await["type"], "pong");
        }
    }
}

/// A socket that must see every message of the room, in seq order without gaps.
struct Observer {
    name: &'static str,
    ws: Ws,
    seen: Vec<i64>,
}

impl Observer {
    fn new(name: &'static str, ws: Ws) -> Observer {
        Observer {
            name,
            ws,
            seen: Vec::new(),
        }
    }

    /// Reads up to `message`, checking the seqs of every message on the way (fuzzed frames
    /// may post messages of their own).
    async fn sees(&mut self, message: &Value, case: &str) {
        loop {
            // `next` fails the test if this socket was closed.
            let frame = self.ws.next().await;
            if frame["type"] != "message.created" {
                continue;
            }
            let seq = frame["message"]["seq"].as_i64().expect("a seq");
            assert_eq!(
                seq,
                self.seen.last().unwrap_or(&0) + 1,
                "{} after {case}: seqs in order without gaps",
                self.name
            );
            self.seen.push(seq);
            if frame["message"]["id"] == message["id"] {
                assert_eq!(frame["message"]["seq"], message["seq"], "{}", self.name);
                return;
            }
        }
    }
}

/// What the server sent after a frame, up to its answer to a marker frame sent next: the
/// answer to the frame, and any events of the room. The marker is a frame of an unknown type,
/// whose `error` names it (a `ping` would not do: fuzzed frames may be pings themselves).
async fn replies(ws: &mut Ws, marks: &mut usize) -> Vec<Value> {
    *marks += 1;
    let marker = format!("marker-{marks}");
    ws.send(json!({ "type": marker })).await;
    let named = format!("`{marker}`");
    let mut before = Vec::new();
    loop {
        let frame = ws.next_any().await;
        if frame["type"] == "error"
            && frame["message"]
                .as_str()
                .is_some_and(|m| m.contains(&named))
        {
            return before;
        }
        before.push(frame);
    }
}

/// The codes of the `error` events among `replies`.
fn errors(replies: &[Value]) -> Vec<&str> {
    replies
        .iter()
        .filter(|r| r["type"] == "error")
        .map(|r| r["code"].as_str().expect("an error has a code"))
        .collect()
}

/// A frame that is not a JSON object with a known string `type` gets exactly one
/// `bad_request`; a known type with wrong fields may get an error of its own, or work.
fn check_replies(text: &str, replies: &[Value]) {
    let errors = errors(replies);
    let understood = serde_json::from_str::<Value>(text).is_ok_and(|v| {
        v["type"]
            .as_str()
            .is_some_and(|t| CLIENT_TYPES.contains(&t))
    });
    if !understood {
        assert_eq!(errors, ["bad_request"], "{text:?} -> {replies:?}");
    }
    check_texts(text, replies);
}

/// Every text frame the server sends is a JSON object with a string `type`.
fn check_texts(case: &str, texts: &[Value]) {
    for text in texts {
        assert!(text["type"].is_string(), "{case}: {text}");
    }
}

fn json_of(payload: &[u8]) -> Value {
    serde_json::from_slice(payload).expect("a JSON text frame")
}

/// Random text for fuzz cases.
trait RandomText {
    fn chars(&mut self, len: usize) -> String;
}

impl RandomText for Rng {
    fn chars(&mut self, len: usize) -> String {
        (0..len)
            .filter_map(|_| {
                // Mostly ASCII and JSON's own punctuation, some of any plane.
                if self.below(3) == 0 {
                    char::from_u32(self.below(0x11_0000) as u32)
                } else {
                    Some(*self.pick(&[
                        'a', 'Z', '0', ' ', '"', '\\', '{', '}', '[', ']', ':', ',', '\n', '\0',
                        'é', '💥', '\u{202e}', '\u{feff}',
                    ]))
                }
            })
            .collect()
    }
}

/// A random client text frame: a well-formed frame with random contents, one shaped like the
/// protocol's (known and unknown types, fields right and wrong), mangled JSON, deep nesting,
/// or any text.
fn fuzz_text(rng: &mut Rng, room: &str) -> String {
    match rng.below(8) {
        0 | 1 => {
            let seq = *rng.pick(&[i64::MIN, -1, 0, 1, 3, i64::MAX]);
            match rng.below(4) {
                0 => {
                    let (id_len, body_len) = (1 + rng.below(70), rng.below(4100));
                    json!({"type": "message.send", "room_id": room,
                        "client_id": rng.chars(id_len), "body": rng.chars(body_len)})
                }
                1 => json!({"type": *rng.pick(&["read", "delivered"]), "room_id": room,
                    "seq": seq}),
                2 => json!({"type": "typing", "room_id": room, "typing": rng.below(2) == 0}),
                _ => json!({"type": "sync", "rooms": {room: *rng.pick(&[
                    json!(seq),
                    json!({"seq": seq, "rev": seq}),
                    json!({"seq": seq}),
                ])}}),
            }
            .to_string()
        }
        2..=4 => {
            let mut frame = Map::new();
            if rng.below(8) != 0 {
                let kind = if rng.below(4) == 0 {
                    fuzz_value(rng, room, 2)
                } else {
                    json!(rng.pick(&[
                        "message.send",
                        "sync",
                        "typing",
                        "read",
                        "delivered",
                        "ping",
                        "pong",
                        "ack",
                        "PING",
                        "",
                        "message.send ",
                        "error",
                    ]))
                };
                frame.insert("type".into(), kind);
            }
            for _ in 0..rng.below(6) {
                let field = *rng.pick(&[
                    "room_id",
                    "client_id",
                    "body",
                    "reply_to",
                    "thread_id",
                    "attachment_id",
                    "seq",
                    "typing",
                    "rooms",
                    "seq\0",
                    "__proto__",
                    "sender_id",
                ]);
                let value = match field {
                    "rooms" if rng.below(2) == 0 => {
                        json!({ room: fuzz_value(rng, room, 2), "x": fuzz_value(rng, room, 2) })
                    }
                    _ => fuzz_value(rng, room, 0),
                };
                frame.insert(field.into(), value);
            }
            Value::Object(frame).to_string()
        }
        5 => {
            // A valid frame, mangled a few times.
            let mut text: Vec<char> = json!({"type": "message.send", "room_id": room,
                "client_id": "c", "body": "hello"})
            .to_string()
            .chars()
            .collect();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(text.len() + 1);
                match rng.below(3) {
                    0 if at < text.len() => {
                        text.remove(at);
                    }
                    1 => text.truncate(at),
                    _ => text.insert(at, *rng.pick(&['"', '{', '}', ',', ':', '\\', 'x', '\0'])),
                }
            }
            text.into_iter().collect()
        }
        6 => {
            // Deeper than serde_json's recursion limit, closed or not.
            let depth = 100 + rng.below(5000);
            let close = if rng.below(2) == 0 { depth } else { 0 };
            format!("{}{}", "[".repeat(depth), "]".repeat(close))
        }
        _ => {
            let len = rng.below(300);
            rng.chars(len)
        }
    }
}

/// A random JSON value, edge cases first.
fn fuzz_value(rng: &mut Rng, room: &str, depth: usize) -> Value {
    match rng.below(if depth > 2 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => rng
            .pick(&[
                json!(0),
                json!(-1),
                json!(1),
                json!(i64::MAX),
                json!(i64::MIN),
                json!(u64::MAX),
                json!(0.5),
                json!(-0.0),
                json!(1e300),
            ])
            .clone(),
        3 => json!(*rng.pick(&[
            room,
            "",
            "   ",
            "not-a-uuid",
            "00000000-0000-0000-0000-000000000000",
            "c",
            "👍",
            "\u{0}",
            "@alice hi",
        ])),
        4 => {
            let len = *rng.pick(&[1, 10, 100, 5000]);
            json!(rng.chars(len))
        }
        5 => Value::Array(
            (0..rng.below(4))
                .map(|_| fuzz_value(rng, room, depth + 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.below(4))
                .map(|i| (format!("k{i}"), fuzz_value(rng, room, depth + 1)))
                .collect(),
        ),
    }
}

/// A frame with a random first byte (FIN or not, now and then reserved bits, any opcode but
/// mostly defined ones), masked or not, with a payload that may be shorter than its length
/// says; and whether it is a close frame.
fn random_frame(rng: &mut Rng) -> (Vec<u8>, bool) {
    let fin = if rng.below(4) == 0 { 0 } else { FIN };
    let reserved = if rng.below(8) == 0 {
        rng.next() as u8 & 0x70
    } else {
        0
    };
    let opcode = if rng.below(8) == 0 {
        rng.next() as u8 & 0x0f
    } else {
        *rng.pick(&[CONTINUATION, TEXT, TEXT, BINARY, CLOSE, PING, PONG])
    };
    let first = fin | reserved | opcode;
    let len = *rng.pick(&[0, 1, 2, 5, 125, 126, 300, 70_000]);
    let payload = if rng.below(2) == 0 {
        rng.bytes(len)
    } else {
        rng.chars(len / 4).into_bytes()
    };
    let mut bytes = if rng.below(8) == 0 {
        unmasked(first, &payload)
    } else {
        frame(first, &payload)
    };
    if rng.below(4) == 0 {
        let keep = rng.below(bytes.len() + 1);
        bytes.truncate(keep);
    }
    (bytes, first & 0x0f == CLOSE)
}

/// The masking key of hand-made frames (any key will do; clients must send one).
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A masked client frame with the given first byte.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = header(first, payload.len(), true);
    bytes.extend(MASK);
    bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    bytes
}

/// A frame without the mask every client frame must have.
fn unmasked(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = header(first, payload.len(), false);
    bytes.extend(payload);
    bytes
}

fn header(first: u8, len: usize, masked: bool) -> Vec<u8> {
    let mask_bit = if masked { 0x80 } else { 0 };
    let mut bytes = vec![first];
    match len {
        0..=125 => bytes.push(mask_bit | len as u8),
        126..=0xffff => {
            bytes.push(mask_bit | 126);
            bytes.extend((len as u16).to_be_bytes());
        }
        _ => {
            bytes.push(mask_bit | 127);
            bytes.extend((len as u64).to_be_bytes());
        }
    }
    bytes
}

/// A WebSocket client that writes whatever bytes it is given: the upgrade by hand, then frames
/// valid or not. It reads the server's frames itself.
struct RawWs {
    tcp: TcpStream,
    /// Bytes read but not yet parsed into frames.
    buf: Vec<u8>,
}

/// How a connection ended: the text frames the server sent on the way, and its close code.
#[derive(Debug)]
struct Ended {
    texts: Vec<Value>,
    close: Option<u16>,
}

impl RawWs {
    /// Upgrades a connection with `token` and reads the `ready` frame.
    async fn connect(server: &TestServer, token: &str) -> RawWs {
        let addr = server.base.trim_start_matches("http://");
        let mut tcp = TcpStream::connect(addr).await.expect("tcp connects");
        let upgrade = format!(
            "GET /v1/ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Authorization: Bearer {token}\r\n\r\n"
        );
        tcp.write_all(upgrade.as_bytes())
            .await
            .expect("upgrade sent");
        let mut raw = RawWs {
            tcp,
            buf: Vec::new(),
        };
        let end = loop {
            if let Some(at) = raw.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            assert!(raw.read_more().await, "the server answers the upgrade");
        };
        let head = String::from_utf8_lossy(&raw.buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        raw.buf.drain(..end);
        let ready = raw.next_frame().await.expect("a ready frame");
        assert_eq!(json_of(&ready.1)["type"], "ready");
        raw
    }

    /// Writes bytes; the server may already have closed, which the reads then show.
    async fn write(&mut self, bytes: &[u8]) {
        let _ = self.tcp.write_all(bytes).await;
    }

    /// Closes the sending half, as a client that goes away mid-frame.
    async fn finish(&mut self) {
        let _ = self.tcp.shutdown().await;
    }

    /// Reads more bytes; `false` at the end of the connection (a reset included).
    async fn read_more(&mut self) -> bool {
        let mut chunk = [0; 4096];
        let read = tokio::time::timeout(FRAME_WAIT, self.tcp.read(&mut chunk))
            .await
            .expect("the server answers or closes within the wait");
        match read {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next frame from the server, as (opcode, payload); `None` when the connection ends.
    async fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if let Some(frame) = self.parse() {
                return Some(frame);
            }
            if !self.read_more().await {
                return None;
            }
        }
    }

    /// A whole server frame from the buffer, if there is one. Server frames are unmasked and
    /// unfragmented.
    fn parse(&mut self) -> Option<(u8, Vec<u8>)> {
        let &[first, second, ..] = self.buf.as_slice() else {
            return None;
        };
        assert_eq!(second & 0x80, 0, "server frames are not masked");
        assert_eq!(first & 0x70, 0, "the server sets no reserved bits");
        let (len, at) = match second & 0x7f {
            126 => (
                u16::from_be_bytes(self.buf.get(2..4)?.try_into().unwrap()) as usize,
                4,
            ),
            127 => (
                u64::from_be_bytes(self.buf.get(2..10)?.try_into().unwrap()) as usize,
                10,
            ),
            short => (short as usize, 2),
        };
        let payload = self.buf.get(at..at + len)?.to_vec();
        self.buf.drain(..at + len);
        Some((first & 0x0f, payload))
    }

    /// Reads until the server ends the connection, which it must within the wait.
    async fn until_end(mut self) -> Ended {
        let mut ended = Ended {
            texts: Vec::new(),
            close: None,
        };
        while let Some((opcode, payload)) = self.next_frame().await {
            match opcode {
                TEXT => ended.texts.push(json_of(&payload)),
                CLOSE => {
                    ended.close = payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                }
                _ => {}
            }
        }
        ended
    }
}
