//! Uploads: the metadata of uploaded files, who may read them, which no message carries, and
//! the attachments messages are read with.

use async_trait::async_trait;
use chat_core::domain::{from_micros, micros, Attachment, FileName, Upload, UploadId, UserId};
use chat_core::ports::UploadStore;
use chat_core::StoreError;
use sea_query::{Expr, Order, Query, SelectStatement, SimpleExpr};
use sqlx::{Executor, Sqlite};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::db;
use crate::query::{execute, fetch_all, fetch_optional};
use crate::schema::{Derived, Memberships, Messages, Uploads};
use crate::store::SqliteStore;

/// The columns of an [`UploadRow`], in the `uploads` table.
const UPLOAD_COLUMNS: [Uploads; 7] = [
    Uploads::Id,
    Uploads::Uploader,
    Uploads::Name,
    Uploads::ContentType,
    Uploads::Size,
    Uploads::Sha256,
    Uploads::CreatedAt,
];

#[derive(Debug, sqlx::FromRow)]
struct UploadRow {
    id: Uuid,
    uploader: Uuid,
    name: String,
    content_type: String,
    size: i64,
    sha256: String,
    created_at: i64,
}

impl From<UploadRow> for Upload {
    fn from(row: UploadRow) -> Self {
        Upload {
            id: UploadId(row.id),
            uploader: UserId(row.uploader),
            name: FileName::from_stored(row.name),
            content_type: row.content_type,
            size: row.size,
            sha256: row.sha256,
            created_at: from_micros(row.created_at),
        }
    }
}

/// The upload with this id.
pub(crate) async fn find<'c, E>(exec: E, id: UploadId) -> Result<Option<Upload>, StoreError>
where
    E: Executor<'c, Database = Sqlite>,
{
    let q = Query::select()
        .columns(UPLOAD_COLUMNS)
        .from(Uploads::Table)
        .and_where(Expr::col(Uploads::Id).eq(id.0))
        .to_owned();
    let row: Option<UploadRow> = fetch_optional(exec, &q).await.map_err(db)?;
    Ok(row.map(Upload::from))
}

/// The columns of the upload a message carries besides its id, and the names messages are read
/// with them under (`messages` has an `id` and a `created_at` of its own).
const ATTACHMENT_COLUMNS: [(Uploads, Derived); 6] = [
    (Uploads::Uploader, Derived::AttachmentUploader),
    (Uploads::Name, Derived::AttachmentName),
    (Uploads::ContentType, Derived::AttachmentContentType),
    (Uploads::Size, Derived::AttachmentSize),
    (Uploads::Sha256, Derived::AttachmentSha256),
    (Uploads::CreatedAt, Derived::AttachmentCreatedAt),
];

/// The upload a message carries, as [`join_attachments`] selects it: every column `NULL` when
/// the message carries none.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AttachmentRow {
    attachment_id: Option<Uuid>,
    attachment_uploader: Option<Uuid>,
    attachment_name: Option<String>,
    attachment_content_type: Option<String>,
    attachment_size: Option<i64>,
    attachment_sha256: Option<String>,
    attachment_created_at: Option<i64>,
}

impl AttachmentRow {
    /// The attachment, when the message carries an upload that exists.
    pub(crate) fn into_attachment(self) -> Option<Attachment> {
        let upload = Upload {
            id: UploadId(self.attachment_id?),
            uploader: UserId(self.attachment_uploader?),
            name: FileName::from_stored(self.attachment_name?),
            content_type: self.attachment_content_type?,
            size: self.attachment_size?,
            sha256: self.attachment_sha256?,
            created_at: from_micros(self.attachment_created_at?),
        };
        Some(Attachment::of(&upload))
    }
}

/// Adds the columns of an [`AttachmentRow`] to a select from `messages`.
pub(crate) fn join_attachments(q: &mut SelectStatement) {
    q.column((Messages::Table, Messages::AttachmentId));
    for (column, alias) in ATTACHMENT_COLUMNS {
        q.expr_as(Expr::col((Uploads::Table, column)), alias);
    }
    q.left_join(
        Uploads::Table,
        Expr::col((Uploads::Table, Uploads::Id)).equals((Messages::Table, Messages::AttachmentId)),
    );
}

/// The messages that carry the upload `id` (a value, or a column of an outer query). A deleted
/// message carries nothing, whatever its row still holds.
pub(crate) fn carriers(id: SimpleExpr) -> SelectStatement {
    Query::select()
        .expr(Expr::val(1))
        .from(Messages::Table)
        .and_where(Expr::col((Messages::Table, Messages::AttachmentId)).eq(id))
        .and_where(Expr::col((Messages::Table, Messages::Deleted)).eq(false))
        .to_owned()
}

