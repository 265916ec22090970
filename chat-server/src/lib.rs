//! chat-server: the HTTP + WebSocket API of `chat-core`, served by warp.
//!
//! As a program, `cargo run --release -p chat-server` serves on 127.0.0.1:8080 with SQLite
//! under `./data`. As a library, [`ChatApi`] is the API as one warp filter, to mount in an
//! existing warp application, served by [`serve`] (or `warp::serve`, whose WebSockets take
//! more memory; see [`serve`]):
//!
//! ```no_run
//! use std::sync::Arc;
//! use chat_core::{memory::MemoryStore, ChatEngine};
//! use chat_server::{ApiSettings, ChatApi};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = ChatEngine::builder(Arc::new(MemoryStore::new())).build().await?;
//! let api = ChatApi::new(engine, ApiSettings::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! chat_server::serve(listener, api.filter(), std::future::pending()).await;
//! # Ok(())
//! # }
//! ```

pub mod cli;
mod config;
mod connections;
mod error;
mod http;
mod logging;
mod metrics;
mod operator;
mod requests;
mod secret;
mod shown_config;
mod sinks;
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chat_core::auth::host::{HostKey, HostTokens};
use chat_core::auth::TokenIssuer;
use chat_core::blobs::FsBlobStore;
use chat_core::engine::Limits;
use chat_core::ports::{BlobStore, NodeId, Notifier, Store};
use chat_core::rate::Rate;
use chat_core::{ChatEngine, ChatError, StoreError};
use chat_store_postgres::{PgOptions, PgStore};
use chat_store_sqlite::{SqliteOptions, SqliteStore};
use tokio::sync::watch;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

pub use config::{Config, LogFormat};
pub use connections::serve;

use crate::metrics::Metrics;

/// The HTTP-side limits and settings of the API.
#[derive(Clone)]
pub struct ApiSettings {
    /// Largest JSON request body in bytes.
    pub max_body_bytes: u64,
    /// Largest uploaded file in bytes (the engine's cap; the server refuses a declared
    /// `Content-Length` beyond it before reading).
    pub upload_max_bytes: u64,
    /// Largest inbound WebSocket frame or message in bytes.
    pub ws_max_frame_bytes: usize,
    /// Idle time before the server pings a WebSocket, and how long it waits for the answer.
    pub ws_ping_interval: Duration,
    /// Browser origins allowed to open the WebSocket besides the server's own.
    pub allowed_origins: Vec<String>,
    /// The bearer token `GET /metrics` requires; `None` leaves the metrics open.
    pub metrics_token: Option<String>,
}

impl std::fmt::Debug for ApiSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSettings")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("upload_max_bytes", &self.upload_max_bytes)
            .field("ws_max_frame_bytes", &self.ws_max_frame_bytes)
            .field("ws_ping_interval", &self.ws_ping_interval)
            .field("allowed_origins", &self.allowed_origins)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            max_body_bytes: 1024 * 1024,
            upload_max_bytes: Limits::default().upload_max_bytes,
            ws_max_frame_bytes: 64 * 1024,
            ws_ping_interval: Duration::from_secs(30),
            allowed_origins: Vec::new(),
            metrics_token: None,
        }
    }
}

#[derive(Clone, Debug)]
struct State {
    engine: ChatEngine,
    settings: Arc<ApiSettings>,
    metrics: Arc<Metrics>,
    shutdown: watch::Receiver<bool>,
}

/// The chat API: every route of API.md over one engine.
#[derive(Debug)]
pub struct ChatApi {
    state: State,
    shutdown: watch::Sender<bool>,
}

impl ChatApi {
    /// The API over `engine`.
    pub fn new(engine: ChatEngine, settings: ApiSettings) -> ChatApi {
        let (shutdown, rx) = watch::channel(false);
        ChatApi {
            state: State {
                engine,
                settings: Arc::new(settings),
                metrics: Arc::new(Metrics::default()),
                shutdown: rx,
            },
            shutdown,
        }
    }

