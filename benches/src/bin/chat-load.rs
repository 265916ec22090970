//! `chat-load`: a load generator for running `chat-server` processes.
//!
//! ```text
//! chat-load multinode --send-url http://127.0.0.1:18201 --recv-url http://127.0.0.1:18202 \
//!     --rate 1000 --duration 10 --receivers 10 --server-pid A --server-pid B [--json]
//! chat-load fanout --url http://127.0.0.1:18201 --subscribers 1000 --rate 50 --body-bytes 200
//! chat-load chat --url http://127.0.0.1:18201 --rooms 1000 --members 10 --rate 1000 \
//!     --duration 10 --server-pid A [--ws-share 0.2]
//! chat-load idle --url http://127.0.0.1:18201 --sockets 20000 --hold 40 --server-pid A
//! chat-load history --url http://127.0.0.1:18201 --messages 2000 --clients 16 --duration 10
//! chat-load files --url http://127.0.0.1:18201 --mib 50 --rounds 5 --server-pid A
//! chat-load logins --url http://127.0.0.1:18201 --concurrency 16 --duration 10 --server-pid A
//! ```
//!
//! The messaging scenarios sign in fresh users (`load-<8 hex>-...`) and put them in new rooms:
//! `multinode` and `fanout` one room of receivers with a sender of its own, `chat` many rooms
//! whose every member has a socket, and each message is posted by a random member of a random
//! room (over HTTP, or a share over the member's own socket with `message.send`). They post at a
//! fixed rate and check that every receiver gets every acked message of its room exactly once,
//! in seq order, measuring send-to-receive latency. They print a table and, last, one JSON line
//! with the same figures (with `--json` the table goes to stderr, so stdout holds only the
//! JSON). Exit status: 0 when everything arrived exactly once in order, 1 when something was
//! lost, duplicated or out of order, 2 when the run could not be set up.
//!
//! `idle` opens many sockets that only stay open and reports the server's memory per socket.
//! `history` seeds a public room (or reads one given with `--room`) and reads it from many
//! clients at once: the newest page, then `before=` pages. `files` uploads a file and downloads
//! it again, a few times, and reports the median throughput each way and the server's resident
//! memory meanwhile. `logins` signs one user in from many clients at once and reports logins per
//! second under the server's hashing cap.
//!
//! Users: registering one costs the server an argon2 hash, and logging in another. A server
//! started with `CHAT_HOST_JWT_SECRET` and `CHAT_HOST_JWT_ISSUER` also accepts tokens of a host
//! application: given the same values (`--host-secret`, `--host-issuer`, or those variables),
//! the generator mints its users' tokens itself and the server provisions them on first use, so
//! thousands of users take seconds instead of minutes.
//!
//! It only talks to the URLs it is given. Servers limit message sends per user (API.md, 20/s by
//! default): start them with `CHAT_RATE_LIMITS=off` for rates above that. A socket is a file
//! descriptor at each end: a run that needs more than this process's or a `--server-pid`'s
//! open-file limit (`/proc/<pid>/limits`) stops before it starts, saying so.

use std::process::ExitCode;
use std::time::Duration;

