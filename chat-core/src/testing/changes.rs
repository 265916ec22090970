//! Conformance behaviours of changes to posted messages: threads, edits, deletes, reactions,
//! exact unread counts and full-text search.

use std::sync::Arc;

use crate::domain::{
    Cursor, Emoji, HistoryAnchor, Message, MessageBody, MessageEdit, MessageId, ReactionEdit, Rev,
    RoomId, SearchQuery, Seq, UserId,
};
use crate::ports::Store;

use super::{add_room, add_user, post, seqs, t, text};

async fn room_rev(store: &Arc<dyn Store>, room: RoomId) -> Rev {
    store.room(room).await.unwrap().expect("room").rev
}

async fn get(store: &Arc<dyn Store>, room: RoomId, id: MessageId) -> Message {
    store.message(room, id).await.unwrap().expect("message")
}

pub(super) fn edit(room: RoomId, id: MessageId, body: &str, mentions: Vec<UserId>) -> MessageEdit {
    MessageEdit {
        room_id: room,
        id,
        body: MessageBody::parse(body, 4000).expect("valid body"),
        mentions,
        edited_at: t(50),
    }
}

pub(super) fn react(
    room: RoomId,
    id: MessageId,
    user: UserId,
    emoji: &str,
    add: bool,
) -> ReactionEdit {
    ReactionEdit {
        room_id: room,
        message_id: id,
        user_id: user,
        emoji: Emoji::parse(emoji).expect("valid emoji"),
        add,
        at: t(60),
    }
}

async fn unread(store: &Arc<dyn Store>, user: UserId, room: RoomId) -> (i64, i64) {
    let counts = store.unread(user, Some(room), 10).await.unwrap();
    assert_eq!(counts.len(), 1, "one count for one room");
    (counts[0].unread_count, counts[0].mention_count)
}

