//! Uploads: files streamed into the blob store under engine-made keys, typed by their bytes,
//! size-capped while they stream, readable by their uploader and the members of rooms where a
//! message carries them, and collected when nothing carries them for long.

use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{ChatEngine, Inner};
use crate::auth::hex;
use crate::domain::upload::{content_disposition, is_inline, sniff, FileType, SNIFF_BYTES};
use crate::domain::{FileName, Upload, UploadId, UserId};
use crate::error::ChatError;
use crate::ports::{BlobError, BlobKey, ByteStream};

/// An upload as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadView {
    /// Its id.
    pub id: UploadId,
    /// The sanitised original name.
    pub name: FileName,
    /// The type decided from the bytes.
    pub content_type: String,
    /// The size in bytes.
    pub size: i64,
    /// The SHA-256 of the bytes, lowercase hex.
    pub sha256: String,
    /// When it was uploaded.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The content path.
    pub url: String,
}

impl From<Upload> for UploadView {
    fn from(u: Upload) -> UploadView {
        UploadView {
            url: content_path(u.id),
            id: u.id,
            name: u.name,
            content_type: u.content_type,
            size: u.size,
            sha256: u.sha256,
            created_at: u.created_at,
        }
    }
}

fn content_path(id: UploadId) -> String {
    format!("/v1/uploads/{id}/content")
}

/// A signed link to an upload's content that needs no `Authorization` header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadLink {
    /// The path with its signature.
    pub url: String,
    /// When the link stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// A part of a file asked for by a `Range` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// From this offset to the end (`bytes=N-`).
    From(u64),
    /// These offsets, both included (`bytes=N-M`).
    FromTo(u64, u64),
    /// The last N bytes (`bytes=-N`).
    Last(u64),
}

impl ByteRange {
    /// The first and last offset this range covers of a file of `size` bytes; `None` when it
    /// covers none.
    pub fn resolve(self, size: u64) -> Option<(u64, u64)> {
        let (first, last) = match self {
            ByteRange::From(first) => (first, size.checked_sub(1)?),
            ByteRange::FromTo(first, last) if first <= last => {
                (first, last.min(size.checked_sub(1)?))
            }
            ByteRange::FromTo(..) => return None,
            ByteRange::Last(0) => return None,
            ByteRange::Last(n) => (size.saturating_sub(n), size.checked_sub(1)?),
        };
        (first <= last).then_some((first, last))
    }
}

/// An upload's content, ready to stream.
pub struct Download {
    /// The upload.
    pub upload: Upload,
    /// Whether browsers may show it inline (safe image types only).
    pub inline: bool,
    /// The part served, first and last offset included, when a range was asked for.
    pub range: Option<(u64, u64)>,
    /// The bytes.
    pub body: ByteStream,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("upload", &self.upload)
            .field("inline", &self.inline)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// Why an upload's bytes were refused while they streamed.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    TooLarge,
    Unsupported,
}

/// What the intake learnt of the bytes by the time the stream ended.
#[derive(Debug, Default)]
struct Findings {
    kind: Option<FileType>,
    sha256: Option<String>,
    refusal: Option<Refusal>,
}

/// Wraps an upload's stream on its way to the blob store: counts the bytes against the cap,
/// decides the type from the first [`SNIFF_BYTES`], and hashes everything. A refusal ends the
/// stream with an error, so the blob store keeps nothing, and is recorded for the engine.
struct Intake {
    inner: ByteStream,
    max: u64,
    seen: u64,
    head: Vec<u8>,
    kind: Option<FileType>,
    hasher: Sha256,
    findings: Arc<Mutex<Findings>>,
}

