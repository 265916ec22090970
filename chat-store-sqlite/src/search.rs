//! Full-text search of message text with FTS5.
//!
//! `message_words` holds the words of each live message with text, as
//! [`index_text`] writes them; triggers keep the FTS5 index `message_search` in step with it
//! (see `migrations/0004_message_changes.sql`). Queries match the words of a [`SearchQuery`]
//! exactly, so SQLite finds what the in-memory store finds.

use chat_core::domain::search::index_text;
use chat_core::domain::{Cursor, RoomId, SearchQuery, UserId};
use chat_core::StoreError;
use sea_query::extension::sqlite::SqliteExpr;
use sea_query::{Expr, JoinType, OnConflict, Order, Query, SelectStatement};
use sqlx::SqliteConnection;
use uuid::Uuid;

use crate::error::db;
use crate::messages::select_messages;
use crate::query::{execute, fetch_all, fetch_optional};
use crate::schema::{Derived, Memberships, MessageSearch, MessageWords, Messages};
use crate::store::SqliteStore;

/// How many messages the backfill reads and indexes per statement.
const BACKFILL_BATCH: u64 = 500;

/// Makes the message at `seq` findable by the words of `body`, replacing what it was found by.
pub(crate) async fn index(
    conn: &mut SqliteConnection,
    room: RoomId,
    seq: i64,
    body: &str,
) -> Result<(), StoreError> {
    let upsert = Query::insert()
        .into_table(MessageWords::Table)
        .columns([MessageWords::RoomId, MessageWords::Seq, MessageWords::Words])
        .values([room.0.into(), seq.into(), index_text(body).into()])
        .map_err(StoreError::backend)?
        .on_conflict(
            OnConflict::columns([MessageWords::RoomId, MessageWords::Seq])
                .update_column(MessageWords::Words)
                .to_owned(),
        )
        .to_owned();
    execute(conn, &upsert).await.map_err(db)?;
    Ok(())
}

/// Makes the message at `seq` unfindable.
pub(crate) async fn unindex(
    conn: &mut SqliteConnection,
    room: RoomId,
    seq: i64,
) -> Result<(), StoreError> {
    let delete = Query::delete()
        .from_table(MessageWords::Table)
        .and_where(Expr::col(MessageWords::RoomId).eq(room.0))
        .and_where(Expr::col(MessageWords::Seq).eq(seq))
        .to_owned();
    execute(conn, &delete).await.map_err(db)?;
    Ok(())
}

