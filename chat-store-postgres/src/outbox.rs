//! The outbox: domain events recorded in the transactions of the changes they describe, and
//! the relay's turns. Several nodes share the database, so a turn is a row lock on the
//! channel's row of `outbox_turns`, held by the batch's transaction until it is finished
//! (committed with the marks) or dropped (rolled back: the events come again).

use async_trait::async_trait;
use chat_core::outbox::{Envelope, EventType, PendingEvent};
use chat_core::ports::{BatchOutcome, OutboxBatch, OutboxCounts, OutboxStore};
use chat_core::StoreError;
use sea_query::{Expr, LockType, OnConflict, Order, Query};
use sqlx::{PgConnection, Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{corrupt, db};
use crate::query::{execute, fetch_all, fetch_optional};
use crate::schema::{Outbox, OutboxTurns};
use crate::store::PgStore;

/// The channels the store records domain events for.
#[derive(Debug, Default)]
pub(crate) struct Channels {
    names: Vec<String>,
}

impl Channels {
    pub(crate) fn new(names: Vec<String>) -> Channels {
        Channels { names }
    }

    /// Whether events are recorded at all (so changes can skip reading what only events need).
    pub(crate) fn enabled(&self) -> bool {
        !self.names.is_empty()
    }
}

/// Records the events once per channel, in the caller's transaction; nothing without channels.
pub(crate) async fn record(
    conn: &mut PgConnection,
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
impl OutboxStore for PgStore {
    #[tracing::instrument(name = "db.outbox.batch", skip_all, err)]
    async fn outbox_batch(
        &self,
        channel: &str,
        limit: u32,
    ) -> Result<Option<Box<dyn OutboxBatch>>, StoreError> {
        let turn = Query::insert()
            .into_table(OutboxTurns::Table)
            .columns([OutboxTurns::Channel])
            .values([channel.into()])
            .map_err(StoreError::backend)?
            .on_conflict(
                OnConflict::column(OutboxTurns::Channel)
                    .do_nothing()
                    .to_owned(),
            )
            .to_owned();
        execute(&self.pool, &turn).await.map_err(db)?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let take = Query::select()
            .column(OutboxTurns::Channel)
            .from(OutboxTurns::Table)
            .and_where(Expr::col(OutboxTurns::Channel).eq(channel))
            .lock_with_behavior(LockType::Update, sea_query::LockBehavior::SkipLocked)
            .to_owned();
        let taken: Option<(String,)> = fetch_optional(&mut *tx, &take).await.map_err(db)?;
        if taken.is_none() {
            return Ok(None);
        }
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
        let rows: Vec<PendingRow> = fetch_all(&mut *tx, &q).await.map_err(db)?;
        let mut batch = PgBatch {
            tx,
            positions: Vec::new(),
            events: Vec::new(),
        };
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
        let mut tx = self.pool.begin().await.map_err(db)?;
        record(&mut tx, &self.channels, events).await?;
        tx.commit().await.map_err(db)
    }

    #[tracing::instrument(name = "db.outbox.prune", skip_all, err)]
    async fn prune_outbox(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        let done = Query::select()
            .column(Outbox::Position)
            .from(Outbox::Table)
            .and_where(Expr::col(Outbox::DoneAt).is_not_null())
            .and_where(Expr::col(Outbox::DoneAt).lt(before))
            .limit(u64::from(limit))
            .to_owned();
        let delete = Query::delete()
            .from_table(Outbox::Table)
            .and_where(Expr::col(Outbox::Position).in_subquery(done))
            .to_owned();
        execute(&self.pool, &delete).await.map_err(db)
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
        let pending: Option<(i64,)> = fetch_optional(&self.pool, &count(true)).await.map_err(db)?;
        let dead: Option<(i64,)> = fetch_optional(&self.pool, &count(false))
            .await
            .map_err(db)?;
        let n = |c: Option<(i64,)>| c.map_or(0, |(n,)| u64::try_from(n).unwrap_or(0));
        Ok(OutboxCounts {
            pending: n(pending),
            dead: n(dead),
        })
    }
}

/// A relay's turn on one channel of a [`PgStore`]: the transaction that holds the lock.
#[derive(Debug)]
struct PgBatch {
    tx: Transaction<'static, Postgres>,
    positions: Vec<i64>,
    events: Vec<PendingEvent>,
}

#[async_trait]
impl OutboxBatch for PgBatch {
    fn events(&self) -> &[PendingEvent] {
        &self.events
    }

    async fn finish(
        mut self: Box<Self>,
        outcome: BatchOutcome,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (delivered, failure) = outcome.split(self.positions.len());
        let tx = &mut self.tx;
        if delivered > 0 {
            let sent = Query::update()
                .table(Outbox::Table)
                .value(Outbox::DoneAt, now)
                .and_where(Expr::col(Outbox::Position).is_in(self.positions[..delivered].to_vec()))
                .to_owned();
            execute(&mut **tx, &sent).await.map_err(db)?;
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
                        Expr::case(gives_up.clone(), now)
                            .finally(Expr::val(None::<OffsetDateTime>)),
                    )
                    .value(Outbox::Dead, Expr::case(gives_up, true).finally(false));
            }
            execute(&mut **tx, &failed).await.map_err(db)?;
        }
        self.tx.commit().await.map_err(db)
    }
}
