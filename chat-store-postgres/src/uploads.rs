//! Uploads: the metadata of uploaded files, who may read them, which no message carries, and
//! the attachment every message is read with.

use async_trait::async_trait;
use chat_core::domain::{Attachment, FileName, Upload, UploadId, UserId};
use chat_core::ports::UploadStore;
use chat_core::StoreError;
use sea_query::{Expr, LockType, Order, Query, SelectStatement, SimpleExpr};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::db;
use crate::query::{execute, fetch_all, fetch_optional};
use crate::schema::{Attached, Memberships, Messages, Uploads};
use crate::store::PgStore;

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

/// The names [`with_attachment`] gives the columns of [`UPLOAD_COLUMNS`], in the same order.
const ATTACHED_COLUMNS: [Attached; 7] = [
    Attached::UploadId,
    Attached::UploadUploader,
    Attached::UploadName,
    Attached::UploadContentType,
    Attached::UploadSize,
    Attached::UploadSha256,
    Attached::UploadCreatedAt,
];

#[derive(Debug, sqlx::FromRow)]
struct UploadRow {
    id: Uuid,
    uploader: Uuid,
    name: String,
    content_type: String,
    size: i64,
    sha256: String,
    created_at: OffsetDateTime,
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
            created_at: row.created_at,
        }
    }
}

/// The upload a message carries, as [`with_attachment`] selects it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AttachedRow {
    upload_id: Option<Uuid>,
    upload_uploader: Option<Uuid>,
    upload_name: Option<String>,
    upload_content_type: Option<String>,
    upload_size: Option<i64>,
    upload_sha256: Option<String>,
    upload_created_at: Option<OffsetDateTime>,
}

impl AttachedRow {
    /// The attachment; `None` when the message carries no upload. Every column of `uploads` is
    /// NOT NULL, so the outer join leaves either all of them NULL or none.
    pub(crate) fn into_attachment(self) -> Option<Attachment> {
        let row = UploadRow {
            id: self.upload_id?,
            uploader: self.upload_uploader?,
            name: self.upload_name?,
            content_type: self.upload_content_type?,
            size: self.upload_size?,
            sha256: self.upload_sha256?,
            created_at: self.upload_created_at?,
        };
        Some(Attachment::of(&row.into()))
    }
}

/// Adds to `q`, a select from `messages`, the upload each message carries (an [`AttachedRow`]).
pub(crate) fn with_attachment(q: &mut SelectStatement) {
    q.left_join(
        Uploads::Table,
        Expr::col((Uploads::Table, Uploads::Id)).equals((Messages::Table, Messages::AttachmentId)),
    );
    for (column, alias) in UPLOAD_COLUMNS.into_iter().zip(ATTACHED_COLUMNS) {
        q.expr_as(Expr::col((Uploads::Table, column)), alias);
    }
}

fn select_upload(id: UploadId) -> SelectStatement {
    Query::select()
        .columns(UPLOAD_COLUMNS)
        .from(Uploads::Table)
        .and_where(Expr::col(Uploads::Id).eq(id.0))
        .to_owned()
}

/// The upload, which cannot be deleted until the transaction ends (the lock is the one a
/// foreign key check takes): a message appended with it is stored with the upload it returns.
pub(crate) async fn locked(
    conn: &mut PgConnection,
    id: UploadId,
) -> Result<Option<Upload>, StoreError> {
    let q = select_upload(id).lock(LockType::KeyShare).to_owned();
    let row: Option<UploadRow> = fetch_optional(conn, &q).await.map_err(db)?;
    Ok(row.map(Upload::from))
}

/// The messages carrying the upload `id` (a value, or a column of the outer query). A deleted
/// message carries nothing, whatever its row still holds, as it shows no attachment.
pub(crate) fn carriers(id: impl Into<SimpleExpr>) -> SelectStatement {
    Query::select()
        .expr(Expr::val(1))
        .from(Messages::Table)
        .and_where(Expr::col((Messages::Table, Messages::AttachmentId)).eq(id))
        .and_where(Expr::col((Messages::Table, Messages::Deleted)).eq(false))
        .to_owned()
}

