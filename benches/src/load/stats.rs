//! What the sender and each receiver saw, and the report made of it.
//!
//! Latency is the receive time minus the send time written into the message body, both read
//! from the wall clock of this one machine, so no clock skew enters.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Microseconds since the Unix epoch: the clock both ends of a latency are read from.
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The body of message `n` sent at `sent_us`: `t=<unix micros> n=<n>`, padded with `x` to
/// `body_bytes` when that is longer.
pub fn stamp(sent_us: u64, n: u64, body_bytes: usize) -> String {
    let mut body = format!("t={sent_us} n={n} ");
    while body.len() < body_bytes {
        body.push('x');
    }
    // The server trims bodies; the trailing space only separates the padding.
    body.trim_end().to_owned()
}

/// The send time in a body written by [`stamp`].
pub fn parse_stamp(body: &str) -> Option<u64> {
    body.strip_prefix("t=")?.split(' ').next()?.parse().ok()
}

/// What one receiver saw of its room.
#[derive(Debug, Default)]
pub struct Tally {
    /// The room's id.
    pub room: String,
    /// How many times each seq arrived.
    copies: HashMap<u64, u32>,
    last_seq: u64,
    /// `message.created` frames of the room, duplicates included.
    pub deliveries: u64,
    /// Frames of a seq that had already arrived.
    pub duplicates: u64,
    /// First arrivals of a seq below one that had already arrived.
    pub out_of_order: u64,
    /// Receive minus send time of each first arrival, in microseconds.
    pub latencies_us: Vec<u64>,
    /// When the last frame of the room arrived (Unix micros).
    pub last_delivery_us: u64,
    /// Text frames that were not JSON of the expected shape.
    pub unparsed: u64,
    /// Why the connection ended before the receiver was done with it, if it did.
    pub closed: Option<String>,
}

impl Tally {
    /// Nothing seen yet of `room`.
    pub fn new(room: &str) -> Self {
        Self {
            room: room.to_owned(),
            ..Self::default()
        }
    }

    /// Counts the arrival of `seq` at `received_us`, sent at `sent_us` if the body said so.
    pub fn record(&mut self, seq: u64, sent_us: Option<u64>, received_us: u64) {
        self.deliveries += 1;
        self.last_delivery_us = received_us;
        let copies = self.copies.entry(seq).or_insert(0);
        *copies = copies.saturating_add(1);
        if *copies > 1 {
            self.duplicates += 1;
            return;
        }
        if seq < self.last_seq {
            self.out_of_order += 1;
        }
        self.last_seq = self.last_seq.max(seq);
        if let Some(sent_us) = sent_us {
            self.latencies_us.push(received_us.saturating_sub(sent_us));
        }
    }

    /// How many distinct seqs arrived.
    pub fn unique(&self) -> u64 {
        self.copies.len() as u64
    }

    /// How many of `acked` never arrived.
    pub fn missing(&self, acked: &[u64]) -> u64 {
        acked
            .iter()
            .filter(|s| !self.copies.contains_key(s))
            .count() as u64
    }
}

/// What the sender saw.
#[derive(Debug, Default)]
pub struct SendTally {
    /// Messages the rate and duration called for.
    pub scheduled: u64,
    /// Requests started.
    pub sent: u64,
    /// Seqs of the messages the server acked (`201` over HTTP, `ack` over a socket), by room.
    pub acked_seqs: HashMap<String, Vec<u64>>,
    /// Failed requests by kind (`http 500`, `timeout`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Round trip of each successful request, in microseconds.
    pub ack_us: Vec<u64>,
    /// How far behind its scheduled time the latest request started: above a millisecond or
    /// so, the requests in flight were the bottleneck and the rate was not met.
    pub max_lag_us: u64,
    /// When sending started (Unix micros).
    pub start_us: u64,
}

