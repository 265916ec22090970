//! [`S3BlobStore`]: the blob port on an S3 bucket.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chat_core::ports::{BlobError, BlobKey, BlobStore, ByteStream};
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::signer::{Method, SignedUrlOptions, Signer, Url};
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;

use crate::options::{ConfigError, S3Options};

/// The size of each part of a multipart upload, and how much of a blob is buffered before one
/// begins (smaller blobs go up in one request): S3's smallest part, so an upload holds little
/// memory whatever the file's size.
const PART_SIZE: usize = 5 * 1024 * 1024;
/// Parts of one blob sent at once; with the part being filled, an upload holds about three
/// parts in memory.
const PARTS_IN_FLIGHT: usize = 2;

/// Blobs as objects `<prefix>/<key>` of one bucket.
#[derive(Clone)]
pub struct S3BlobStore {
    store: Arc<AmazonS3>,
    prefix: Path,
}

impl S3BlobStore {
    /// A store on the bucket `options` name. Nothing is sent yet: wrong credentials or a
    /// missing bucket show at the first request.
    pub fn new(options: S3Options) -> Result<S3BlobStore, ConfigError> {
        let prefix = Path::parse(&options.prefix).map_err(|e| ConfigError(e.into()))?;
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(options.bucket)
            .with_region(options.region)
            .with_access_key_id(options.access_key_id)
            .with_secret_access_key(options.secret_access_key)
            .with_allow_http(options.allow_http)
            // Blobs are deleted one at a time, and a single DELETE is the call every
            // S3-compatible service implements; the bulk API is not universal.
            .with_disable_bulk_delete(true);
        if let Some(endpoint) = options.endpoint {
            // object_store reads the endpoint only when sending: a typo would show as a failed
            // upload rather than at start.
            Url::parse(&endpoint).map_err(|e| ConfigError(e.into()))?;
            builder = builder.with_endpoint(endpoint);
        }
        let store = builder.build().map_err(|e| ConfigError(e.into()))?;
        Ok(S3BlobStore {
            store: Arc::new(store),
            prefix,
        })
    }

    fn path(&self, key: BlobKey) -> Path {
        self.prefix.clone().join(key.to_string())
    }
}

impl fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("store", &format_args!("{}", self.store))
            .field("prefix", &self.prefix.as_ref())
            .finish()
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: BlobKey, mut body: ByteStream) -> Result<u64, BlobError> {
        let store: Arc<dyn ObjectStore> = self.store.clone();
        // A blob smaller than a part is sent in one PUT; a larger one becomes a multipart
        // upload, which S3 shows as an object only once it is completed.
        let mut writer = BufWriter::with_capacity(store, self.path(key), PART_SIZE)
            .with_max_concurrency(PARTS_IN_FLIGHT);
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let sent = match chunk {
                Ok(chunk) => {
                    size += chunk.len() as u64;
                    writer.put(chunk).await.map_err(backend)
                }
                Err(e) => Err(BlobError::Input(e)),
            };
            if let Err(e) = sent {
                // A begun multipart upload keeps its parts, billed and invisible, until aborted.
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(error = %abort, %key, "aborting a multipart upload failed");
                }
                return Err(e);
            }
        }
        // Completes the upload, or aborts it when completing fails.
        writer.shutdown().await.map_err(BlobError::Backend)?;
        Ok(size)
    }

    async fn get(
        &self,
        key: BlobKey,
        offset: u64,
        len: Option<u64>,
    ) -> Result<Option<ByteStream>, BlobError> {
        let range = match len {
            // S3 has no empty range: a HEAD answers whether the blob exists.
            Some(0) => None,
            Some(len) => Some(GetRange::Bounded(offset..offset.saturating_add(len))),
            None if offset == 0 => None,
            None => Some(GetRange::Offset(offset)),
        };
        let options = GetOptions::new()
            .with_range(range)
            .with_head(len == Some(0));
        match self.store.get_opts(&self.path(key), options).await {
            Ok(found) => Ok(Some(Box::pin(found.into_stream().map_err(io::Error::from)))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    async fn delete(&self, key: BlobKey) -> Result<(), BlobError> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    async fn presigned_get(
        &self,
        key: BlobKey,
        expires_in: Duration,
        content_type: &str,
        disposition: &str,
    ) -> Result<Option<String>, BlobError> {
        // Signed with the URL, so the holder can change neither; S3 answers with these headers
        // instead of the ones stored with the object.
        let options = SignedUrlOptions::new().with_query([
            ("response-content-type", content_type),
            ("response-content-disposition", disposition),
        ]);
        let url = self
            .store
            .signed_url_opts(Method::GET, &self.path(key), expires_in, &options)
            .await
            .map_err(backend)?;
        Ok(Some(url.into()))
    }
}

fn backend(e: object_store::Error) -> BlobError {
    BlobError::Backend(e.into())
}