#[async_trait]
impl UploadStore for PgStore {
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
                upload.created_at.into(),
            ])
            .map_err(StoreError::backend)?
            .to_owned();
        execute(&self.pool, &insert).await.map_err(db)?;
        Ok(())
    }

    #[tracing::instrument(name = "db.upload.get", skip_all, err)]
    async fn upload(&self, id: UploadId) -> Result<Option<Upload>, StoreError> {
        let row: Option<UploadRow> = fetch_optional(&self.pool, &select_upload(id))
            .await
            .map_err(db)?;
        Ok(row.map(Upload::from))
    }

    #[tracing::instrument(name = "db.upload.may_read", skip_all, err)]
    async fn may_read_upload(&self, id: UploadId, user: UserId) -> Result<bool, StoreError> {
        let uploaded = Query::select()
            .expr(Expr::val(1))
            .from(Uploads::Table)
            .and_where(Expr::col(Uploads::Id).eq(id.0))
            .and_where(Expr::col(Uploads::Uploader).eq(user.0))
            .to_owned();
        let shown_to_user = carriers(id.0)
            .inner_join(
                Memberships::Table,
                Expr::col((Memberships::Table, Memberships::RoomId))
                    .equals((Messages::Table, Messages::RoomId)),
            )
            .and_where(Expr::col((Memberships::Table, Memberships::UserId)).eq(user.0))
            .to_owned();
        let q = Query::select()
            .expr(Expr::exists(uploaded).or(Expr::exists(shown_to_user)))
            .to_owned();
        let may: Option<(bool,)> = fetch_optional(&self.pool, &q).await.map_err(db)?;
        Ok(may.is_some_and(|(may,)| may))
    }

    #[tracing::instrument(name = "db.upload.delete", skip_all, err)]
    async fn delete_upload(&self, id: UploadId) -> Result<bool, StoreError> {
        // The foreign key of `messages.attachment_id` detaches it from its messages, in the
        // same statement.
        let delete = Query::delete()
            .from_table(Uploads::Table)
            .and_where(Expr::col(Uploads::Id).eq(id.0))
            .to_owned();
        let deleted = execute(&self.pool, &delete).await.map_err(db)?;
        Ok(deleted > 0)
    }

    #[tracing::instrument(name = "db.upload.unattached", skip_all, err)]
    async fn unattached_uploads(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<UploadId>, StoreError> {
        let id = (Uploads::Table, Uploads::Id);
        let created_at = (Uploads::Table, Uploads::CreatedAt);
        let q = Query::select()
            .column(id)
            .from(Uploads::Table)
            .and_where(Expr::col(created_at).lt(before))
            .and_where(Expr::exists(carriers(Expr::col(id))).not())
            .order_by(created_at, Order::Asc)
            .order_by(id, Order::Asc)
            .limit(u64::from(limit))
            .to_owned();
        let ids: Vec<(Uuid,)> = fetch_all(&self.pool, &q).await.map_err(db)?;
        Ok(ids.into_iter().map(|(id,)| UploadId(id)).collect())
    }
}

#[cfg(test)]
mod tests {
    use chat_core::domain::{
        ClientId, Emoji, MessageBody, MessageEdit, MessageId, MessageKind, ReactionEdit, Rev,
        SearchQuery, Seq,
    };
    use chat_core::ports::{MessageStore, RoomStore};

    use super::*;
    use crate::test_support::{at, room, scratch, text, user};

    #[tokio::test]
    async fn every_read_of_a_message_shows_its_attachment() {
        let Some(store) = scratch().await else { return };
        let alice = user(&store, "alice").await;
        let room = room(&store, &[alice], at(0)).await;
        let upload = Upload {
            id: UploadId(Uuid::new_v4()),
            uploader: alice,
            name: FileName::sanitize("plan.png"),
            content_type: "image/png".into(),
            size: 1234,
            sha256: "ab".repeat(32),
            created_at: at(1),
        };
        store.create_upload(&upload).await.unwrap();
        let mut file = text(room, alice, Vec::new());
        file.kind = MessageKind::File;
        file.attachment = Some(upload.id);
        file.client_id = Some(ClientId::parse("file-1").unwrap());
        let root = store.append_message(&file).await.unwrap().message;
        let mut reply = file.clone();
        reply.id = MessageId(Uuid::new_v4());
        reply.client_id = None;
        reply.thread_id = Some(root.id);
        store.append_message(&reply).await.unwrap();

        let mut read = vec![root.clone()];
        let repeated = store.append_message(&file).await.unwrap();
        assert!(!repeated.created);
        read.push(repeated.message);
        let reaction = ReactionEdit {
            room_id: room,
            message_id: root.id,
            user_id: alice,
            emoji: Emoji::parse("👍").unwrap(),
            add: true,
            at: at(20),
        };
        read.push(
            store
                .set_reaction(&reaction)
                .await
                .unwrap()
                .unwrap()
                .message,
        );
        let edit = MessageEdit {
            room_id: room,
            id: root.id,
            body: MessageBody::parse("hello again", 100).unwrap(),
            mentions: Vec::new(),
            edited_at: at(30),
        };
        read.push(store.edit_message(&edit).await.unwrap().unwrap());
        read.extend(
            store
                .thread(room, root.id, Seq::ZERO, 10)
                .await
                .unwrap()
                .messages,
        );
        read.extend(store.changed_since(room, Seq(2), Rev(0), 10).await.unwrap());
        let query = SearchQuery::new("hello");
        read.extend(
            store
                .search_messages(alice, &query, None, None, 10)
                .await
                .unwrap(),
        );
        let listed = store.rooms_of_user(alice, false, None, 10).await.unwrap();
        read.extend(
            listed
                .into_iter()
                .filter_map(|i| i.room.last_message.map(|m| *m)),
        );

        // The root and its reply, once from each path: append, repeat, reaction, edit, thread,
        // changed_since (two), search (two) and the room list.
        assert_eq!(read.len(), 10);
        let expected = Some(Attachment::of(&upload));
        assert!(read.iter().all(|m| m.attachment == expected), "{read:#?}");
    }
}
