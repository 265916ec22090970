//! Who posts each message, in which room, and how: the dedicated sender over HTTP, or a random
//! member of a random room, over HTTP or (a share of the messages) its own socket.

use std::future::Future;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

use super::client::{Api, WsSend};
use super::rng::Rng;
use super::setup::Cast;
use super::stats::{stamp, unix_micros};

/// Picks the poster, room and channel of each message.
#[derive(Debug)]
pub struct Poster {
    api: Api,
    cast: Cast,
    /// Each member's socket, by member index; empty when nothing goes over WebSocket.
    outboxes: Vec<mpsc::Sender<WsSend>>,
    ws_share: f64,
    rng: Rng,
    run_id: String,
    body_bytes: usize,
    /// How long a post over a socket waits for its `ack`.
    grace: Duration,
}

/// What a poster needs besides the cast and the sockets.
#[derive(Debug, Clone)]
pub struct PostSettings {
    /// The share of messages posted over the poster's socket (members only).
    pub ws_share: f64,
    /// Keeps this run's `client_id`s apart from other runs'.
    pub run_id: String,
    /// Message body length (the stamp alone when shorter).
    pub body_bytes: usize,
    /// How long a post over a socket waits for its `ack`.
    pub grace: Duration,
}

impl Poster {
    /// A poster over `api` for `cast`, with member `m`'s socket at `outboxes[m]`.
    pub fn new(
        api: Api,
        cast: Cast,
        outboxes: Vec<mpsc::Sender<WsSend>>,
        settings: PostSettings,
    ) -> Self {
        Self {
            api,
            cast,
            outboxes,
            ws_share: settings.ws_share,
            rng: Rng::from_entropy(),
            run_id: settings.run_id,
            body_bytes: settings.body_bytes,
            grace: settings.grace,
        }
    }

    /// The room of message `n` and the post of it, stamped when it starts: the seq it got, or a
    /// short label of what went wrong.
    pub fn post(
        &mut self,
        n: u64,
    ) -> (
        String,
        impl Future<Output = Result<u64, String>> + Send + 'static,
    ) {
        let (user, r, outbox) = match &self.cast.sender {
            Some(sender) => (sender.clone(), 0, None),
            None => {
                let r = self.rng.below(self.cast.rooms.len());
                let m = r * self.cast.per_room + self.rng.below(self.cast.per_room);
                let outbox = (self.rng.unit() < self.ws_share)
                    .then(|| self.outboxes.get(m).cloned())
                    .flatten();
                (self.cast.members[m].clone(), r, outbox)
            }
        };
        let room = self.cast.rooms[r].clone();
        // Unique per run and message, so the server's idempotency never merges two sends.
        let client_id = format!("{}-{n}", self.run_id);
        let (api, body_bytes, grace) = (self.api.clone(), self.body_bytes, self.grace);
        let posting = room.clone();
        let post = async move {
            let body = stamp(unix_micros(), n, body_bytes);
            match outbox {
                None => api.send_message(&user, &posting, &body, &client_id).await,
                Some(outbox) => over_socket(&outbox, posting, body, client_id, grace).await,
            }
        };
        (room, post)
    }
}

async fn over_socket(
    outbox: &mpsc::Sender<WsSend>,
    room: String,
    body: String,
    client_id: String,
    grace: Duration,
) -> Result<u64, String> {
    let (outcome, acked) = oneshot::channel();
    let send = WsSend {
        room,
        body,
        client_id,
        outcome,
    };
    let closed = || "ws closed".to_owned();
    outbox.send(send).await.map_err(|_| closed())?;
    match timeout(grace, acked).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(closed()),
        Err(_) => Err("ws timeout".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::client::User;

    fn user(id: &str) -> User {
        User {
            id: id.into(),
            token: String::new(),
        }
    }

    #[test]
    fn spreads_posts_over_the_rooms() {
        let cast = Cast {
            sender: None,
            rooms: vec!["a".into(), "b".into(), "c".into()],
            members: (0..6).map(|i| user(&i.to_string())).collect(),
            per_room: 2,
        };
        let api = Api::new("http://127.0.0.1:9", 1, Duration::from_secs(1)).unwrap();
        let settings = PostSettings {
            ws_share: 0.0,
            run_id: "t".into(),
            body_bytes: 0,
            grace: Duration::from_secs(1),
        };
        let mut poster = Poster::new(api, cast, Vec::new(), settings);
        let mut seen = std::collections::HashSet::new();
        for n in 0..200 {
            let (room, _) = poster.post(n);
            seen.insert(room);
        }
        assert_eq!(seen.len(), 3);
    }
}