impl SendTally {
    /// Messages acked, in all rooms.
    pub fn acked(&self) -> u64 {
        self.acked_seqs.values().map(|s| s.len() as u64).sum()
    }

    /// The seqs acked in `room`.
    pub fn acked_in(&self, room: &str) -> &[u64] {
        self.acked_seqs.get(room).map_or(&[], Vec::as_slice)
    }
}

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    /// How many durations there were.
    pub samples: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `micros` (sorted in place); all zero when empty.
    pub fn of(micros: &mut [u64]) -> Self {
        micros.sort_unstable();
        let Some(&max) = micros.last() else {
            return Self::default();
        };
        let at = |p: f64| {
            let rank = (p * micros.len() as f64).ceil() as usize;
            ms(micros[rank.clamp(1, micros.len()) - 1])
        };
        Self {
            samples: micros.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: ms(max),
        }
    }
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  (n={})",
            self.p50, self.p90, self.p99, self.max, self.samples
        )
    }
}

/// Microseconds as milliseconds: whole microseconds keep it to three decimals in the JSON.
fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

/// The figures of one run; serialized as the final JSON line.
#[derive(Debug, Serialize)]
pub struct Report {
    /// `multinode`, `fanout` or `chat`.
    pub scenario: &'static str,
    /// Messages per second asked for, over all rooms.
    pub rate: f64,
    /// Seconds of sending asked for.
    pub duration_s: f64,
    /// Rooms the messages go to.
    pub rooms: usize,
    /// WebSocket receivers, over all rooms (one per member).
    pub receivers: usize,
    /// The share of messages posted over the sender's WebSocket instead of HTTP.
    pub ws_share: f64,
    /// Body length asked for (the stamp alone when shorter).
    pub body_bytes: usize,
    /// Messages the rate and duration called for.
    pub scheduled: u64,
    /// Requests started.
    pub sent: u64,
    /// Requests answered with a message.
    pub acked: u64,
    /// Requests that failed.
    pub errors: u64,
    /// Failed requests by kind.
    pub error_kinds: BTreeMap<String, u64>,
    /// HTTP round trip of the sends.
    pub ack_ms: Percentiles,
    /// See [`SendTally::max_lag_us`].
    pub max_send_lag_ms: f64,
    /// `message.created` frames of the room at all receivers, duplicates included.
    pub deliveries: u64,
    /// Each receiver's room's acked messages, summed: what `deliveries` should be.
    pub expected_deliveries: u64,
    /// Deliveries per second from the first send to the last delivery.
    pub deliveries_per_s: f64,
    /// Send to receive, over first arrivals at every receiver.
    pub latency_ms: Percentiles,
    /// Acked messages that a receiver did not get by the end (summed over receivers).
    pub lost: u64,
    /// Repeated arrivals of a seq at a receiver.
    pub duplicates: u64,
    /// Arrivals of a seq lower than one the receiver already had.
    pub out_of_order: u64,
    /// Text frames that were not the JSON expected.
    pub unparsed_frames: u64,
    /// Receivers whose connection ended early, by reason.
    pub receivers_closed: BTreeMap<String, u64>,
    /// Peak resident memory (VmHWM) of each `--server-pid` over its life so far, MiB; `null`
    /// if unreadable.
    pub server_peak_rss_mib: BTreeMap<u32, Option<f64>>,
    /// Resident memory of each `--server-pid` around the load: unlike VmHWM it leaves out
    /// setup, whose password hashing (argon2, 19 MiB each, several at once) can take more
    /// memory than the messages do.
    pub server_rss_mib: BTreeMap<u32, ServerMemory>,
}

/// Resident memory (VmRSS) of a server process around the load, MiB; `null` if unreadable.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ServerMemory {
    /// When sending started (setup done).
    pub before_send: Option<f64>,
    /// The largest sample while sending and receiving.
    pub under_load: Option<f64>,
}

