//! Full-text search of message text.
//!
//! Both sides of a match are the engine's words ([`chat_core::domain::search`]), handed to
//! PostgreSQL as lexemes that no text search parser or dictionary touches: `to_tsvector` would
//! split and drop characters by the database's locale (with 'simple', `x²` is indexed as `x`), so
//! a store could find what the engine's words do not hold, and miss what they do.

use chat_core::domain::search::index_text;
use chat_core::domain::{from_micros, Cursor, Message, RoomId, SearchQuery, UserId};
use chat_core::StoreError;
use sea_query::extension::postgres::PgExpr;
use sea_query::{Expr, Func, Order, Query, SelectStatement, SimpleExpr};
use sqlx::PgPool;

use crate::messages::{read_messages, select_messages};
use crate::schema::{Derived, Memberships, Messages};

/// What `messages.search` holds for a body: its words as the lexemes of a tsvector; NULL for a
/// message without text.
pub(crate) fn indexed(body: Option<&str>) -> SimpleExpr {
    // `index_text` joins the words by single spaces and a word holds none, so splitting on
    // spaces gives back exactly the words (and no empty lexeme, which array_to_tsvector rejects).
    let words = Func::cust(Derived::StringToArray).args([body.map(index_text).into(), " ".into()]);
    Func::cust(Derived::ArrayToTsvector).arg(words).into()
}

/// A word as a quoted tsquery lexeme. The query's words are letters and digits only; doubling
/// quotes and backslashes keeps any text a literal lexeme all the same.
fn lexeme(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    out.push('\'');
    for c in word.chars() {
        if matches!(c, '\'' | '\\') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// The tsquery that holds every word of the query: the lexemes joined by `&`, bound as text and
/// cast by the server.
fn every_word(query: &SearchQuery) -> SimpleExpr {
    let text: Vec<String> = query.words().iter().map(|w| lexeme(w)).collect();
    Func::cast_as(text.join(" & "), Derived::Tsquery).into()
}

/// The live messages holding every word of `query` in the rooms `user` is a member of (only
/// `room` when given), newest first, after the cursor `after`.
fn matching(
    user: UserId,
    query: &SearchQuery,
    room: Option<RoomId>,
    after: Option<Cursor>,
    limit: u32,
) -> SelectStatement {
    let created_at = (Messages::Table, Messages::CreatedAt);
    let id = (Messages::Table, Messages::Id);
    let rooms_of_user = Query::select()
        .column(Memberships::RoomId)
        .from(Memberships::Table)
        .and_where(Expr::col(Memberships::UserId).eq(user.0))
        .to_owned();
    let mut q = select_messages();
    q.and_where(Expr::col((Messages::Table, Messages::Search)).matches(every_word(query)))
        .and_where(Expr::col((Messages::Table, Messages::Deleted)).eq(false))
        .and_where(Expr::col((Messages::Table, Messages::RoomId)).in_subquery(rooms_of_user))
        .order_by(created_at, Order::Desc)
        .order_by(id, Order::Desc)
        .limit(u64::from(limit));
    if let Some(room) = room {
        q.and_where(Expr::col((Messages::Table, Messages::RoomId)).eq(room.0));
    }
    if let Some(after) = after {
        // Both keys sort descending, so "after the cursor" is "less than it" as a row value;
        // uuids compare byte by byte, as `Uuid` does.
        q.and_where(
            Expr::tuple([Expr::col(created_at).into(), Expr::col(id).into()]).lt(Expr::tuple([
                from_micros(after.at_micros).into(),
                after.id.into(),
            ])),
        );
    }
    q
}

/// Up to `limit` messages found by `query` (see [`matching`]); none for a query without words.
pub(crate) async fn search(
    pool: &PgPool,
    user: UserId,
    query: &SearchQuery,
    room: Option<RoomId>,
    after: Option<Cursor>,
    limit: u32,
) -> Result<Vec<Message>, StoreError> {
    if query.is_empty() {
        return Ok(Vec::new());
    }
    read_messages(pool, &matching(user, query, room, after, limit)).await
}

#[cfg(test)]
mod tests {
    use chat_core::domain::MessageBody;
    use chat_core::ports::MessageStore;

    use super::*;
    use crate::test_support::{at, room, scratch, text, user};

    #[tokio::test]
    async fn any_text_is_one_literal_lexeme() {
        let Some(store) = scratch().await else { return };
        for word in [
            "plain",
            "it's",
            r"back\slash",
            "a & b | !c",
            "x:*",
            "(y)",
            "''",
            r"\'",
        ] {
            let (found,): (bool,) = sqlx::query_as(
                "SELECT array_to_tsvector(ARRAY[$1]) @@ $2::tsquery \
                 AND NOT array_to_tsvector(ARRAY['other']) @@ $2::tsquery",
            )
            .bind(word)
            .bind(lexeme(word))
            .fetch_one(store.pool())
            .await
            .unwrap();
            assert!(found, "{word}");
        }
    }

    #[tokio::test]
    async fn words_match_as_the_engine_cuts_them_not_as_the_parser_would() {
        let Some(store) = scratch().await else { return };
        let alice = user(&store, "alice").await;
        let room = room(&store, &[alice], at(0)).await;
        for body in ["x² squared", "plain x"] {
            let mut message = text(room, alice, Vec::new());
            message.body = Some(MessageBody::parse(body, 100).unwrap());
            store.append_message(&message).await.unwrap();
        }
        let found = |q: &'static str| {
            let store = store.clone();
            async move {
                let query = SearchQuery::new(q);
                let found = store.search_messages(alice, &query, None, None, 10);
                let bodies: Vec<String> = found
                    .await
                    .unwrap()
                    .into_iter()
                    .filter_map(|m| m.body)
                    .collect();
                bodies
            }
        };
        assert_eq!(found("X²").await, ["x² squared"]);
        assert_eq!(found("x").await, ["plain x"]);
    }
}
