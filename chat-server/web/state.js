// What the client knows: the signed-in user, the rooms, the messages it has loaded, who is who,
// and the live signals (presence, typing, receipts). Views read it; chat.js alone changes it.

export const state = {
  me: null,
  /** room id → Room, with the caller's `membership` (API.md, Rooms). */
  rooms: new Map(),
  /** room id → `{unread_count, mention_count}`, as `GET /v1/unread` counts them. */
  unread: new Map(),
  /** user id → User. */
  users: new Map(),
  /** direct room id → the other member's user id (a direct room has no name of its own). */
  peers: new Map(),
  /** user id → `online` | `away` | `offline`. */
  presence: new Map(),
  /** room id → Map(user id → the timer that ends their typing if no `typing: false` comes). */
  typing: new Map(),
  /** room id → Map(user id → `{read_seq, delivered_seq}`), for the room that is open. */
  receipts: new Map(),
  /** room id → its members (`Member`s), for the room that is open. */
  members: new Map(),
  /** room id → Timeline, for rooms opened since signing in. */
  timelines: new Map(),
  /** The open room's id, and the root message id of the open thread. */
  openRoom: null,
  openThread: null,
};

/** The messages of one room the client has loaded, and where it stands in the room's history. */
export class Timeline {
  constructor() {
    /** message id → Message. */
    this.messages = new Map();
    /** The newest seq and rev seen: what `sync` asks to continue from. */
    this.seq = 0;
    this.rev = 0;
    /** Whether older history exists before the oldest loaded message. */
    this.hasOlder = false;
  }

  /** Adds or replaces a message; true when it was not known before. */
  put(message) {
    const known = this.messages.has(message.id);
    this.messages.set(message.id, message);
    this.seq = Math.max(this.seq, message.seq);
    this.rev = Math.max(this.rev, message.rev);
    return !known;
  }

  /** The message with this id, if loaded. */
  get(id) {
    return this.messages.get(id);
  }

  /** The lowest loaded seq, for paging back. */
  oldestSeq() {
    let oldest = Infinity;
    for (const m of this.messages.values()) oldest = Math.min(oldest, m.seq);
    return oldest;
  }

  /** Loaded messages in seq order. */
  sorted() {
    return [...this.messages.values()].sort((a, b) => a.seq - b.seq);
  }
}

/** The timeline of a room, made on first use. */
export function timeline(roomId) {
  let t = state.timelines.get(roomId);
  if (!t) {
    t = new Timeline();
    state.timelines.set(roomId, t);
  }
  return t;
}

/** A user's display name, or a stand-in until they are loaded. */
export function userName(id) {
  const user = state.users.get(id);
  if (!user) return "someone";
  return user.display_name || user.username;
}

/** What a room is called in the list and its header: a direct room by the other member. */
export function roomTitle(room) {
  if (room.kind === "direct") {
    const peer = state.peers.get(room.id);
    return peer ? userName(peer) : "Direct message";
  }
  return room.name;
}

/** Rooms in the order of API.md's room list: pinned first, then by last activity. */
export function sortedRooms() {
  const activity = (r) => Date.parse(r.last_message_at || r.created_at);
  return [...state.rooms.values()].sort((a, b) => {
    const pinned = Number(b.membership?.pinned ?? false) - Number(a.membership?.pinned ?? false);
    return pinned || activity(b) - activity(a);
  });
}
