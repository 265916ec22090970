//! `S3BlobStore` against a real S3 server (s3s-fs, in-process).

mod engine;
mod server;

use std::io;
use std::time::Duration;

use bytes::Bytes;
use chat_blob_s3::{S3BlobStore, S3Options};
use chat_core::ports::{BlobError, BlobKey, BlobStore, ByteStream};
use futures_util::{stream, StreamExt, TryStreamExt};
use server::S3Server;

/// Larger than two parts, and not a whole number of them, so a put is a multipart upload
/// with a short last part.
const LARGE: usize = 12 * 1024 * 1024 + 12_345;
const CHUNK: usize = 64 * 1024;

fn key() -> BlobKey {
    BlobKey(uuid::Uuid::new_v4())
}

/// `len` bytes that differ from one offset to the next, so a misplaced range shows.
fn content(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
        .collect()
}

fn chunks(content: &Bytes) -> impl Iterator<Item = io::Result<Bytes>> + Send + 'static {
    let content = content.clone();
    (0..content.len())
        .step_by(CHUNK)
        .map(move |start| Ok(content.slice(start..content.len().min(start + CHUNK))))
}

fn body(content: &Bytes) -> ByteStream {
    Box::pin(stream::iter(chunks(content)))
}

/// `content`, then a failure of the connection it came from.
fn failing_body(content: &Bytes) -> ByteStream {
    let failure = io::Error::new(io::ErrorKind::ConnectionReset, "the client went away");
    Box::pin(stream::iter(chunks(content)).chain(stream::iter([Err(failure)])))
}

async fn read(store: &S3BlobStore, key: BlobKey, offset: u64, len: Option<u64>) -> Option<Bytes> {
    let body = store.get(key, offset, len).await.unwrap()?;
    let bytes: Vec<Bytes> = body.try_collect().await.unwrap();
    Some(bytes.concat().into())
}

#[tokio::test]
async fn a_large_blob_streamed_in_many_chunks_reads_back_whole() {
    let server = S3Server::start().await;
    let store = server.store();
    let (key, large) = (key(), content(LARGE));

    assert_eq!(store.put(key, body(&large)).await.unwrap(), LARGE as u64);

    assert_eq!(read(&store, key, 0, None).await.unwrap(), large);
    assert!(server.pending_uploads().is_empty());
}

#[tokio::test]
async fn small_and_empty_blobs_read_back_whole() {
    let server = S3Server::start().await;
    let store = server.store();
    let (small, empty) = (content(3 * CHUNK + 17), Bytes::new());
    let (small_key, empty_key) = (key(), key());

    assert_eq!(
        store.put(small_key, body(&small)).await.unwrap(),
        small.len() as u64
    );
    assert_eq!(store.put(empty_key, body(&empty)).await.unwrap(), 0);

    assert_eq!(read(&store, small_key, 0, None).await.unwrap(), small);
    assert_eq!(read(&store, empty_key, 0, None).await.unwrap(), empty);
}

#[tokio::test]
async fn ranges_read_from_an_offset_for_a_length_or_to_the_end() {
    let server = S3Server::start().await;
    let store = server.store();
    let (key, data) = (key(), content(300_000));
    store.put(key, body(&data)).await.unwrap();

    let middle = read(&store, key, 1_000, Some(150_000)).await.unwrap();
    assert_eq!(middle, data.slice(1_000..151_000));
    let tail = read(&store, key, 299_990, None).await.unwrap();
    assert_eq!(tail, data.slice(299_990..));
    let beyond_the_end = read(&store, key, 299_000, Some(5_000)).await.unwrap();
    assert_eq!(beyond_the_end, data.slice(299_000..));
    assert_eq!(read(&store, key, 10, Some(0)).await.unwrap(), Bytes::new());
}

#[tokio::test]
async fn a_missing_blob_is_none_whatever_the_range() {
    let server = S3Server::start().await;
    let store = server.store();
    let key = key();

    assert!(store.get(key, 0, None).await.unwrap().is_none());
    assert!(store.get(key, 10, Some(20)).await.unwrap().is_none());
    assert!(store.get(key, 10, None).await.unwrap().is_none());
    assert!(store.get(key, 0, Some(0)).await.unwrap().is_none());
}

