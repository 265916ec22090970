//! Conformance behaviours of the outbox: which changes record which events, once per channel
//! in order; a relay's exclusive turn; sent, failed and given-up events; pruning.

use std::sync::Arc;

use serde_json::Value;

use crate::domain::{DisplayName, Role, RoomName, RoomPatch, Seq, UserPatch};
use crate::outbox::{Envelope, EventType, PendingEvent};
use crate::ports::{BatchOutcome, OutboxBatch, Store};

use super::changes::{edit, react};
use super::{add_room, add_user, post, t};

/// The channels the suite's recording stores record for.
pub const CHANNELS: [&str; 2] = ["amqp", "webhook:http://127.0.0.1:9/hook"];

/// The channel's turn. A turn handed back by dropping its batch may come free a moment later
/// (PostgreSQL rolls the dropped transaction back in the background), so this waits for it.
async fn take_turn(store: &Arc<dyn Store>, channel: &str, limit: u32) -> Box<dyn OutboxBatch> {
    for _ in 0..200 {
        if let Some(batch) = store.outbox_batch(channel, limit).await.unwrap() {
            return batch;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the turn of {channel} did not come free within 2 s");
}

/// The pending events of a channel, read without taking them.
async fn pending(store: &Arc<dyn Store>, channel: &str) -> Vec<PendingEvent> {
    take_turn(store, channel, 1000).await.events().to_vec()
}

fn parsed(event: &PendingEvent) -> Value {
    serde_json::from_str(&event.body).expect("events are JSON")
}

/// Each change records its events, for every channel, in the order the changes happened,
/// in the envelope of API.md with the subject as the API shows it.
pub async fn changes_record_their_events_for_every_channel(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let carol = add_user(&store, "carol").await;
    let patch = UserPatch {
        display_name: Some(DisplayName::parse("Alice A.").unwrap()),
        email: None,
    };
    store.update_user(alice, &patch).await.unwrap();
    let room = add_room(&store, alice, &[bob]).await;
    store
        .add_member(room, carol, Role::Member, t(2))
        .await
        .unwrap();
    let message = post(&store, room, alice, "hello @bob").await;
    store
        .edit_message(&edit(room, message, "hello all", Vec::new()))
        .await
        .unwrap();
    store
        .set_reaction(&react(room, message, bob, "👍", true))
        .await
        .unwrap();
    store
        .set_reaction(&react(room, message, bob, "👍", true))
        .await
        .unwrap();
    store.mark_read(room, bob, Seq(1), t(3)).await.unwrap();
    store.mark_read(room, bob, Seq(1), t(4)).await.unwrap();
    store
        .set_roles(room, &[(carol, Role::Admin)])
        .await
        .unwrap();
    let rename = RoomPatch {
        name: Some(RoomName::parse("renamed").unwrap()),
        topic: None,
        visibility: None,
    };
    store.update_room(room, &rename).await.unwrap();
    store.delete_message(room, message).await.unwrap();
    store.remove_member(room, alice, Some(bob)).await.unwrap();
    store.close_account(carol, t(5)).await.unwrap();
    store.delete_room(room).await.unwrap();
    let presence = serde_json::json!({"user_id": bob, "status": "online", "last_seen": null});
    let standalone = Envelope::new(EventType::PresenceChanged, None, Some(bob), &presence);
    store
        .record_events(std::slice::from_ref(&standalone))
        .await
        .unwrap();

    let events = pending(&store, CHANNELS[0]).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "user.created",
            "user.created",
            "user.created",
            "user.updated",
            "room.created",
            "member.joined",
            "member.joined",
            "member.joined",
            "message.created",
            "message.updated",
            "reaction.updated",
            "message.read",
            "member.updated",
            "room.updated",
            "message.deleted",
            "member.left",
            "member.updated",
            "user.deleted",
            "room.deleted",
            "presence.changed",
        ],
        "repeated reactions and reads change nothing and record nothing"
    );
    let other: Vec<_> = pending(&store, CHANNELS[1]).await;
    assert_eq!(
        other.iter().map(|e| e.id).collect::<Vec<_>>(),
        events.iter().map(|e| e.id).collect::<Vec<_>>(),
        "the same events, with the same ids, for every channel"
    );
    let mut ids: Vec<_> = events.iter().map(|e| e.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "every event has its own id");

    let bodies: Vec<Value> = events.iter().map(parsed).collect();
    for (event, body) in events.iter().zip(&bodies) {
        assert_eq!(body["id"], event.id.to_string());
        assert_eq!(body["type"], event.kind.as_str());
        assert_eq!(body["version"], "1");
        assert_eq!(body["source"], "chat-server");
        assert!(body["occurred_at"].is_string(), "{body}");
        if !event.kind.as_str().starts_with("user.") && event.kind != EventType::PresenceChanged {
            assert_eq!(body["room_id"], room.to_string(), "{body}");
        }
    }
    assert_eq!(bodies[0]["payload"]["username"], "alice");
    assert!(
        bodies[0]["payload"]["email"].is_null(),
        "no email: {}",
        bodies[0]
    );
    assert_eq!(bodies[3]["payload"]["display_name"], "Alice A.");
    assert_eq!(bodies[4]["payload"]["id"], room.to_string());
    // The room's first members join together (in no particular order); carol after them.
    let mut first: Vec<(String, String)> = bodies[5..7]
        .iter()
        .map(|b| {
            let member = &b["payload"];
            (member["user"]["id"].to_string(), member["role"].to_string())
        })
        .collect();
    first.sort();
    let mut expected = vec![
        (format!("\"{alice}\""), "\"owner\"".to_owned()),
        (format!("\"{bob}\""), "\"member\"".to_owned()),
    ];
    expected.sort();
    assert_eq!(first, expected);
    assert_eq!(bodies[7]["payload"]["user"]["id"], carol.to_string());
    assert_eq!(bodies[8]["payload"]["body"], "hello @bob");
    assert_eq!(bodies[8]["user_id"], alice.to_string());
    assert_eq!(bodies[9]["payload"]["body"], "hello all");
    assert_eq!(bodies[10]["payload"]["emoji"], "👍");
    assert_eq!(bodies[10]["payload"]["added"], true);
    assert_eq!(bodies[10]["payload"]["reactions"][0]["count"], 1);
    assert_eq!(
        bodies[11]["payload"],
        serde_json::json!({"user_id": bob.to_string(), "read_seq": 1})
    );
    assert_eq!(bodies[12]["payload"]["role"], "admin");
    assert_eq!(bodies[13]["payload"]["name"], "renamed");
    assert_eq!(bodies[14]["payload"]["deleted"], true);
    assert!(bodies[14]["payload"]["body"].is_null());
    assert_eq!(bodies[15]["payload"]["user"]["id"], alice.to_string());
    assert_eq!(bodies[16]["payload"]["user"]["id"], bob.to_string());
    assert_eq!(bodies[16]["payload"]["role"], "owner");
    assert_eq!(bodies[17]["payload"]["id"], carol.to_string());
    assert_eq!(bodies[18]["payload"]["id"], room.to_string());
    assert_eq!(
        serde_json::from_str::<Envelope>(&events[19].body).unwrap(),
        standalone
    );
}

