//! Engine tests of uploads: the cap and the type are found while streaming, nothing of a
//! refused file is kept, and uploads no message carries are collected after the set time.

#[macro_use]
mod support;

use bytes::Bytes;
use chat_core::blobs::MemoryBlobStore;
use chat_core::ports::ByteStream;
use support::*;

fn stream_of(bytes: Vec<u8>, chunk: usize) -> ByteStream {
    let bytes = Bytes::from(bytes);
    let parts: Vec<Result<Bytes, std::io::Error>> = (0..bytes.len())
        .step_by(chunk)
        .map(|at| Ok(bytes.slice(at..(at + chunk).min(bytes.len()))))
        .collect();
    Box::pin(futures_util::stream::iter(parts))
}

fn png(len: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.resize(len, 7);
    bytes
}

async fn engine_with_blobs(
    limits: Limits,
) -> (
    ChatEngine,
    Arc<MemoryStore>,
    Arc<MemoryBlobStore>,
    Arc<ManualClock>,
) {
    let store = Arc::new(MemoryStore::new());
    let blobs = Arc::new(MemoryBlobStore::new());
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let engine = ChatEngine::builder(store.clone())
        .blobs(blobs.clone())
        .clock(clock.clone())
        .limits(limits)
        .build()
        .await
        .expect("engine builds");
    (engine, store, blobs, clock)
}

#[tokio::test]
async fn the_cap_and_the_type_are_found_while_streaming() {
    let (engine, store, blobs, _) = engine_with_blobs(Limits {
        upload_max_bytes: 20_000,
        ..limits()
    })
    .await;
    let alice = seed_user(&store, "alice").await;

    let at_cap = engine
        .upload(alice, "ok.png", stream_of(png(20_000), 3000))
        .await;
    assert_eq!(at_cap.expect("at the cap").size, 20_000);
    assert_err!(
        engine
            .upload(alice, "big.png", stream_of(png(20_001), 3000))
            .await,
        ChatError::PayloadTooLarge
    );
    // The type is known after the first 8 KiB, long before the end of a large file.
    let mut exe = b"\x7fELF\x02\x01\x01\0".to_vec();
    exe.resize(19_000, 0);
    assert_err!(
        engine.upload(alice, "exe.png", stream_of(exe, 1000)).await,
        ChatError::UnsupportedMediaType
    );
    assert_err!(
        engine
            .upload(alice, "empty.txt", stream_of(Vec::new(), 1))
            .await,
        ChatError::UnsupportedMediaType
    );
    assert_eq!(blobs.len(), 1, "only the accepted file is kept");
}

#[tokio::test]
async fn uploads_no_message_carries_are_collected_after_the_set_time() {
    let (engine, store, blobs, clock) = engine_with_blobs(Limits {
        unattached_upload_secs: 3600,
        ..limits()
    })
    .await;
    let alice = seed_user(&store, "alice").await;
    let room = private_room(&engine, alice, &[]).await;
    let kept = engine
        .upload(alice, "kept.png", stream_of(png(100), 100))
        .await
        .expect("uploaded");
    let dropped = engine
        .upload(alice, "dropped.png", stream_of(png(100), 100))
        .await
        .expect("uploaded");
    let file = SendMessage {
        attachment_id: Some(kept.id.to_string()),
        ..Default::default()
    };
    let sent = engine.send(alice, room, file).await.expect("sent");
    assert_eq!(sent.message.kind, MessageKind::File);
    assert_eq!(sent.message.body, None, "a caption is optional");

    assert_eq!(
        engine
            .collect_unattached_uploads()
            .await
            .expect("collected"),
        0
    );
    clock.advance(Duration::from_secs(3601));
    assert_eq!(
        engine
            .collect_unattached_uploads()
            .await
            .expect("collected"),
        1
    );
    assert_err!(
        engine.upload_info(alice, dropped.id).await,
        ChatError::NotFound
    );
    assert_eq!(blobs.len(), 1);
    engine
        .upload_info(alice, kept.id)
        .await
        .expect("still there");
}

#[tokio::test]
async fn signed_links_work_until_they_expire_and_only_as_signed() {
    let (engine, store, _, clock) = engine_with_blobs(Limits {
        upload_link_secs: 60,
        ..limits()
    })
    .await;
    let alice = seed_user(&store, "alice").await;
    let eve = seed_user(&store, "eve").await;
    let upload = engine
        .upload(alice, "a.png", stream_of(png(100), 100))
        .await
        .expect("uploaded");
    assert_err!(
        engine.upload_link(eve, upload.id).await,
        ChatError::NotFound
    );
    let link = engine.upload_link(alice, upload.id).await.expect("a link");
    let query = link.url.split_once('?').expect("a query").1;
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .expect("the parameter")
            .to_owned()
    };
    let (expires, sig) = (param("expires").parse::<i64>().unwrap(), param("sig"));

    let download = engine
        .download_by_link(upload.id, expires, &sig, None)
        .await;
    assert_eq!(download.expect("a valid link").upload.id, upload.id);
    assert_err!(
        engine
            .download_by_link(upload.id, expires + 3600, &sig, None)
            .await,
        ChatError::NotFound
    );
    let other = engine
        .upload(alice, "b.png", stream_of(png(100), 100))
        .await
        .expect("uploaded");
    assert_err!(
        engine.download_by_link(other.id, expires, &sig, None).await,
        ChatError::NotFound
    );
    clock.advance(Duration::from_secs(61));
    assert_err!(
        engine
            .download_by_link(upload.id, expires, &sig, None)
            .await,
        ChatError::NotFound
    );
}
