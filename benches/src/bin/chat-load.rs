//! `chat-load`: a load generator for running `chat-server` processes.
//!
//! ```text
//! chat-load multinode --send-url http://127.0.0.1:18201 --recv-url http://127.0.0.1:18202 \
//!     --rate 1000 --duration 10 --receivers 10 --server-pid A --server-pid B [--json]
//! chat-load fanout --url http://127.0.0.1:18201 --subscribers 1000 --rate 50 --body-bytes 200
//! chat-load files --url http://127.0.0.1:18201 --mib 50 --rounds 5 --server-pid A
//! chat-load logins --url http://127.0.0.1:18201 --concurrency 16 --duration 10 --server-pid A
//! ```
//!
//! `files` uploads a file and downloads it again, a few times, and reports the median
//! throughput each way and the server's resident memory meanwhile. `logins` signs one user in
//! from many clients at once and reports logins per second under the server's hashing cap.
//!
//! The messaging scenarios register fresh users (`load-<8 hex>-...`), puts them in one new room, posts
//! messages over HTTP at a fixed rate and checks that every WebSocket receiver gets every acked
//! message exactly once, in seq order, measuring send-to-receive latency. It prints a table and,
//! last, one JSON line with the same figures (with `--json` the table goes to stderr, so stdout
//! holds only the JSON). Exit status: 0 when everything arrived exactly once in order, 1 when
//! something was lost, duplicated or out of order, 2 when the run could not be set up.
//!
//! It only talks to the URLs it is given. Servers limit message sends per user (API.md, 20/s by
//! default): start them with `CHAT_RATE_LIMITS=off` for rates above that.

use std::process::ExitCode;
use std::time::Duration;

use chat_benches::load::client::Error;
use chat_benches::load::files::{self, FilesPlan};
use chat_benches::load::logins::{self, LoginsPlan};
use chat_benches::load::run::{run, Plan};
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    about = "Load generator for chat-server",
    long_about = "Load generator for chat-server. One user sends every message, far above a \
                  person's rate: start the servers with CHAT_RATE_LIMITS=off, or sends beyond \
                  the limit count as errors (429).",
    version
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// One sender posts over HTTP to one server; receivers listen over WebSocket on another
    /// server sharing its database (delivery across nodes).
    Multinode(Multinode),
    /// One sender and many subscriber sockets on one server (fan-out of one room).
    Fanout(Fanout),
    /// Uploads of one large file, each downloaded again (throughput and server memory).
    Files(Files),
    /// Many clients signing in at once (throughput under the password hashing cap).
    Logins(Logins),
}