async fn search(
    store: &Arc<dyn Store>,
    user: UserId,
    q: &str,
    room: Option<RoomId>,
) -> Vec<Option<String>> {
    store
        .search_messages(user, &SearchQuery::new(q), room, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect()
}

/// A thread lists its replies in seq order, pages with `after`, and leaves out everything
/// else of the room.
pub async fn threads_list_their_replies_in_order(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let room = add_room(&store, alice, &[]).await;
    let root = post(&store, room, alice, "root").await;
    let other = post(&store, room, alice, "other root").await;
    for i in 0..3 {
        let mut reply = text(room, alice, &format!("reply {i}"));
        reply.thread_id = Some(root);
        store.append_message(&reply).await.unwrap();
        let mut elsewhere = text(room, alice, "elsewhere");
        elsewhere.thread_id = Some(other);
        store.append_message(&elsewhere).await.unwrap();
    }
    let first = store.thread(room, root, Seq::ZERO, 2).await.unwrap();
    assert_eq!(seqs(&first.messages), [3, 5]);
    assert!(first.has_more);
    let rest = store.thread(room, root, Seq(5), 2).await.unwrap();
    assert_eq!(seqs(&rest.messages), [7]);
    assert!(!rest.has_more);
    assert!(rest.messages[0].thread_id == Some(root));
    let none = store.thread(room, MessageId(uuid::Uuid::new_v4()), Seq::ZERO, 10);
    assert!(none.await.unwrap().messages.is_empty());
}

/// An edit replaces the text and the mentions, stamps `edited_at`, and takes the room's next
/// rev; unread mention counts follow it. A missing or deleted message is `None`.
pub async fn edits_replace_text_and_mentions_with_a_new_rev(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let room = add_room(&store, alice, &[bob]).await;
    let first = post(&store, room, alice, "hello").await;
    post(&store, room, alice, "second").await;
    assert_eq!(unread(&store, bob, room).await, (2, 0));

    let edited = store
        .edit_message(&edit(room, first, "hello @bob", vec![bob]))
        .await
        .unwrap()
        .expect("edited");
    assert_eq!(edited.body.as_deref(), Some("hello @bob"));
    assert_eq!(edited.mentions, [bob]);
    assert_eq!(edited.edited_at, Some(t(50)));
    assert_eq!((edited.seq, edited.rev), (Seq(1), Rev(3)));
    assert_eq!(room_rev(&store, room).await, Rev(3));
    assert_eq!(get(&store, room, first).await, edited);
    assert_eq!(
        unread(&store, bob, room).await,
        (2, 1),
        "the edit mentions bob"
    );
    let changed = store.changed_since(room, Seq(2), Rev(2), 10).await.unwrap();
    assert_eq!(changed, [edited]);

    let unmentioned = store
        .edit_message(&edit(room, first, "hello all", Vec::new()))
        .await
        .unwrap()
        .expect("edited again");
    assert!(unmentioned.mentions.is_empty());
    assert_eq!(unmentioned.rev, Rev(4));
    assert_eq!(unread(&store, bob, room).await, (2, 0));

    let missing = edit(room, MessageId(uuid::Uuid::new_v4()), "x", Vec::new());
    assert_eq!(store.edit_message(&missing).await.unwrap(), None);
    let other_room = add_room(&store, alice, &[]).await;
    let misplaced = edit(other_room, first, "x", Vec::new());
    assert_eq!(store.edit_message(&misplaced).await.unwrap(), None);
    assert_eq!(
        room_rev(&store, room).await,
        Rev(4),
        "failed edits change nothing"
    );
}

/// A delete leaves a tombstone in place (no text, mentions or reactions; a new rev) that is
/// neither counted nor unread; a second delete, an edit or a reaction of it changes nothing.
pub async fn deletes_leave_tombstones(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let room = add_room(&store, alice, &[bob]).await;
    let mut mention = text(room, alice, "hi @bob");
    mention.mentions = vec![bob];
    let gone = store.append_message(&mention).await.unwrap().message.id;
    let mut reply = text(room, alice, "in thread");
    reply.thread_id = Some(gone);
    store.append_message(&reply).await.unwrap();
    let reaction = react(room, gone, bob, "👍", true);
    store
        .set_reaction(&reaction)
        .await
        .unwrap()
        .expect("reacted");
    assert_eq!(unread(&store, bob, room).await, (2, 1));
    assert_eq!(store.message_count(room).await.unwrap(), 2);

    let tombstone = store
        .delete_message(room, gone)
        .await
        .unwrap()
        .expect("deleted");
    assert!(tombstone.deleted);
    assert_eq!(tombstone.body, None);
    assert_eq!(tombstone.attachment, None);
    assert!(tombstone.reactions.is_empty() && tombstone.mentions.is_empty());
    assert_eq!(tombstone.rev, Rev(4));
    assert_eq!(tombstone.seq, Seq(1));
    assert_eq!(
        tombstone.thread.as_ref().map(|t| t.reply_count),
        Some(1),
        "its thread stays"
    );
    assert_eq!(get(&store, room, gone).await, tombstone);
    assert_eq!(unread(&store, bob, room).await, (1, 0));
    assert_eq!(store.message_count(room).await.unwrap(), 1);
    let page = store
        .history(room, HistoryAnchor::Latest, 10)
        .await
        .unwrap();
    assert_eq!(
        seqs(&page.messages),
        [1, 2],
        "the tombstone keeps its place"
    );
    let changed = store.changed_since(room, Seq(2), Rev(3), 10).await.unwrap();
    assert_eq!(changed, [tombstone]);

    assert_eq!(store.delete_message(room, gone).await.unwrap(), None);
    let again = edit(room, gone, "back", Vec::new());
    assert_eq!(store.edit_message(&again).await.unwrap(), None);
    assert_eq!(store.set_reaction(&reaction).await.unwrap(), None);
    let missing = MessageId(uuid::Uuid::new_v4());
    assert_eq!(store.delete_message(room, missing).await.unwrap(), None);
    assert_eq!(
        room_rev(&store, room).await,
        Rev(4),
        "nothing changed after"
    );
}

/// After N messages from others, M of them read and K deleted (some read, some not), the
/// unread and mention counts are exact; own messages never count.
pub async fn unread_counts_are_exact_after_reads_and_deletes(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let room = add_room(&store, alice, &[bob]).await;
    let mut ids = Vec::new();
    for i in 1..=12 {
        let mut m = text(room, bob, &format!("m{i} @alice"));
        if i % 3 == 0 {
            m.mentions = vec![alice];
        }
        ids.push(store.append_message(&m).await.unwrap().message.id);
    }
    // Alice's own message after bob's 12 moves only her watermark; it is never unread.
    post(&store, room, alice, "mine").await;
    store.mark_read(room, alice, Seq(0), t(20)).await.unwrap();
    assert_eq!(
        unread(&store, alice, room).await,
        (0, 0),
        "alice posted at 13"
    );

    let carol = add_user(&store, "carol").await;
    store
        .add_member(room, carol, crate::domain::Role::Member, t(21))
        .await
        .unwrap();
    for i in 14..=23 {
        let mut m = text(room, bob, &format!("later {i}"));
        if i % 2 == 0 {
            m.mentions = vec![carol];
        }
        ids.push(store.append_message(&m).await.unwrap().message.id);
    }
    // Carol: N = 10 unread (14..=23), 5 mentions (even seqs).
    assert_eq!(unread(&store, carol, room).await, (10, 5));
    // M = 4 read (through seq 17: 14..=17, mentions at 14 and 16).
    store.mark_read(room, carol, Seq(17), t(22)).await.unwrap();
    assert_eq!(unread(&store, carol, room).await, (6, 3));
    // K = 3 deleted: seq 15 (read), 18 (unread, mention) and 19 (unread).
    for seq in [15usize, 18, 19] {
        store.delete_message(room, ids[seq - 2]).await.unwrap();
    }
    assert_eq!(unread(&store, carol, room).await, (4, 2));
    store
        .mark_read(room, carol, Seq(1000), t(23))
        .await
        .unwrap();
    assert_eq!(unread(&store, carol, room).await, (0, 0));
}

/// Concurrent appends and reads never leave a count negative or off: at the end it equals the
/// messages after the final watermark.
pub async fn unread_counts_do_not_drift_under_concurrent_sends_and_reads(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let room = add_room(&store, alice, &[bob]).await;
    let sender = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..40 {
                post(&store, room, bob, &format!("m{i}")).await;
            }
        })
    };
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for i in 0..40i64 {
                let seq = Seq(40 - i);
                store.mark_read(room, alice, seq, t(30)).await.unwrap();
                let counts = store.unread(alice, Some(room), 10).await.unwrap();
                seen.push(counts[0].unread_count);
            }
            seen
        })
    };
    sender.await.unwrap();
    let seen = reader.await.unwrap();
    assert!(seen.iter().all(|&n| (0..=40).contains(&n)), "{seen:?}");
    let read = store
        .membership(room, alice)
        .await
        .unwrap()
        .unwrap()
        .read_seq;
    assert_eq!(unread(&store, alice, room).await, (40 - read.0, 0));
}

