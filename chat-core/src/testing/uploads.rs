//! Conformance behaviours of uploads: their metadata, attachments on messages, who may read
//! them, and which are left unattached.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::domain::{
    Attachment, FileName, HistoryAnchor, MessageKind, Seq, Upload, UploadId, UserId,
};
use crate::error::StoreError;
use crate::ports::Store;

use super::{add_room, add_user, t, text};

fn new_upload(uploader: UserId, name: &str, at: OffsetDateTime) -> Upload {
    Upload {
        id: UploadId(uuid::Uuid::new_v4()),
        uploader,
        name: FileName::sanitize(name),
        content_type: "image/png".into(),
        size: 1234,
        sha256: "ab".repeat(32),
        created_at: at,
    }
}

pub(super) async fn stored(store: &Arc<dyn Store>, uploader: UserId, name: &str) -> Upload {
    let upload = new_upload(uploader, name, t(5));
    store.create_upload(&upload).await.expect("upload stored");
    upload
}

/// An upload's metadata is stored and found by id.
pub async fn uploads_are_stored_and_found(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let upload = stored(&store, alice, "cat picture.png").await;
    assert_eq!(store.upload(upload.id).await.unwrap(), Some(upload));
    let missing = UploadId(uuid::Uuid::new_v4());
    assert_eq!(store.upload(missing).await.unwrap(), None);
    assert!(!store.may_read_upload(missing, alice).await.unwrap());
}

/// A message carries its upload as an attachment; members of its room may read the upload,
/// others not; deleting the message takes the attachment and that access away.
pub async fn attachments_show_on_messages_and_let_members_read(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let eve = add_user(&store, "eve").await;
    let room = add_room(&store, alice, &[bob]).await;
    let upload = stored(&store, alice, "plan.png").await;
    assert!(store.may_read_upload(upload.id, alice).await.unwrap());
    assert!(!store.may_read_upload(upload.id, bob).await.unwrap());

    let mut file = text(room, alice, "the plan");
    file.kind = MessageKind::File;
    file.attachment = Some(upload.id);
    let appended = store.append_message(&file).await.unwrap().message;
    assert_eq!(appended.kind, MessageKind::File);
    assert_eq!(appended.attachment, Some(Attachment::of(&upload)));
    let read = store.message(room, appended.id).await.unwrap().unwrap();
    assert_eq!(read, appended);
    let page = store
        .history(room, HistoryAnchor::Latest, 10)
        .await
        .unwrap();
    assert_eq!(page.messages, std::slice::from_ref(&appended));
    let url = read.attachment.map(|a| a.url);
    assert_eq!(url, Some(format!("/v1/uploads/{}/content", upload.id)));
    assert!(store.may_read_upload(upload.id, bob).await.unwrap());
    assert!(!store.may_read_upload(upload.id, eve).await.unwrap());

    let tombstone = store
        .delete_message(room, appended.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tombstone.attachment, None);
    assert!(!store.may_read_upload(upload.id, bob).await.unwrap());
    assert!(
        store.may_read_upload(upload.id, alice).await.unwrap(),
        "the uploader still may"
    );
}

/// A message naming an upload that does not exist is not stored.
pub async fn appending_with_an_unknown_upload_is_not_found(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let room = add_room(&store, alice, &[]).await;
    let mut file = text(room, alice, "ghost");
    file.kind = MessageKind::File;
    file.attachment = Some(UploadId(uuid::Uuid::new_v4()));
    let refused = store.append_message(&file).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
    assert_eq!(store.room(room).await.unwrap().unwrap().last_seq, Seq::ZERO);
}

/// Deleting an upload leaves the messages that carried it as files without an attachment.
pub async fn deleting_an_upload_detaches_it(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let room = add_room(&store, alice, &[bob]).await;
    let upload = stored(&store, alice, "report.png").await;
    let mut file = text(room, alice, "report");
    file.kind = MessageKind::File;
    file.attachment = Some(upload.id);
    file.client_id = Some(crate::domain::ClientId::parse("report-1").unwrap());
    let id = store.append_message(&file).await.unwrap().message.id;

    assert!(store.delete_upload(upload.id).await.unwrap());
    assert!(!store.delete_upload(upload.id).await.unwrap());
    let retried = store
        .append_message(&file)
        .await
        .expect("a repeated client id");
    assert!(
        !retried.created,
        "the original is returned though its upload is gone"
    );
    assert_eq!(store.upload(upload.id).await.unwrap(), None);
    let message = store.message(room, id).await.unwrap().unwrap();
    assert_eq!(
        (message.kind, message.attachment),
        (MessageKind::File, None)
    );
    assert!(!message.deleted);
    assert!(!store.may_read_upload(upload.id, bob).await.unwrap());
}

/// Uploads no message carries, created before a time, are found oldest first.
pub async fn unattached_uploads_are_found_oldest_first(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let room = add_room(&store, alice, &[]).await;
    let older = new_upload(alice, "older.png", t(1));
    let old = new_upload(alice, "old.png", t(2));
    let attached = new_upload(alice, "attached.png", t(3));
    let recent = new_upload(alice, "recent.png", t(100));
    for u in [&older, &old, &attached, &recent] {
        store.create_upload(u).await.unwrap();
    }
    let mut file = text(room, alice, "kept");
    file.kind = MessageKind::File;
    file.attachment = Some(attached.id);
    let id = store.append_message(&file).await.unwrap().message.id;

    let found = store.unattached_uploads(t(50), 10).await.unwrap();
    assert_eq!(found, [older.id, old.id]);
    assert_eq!(
        store.unattached_uploads(t(50), 1).await.unwrap(),
        [older.id]
    );
    store.delete_message(room, id).await.unwrap();
    let found = store.unattached_uploads(t(50), 10).await.unwrap();
    assert_eq!(found, [older.id, old.id, attached.id]);
}
