//! Engine tests of changes to posted messages: who may edit, delete and react, the events each
//! change sends (on one node and across nodes), `me` on reactions, threads and search.

#[macro_use]
mod support;

use chat_core::engine::{EditMessage, SearchMessages, ThreadQuery};
use support::*;

/// The next frame that is not a `member.joined`: a remote node may still be announcing the
/// room's creation when a test starts changing its messages.
async fn next_change(session: &mut Session) -> Value {
    loop {
        let frame = next(session).await;
        if kind(&frame) != "member.joined" {
            return frame;
        }
    }
}

fn edit(body: &str) -> EditMessage {
    EditMessage { body: body.into() }
}

fn search(q: &str, room: Option<RoomId>) -> SearchMessages {
    SearchMessages {
        q: q.into(),
        room_id: room,
        ..Default::default()
    }
}

/// alice (owner), bob (admin), carol (member) in a private room; dave outside it.
async fn cast(engine: &ChatEngine, store: &MemoryStore) -> (RoomId, [UserId; 4]) {
    let alice = seed_user(store, "alice").await;
    let bob = seed_user(store, "bob").await;
    let carol = seed_user(store, "carol").await;
    let dave = seed_user(store, "dave").await;
    let room = private_room(engine, alice, &[carol]).await;
    engine
        .add_member(alice, room, add(bob, Some("admin")))
        .await
        .expect("bob joins as admin");
    (room, [alice, bob, carol, dave])
}

#[tokio::test]
async fn only_the_author_edits_and_the_room_hears_message_updated() {
    let (engine, store) = engine().await;
    let (room, [alice, bob, carol, dave]) = cast(&engine, &store).await;
    let id = say(&engine, carol, room, "helo").await;
    let mut live = engine.connect(alice).await.expect("connected");

    assert_err!(
        engine.edit_message(alice, room, id, edit("x")).await,
        ChatError::Forbidden(_)
    );
    assert_err!(
        engine.edit_message(bob, room, id, edit("x")).await,
        ChatError::Forbidden(_)
    );
    assert_err!(
        engine.edit_message(dave, room, id, edit("x")).await,
        ChatError::NotFound
    );
    let unknown = MessageId(Uuid::new_v4());
    assert_err!(
        engine.edit_message(carol, room, unknown, edit("x")).await,
        ChatError::NotFound
    );
    assert_eq!(
        invalid_fields(engine.edit_message(carol, room, id, edit("  ")).await),
        ["body"]
    );

    let edited = engine
        .edit_message(carol, room, id, edit(" hello @alice "))
        .await
        .expect("the author edits");
    assert_eq!(edited.body.as_deref(), Some("hello @alice"));
    assert_eq!(edited.mentions, [alice]);
    assert!(edited.edited_at.is_some());
    assert_eq!(
        (edited.seq, edited.rev),
        (Seq(1), chat_core::domain::Rev(2))
    );

    let frame = next(&mut live).await;
    assert_eq!(kind(&frame), "message.updated", "{frame}");
    assert_eq!(frame["message"]["body"], "hello @alice");
    assert_eq!(frame["message"]["rev"], 2);
    assert_eq!(engine.message(alice, room, id).await.expect("read"), edited);
}

#[tokio::test]
async fn authors_and_admins_delete_leaving_a_tombstone() {
    let (engine, store) = engine().await;
    let (room, [alice, bob, carol, dave]) = cast(&engine, &store).await;
    let by_alice = say(&engine, alice, room, "owner's").await;
    let by_carol = say(&engine, carol, room, "carol's").await;
    let by_carol_too = say(&engine, carol, room, "carol's again").await;
    let mut live = engine.connect(carol).await.expect("connected");

    assert_err!(
        engine.delete_message(carol, room, by_alice).await,
        ChatError::Forbidden(_)
    );
    assert_err!(
        engine.delete_message(dave, room, by_carol).await,
        ChatError::NotFound
    );
    engine
        .delete_message(bob, room, by_carol)
        .await
        .expect("an admin deletes a member's message");
    let frame = next(&mut live).await;
    assert_eq!(kind(&frame), "message.deleted", "{frame}");
    assert_eq!(frame["message_id"], by_carol.to_string());
    assert_eq!(
        (frame["seq"].as_i64(), frame["rev"].as_i64()),
        (Some(2), Some(4))
    );
    engine
        .delete_message(bob, room, by_alice)
        .await
        .expect("an admin deletes the owner's message too");
    next(&mut live).await;
    engine
        .delete_message(carol, room, by_carol_too)
        .await
        .expect("the author deletes");
    next(&mut live).await;

    engine
        .delete_message(carol, room, by_carol_too)
        .await
        .expect("deleting again is fine");
    assert_quiet(&mut live).await;
    let tombstone = engine.message(carol, room, by_carol).await.expect("read");
    assert!(tombstone.deleted && tombstone.body.is_none());
    assert_err!(
        engine
            .edit_message(carol, room, by_carol_too, edit("back"))
            .await,
        ChatError::Conflict(_)
    );
    let page = engine
        .history(carol, room, history(None, None, None))
        .await
        .expect("history");
    assert_eq!(page.messages.len(), 3, "tombstones keep their place");
    assert!(page.messages.iter().all(|m| m.deleted));
}