/// One relay at a time holds a channel's turn; a dropped turn changes nothing; what a finished
/// one delivered is not handed out again.
pub async fn outbox_turns_are_exclusive_and_delivered_events_stay_sent(store: Arc<dyn Store>) {
    add_user(&store, "alice").await;
    add_user(&store, "bob").await;
    let held = take_turn(&store, CHANNELS[0], 10).await;
    assert_eq!(held.events().len(), 2);
    assert!(store.outbox_batch(CHANNELS[0], 10).await.unwrap().is_none());
    let other = store.outbox_batch(CHANNELS[1], 10).await.unwrap();
    assert!(other.is_some(), "channels have turns of their own");
    drop(other);
    drop(held);
    assert_eq!(pending(&store, CHANNELS[0]).await.len(), 2);

    let batch = take_turn(&store, CHANNELS[0], 1).await;
    let first = batch.events()[0].id;
    batch.finish(BatchOutcome::Delivered, t(10)).await.unwrap();
    let rest = pending(&store, CHANNELS[0]).await;
    assert_eq!(rest.len(), 1);
    assert_ne!(rest[0].id, first);
    assert_eq!(store.outbox_counts(CHANNELS[0]).await.unwrap().pending, 1);
    assert_eq!(store.outbox_counts(CHANNELS[1]).await.unwrap().pending, 2);
}

