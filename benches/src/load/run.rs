//! The cycle every messaging scenario runs: set up rooms of members (and maybe a sender of
//! their own), open the members' WebSockets, post at a fixed rate for a while, wait for the
//! deliveries, sum up.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{stream, StreamExt};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::{JoinError, JoinSet};
use tokio::time::{sleep_until, Instant};

use super::client::{run_id, ws_url, Api, Error};
use super::limits;
use super::post::{PostSettings, Poster};
use super::setup::setup;
use super::stats::{sample_rss, unix_micros, Report, SendTally, Shape, Tally};
use super::users::HostIssuer;

/// Often enough to catch a peak of server memory that builds up over a second or more, rarely
/// enough to cost nothing.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// Messages waiting for one socket to post them; the sends in flight bound them anyway.
const OUTBOX: usize = 16;
/// Rooms whose last seq is read at once after sending.
const LAST_SEQ_CONCURRENCY: usize = 16;

/// Who posts the messages.
#[derive(Debug, Clone, Copy)]
pub enum Senders {
    /// One user of its own, owner of every room but no receiver, posts every message over
    /// HTTP (multinode, fanout).
    Dedicated,
    /// A random member of a random room posts each message, a share `ws_share` (0 to 1) of
    /// them over its own socket, the rest over HTTP (chat).
    Members {
        /// The share of messages posted over WebSocket.
        ws_share: f64,
    },
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The report's name for the scenario.
    pub scenario: &'static str,
    /// Server that users, rooms and messages are created on (`http://host:port`).
    pub send_url: String,
    /// Server the members' WebSockets connect to.
    pub recv_url: String,
    /// Rooms.
    pub rooms: usize,
    /// Members of each room, each a user with one socket (a receiver).
    pub members: usize,
    /// Who posts.
    pub senders: Senders,
    /// Messages per second, over all rooms.
    pub rate: f64,
    /// How long to send.
    pub duration: Duration,
    /// How long after sending deliveries may still arrive; also the timeout of each send.
    pub grace: Duration,
    /// Sends in flight at most.
    pub concurrency: usize,
    /// Message body length (the timestamp alone when shorter).
    pub body_bytes: usize,
    /// Server processes whose peak memory to report.
    pub server_pids: Vec<u32>,
    /// Mints the users' tokens when set; otherwise they are registered.
    pub host: Option<HostIssuer>,
}

impl Plan {
    fn ws_share(&self) -> f64 {
        match self.senders {
            Senders::Dedicated => 0.0,
            Senders::Members { ws_share } => ws_share,
        }
    }
}