#[tokio::test]
async fn reactions_toggle_with_events_and_each_reader_sees_their_own() {
    let (engine, store) = engine_with(Limits {
        max_reaction_kinds: 2,
        ..limits()
    })
    .await;
    let (room, [alice, bob, carol, dave]) = cast(&engine, &store).await;
    let id = say(&engine, alice, room, "react").await;
    let mut live = engine.connect(alice).await.expect("connected");

    engine
        .react(bob, room, id, "👍", true)
        .await
        .expect("reacted");
    let frame = next(&mut live).await;
    assert_eq!(kind(&frame), "reaction.updated", "{frame}");
    assert_eq!(frame["emoji"], "👍");
    assert_eq!(frame["added"], true);
    assert_eq!(frame["user_id"], bob.to_string());
    assert_eq!(frame["rev"], 2);
    assert_eq!(
        frame["reactions"],
        serde_json::json!([{"emoji": "👍", "count": 1}]),
        "events carry no `me`"
    );
    engine
        .react(bob, room, id, "👍", true)
        .await
        .expect("again");
    assert_quiet(&mut live).await;
    engine
        .react(carol, room, id, "👍", true)
        .await
        .expect("reacted");
    engine
        .react(carol, room, id, ":tada:", true)
        .await
        .expect("reacted");
    assert_eq!(
        invalid_fields(engine.react(carol, room, id, ":third:", true).await),
        ["emoji"],
        "at most two kinds here"
    );
    assert_eq!(
        invalid_fields(engine.react(carol, room, id, "not an emoji", true).await),
        ["emoji"]
    );
    assert_err!(
        engine.react(dave, room, id, "👍", true).await,
        ChatError::NotFound
    );

    let seen_by = |user| {
        let engine = engine.clone();
        async move {
            let m = engine.message(user, room, id).await.expect("read");
            m.reactions
                .iter()
                .map(|r| (r.emoji.as_str().to_owned(), r.count, r.me))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        seen_by(carol).await,
        [
            ("👍".into(), 2, Some(true)),
            (":tada:".into(), 1, Some(true))
        ]
    );
    assert_eq!(
        seen_by(alice).await,
        [
            ("👍".into(), 2, Some(false)),
            (":tada:".into(), 1, Some(false))
        ]
    );
    let page = engine
        .history(bob, room, history(None, None, None))
        .await
        .expect("history");
    assert_eq!(page.messages[0].reactions[0].me, Some(true));

    engine
        .react(bob, room, id, "👍", false)
        .await
        .expect("taken back");
    let frames: Vec<Value> = [
        next(&mut live).await,
        next(&mut live).await,
        next(&mut live).await,
    ]
    .into_iter()
    .collect();
    assert!(frames.iter().all(|f| kind(f) == "reaction.updated"));
    assert_eq!(frames[2]["added"], false);
    assert_eq!(frames[2]["reactions"][0]["count"], 1);

    engine
        .delete_message(alice, room, id)
        .await
        .expect("deleted");
    assert_err!(
        engine.react(bob, room, id, "👍", true).await,
        ChatError::Conflict(_)
    );
}

#[tokio::test]
async fn threads_list_their_replies_to_anyone_who_sees_the_room() {
    let (engine, store) = engine().await;
    let (room, [alice, _, carol, dave]) = cast(&engine, &store).await;
    let root = say(&engine, alice, room, "root").await;
    for i in 0..3 {
        let reply = SendMessage {
            body: Some(format!("reply {i}")),
            thread_id: Some(root.to_string()),
            ..Default::default()
        };
        engine.send(carol, room, reply).await.expect("replied");
        say(&engine, alice, room, "not in the thread").await;
    }
    let query = ThreadQuery {
        after: Some(2),
        limit: Some(page(1)),
    };
    let replies = engine
        .thread(alice, room, root, query)
        .await
        .expect("thread");
    assert_eq!(replies.messages.len(), 1);
    assert_eq!(replies.messages[0].body.as_deref(), Some("reply 1"));
    assert!(replies.has_more);
    let root_message = engine.message(alice, room, root).await.expect("root");
    assert_eq!(root_message.thread.map(|t| t.reply_count), Some(3));
    assert_err!(
        engine
            .thread(dave, room, root, ThreadQuery::default())
            .await,
        ChatError::NotFound
    );
    let unknown = MessageId(Uuid::new_v4());
    assert_err!(
        engine
            .thread(alice, room, unknown, ThreadQuery::default())
            .await,
        ChatError::NotFound
    );
}

#[tokio::test]
async fn search_sees_only_the_callers_rooms_and_pages() {
    let (engine, store) = engine().await;
    let (room, [alice, _, carol, dave]) = cast(&engine, &store).await;
    let open = public_room(&engine, dave, &[]).await;
    let secret = private_room(&engine, dave, &[]).await;
    say(&engine, dave, open, "the deploy is done").await;
    say(&engine, dave, secret, "the deploy secret").await;
    for i in 0..3 {
        say(&engine, carol, room, &format!("Deploy #{i} is DONE")).await;
    }
    let gone = say(&engine, carol, room, "deploy done, deleted").await;
    engine
        .delete_message(carol, room, gone)
        .await
        .expect("deleted");

    let mut input = search("deploy done", None);
    input.limit = Some(page(2));
    let first = engine.search(alice, input.clone()).await.expect("search");
    assert_eq!(first.messages.len(), 2);
    let cursor = first.next_cursor.clone().expect("a second page");
    input.cursor = Some(cursor);
    let second = engine.search(alice, input).await.expect("page two");
    assert_eq!(second.messages.len(), 1);
    assert_eq!(second.next_cursor, None);
    let mut bodies: Vec<_> = first
        .messages
        .iter()
        .chain(&second.messages)
        .filter_map(|m| m.body.clone())
        .collect();
    bodies.sort();
    assert_eq!(
        bodies,
        [
            "Deploy #0 is DONE",
            "Deploy #1 is DONE",
            "Deploy #2 is DONE"
        ]
    );

    let in_open = engine.search(alice, search("deploy", Some(open))).await;
    assert!(in_open
        .expect("a public room is visible")
        .messages
        .is_empty());
    assert_err!(
        engine.search(alice, search("deploy", Some(secret))).await,
        ChatError::NotFound
    );
    assert_eq!(
        engine
            .search(dave, search("deploy", None))
            .await
            .expect("search")
            .messages
            .len(),
        2
    );
    let nothing = engine
        .search(alice, search(" *** ", None))
        .await
        .expect("search");
    assert!(nothing.messages.is_empty() && nothing.next_cursor.is_none());
    let bad = SearchMessages {
        cursor: Some("nope".into()),
        ..search("deploy", None)
    };
    assert_err!(engine.search(alice, bad).await, ChatError::BadRequest(_));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_deletes_and_reactions_reach_sessions_on_another_node() {
    let store = Arc::new(MemoryStore::new());
    let bus = InProcessNotifier::default();
    let node_a = node(&store, &bus, limits()).await;
    let node_b = node(&store, &bus, limits()).await;
    let alice = seed_user(&store, "alice").await;
    let bob = seed_user(&store, "bob").await;
    let room = private_room(&node_a, alice, &[bob]).await;
    let id = say(&node_a, alice, room, "first").await;
    let mut remote = node_b.connect(bob).await.expect("connected on B");

    node_a
        .edit_message(alice, room, id, edit("first, edited"))
        .await
        .expect("edited");
    let frame = next_change(&mut remote).await;
    assert_eq!(kind(&frame), "message.updated", "{frame}");
    assert_eq!(frame["message"]["body"], "first, edited");

    node_a
        .react(alice, room, id, "🎉", true)
        .await
        .expect("reacted");
    let frame = next_change(&mut remote).await;
    assert_eq!(kind(&frame), "reaction.updated", "{frame}");
    assert_eq!(frame["user_id"], alice.to_string());
    assert_eq!(frame["reactions"][0]["count"], 1);

    node_a
        .delete_message(alice, room, id)
        .await
        .expect("deleted");
    let frame = next_change(&mut remote).await;
    assert_eq!(kind(&frame), "message.deleted", "{frame}");
    assert_eq!(frame["rev"], 4);
}

#[tokio::test]
async fn sync_with_a_rev_replays_edits_and_deletes_once_each() {
    let (engine, store) = engine().await;
    let alice = seed_user(&store, "alice").await;
    let room = private_room(&engine, alice, &[]).await;
    let kept = say(&engine, alice, room, "kept").await;
    let edited = say(&engine, alice, room, "to edit").await;
    let deleted = say(&engine, alice, room, "to delete").await;
    engine
        .react(alice, room, kept, "👍", true)
        .await
        .expect("reacted");
    engine
        .edit_message(alice, room, edited, edit("edited"))
        .await
        .expect("edited");
    engine
        .delete_message(alice, room, deleted)
        .await
        .expect("deleted");
    say(&engine, alice, room, "new").await;

    let mut session = engine.connect(alice).await.expect("connected");
    let since = SyncSince::SeqRev {
        seq: Seq(3),
        rev: chat_core::domain::Rev(3),
    };
    let (frames, synced) = session.sync(room, since).await.expect("synced");
    let frames = parse_frames(&frames);
    let kinds: Vec<&str> = frames.iter().map(kind).collect();
    assert_eq!(
        kinds,
        [
            "message.updated",
            "message.updated",
            "message.deleted",
            "message.created"
        ]
    );
    assert_eq!(frames[0]["message"]["reactions"][0]["emoji"], "👍");
    assert_eq!(frames[1]["message"]["body"], "edited");
    assert_eq!(frames[2]["message_id"], deleted.to_string());
    assert_eq!((synced.last_seq, synced.rev.0), (Seq(4), 7));
}
