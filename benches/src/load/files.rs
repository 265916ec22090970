//! The `files` scenario: one user uploads a large file and downloads it again, a few times,
//! while the server's resident memory is sampled. It measures what the streaming upload path
//! promises: throughput, and memory that does not grow with the file.

use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::time::Instant;

use super::client::{run_id, Api, Error, PASSWORD};
use super::rng::Rng;
use super::stats::{peak_rss, status_mib};

/// A 50 MiB transfer over loopback takes well under a minute even on a busy machine.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(300);
/// Fine enough to see a buffer that fills over a fraction of a second.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// What to run.
#[derive(Debug, Clone)]
pub struct FilesPlan {
    /// The server (`http://host:port`).
    pub url: String,
    /// Size of the file, bytes.
    pub bytes: usize,
    /// Uploads (each followed by a download of what was uploaded).
    pub rounds: u32,
    /// A server process whose memory to sample.
    pub server_pid: Option<u32>,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct FilesReport {
    /// Always `files`.
    pub scenario: &'static str,
    /// Size of the file, MiB.
    pub file_mib: f64,
    /// Transfers each way.
    pub rounds: u32,
    /// Median upload throughput, MiB/s (request start to `201`).
    pub upload_mib_s: f64,
    /// Median download throughput, MiB/s (request start to last byte).
    pub download_mib_s: f64,
    /// The server's resident memory before the first upload, MiB.
    pub server_rss_before_mib: Option<f64>,
    /// The largest resident memory sampled during the transfers, MiB.
    pub server_rss_peak_mib: Option<f64>,
    /// Every download had the uploaded bytes (same SHA-256 as sent and as the server recorded).
    pub intact: bool,
}

#[derive(Deserialize)]
struct Upload {
    id: String,
    size: u64,
    sha256: String,
}

/// Uploads and downloads `plan.rounds` times and sums up.
pub async fn run(plan: &FilesPlan) -> Result<FilesReport, Error> {
    let api = Api::new(&plan.url, 2, TRANSFER_TIMEOUT)?;
    let user = api
        .register_and_login(&format!("load-{}-files", run_id()), PASSWORD)
        .await?;
    let content = zip_like(plan.bytes);
    let expected = hex(&Sha256::digest(&content));

    let (stop, stopped) = watch::channel(false);
    let sampler = plan
        .server_pid
        .map(|pid| tokio::spawn(peak_rss(pid, RSS_SAMPLE_EVERY, stopped)));
    let before = plan.server_pid.and_then(|pid| status_mib(pid, "VmRSS"));

    let (mut ups, mut downs, mut intact) = (Vec::new(), Vec::new(), true);
    for round in 0..plan.rounds {
        let started = Instant::now();
        let part = reqwest::multipart::Part::bytes(content.clone())
            .file_name(format!("round-{round}.zip"))
            .mime_str("application/zip")?;
        let response = api
            .http()
            .post(api.url("/v1/uploads"))
            .bearer_auth(&user.token)
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await?;
        let status = response.status();
        if status != reqwest::StatusCode::CREATED {
            let text = response.text().await.unwrap_or_default();
            return Err(format!("POST /v1/uploads: {status}: {text}").into());
        }
        let upload: Upload = response.json().await?;
        ups.push(mib(plan.bytes) / started.elapsed().as_secs_f64());
        intact &= upload.sha256 == expected && upload.size == plan.bytes as u64;

        let started = Instant::now();
        let response = api
            .http()
            .get(api.url(&format!("/v1/uploads/{}/content", upload.id)))
            .bearer_auth(&user.token)
            .send()
            .await?
            .error_for_status()?;
        let mut body = response.bytes_stream();
        let mut hash = Sha256::new();
        let mut received = 0usize;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            received += chunk.len();
            hash.update(&chunk);
        }
        downs.push(mib(received) / started.elapsed().as_secs_f64());
        intact &= received == plan.bytes && hex(&hash.finalize()) == expected;
    }

    let _ = stop.send(true);
    let peak = match sampler {
        Some(task) => task.await?,
        None => None,
    };
    Ok(FilesReport {
        scenario: "files",
        file_mib: mib(plan.bytes),
        rounds: plan.rounds,
        upload_mib_s: median(&mut ups),
        download_mib_s: median(&mut downs),
        server_rss_before_mib: before,
        server_rss_peak_mib: peak,
        intact,
    })
}

impl FilesReport {
    /// The human table.
    pub fn table(&self) -> String {
        let memory = |m: Option<f64>| m.map_or("n/a".to_owned(), |m| format!("{m:.1} MiB"));
        format!(
            "scenario              files\n\
             file                  {:.1} MiB x {} rounds\n\
             upload (median)       {:.0} MiB/s\n\
             download (median)     {:.0} MiB/s\n\
             server RSS before     {}\n\
             server RSS peak       {}\n\
             bytes intact          {}\n",
            self.file_mib,
            self.rounds,
            self.upload_mib_s,
            self.download_mib_s,
            memory(self.server_rss_before_mib),
            memory(self.server_rss_peak_mib),
            if self.intact { "yes" } else { "NO" },
        )
    }
}

/// `len` bytes the server types as a ZIP archive: the local file header's magic number, then
/// noise that neither compresses nor repeats (a transport that deduplicates gains nothing).
fn zip_like(len: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(len);
    bytes.extend_from_slice(b"PK\x03\x04");
    let mut rng = Rng::seeded(0x9E37_79B9_7F4A_7C15);
    while bytes.len() < len {
        bytes.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