/// Sets up, sends, waits for deliveries and sums up. Everything ends by the end of sending plus
/// the grace period (plus setup, whose every step has a timeout).
pub async fn run(plan: &Plan) -> Result<Report, Error> {
    // Both URLs and the open-file limits are checked before anything is created.
    ws_url(&plan.send_url)?;
    let recv_ws = ws_url(&plan.recv_url)?;
    let receivers = plan.rooms * plan.members;
    limits::check(receivers, plan.concurrency, &plan.server_pids)?;
    let api = Api::new(&plan.send_url, plan.concurrency, plan.grace)?;
    let run_id = run_id();
    let setup_started = Instant::now();
    let (cast, subscribers) = setup(plan, &recv_ws, &run_id).await?;
    eprintln!(
        "setup: {receivers} receivers in {} room(s) on {}, sockets on {} ready in {:.1?}",
        plan.rooms,
        plan.send_url,
        plan.recv_url,
        setup_started.elapsed()
    );

    let (stop_sampling, sampling_stopped) = oneshot::channel();
    let sampler = tokio::spawn(sample_rss(
        plan.server_pids.clone(),
        RSS_SAMPLE_EVERY,
        sampling_stopped,
    ));
    let start = Instant::now();
    let deadline = start + plan.duration + plan.grace;
    // Per room: `None` while sending; then its last seq, at which its receivers are done.
    let (targets, target_rxs): (Vec<_>, Vec<_>) =
        (0..plan.rooms).map(|_| watch::channel(None)).unzip();
    let mut outboxes = Vec::new();
    let receivers: Vec<_> = subscribers
        .into_iter()
        .enumerate()
        .map(|(m, subscriber)| {
            let r = cast.room_of(m);
            let (room, target) = (cast.rooms[r].clone(), target_rxs[r].clone());
            let outbox = (plan.ws_share() > 0.0).then(|| {
                let (tx, rx) = mpsc::channel(OUTBOX);
                outboxes.push(tx);
                rx
            });
            let task = {
                let room = room.clone();
                tokio::spawn(
                    async move { subscriber.receive(&room, target, deadline, outbox).await },
                )
            };
            (room, task)
        })
        .collect();

    eprintln!(
        "sending {} msg/s for {:?} ({} in flight at most)",
        plan.rate, plan.duration, plan.concurrency
    );
    let settings = PostSettings {
        ws_share: plan.ws_share(),
        run_id: run_id.clone(),
        body_bytes: plan.body_bytes,
        grace: plan.grace,
    };
    let mut poster = Poster::new(api.clone(), cast.clone(), outboxes, settings);
    let sent = post_at_rate(plan, start, |n| poster.post(n)).await;
    // Closes the outboxes.
    drop(poster);
    eprintln!(
        "sent {}, acked {}, errors {:?}; waiting up to {:?} for deliveries",
        sent.sent,
        sent.acked(),
        sent.errors,
        deadline.saturating_duration_since(Instant::now())
    );
    // Messages whose request failed may still have been stored; the receivers wait for every
    // seq the room has, not only the acked ones. Without it they simply wait until the deadline.
    let last_seqs: Vec<_> = stream::iter(0..plan.rooms)
        .map(|r| {
            let (api, owner, room) = (&api, cast.owner(r), &cast.rooms[r]);
            async move { (r, api.last_seq(owner, room).await) }
        })
        .buffer_unordered(LAST_SEQ_CONCURRENCY)
        .collect()
        .await;
    for (r, last_seq) in last_seqs {
        match last_seq {
            Ok(last_seq) => {
                targets[r].send_replace(Some(last_seq));
            }
            Err(e) => eprintln!(
                "could not read the last seq of room {} ({e}); waiting the full grace",
                cast.rooms[r]
            ),
        }
    }

    let mut tallies = Vec::with_capacity(receivers.len());
    for (room, receiver) in receivers {
        tallies.push(receiver.await.unwrap_or_else(|e| {
            // Nothing it saw is left: all its messages count as lost.
            let mut tally = Tally::new(&room);
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
        rooms: plan.rooms,
        receivers: plan.rooms * plan.members,
        ws_share: plan.ws_share(),
        body_bytes: plan.body_bytes,
    };
    Ok(Report::new(shape, sent, tallies, memory))
}

/// Posts `plan.rate` messages a second from `start` until `plan.duration` has passed, with at
/// most `plan.concurrency` in flight, then waits for the ones in flight (each times out after
/// the grace period). `post(n)` names message `n`'s room and makes its post.
async fn post_at_rate<F, P>(plan: &Plan, start: Instant, mut post: F) -> SendTally
where
    F: FnMut(u64) -> (String, P),
    P: Future<Output = Result<u64, String>> + Send + 'static,
{
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
        let (room, posting) = post(n);
        requests.spawn(async move {
            let started = Instant::now();
            let result = posting.await;
            drop(slot);
            (room, result, micros(started.elapsed()))
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

type SendOutcome = (String, Result<u64, String>, u64);

fn settle(tally: &mut SendTally, done: Result<SendOutcome, JoinError>) {
    match done {
        Ok((room, Ok(seq), round_trip_us)) => {
            tally.acked_seqs.entry(room).or_default().push(seq);
            tally.ack_us.push(round_trip_us);
        }
        Ok((_, Err(kind), _)) => *tally.errors.entry(kind).or_insert(0) += 1,
        Err(e) => *tally.errors.entry(format!("task: {e}")).or_insert(0) += 1,
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
