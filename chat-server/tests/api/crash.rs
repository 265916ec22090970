//! Crashes (issue 6): a storm of sends over HTTP and WebSocket while the `chat-server` binary is
//! SIGKILLed at random moments and restarted on the same data, several times, on SQLite and
//! PostgreSQL. Every acked message is in history exactly once, seqs have no gaps, and clients
//! that reconnect and `sync` end with exactly the history.
//!
//! A send in flight at a kill may or may not have been committed: it is "unknown". Retrying
//! one after the restart with its `client_id` must answer the original when it was committed,
//! which is what makes a client's retries exactly-once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{database, Program, Remote, RemoteUser as User, Rng, Ws, SECRET};

/// Kills, each followed by a restart on the same data.
const ROUNDS: usize = 5;
const ROOMS: usize = 3;
/// Users who send; one more user only watches.
const SENDERS: usize = 3;
const HTTP_TASKS: usize = 3;
const WS_TASKS: usize = 3;
/// `message.send` frames a socket has in flight at once, so a kill leaves several unknown.
const WS_WINDOW: usize = 4;
/// Acked messages re-sent after each restart: each must answer its original.
const ACKED_RETRIES: usize = 8;
/// How long a live server may take to answer. Liveness only: a killed server's connections
/// fail at once, so nothing here waits on a timer to decide an outcome.
const LIVENESS: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_every_acked_message_once_across_crashes() {
    let dir = tempfile::tempdir().unwrap();
    storm("sqlite", dir.path(), &[], 0x5eed_0001).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_every_acked_message_once_across_crashes() {
    let Some(db) = database().await else { return };
    let dir = tempfile::tempdir().unwrap();
    storm(
        "postgres",
        dir.path(),
        &[("CHAT_DATABASE_URL", db.url.as_str())],
        0x5eed_0002,
    )
    .await;
}

/// What the test knows of a stored message.
#[derive(Debug, PartialEq, Eq)]
struct Stored {
    id: String,
    seq: i64,
}

/// What one send told its client.
enum Outcome {
    /// `201`, or a socket's `ack` of a fresh `client_id`.
    Created(Stored),
    /// `200`: the `client_id` was stored already and this is the original.
    Original(Stored),
    /// The connection died first: committed or not, the client cannot tell.
    Unknown,
}

struct Attempt {
    client_id: String,
    sender: usize,
    room: usize,
    outcome: Outcome,
}

/// One `client_id` the test sent, and what it knows of its fate.
struct Sent {
    sender: usize,
    room: usize,
    acked: Option<Stored>,
}

#[derive(Default)]
struct Counts {
    attempts: usize,
    unknown_at_kill: usize,
    retried_unknown: usize,
    /// Retries of unknown sends answered with the original: the kill came after the commit.
    retried_found_original: usize,
    retried_acked: usize,
}

/// Everything sent, by `client_id` (unique across the whole test).
#[derive(Default)]
struct Ledger {
    sent: HashMap<String, Sent>,
    counts: Counts,
}

impl Ledger {
    /// Takes in what a send told its client; an answer that contradicts an earlier one (a
    /// second message for an acked `client_id`, another original) fails the test here.
    fn record(&mut self, attempt: Attempt) {
        self.counts.attempts += 1;
        match self.sent.get(&attempt.client_id) {
            Some(Sent { acked: None, .. }) => self.counts.retried_unknown += 1,
            Some(Sent { acked: Some(_), .. }) => self.counts.retried_acked += 1,
            None => {}
        }
        let entry = self.sent.entry(attempt.client_id.clone()).or_insert(Sent {
            sender: attempt.sender,
            room: attempt.room,
            acked: None,
        });
        match (attempt.outcome, &entry.acked) {
            (Outcome::Unknown, None) => self.counts.unknown_at_kill += 1,
            (Outcome::Unknown, Some(_)) => {}
            (Outcome::Created(stored), None) => entry.acked = Some(stored),
            (Outcome::Created(stored), Some(earlier)) => panic!(
                "{}: acked as {earlier:?}, then stored again as {stored:?}",
                attempt.client_id
            ),
            (Outcome::Original(stored), None) => {
                self.counts.retried_found_original += 1;
                entry.acked = Some(stored);
            }
            (Outcome::Original(stored), Some(earlier)) => assert_eq!(
                &stored, earlier,
                "{}: a retry answers the acked original",
                attempt.client_id
            ),
        }
    }

    /// The unknown sends, in a fixed order.
    fn unknown(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .sent
            .iter()
            .filter(|(_, s)| s.acked.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    fn acked(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .sent
            .iter()
            .filter(|(_, s)| s.acked.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }
}

/// The body of every message: derived from its `client_id`, so history can show that nothing
/// appeared that was never sent.
fn body_of(client_id: &str) -> String {
    format!("crash test {client_id}")
}

/// The world the senders act in; `base` changes with every start.
#[derive(Clone)]
struct World {
    base: String,
    users: Vec<User>,
    rooms: Vec<String>,
}

impl World {
    /// What a send answered, checked against what was sent.
    fn stored(&self, message: &Value, client_id: &str, sender: usize, room: usize) -> Stored {
        assert_eq!(message["client_id"], client_id, "{message}");
        assert_eq!(message["room_id"], self.rooms[room].as_str(), "{message}");
        assert_eq!(
            message["sender_id"],
            self.users[sender].id.as_str(),
            "{message}"
        );
        Stored {
            id: message["id"].as_str().expect("message id").to_owned(),
            seq: message["seq"].as_i64().expect("message seq"),
        }
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(LIVENESS)
        .build()
        .unwrap()
}

/// Posts a message; `None` when the connection failed (the server died).
async fn post_message(
    http: &reqwest::Client,
    world: &World,
    sender: usize,
    room: usize,
    client_id: &str,
) -> Option<(StatusCode, Value)> {
    let answer = async {
        let res = http
            .post(format!(
                "{}/v1/rooms/{}/messages",
                world.base, world.rooms[room]
            ))
            .bearer_auth(&world.users[sender].token)
            .json(&json!({"body": body_of(client_id), "client_id": client_id}))
            .send()
            .await?;
        let status = res.status();
        Ok::<_, reqwest::Error>((status, res.json::<Value>().await?))
    };
    match answer.await {
        Ok(answer) => Some(answer),
        Err(e) if e.is_timeout() => panic!("a live server did not answer within {LIVENESS:?}"),
        Err(e) if e.is_decode() => panic!("a message answer that is not JSON: {e}"),
        Err(_) => None,
    }
}

/// Posts fresh messages until the server dies.
async fn http_sender(world: World, sender: usize, prefix: String, mut rng: Rng) -> Vec<Attempt> {
    let http = http_client();
    let mut attempts = Vec::new();
    for n in 0.. {
        let room = rng.below(ROOMS);
        let client_id = format!("{prefix}.{n}");
        let attempt = attempt(&http, &world, sender, room, client_id, false).await;
        let dead = matches!(attempt.outcome, Outcome::Unknown);
        attempts.push(attempt);
        if dead {
            break;
        }
    }
    attempts
}

/// Posts one message over HTTP and says what came of it. A `retry` repeats a client id that may
/// be stored already, so `200` with the original is right for it too; any other answer fails.
async fn attempt(
    http: &reqwest::Client,
    world: &World,
    sender: usize,
    room: usize,
    client_id: String,
    retry: bool,
) -> Attempt {
    let outcome = match post_message(http, world, sender, room, &client_id).await {
        Some((StatusCode::CREATED, message)) => {
            Outcome::Created(world.stored(&message, &client_id, sender, room))
        }
        Some((StatusCode::OK, message)) if retry => {
            Outcome::Original(world.stored(&message, &client_id, sender, room))
        }
        Some((status, answer)) => {
            panic!("{client_id} (retry: {retry}) was answered {status}: {answer}")
        }
        None => Outcome::Unknown,
    };
    Attempt {
        client_id,
        sender,
        room,
        outcome,
    }
}

/// The next JSON frame; `None` when the connection is gone (the server died).
async fn receive(ws: &mut Ws) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(LIVENESS, ws.stream.next())
            .await
            .unwrap_or_else(|_| panic!("a live server sent nothing for {LIVENESS:?}"));
        match frame {
            Some(Ok(Message::Text(text))) => {
                return Some(serde_json::from_str(&text).expect("JSON frame"))
            }
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => continue,
        }
    }
}

/// Sends fresh messages over a socket, [`WS_WINDOW`] at a time, until the server dies.
async fn ws_sender(
    mut ws: Ws,
    world: World,
    sender: usize,
    prefix: String,
    mut rng: Rng,
) -> Vec<Attempt> {
    let mut attempts = Vec::new();
    let mut in_flight: HashMap<String, usize> = HashMap::new();
    let mut n = 0;
    'connected: loop {
        while in_flight.len() < WS_WINDOW {
            let room = rng.below(ROOMS);
            let client_id = format!("{prefix}.{n}");
            n += 1;
            let frame = json!({
                "type": "message.send",
                "room_id": world.rooms[room],
                "client_id": client_id,
                "body": body_of(&client_id),
            });
            // A frame whose write failed may still have reached the server: unknown too.
            in_flight.insert(client_id, room);
            if ws
                .stream
                .send(Message::text(frame.to_string()))
                .await
                .is_err()
            {
                break 'connected;
            }
        }
        let Some(frame) = receive(&mut ws).await else {
            break;
        };
        match frame["type"].as_str() {
            Some("ack") => {
                let client_id = frame["client_id"].as_str().expect("ack client_id");
                let room = in_flight
                    .remove(client_id)
                    .unwrap_or_else(|| panic!("an ack of nothing in flight: {frame}"));
                let stored = world.stored(&frame["message"], client_id, sender, room);
                attempts.push(Attempt {
                    client_id: client_id.to_owned(),
                    sender,
                    room,
                    outcome: Outcome::Created(stored),
                });
            }
            Some("error") => panic!("a send failed: {frame}"),
            _ => {}
        }
    }
    attempts.extend(in_flight.into_iter().map(|(client_id, room)| Attempt {
        client_id,
        sender,
        room,
        outcome: Outcome::Unknown,
    }));
    attempts
}

/// Re-sends `client_id`s of earlier rounds over HTTP until the list ends or the server dies.
async fn retrier(world: World, retries: Vec<(String, usize, usize)>) -> Vec<Attempt> {
    let http = http_client();
    let mut attempts = Vec::new();
    for (client_id, sender, room) in retries {
        let attempt = attempt(&http, &world, sender, room, client_id, true).await;
        let dead = matches!(attempt.outcome, Outcome::Unknown);
        attempts.push(attempt);
        if dead {
            break;
        }
    }
    attempts
}

/// A client that keeps its own copy of every room (seq -> id, rev) across connections and
/// catches up with `sync` each time it connects; one syncs with plain seqs, one with
/// `{seq, rev}`.
struct Watcher {
    user: User,
    rooms: Vec<String>,
    with_rev: bool,
    copy: HashMap<String, BTreeMap<i64, (String, i64)>>,
}

impl Watcher {
    fn new(user: User, rooms: &[String], with_rev: bool) -> Watcher {
        Watcher {
            user,
            rooms: rooms.to_vec(),
            with_rev,
            copy: rooms.iter().map(|r| (r.clone(), BTreeMap::new())).collect(),
        }
    }

    /// The sync frame for what the copy holds: per room, the end of its gapless prefix (a
    /// connection that died between live frames and its sync replay leaves holes), and the
    /// newest rev within that prefix.
    fn sync_frame(&self) -> Value {
        let mut rooms = serde_json::Map::new();
        for room in &self.rooms {
            let (mut seq, mut rev) = (0, 0);
            for (&s, &(_, r)) in &self.copy[room] {
                if s != seq + 1 {
                    break;
                }
                seq = s;
                rev = rev.max(r);
            }
            let since = if self.with_rev {
                json!({"seq": seq, "rev": rev})
            } else {
                json!(seq)
            };
            rooms.insert(room.clone(), since);
        }
        json!({"type": "sync", "rooms": rooms})
    }

    async fn connect(&self, base: &str) -> Ws {
        Ws::connect(base, &self.user.token, None).await
    }

    /// Syncs on a fresh connection and takes in frames until the server dies or, with
    /// `until_synced`, until a `synced` says every room is complete.
    async fn follow(mut self, mut ws: Ws, until_synced: bool) -> Watcher {
        // A connection gets each seq of a room at most once, live and replayed together.
        let mut delivered: HashSet<(String, i64)> = HashSet::new();
        if ws
            .stream
            .send(Message::text(self.sync_frame().to_string()))
            .await
            .is_err()
        {
            return self;
        }
        while let Some(frame) = receive(&mut ws).await {
            match frame["type"].as_str() {
                Some(kind @ ("message.created" | "message.updated")) => {
                    let message = &frame["message"];
                    let room = message["room_id"].as_str().expect("room_id").to_owned();
                    let seq = message["seq"].as_i64().expect("seq");
                    if kind == "message.created" {
                        let first = delivered.insert((room.clone(), seq));
                        assert!(first, "seq {seq} of {room} came twice on one connection");
                    }
                    let id = message["id"].as_str().expect("id").to_owned();
                    let rev = message["rev"].as_i64().expect("rev");
                    let copy = self.copy.get_mut(&room).expect("a watched room");
                    if let Some((known, _)) = copy.get(&seq) {
                        assert_eq!(known, &id, "seq {seq} of {room} is one message");
                    }
                    copy.insert(seq, (id, rev));
                }
                Some("synced") => {
                    let rooms = frame["rooms"].as_object().expect("synced rooms");
                    let complete = rooms.values().all(|r| r["complete"] == true);
                    if complete && until_synced {
                        return self;
                    }
                    // The replay stopped at the cap: ask again from where the copy now stands.
                    let frame = self.sync_frame().to_string();
                    if !complete && ws.stream.send(Message::text(frame)).await.is_err() {
                        return self;
                    }
                }
                Some("message.deleted" | "error") => panic!("unexpected frame {frame}"),
                _ => {}
            }
        }
        assert!(!until_synced, "the server died during the final sync");
        self
    }
}

async fn post(base: &str, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    Remote::new(base).post(path, token, body).await
}

async fn get(base: &str, path: &str, token: &str) -> Value {
    Remote::new(base).get(path, token).await
}

async fn user(base: &str, name: &str) -> User {
    Remote::new(base).user(name).await
}

async fn history(base: &str, token: &str, room: &str) -> Vec<Value> {
    Remote::new(base).history(token, room).await
}

fn start(dir: &Path, env: &[(&str, &str)]) -> Program {
    let mut all = vec![
        ("CHAT_JWT_SECRET", SECRET),
        // The storm posts far faster than the default per-user limit.
        ("CHAT_RATE_LIMITS", "off"),
        ("CHAT_LOG", "warn,chat_server=info"),
    ];
    all.extend_from_slice(env);
    Program::start(dir, &all)
}

async fn storm(backend: &str, dir: &Path, env: &[(&str, &str)], seed: u64) {
    let mut rng = Rng(seed);
    let mut program = start(dir, env);
    let mut users = Vec::new();
    for name in ["alice", "bob", "carol", "watcher"] {
        users.push(user(&program.base, name).await);
    }
    let mut rooms = Vec::new();
    for i in 0..ROOMS {
        let members: Vec<&str> = users[1..].iter().map(|u| u.id.as_str()).collect();
        let body = json!({"name": format!("crash {i}"), "members": members});
        let (status, room) = post(&program.base, "/v1/rooms", Some(&users[0].token), body).await;
        assert_eq!(status, StatusCode::CREATED, "{room}");
        rooms.push(room["id"].as_str().unwrap().to_owned());
    }
    let mut watchers = vec![
        Watcher::new(users[SENDERS].clone(), &rooms, false),
        Watcher::new(users[SENDERS].clone(), &rooms, true),
    ];
    let mut ledger = Ledger::default();

    for round in 0..ROUNDS {
        if round > 0 {
            program = start(dir, env);
        }
        let world = World {
            base: program.base.clone(),
            users: users.clone(),
            rooms: rooms.clone(),
        };
        // Everyone connects before the kill is armed, so connecting itself never races it.
        let mut following = Vec::new();
        for watcher in watchers.drain(..) {
            let ws = watcher.connect(&world.base).await;
            following.push(tokio::spawn(watcher.follow(ws, false)));
        }
        let mut sockets = Vec::new();
        for t in 0..WS_TASKS {
            let sender = t % SENDERS;
            sockets.push(Ws::connect(&world.base, &users[sender].token, None).await);
        }
        let mut tasks = Vec::new();
        for (t, ws) in sockets.into_iter().enumerate() {
            let prefix = format!("r{round}-ws{t}");
            let task = ws_sender(ws, world.clone(), t % SENDERS, prefix, rng.fork());
            tasks.push(tokio::spawn(task));
        }
        for t in 0..HTTP_TASKS {
            let prefix = format!("r{round}-http{t}");
            let task = http_sender(world.clone(), (t + 1) % SENDERS, prefix, rng.fork());
            tasks.push(tokio::spawn(task));
        }
        // Half of the unknown sends so far, and a few acked ones, are re-sent with their
        // `client_id` while the storm goes on (each list by a task of its own, so a long one
        // does not starve the other before the kill).
        let mut retries = Vec::new();
        for client_id in ledger.unknown() {
            if rng.below(2) == 0 {
                let sent = &ledger.sent[&client_id];
                retries.push((client_id, sent.sender, sent.room));
            }
        }
        tasks.push(tokio::spawn(retrier(world.clone(), retries)));
        let acked = ledger.acked();
        let mut retries = Vec::new();
        for _ in 0..ACKED_RETRIES.min(acked.len()) {
            let client_id = acked[rng.below(acked.len())].clone();
            let sent = &ledger.sent[&client_id];
            retries.push((client_id, sent.sender, sent.room));
        }
        tasks.push(tokio::spawn(retrier(world.clone(), retries)));

        let delay = Duration::from_millis(20 + rng.below(1200) as u64);
        tokio::time::sleep(delay).await;
        program.kill();
        for task in tasks {
            for attempt in task.await.expect("a sender finishes") {
                ledger.record(attempt);
            }
        }
        for follower in following {
            watchers.push(follower.await.expect("a watcher finishes"));
        }
    }

    // The last start: nothing else runs, so each retry's answer is known in advance. Every
    // unknown send that was stored is retried (it must answer its original), and half of the
    // others (each must be stored now, at the room's next seq).
    let program = start(dir, env);
    let base = program.base.clone();
    let world = World {
        base: base.clone(),
        users: users.clone(),
        rooms: rooms.clone(),
    };
    let reader = &users[SENDERS].token;
    let mut before: HashMap<String, Stored> = HashMap::new();
    let mut last_seq = Vec::new();
    for room in &rooms {
        let messages = history(&base, reader, room).await;
        last_seq.push(messages.last().map_or(0, |m| m["seq"].as_i64().unwrap()));
        for m in messages {
            let stored = Stored {
                id: m["id"].as_str().unwrap().to_owned(),
                seq: m["seq"].as_i64().unwrap(),
            };
            before.insert(m["client_id"].as_str().unwrap_or("").to_owned(), stored);
        }
    }
    let http = http_client();
    for client_id in ledger.unknown() {
        if !before.contains_key(&client_id) && rng.below(2) == 1 {
            continue;
        }
        let (sender, room) = (ledger.sent[&client_id].sender, ledger.sent[&client_id].room);
        let (status, message) = post_message(&http, &world, sender, room, &client_id)
            .await
            .expect("the server is up");
        let outcome = match before.get(&client_id) {
            Some(original) => {
                assert_eq!(status, StatusCode::OK, "{client_id} was stored: {message}");
                let stored = world.stored(&message, &client_id, sender, room);
                assert_eq!(&stored, original, "{client_id} answers its original");
                Outcome::Original(stored)
            }
            None => {
                assert_eq!(
                    status,
                    StatusCode::CREATED,
                    "{client_id} was not: {message}"
                );
                let stored = world.stored(&message, &client_id, sender, room);
                last_seq[room] += 1;
                assert_eq!(stored.seq, last_seq[room], "{client_id} takes the next seq");
                Outcome::Created(stored)
            }
        };
        ledger.record(Attempt {
            client_id,
            sender,
            room,
            outcome,
        });
    }
    let mut synced = Vec::new();
    for watcher in watchers {
        let ws = watcher.connect(&base).await;
        synced.push(watcher.follow(ws, true).await);
    }

    let mut found = 0;
    let mut in_history: HashMap<String, Stored> = HashMap::new();
    let mut unsent = Vec::new();
    for (r, room) in rooms.iter().enumerate() {
        let messages = history(&base, reader, room).await;
        let seqs: Vec<i64> = messages
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect();
        let last = get(&base, &format!("/v1/rooms/{room}"), reader).await["last_seq"]
            .as_i64()
            .unwrap();
        assert_eq!(seqs, (1..=last).collect::<Vec<i64>>(), "room {r}: no gaps");
        found += messages.len();
        for m in &messages {
            let client_id = m["client_id"].as_str().unwrap_or("").to_owned();
            let sent = ledger.sent.get(&client_id);
            let matches = sent.is_some_and(|s| {
                s.room == r
                    && m["sender_id"] == users[s.sender].id.as_str()
                    && m["body"] == body_of(&client_id).as_str()
            });
            if !matches {
                unsent.push(m.clone());
            }
            let stored = Stored {
                id: m["id"].as_str().unwrap().to_owned(),
                seq: m["seq"].as_i64().unwrap(),
            };
            if let Some(first) = in_history.insert(client_id.clone(), stored) {
                panic!("{client_id} is in history twice: {first:?} and {m}");
            }
        }
        for watcher in &synced {
            let copy: Vec<(i64, &str)> = watcher.copy[room]
                .iter()
                .map(|(&seq, (id, _))| (seq, id.as_str()))
                .collect();
            let expected: Vec<(i64, &str)> = messages
                .iter()
                .map(|m| (m["seq"].as_i64().unwrap(), m["id"].as_str().unwrap()))
                .collect();
            assert_eq!(
                copy, expected,
                "room {r}: the watcher syncing with rev={} holds exactly the history",
                watcher.with_rev
            );
        }
    }
    let mut lost = Vec::new();
    let mut unknown_stored = 0;
    let unknown = ledger.unknown();
    for (client_id, sent) in &ledger.sent {
        match (&sent.acked, in_history.get(client_id)) {
            (Some(acked), Some(stored)) if acked == stored => {}
            (Some(acked), found) => lost.push(format!("{client_id}: acked {acked:?}, {found:?}")),
            (None, Some(_)) => unknown_stored += 1,
            (None, None) => {}
        }
    }
    let counts = &ledger.counts;
    println!(
        "crash {backend}: {ROUNDS} kills; sent {} ({} attempts), acked {}, unknown at kill {}, \
         unknown retried {} (already stored {}), acked re-sent {}, found in history {found}, \
         never resolved {} (stored {unknown_stored}), lost {}",
        ledger.sent.len(),
        counts.attempts,
        ledger.acked().len(),
        counts.unknown_at_kill,
        counts.retried_unknown,
        counts.retried_found_original,
        counts.retried_acked,
        unknown.len(),
        lost.len(),
    );
    assert!(lost.is_empty(), "acked messages lost: {lost:#?}");
    assert!(unsent.is_empty(), "messages never sent: {unsent:#?}");
    // The checks above mean something only if the storm stored messages and the kills caught
    // some in flight; a run where neither happened proved nothing.
    assert!(!ledger.acked().is_empty(), "no send was acked");
    assert!(
        counts.unknown_at_kill > 0,
        "no kill caught a send in flight"
    );
    assert!(counts.retried_acked > 0, "no acked send was repeated");
}
