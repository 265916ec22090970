//! Engine tests of moderation across two nodes sharing a store and a bus: a ban and a room's
//! deletion reach sessions on the other node, and a deleted room takes the uploads only it
//! carried, bytes included.

#[macro_use]
mod support;

use bytes::Bytes;
use chat_core::blobs::MemoryBlobStore;
use support::*;

fn png(len: usize) -> chat_core::ports::ByteStream {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.resize(len, 7);
    Box::pin(futures_util::stream::iter([Ok(Bytes::from(bytes))]))
}

/// The next frame other than a `member.joined`: the joins of the rooms' creation reach the
/// other node's sessions over the bus, possibly after they connected.
async fn next_change(session: &mut Session) -> Value {
    loop {
        let frame = next(session).await;
        if kind(&frame) != "member.joined" {
            return frame;
        }
    }
}

/// Two nodes on one store and one bus; node A keeps its uploads' bytes in `blobs`.
async fn two_nodes() -> (
    ChatEngine,
    ChatEngine,
    Arc<MemoryStore>,
    Arc<MemoryBlobStore>,
) {
    let store = Arc::new(MemoryStore::new());
    let bus = InProcessNotifier::default();
    let blobs = Arc::new(MemoryBlobStore::new());
    let node_a = ChatEngine::builder(store.clone())
        .notifier(Arc::new(bus.clone()))
        .blobs(blobs.clone())
        .limits(limits())
        .build()
        .await
        .expect("engine builds");
    let node_b = node(&store, &bus, limits()).await;
    (node_a, node_b, store, blobs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_on_one_node_unsubscribes_the_users_sessions_on_another() {
    let (node_a, node_b, store, _) = two_nodes().await;
    let alice = seed_user(&store, "alice").await;
    let bob = seed_user(&store, "bob").await;
    let room = public_room(&node_a, alice, &[bob]).await;
    let mut bobs = node_b.connect(bob).await.expect("connected on B");

    node_a.ban_member(alice, room, bob).await.expect("banned");
    assert_member_left(&next_change(&mut bobs).await, room, bob);
    say(&node_a, alice, room, "after the ban").await;
    assert_quiet(&mut bobs).await;
    assert_err!(node_b.join(bob, room).await, ChatError::Forbidden(_));
    assert_err!(
        node_b.send(bob, room, text("let me in")).await,
        ChatError::Forbidden(_)
    );
    node_a.unban(alice, room, bob).await.expect("unbanned");
    node_b.join(bob, room).await.expect("joins again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_room_reaches_every_node_and_takes_the_uploads_only_it_carried() {
    let (node_a, node_b, store, blobs) = two_nodes().await;
    let alice = seed_user(&store, "alice").await;
    let bob = seed_user(&store, "bob").await;
    let carol = seed_user(&store, "carol").await;
    let room = private_room(&node_a, alice, &[bob, carol]).await;
    let kept = private_room(&node_a, alice, &[bob]).await;
    let only_here = node_a.upload(alice, "a.png", png(100)).await.expect("up");
    let shared = node_a.upload(alice, "b.png", png(100)).await.expect("up");
    for (target, file) in [(room, &only_here), (room, &shared), (kept, &shared)] {
        let input = SendMessage {
            attachment_id: Some(file.id.to_string()),
            ..Default::default()
        };
        node_a.send(alice, target, input).await.expect("sent");
    }
    let mut remote = node_b.connect(bob).await.expect("connected on B");
    let mut local = node_a.connect(carol).await.expect("connected on A");

    assert_err!(node_a.delete_room(bob, room).await, ChatError::Forbidden(_));
    node_a.delete_room(alice, room).await.expect("deleted");
    for session in [&mut remote, &mut local] {
        let frame = next_change(session).await;
        assert_eq!(kind(&frame), "room.deleted", "{frame}");
        assert_eq!(frame_room(&frame), room.to_string());
    }
    // Nothing of the room follows; the other room still flows to the same session.
    assert_quiet(&mut local).await;
    say(&node_a, alice, kept, "still here").await;
    let (seq, _) = next_created(&mut remote, kept).await;
    assert_eq!(seq, 2);

    assert_err!(node_b.room(bob, room).await, ChatError::NotFound);
    assert_err!(node_a.delete_room(alice, room).await, ChatError::NotFound);
    assert_err!(
        node_a.upload_info(alice, only_here.id).await,
        ChatError::NotFound
    );
    node_a
        .upload_info(bob, shared.id)
        .await
        .expect("carried elsewhere");
    assert_eq!(blobs.len(), 1, "only the shared upload's bytes are left");
}
