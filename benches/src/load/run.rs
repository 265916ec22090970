//! The cycle every scenario runs: set up one room of a sender and N receivers, open the
//! receivers' WebSockets, post at a fixed rate for a while, wait for the deliveries, sum up.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{stream, StreamExt, TryStreamExt};
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::{JoinError, JoinSet};
use tokio::time::{sleep_until, Instant};

use super::client::{run_id, ws_url, Api, Error, Subscriber, User, PASSWORD};
use super::stats::{stamp, status_mib, unix_micros, Report, SendTally, ServerMemory, Shape, Tally};

/// Registering and logging in hash a password (argon2) each; the server caps how many it hashes
/// at once, so more requests in parallel would only queue there.
const SETUP_CONCURRENCY: usize = 8;
/// Enough WebSocket handshakes in parallel to open thousands of sockets in seconds without
/// flooding the server's accept queue.
const CONNECT_CONCURRENCY: usize = 64;
/// `POST /v1/rooms` names at most this many members (API.md); the rest are added one by one.
const MAX_INITIAL_MEMBERS: usize = 100;
/// Setup requests include the argon2 work above, queued behind each other: be patient.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Often enough to catch a peak of server memory that builds up over a second or more, rarely
/// enough to cost nothing.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The report's name for the scenario.
    pub scenario: &'static str,
    /// Server that users, the room and the messages are created on (`http://host:port`).
    pub send_url: String,
    /// Server the receivers' WebSockets connect to.
    pub recv_url: String,
    /// WebSocket receivers, each a user of its own.
    pub receivers: usize,
    /// Messages per second.
    pub rate: f64,
    /// How long to send.
    pub duration: Duration,
    /// How long after sending deliveries may still arrive; also the timeout of each send.
    pub grace: Duration,
    /// Send requests in flight at most.
    pub concurrency: usize,
    /// Message body length (the timestamp alone when shorter).
    pub body_bytes: usize,
    /// Server processes whose peak memory to report.
    pub server_pids: Vec<u32>,
}

/// Sets up, sends, waits for deliveries and sums up. Everything ends by the end of sending plus
/// the grace period (plus setup, whose every step has a timeout).
pub async fn run(plan: &Plan) -> Result<Report, Error> {
    // Both URLs are checked before anything is created on the servers.
    ws_url(&plan.send_url)?;
    let recv_ws = ws_url(&plan.recv_url)?;
    let api = Api::new(&plan.send_url, plan.concurrency, plan.grace)?;
    let run_id = run_id();
    let setup_started = Instant::now();
    let (sender, room, subscribers) = setup(plan, &recv_ws, &run_id).await?;
    eprintln!(
        "setup: {} receivers in room {room} on {}, sockets on {} ready in {:.1?}",
        plan.receivers,
        plan.send_url,
        plan.recv_url,
        setup_started.elapsed()
    );

    let (stop_sampling, sampling_stopped) = oneshot::channel();
    let sampler = tokio::spawn(sample_rss(plan.server_pids.clone(), sampling_stopped));
    let start = Instant::now();
    let deadline = start + plan.duration + plan.grace;
    // `None` while sending; then the room's last seq, at which a receiver is done.
    let (target_tx, target_rx) = watch::channel(None);
    let receivers: Vec<_> = subscribers
        .into_iter()
        .map(|subscriber| {
            let (room, target) = (room.clone(), target_rx.clone());
            tokio::spawn(async move { subscriber.receive(&room, target, deadline).await })
        })
        .collect();

    eprintln!(
        "sending {} msg/s for {:?} ({} in flight at most)",
        plan.rate, plan.duration, plan.concurrency
    );
    let sent = send(&api, &sender, &room, plan, &run_id, start).await;
    eprintln!(
        "sent {}, acked {}, errors {:?}; waiting up to {:?} for deliveries",
        sent.sent,
        sent.acked_seqs.len(),
        sent.errors,
        deadline.saturating_duration_since(Instant::now())
    );
    // Messages whose request failed may still have been stored; the receivers wait for every
    // seq the room has, not only the acked ones. Without it they simply wait until the deadline.
    match api.last_seq(&sender, &room).await {
        Ok(last_seq) => {
            target_tx.send_replace(Some(last_seq));
        }
        Err(e) => eprintln!("could not read the room's last seq ({e}); waiting the full grace"),
    }

    let mut tallies = Vec::with_capacity(receivers.len());
    for receiver in receivers {
        tallies.push(receiver.await.unwrap_or_else(|e| {
            // Nothing it saw is left: all its messages count as lost.
            let mut tally = Tally::default();
            tally.closed = Some(format!("receiver task failed: {e}"));
            tally
        }));
    }
    // A failed send only means the sampler already ended, which it does not do on its own.
    let _ = stop_sampling.send(());
    let memory = sampler.await.unwrap_or_default();
    let shape = Shape {
        scenario: plan.scenario,
        rate: plan.rate,
        duration_s: plan.duration.as_secs_f64(),
        receivers: plan.receivers,
        body_bytes: plan.body_bytes,
    };
    Ok(Report::new(shape, sent, tallies, memory))
}

