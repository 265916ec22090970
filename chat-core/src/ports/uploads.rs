//! The uploads port: what is known of each uploaded file, and who may read it. The bytes live
//! in a [`BlobStore`](super::BlobStore) under the upload's id.

use std::fmt::Debug;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::{Upload, UploadId, UserId};
use crate::error::StoreError;

/// Uploaded files' metadata.
#[async_trait]
pub trait UploadStore: Send + Sync + Debug {
    /// Stores a new upload's metadata (its blob is stored already).
    async fn create_upload(&self, upload: &Upload) -> Result<(), StoreError>;
    /// The upload with this id.
    async fn upload(&self, id: UploadId) -> Result<Option<Upload>, StoreError>;
    /// Whether `user` may read the upload: they uploaded it, or they are a member of a room
    /// where a message that is not deleted carries it.
    async fn may_read_upload(&self, id: UploadId, user: UserId) -> Result<bool, StoreError>;
    /// Deletes the upload's metadata; messages that carried it keep `kind: file` without an
    /// attachment. `false` when there was no such upload.
    async fn delete_upload(&self, id: UploadId) -> Result<bool, StoreError>;
    /// Up to `limit` uploads created before `before` that no message carries (deleted messages
    /// carry nothing), oldest first.
    async fn unattached_uploads(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<UploadId>, StoreError>;
}
