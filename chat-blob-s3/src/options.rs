//! Where the blobs live and how to reach them.

use std::fmt;

/// The bucket, endpoint and credentials of an S3-compatible store.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Options {
    /// The bucket blobs are kept in; it must exist.
    pub bucket: String,
    /// The service's URL (MinIO, R2, Ceph, ...); `None` for AWS S3 itself.
    pub endpoint: Option<String>,
    /// The region requests are signed for.
    pub region: String,
    /// The access key's id.
    pub access_key_id: String,
    /// The access key's secret.
    pub secret_access_key: String,
    /// The folder of the bucket blobs are kept under (`<prefix>/<key>`); empty for the
    /// bucket's top level.
    pub prefix: String,
    /// Whether an `http://` endpoint is accepted (local test servers); off, only HTTPS is.
    pub allow_http: bool,
}

impl S3Options {
    /// The folder blobs are kept under unless told otherwise.
    pub const DEFAULT_PREFIX: &'static str = "uploads";
    /// The region requests are signed for unless told otherwise.
    pub const DEFAULT_REGION: &'static str = "us-east-1";

    /// Blobs in `bucket` on AWS S3 (`us-east-1`, under `uploads/`), reached with this key.
    pub fn new(
        bucket: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> S3Options {
        S3Options {
            bucket: bucket.into(),
            endpoint: None,
            region: S3Options::DEFAULT_REGION.to_owned(),
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            prefix: S3Options::DEFAULT_PREFIX.to_owned(),
            allow_http: false,
        }
    }
}

// By hand, so that the secret never reaches a log.
impl fmt::Debug for S3Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Options")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("prefix", &self.prefix)
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

/// Settings the store cannot be built from (a malformed endpoint or prefix, an empty bucket).
#[derive(Debug, thiserror::Error)]
#[error("invalid S3 settings: {0}")]
pub struct ConfigError(#[source] pub(crate) Box<dyn std::error::Error + Send + Sync>);

#[cfg(test)]
mod tests {
    use super::S3Options;

    #[test]
    fn debug_output_hides_the_secret() {
        let options = S3Options::new("bucket", "key-id", "the-secret");

        let shown = format!("{options:?}");

        assert!(shown.contains("key-id"), "{shown}");
        assert!(!shown.contains("the-secret"), "{shown}");
    }
}