    /// The routes as one warp filter; errors and unknown routes answer in the API's shape.
    /// Every response carries an `X-Request-Id`, every request is logged with it and timed.
    pub fn filter(&self) -> BoxedFilter<(Response,)> {
        let routes = ws::route(&self.state)
            .or(ws::ticket_route(&self.state))
            .unify()
            .or(http::routes(&self.state))
            .unify();
        let api = http::known_method()
            .and(routes)
            .recover(error::recover)
            .unify();
        // Browsers on the listed origins may call the API; tokens travel in a header, never in
        // cookies, so credentials are not allowed and no origin is a wildcard.
        let origins: Vec<&str> = self
            .state
            .settings
            .allowed_origins
            .iter()
            .map(|o| o.trim_end_matches('/'))
            .filter(|o| valid_origin(o))
            .collect();
        let api = if origins.is_empty() {
            api.map(warp::Reply::into_response).boxed()
        } else {
            let cors = warp::cors()
                .allow_origins(origins)
                .allow_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
                .allow_headers(["authorization", "content-type", "range", "x-request-id"])
                .expose_headers([
                    "retry-after",
                    "content-range",
                    "content-disposition",
                    "x-request-id",
                ])
                .max_age(600);
            // A refused preflight is a rejection of the CORS layer: answered here too, so it
            // gets a request id and a log line like any request.
            api.with(cors)
                .map(warp::Reply::into_response)
                .recover(error::recover)
                .unify()
                .boxed()
        };
        requests::observed(api, self.state.metrics.clone())
    }

    /// Closes every WebSocket with 1001 (going away); HTTP requests are not affected.
    pub fn close_sockets(&self) {
        let _ = self.shutdown.send(true);
    }

    /// The engine behind the API.
    pub fn engine(&self) -> &ChatEngine {
        &self.state.engine
    }
}

/// Why the server could not start, or an operator's command could not be done.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The store could not be opened.
    #[error("opening the store failed: {0}")]
    Store(#[from] StoreError),
    /// The engine could not start.
    #[error("starting the engine failed: {0}")]
    Engine(#[from] ChatError),
    /// A file or socket could not be used.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The engine refused an operator's command (a taken username, a too short password, ...).
    #[error("{}", error::one_line(.0))]
    Refused(ChatError),
}

/// A running server: its address, and the handle that stops it.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    api: ChatApi,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    backend: Backend,
}

/// The store a server runs on, kept to close it on shutdown.
#[derive(Debug)]
enum Backend {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Backend {
    async fn close(&self) {
        match self {
            Backend::Sqlite(store) => store.close().await,
            Backend::Postgres(store) => store.close().await,
        }
    }
}

impl RunningServer {
    /// The address it listens on (with the real port when configured with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops gracefully: no new connections, in-flight requests finish, WebSockets close with
    /// 1001, this node leaves presence (its users go offline for the others at once), then the
    /// store is closed.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        self.api.close_sockets();
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the server task failed");
        }
        self.api.engine().shutdown().await;
        self.backend.close().await;
    }
}

/// The host application's token settings, if any; a half-configured host is an error, not a
/// silently refused token later.
fn host_tokens(config: &Config, own_secret: &str) -> Result<Option<HostTokens>, StartError> {
    let bad = |e: String| StartError::Config(e);
    if let Some(issuer) = &config.host_jwt_issuer {
        // The engine tries its own verifier first: a host naming itself like the server could
        // pass for it.
        if *issuer == config.jwt_issuer {
            return Err(bad(
                "CHAT_HOST_JWT_ISSUER must differ from CHAT_JWT_ISSUER".into()
            ));
        }
    }
    let key = match (&config.host_jwt_secret, &config.host_jwt_public_key) {
        // Whoever holds the host's secret could otherwise sign the server's own tokens, for
        // any user.
        (Some(secret), None) if secret == own_secret => {
            return Err(bad(
                "CHAT_HOST_JWT_SECRET must differ from the server's JWT secret".into(),
            ))
        }
        (Some(secret), None) => HostKey::Secret(secret.as_bytes().to_vec()),
        (None, Some(path)) => HostKey::PublicKeyPem(
            std::fs::read(path)
                .map_err(|e| bad(format!("CHAT_HOST_JWT_PUBLIC_KEY: {}: {e}", path.display())))?,
        ),
        (Some(_), Some(_)) => {
            return Err(bad(
                "CHAT_HOST_JWT_SECRET and CHAT_HOST_JWT_PUBLIC_KEY: set one, not both".into(),
            ))
        }
        (None, None) => {
            let dangling = [
                ("CHAT_HOST_JWT_ISSUER", config.host_jwt_issuer.is_some()),
                (
                    "CHAT_HOST_JWT_ALGORITHM",
                    config.host_jwt_algorithm.is_some(),
                ),
                ("CHAT_HOST_JWT_AUDIENCE", config.host_jwt_audience.is_some()),
            ];
            return match dangling.iter().find(|(_, set)| *set) {
                Some((name, _)) => Err(bad(format!(
                    "{name} needs CHAT_HOST_JWT_SECRET or CHAT_HOST_JWT_PUBLIC_KEY"
                ))),
                None => Ok(None),
            };
        }
    };
    let issuer = config.host_jwt_issuer.as_deref().ok_or_else(|| {
        bad("CHAT_HOST_JWT_ISSUER: required with a host secret or public key".into())
    })?;
    HostTokens::new(
        key,
        config.host_jwt_algorithm.as_deref(),
        issuer,
        config.host_jwt_audience.as_deref(),
    )
    .map(Some)
    .map_err(|e| bad(format!("host tokens: {e}")))
}