#[derive(Debug, Args)]
struct Multinode {
    /// The server that setup and sending use.
    #[arg(long)]
    send_url: String,
    /// The server the receivers' WebSockets connect to.
    #[arg(long)]
    recv_url: String,
    /// WebSocket receivers (each a user of its own).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    receivers: u32,
    /// Messages per second.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Message body length; the `t=<micros> n=<k>` stamp alone when shorter.
    #[arg(long, default_value_t = 0)]
    body_bytes: usize,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
struct Fanout {
    /// The server used for everything.
    #[arg(long)]
    url: String,
    /// WebSocket subscribers (each a user of its own).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    subscribers: u32,
    /// Messages per second (each is delivered to every subscriber).
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Message body length; the `t=<micros> n=<k>` stamp alone when shorter.
    #[arg(long, default_value_t = 200)]
    body_bytes: usize,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
struct Files {
    /// The server used for everything.
    #[arg(long)]
    url: String,
    /// Size of the file, MiB (the server's cap is 50 MiB by default).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=4096))]
    mib: u32,
    /// Uploads, each followed by a download.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// The server process whose resident memory to sample.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print only the JSON line on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct Logins {
    /// The server used for everything.
    #[arg(long)]
    url: String,
    /// Clients signing in back to back at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    concurrency: u32,
    /// Seconds of signing in.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// The server process whose resident memory to sample.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print only the JSON line on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct Common {
    /// Seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds after sending that deliveries may still arrive; also each send's timeout.
    #[arg(long, default_value_t = 5.0)]
    grace: f64,
    /// Send requests in flight at most (one HTTP connection each).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: u32,
    /// A server process whose peak memory (VmHWM) to report; repeatable.
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
    /// Print only the JSON line on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
}

/// Seconds from the command line; `Duration::from_secs_f64` would panic on the rest.
fn seconds(name: &str, value: f64) -> Result<Duration, String> {
    if value.is_finite() && value > 0.0 && value < 1e6 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(format!("--{name} must be a positive number of seconds"))
    }
}

/// The plan of a messaging scenario.
fn plan(
    scenario: &'static str,
    send_url: String,
    recv_url: String,
    receivers: u32,
    rate: f64,
    body_bytes: usize,
    common: Common,
) -> Result<(Plan, bool), String> {
    if !(rate.is_finite() && rate > 0.0) {
        return Err("--rate must be a positive number".into());
    }
    let plan = Plan {
        scenario,
        send_url,
        recv_url,
        receivers: receivers as usize,
        rate,
        duration: seconds("duration", common.duration)?,
        grace: seconds("grace", common.grace)?,
        concurrency: common.concurrency as usize,
        body_bytes,
        server_pids: common.server_pids,
    };
    Ok((plan, common.json))
}

#[tokio::main]
async fn main() -> ExitCode {
    let planned = match Cli::parse().scenario {
        Scenario::Multinode(m) => plan(
            "multinode",
            m.send_url,
            m.recv_url,
            m.receivers,
            m.rate,
            m.body_bytes,
            m.common,
        ),
        Scenario::Fanout(f) => plan(
            "fanout",
            f.url.clone(),
            f.url,
            f.subscribers,
            f.rate,
            f.body_bytes,
            f.common,
        ),
        Scenario::Files(f) => return files(f).await,
        Scenario::Logins(l) => return logins(l).await,
    };
    let (plan, json) = match planned {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("chat-load: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match run(&plan).await {
        Ok(report) => report,
        Err(e) => return setup_failed(&e),
    };
    print_report(&report.table(), &report, json);
    if report.delivered_exactly_once_in_order() {
        ExitCode::SUCCESS
    } else {
        eprintln!("chat-load: FAILED: messages lost, duplicated or out of order");
        ExitCode::FAILURE
    }
}

async fn files(f: Files) -> ExitCode {
    let plan = FilesPlan {
        url: f.url,
        bytes: f.mib as usize * 1024 * 1024,
        rounds: f.rounds,
        server_pid: f.server_pid,
    };
    let report = match files::run(&plan).await {
        Ok(report) => report,
        Err(e) => return setup_failed(&e),
    };
    print_report(&report.table(), &report, f.json);
    if report.intact {
        ExitCode::SUCCESS
    } else {
        eprintln!("chat-load: FAILED: a download differed from the upload");
        ExitCode::FAILURE
    }
}

async fn logins(l: Logins) -> ExitCode {
    let duration = match seconds("duration", l.duration) {
        Ok(duration) => duration,
        Err(e) => {
            eprintln!("chat-load: {e}");
            return ExitCode::from(2);
        }
    };
    let plan = LoginsPlan {
        url: l.url,
        concurrency: l.concurrency as usize,
        duration,
        server_pid: l.server_pid,
    };
    let report = match logins::run(&plan).await {
        Ok(report) => report,
        Err(e) => return setup_failed(&e),
    };
    print_report(&report.table(), &report, l.json);
    if report.errors == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("chat-load: FAILED: some logins failed");
        ExitCode::FAILURE
    }
}

/// The table, then the JSON line; with `json` only the JSON line goes to stdout.
fn print_report(table: &str, report: &impl serde::Serialize, json: bool) {
    if json {
        eprint!("{table}");
    } else {
        print!("{table}");
    }
    match serde_json::to_string(report) {
        Ok(line) => println!("{line}"),
        Err(e) => eprintln!("chat-load: the report did not serialize: {e}"),
    }
}

fn setup_failed(e: &Error) -> ExitCode {
    // reqwest and tungstenite keep the telling part ("connection refused") in sources.
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    eprintln!("chat-load: {message}");
    ExitCode::from(2)
}
