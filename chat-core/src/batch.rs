//! Group commit for store adapters: callers queue jobs, one task takes whatever has queued up
//! and runs it as one batch (one transaction, one fsync), and each caller gets its own result.
//!
//! A store that commits each message on its own pays one durable flush per message; with many
//! senders at once, most of them wait for the disk. Batching what waits anyway turns N flushes
//! into one, and adds no delay when nothing waits: a lone job is a batch of one.
//!
//! ```
//! use chat_core::batch::Batcher;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // A "store" whose batch doubles each job; a real one runs its jobs in one transaction.
//! let doubler = Batcher::spawn(64, |jobs: Vec<u32>| async move {
//!     jobs.into_iter().map(|n| n * 2).collect()
//! });
//! assert_eq!(doubler.submit(21).await, Some(42));
//! # }
//! ```

use std::fmt;
use std::future::Future;

use tokio::sync::{mpsc, oneshot};

type Queued<J, R> = (J, oneshot::Sender<R>);

/// A queue in front of one task that runs jobs in batches.
///
/// The task runs on the tokio runtime `spawn` was called on and ends when the last clone of the
/// batcher is dropped. A batch runs to its end even when a caller stops waiting for its result,
/// so a job that was taken is never half done because its caller went away.
pub struct Batcher<J, R> {
    queue: mpsc::Sender<Queued<J, R>>,
}

impl<J, R> Clone for Batcher<J, R> {
    fn clone(&self) -> Self {
        Batcher {
            queue: self.queue.clone(),
        }
    }
}

impl<J, R> fmt::Debug for Batcher<J, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batcher")
            .field(
                "queued",
                &(self.queue.max_capacity() - self.queue.capacity()),
            )
            .finish()
    }
}

impl<J, R> Batcher<J, R>
where
    J: Send + 'static,
    R: Send + 'static,
{
    /// Starts the task. `run` gets each batch, at most `max_batch` jobs in the order they were
    /// submitted, and must return exactly one result per job, in the same order. At most
    /// `max_batch` more jobs wait while a batch runs; further callers of
    /// [`Batcher::submit`] wait for room, which is how a slow disk pushes back on senders.
    pub fn spawn<F, Fut>(max_batch: usize, mut run: F) -> Batcher<J, R>
    where
        F: FnMut(Vec<J>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<R>> + Send,
    {
        let max_batch = max_batch.max(1);
        let (queue, mut jobs) = mpsc::channel::<Queued<J, R>>(max_batch);
        tokio::spawn(async move {
            let mut waiting = Vec::with_capacity(max_batch);
            while jobs.recv_many(&mut waiting, max_batch).await > 0 {
                let (batch, replies): (Vec<J>, Vec<oneshot::Sender<R>>) = waiting.drain(..).unzip();
                let results = run(batch).await;
                debug_assert_eq!(results.len(), replies.len(), "one result per job");
                for (reply, result) in replies.into_iter().zip(results) {
                    // A caller that stopped waiting has nobody to tell.
                    let _ = reply.send(result);
                }
            }
        });
        Batcher { queue }
    }

    /// Queues the job and waits for its result; `None` when the task is gone (its runtime shut
    /// down, or a batch panicked).
    pub async fn submit(&self, job: J) -> Option<R> {
        let (reply, result) = oneshot::channel();
        self.queue.send((job, reply)).await.ok()?;
        result.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[tokio::test]
    async fn jobs_that_wait_together_run_as_one_batch_and_each_gets_its_own_result() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let (release, gate) = tokio::sync::watch::channel(false);
        let batcher = Batcher::spawn(8, move |jobs: Vec<u32>| {
            seen.lock().unwrap().push(jobs.len());
            let mut gate = gate.clone();
            async move {
                // The first batch holds the task until every other job has queued behind it.
                gate.wait_for(|open| *open).await.unwrap();
                jobs.into_iter().map(|n| n + 100).collect::<Vec<_>>()
            }
        });
        let first = tokio::spawn({
            let b = batcher.clone();
            async move { b.submit(0).await }
        });
        while sizes.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        let rest: Vec<_> = (1..=5)
            .map(|n| {
                let b = batcher.clone();
                tokio::spawn(async move { b.submit(n).await })
            })
            .collect();
        while batcher.queue.capacity() > 3 {
            tokio::task::yield_now().await;
        }
        release.send(true).unwrap();
        assert_eq!(first.await.unwrap(), Some(100));
        for (n, handle) in (1..=5).zip(rest) {
            assert_eq!(handle.await.unwrap(), Some(n + 100));
        }
        assert_eq!(*sizes.lock().unwrap(), vec![1, 5]);
    }

    #[tokio::test]
    async fn a_batch_never_exceeds_the_maximum() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let batcher = Batcher::spawn(3, move |jobs: Vec<u32>| {
            seen.lock().unwrap().push(jobs.len());
            async move {
                tokio::task::yield_now().await;
                jobs
            }
        });
        let handles: Vec<_> = (0..20)
            .map(|n| {
                let b = batcher.clone();
                tokio::spawn(async move { b.submit(n).await })
            })
            .collect();
        for (n, handle) in (0..20).zip(handles) {
            assert_eq!(handle.await.unwrap(), Some(n));
        }
        let sizes = sizes.lock().unwrap();
        assert_eq!(sizes.iter().sum::<usize>(), 20);
        assert!(sizes.iter().all(|&s| (1..=3).contains(&s)), "{sizes:?}");
    }

    #[tokio::test]
    async fn a_panicking_batch_stops_the_task_and_callers_learn_it() {
        let batcher = Batcher::spawn(4, |jobs: Vec<u32>| async move {
            assert!(jobs[0] != 7, "boom");
            jobs
        });
        assert_eq!(batcher.submit(1).await, Some(1));
        assert_eq!(batcher.submit(7).await, None);
        assert_eq!(batcher.submit(2).await, None);
    }
}
