//! The `idle` scenario: many WebSockets that only stay open (answering the server's pings),
//! to measure what an idle connection costs the server in memory.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::{sleep, Instant};

use super::client::{connect_each, run_id, ws_url, Error};
use super::limits;
use super::stats::{peak_rss, status_kib, status_mib};
use super::users::{sign_in_all, HostIssuer};

/// How long the server gets to settle (tasks parked, buffers returned) before a memory reading.
const SETTLE: Duration = Duration::from_secs(2);
/// Coarse: idle sockets change the server's memory slowly.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// What to run.
#[derive(Debug, Clone)]
pub struct IdlePlan {
    /// The server (`http://host:port`).
    pub url: String,
    /// Sockets to open.
    pub sockets: usize,
    /// Sockets each user opens (the server allows `CHAT_MAX_CONNECTIONS_PER_USER`, 20 by
    /// default).
    pub sockets_per_user: usize,
    /// Handshakes in flight at once.
    pub concurrency: usize,
    /// How long to hold the sockets open once all are.
    pub hold: Duration,
    /// The server process whose memory to read.
    pub server_pid: Option<u32>,
    /// Mints the users' tokens when set; otherwise they are registered.
    pub host: Option<HostIssuer>,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct IdleReport {
    /// Always `idle`.
    pub scenario: &'static str,
    /// Sockets asked for.
    pub sockets: usize,
    /// Users they belong to.
    pub users: usize,
    /// Sockets that reached `ready`.
    pub opened: usize,
    /// Sockets that did not, by reason.
    pub failed: BTreeMap<String, u64>,
    /// Seconds to open them all.
    pub open_s: f64,
    /// Seconds they were held.
    pub hold_s: f64,
    /// Open sockets the server closed (or that broke) while held, by reason.
    pub closed_early: BTreeMap<String, u64>,
    /// The server's resident memory with the users signed in, before the first socket, MiB.
    pub server_rss_before_mib: Option<f64>,
    /// The same once every socket is open, MiB.
    pub server_rss_open_mib: Option<f64>,
    /// The same at the end of holding, MiB.
    pub server_rss_held_mib: Option<f64>,
    /// The largest sample while holding, MiB.
    pub server_rss_peak_mib: Option<f64>,
    /// (open - before) / opened sockets, KiB.
    pub per_socket_kib: Option<f64>,
}

/// Signs the users in, opens the sockets, holds them, and reads the server's memory on the way.
pub async fn run(plan: &IdlePlan) -> Result<IdleReport, Error> {
    let ws = ws_url(&plan.url)?;
    limits::check(plan.sockets, plan.concurrency, plan.server_pid.as_slice())?;
    let per_user = plan.sockets_per_user.max(1);
    let run_id = run_id();
    let names: Vec<String> = (0..plan.sockets.div_ceil(per_user))
        .map(|u| format!("load-{run_id}-i{u}"))
        .collect();
    // Provisioned (or registered) before the first reading: the growth is the sockets' alone.
    let users = sign_in_all(&plan.url, &names, plan.host.as_ref()).await?;
    sleep(SETTLE).await;
    let kib = |field| plan.server_pid.and_then(|pid| status_kib(pid, field));
    let before = kib("VmRSS");

    let started = Instant::now();
    let tokens = (0..plan.sockets).map(|s| users[s / per_user].token.as_str());
    let mut failed = BTreeMap::new();
    let mut sockets = Vec::with_capacity(plan.sockets);
    for socket in connect_each(&ws, tokens, plan.concurrency).await {
        match socket {
            Ok(socket) => sockets.push(socket),
            Err(e) => *failed.entry(e.to_string()).or_insert(0) += 1,
        }
    }
    let open_s = started.elapsed().as_secs_f64();
    let opened = sockets.len();
    eprintln!(
        "opened {opened} of {} sockets in {open_s:.1} s; holding them for {:?}",
        plan.sockets, plan.hold
    );
    sleep(SETTLE).await;
    let open = kib("VmRSS");

    let (stop, stopped) = watch::channel(false);
    let sampler = plan
        .server_pid
        .map(|pid| tokio::spawn(peak_rss(pid, RSS_SAMPLE_EVERY, stopped)));
    let until = Instant::now() + plan.hold;
    let held: Vec<_> = sockets
        .into_iter()
        .map(|socket| tokio::spawn(socket.hold(until)))
        .collect();
    // Read at the end of holding, before the sockets close.
    sleep(plan.hold).await;
    let held_rss = plan.server_pid.and_then(|pid| status_mib(pid, "VmRSS"));
    let mut closed_early = BTreeMap::new();
    for socket in held {
        let reason = socket
            .await
            .unwrap_or_else(|e| Some(format!("task failed: {e}")));
        if let Some(reason) = reason {
            *closed_early.entry(reason).or_insert(0) += 1;
        }
    }
    let _ = stop.send(true);
    let peak = match sampler {
        Some(task) => task.await?,
        None => None,
    };
    let mib = |kib: Option<u64>| kib.map(|k| (k as f64 / 1024.0 * 10.0).round() / 10.0);
    let per_socket_kib = match (before, open) {
        (Some(before), Some(open)) if opened > 0 => {
            Some(((open as f64 - before as f64) / opened as f64 * 10.0).round() / 10.0)
        }
        _ => None,
    };
    Ok(IdleReport {
        scenario: "idle",
        sockets: plan.sockets,
        users: users.len(),
        opened,
        failed,
        open_s,
        hold_s: plan.hold.as_secs_f64(),
        closed_early,
        server_rss_before_mib: mib(before),
        server_rss_open_mib: mib(open),
        server_rss_held_mib: held_rss,
        server_rss_peak_mib: peak,
        per_socket_kib,
    })
}

impl IdleReport {
    /// Whether every socket opened and stayed open.
    pub fn all_held(&self) -> bool {
        self.opened == self.sockets && self.closed_early.is_empty()
    }

    /// The human table.
    pub fn table(&self) -> String {
        let memory = |m: Option<f64>| m.map_or("n/a".to_owned(), |m| format!("{m:.1} MiB"));
        let per_socket = self
            .per_socket_kib
            .map_or("n/a".to_owned(), |k| format!("{k:.1} KiB"));
        format!(
            "scenario              idle\n\
             sockets               {} of {} open ({} users), in {:.1} s\n\
             failed to open        {:?}\n\
             held                  {:.0} s; closed early {:?}\n\
             server RSS before     {}\n\
             server RSS all open   {}\n\
             server RSS held       {} (peak {})\n\
             per socket            {}\n",
            self.opened,
            self.sockets,
            self.users,
            self.open_s,
            self.failed,
            self.hold_s,
            self.closed_early,
            memory(self.server_rss_before_mib),
            memory(self.server_rss_open_mib),
            memory(self.server_rss_held_mib),
            memory(self.server_rss_peak_mib),
            per_socket,
        )
    }
}