impl Intake {
    fn refuse(&mut self, why: Refusal) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        self.record(|f| f.refusal = Some(why));
        Poll::Ready(Some(Err(std::io::Error::other(format!("{why:?}")))))
    }

    fn record(&self, change: impl FnOnce(&mut Findings)) {
        change(&mut self.findings.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

impl Stream for Intake {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.seen += chunk.len() as u64;
                if self.seen > self.max {
                    return self.refuse(Refusal::TooLarge);
                }
                if self.kind.is_none() && self.head.len() < SNIFF_BYTES {
                    let wanted = (SNIFF_BYTES - self.head.len()).min(chunk.len());
                    self.head.extend_from_slice(&chunk[..wanted]);
                    if self.head.len() == SNIFF_BYTES {
                        match sniff(&self.head, false) {
                            Some(kind) => self.kind = Some(kind),
                            None => return self.refuse(Refusal::Unsupported),
                        }
                    }
                }
                self.hasher.update(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => {
                let kind = match self.kind {
                    Some(kind) => kind,
                    None => match sniff(&self.head, true) {
                        Some(kind) => kind,
                        None => return self.refuse(Refusal::Unsupported),
                    },
                };
                let sha256 = hex(&std::mem::take(&mut self.hasher).finalize());
                self.record(|f| {
                    f.kind = Some(kind);
                    f.sha256 = Some(sha256);
                });
                Poll::Ready(None)
            }
            other => other,
        }
    }
}

impl ChatEngine {
    /// The types of file the server accepts.
    pub fn allowed_upload_types(&self) -> &'static [FileType] {
        crate::domain::upload::ALLOWED_TYPES
    }

    /// Streams a file into the blob store for the caller. Its bytes decide its type
    /// (`UnsupportedMediaType` when not an accepted one); more than the configured cap is
    /// `PayloadTooLarge`, found while streaming, and nothing is kept of a refused file.
    pub async fn upload(
        &self,
        actor: UserId,
        file_name: &str,
        body: ByteStream,
    ) -> Result<UploadView, ChatError> {
        let inner = &self.inner;
        let id = UploadId(inner.ids.new_id());
        let findings = Arc::new(Mutex::new(Findings::default()));
        let intake = Intake {
            inner: body,
            max: inner.limits.upload_max_bytes,
            seen: 0,
            head: Vec::with_capacity(SNIFF_BYTES),
            kind: None,
            hasher: Sha256::new(),
            findings: findings.clone(),
        };
        let stored = inner.blobs.put(BlobKey(id.0), Box::pin(intake)).await;
        let findings = std::mem::take(&mut *findings.lock().unwrap_or_else(|e| e.into_inner()));
        let size = match (stored, findings.refusal) {
            (Err(_), Some(Refusal::TooLarge)) => return Err(ChatError::PayloadTooLarge),
            (Err(_), Some(Refusal::Unsupported)) => return Err(ChatError::UnsupportedMediaType),
            (Err(BlobError::Input(e)), None) => {
                return Err(ChatError::BadRequest(format!(
                    "the upload was cut off: {e}"
                )))
            }
            (Err(BlobError::Backend(e)), None) => {
                tracing::error!(error = %e, "storing an upload failed");
                return Err(ChatError::Unavailable);
            }
            (Ok(size), _) => size,
        };
        let (Some(kind), Some(sha256)) = (findings.kind, findings.sha256) else {
            return Err(ChatError::Internal);
        };
        let upload = Upload {
            id,
            uploader: actor,
            name: FileName::sanitize(file_name),
            content_type: kind.content_type.to_owned(),
            size: i64::try_from(size).map_err(|_| ChatError::PayloadTooLarge)?,
            sha256,
            created_at: inner.clock.now(),
        };
        if let Err(e) = inner.store().create_upload(&upload).await {
            inner.forget_blob(id).await;
            return Err(e.into());
        }
        Ok(upload.into())
    }

    /// An upload the caller may read.
    pub async fn upload_info(&self, actor: UserId, id: UploadId) -> Result<UploadView, ChatError> {
        Ok(self.inner.readable_upload(actor, id).await?.into())
    }

    /// An upload's content (or the part `range` names) for the caller.
    pub async fn download(
        &self,
        actor: UserId,
        id: UploadId,
        range: Option<ByteRange>,
    ) -> Result<Download, ChatError> {
        let upload = self.inner.readable_upload(actor, id).await?;
        self.inner.open(upload, range).await
    }

    /// An upload's content by a signed link, which stands for the check its signer passed.
    pub async fn download_by_link(
        &self,
        id: UploadId,
        expires: i64,
        signature: &str,
        range: Option<ByteRange>,
    ) -> Result<Download, ChatError> {
        let inner = &self.inner;
        let fresh = expires >= inner.clock.now().unix_timestamp();
        if !fresh
            || !inner
                .tokens
                .verify_link(&link_subject(id, expires), signature)
        {
            return Err(ChatError::NotFound);
        }
        let upload = inner.store().upload(id).await?.ok_or(ChatError::NotFound)?;
        inner.open(upload, range).await
    }

    /// A link to an upload's content, valid for a short while, that needs no header.
    pub async fn upload_link(&self, actor: UserId, id: UploadId) -> Result<UploadLink, ChatError> {
        let inner = &self.inner;
        let upload = inner.readable_upload(actor, id).await?;
        let secs = inner.limits.upload_link_secs;
        let expires_at = inner.clock.now() + time::Duration::seconds(secs);
        // An object store serves the bytes itself when it can sign its own URLs.
        let disposition = content_disposition(is_inline(&upload.content_type), &upload.name);
        let presigned = inner
            .blobs
            .presigned_get(
                BlobKey(id.0),
                std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0)),
                &upload.content_type,
                &disposition,
            )
            .await
            .map_err(|e| {
                tracing::error!(error = %e, upload = %id, "presigning a link failed");
                ChatError::Unavailable
            })?;
        if let Some(url) = presigned {
            return Ok(UploadLink { url, expires_at });
        }
        let expires = expires_at.unix_timestamp();
        let signature = inner.tokens.sign_link(&link_subject(id, expires));
        Ok(UploadLink {
            url: format!("{}?expires={expires}&sig={signature}", content_path(id)),
            expires_at,
        })
    }

    /// Deletes an upload; its uploader only. Messages that carried it keep `kind: file`
    /// without an attachment.
    pub async fn delete_upload(&self, actor: UserId, id: UploadId) -> Result<(), ChatError> {
        let inner = &self.inner;
        let upload = inner.readable_upload(actor, id).await?;
        if upload.uploader != actor {
            return Err(ChatError::Forbidden("only the uploader deletes an upload"));
        }
        if inner.store().delete_upload(id).await? {
            inner.forget_blob(id).await;
        }
        Ok(())
    }

    /// Deletes the uploads no message has carried for the configured time; returns how many.
    pub async fn collect_unattached_uploads(&self) -> Result<usize, ChatError> {
        self.inner.collect_unattached().await
    }
}

