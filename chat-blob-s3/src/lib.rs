//! chat-blob-s3: the [`chat_core::ports::BlobStore`] on any S3-compatible object store (AWS S3,
//! MinIO, Cloudflare R2, Ceph, ...), through the `object_store` crate.
//!
//! ```no_run
//! use std::sync::Arc;
//! use chat_blob_s3::{S3BlobStore, S3Options};
//! use chat_core::{memory::MemoryStore, ChatEngine};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let blobs = S3BlobStore::new(S3Options {
//!     // A MinIO on this machine; `None` (the default) is AWS S3 itself.
//!     endpoint: Some("http://127.0.0.1:9000".into()),
//!     allow_http: true,
//!     ..S3Options::new("chat", "access-key-id", "secret-access-key")
//! })?;
//! let engine = ChatEngine::builder(Arc::new(MemoryStore::new()))
//!     .blobs(Arc::new(blobs))
//!     .build()
//!     .await?;
//! # let _ = engine;
//! # Ok(())
//! # }
//! ```
//!
//! Blobs are the objects `<prefix>/<key>` (prefix `uploads` by default) of a bucket that must
//! exist. Uploads stream: a blob up to 5 MiB goes up in one PUT, a larger one as a multipart
//! upload of 5 MiB parts, so memory stays bounded by the part size, not the file's. A put whose
//! stream fails aborts its multipart upload; one whose process dies cannot, so give the bucket a
//! lifecycle rule that aborts incomplete multipart uploads after a day.
//!
//! Reads are ranged GETs. The engine asks only for ranges inside the blob; one starting past
//! its end is a backend error here (S3 answers 416).
//!
//! [`BlobStore::presigned_get`](chat_core::ports::BlobStore::presigned_get) answers with a
//! SigV4-presigned GET whose `response-content-type` and `response-content-disposition` are
//! part of the signature; AWS S3, MinIO and R2 answer with them. Signing needs no request.
//!
//! TLS is rustls with aws-lc-rs (object_store's `aws` feature), which also signs requests.

mod options;
mod store;

pub use options::{ConfigError, S3Options};
pub use store::S3BlobStore;