impl ServerMemory {
    /// Takes in one sample.
    pub fn sample(&mut self, mib: f64) {
        self.before_send.get_or_insert(mib);
        self.under_load = Some(self.under_load.map_or(mib, |m| m.max(mib)));
    }
}

/// What a run was asked to do, for the report.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// `multinode`, `fanout` or `chat`.
    pub scenario: &'static str,
    /// Messages per second, over all rooms.
    pub rate: f64,
    /// Seconds of sending.
    pub duration_s: f64,
    /// Rooms.
    pub rooms: usize,
    /// WebSocket receivers, over all rooms.
    pub receivers: usize,
    /// The share of messages posted over WebSocket.
    pub ws_share: f64,
    /// Body length.
    pub body_bytes: usize,
}

impl Report {
    /// Sums up a run; `memory` has the servers' VmRSS sampled during it.
    pub fn new(
        shape: Shape,
        mut send: SendTally,
        tallies: Vec<Tally>,
        memory: BTreeMap<u32, ServerMemory>,
    ) -> Self {
        let acked = send.acked();
        let mut latencies = Vec::new();
        let mut receivers_closed = BTreeMap::new();
        let (mut deliveries, mut lost, mut duplicates, mut out_of_order, mut unparsed) =
            (0, 0, 0, 0, 0);
        let mut expected_deliveries = 0;
        let mut last_delivery_us = send.start_us;
        for mut tally in tallies {
            let room_acked = send.acked_in(&tally.room);
            expected_deliveries += room_acked.len() as u64;
            deliveries += tally.deliveries;
            lost += tally.missing(room_acked);
            duplicates += tally.duplicates;
            out_of_order += tally.out_of_order;
            unparsed += tally.unparsed;
            last_delivery_us = last_delivery_us.max(tally.last_delivery_us);
            latencies.append(&mut tally.latencies_us);
            if let Some(reason) = tally.closed {
                *receivers_closed.entry(reason).or_insert(0) += 1;
            }
        }
        let span_s = (last_delivery_us - send.start_us) as f64 / 1e6;
        Self {
            scenario: shape.scenario,
            rate: shape.rate,
            duration_s: shape.duration_s,
            rooms: shape.rooms,
            receivers: shape.receivers,
            ws_share: shape.ws_share,
            body_bytes: shape.body_bytes,
            scheduled: send.scheduled,
            sent: send.sent,
            acked,
            errors: send.errors.values().sum(),
            error_kinds: send.errors,
            ack_ms: Percentiles::of(&mut send.ack_us),
            max_send_lag_ms: ms(send.max_lag_us),
            deliveries,
            expected_deliveries,
            deliveries_per_s: if span_s > 0.0 {
                (deliveries as f64 / span_s).round()
            } else {
                0.0
            },
            latency_ms: Percentiles::of(&mut latencies),
            lost,
            duplicates,
            out_of_order,
            unparsed_frames: unparsed,
            receivers_closed,
            server_peak_rss_mib: memory
                .keys()
                .map(|&pid| (pid, status_mib(pid, "VmHWM")))
                .collect(),
            server_rss_mib: memory,
        }
    }

    /// Whether every receiver got every acked message exactly once, in order.
    pub fn delivered_exactly_once_in_order(&self) -> bool {
        self.lost == 0 && self.duplicates == 0 && self.out_of_order == 0
    }