/// Reactions count per emoji, in the order each emoji was first used; adding twice or taking
/// back what is not there changes nothing and keeps the rev; the reader's own reactions are
/// found by seq.
pub async fn reactions_count_per_emoji_in_order_of_first_use(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let room = add_room(&store, alice, &[bob]).await;
    let id = post(&store, room, alice, "react to me").await;
    let plain = post(&store, room, alice, "no reactions").await;

    let first = store
        .set_reaction(&react(room, id, bob, ":tada:", true))
        .await
        .unwrap()
        .expect("reacted");
    assert!(first.changed);
    assert_eq!(first.message.rev, Rev(3));
    assert_eq!(room_rev(&store, room).await, Rev(3));
    for (user, emoji) in [(alice, "👍"), (bob, "👍"), (alice, ":tada:")] {
        let change = react(room, id, user, emoji, true);
        let done = store.set_reaction(&change).await.unwrap();
        assert!(done.expect("reacted").changed);
    }
    let twice = store
        .set_reaction(&react(room, id, bob, "👍", true))
        .await
        .unwrap()
        .expect("still there");
    assert!(!twice.changed);
    assert_eq!(twice.message.rev, Rev(6), "no change, no new rev");
    let counts = |m: &Message| -> Vec<(String, i64, Option<bool>)> {
        m.reactions
            .iter()
            .map(|r| (r.emoji.as_str().to_owned(), r.count, r.me))
            .collect()
    };
    let expected = vec![(":tada:".into(), 2, None), ("👍".into(), 2, None)];
    assert_eq!(counts(&twice.message), expected);
    assert_eq!(counts(&get(&store, room, id).await), expected);

    let mine = store
        .reactions_by(room, alice, &[Seq(1), Seq(2), Seq(9)])
        .await
        .unwrap();
    let mut mine: Vec<(i64, String)> = mine
        .into_iter()
        .map(|(s, e)| (s.0, e.as_str().to_owned()))
        .collect();
    mine.sort();
    assert_eq!(mine, [(1, ":tada:".into()), (1, "👍".into())]);

    let removed = store
        .set_reaction(&react(room, id, bob, ":tada:", false))
        .await
        .unwrap()
        .expect("taken back");
    assert!(removed.changed);
    let gone = store
        .set_reaction(&react(room, id, alice, ":tada:", false))
        .await
        .unwrap()
        .expect("taken back");
    assert_eq!(counts(&gone.message), [("👍".into(), 2, None)]);
    let nothing = store
        .set_reaction(&react(room, plain, bob, "👍", false))
        .await
        .unwrap()
        .expect("a live message");
    assert!(!nothing.changed);
    assert_eq!(room_rev(&store, room).await, Rev(8));
    let missing = react(room, MessageId(uuid::Uuid::new_v4()), bob, "👍", true);
    assert_eq!(store.set_reaction(&missing).await.unwrap(), None);
    let changed = store.changed_since(room, Seq(2), Rev(7), 10).await.unwrap();
    assert_eq!(seqs(&changed), [1]);
}