/// Whether `origin` is a browser origin, `http(s)://host[:port]` (what CORS and the WebSocket
/// `Origin` check compare against).
fn valid_origin(origin: &str) -> bool {
    origin.split_once("://").is_some_and(|(scheme, rest)| {
        matches!(scheme, "http" | "https")
            && !rest.is_empty()
            && !rest.contains(['/', '?', '#', ' ', '@'])
    })
}

/// Opens the store, builds the engine and starts serving, all from `config`.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    if config.metrics_token.as_deref() == Some("") {
        return Err(StartError::Config(
            "CHAT_METRICS_TOKEN must not be empty".into(),
        ));
    }
    let (engine, backend) = open_engine(&config).await?;
    let api = ChatApi::new(
        engine,
        ApiSettings {
            max_body_bytes: config.max_body_bytes,
            upload_max_bytes: config.upload_max_bytes,
            ws_max_frame_bytes: config.ws_max_frame_bytes,
            ws_ping_interval: Duration::from_secs(config.ws_ping_secs.max(1)),
            allowed_origins: config.allowed_origins.clone(),
            metrics_token: config.metrics_token.clone(),
        },
    );
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, api.filter(), async {
        let _ = stopped.await;
    }));
    Ok(RunningServer {
        addr,
        api,
        stop,
        task,
        backend,
    })
}

/// The engine `config` describes, on its store (migrated) and blob store, with every setting
/// checked first: what `serve` runs, and what an operator's command acts through.
async fn open_engine(config: &Config) -> Result<(ChatEngine, Backend), StartError> {
    if let Some(bad) = config
        .allowed_origins
        .iter()
        .find(|o| !valid_origin(o.trim_end_matches('/')))
    {
        return Err(StartError::Config(format!(
            "CHAT_ALLOWED_ORIGINS: {bad:?} is not an origin like https://chat.example"
        )));
    }
    std::fs::create_dir_all(&config.data_dir)?;
    let secret = match &config.jwt_secret {
        Some(secret) => secret.clone(),
        None => secret::load_or_create(&config.data_dir)?,
    };
    let mut tokens = TokenIssuer::new(secret.as_bytes(), &config.jwt_issuer, config.jwt_ttl_secs)
        .map_err(|e| StartError::Config(e.to_string()))?;
    match config.jwt_audience.as_deref() {
        Some("") => {
            return Err(StartError::Config(
                "CHAT_JWT_AUDIENCE must not be empty".into(),
            ))
        }
        Some(audience) => tokens = tokens.with_audience(audience),
        None => {}
    }
    // Every setting is checked before the store is opened (and migrated).
    let host = host_tokens(config, &secret)?;
    // Built here so a bad sink setting refuses to start with the others; handing them to the
    // engine comes with its outbox relay.
    let event_sinks = sinks::event_sinks(config).await?;
    // The store records each event once per sink: its channel.
    let channels = event_sinks.iter().map(|s| s.channel().to_owned()).collect();
    let node = NodeId(uuid::Uuid::new_v4());
    let (store, notifier, backend) = open_backend(config, Some(node), channels).await?;
    let limits = Limits {
        max_message_chars: config.max_message_chars,
        max_rooms_per_user: config.max_rooms_per_user,
        max_reaction_kinds: config.max_reactions_per_message,
        max_connections_per_user: config.max_connections_per_user.max(1),
        session_queue: config.ws_queue,
        upload_max_bytes: config.upload_max_bytes,
        unattached_upload_secs: config.unattached_upload_secs,
        session_trust_secs: config.session_trust_secs,
        username_quarantine_secs: i64::from(config.username_quarantine_days) * 24 * 3600,
        outbox_retention_secs: i64::from(config.outbox_retention_days) * 24 * 3600,
        outbox_poll_ms: config.outbox_poll_ms,
        send_rate: (config.rate_limits == "on").then_some(Rate {
            burst: config.send_burst.max(1),
            per_sec: f64::from(config.send_rate_per_sec.max(1)),
        }),
        failed_login_rate: (config.rate_limits == "on")
            .then(|| Rate::per_minute(config.failed_logins_per_min.max(1))),
        ..Limits::default()
    };
    let mut builder = ChatEngine::builder(store)
        .blobs(blob_store(config).await?)
        .node(node)
        .tokens(tokens)
        .limits(limits)
        .event_sinks(event_sinks);
    if let Some(host) = host {
        builder = builder.host_tokens(host);
    }
    if let Some(notifier) = notifier {
        builder = builder.notifier(notifier);
    }
    Ok((builder.build().await?, backend))
}

