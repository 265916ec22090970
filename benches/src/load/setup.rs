//! Setting up a messaging run: its users, its rooms, and a socket for every member.

use std::time::Duration;

use futures_util::{stream, StreamExt, TryStreamExt};
use tokio::time::Instant;

use super::client::{connect_each, Api, Error, Subscriber, User};
use super::run::{Plan, Senders};
use super::users::sign_in_all;

/// Rooms created in parallel.
const ROOM_CONCURRENCY: usize = 16;
/// Enough WebSocket handshakes in parallel to open thousands of sockets in seconds without
/// flooding the server's accept queue.
const CONNECT_CONCURRENCY: usize = 64;
/// Room creation waits behind the other setup requests: be patient.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The users and rooms of a run.
#[derive(Debug, Clone)]
pub struct Cast {
    /// The user who posts every message and receives none, if one does (multinode, fanout).
    pub sender: Option<User>,
    /// The rooms' ids.
    pub rooms: Vec<String>,
    /// Every member, room by room: room `r` has `members[r * per_room..(r + 1) * per_room]`.
    pub members: Vec<User>,
    /// Members of each room (not counting a dedicated sender).
    pub per_room: usize,
}

impl Cast {
    /// The room of member `m`, as an index into `rooms`.
    pub fn room_of(&self, m: usize) -> usize {
        m / self.per_room
    }

    /// The owner of room `r`: the dedicated sender, else its first member.
    pub fn owner(&self, r: usize) -> &User {
        self.sender
            .as_ref()
            .unwrap_or(&self.members[r * self.per_room])
    }
}

/// Signs in the users (`load-<run>-s` for a dedicated sender, `load-<run>-r<room>m<i>` for the
/// members), creates the rooms on the send server, and opens every member's socket on
/// `recv_ws` (in the order of `members`). The first failure ends the setup.
pub async fn setup(
    plan: &Plan,
    recv_ws: &str,
    run_id: &str,
) -> Result<(Cast, Vec<Subscriber>), Error> {
    let dedicated = matches!(plan.senders, Senders::Dedicated);
    let names: Vec<String> = dedicated
        .then(|| format!("load-{run_id}-s"))
        .into_iter()
        .chain(
            (0..plan.rooms)
                .flat_map(|r| (0..plan.members).map(move |i| format!("load-{run_id}-r{r}m{i}"))),
        )
        .collect();
    let mut members = sign_in_all(&plan.send_url, &names, plan.host.as_ref()).await?;
    let sender = dedicated.then(|| members.remove(0));
    let mut cast = Cast {
        sender,
        rooms: Vec::new(),
        members,
        per_room: plan.members,
    };

    let started = Instant::now();
    let api = Api::new(&plan.send_url, ROOM_CONCURRENCY, SETUP_TIMEOUT)?;
    let cast_ref = &cast;
    cast.rooms = stream::iter(0..plan.rooms)
        .map(|r| {
            let owner = cast_ref.owner(r);
            let members: Vec<String> = cast_ref.members[r * plan.members..][..plan.members]
                .iter()
                .filter(|m| m.id != owner.id)
                .map(|m| m.id.clone())
                .collect();
            let name = format!("load {run_id} {r}");
            let api = &api;
            async move { api.create_room(owner, &name, &members, false).await }
        })
        .buffered(ROOM_CONCURRENCY)
        .try_collect()
        .await?;
    eprintln!(
        "created {} rooms of {} members in {:.1?}",
        plan.rooms,
        plan.members,
        started.elapsed()
    );

    let started = Instant::now();
    let total = cast.members.len();
    let tokens = cast.members.iter().map(|m| m.token.as_str());
    let mut subscribers = Vec::with_capacity(cast.members.len());
    for (i, socket) in connect_each(recv_ws, tokens, CONNECT_CONCURRENCY)
        .await
        .into_iter()
        .enumerate()
    {
        subscribers.push(socket.map_err(|e| format!("socket {} of {total}: {e}", i + 1))?);
    }
    eprintln!(
        "opened {} sockets in {:.1?}",
        subscribers.len(),
        started.elapsed()
    );
    Ok((cast, subscribers))
}
