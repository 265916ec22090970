//! A socket that never reads while 10,000 messages flow through its room: the server cuts it
//! with 4008, its memory stays bounded by the queue (not by the traffic), and the socket that
//! reads gets every message in order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{memory_kib, Program, Remote, TestServer, Ws, SECRET};

const MESSAGES: usize = 10_000;
/// Near the 4,000-character cap, so that the traffic (about 40 MB of frames) dwarfs what a
/// bounded queue may hold (the default `CHAT_WS_QUEUE` of 1,024 frames, about 4 MB).
const BODY_CHARS: usize = 3_900;
/// Growth allowed over the resident memory after setup. Buffering the stalled socket's share of
/// the traffic would take about 40 MiB more than this; the queue, the store's page cache and
/// allocator slack take less.
const MAX_GROWTH_MIB: f64 = 24.0;

/// Resident memory of a process, MiB.
fn rss_mib(pid: u32) -> f64 {
    memory_kib(pid, "VmRSS") as f64 / 1024.0
}

// Several threads: the reading socket must keep up with 8 senders and 40 MB of frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_never_reads_is_cut_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let program = Program::start(
        dir.path(),
        &[
            ("CHAT_JWT_SECRET", SECRET),
            // One user posts far faster than a person may.
            ("CHAT_RATE_LIMITS", "off"),
            // The 4008 close frame waits behind the frames the stalled client has not read, and
            // gets through only when the test drains them at the end; the server must still be
            // waiting to write it then, however long a loaded machine takes to send 10,000
            // messages (the write timeout is the ping interval, 30 s by default).
            ("CHAT_WS_PING_SECS", "600"),
        ],
    );
    let remote = Remote::new(&program.base);
    let alice = remote.user("alice").await;
    let bob = remote.user("bob").await;
    let room = remote.room(&alice, &[&bob]).await;
    // A small, fixed receive buffer: the stalled client backs up into the server quickly.
    let mut stalled = Ws::connect(&program.base, &bob.token, Some(4096)).await;
    let mut reading = Ws::connect(&program.base, &bob.token, None).await;

    let pid = program.pid();
    let baseline = rss_mib(pid);
    let sending = Arc::new(AtomicBool::new(true));
    let sampler = {
        let sending = sending.clone();
        tokio::spawn(async move {
            let mut peak = 0.0f64;
            while sending.load(Ordering::Relaxed) {
                peak = peak.max(rss_mib(pid));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak.max(rss_mib(pid))
        })
    };
    let reader = tokio::spawn(async move {
        let mut seqs = Vec::with_capacity(MESSAGES);
        while seqs.len() < MESSAGES {
            let frame = reading.next().await;
            if frame["type"] == "message.created" {
                seqs.push(frame["message"]["seq"].as_i64().unwrap());
            }
        }
        seqs
    });
    let body = "y".repeat(BODY_CHARS);
    let senders: Vec<_> = (0..8)
        .map(|_| {
            let remote = remote.clone();
            let path = format!("/v1/rooms/{room}/messages");
            let token = alice.token.clone();
            let body = body.clone();
            tokio::spawn(async move {
                for _ in 0..MESSAGES / 8 {
                    let (status, answer) = remote
                        .post(&path, Some(&token), json!({ "body": body }))
                        .await;
                    assert_eq!(status, StatusCode::CREATED, "{answer}");
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }
    let seqs = reader.await.unwrap();
    sending.store(false, Ordering::Relaxed);
    let peak = sampler.await.unwrap();

    assert_eq!(
        seqs,
        (1..=MESSAGES as i64).collect::<Vec<_>>(),
        "the reading socket got every message once, in order"
    );
    println!(
        "slow consumer: {MESSAGES} messages of {BODY_CHARS} chars; server RSS {baseline:.1} MiB \
         after setup, {peak:.1} MiB at most (+{:.1} MiB)",
        peak - baseline
    );
    assert!(
        peak - baseline < MAX_GROWTH_MIB,
        "server memory grew by {:.1} MiB (from {baseline:.1} to {peak:.1} MiB)",
        peak - baseline
    );
    assert_eq!(
        stalled.closed().await,
        Some(4008),
        "the stalled socket is cut"
    );
    let (status, _) = remote
        .post(
            &format!("/v1/rooms/{room}/messages"),
            Some(&bob.token),
            json!({"body": "still here"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "the server still serves");
}

/// A client that takes no bytes at all is cut by the write timeout even while its queue has
/// room (here it never fills): its writes wait at most the ping interval. Seen from outside,
/// without ever reading that socket: its user goes offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_takes_no_bytes_is_cut_before_its_queue_fills() {
    let server = TestServer::start_with(|c| {
        c.ws_ping_secs = 1;
        c.ws_queue = 1_000_000;
    })
    .await;
    let alice = server.register("alice").await;
    let carl = server.register("carl").await;
    let room = server.room(&alice, &[&carl]).await;
    let _stalled = server.ws_with_receive_buffer(&carl.token, Some(4096)).await;
    let status = |presence: &serde_json::Value| presence["presence"][0]["status"].clone();
    let query = format!("/v1/presence?user_ids={}", carl.id);
    let (_, presence) = server.get(&query, &alice.token).await;
    assert_eq!(status(&presence), "online");

    let body = "y".repeat(BODY_CHARS);
    let started = std::time::Instant::now();
    loop {
        for _ in 0..50 {
            server.send(&alice, &room, &body).await;
        }
        let (_, presence) = server.get(&query, &alice.token).await;
        if status(&presence) == "offline" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the stalled socket is still open: {presence}"
        );
    }
}
