//! Configuration from CLI flags and `CHAT_*` environment variables. Nothing is required: the
//! defaults serve on 127.0.0.1:8080 with SQLite and a generated secret under `./data`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// The server's settings; every flag also reads its `CHAT_*` variable.
#[derive(Clone, Parser)]
#[command(
    name = "chat-server",
    version,
    about = "A chat server: HTTP + WebSocket API over chat-core"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "CHAT_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Directory for the SQLite database and the generated JWT secret.
    #[arg(long, env = "CHAT_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Database URL: `sqlite:...`, or `postgres://...` (several nodes may share one);
    /// default: `chat.db` in the data directory.
    #[arg(long, env = "CHAT_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Connections the store may open (SQLite: readers; writes use one more).
    #[arg(long, env = "CHAT_DB_MAX_CONNECTIONS", default_value_t = 8)]
    pub db_max_connections: u32,
    /// Seconds a request waits for a database connection before answering 503.
    #[arg(long, env = "CHAT_DB_ACQUIRE_TIMEOUT_SECS", default_value_t = 5)]
    pub db_acquire_timeout_secs: u64,
    /// The most new messages the store commits in one transaction (group commit: messages that
    /// arrive while a commit runs wait and go in the next one together).
    #[arg(long, env = "CHAT_DB_APPEND_BATCH", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub db_append_batch: u32,
    /// HS256 secret for access tokens, at least 32 bytes; default: generated once and kept in
    /// the data directory.
    #[arg(long, env = "CHAT_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// The `iss` claim of issued tokens, required on presented ones.
    #[arg(long, env = "CHAT_JWT_ISSUER", default_value = "chat-server")]
    pub jwt_issuer: String,
    /// Access-token lifetime in seconds.
    #[arg(long, env = "CHAT_JWT_TTL_SECS", default_value_t = 3600)]
    pub jwt_ttl_secs: i64,
    /// Seconds a sign-in session found live is trusted before the store is asked again.
    /// Sign-outs reach every node at once over the bus; this bounds how long one whose hint
    /// was lost still lets the session in (0: ask the store on every request).
    #[arg(long, env = "CHAT_SESSION_TRUST_SECS", default_value_t = 5)]
    pub session_trust_secs: u64,
    /// Days sent domain events stay in the outbox before they are pruned.
    #[arg(long, env = "CHAT_OUTBOX_RETENTION_DAYS", default_value_t = 7,
          value_parser = clap::value_parser!(u32).range(0..=3650))]
    pub outbox_retention_days: u32,
    /// Milliseconds an event relay waits before looking at the outbox again when it found
    /// nothing (the most a domain event waits before it is relayed).
    #[arg(long, env = "CHAT_OUTBOX_POLL_MS", default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub outbox_poll_ms: u64,
    /// Days the username of a deleted account stays taken, so nobody can pass for its owner
    /// at once (0: free at once).
    #[arg(long, env = "CHAT_USERNAME_QUARANTINE_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(0..=36_500))]
    pub username_quarantine_days: u32,
    /// The `aud` claim of issued tokens, then required on presented ones; default: none.
    #[arg(long, env = "CHAT_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Accept a host application's HS256 tokens signed with this secret (at least 32 bytes).
    #[arg(
        long,
        env = "CHAT_HOST_JWT_SECRET",
        hide_env_values = true,
        conflicts_with = "host_jwt_public_key"
    )]
    pub host_jwt_secret: Option<String>,
    /// Accept a host application's tokens signed by the private half of this PEM public key
    /// file (RSA: RS256, EC P-256: ES256, EC P-384: ES384, Ed25519: EdDSA).
    #[arg(long, env = "CHAT_HOST_JWT_PUBLIC_KEY")]
    pub host_jwt_public_key: Option<PathBuf>,
    /// The algorithm of the host's tokens when not the one its key implies (RS512, ES384, ...).
    #[arg(long, env = "CHAT_HOST_JWT_ALGORITHM")]
    pub host_jwt_algorithm: Option<String>,
    /// The `iss` the host's tokens must carry; required with a host secret or key.
    #[arg(long, env = "CHAT_HOST_JWT_ISSUER")]
    pub host_jwt_issuer: Option<String>,
    /// The `aud` the host's tokens must carry; default: not checked.
    #[arg(long, env = "CHAT_HOST_JWT_AUDIENCE")]
    pub host_jwt_audience: Option<String>,
    /// Longest message body in characters.
    #[arg(long, env = "CHAT_MAX_MESSAGE_CHARS", default_value_t = 4000)]
    pub max_message_chars: usize,
    /// Largest JSON request body in bytes.
    #[arg(long, env = "CHAT_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: u64,
    /// Most rooms a user can be in (bounds every list of a user's rooms).
    #[arg(long, env = "CHAT_MAX_ROOMS_PER_USER", default_value_t = 5000)]
    pub max_rooms_per_user: u32,
    /// Largest uploaded file in bytes (counted while streaming; 413 beyond).
    #[arg(long, env = "CHAT_UPLOAD_MAX_BYTES", default_value_t = 50 * 1024 * 1024)]
    pub upload_max_bytes: u64,
    /// Directory of uploaded files; default: `uploads` in the data directory. Several nodes
    /// must share it.
    #[arg(long, env = "CHAT_UPLOAD_DIR")]
    pub upload_dir: Option<PathBuf>,
    /// S3 bucket for uploaded files, instead of the upload directory (several nodes may share
    /// it); needs the access key settings.
    #[cfg(feature = "s3")]
    #[arg(long, env = "CHAT_S3_BUCKET")]
    pub s3_bucket: Option<String>,
    /// URL of an S3-compatible service (MinIO, R2, ...); default: AWS S3.
    #[cfg(feature = "s3")]
    #[arg(long, env = "CHAT_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// Region S3 requests are signed for; default: us-east-1.
    #[cfg(feature = "s3")]
    #[arg(long, env = "CHAT_S3_REGION")]
    pub s3_region: Option<String>,
    /// Id of the S3 access key.
    #[cfg(feature = "s3")]
    #[arg(long, env = "CHAT_S3_ACCESS_KEY_ID")]
    pub s3_access_key_id: Option<String>,
    /// Secret of the S3 access key.
    #[cfg(feature = "s3")]
    #[arg(long, env = "CHAT_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,
    /// Folder of the bucket uploads are kept under; default: uploads.
    #[cfg(feature = "s3")]
    #[arg(long, env = "CHAT_S3_PREFIX")]
    pub s3_prefix: Option<String>,
    /// Accept an `http://` S3 endpoint (a local MinIO); default: false, HTTPS only.
    #[cfg(feature = "s3")]
    #[arg(long, env = "CHAT_S3_ALLOW_HTTP", value_parser = clap::builder::BoolishValueParser::new())]
    pub s3_allow_http: Option<bool>,
    /// AMQP broker domain events are published to
    /// (`amqp://user:password@host:5672/%2f`); default: none.
    #[arg(long, env = "CHAT_AMQP_URL", hide_env_values = true)]
    pub amqp_url: Option<String>,
    /// Topic exchange domain events are published to (declared durable if missing).
    #[arg(long, env = "CHAT_AMQP_EXCHANGE", default_value = "chat.events")]
    pub amqp_exchange: String,
    /// URLs domain events are POSTed to, signed (comma-separated); default: none.
    #[arg(
        long,
        env = "CHAT_WEBHOOK_URLS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub webhook_urls: Vec<String>,
    /// Secret the webhooks' `X-Chat-Signature` is made with, at least 32 bytes; required with
    /// webhook URLs.
    #[arg(long, env = "CHAT_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// Seconds one webhook request may take before it counts as failed.
    #[arg(long, env = "CHAT_WEBHOOK_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub webhook_timeout_secs: u64,
    /// Failed attempts after which a webhook gives an event up (dead-letters it).
    #[arg(long, env = "CHAT_WEBHOOK_MAX_ATTEMPTS", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub webhook_max_attempts: u32,
    /// Seconds an upload that no message carries is kept before it is deleted.
    #[arg(long, env = "CHAT_UNATTACHED_UPLOAD_SECS", default_value_t = 24 * 3600)]
    pub unattached_upload_secs: i64,
    /// Different reactions one message takes (adding one more is 422).
    #[arg(long, env = "CHAT_MAX_REACTIONS_PER_MESSAGE", default_value_t = 20)]
    pub max_reactions_per_message: usize,
    /// WebSocket connections one user may have open on one node (one more is 429).
    #[arg(long, env = "CHAT_MAX_CONNECTIONS_PER_USER", default_value_t = 20)]
    pub max_connections_per_user: usize,
    /// Events queued per WebSocket before it is closed as a slow consumer (4008).
    #[arg(long, env = "CHAT_WS_QUEUE", default_value_t = 1024)]
    pub ws_queue: usize,
    /// Largest inbound WebSocket frame/message in bytes (a larger one closes with 1009).
    #[arg(long, env = "CHAT_WS_MAX_FRAME_BYTES", default_value_t = 65536)]
    pub ws_max_frame_bytes: usize,
    /// Seconds between server pings on an idle WebSocket; one unanswered for as long again
    /// closes it.
    #[arg(long, env = "CHAT_WS_PING_SECS", default_value_t = 30)]
    pub ws_ping_secs: u64,
    /// Browser origins allowed to open the WebSocket (comma-separated); same-origin requests and
    /// requests without `Origin` are always allowed.
    #[arg(long, env = "CHAT_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// `on` (default) or `off`: every rate limit (message sends per user, failed logins per
    /// account and per client address).
    #[arg(long, env = "CHAT_RATE_LIMITS", default_value = "on", value_parser = ["on", "off"])]
    pub rate_limits: String,
    /// Messages one user may send a second, over HTTP and WebSocket together.
    #[arg(long, env = "CHAT_SEND_RATE_PER_SEC", default_value_t = 20)]
    pub send_rate_per_sec: u32,
    /// Messages one user may send at once before the per-second rate applies.
    #[arg(long, env = "CHAT_SEND_BURST", default_value_t = 100)]
    pub send_burst: u32,
    /// Failed logins a minute, per account and per client address.
    #[arg(long, env = "CHAT_FAILED_LOGINS_PER_MIN", default_value_t = 10)]
    pub failed_logins_per_min: u32,
    /// Log filter (`info`, `chat_server=debug,warn`, ...).
    #[arg(long, env = "CHAT_LOG", default_value = "info")]
    pub log: String,
    /// `text` (default: one human-readable line per event) or `json` (one JSON object per
    /// line, for log collectors).
    #[arg(long, env = "CHAT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Bearer token `GET /metrics` requires; default: none, the metrics are open to whoever
    /// reaches the server (keep them off the public side of a proxy, or set this).
    #[arg(long, env = "CHAT_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("data_dir", &self.data_dir)
            .field("database_url", &self.database_url.as_ref().map(|_| "***"))
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "***"))
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_ttl_secs", &self.jwt_ttl_secs)
            .field("jwt_audience", &self.jwt_audience)
            .field(
                "host_jwt_secret",
                &self.host_jwt_secret.as_ref().map(|_| "***"),
            )
            .field("host_jwt_public_key", &self.host_jwt_public_key)
            .field("host_jwt_algorithm", &self.host_jwt_algorithm)
            .field("host_jwt_issuer", &self.host_jwt_issuer)
            .field("host_jwt_audience", &self.host_jwt_audience)
            .field("max_message_chars", &self.max_message_chars)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("ws_queue", &self.ws_queue)
            .field("ws_max_frame_bytes", &self.ws_max_frame_bytes)
            .field("log_format", &self.log_format)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "***"))
            .field("amqp_url", &self.amqp_url.as_ref().map(|_| "***"))
            .field("amqp_exchange", &self.amqp_exchange)
            .field("webhook_urls", &self.webhook_urls.len())
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "***"),
            )
            .finish_non_exhaustive()
    }
}

impl Config {
    /// The settings with no flag given (`CHAT_*` variables still apply).
    pub fn defaults() -> Config {
        Config::parse_from(["chat-server"])
    }
}