use chat_benches::load::client::Error;
use chat_benches::load::files::{self, FilesPlan};
use chat_benches::load::history::{self, HistoryPlan};
use chat_benches::load::idle::{self, IdlePlan};
use chat_benches::load::logins::{self, LoginsPlan};
use chat_benches::load::run::{run, Plan, Senders};
use chat_benches::load::users::HostIssuer;
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    about = "Load generator for chat-server",
    long_about = "Load generator for chat-server. Senders post far above a person's rate: \
                  start the servers with CHAT_RATE_LIMITS=off, or sends beyond the limit count \
                  as errors (429).",
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
    /// Many rooms, every member on a socket, each message from a random member of a random
    /// room (a realistic mix).
    Chat(Chat),
    /// Many idle sockets held open (the server's memory per connection).
    Idle(Idle),
    /// Many clients paging through one room's history (newest page, then `before=`).
    History(History),
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
struct Chat {
    /// The server used for everything.
    #[arg(long)]
    url: String,
    /// Rooms.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    rooms: u32,
    /// Members of each room, each a user with one socket (the first owns the room).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    members: u32,
    /// Messages per second over all rooms.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// The share of messages (0 to 1) posted over the poster's own WebSocket
    /// (`message.send`, acked by `ack`) instead of `POST .../messages`.
    #[arg(long, default_value_t = 0.0)]
    ws_share: f64,
    /// Message body length; the `t=<micros> n=<k>` stamp alone when shorter.
    #[arg(long, default_value_t = 100)]
    body_bytes: usize,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
struct Idle {
    /// The server used for everything.
    #[arg(long)]
    url: String,
    /// Sockets to open (each needs a file descriptor here and one in the server).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..))]
    sockets: u32,
    /// Sockets per user (the server allows CHAT_MAX_CONNECTIONS_PER_USER, 20 by default).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    sockets_per_user: u32,
    /// Seconds to hold them open once all are (the server pings a socket idle for
    /// CHAT_WS_PING_SECS, 30 by default; they answer).
    #[arg(long, default_value_t = 40.0)]
    hold: f64,
    /// WebSocket handshakes in flight at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: u32,
    /// The server process whose resident memory to read.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print only the JSON line on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    host: Host,
}

#[derive(Debug, Args)]
struct History {
    /// The server used for everything.
    #[arg(long)]
    url: String,
    /// Read this public room instead of seeding one (`history` prints the id of the room it
    /// seeds, which is public).
    #[arg(long)]
    room: Option<String>,
    /// Messages to seed the room with.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,
    /// Their body length; the `t=<micros> n=<k>` stamp alone when shorter.
    #[arg(long, default_value_t = 200)]
    body_bytes: usize,
    /// Posts in flight while seeding.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    seed_concurrency: u32,
    /// Clients reading at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    clients: u32,
    /// Seconds of reading.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// `before=` pages each client reads after each newest page.
    #[arg(long, default_value_t = 4)]
    depth: u32,
    /// Messages per page (`limit`; the server clamps it to 100).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100))]
    limit: u32,
    /// The server process whose resident memory to sample.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print only the JSON line on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    host: Host,
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
    /// Sends in flight at most (over HTTP, one connection each) [default: 8; chat: 64].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: Option<u32>,
    /// A server process whose peak memory (VmHWM) to report; repeatable.
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
    /// Print only the JSON line on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    host: Host,
}

/// The host application's token settings, the same as the server's.
#[derive(Args)]
struct Host {
    /// The server's CHAT_HOST_JWT_SECRET: users get HS256 tokens minted here and the server
    /// provisions them on first use (no password hashing). Without it they are registered.
    #[arg(long, env = "CHAT_HOST_JWT_SECRET", hide_env_values = true)]
    host_secret: Option<String>,
    /// The server's CHAT_HOST_JWT_ISSUER (required with a host secret).
    #[arg(long, env = "CHAT_HOST_JWT_ISSUER")]
    host_issuer: Option<String>,
    /// The server's CHAT_HOST_JWT_AUDIENCE, if it has one.
    #[arg(long, env = "CHAT_HOST_JWT_AUDIENCE")]
    host_audience: Option<String>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never reaches a log.
        f.debug_struct("Host")
            .field("host_issuer", &self.host_issuer)
            .field("host_audience", &self.host_audience)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// The issuer these settings describe; `None` without a secret.
    fn issuer(&self) -> Result<Option<HostIssuer>, String> {
        match (&self.host_secret, &self.host_issuer) {
            (None, _) => Ok(None),
            (Some(_), None) => Err("--host-secret needs --host-issuer".into()),
            (Some(secret), Some(issuer)) => {
                HostIssuer::new(secret, issuer, self.host_audience.as_deref())
                    .map(Some)
                    .map_err(|e| e.to_string())
            }
        }
    }
}

/// Seconds from the command line; `Duration::from_secs_f64` would panic on the rest.
fn seconds(name: &str, value: f64) -> Result<Duration, String> {
    if value.is_finite() && value > 0.0 && value < 1e6 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(format!("--{name} must be a positive number of seconds"))
    }
}

/// The shape of a messaging scenario, before the common settings.
struct Messaging {
    scenario: &'static str,
    send_url: String,
    recv_url: String,
    rooms: u32,
    members: u32,
    senders: Senders,
    rate: f64,
    body_bytes: usize,
    concurrency: u32,
}

