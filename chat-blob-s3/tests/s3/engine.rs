//! The engine's uploads end to end on S3: an upload streams into the bucket, a member reads it
//! back, a link is the bucket's presigned URL, and deleting the upload removes the object.

use std::sync::Arc;

use bytes::Bytes;
use chat_core::domain::{DisplayName, User, UserId, Username};
use chat_core::engine::{CreateRoom, SendMessage};
use chat_core::memory::MemoryStore;
use chat_core::ports::UserStore;
use chat_core::ChatEngine;
use futures_util::{StreamExt, TryStreamExt};

use crate::server::S3Server;
use crate::{body, content};

async fn user(store: &MemoryStore, name: &str) -> UserId {
    let user = User {
        id: UserId(uuid::Uuid::new_v4()),
        username: Username::parse(name).unwrap(),
        display_name: DisplayName::parse(name).unwrap(),
        email: None,
        created_at: time::OffsetDateTime::now_utc(),
    };
    store.create_user(&user, "not a hash").await.unwrap();
    user.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_live_in_the_bucket_and_links_are_presigned() {
    let s3 = S3Server::start().await;
    let store = Arc::new(MemoryStore::new());
    let engine = ChatEngine::builder(store.clone())
        .blobs(Arc::new(s3.store()))
        .build()
        .await
        .unwrap();
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let room = engine
        .create_room(
            alice,
            CreateRoom {
                name: "files".into(),
                topic: None,
                visibility: None,
                members: Some(vec![bob.to_string()]),
            },
        )
        .await
        .unwrap();

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&content(6 * 1024 * 1024));
    let png = Bytes::from(png);
    let upload = engine.upload(alice, "big.png", body(&png)).await.unwrap();
    assert_eq!(
        (upload.content_type.as_str(), upload.size),
        ("image/png", png.len() as i64)
    );
    let file = SendMessage {
        attachment_id: Some(upload.id.to_string()),
        ..SendMessage::default()
    };
    engine.send(alice, room.id, file).await.unwrap();

    let download = engine.download(bob, upload.id, None).await.unwrap();
    let got: Vec<Bytes> = download.body.try_collect().await.unwrap();
    assert_eq!(got.concat(), png.to_vec());

    let link = engine.upload_link(bob, upload.id).await.unwrap();
    assert!(link.url.starts_with("http://127.0.0.1"), "{}", link.url);
    let fetched = reqwest::get(&link.url).await.unwrap();
    assert!(fetched.status().is_success(), "{}", fetched.status());
    let mut read = 0;
    let mut stream = fetched.bytes_stream();
    while let Some(chunk) = stream.next().await {
        read += chunk.unwrap().len();
    }
    assert_eq!(read, png.len());

    let object = s3.object_file(&format!("uploads/{}", upload.id.0.simple()));
    assert!(
        object.exists(),
        "the bytes are in the bucket: {}",
        object.display()
    );
    engine.delete_upload(alice, upload.id).await.unwrap();
    assert!(!object.exists(), "the object is gone: {}", object.display());
}
