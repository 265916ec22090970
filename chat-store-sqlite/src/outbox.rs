//! The outbox: domain events recorded in the transactions of the changes they describe, and
//! the relay's turns. One process owns a SQLite file, so a channel's turn is held in memory.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chat_core::domain::micros;
use chat_core::outbox::{Envelope, EventType, PendingEvent};
use chat_core::ports::{BatchOutcome, OutboxBatch, OutboxCounts, OutboxStore};
use chat_core::StoreError;
use sea_query::{Expr, Order, Query};
use sqlx::{SqliteConnection, SqlitePool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{corrupt, db};
use crate::query::{execute, fetch_all, fetch_optional};
use crate::schema::Outbox;
use crate::store::SqliteStore;

/// What the store records domain events for: its channels, and the turns relays hold.
#[derive(Debug, Default)]
pub(crate) struct Channels {
    names: Vec<String>,
    busy: Mutex<HashSet<String>>,
}

impl Channels {
    pub(crate) fn new(names: Vec<String>) -> Channels {
        Channels {
            names,
            busy: Mutex::default(),
        }
    }

    /// Whether events are recorded at all (so changes can skip reading what only events need).
    pub(crate) fn enabled(&self) -> bool {
        !self.names.is_empty()
    }

    fn busy(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.busy.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Records the events once per channel, in the caller's transaction; nothing without channels.
pub(crate) async fn record(
    conn: &mut SqliteConnection,
    channels: &Channels,
    events: &[Envelope],
) -> Result<(), StoreError> {
    if channels.names.is_empty() || events.is_empty() {
        return Ok(());
    }
    let mut insert = Query::insert();
    insert.into_table(Outbox::Table).columns([
        Outbox::Channel,
        Outbox::EventId,
        Outbox::Kind,
        Outbox::Body,
    ]);
    for event in events {
        let body = event.to_json();
        for channel in &channels.names {
            insert
                .values([
                    channel.as_str().into(),
                    event.id.into(),
                    event.kind.as_str().into(),
                    body.as_str().into(),
                ])
                .map_err(StoreError::backend)?;
        }
    }
    execute(conn, &insert).await.map_err(db)?;
    Ok(())
}

#[derive(Debug, sqlx::FromRow)]
struct PendingRow {
    position: i64,
    event_id: Uuid,
    kind: String,
    body: String,
    attempts: i64,
}

#[async_trait]
impl OutboxStore for SqliteStore {
    #[tracing::instrument(name = "db.outbox.batch", skip_all, err)]
    async fn outbox_batch(
        &self,
        channel: &str,
        limit: u32,
    ) -> Result<Option<Box<dyn OutboxBatch>>, StoreError> {
        if !self.channels.busy().insert(channel.to_owned()) {
            return Ok(None);
        }
        // From here the turn is the batch's: dropping it, also on an error below, hands it back.
        let mut batch = SqliteBatch {
            writer: self.writer.clone(),
            channels: self.channels.clone(),
            channel: channel.to_owned(),
            positions: Vec::new(),
            events: Vec::new(),
        };
        let q = Query::select()
            .columns([
                Outbox::Position,
                Outbox::EventId,
                Outbox::Kind,
                Outbox::Body,
                Outbox::Attempts,
            ])
            .from(Outbox::Table)
            .and_where(Expr::col(Outbox::Channel).eq(channel))
            .and_where(Expr::col(Outbox::DoneAt).is_null())
            .order_by(Outbox::Position, Order::Asc)
            .limit(u64::from(limit))
            .to_owned();
        let rows: Vec<PendingRow> = fetch_all(&self.reader, &q).await.map_err(db)?;
        for row in rows {
            let kind =
                EventType::parse(&row.kind).ok_or_else(|| corrupt("outbox.kind", &row.kind))?;
            batch.positions.push(row.position);
            batch.events.push(PendingEvent {
                id: row.event_id,
                kind,
                body: row.body,
                attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
            });
        }
        Ok(Some(Box::new(batch)))
    }

    #[tracing::instrument(name = "db.outbox.record", skip_all, err)]
    async fn record_events(&self, events: &[Envelope]) -> Result<(), StoreError> {
        if !self.channels.enabled() || events.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        record(&mut tx, &self.channels, events).await?;
        tx.commit().await.map_err(db)
    }

    #[tracing::instrument(name = "db.outbox.prune", skip_all, err)]
    async fn prune_outbox(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        let done = Query::select()
            .column(Outbox::Position)
            .from(Outbox::Table)
            .and_where(Expr::col(Outbox::DoneAt).is_not_null())
            .and_where(Expr::col(Outbox::DoneAt).lt(micros(before)))
            .limit(u64::from(limit))
            .to_owned();
        let delete = Query::delete()
            .from_table(Outbox::Table)
            .and_where(Expr::col(Outbox::Position).in_subquery(done))
            .to_owned();
        execute(&self.writer, &delete).await.map_err(db)
    }

    #[tracing::instrument(name = "db.outbox.counts", skip_all, err)]
    async fn outbox_counts(&self, channel: &str) -> Result<OutboxCounts, StoreError> {
        let count = |pending: bool| {
            let mut q = Query::select();
            q.expr(Expr::col(Outbox::Position).count())
                .from(Outbox::Table)
                .and_where(Expr::col(Outbox::Channel).eq(channel));
            if pending {
                q.and_where(Expr::col(Outbox::DoneAt).is_null());
            } else {
                q.and_where(Expr::col(Outbox::DoneAt).is_not_null())
                    .and_where(Expr::col(Outbox::Dead).eq(true));
            }
            q
        };
        let pending: Option<(i64,)> = fetch_optional(&self.reader, &count(true))
            .await
            .map_err(db)?;
        let dead: Option<(i64,)> = fetch_optional(&self.reader, &count(false))
            .await
            .map_err(db)?;
        let n = |c: Option<(i64,)>| c.map_or(0, |(n,)| u64::try_from(n).unwrap_or(0));
        Ok(OutboxCounts {
            pending: n(pending),
            dead: n(dead),
        })
    }
}

/// A relay's turn on one channel of a [`SqliteStore`].
#[derive(Debug)]
struct SqliteBatch {
    writer: SqlitePool,
    channels: Arc<Channels>,
    channel: String,
    positions: Vec<i64>,
    events: Vec<PendingEvent>,
}

impl Drop for SqliteBatch {
    fn drop(&mut self) {
        self.channels.busy().remove(&self.channel);
    }
}

#[async_trait]
impl OutboxBatch for SqliteBatch {
    fn events(&self) -> &[PendingEvent] {
        &self.events
    }

    async fn finish(
        self: Box<Self>,
        outcome: BatchOutcome,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (delivered, failure) = outcome.split(self.positions.len());
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db)?;
        if delivered > 0 {
            let sent = Query::update()
                .table(Outbox::Table)
                .value(Outbox::DoneAt, micros(now))
                .and_where(Expr::col(Outbox::Position).is_in(self.positions[..delivered].to_vec()))
                .to_owned();
            execute(&mut *tx, &sent).await.map_err(db)?;
        }
        if let (Some(give_up_after), Some(&position)) = (failure, self.positions.get(delivered)) {
            let attempts = Expr::col(Outbox::Attempts).add(1);
            let mut failed = Query::update();
            failed
                .table(Outbox::Table)
                .value(Outbox::Attempts, attempts.clone())
                .and_where(Expr::col(Outbox::Position).eq(position));
            if let Some(max) = give_up_after {
                let gives_up = Expr::expr(attempts).gte(i64::from(max));
                failed
                    .value(
                        Outbox::DoneAt,
                        Expr::case(gives_up.clone(), micros(now)).finally(Expr::val(None::<i64>)),
                    )
                    .value(Outbox::Dead, Expr::case(gives_up, true).finally(false));
            }
            execute(&mut *tx, &failed).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }
}