/// A failure marks what was delivered before it, counts an attempt for the event that failed,
/// and gives it up at the sink's limit; without a limit it waits.
pub async fn outbox_failures_count_attempts_and_give_up_at_the_limit(store: Arc<dyn Store>) {
    for name in ["alice", "bob", "carol"] {
        add_user(&store, name).await;
    }
    let failed = |delivered, give_up_after| BatchOutcome::Failed {
        delivered,
        give_up_after,
    };
    let batch = take_turn(&store, CHANNELS[0], 10).await;
    let ids: Vec<_> = batch.events().iter().map(|e| e.id).collect();
    batch.finish(failed(1, Some(2)), t(10)).await.unwrap();
    let after = pending(&store, CHANNELS[0]).await;
    assert_eq!(
        after.iter().map(|e| (e.id, e.attempts)).collect::<Vec<_>>(),
        [(ids[1], 1), (ids[2], 0)]
    );
    let batch = take_turn(&store, CHANNELS[0], 10).await;
    batch.finish(failed(0, Some(2)), t(11)).await.unwrap();
    let after = pending(&store, CHANNELS[0]).await;
    assert_eq!(
        after.iter().map(|e| e.id).collect::<Vec<_>>(),
        [ids[2]],
        "given up after two failures"
    );
    let counts = store.outbox_counts(CHANNELS[0]).await.unwrap();
    assert_eq!((counts.pending, counts.dead), (1, 1));

    for at in 12..20 {
        let batch = take_turn(&store, CHANNELS[0], 10).await;
        batch.finish(failed(0, None), t(at)).await.unwrap();
    }
    let waiting = pending(&store, CHANNELS[0]).await;
    assert_eq!(
        waiting
            .iter()
            .map(|e| (e.id, e.attempts))
            .collect::<Vec<_>>(),
        [(ids[2], 8)],
        "without a limit an event waits"
    );
}

/// Pruning deletes sent and given-up events older than the cut, never pending ones.
pub async fn outbox_pruning_keeps_pending_events(store: Arc<dyn Store>) {
    for name in ["alice", "bob", "carol"] {
        add_user(&store, name).await;
    }
    let batch = take_turn(&store, CHANNELS[0], 1).await;
    batch.finish(BatchOutcome::Delivered, t(10)).await.unwrap();
    let batch = take_turn(&store, CHANNELS[0], 1).await;
    let failed = BatchOutcome::Failed {
        delivered: 0,
        give_up_after: Some(1),
    };
    batch.finish(failed, t(20)).await.unwrap();

    assert_eq!(store.prune_outbox(t(10), 100).await.unwrap(), 0);
    assert_eq!(store.prune_outbox(t(11), 100).await.unwrap(), 1);
    assert_eq!(store.prune_outbox(t(30), 100).await.unwrap(), 1);
    let counts = store.outbox_counts(CHANNELS[0]).await.unwrap();
    assert_eq!((counts.pending, counts.dead), (1, 0));
    assert_eq!(store.outbox_counts(CHANNELS[1]).await.unwrap().pending, 3);
}

/// A store recording for no channel writes no events.
pub async fn without_channels_nothing_is_recorded(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let room = add_room(&store, alice, &[]).await;
    post(&store, room, alice, "hello").await;
    for channel in CHANNELS {
        assert!(pending(&store, channel).await.is_empty());
    }
}
