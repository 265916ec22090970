//! The crate's one error type: a sink that cannot be built, or a signature that does not verify.

/// What went wrong building a sink or verifying a webhook signature.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The AMQP URL does not parse (the URL is left out: it may hold a password).
    #[error("invalid AMQP URL: {0}")]
    AmqpUrl(String),
    /// The exchange name is empty (the default exchange takes no topic routing).
    #[error("the AMQP exchange name must not be empty")]
    EmptyExchange,
    /// The webhook URL does not parse, or is not http(s).
    #[error("invalid webhook URL: {0}")]
    WebhookUrl(String),
    /// The URL needs TLS (`https://`, `amqps://`), which this build leaves out.
    #[error("{0}:// needs TLS: build chat-events with its `tls` feature")]
    TlsDisabled(&'static str),
    /// The webhook secret is too short to sign with.
    #[error(
        "the webhook secret must be at least {} bytes",
        crate::MIN_SECRET_BYTES
    )]
    ShortSecret,
    /// The HTTP client could not be built.
    #[error("building the HTTP client failed: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// The signature header lacks `t=` or `v1=`, or a value does not parse.
    #[error("malformed signature header")]
    MalformedSignature,
    /// No `v1=` of the header is the body's signature with this secret.
    #[error("the signature does not match")]
    SignatureMismatch,
    /// The signature is right but its timestamp is too far from now (a replay, or a clock off).
    #[error("the signature's timestamp is outside the tolerance")]
    StaleSignature,
}
