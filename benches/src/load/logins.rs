//! The `logins` scenario: many clients sign in at once, for a while. Each login verifies an
//! argon2id hash, which the server runs on a capped number of threads, so this measures the
//! sign-in throughput that cap allows, the latency of the queue in front of it, and the memory
//! the hashing takes.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::client::{run_id, Api, Error, PASSWORD};
use super::stats::{peak_rss, status_mib, Percentiles};

/// A login waits behind every other one in the hashing queue: be patient.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Fine enough to catch the hashing threads' memory as it is taken.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// What to run.
#[derive(Debug, Clone)]
pub struct LoginsPlan {
    /// The server (`http://host:port`).
    pub url: String,
    /// Clients signing in back to back, each on a connection of its own.
    pub concurrency: usize,
    /// How long to sign in.
    pub duration: Duration,
    /// A server process whose resident memory to sample.
    pub server_pid: Option<u32>,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoginsReport {
    /// Always `logins`.
    pub scenario: &'static str,
    /// Clients signing in at once.
    pub concurrency: usize,
    /// Successful logins.
    pub logins: u64,
    /// Failed ones (any answer but `200`, or no answer).
    pub errors: u64,
    /// Successful logins per second.
    pub logins_per_sec: f64,
    /// Request to answer, milliseconds.
    pub latency_ms: Percentiles,
    /// The server's resident memory before the first login, MiB.
    pub server_rss_before_mib: Option<f64>,
    /// The largest resident memory sampled meanwhile, MiB.
    pub server_rss_peak_mib: Option<f64>,
}

/// Registers one user, then signs it in from `concurrency` clients until the time is up.
pub async fn run(plan: &LoginsPlan) -> Result<LoginsReport, Error> {
    let api = Api::new(&plan.url, plan.concurrency, LOGIN_TIMEOUT)?;
    let username = format!("load-{}-login", run_id());
    api.register_and_login(&username, PASSWORD).await?;

    let before = plan.server_pid.and_then(|pid| status_mib(pid, "VmRSS"));
    let (stop, stopped) = watch::channel(false);
    let sampler = plan
        .server_pid
        .map(|pid| tokio::spawn(peak_rss(pid, RSS_SAMPLE_EVERY, stopped)));
    let started = Instant::now();
    let until = started + plan.duration;
    let mut clients = JoinSet::new();
    for _ in 0..plan.concurrency {
        let (api, username) = (api.clone(), username.clone());
        clients.spawn(async move {
            let (mut micros, mut errors) = (Vec::new(), 0u64);
            let body = json!({"login": username, "password": PASSWORD});
            while Instant::now() < until {
                let sent = Instant::now();
                let answer = api
                    .http()
                    .post(api.url("/v1/auth/login"))
                    .json(&body)
                    .send()
                    .await;
                match answer {
                    Ok(response) if response.status().is_success() => {
                        micros.push(sent.elapsed().as_micros() as u64);
                    }
                    _ => errors += 1,
                }
            }
            (micros, errors)
        });
    }
    let (mut micros, mut errors) = (Vec::new(), 0);
    while let Some(done) = clients.join_next().await {
        let (m, e) = done?;
        micros.extend(m);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let peak = match sampler {
        Some(task) => task.await?,
        None => None,
    };
    Ok(LoginsReport {
        scenario: "logins",
        concurrency: plan.concurrency,
        logins: micros.len() as u64,
        errors,
        logins_per_sec: micros.len() as f64 / elapsed,
        latency_ms: Percentiles::of(&mut micros),
        server_rss_before_mib: before,
        server_rss_peak_mib: peak,
    })
}

impl LoginsReport {
    /// The human table.
    pub fn table(&self) -> String {
        let memory = |m: Option<f64>| m.map_or("n/a".to_owned(), |m| format!("{m:.1} MiB"));
        let l = &self.latency_ms;
        format!(
            "scenario              logins\n\
             clients at once       {}\n\
             logins                {} ({} errors)\n\
             throughput            {:.1} logins/s\n\
             latency p50/p90/p99   {:.0} / {:.0} / {:.0} ms (max {:.0})\n\
             server RSS before     {}\n\
             server RSS peak       {}\n",
            self.concurrency,
            self.logins,
            self.errors,
            self.logins_per_sec,
            l.p50,
            l.p90,
            l.p99,
            l.max,
            memory(self.server_rss_before_mib),
            memory(self.server_rss_peak_mib),
        )
    }
}