    /// The report as a table for people.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let mut row = |name: &str, value: String| {
            let _ = writeln!(t, "  {name:<22} {value}");
        };
        row("scenario", self.scenario.into());
        row(
            "asked",
            format!(
                "{} msg/s for {} s, {} receivers in {} room(s), body {} B (at least the stamp)",
                self.rate, self.duration_s, self.receivers, self.rooms, self.body_bytes
            ),
        );
        if self.ws_share > 0.0 {
            row(
                "over WebSocket",
                format!("{:.0}% of the messages", self.ws_share * 100.0),
            );
        }
        row(
            "sent / acked",
            format!("{} / {} of {}", self.sent, self.acked, self.scheduled),
        );
        row("errors", format!("{} {:?}", self.errors, self.error_kinds));
        row("ack round trip ms", self.ack_ms.to_string());
        row("max send lag ms", format!("{:.2}", self.max_send_lag_ms));
        row(
            "deliveries",
            format!("{} of {}", self.deliveries, self.expected_deliveries),
        );
        row("deliveries/s", format!("{}", self.deliveries_per_s));
        row("latency ms", self.latency_ms.to_string());
        row("lost", self.lost.to_string());
        row("duplicates", self.duplicates.to_string());
        row("out of order", self.out_of_order.to_string());
        row("unparsed frames", self.unparsed_frames.to_string());
        row(
            "receivers closed",
            format!("{:?}", self.receivers_closed).replace('"', ""),
        );
        let mib = |m: Option<f64>| m.map_or_else(|| "unreadable".into(), |m| format!("{m:.1}"));
        for (pid, peak) in &self.server_peak_rss_mib {
            let rss = self.server_rss_mib.get(pid).copied().unwrap_or_default();
            row(
                &format!("server {pid} MiB"),
                format!(
                    "peak {}; before sending {}, under load {}",
                    mib(*peak),
                    mib(rss.before_send),
                    mib(rss.under_load)
                ),
            );
        }
        t
    }
}

/// The VmRSS of each of `pids`, sampled every `every` (the first at once) until `stop`.
pub async fn sample_rss(
    pids: Vec<u32>,
    every: std::time::Duration,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> BTreeMap<u32, ServerMemory> {
    let mut memory: BTreeMap<u32, ServerMemory> = pids
        .into_iter()
        .map(|p| (p, ServerMemory::default()))
        .collect();
    let mut tick = tokio::time::interval(every);
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

/// The largest VmRSS of `pid`, sampled every `every`, until `stop` changes.
pub async fn peak_rss(
    pid: u32,
    every: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Option<f64> {
    let mut peak: Option<f64> = None;
    let mut ticks = tokio::time::interval(every);
    loop {
        if let Some(mib) = status_mib(pid, "VmRSS") {
            peak = Some(peak.map_or(mib, |p| p.max(mib)));
        }
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return peak,
        }
    }
}

/// A memory figure of process `pid` (`VmHWM`: peak resident set, `VmRSS`: resident set now)
/// from `/proc/<pid>/status`, in MiB with one decimal.
pub fn status_mib(pid: u32, field: &str) -> Option<f64> {
    let kib = status_kib(pid, field)? as f64;
    Some((kib / 1024.0 * 10.0).round() / 10.0)
}

/// The same figure in KiB, as the kernel gives it.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_pad() {
        let body = stamp(1_700_000_000_123_456, 7, 40);
        assert_eq!(body.len(), 40);
        assert_eq!(parse_stamp(&body), Some(1_700_000_000_123_456));
        assert_eq!(stamp(5, 1, 0), "t=5 n=1");
        assert_eq!(parse_stamp("hello"), None);
    }

    #[test]
    fn tally_counts_duplicates_gaps_and_disorder() {
        let mut tally = Tally::default();
        for seq in [1, 2, 4, 3, 3] {
            tally.record(seq, Some(100), 350);
        }
        assert_eq!(tally.deliveries, 5);
        assert_eq!(tally.unique(), 4);
        assert_eq!(tally.duplicates, 1);
        assert_eq!(tally.out_of_order, 1);
        assert_eq!(tally.latencies_us, vec![250; 4]);
        assert_eq!(tally.missing(&[1, 2, 3, 4, 5, 6]), 2);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut micros: Vec<u64> = (1..=100).rev().map(|i| i * 1000).collect();
        let p = Percentiles::of(&mut micros);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(Percentiles::of(&mut []).samples, 0);
    }
}