/// The FTS5 query for every word of `query`: each quoted as a phrase of one token (words are
/// letters and digits only, so nothing in them needs escaping or means anything to FTS5), and
/// side by side, which FTS5 reads as AND.
fn match_expression(query: &SearchQuery) -> String {
    query
        .words()
        .iter()
        .map(|w| format!("\"{w}\""))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Selects the live messages that hold every word of a (non-empty) `query`, in rooms `user` is
/// a member of (only `room` when given), newest first (by `created_at`, then id), after the
/// cursor `after`.
pub(crate) fn select_matches(
    user: UserId,
    query: &SearchQuery,
    room: Option<RoomId>,
    after: Option<Cursor>,
    limit: u32,
) -> SelectStatement {
    let matched = |column| (Derived::Matched, column);
    // The page is picked first and the messages read for it after, so the thread summaries
    // are computed for the page only, not for every message that matches.
    let mut page = Query::select();
    page.columns([
        (MessageWords::Table, MessageWords::RoomId),
        (MessageWords::Table, MessageWords::Seq),
    ])
    .from(MessageSearch::Table)
    .inner_join(
        MessageWords::Table,
        Expr::col((MessageWords::Table, MessageWords::Id))
            .equals((MessageSearch::Table, MessageSearch::Rowid)),
    )
    .join_as(
        JoinType::InnerJoin,
        Messages::Table,
        Derived::Matched,
        Expr::col(matched(Messages::RoomId))
            .equals((MessageWords::Table, MessageWords::RoomId))
            .and(
                Expr::col(matched(Messages::Seq)).equals((MessageWords::Table, MessageWords::Seq)),
            ),
    )
    .inner_join(
        Memberships::Table,
        Expr::col((Memberships::Table, Memberships::RoomId))
            .equals(matched(Messages::RoomId))
            .and(Expr::col((Memberships::Table, Memberships::UserId)).eq(user.0)),
    )
    .and_where(Expr::col(MessageSearch::Table).matches(match_expression(query)))
    // Deletes remove the words too; this keeps a tombstone out should a row be left behind.
    .and_where(Expr::col(matched(Messages::Deleted)).eq(false));
    if let Some(room) = room {
        page.and_where(Expr::col(matched(Messages::RoomId)).eq(room.0));
    }
    if let Some(after) = after {
        // Both keys sort descending, so "after the cursor" is "less than it" as a row value.
        page.and_where(
            Expr::tuple([
                Expr::col(matched(Messages::CreatedAt)).into(),
                Expr::col(matched(Messages::Id)).into(),
            ])
            .lt(Expr::tuple([after.at_micros.into(), after.id.into()])),
        );
    }
    page.order_by(matched(Messages::CreatedAt), Order::Desc)
        .order_by(matched(Messages::Id), Order::Desc)
        .limit(u64::from(limit));

    select_messages()
        .and_where(
            Expr::tuple([
                Expr::col((Messages::Table, Messages::RoomId)).into(),
                Expr::col((Messages::Table, Messages::Seq)).into(),
            ])
            .in_subquery(page),
        )
        .order_by((Messages::Table, Messages::CreatedAt), Order::Desc)
        .order_by((Messages::Table, Messages::Id), Order::Desc)
        .to_owned()
}

/// Indexes the messages a database held before it had a search index (it was created before
/// migration 0004), once, when the store opens: the words are [`index_text`]'s, which only Rust
/// computes, so SQL migrations cannot fill them in.
///
/// Every live message with text has its `message_words` row from then on, so an empty
/// `message_words` beside such a message means exactly a database that was never indexed; on
/// any other open the check reads one row.
pub(crate) async fn backfill(store: &SqliteStore) -> Result<(), StoreError> {
    let mut tx = store.write().await?;
    let any_indexed = Query::select()
        .expr(Expr::val(1))
        .from(MessageWords::Table)
        .limit(1)
        .to_owned();
    let indexed: Option<(i64,)> = fetch_optional(&mut *tx, &any_indexed).await.map_err(db)?;
    if indexed.is_some() {
        tx.rollback().await.map_err(db)?;
        return Ok(());
    }
    // Pages through the messages to index in key order, so memory stays bounded however large
    // the database is; all in one transaction, so the index is all or nothing.
    let mut from: Option<(Uuid, i64)> = None;
    loop {
        let mut page = Query::select();
        page.columns([Messages::RoomId, Messages::Seq, Messages::Body])
            .from(Messages::Table)
            .and_where(Expr::col(Messages::Deleted).eq(false))
            .and_where(Expr::col(Messages::Body).is_not_null())
            .order_by(Messages::RoomId, Order::Asc)
            .order_by(Messages::Seq, Order::Asc)
            .limit(BACKFILL_BATCH);
        if let Some((room, seq)) = from {
            page.and_where(
                Expr::tuple([
                    Expr::col(Messages::RoomId).into(),
                    Expr::col(Messages::Seq).into(),
                ])
                .gt(Expr::tuple([room.into(), seq.into()])),
            );
        }
        let rows: Vec<(Uuid, i64, String)> = fetch_all(&mut *tx, &page).await.map_err(db)?;
        let Some(&(room, seq, _)) = rows.last() else {
            break;
        };
        from = Some((room, seq));
        let mut insert = Query::insert();
        insert.into_table(MessageWords::Table).columns([
            MessageWords::RoomId,
            MessageWords::Seq,
            MessageWords::Words,
        ]);
        for (room, seq, body) in &rows {
            insert
                .values([(*room).into(), (*seq).into(), index_text(body).into()])
                .map_err(StoreError::backend)?;
        }
        execute(&mut *tx, &insert).await.map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use chat_core::ports::{MessageStore, RoomStore};
    use sqlx::migrate::Migrator;
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

    use super::*;
    use crate::test_support::{at, new_room, room, say, scratch, user};
    use crate::SqliteOptions;

    async fn found(store: &SqliteStore, user: UserId, text: &str) -> Vec<String> {
        let mut bodies: Vec<String> = store
            .search_messages(user, &SearchQuery::new(text), None, None, 100)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|m| m.body)
            .collect();
        bodies.sort();
        bodies
    }

    async fn count(store: &SqliteStore, sql: &str) -> i64 {
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&store.reader).await.unwrap();
        n
    }

    #[tokio::test]
    async fn words_match_as_the_engine_splits_them_in_any_alphabet() {
        let (_dir, store) = scratch().await;
        let alice = user(&store, "alice").await;
        let room = room(&store, &[alice], at(0)).await;
        let bodies = [
            "Ärger im BÜRO",
            "naïve café—déjà vu",
            "日本語テキスト",
            "snake_case and e\u{301}clair",
            "İstanbul 2024",
            "ⓐⓑⓒ",
        ];
        for body in bodies {
            say(&store, room, alice, body).await;
        }
        let queries = [
            "ärger",
            "ARGER",
            "büro",
            "café",
            "caf",
            "déjà vu",
            "vu déjà",
            "日本語テキスト",
            "日本語",
            "snake",
            "case",
            "snake_case",
            "eclair",
            "clair",
            "istanbul",
            "İstanbul",
            "2024",
            "202",
            "ⓐⓑⓒ",
            "ⒶⒷⒸ",
            "ⓐ",
        ];
        for text in queries {
            let query = SearchQuery::new(text);
            let mut expected: Vec<String> = bodies
                .iter()
                .filter(|b| query.matches(b))
                .map(|b| b.to_string())
                .collect();
            expected.sort();
            assert_eq!(found(&store, alice, text).await, expected, "{text:?}");
        }
        // Spot checks that the engine's words are what it says they are.
        assert_eq!(found(&store, alice, "日本語テキスト").await.len(), 1);
        assert_eq!(found(&store, alice, "ⒶⒷⒸ").await, ["ⓐⓑⓒ"]);
        assert!(found(&store, alice, "caf").await.is_empty());
    }

    #[tokio::test]
    async fn a_deleted_room_takes_its_words_out_of_the_index() {
        let (_dir, store) = scratch().await;
        let alice = user(&store, "alice").await;
        let spec = new_room(alice, at(0));
        store.create_room(&spec, &[]).await.unwrap();
        say(&store, spec.id, alice, "hello there").await;
        assert!(store.delete_room_if_empty(spec.id).await.unwrap());

        assert_eq!(count(&store, "SELECT COUNT(*) FROM message_words").await, 0);
        let indexed = "SELECT COUNT(*) FROM message_search WHERE message_search MATCH '\"hello\"'";
        assert_eq!(count(&store, indexed).await, 0);
        sqlx::query("INSERT INTO message_search (message_search) VALUES ('integrity-check')")
            .execute(&store.writer)
            .await
            .expect("the index matches its content");
    }

    /// Messages per room in [`database_before_search`]: two rooms of them take the backfill
    /// more than two batches, across the rooms' boundary.
    const OLD_MESSAGES: i64 = 700;

    /// A database as the store left it before migration 0004: two rooms of alice's, each with
    /// [`OLD_MESSAGES`] live messages ("Old news a 1", ...) and then a deleted one.
    async fn database_before_search(path: &Path) -> (UserId, [RoomId; 2]) {
        let dir = tempfile::tempdir().unwrap();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for name in ["0001_init.sql", "0002_presence.sql", "0003_receipts.sql"] {
            std::fs::copy(source.join(name), dir.path().join(name)).unwrap();
        }
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(connect).await.unwrap();
        Migrator::new(dir.path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        let alice = Uuid::new_v4();
        sqlx::raw_sql(&format!(
            "INSERT INTO users (id, username, username_key, display_name, password_hash, created_at)
                 VALUES (x'{}', 'alice', 'alice', 'alice', 'hash', 0)",
            alice.simple()
        ))
        .execute(&pool)
        .await
        .unwrap();
        let rooms = [Uuid::new_v4(), Uuid::new_v4()];
        for (room, name) in rooms.iter().zip(["a", "b"]) {
            sqlx::raw_sql(&format!(
                "INSERT INTO rooms (id, kind, name, visibility, created_by, created_at,
                                    member_count, last_seq, rev)
                     VALUES (x'{room}', 'group', '{name}', 'public', x'{alice}', 0, 1, {last}, {last});
                 INSERT INTO memberships (room_id, user_id, role, joined_at)
                     VALUES (x'{room}', x'{alice}', 'owner', 0);
                 WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {old})
                 INSERT INTO messages (room_id, seq, id, sender_id, kind, body, created_at, rev)
                     SELECT x'{room}', i, randomblob(16), x'{alice}', 'text',
                            'Old news {name} ' || i, i, i
                     FROM n;
                 INSERT INTO messages (room_id, seq, id, sender_id, kind, body, created_at, rev,
                                       deleted)
                     VALUES (x'{room}', {last}, randomblob(16), x'{alice}', 'text', NULL, 0,
                             {last}, 1);",
                room = room.simple(),
                alice = alice.simple(),
                old = OLD_MESSAGES,
                last = OLD_MESSAGES + 1,
            ))
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
        (UserId(alice), rooms.map(RoomId))
    }

    #[tokio::test]
    async fn messages_stored_before_the_index_are_found_after_opening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        let (alice, [a, _]) = database_before_search(&path).await;

        let store = SqliteStore::open(&path, SqliteOptions::default())
            .await
            .unwrap();
        let words = "SELECT COUNT(*) FROM message_words";
        assert_eq!(count(&store, words).await, 2 * OLD_MESSAGES);
        for (text, body) in [
            ("a 1", "Old news a 1"),
            ("a 700", "Old news a 700"),
            ("b 1", "Old news b 1"),
            ("b 700", "Old news b 700"),
        ] {
            assert_eq!(found(&store, alice, text).await, [body]);
        }
        say(&store, a, alice, "fresh news").await;
        store.close().await;

        // Reopening indexes nothing twice.
        let store = SqliteStore::open(&path, SqliteOptions::default())
            .await
            .unwrap();
        assert_eq!(count(&store, words).await, 2 * OLD_MESSAGES + 1);
        assert_eq!(found(&store, alice, "fresh").await, ["fresh news"]);
    }
}
