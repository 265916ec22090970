//! The `history` scenario: paged reads of one room. Clients read the newest page, then walk
//! back with `before=` a few pages, and start over, for a while; every page is checked
//! against the contract (ascending, gapless seqs, full unless it is the oldest one).

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{stream, StreamExt};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::client::{run_id, Api, Error, Page, User};
use super::stats::{peak_rss, stamp, status_mib, unix_micros, Percentiles};
use super::users::{sign_in_all, HostIssuer};

/// Reads of a large room on a busy machine still answer within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Fine enough to catch what the reads' buffers take.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// What to run.
#[derive(Debug, Clone)]
pub struct HistoryPlan {
    /// The server (`http://host:port`).
    pub url: String,
    /// A public room to read instead of seeding one (a room `history` seeded is public).
    pub room: Option<String>,
    /// Messages to seed a new room with.
    pub messages: u64,
    /// Their body length (the stamp alone when shorter).
    pub body_bytes: usize,
    /// Posts in flight while seeding.
    pub seed_concurrency: usize,
    /// Clients reading at once, each on a connection of its own.
    pub clients: usize,
    /// How long to read.
    pub duration: Duration,
    /// `before=` pages read after each newest page.
    pub depth: u32,
    /// Messages per page (`limit`).
    pub limit: u32,
    /// The server process whose memory to sample.
    pub server_pid: Option<u32>,
    /// Mints the user's token when set; otherwise it is registered.
    pub host: Option<HostIssuer>,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryReport {
    /// Always `history`.
    pub scenario: &'static str,
    /// The room read.
    pub room: String,
    /// Messages seeded by this run (0 when an existing room was read).
    pub seeded: u64,
    /// Seeding throughput, messages per second.
    pub seed_per_s: f64,
    /// The room's newest seq when reading began.
    pub last_seq: u64,
    /// Clients reading at once.
    pub clients: usize,
    /// Messages per page.
    pub limit: u32,
    /// `before=` pages after each newest page.
    pub depth: u32,
    /// Pages read.
    pub requests: u64,
    /// Pages per second.
    pub requests_per_s: f64,
    /// Messages in those pages per second.
    pub messages_per_s: f64,
    /// Failed requests.
    pub errors: u64,
    /// Failed requests by kind.
    pub error_kinds: BTreeMap<String, u64>,
    /// Pages that broke the contract (a gap, a wrong order, short without being the oldest,
    /// not right below `before`, `has_more` wrong).
    pub bad_pages: u64,
    /// Request to answer, every page.
    pub latency_ms: Percentiles,
    /// The same, newest pages only.
    pub newest_ms: Percentiles,
    /// The same, `before=` pages only.
    pub before_ms: Percentiles,
    /// The server's resident memory before reading, MiB.
    pub server_rss_before_mib: Option<f64>,
    /// The largest sample while reading, MiB.
    pub server_rss_peak_mib: Option<f64>,
}

/// What one client saw.
#[derive(Debug, Default)]
struct Reads {
    newest_us: Vec<u64>,
    before_us: Vec<u64>,
    messages: u64,
    errors: BTreeMap<String, u64>,
    bad_pages: u64,
}

/// Seeds a room (or finds the one given), then reads it from `plan.clients` clients.
pub async fn run(plan: &HistoryPlan) -> Result<HistoryReport, Error> {
    let api = Api::new(
        &plan.url,
        plan.clients.max(plan.seed_concurrency),
        REQUEST_TIMEOUT,
    )?;
    let run_id = run_id();
    let names = [format!("load-{run_id}-h")];
    let user = sign_in_all(&plan.url, &names, plan.host.as_ref())
        .await?
        .remove(0);
    let (room, seeded, seed_per_s) = match &plan.room {
        Some(room) => (room.clone(), 0, 0.0),
        None => {
            let room = api
                .create_room(&user, &format!("load history {run_id}"), &[], true)
                .await?;
            let per_s = seed(&api, &user, &room, plan, &run_id).await?;
            (room, plan.messages, per_s)
        }
    };
    let last_seq = api.last_seq(&user, &room).await.map_err(|e| {
        format!("room {room}: {e} (a room is readable here when it is public, as seeded ones are)")
    })?;
    eprintln!(
        "reading room {room} (last seq {last_seq}) from {} clients for {:?}",
        plan.clients, plan.duration
    );

    let before_rss = plan.server_pid.and_then(|pid| status_mib(pid, "VmRSS"));
    let (stop, stopped) = watch::channel(false);
    let sampler = plan
        .server_pid
        .map(|pid| tokio::spawn(peak_rss(pid, RSS_SAMPLE_EVERY, stopped)));
    let started = Instant::now();
    let until = started + plan.duration;
    let mut clients = JoinSet::new();
    for _ in 0..plan.clients {
        let (api, user, room) = (api.clone(), user.clone(), room.clone());
        let (depth, limit) = (plan.depth, plan.limit);
        clients.spawn(async move { read(&api, &user, &room, depth, limit, until).await });
    }
    let mut all = Reads::default();
    while let Some(reads) = clients.join_next().await {
        let mut reads = reads?;
        all.newest_us.append(&mut reads.newest_us);
        all.before_us.append(&mut reads.before_us);
        all.messages += reads.messages;
        all.bad_pages += reads.bad_pages;
        for (kind, n) in reads.errors {
            *all.errors.entry(kind).or_insert(0) += n;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let peak = match sampler {
        Some(task) => task.await?,
        None => None,
    };
    let mut every: Vec<u64> = all
        .newest_us
        .iter()
        .chain(&all.before_us)
        .copied()
        .collect();
    let requests = every.len() as u64;
    Ok(HistoryReport {
        scenario: "history",
        room,
        seeded,
        seed_per_s,
        last_seq,
        clients: plan.clients,
        limit: plan.limit,
        depth: plan.depth,
        requests,
        requests_per_s: (requests as f64 / elapsed).round(),
        messages_per_s: (all.messages as f64 / elapsed).round(),
        errors: all.errors.values().sum(),
        error_kinds: all.errors,
        bad_pages: all.bad_pages,
        latency_ms: Percentiles::of(&mut every),
        newest_ms: Percentiles::of(&mut all.newest_us),
        before_ms: Percentiles::of(&mut all.before_us),
        server_rss_before_mib: before_rss,
        server_rss_peak_mib: peak,
    })
}

/// Posts `plan.messages` messages into `room`; returns messages per second. Any failure ends
/// the run: a room with fewer messages than asked would measure something else.
async fn seed(
    api: &Api,
    user: &User,
    room: &str,
    plan: &HistoryPlan,
    run_id: &str,
) -> Result<f64, Error> {
    let started = Instant::now();
    let mut posts = stream::iter(0..plan.messages)
        .map(|n| {
            let body = stamp(unix_micros(), n, plan.body_bytes);
            let client_id = format!("{run_id}-{n}");
            async move { api.send_message(user, room, &body, &client_id).await }
        })
        .buffer_unordered(plan.seed_concurrency);
    while let Some(posted) = posts.next().await {
        if let Err(kind) = posted {
            let hint = if kind == "http 429" {
                " (start the server with CHAT_RATE_LIMITS=off)"
            } else {
                ""
            };
            return Err(format!("seeding room {room}: {kind}{hint}").into());
        }
    }
    let per_s = plan.messages as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "seeded room {room} with {} messages in {:.1?} ({per_s:.0}/s); read it again with \
         --room {room}",
        plan.messages,
        started.elapsed()
    );
    Ok(per_s.round())
}

/// One client: the newest page, then up to `depth` pages back, over and over until `until`.
async fn read(api: &Api, user: &User, room: &str, depth: u32, limit: u32, until: Instant) -> Reads {
    let mut reads = Reads::default();
    'walks: while Instant::now() < until {
        let mut before = None;
        for _ in 0..=depth {
            let asked = Instant::now();
            let page = match api.history_page(user, room, before, limit).await {
                Ok(page) => page,
                Err(kind) => {
                    *reads.errors.entry(kind).or_insert(0) += 1;
                    continue 'walks;
                }
            };
            let took = u64::try_from(asked.elapsed().as_micros()).unwrap_or(u64::MAX);
            if before.is_some() {
                reads.before_us.push(took);
            } else {
                reads.newest_us.push(took);
            }
            reads.messages += page.seqs.len() as u64;
            if !page_ok(&page, before, limit) {
                reads.bad_pages += 1;
            }
            match page.seqs.first() {
                Some(&first) if page.has_more && Instant::now() < until => before = Some(first),
                _ => continue 'walks,
            }
        }
    }
    reads
}

/// Whether `page` is what the contract promises for `before` (the newest page when `None`):
/// gapless ascending seqs, right below `before`, `limit` of them unless it reaches seq 1, and
/// `has_more` exactly when older ones exist.
fn page_ok(page: &Page, before: Option<u64>, limit: u32) -> bool {
    let gapless = page.seqs.windows(2).all(|w| w[1] == w[0] + 1);
    let below = match (before, page.seqs.last()) {
        (Some(before), Some(&last)) => last + 1 == before,
        (Some(before), None) => before <= 1,
        (None, _) => true,
    };
    let first = page.seqs.first().copied().unwrap_or(1);
    let full = page.seqs.len() == limit as usize || first == 1;
    gapless && below && full && page.has_more == (first > 1)
}

impl HistoryReport {
    /// The human table.
    pub fn table(&self) -> String {
        let memory = |m: Option<f64>| m.map_or("n/a".to_owned(), |m| format!("{m:.1} MiB"));
        format!(
            "scenario              history\n\
             room                  {} (last seq {}, seeded {} at {}/s)\n\
             clients               {}, pages of {}, {} before= pages per walk\n\
             requests              {} ({}/s, {} messages/s)\n\
             errors                {} {:?}\n\
             bad pages             {}\n\
             latency ms            {}\n\
             newest page ms        {}\n\
             before= page ms       {}\n\
             server RSS before     {}\n\
             server RSS peak       {}\n",
            self.room,
            self.last_seq,
            self.seeded,
            self.seed_per_s,
            self.clients,
            self.limit,
            self.depth,
            self.requests,
            self.requests_per_s,
            self.messages_per_s,
            self.errors,
            self.error_kinds,
            self.bad_pages,
            self.latency_ms,
            self.newest_ms,
            self.before_ms,
            memory(self.server_rss_before_mib),
            memory(self.server_rss_peak_mib),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(seqs: std::ops::RangeInclusive<u64>, has_more: bool) -> Page {
        Page {
            seqs: seqs.collect(),
            has_more,
        }
    }

    #[test]
    fn pages_are_checked_against_the_contract() {
        assert!(page_ok(&page(51..=100, true), None, 50));
        assert!(page_ok(&page(1..=50, false), Some(51), 50));
        assert!(page_ok(&page(1..=20, false), None, 50));
        assert!(!page_ok(&page(1..=50, true), Some(51), 50));
        assert!(!page_ok(&page(2..=50, true), Some(51), 50));
        assert!(!page_ok(&page(1..=49, false), Some(51), 50));
        let gap = Page {
            seqs: vec![1, 2, 4],
            has_more: false,
        };
        assert!(!page_ok(&gap, None, 50));
    }
}