/// The VmRSS of each of `pids`, sampled every [`RSS_SAMPLE_EVERY`] (the first at once) until
/// `stop`.
async fn sample_rss(
    pids: Vec<u32>,
    mut stop: oneshot::Receiver<()>,
) -> BTreeMap<u32, ServerMemory> {
    let mut memory: BTreeMap<u32, ServerMemory> = pids
        .into_iter()
        .map(|p| (p, ServerMemory::default()))
        .collect();
    let mut tick = tokio::time::interval(RSS_SAMPLE_EVERY);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        for (&pid, server) in &mut memory {
            if let Some(mib) = status_mib(pid, "VmRSS") {
                server.sample(mib);
            }
        }
    }
    memory
}

/// Registers the sender and the receivers (`load-<run>-s`, `load-<run>-r<i>`), creates the room
/// with all of them on the send server, and connects every receiver to `recv_ws`.
async fn setup(
    plan: &Plan,
    recv_ws: &str,
    run_id: &str,
) -> Result<(User, String, Vec<Subscriber>), Error> {
    let api = Api::new(&plan.send_url, SETUP_CONCURRENCY, SETUP_TIMEOUT)?;
    let names: Vec<String> = std::iter::once(format!("load-{run_id}-s"))
        .chain((0..plan.receivers).map(|i| format!("load-{run_id}-r{i}")))
        .collect();
    let mut users: Vec<User> = stream::iter(&names)
        .map(|name| api.register_and_login(name, PASSWORD))
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await?;
    let sender = users.remove(0);

    let ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    let (initial, later) = ids.split_at(ids.len().min(MAX_INITIAL_MEMBERS));
    let room = api
        .create_room(&sender, &format!("load {run_id}"), initial)
        .await?;
    stream::iter(later)
        .map(|id| api.add_member(&sender, &room, id))
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect::<()>()
        .await?;

    let subscribers = stream::iter(&users)
        .map(|user| Subscriber::connect(recv_ws, &user.token))
        .buffer_unordered(CONNECT_CONCURRENCY)
        .try_collect()
        .await?;
    Ok((sender, room, subscribers))
}

/// Posts `rate` messages a second from `start` until `plan.duration` has passed, with at most
/// `plan.concurrency` requests in flight, then waits for the ones in flight (each times out
/// after the grace period).
async fn send(
    api: &Api,
    sender: &User,
    room: &str,
    plan: &Plan,
    run_id: &str,
    start: Instant,
) -> SendTally {
    let mut tally = SendTally {
        scheduled: (plan.rate * plan.duration.as_secs_f64()).round() as u64,
        start_us: unix_micros(),
        ..SendTally::default()
    };
    let end = start + plan.duration;
    let slots = Arc::new(Semaphore::new(plan.concurrency));
    let mut requests = JoinSet::new();
    for n in 0..tally.scheduled {
        // Each message's due time counts from the start, so delays do not add up: after a
        // stall, the messages that fell due meanwhile go out at once (catch-up).
        let due = start + Duration::from_secs_f64(n as f64 / plan.rate);
        sleep_until(due).await;
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            // All slots busy until the end: the rest of the schedule is not sent.
            () = sleep_until(end) => break,
        };
        let Ok(slot) = slot else {
            break; // The semaphore is never closed.
        };
        let lag = Instant::now().saturating_duration_since(due);
        tally.max_lag_us = tally.max_lag_us.max(micros(lag));
        tally.sent += 1;
        let (api, sender, room) = (api.clone(), sender.clone(), room.to_owned());
        // Unique per run and message, so the server's idempotency never merges two sends.
        let client_id = format!("{run_id}-{n}");
        let body_bytes = plan.body_bytes;
        requests.spawn(async move {
            let started = Instant::now();
            let body = stamp(unix_micros(), n, body_bytes);
            let result = api.send_message(&sender, &room, &body, &client_id).await;
            drop(slot);
            (result, micros(started.elapsed()))
        });
        // Reap finished requests as we go, so the set stays as small as the requests in flight.
        while let Some(done) = requests.try_join_next() {
            settle(&mut tally, done);
        }
    }
    while let Some(done) = requests.join_next().await {
        settle(&mut tally, done);
    }
    tally
}

type SendOutcome = (Result<u64, String>, u64);

fn settle(tally: &mut SendTally, done: Result<SendOutcome, JoinError>) {
    match done {
        Ok((Ok(seq), round_trip_us)) => {
            tally.acked_seqs.push(seq);
            tally.ack_us.push(round_trip_us);
        }
        Ok((Err(kind), _)) => *tally.errors.entry(kind).or_insert(0) += 1,
        Err(e) => *tally.errors.entry(format!("task: {e}")).or_insert(0) += 1,
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
