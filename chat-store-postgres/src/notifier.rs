//! `PgNotifier`: the bus between server nodes on one PostgreSQL, over a single LISTEN/NOTIFY
//! channel. Payloads are small hints (room, seq, kind), batched under PostgreSQL's 8000-byte
//! limit; a listener that lost its connection reconnects and signals `Resync`, because NOTIFY
//! keeps nothing for listeners that were away.

use std::time::Duration;

use async_trait::async_trait;
use chat_core::ports::{BusSignal, BusStream, Hint, HintKind, Notifier};
use chat_core::StoreError;
use futures_util::StreamExt;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::error::db;

/// The channel every node listens on.
pub(crate) const CHANNEL: &str = "chat_hints";
/// NOTIFY payloads must stay below 8000 bytes; leave room for the JSON array's brackets.
const MAX_PAYLOAD: usize = 7900;
/// How many signals a slow subscriber may fall behind before it is told to resync.
const SUBSCRIBER_BACKLOG: usize = 4096;

/// A [`Notifier`] on PostgreSQL LISTEN/NOTIFY.
#[derive(Debug, Clone)]
pub struct PgNotifier {
    pool: PgPool,
    /// Whether this node's store already NOTIFYs message hints inside the appends' transactions,
    /// so publishing them again after the commit would only double the other nodes' reads.
    messages_sent_by_store: bool,
    signals: broadcast::Sender<BusSignal>,
    _listener: std::sync::Arc<AbortOnDrop>,
}

/// Stops the listener task when the last clone of the notifier goes.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl PgNotifier {
    /// Starts listening on `pool`'s database; returns once the first LISTEN is in place, so no
    /// hint published after this returns is missed.
    pub async fn start(pool: PgPool) -> Result<PgNotifier, StoreError> {
        let (signals, _) = broadcast::channel(SUBSCRIBER_BACKLOG);
        let listener = listen(&pool).await.map_err(db)?;
        let task = tokio::spawn(run(pool.clone(), listener, signals.clone()));
        Ok(PgNotifier {
            pool,
            messages_sent_by_store: false,
            signals,
            _listener: std::sync::Arc::new(AbortOnDrop(task)),
        })
    }
}

/// A node's store and bus on one database, wired so that each append NOTIFYs its hint inside
/// its own transaction: PostgreSQL delivers it exactly when the message commits, and never for
/// a message that did not, so no node can crash between storing a message and announcing it.
/// The engine of that node must run as `node` (`ChatEngineBuilder::node`).
pub async fn connect_node(
    url: &str,
    options: crate::PgOptions,
    node: chat_core::ports::NodeId,
) -> Result<(crate::PgStore, PgNotifier), StoreError> {
    let mut store = crate::PgStore::connect(url, options).await?;
    store.hint_appends_as(node);
    let mut notifier = PgNotifier::start(store.pool().clone()).await?;
    notifier.messages_sent_by_store = true;
    Ok((store, notifier))
}

async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Forwards notifications; after any loss of the connection, reconnects and signals `Resync`.
async fn run(pool: PgPool, mut listener: PgListener, signals: broadcast::Sender<BusSignal>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                match serde_json::from_str::<Vec<Hint>>(notification.payload()) {
                    Ok(hints) => {
                        let _ = signals.send(BusSignal::Hints(hints));
                    }
                    Err(e) => tracing::warn!(error = %e, "ignoring a malformed hint payload"),
                }
            }
            // The listener reconnected by itself; whatever was sent meanwhile is lost.
            Ok(None) => {
                tracing::warn!("hint listener reconnected; resyncing");
                let _ = signals.send(BusSignal::Resync);
            }
            // The store is shutting down: nothing to listen for any more.
            Err(_) if pool.is_closed() => return,
            Err(e) => {
                tracing::warn!(error = %e, "hint listener failed; reconnecting");
                loop {
                    tokio::time::sleep(backoff).await;
                    match listen(&pool).await {
                        Ok(fresh) => {
                            listener = fresh;
                            backoff = Duration::from_millis(100);
                            let _ = signals.send(BusSignal::Resync);
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "hint listener cannot reconnect yet");
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                        }
                    }
                }
            }
        }
    }
}

/// Splits hints into JSON arrays that each fit one NOTIFY.
pub(crate) fn payloads(hints: &[Hint]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut size = 2;
    for hint in hints {
        let Ok(json) = serde_json::to_string(hint) else {
            continue;
        };
        if !current.is_empty() && size + json.len() + 1 > MAX_PAYLOAD {
            out.push(format!("[{}]", current.join(",")));
            current.clear();
            size = 2;
        }
        size += json.len() + 1;
        current.push(json);
    }
    if !current.is_empty() {
        out.push(format!("[{}]", current.join(",")));
    }
    out
}

#[async_trait]
impl Notifier for PgNotifier {
    #[tracing::instrument(name = "bus.publish", skip_all, err)]
    async fn publish(&self, hints: &[Hint]) -> Result<(), StoreError> {
        let skip =
            |h: &&Hint| self.messages_sent_by_store && matches!(h.kind, HintKind::Message { .. });
        let hints: Vec<Hint> = hints.iter().filter(|h| !skip(h)).cloned().collect();
        for payload in payloads(&hints) {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(payload)
                .execute(&self.pool)
                .await
                .map_err(db)?;
        }
        Ok(())
    }

    async fn subscribe(&self) -> Result<BusStream, StoreError> {
        let rx = self.signals.subscribe();
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(signal) => Some((signal, rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => Some((BusSignal::Resync, rx)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        Ok(stream.boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_core::domain::{RoomId, Seq};
    use chat_core::ports::{HintKind, NodeId};
    use uuid::Uuid;

    #[test]
    fn payloads_stay_under_the_notify_limit_and_keep_every_hint_in_order() {
        let origin = NodeId(Uuid::new_v4());
        let hints: Vec<Hint> = (1..=500)
            .map(|n| Hint {
                origin,
                room: Some(RoomId(Uuid::new_v4())),
                kind: HintKind::Message { seq: Seq(n) },
            })
            .collect();
        let batches = payloads(&hints);
        assert!(batches.len() > 1);
        let mut back = Vec::new();
        for batch in &batches {
            assert!(batch.len() < 8000, "{}", batch.len());
            back.extend(serde_json::from_str::<Vec<Hint>>(batch).unwrap());
        }
        assert_eq!(back, hints);
    }
}