/// Where uploaded files go: the S3 bucket `CHAT_S3_BUCKET` names (with the `s3` feature), else
/// the upload directory.
async fn blob_store(config: &Config) -> Result<Arc<dyn BlobStore>, StartError> {
    #[cfg(feature = "s3")]
    if let Some(bucket) = &config.s3_bucket {
        use chat_blob_s3::{S3BlobStore, S3Options};
        let (Some(key_id), Some(secret)) = (&config.s3_access_key_id, &config.s3_secret_access_key)
        else {
            return Err(StartError::Config(
                "CHAT_S3_BUCKET needs CHAT_S3_ACCESS_KEY_ID and CHAT_S3_SECRET_ACCESS_KEY".into(),
            ));
        };
        let options = S3Options {
            endpoint: config.s3_endpoint.clone(),
            region: config
                .s3_region
                .clone()
                .unwrap_or_else(|| S3Options::DEFAULT_REGION.into()),
            prefix: config
                .s3_prefix
                .clone()
                .unwrap_or_else(|| S3Options::DEFAULT_PREFIX.into()),
            allow_http: config.s3_allow_http.unwrap_or(false),
            ..S3Options::new(bucket, key_id, secret)
        };
        let store = S3BlobStore::new(options).map_err(|e| StartError::Config(e.to_string()))?;
        return Ok(Arc::new(store));
    }
    let upload_dir = config
        .upload_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.join("uploads"));
    Ok(Arc::new(FsBlobStore::open(upload_dir).await?))
}

/// The store named by `CHAT_DATABASE_URL` (SQLite in the data directory by default), its
/// migrations applied, and for a `node` on PostgreSQL the LISTEN/NOTIFY bus that lets several
/// nodes share it (without a node, no bus: the store alone).
async fn open_backend(
    config: &Config,
    node: Option<NodeId>,
    event_channels: Vec<String>,
) -> Result<(Arc<dyn Store>, Option<Arc<dyn Notifier>>, Backend), StartError> {
    let acquire_timeout = Duration::from_secs(config.db_acquire_timeout_secs.max(1));
    let sqlite = SqliteOptions {
        max_read_connections: config.db_max_connections.max(1),
        busy_timeout: acquire_timeout,
        max_append_batch: config.db_append_batch as usize,
        event_channels: event_channels.clone(),
        ..SqliteOptions::default()
    };
    let url = config.database_url.as_deref();
    let store = match url {
        None => SqliteStore::open(&config.data_dir.join("chat.db"), sqlite).await?,
        Some(url) if url.starts_with("sqlite:") => SqliteStore::connect(url, sqlite).await?,
        Some(url) if url.starts_with("postgres:") || url.starts_with("postgresql:") => {
            let options = PgOptions {
                max_connections: config.db_max_connections.max(2),
                acquire_timeout,
                max_append_batch: config.db_append_batch as usize,
                event_channels,
                ..PgOptions::default()
            };
            let Some(node) = node else {
                let store = PgStore::connect(url, options).await?;
                return Ok((Arc::new(store.clone()), None, Backend::Postgres(store)));
            };
            let (store, notifier) = chat_store_postgres::connect_node(url, options, node).await?;
            return Ok((
                Arc::new(store.clone()),
                Some(Arc::new(notifier)),
                Backend::Postgres(store),
            ));
        }
        Some(_) => {
            return Err(StartError::Config(
                "CHAT_DATABASE_URL must start with sqlite: or postgres:".into(),
            ))
        }
    };
    Ok((Arc::new(store.clone()), None, Backend::Sqlite(store)))
}
