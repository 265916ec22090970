//! The LISTEN/NOTIFY bus against a real PostgreSQL: hints reach every listener, in order, and
//! a listener whose backend is killed comes back and says it may have missed some.

use std::time::Duration;

use chat_core::domain::{RoomId, Seq, UserId};
use chat_core::ports::{BusSignal, BusStream, Hint, HintKind, NodeId, Notifier};
use chat_store_postgres::{PgNotifier, PgOptions, PgStore};
use futures_util::StreamExt;
use uuid::Uuid;

async fn database() -> Option<PgStore> {
    let Ok(url) = std::env::var("CHAT_TEST_POSTGRES_URL") else {
        eprintln!("skipped: CHAT_TEST_POSTGRES_URL is not set");
        return None;
    };
    Some(
        PgStore::open_temporary(&url, PgOptions::default())
            .await
            .expect("temporary database"),
    )
}

async fn next(stream: &mut BusStream) -> BusSignal {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a signal within 10 s")
        .expect("the bus is open")
}

fn hints(n: std::ops::RangeInclusive<i64>) -> Vec<Hint> {
    let origin = NodeId(Uuid::new_v4());
    let room = Some(RoomId(Uuid::new_v4()));
    n.map(|seq| Hint {
        origin,
        room,
        kind: HintKind::Message { seq: Seq(seq) },
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hints_reach_every_listener_in_order() {
    let Some(store) = database().await else {
        return;
    };
    let a = PgNotifier::start(store.pool().clone()).await.unwrap();
    let b = PgNotifier::start(store.pool().clone()).await.unwrap();
    let mut on_a = a.subscribe().await.unwrap();
    let mut on_b = b.subscribe().await.unwrap();
    // More than fit one NOTIFY: they arrive as several batches, in order.
    let sent = hints(1..=200);
    a.publish(&sent).await.unwrap();
    let presence = Hint {
        origin: NodeId(Uuid::new_v4()),
        room: None,
        kind: HintKind::Presence {
            user: UserId(Uuid::new_v4()),
        },
    };
    b.publish(std::slice::from_ref(&presence)).await.unwrap();
    for stream in [&mut on_a, &mut on_b] {
        let mut got = Vec::new();
        while got.len() < sent.len() + 1 {
            match next(stream).await {
                BusSignal::Hints(h) => got.extend(h),
                BusSignal::Resync => panic!("nothing was lost"),
            }
        }
        assert_eq!(got[..sent.len()], sent[..]);
        assert_eq!(got[sent.len()], presence);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_whose_backend_is_killed_resyncs_and_listens_again() {
    let Some(store) = database().await else {
        return;
    };
    let notifier = PgNotifier::start(store.pool().clone()).await.unwrap();
    let mut stream = notifier.subscribe().await.unwrap();
    let killed: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(killed, vec![(true,)], "one listener backend");
    assert_eq!(next(&mut stream).await, BusSignal::Resync);
    let sent = hints(1..=3);
    notifier.publish(&sent).await.unwrap();
    assert_eq!(next(&mut stream).await, BusSignal::Hints(sent));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_append_notifies_at_commit_and_is_not_repeated() {
    use chat_core::domain::{
        DisplayName, MessageBody, MessageId, MessageKind, NewMessage, NewRoom, Role, RoomKind,
        User, Username, Visibility,
    };
    use chat_core::ports::{MessageStore, RoomStore, UserStore};

    let Ok(admin) = std::env::var("CHAT_TEST_POSTGRES_URL") else {
        eprintln!("skipped: CHAT_TEST_POSTGRES_URL is not set");
        return;
    };
    let db = PgStore::open_temporary(&admin, PgOptions::default())
        .await
        .unwrap();
    let (name,): (String,) = sqlx::query_as("SELECT current_database()")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let server = admin.split('?').next().unwrap().rsplit_once('/').unwrap().0;
    let node = NodeId(Uuid::new_v4());
    let (store, notifier) =
        chat_store_postgres::connect_node(&format!("{server}/{name}"), PgOptions::default(), node)
            .await
            .unwrap();
    let listener = PgNotifier::start(db.pool().clone()).await.unwrap();
    let mut stream = listener.subscribe().await.unwrap();

    let now = time::OffsetDateTime::now_utc();
    let user = User {
        id: UserId(Uuid::new_v4()),
        username: Username::parse("alice").unwrap(),
        display_name: DisplayName::parse("alice").unwrap(),
        email: None,
        created_at: now,
    };
    store.create_user(&user, "hash").await.unwrap();
    let room = NewRoom {
        id: RoomId(Uuid::new_v4()),
        kind: RoomKind::Group,
        name: "r".into(),
        topic: None,
        visibility: Visibility::Private,
        created_by: user.id,
        created_at: now,
    };
    store
        .create_room(&room, &[(user.id, Role::Owner)])
        .await
        .unwrap();
    let message = NewMessage {
        id: MessageId(Uuid::new_v4()),
        room_id: room.id,
        sender_id: user.id,
        kind: MessageKind::Text,
        body: Some(MessageBody::parse("hi", 100).unwrap()),
        attachment: None,
        client_id: None,
        reply_to: None,
        thread_id: None,
        mentions: Vec::new(),
        created_at: now,
    };
    store.append_message(&message).await.unwrap();
    let expected = Hint {
        origin: node,
        room: Some(room.id),
        kind: HintKind::Message { seq: Seq(1) },
    };
    assert_eq!(
        next(&mut stream).await,
        BusSignal::Hints(vec![expected.clone()])
    );
    // The engine publishes the same hint after the commit; the node's notifier leaves it out,
    // and passes on everything else.
    let typing = Hint {
        origin: node,
        room: Some(room.id),
        kind: HintKind::Typing {
            user: user.id,
            typing: true,
        },
    };
    notifier.publish(&[expected, typing.clone()]).await.unwrap();
    assert_eq!(next(&mut stream).await, BusSignal::Hints(vec![typing]));
}
