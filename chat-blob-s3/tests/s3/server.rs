//! A real S3 server for the tests: s3s-fs serving a temporary directory over hyper, on a
//! random port of 127.0.0.1, with SigV4 authentication on.

use std::path::PathBuf;

use chat_blob_s3::{S3BlobStore, S3Options};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const BUCKET: &str = "chat";
const ACCESS_KEY_ID: &str = "test-access-key";
const SECRET_ACCESS_KEY: &str = "test-secret-key";

/// The server; it stops when dropped.
pub(crate) struct S3Server {
    endpoint: String,
    root: TempDir,
    task: JoinHandle<()>,
}

impl S3Server {
    /// Serves an empty bucket.
    pub(crate) async fn start() -> S3Server {
        let root = tempfile::tempdir().unwrap();
        // s3s-fs keeps a bucket as a directory of its root.
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        let mut service = S3ServiceBuilder::new(s3s_fs::FileSystem::new(root.path()).unwrap());
        service.set_auth(SimpleAuth::from_single(ACCESS_KEY_ID, SECRET_ACCESS_KEY));
        let service = service.build();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let connection =
                    http1::Builder::new().serve_connection(TokioIo::new(socket), service.clone());
                tokio::spawn(connection);
            }
        });
        S3Server {
            endpoint,
            root,
            task,
        }
    }

    /// Settings that reach this server, blobs under `prefix`.
    pub(crate) fn options(&self, prefix: &str) -> S3Options {
        S3Options {
            endpoint: Some(self.endpoint.clone()),
            allow_http: true,
            prefix: prefix.to_owned(),
            ..S3Options::new(BUCKET, ACCESS_KEY_ID, SECRET_ACCESS_KEY)
        }
    }

    /// A store on this server with the default prefix.
    pub(crate) fn store(&self) -> S3BlobStore {
        S3BlobStore::new(self.options(S3Options::DEFAULT_PREFIX)).unwrap()
    }

    /// Where the server keeps the object `name` of the bucket.
    pub(crate) fn object_file(&self, name: &str) -> PathBuf {
        self.root.path().join(BUCKET).join(name)
    }

    /// The multipart uploads begun and neither completed nor aborted (s3s-fs keeps each as
    /// `.upload-<id>.json` and its parts as `.upload_id-<id>.part-<n>` in its root).
    pub(crate) fn pending_uploads(&self) -> Vec<String> {
        std::fs::read_dir(self.root.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(".upload"))
            .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