#[tokio::test]
async fn a_deleted_blob_is_gone_and_deleting_a_missing_one_is_fine() {
    let server = S3Server::start().await;
    let store = server.store();
    let key = key();
    store.put(key, body(&content(1_000))).await.unwrap();

    store.delete(key).await.unwrap();

    assert!(store.get(key, 0, None).await.unwrap().is_none());
    store.delete(key).await.unwrap();
    store.delete(self::key()).await.unwrap();
}

#[tokio::test]
async fn blobs_are_objects_under_the_prefix() {
    let server = S3Server::start().await;
    let (default, nested) = (key(), key());
    server
        .store()
        .put(default, body(&content(10)))
        .await
        .unwrap();
    let store = S3BlobStore::new(server.options("tenant-1/files")).unwrap();
    store.put(nested, body(&content(10))).await.unwrap();

    assert!(server.object_file(&format!("uploads/{default}")).is_file());
    assert!(server
        .object_file(&format!("tenant-1/files/{nested}"))
        .is_file());
}

#[tokio::test]
async fn a_small_put_whose_stream_fails_keeps_nothing() {
    let server = S3Server::start().await;
    let store = server.store();
    let key = key();

    let failed = store.put(key, failing_body(&content(CHUNK + 1))).await;

    assert!(matches!(failed, Err(BlobError::Input(_))), "{failed:?}");
    assert!(store.get(key, 0, None).await.unwrap().is_none());
}

#[tokio::test]
async fn a_multipart_put_whose_stream_fails_is_aborted() {
    let server = S3Server::start().await;
    let store = server.store();
    let key = key();
    // The stream fails only once the test has seen the multipart upload under way.
    let (cut, cut_off) = tokio::sync::oneshot::channel::<()>();
    let cut_off = stream::once(async move {
        let _ = cut_off.await;
        Err(io::Error::new(io::ErrorKind::ConnectionReset, "cut off"))
    });
    let body: ByteStream = Box::pin(stream::iter(chunks(&content(LARGE))).chain(cut_off));
    let put = tokio::spawn({
        let store = store.clone();
        async move { store.put(key, body).await }
    });
    tokio::time::timeout(Duration::from_secs(30), async {
        while server.pending_uploads().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a multipart upload begins");

    cut.send(()).unwrap();
    let failed = put.await.unwrap();

    assert!(matches!(failed, Err(BlobError::Input(_))), "{failed:?}");
    assert!(store.get(key, 0, None).await.unwrap().is_none());
    assert_eq!(server.pending_uploads(), Vec::<String>::new());
}

#[tokio::test]
async fn a_presigned_url_reads_the_blob_without_credentials() {
    let server = S3Server::start().await;
    let store = server.store();
    let (key, data) = (key(), content(100_000));
    store.put(key, body(&data)).await.unwrap();
    let disposition = "attachment; filename=\"notes.txt\"";

    let url = store
        .presigned_get(key, Duration::from_secs(60), "text/plain", disposition)
        .await
        .unwrap()
        .expect("S3 presigns");

    let res = reqwest::get(&url).await.unwrap();
    assert_eq!(res.status(), 200);
    // s3s-fs ignores `response-content-*`, so only their presence in the signed URL is checked;
    // AWS S3, MinIO and R2 answer with them.
    let query: Vec<(String, String)> = reqwest::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert!(query.contains(&("response-content-type".into(), "text/plain".into())));
    assert!(query.contains(&("response-content-disposition".into(), disposition.into())));
    assert_eq!(res.bytes().await.unwrap(), data);
}

#[tokio::test]
async fn a_presigned_url_cannot_be_changed() {
    let server = S3Server::start().await;
    let store = server.store();
    let key = key();
    store.put(key, body(&content(10))).await.unwrap();
    let url = store
        .presigned_get(key, Duration::from_secs(60), "text/plain", "inline")
        .await
        .unwrap()
        .unwrap();

    let forged = url.replace("text%2Fplain", "text%2Fhtml");

    assert_ne!(forged, url);
    assert_eq!(reqwest::get(&forged).await.unwrap().status(), 403);
}

#[tokio::test]
async fn settings_it_cannot_use_are_refused() {
    let server = S3Server::start().await;

    assert!(S3BlobStore::new(server.options("a//b")).is_err());
    assert!(S3BlobStore::new(S3Options {
        endpoint: Some("not a url".into()),
        ..server.options("uploads")
    })
    .is_err());
}
