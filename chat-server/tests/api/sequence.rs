//! Concurrent senders get gapless, unique sequence numbers, and every ack is what was stored.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::support::{seqs, TestServer};

#[tokio::test]
async fn twenty_concurrent_senders_get_seq_1_to_1000() {
    const SENDERS: usize = 20;
    const EACH: usize = 50;
    let server = TestServer::start().await;
    let owner = server.register("owner").await;
    let mut senders = Vec::new();
    for i in 0..SENDERS {
        senders.push(server.register(&format!("sender{i}")).await);
    }
    let refs: Vec<_> = senders.iter().collect();
    let room = server.room(&owner, &refs).await;

    let mut tasks = Vec::new();
    for (i, sender) in senders.iter().enumerate() {
        let mut ws = server.ws(&sender.token).await;
        let room = room.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..EACH {
                ws.send(json!({
                    "type": "message.send",
                    "room_id": room,
                    "client_id": format!("s{i}-{n}"),
                    "body": format!("message {n} from sender {i}"),
                }))
                .await;
            }
            let mut acks = Vec::new();
            while acks.len() < EACH {
                let frame = ws.next().await;
                match frame["type"].as_str() {
                    Some("ack") => acks.push(frame["message"].clone()),
                    Some("message.created") => {}
                    _ => panic!("unexpected frame {frame}"),
                }
            }
            acks
        }));
    }
    let mut acked: Vec<Value> = Vec::new();
    for task in tasks {
        acked.extend(task.await.expect("sender task"));
    }
    let mut acked_seqs = seqs(&acked);
    acked_seqs.sort_unstable();
    assert_eq!(
        acked_seqs,
        (1..=1000).collect::<Vec<i64>>(),
        "unique, gapless seqs"
    );

    let history = server.history(&owner, &room).await;
    assert_eq!(seqs(&history), (1..=1000).collect::<Vec<i64>>());
    let stored: HashMap<i64, &Value> = history
        .iter()
        .map(|m| (m["seq"].as_i64().unwrap(), m))
        .collect();
    for ack in &acked {
        let seq = ack["seq"].as_i64().unwrap();
        assert_eq!(
            stored[&seq], ack,
            "the ack of seq {seq} is the stored message"
        );
    }
}