/// Reactions made at the same moment keep the order they were made in; an emoji keeps its
/// place while anyone still reacts with it, and one everybody took back starts over at the end.
pub async fn an_emoji_keeps_its_place_while_anyone_reacts_with_it(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let room = add_room(&store, alice, &[bob]).await;
    let id = post(&store, room, alice, "order").await;
    // Every reaction at the same time, and in an order no sort by text gives.
    for (user, emoji) in [(alice, "👍"), (bob, ":tada:"), (bob, "👍"), (alice, "🎉")] {
        store
            .set_reaction(&react(room, id, user, emoji, true))
            .await
            .unwrap();
    }
    let order = |m: Message| -> Vec<String> {
        m.reactions
            .iter()
            .map(|r| r.emoji.as_str().to_owned())
            .collect()
    };
    assert_eq!(order(get(&store, room, id).await), ["👍", ":tada:", "🎉"]);
    store
        .set_reaction(&react(room, id, alice, "👍", false))
        .await
        .unwrap();
    assert_eq!(
        order(get(&store, room, id).await),
        ["👍", ":tada:", "🎉"],
        "bob still reacts with it"
    );
    store
        .set_reaction(&react(room, id, bob, "👍", false))
        .await
        .unwrap();
    let back = store
        .set_reaction(&react(room, id, alice, "👍", true))
        .await
        .unwrap()
        .expect("reacted");
    assert_eq!(order(back.message), [":tada:", "🎉", "👍"]);
}

/// Search finds messages holding every word, in any case and around punctuation, only in
/// rooms the user is a member of (and only the named room when one is given).
pub async fn search_finds_every_word_in_the_users_rooms_only(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let bob = add_user(&store, "bob").await;
    let shared = add_room(&store, alice, &[bob]).await;
    let own = add_room(&store, alice, &[]).await;
    let secret = add_room(&store, bob, &[]).await;
    post(&store, shared, bob, "Lunch on Friday? The usual place.").await;
    post(&store, shared, alice, "lunch-friday works").await;
    post(&store, own, alice, "friday: buy LUNCH").await;
    post(&store, shared, alice, "lunchtime on fridays").await;
    post(&store, secret, bob, "secret lunch friday").await;

    let mut found = search(&store, alice, "friday LUNCH", None).await;
    found.sort();
    assert_eq!(
        found,
        [
            Some("Lunch on Friday? The usual place.".into()),
            Some("friday: buy LUNCH".into()),
            Some("lunch-friday works".into()),
        ]
    );
    assert_eq!(
        search(&store, alice, "friday lunch", Some(own)).await.len(),
        1
    );
    assert!(search(&store, alice, "secret", None).await.is_empty());
    assert!(search(&store, alice, "lunch", Some(secret))
        .await
        .is_empty());
    assert_eq!(search(&store, bob, "secret", None).await.len(), 1);
    assert!(search(&store, alice, "lunch dinner", None).await.is_empty());
    assert!(search(&store, alice, "\"' OR 1=1 --; *", None)
        .await
        .is_empty());
    assert!(search(&store, alice, "", None).await.is_empty());
}

/// Search follows edits (old words are gone, new ones found) and never returns a deleted
/// message.
pub async fn search_follows_edits_and_deletes(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let room = add_room(&store, alice, &[]).await;
    let edited = post(&store, room, alice, "meeting at noon").await;
    let deleted = post(&store, room, alice, "meeting cancelled").await;
    assert_eq!(search(&store, alice, "meeting", None).await.len(), 2);
    store
        .edit_message(&edit(room, edited, "standup at nine", Vec::new()))
        .await
        .unwrap();
    store.delete_message(room, deleted).await.unwrap();
    assert!(search(&store, alice, "meeting", None).await.is_empty());
    assert!(search(&store, alice, "cancelled", None).await.is_empty());
    assert_eq!(
        search(&store, alice, "standup", None).await,
        [Some("standup at nine".into())]
    );
}

/// Search pages newest first by creation time, with a cursor on the last item.
pub async fn search_pages_newest_first(store: Arc<dyn Store>) {
    let alice = add_user(&store, "alice").await;
    let r1 = add_room(&store, alice, &[]).await;
    let r2 = add_room(&store, alice, &[]).await;
    for i in 0..5i64 {
        let room = if i % 2 == 0 { r1 } else { r2 };
        let mut m = text(room, alice, &format!("note {i}"));
        m.created_at = t(100 + i);
        store.append_message(&m).await.unwrap();
    }
    let query = SearchQuery::new("note");
    let first = store
        .search_messages(alice, &query, None, None, 2)
        .await
        .unwrap();
    let bodies =
        |ms: &[Message]| -> Vec<String> { ms.iter().filter_map(|m| m.body.clone()).collect() };
    assert_eq!(bodies(&first), ["note 4", "note 3"]);
    let last = first.last().expect("a page");
    let cursor = Cursor::new(0, last.created_at, last.id.0);
    let rest = store
        .search_messages(alice, &query, None, Some(cursor), 10)
        .await
        .unwrap();
    assert_eq!(bodies(&rest), ["note 2", "note 1", "note 0"]);
}