#[async_trait]
impl UploadStore for SqliteStore {
    #[tracing::instrument(name = "db.upload.create", skip_all, err)]
    async fn create_upload(&self, upload: &Upload) -> Result<(), StoreError> {
        let insert = Query::insert()
            .into_table(Uploads::Table)
            .columns(UPLOAD_COLUMNS)
            .values([
                upload.id.0.into(),
                upload.uploader.0.into(),
                upload.name.as_str().into(),
                upload.content_type.as_str().into(),
                upload.size.into(),
                upload.sha256.as_str().into(),
                micros(upload.created_at).into(),
            ])
            .map_err(StoreError::backend)?
            .to_owned();
        execute(&self.writer, &insert).await.map_err(db)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.upload.get", skip_all, err)]
    async fn upload(&self, id: UploadId) -> Result<Option<Upload>, StoreError> {
        find(&self.reader, id).await
    }

    #[tracing::instrument(name = "db.upload.may_read", skip_all, err)]
    async fn may_read_upload(&self, id: UploadId, user: UserId) -> Result<bool, StoreError> {
        let in_a_room_with_it = carriers(id.0.into())
            .inner_join(
                Memberships::Table,
                Expr::col((Memberships::Table, Memberships::RoomId))
                    .equals((Messages::Table, Messages::RoomId))
                    .and(Expr::col((Memberships::Table, Memberships::UserId)).eq(user.0)),
            )
            .to_owned();
        let q = Query::select()
            .expr(Expr::val(1))
            .from(Uploads::Table)
            .and_where(Expr::col((Uploads::Table, Uploads::Id)).eq(id.0))
            .and_where(
                Expr::col((Uploads::Table, Uploads::Uploader))
                    .eq(user.0)
                    .or(Expr::exists(in_a_room_with_it)),
            )
            .to_owned();
        let row: Option<(i64,)> = fetch_optional(&self.reader, &q).await.map_err(db)?;
        Ok(row.is_some())
    }

    #[tracing::instrument(name = "db.upload.delete", skip_all, err)]
    async fn delete_upload(&self, id: UploadId) -> Result<bool, StoreError> {
        // The messages that carried it lose their attachment by the schema's ON DELETE SET NULL
        // (the connections run with foreign keys on), in this same statement.
        let delete = Query::delete()
            .from_table(Uploads::Table)
            .and_where(Expr::col(Uploads::Id).eq(id.0))
            .to_owned();
        Ok(execute(&self.writer, &delete).await.map_err(db)? > 0)
    }

    #[tracing::instrument(name = "db.upload.unattached", skip_all, err)]
    async fn unattached_uploads(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<UploadId>, StoreError> {
        let carried = carriers(Expr::col((Uploads::Table, Uploads::Id)).into());
        let q = Query::select()
            .column((Uploads::Table, Uploads::Id))
            .from(Uploads::Table)
            .and_where(Expr::col((Uploads::Table, Uploads::CreatedAt)).lt(micros(before)))
            .and_where(Expr::exists(carried).not())
            .order_by((Uploads::Table, Uploads::CreatedAt), Order::Asc)
            .order_by((Uploads::Table, Uploads::Id), Order::Asc)
            .limit(u64::from(limit))
            .to_owned();
        let rows: Vec<(Uuid,)> = fetch_all(&self.reader, &q).await.map_err(db)?;
        Ok(rows.into_iter().map(|(id,)| UploadId(id)).collect())
    }
}

#[cfg(test)]
mod tests {
    use chat_core::domain::MessageKind;
    use chat_core::ports::MessageStore;

    use super::*;
    use crate::test_support::{at, room, scratch, text, user};

    #[tokio::test]
    async fn a_deleted_row_still_naming_its_upload_carries_nothing() {
        let (_dir, store) = scratch().await;
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        let room = room(&store, &[alice, bob], at(0)).await;
        let upload = Upload {
            id: UploadId(Uuid::new_v4()),
            uploader: alice,
            name: FileName::sanitize("plan.png"),
            content_type: "image/png".into(),
            size: 1,
            sha256: "00".repeat(32),
            created_at: at(1),
        };
        store.create_upload(&upload).await.unwrap();
        let mut file = text(room, alice, Vec::new());
        file.kind = MessageKind::File;
        file.attachment = Some(upload.id);
        let id = store.append_message(&file).await.unwrap().message.id;
        // Marked deleted by hand, the row keeps naming the upload.
        sqlx::query("UPDATE messages SET deleted = 1 WHERE id = ?")
            .bind(id.0)
            .execute(&store.writer)
            .await
            .unwrap();

        let tombstone = store.message(room, id).await.unwrap().unwrap();
        assert_eq!(tombstone.attachment, None);
        assert!(!store.may_read_upload(upload.id, bob).await.unwrap());
        let unattached = store.unattached_uploads(at(2), 10).await.unwrap();
        assert_eq!(unattached, [upload.id]);
    }
}