/// What a link's signature covers: the upload and the expiry, so neither can be changed.
fn link_subject(id: UploadId, expires: i64) -> String {
    format!("upload:{id}:{expires}")
}

impl Inner {
    /// The upload if the user may read it; `NotFound` otherwise, exactly like an unknown id.
    async fn readable_upload(&self, user: UserId, id: UploadId) -> Result<Upload, ChatError> {
        if !self.store().may_read_upload(id, user).await? {
            return Err(ChatError::NotFound);
        }
        self.store().upload(id).await?.ok_or(ChatError::NotFound)
    }

    async fn open(&self, upload: Upload, range: Option<ByteRange>) -> Result<Download, ChatError> {
        let size = u64::try_from(upload.size).unwrap_or(0);
        let range = match range {
            Some(r) => Some(
                r.resolve(size)
                    .ok_or(ChatError::RangeNotSatisfiable { size })?,
            ),
            None => None,
        };
        let (offset, len) = match range {
            Some((first, last)) => (first, Some(last - first + 1)),
            None => (0, None),
        };
        let body = self
            .blobs
            .get(BlobKey(upload.id.0), offset, len)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, upload = %upload.id, "reading an upload failed");
                ChatError::Unavailable
            })?
            // Metadata without a blob: deleted by a concurrent request, or lost.
            .ok_or(ChatError::NotFound)?;
        let inline = is_inline(&upload.content_type);
        Ok(Download {
            upload,
            inline,
            range,
            body,
        })
    }

    /// Deletes a blob whose metadata is gone; a failure leaves an orphan file, never a
    /// dangling upload.
    async fn forget_blob(&self, id: UploadId) {
        if let Err(e) = self.blobs.delete(BlobKey(id.0)).await {
            tracing::warn!(error = %e, upload = %id, "deleting a blob failed");
        }
    }

    /// Deletes an upload and its blob; `false` when it was already gone. The collector and
    /// room deletion both discard uploads this way.
    pub(super) async fn discard_upload(&self, id: UploadId) -> Result<bool, ChatError> {
        if !self.store().delete_upload(id).await? {
            return Ok(false);
        }
        self.forget_blob(id).await;
        Ok(true)
    }

    async fn collect_unattached(&self) -> Result<usize, ChatError> {
        let before = self.clock.now() - time::Duration::seconds(self.limits.unattached_upload_secs);
        let mut collected = 0;
        loop {
            let batch = self.store().unattached_uploads(before, 100).await?;
            for id in &batch {
                if self.discard_upload(*id).await? {
                    collected += 1;
                }
            }
            if batch.len() < 100 {
                return Ok(collected);
            }
        }
    }
}

/// How often unattached uploads are looked for.
pub const COLLECT_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Collects unattached uploads every [`COLLECT_EVERY`] until the engine is dropped.
pub(super) fn spawn_collector(engine: Weak<Inner>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(COLLECT_EVERY);
        loop {
            tick.tick().await;
            let Some(inner) = engine.upgrade() else {
                return;
            };
            match inner.collect_unattached().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(collected = n, "collected unattached uploads"),
                Err(e) => tracing::warn!(error = %e, "collecting unattached uploads failed"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::ByteRange;

    #[test]
    fn ranges_resolve_against_the_size() {
        assert_eq!(ByteRange::From(2).resolve(10), Some((2, 9)));
        assert_eq!(ByteRange::FromTo(2, 4).resolve(10), Some((2, 4)));
        assert_eq!(ByteRange::FromTo(2, 400).resolve(10), Some((2, 9)));
        assert_eq!(ByteRange::Last(3).resolve(10), Some((7, 9)));
        assert_eq!(ByteRange::Last(30).resolve(10), Some((0, 9)));
        assert_eq!(ByteRange::From(10).resolve(10), None);
        assert_eq!(ByteRange::FromTo(5, 4).resolve(10), None);
        assert_eq!(ByteRange::Last(0).resolve(10), None);
        assert_eq!(ByteRange::From(0).resolve(0), None);
    }
}