/// The plan of a messaging scenario.
fn plan(m: Messaging, common: Common) -> Result<(Plan, bool), String> {
    if !(m.rate.is_finite() && m.rate > 0.0) {
        return Err("--rate must be a positive number".into());
    }
    if let Senders::Members { ws_share } = m.senders {
        if !(0.0..=1.0).contains(&ws_share) {
            return Err("--ws-share must be between 0 and 1".into());
        }
    }
    let plan = Plan {
        scenario: m.scenario,
        send_url: m.send_url,
        recv_url: m.recv_url,
        rooms: m.rooms as usize,
        members: m.members as usize,
        senders: m.senders,
        rate: m.rate,
        duration: seconds("duration", common.duration)?,
        grace: seconds("grace", common.grace)?,
        concurrency: common.concurrency.unwrap_or(m.concurrency) as usize,
        body_bytes: m.body_bytes,
        server_pids: common.server_pids,
        host: common.host.issuer()?,
    };
    Ok((plan, common.json))
}

#[tokio::main]
async fn main() -> ExitCode {
    let planned = match Cli::parse().scenario {
        Scenario::Multinode(m) => plan(
            Messaging {
                scenario: "multinode",
                send_url: m.send_url,
                recv_url: m.recv_url,
                rooms: 1,
                members: m.receivers,
                senders: Senders::Dedicated,
                rate: m.rate,
                body_bytes: m.body_bytes,
                concurrency: 8,
            },
            m.common,
        ),
        Scenario::Fanout(f) => plan(
            Messaging {
                scenario: "fanout",
                send_url: f.url.clone(),
                recv_url: f.url,
                rooms: 1,
                members: f.subscribers,
                senders: Senders::Dedicated,
                rate: f.rate,
                body_bytes: f.body_bytes,
                concurrency: 8,
            },
            f.common,
        ),
        Scenario::Chat(c) => plan(
            Messaging {
                scenario: "chat",
                send_url: c.url.clone(),
                recv_url: c.url,
                rooms: c.rooms,
                members: c.members,
                senders: Senders::Members {
                    ws_share: c.ws_share,
                },
                rate: c.rate,
                body_bytes: c.body_bytes,
                concurrency: 64,
            },
            c.common,
        ),
        Scenario::Idle(i) => return idle(i).await,
        Scenario::History(h) => return history(h).await,
        Scenario::Files(f) => return files(f).await,
        Scenario::Logins(l) => return logins(l).await,
    };
    let (plan, json) = match planned {
        Ok(plan) => plan,
        Err(e) => return usage(&e),
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

fn usage(e: &str) -> ExitCode {
    eprintln!("chat-load: {e}");
    ExitCode::from(2)
}

async fn idle(i: Idle) -> ExitCode {
    let (hold, host) = match (seconds("hold", i.hold), i.host.issuer()) {
        (Ok(hold), Ok(host)) => (hold, host),
        (Err(e), _) | (_, Err(e)) => return usage(&e),
    };
    let plan = IdlePlan {
        url: i.url,
        sockets: i.sockets as usize,
        sockets_per_user: i.sockets_per_user as usize,
        concurrency: i.concurrency as usize,
        hold,
        server_pid: i.server_pid,
        host,
    };
    let report = match idle::run(&plan).await {
        Ok(report) => report,
        Err(e) => return setup_failed(&e),
    };
    print_report(&report.table(), &report, i.json);
    if report.all_held() {
        ExitCode::SUCCESS
    } else {
        eprintln!("chat-load: FAILED: some sockets did not open or did not stay open");
        ExitCode::FAILURE
    }
}

async fn history(h: History) -> ExitCode {
    let (duration, host) = match (seconds("duration", h.duration), h.host.issuer()) {
        (Ok(duration), Ok(host)) => (duration, host),
        (Err(e), _) | (_, Err(e)) => return usage(&e),
    };
    let plan = HistoryPlan {
        url: h.url,
        room: h.room,
        messages: h.messages,
        body_bytes: h.body_bytes,
        seed_concurrency: h.seed_concurrency as usize,
        clients: h.clients as usize,
        duration,
        depth: h.depth,
        limit: h.limit,
        server_pid: h.server_pid,
        host,
    };
    let report = match history::run(&plan).await {
        Ok(report) => report,
        Err(e) => return setup_failed(&e),
    };
    print_report(&report.table(), &report, h.json);
    if report.errors == 0 && report.bad_pages == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("chat-load: FAILED: some reads failed or broke the contract");
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
        Err(e) => return usage(&e),
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
