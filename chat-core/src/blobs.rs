//! In-process blob stores: [`FsBlobStore`] keeps files in a directory (the server's default),
//! [`MemoryBlobStore`] keeps them in memory (examples and tests of embedders).

use std::collections::HashMap;
use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::ports::{BlobError, BlobKey, BlobStore, ByteStream};

/// The size of the chunks a blob is read in.
const CHUNK: usize = 64 * 1024;

/// Blobs as files under one directory: `<root>/<first two hex digits>/<key>`. A blob is
/// written to `<root>/tmp` first and renamed into place only once complete and synced, so a
/// reader never sees a partial file and a crash leaves only temporaries, removed at open.
#[derive(Debug)]
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    /// Opens (creating it when missing) the directory at `root`, removing temporaries a
    /// previous process left behind.
    pub async fn open(root: impl Into<PathBuf>) -> io::Result<FsBlobStore> {
        let root = root.into();
        let tmp = root.join("tmp");
        tokio::fs::create_dir_all(&tmp).await?;
        let mut leftovers = tokio::fs::read_dir(&tmp).await?;
        while let Some(entry) = leftovers.next_entry().await? {
            tokio::fs::remove_file(entry.path()).await?;
        }
        Ok(FsBlobStore { root })
    }

    /// The directory blobs live under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: BlobKey) -> PathBuf {
        let name = key.to_string();
        self.root.join(&name[..2]).join(name)
    }

    fn temporary(&self, key: BlobKey) -> PathBuf {
        self.root
            .join("tmp")
            .join(format!("{key}.{}.part", uuid::Uuid::new_v4().simple()))
    }

    async fn write(
        &self,
        tmp: &Path,
        key: BlobKey,
        mut body: ByteStream,
    ) -> Result<u64, BlobError> {
        let mut file = tokio::fs::File::create(tmp)
            .await
            .map_err(BlobError::Backend)?;
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(BlobError::Input)?;
            file.write_all(&chunk).await.map_err(BlobError::Backend)?;
            size += chunk.len() as u64;
        }
        file.sync_all().await.map_err(BlobError::Backend)?;
        let path = self.path(key);
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(BlobError::Backend)?;
        }
        tokio::fs::rename(tmp, &path)
            .await
            .map_err(BlobError::Backend)?;
        Ok(size)
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, key: BlobKey, body: ByteStream) -> Result<u64, BlobError> {
        let tmp = self.temporary(key);
        let written = self.write(&tmp, key, body).await;
        if written.is_err() {
            // Nothing of a failed upload stays on disk; the file may not exist yet.
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        written
    }

    async fn get(
        &self,
        key: BlobKey,
        offset: u64,
        len: Option<u64>,
    ) -> Result<Option<ByteStream>, BlobError> {
        let mut file = match tokio::fs::File::open(self.path(key)).await {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(BlobError::Backend(e)),
        };
        file.seek(SeekFrom::Start(offset))
            .await
            .map_err(BlobError::Backend)?;
        Ok(Some(match len {
            Some(len) => chunks(file.take(len)),
            None => chunks(file),
        }))
    }

    async fn delete(&self, key: BlobKey) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(key)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(BlobError::Backend(e)),
            _ => Ok(()),
        }
    }
}

/// A reader as a stream of chunks of at most [`CHUNK`] bytes.
fn chunks<R: AsyncRead + Unpin + Send + 'static>(reader: R) -> ByteStream {
    Box::pin(futures_util::stream::unfold(
        reader,
        |mut reader| async move {
            let mut buf = BytesMut::zeroed(CHUNK);
            match reader.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(buf.freeze()), reader))
                }
                Err(e) => Some((Err(e), reader)),
            }
        },
    ))
}

/// Blobs in memory.
#[derive(Debug, Default)]
pub struct MemoryBlobStore {
    blobs: Mutex<HashMap<BlobKey, Bytes>>,
}

impl MemoryBlobStore {
    /// An empty store.
    pub fn new() -> MemoryBlobStore {
        MemoryBlobStore::default()
    }

    /// How many blobs it holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BlobKey, Bytes>> {
        // Each method changes the map in one step, so a poisoned lock is still consistent.
        self.blobs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn put(&self, key: BlobKey, mut body: ByteStream) -> Result<u64, BlobError> {
        let mut all = BytesMut::new();
        while let Some(chunk) = body.next().await {
            all.extend_from_slice(&chunk.map_err(BlobError::Input)?);
        }
        let size = all.len() as u64;
        self.lock().insert(key, all.freeze());
        Ok(size)
    }

    async fn get(
        &self,
        key: BlobKey,
        offset: u64,
        len: Option<u64>,
    ) -> Result<Option<ByteStream>, BlobError> {
        let Some(bytes) = self.lock().get(&key).cloned() else {
            return Ok(None);
        };
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let end = match len {
            Some(len) => start.saturating_add(usize::try_from(len).unwrap_or(usize::MAX)),
            None => bytes.len(),
        }
        .min(bytes.len());
        let part = bytes.slice(start..end);
        Ok(Some(Box::pin(futures_util::stream::iter([Ok(part)]))))
    }

    async fn delete(&self, key: BlobKey) -> Result<(), BlobError> {
        self.lock().remove(&key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: Vec<Result<&'static [u8], io::Error>>) -> ByteStream {
        Box::pin(futures_util::stream::iter(
            parts.into_iter().map(|p| p.map(Bytes::from_static)),
        ))
    }

    async fn read_all(stream: ByteStream) -> Vec<u8> {
        let parts: Vec<Bytes> = stream.map(|c| c.expect("chunk")).collect().await;
        parts.concat()
    }

    async fn stores() -> (tempfile::TempDir, Vec<Box<dyn BlobStore>>) {
        let dir = tempfile::tempdir().unwrap();
        let fs = FsBlobStore::open(dir.path().join("blobs")).await.unwrap();
        (dir, vec![Box::new(fs), Box::new(MemoryBlobStore::new())])
    }

    #[tokio::test]
    async fn blobs_round_trip_and_read_in_ranges() {
        let (_dir, stores) = stores().await;
        for store in stores {
            let key = BlobKey(uuid::Uuid::new_v4());
            let size = store
                .put(key, body(vec![Ok(b"hello "), Ok(b"world")]))
                .await
                .unwrap();
            assert_eq!(size, 11);
            let all = store.get(key, 0, None).await.unwrap().unwrap();
            assert_eq!(read_all(all).await, b"hello world");
            let part = store.get(key, 6, Some(3)).await.unwrap().unwrap();
            assert_eq!(read_all(part).await, b"wor");
            store.delete(key).await.unwrap();
            store.delete(key).await.unwrap();
            assert!(store.get(key, 0, None).await.unwrap().is_none());
        }
    }

    #[tokio::test]
    async fn a_failed_upload_leaves_nothing() {
        let (dir, stores) = stores().await;
        for store in stores {
            let key = BlobKey(uuid::Uuid::new_v4());
            let failing = body(vec![Ok(b"partial"), Err(io::Error::other("cut off"))]);
            let refused = store.put(key, failing).await;
            assert!(matches!(refused, Err(BlobError::Input(_))), "{refused:?}");
            assert!(store.get(key, 0, None).await.unwrap().is_none());
        }
        let mut files = Vec::new();
        let mut stack = vec![dir.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        assert!(files.is_empty(), "left behind: {files:?}");
    }
}
