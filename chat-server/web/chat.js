// The signed-in client: loads rooms, opens them, sends, and applies every live event to the
// state and the views. The socket may drop at any time; on each `ready` the client asks with
// `sync` for what its loaded rooms missed (by seq and rev), and re-reads the room list and
// unread counts, so nothing is lost across a reconnect.

import * as api from "./api.js";
import { setupDialogs } from "./dialogs.js";
import { $, clientId, el, enterSends } from "./dom.js";
import { presenceDot, renderRooms } from "./rooms-view.js";
import { LiveSocket } from "./socket.js";
import { roomTitle, state, timeline, userName } from "./state.js";
import { TimelineView } from "./timeline-view.js";

// The server keeps a typing indicator for 6 s unless renewed (API.md, typing).
const TYPING_RENEW_MS = 3000;
// How long a typer is shown when their `typing: false` never comes (a closed tab).
const TYPING_SHOWN_MS = 7000;
const OPEN_ROOM_KEY = "chat.openRoom";

let socket;
let mainView;
let threadView;
/** upload id → promise of an object URL of its bytes. */
const images = new Map();
/** user id → promise of the user, while being fetched. */
const fetchingUsers = new Map();
let typingSent = { roomId: null, at: 0 };
let unreadTimer;
let readTimer;

const actions = {
  react: (message, emoji, on) =>
    api.react(message.room_id, message.id, emoji, on).catch(showError),
  edit: async (message, body) => {
    try {
      putMessage(await api.edit(message.room_id, message.id, body));
    } catch (e) {
      showError(e);
      show(message);
    }
  },
  remove: async (message) => {
    try {
      await api.remove(message.room_id, message.id);
      deleted({ room_id: message.room_id, message_id: message.id, rev: message.rev });
    } catch (e) {
      showError(e);
    }
  },
  openThread: (message) => openThread(message),
  retry: (message) => deliver(message),
  imageUrl: (attachment) => {
    if (!images.has(attachment.id)) {
      images.set(
        attachment.id,
        api.uploadBytes(attachment.id).then((blob) => URL.createObjectURL(blob)),
      );
    }
    return images.get(attachment.id);
  },
  download: async (attachment) => {
    try {
      const { url } = await api.uploadLink(attachment.id);
      el("a", { href: url, download: attachment.name }).click();
    } catch (e) {
      showError(e);
    }
  },
};

/** Shows the chat for the signed-in user and goes live. */
export async function startChat() {
  state.me = api.me();
  state.users.set(state.me.id, state.me);
  $("#me-name").textContent = userName(state.me.id);
  mainView = new TimelineView($("#timeline"), actions);
  threadView = new TimelineView($("#thread-messages"), actions, { inThread: true });
  setupDialogs(async (room) => {
    await refreshRooms();
    openRoom(room.id);
  });
  setupComposers();
  $("#signout").addEventListener("click", async () => {
    socket.stop();
    sessionStorage.removeItem(OPEN_ROOM_KEY);
    await api.logout().catch(() => {});
    location.reload();
  });
  $("#thread-close").addEventListener("click", closeThread);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && state.openRoom) markRead(state.openRoom);
    renderRooms(openRoom);
  });
  socket = new LiveSocket({
    event: onEvent,
    status: showStatus,
    // The server closed the socket because this session was signed out (4001).
    signedOut: () => {
      api.forget();
      location.reload();
    },
  });
  await refreshRooms();
  const saved = sessionStorage.getItem(OPEN_ROOM_KEY);
  if (saved && state.rooms.has(saved)) openRoom(saved);
  socket.start();
}

// ---- rooms, users, presence, unread ----

async function refreshRooms() {
  let rooms;
  try {
    rooms = await api.myRooms();
  } catch (e) {
    showError(e);
    return;
  }
  state.rooms = new Map(rooms.map((r) => [r.id, r]));
  for (const room of rooms) {
    if (room.membership) {
      state.unread.set(room.id, {
        unread_count: room.membership.unread_count,
        mention_count: room.membership.mention_count,
      });
    }
  }
  await Promise.all(rooms.filter((r) => r.kind === "direct" && !state.peers.has(r.id)).map(findPeer));
  await loadPresence([...state.peers.values()]);
  if (state.openRoom && !state.rooms.has(state.openRoom)) closeRoom();
  else if (state.openRoom) renderHeader();
  renderRooms(openRoom);
}

async function findPeer(room) {
  try {
    const { members } = await api.members(room.id);
    for (const m of members) state.users.set(m.user.id, m.user);
    const peer = members.find((m) => m.user.id !== state.me.id);
    if (peer) state.peers.set(room.id, peer.user.id);
  } catch (e) {
    showError(e);
  }
}

async function ensureUsers(ids) {
  const missing = [...new Set(ids)].filter((id) => !state.users.has(id));
  await Promise.all(
    missing.map((id) => {
      if (!fetchingUsers.has(id)) {
        fetchingUsers.set(
          id,
          api
            .user(id)
            .then((u) => state.users.set(u.id, u))
            // A deleted account is not found: it stays "someone".
            .catch(() => {})
            .finally(() => fetchingUsers.delete(id)),
        );
      }
      return fetchingUsers.get(id);
    }),
  );
}

async function loadPresence(userIds) {
  const ids = [...new Set(userIds)];
  for (let i = 0; i < ids.length; i += 100) {
    try {
      const { presence } = await api.presence(ids.slice(i, i + 100));
      for (const p of presence) state.presence.set(p.user_id, p.status);
    } catch (e) {
      showError(e);
    }
  }
}

/** Re-reads the exact unread counts soon; several events in a row share one request. */
function refreshUnread() {
  clearTimeout(unreadTimer);
  unreadTimer = setTimeout(async () => {
    try {
      const summary = await api.unread();
      state.unread = new Map(summary.rooms.map((r) => [r.room_id, r]));
      renderRooms(openRoom);
    } catch (e) {
      showError(e);
    }
  }, 400);
}

/** Moves the read marker to the newest message while the room is on screen. */
function markRead(roomId) {
  clearTimeout(readTimer);
  readTimer = setTimeout(async () => {
    const room = state.rooms.get(roomId);
    if (!room || state.openRoom !== roomId || document.visibilityState !== "visible") return;
    if (room.membership && room.membership.read_seq >= room.last_seq) return;
    try {
      const read = await api.markRead(roomId, room.last_seq);
      if (room.membership) room.membership.read_seq = read.read_seq;
      state.unread.set(roomId, { unread_count: read.unread_count, mention_count: 0 });
      renderRooms(openRoom);
    } catch (e) {
      showError(e);
    }
  }, 100);
}

// ---- the open room ----

async function openRoom(roomId) {
  const room = state.rooms.get(roomId);
  if (!room) return;
  stopTyping();
  closeThread();
  state.openRoom = roomId;
  sessionStorage.setItem(OPEN_ROOM_KEY, roomId);
  renderHeader();
  renderTyping();
  renderRooms(openRoom);
  $("#composer").hidden = false;
  $("#message").placeholder = `Message ${room.kind === "direct" ? roomTitle(room) : `# ${room.name}`}`;
  const t = timeline(roomId);
  mainView.clear(el("p", { class: "empty muted" }, "Loading..."));
  if (!t.loaded) {
    try {
      const page = await api.history(roomId);
      for (const m of page.messages) t.put(m);
      t.hasOlder = page.has_more;
      t.loaded = true;
    } catch (e) {
      showError(e);
      return;
    }
  }
  if (state.openRoom !== roomId) return;
  await ensureUsers(t.sorted().map((m) => m.sender_id));
  if (state.openRoom !== roomId) return;
  drawTimeline(roomId);
  $("#message").focus();
  markRead(roomId);
  await loadMembers(roomId);
}

function drawTimeline(roomId) {
  const t = timeline(roomId);
  const main = t.sorted().filter((m) => !m.thread_id);
  mainView.clear(main.length ? null : el("p", { class: "empty muted" }, "No messages yet. Say hello!"));
  if (t.hasOlder) {
    mainView.container.prepend(
      el("button", { type: "button", class: "link older", onclick: () => loadOlder(roomId) }, "Load older messages"),
    );
  }
  for (const m of main) mainView.upsert(m);
  mainView.scrollToBottom();
  renderReceipt();
}

async function loadOlder(roomId) {
  const t = timeline(roomId);
  try {
    const page = await api.history(roomId, t.oldestSeq());
    for (const m of page.messages) t.put(m);
    t.hasOlder = page.has_more;
    await ensureUsers(page.messages.map((m) => m.sender_id));
  } catch (e) {
    showError(e);
    return;
  }
  if (state.openRoom !== roomId) return;
  // Keep the messages on screen where they were while older ones appear above.
  const c = mainView.container;
  const fromBottom = c.scrollHeight - c.scrollTop;
  drawTimeline(roomId);
  c.scrollTop = c.scrollHeight - fromBottom;
}

async function loadMembers(roomId) {
  try {
    const [{ members }, { receipts }] = await Promise.all([api.members(roomId), api.receipts(roomId)]);
    for (const m of members) state.users.set(m.user.id, m.user);
    state.members.set(roomId, members);
    state.receipts.set(roomId, new Map(receipts.map((r) => [r.user_id, r])));
    await loadPresence(members.map((m) => m.user.id));
  } catch (e) {
    showError(e);
    return;
  }
  if (state.openRoom !== roomId) return;
  renderHeader();
  renderReceipt();
}

function closeRoom() {
  closeThread();
  state.openRoom = null;
  sessionStorage.removeItem(OPEN_ROOM_KEY);
  $("#room-name").textContent = "No room open";
  $("#room-topic").textContent = "";
  $("#members").hidden = true;
  $("#composer").hidden = true;
  mainView.clear(el("p", { class: "empty muted" }, "Pick a room on the left, or start one."));
  renderTyping();
}

function renderHeader() {
  const room = state.rooms.get(state.openRoom);
  if (!room) return;
  const name = $("#room-name");
  if (room.kind === "direct") name.replaceChildren(presenceDot(state.peers.get(room.id)), " ", roomTitle(room));
  else name.textContent = `# ${room.name}`;
  $("#room-topic").textContent = room.topic ?? "";
  const members = state.members.get(room.id) ?? [];
  $("#members").hidden = members.length === 0;
  $("#members-count").textContent = members.length === 1 ? "1 member" : `${members.length} members`;
  $("#members-list").replaceChildren(
    ...members.map((m) =>
      el(
        "li",
        {},
        presenceDot(m.user.id),
        ` ${m.user.display_name} `,
        el("span", { class: "muted" }, `@${m.user.username}${m.role === "member" ? "" : `, ${m.role}`}`),
      ),
    ),
  );
}

/** "Read by ..." under the caller's newest message in the open room. */
function renderReceipt() {
  mainView.container.querySelector(":scope > .receipt")?.remove();
  const roomId = state.openRoom;
  if (!roomId) return;
  const mine = timeline(roomId)
    .sorted()
    .filter((m) => m.sender_id === state.me.id && !m.thread_id && !m.deleted);
  const last = mine[mine.length - 1];
  const node = last && mainView.nodes.get(last.id);
  if (!node) return;
  const others = [...(state.receipts.get(roomId)?.values() ?? [])].filter((r) => r.user_id !== state.me.id);
  const readers = others.filter((r) => r.read_seq >= last.seq).map((r) => userName(r.user_id));
  let text = "Sent";
  if (readers.length) text = `Read by ${readers.join(", ")}`;
  else if (others.some((r) => r.delivered_seq >= last.seq)) text = "Delivered";
  node.after(el("p", { class: "receipt muted" }, text));
}

function renderTyping() {
  const typers = [...(state.typing.get(state.openRoom)?.keys() ?? [])]
    .filter((id) => id !== state.me.id)
    .map(userName);
  let text = "";
  if (typers.length === 1) text = `${typers[0]} is typing...`;
  else if (typers.length > 1) text = `${typers.join(", ")} are typing...`;
  $("#typing").textContent = text;
}

// ---- threads ----

async function openThread(root) {
  state.openThread = root.id;
  $("#thread").hidden = false;
  $("#chat").classList.add("with-thread");
  threadView.clear();
  threadView.upsert(root);
  const t = timeline(root.room_id);
  let after = 0;
  try {
    for (;;) {
      const page = await api.thread(root.room_id, root.id, after);
      for (const m of page.messages) t.put(m);
      await ensureUsers(page.messages.map((m) => m.sender_id));
      if (state.openThread !== root.id) return;
      for (const m of page.messages) threadView.upsert(m);
      if (!page.has_more || !page.messages.length) break;
      after = page.messages[page.messages.length - 1].seq;
    }
  } catch (e) {
    showError(e);
  }
  $("#thread-message").focus();
}

function closeThread() {
  state.openThread = null;
  $("#thread").hidden = true;
  $("#chat").classList.remove("with-thread");
  threadView?.clear();
}

// ---- sending ----

function setupComposers() {
  const input = $("#message");
  enterSends(input);
  enterSends($("#thread-message"));
  input.addEventListener("input", () => typing(input.value.trim() !== ""));
  $("#thread-message").addEventListener("input", (e) => typing(e.target.value.trim() !== ""));
  $("#composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const body = input.value.trim();
    if (!body || !state.openRoom) return;
    input.value = "";
    stopTyping();
    sendMessage({ room_id: state.openRoom, body });
  });
  $("#thread-composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const box = $("#thread-message");
    const body = box.value.trim();
    if (!body || !state.openThread) return;
    box.value = "";
    stopTyping();
    sendMessage({ room_id: state.openRoom, body, thread_id: state.openThread });
  });
  $("#file").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    e.target.value = "";
    if (!file || !state.openRoom) return;
    const roomId = state.openRoom;
    $("#composer-error").textContent = `Uploading ${file.name}...`;
    try {
      const upload = await api.upload(file);
      $("#composer-error").textContent = "";
      const body = input.value.trim();
      input.value = "";
      sendMessage({ room_id: roomId, body: body || undefined, attachment_id: upload.id }, `📎 ${file.name}`);
    } catch (err) {
      showError(err);
    }
  });
}

/** Shows the message at once as pending, then posts it; `label` stands in for a file. */
function sendMessage(fields, label) {
  const cid = clientId();
  const pending = {
    ...fields,
    request: fields,
    id: `pending:${cid}`,
    client_id: cid,
    pending: true,
    kind: "text",
    body: fields.body ?? label,
    sender_id: state.me.id,
    created_at: new Date().toISOString(),
    reactions: [],
  };
  show(pending);
  deliver(pending);
}

// Sent over HTTP rather than the socket: it works while the socket reconnects, and a retry
// with the same client_id can never store the message twice (API.md, Messages).
async function deliver(pending) {
  pending.failed = false;
  show(pending);
  try {
    const { body, thread_id, attachment_id } = pending.request;
    const message = await api.send(pending.room_id, {
      body,
      thread_id,
      attachment_id,
      client_id: pending.client_id,
    });
    onMessage(message);
  } catch (e) {
    pending.failed = true;
    show(pending);
    showError(e);
  }
}

function typing(active) {
  const roomId = state.openRoom;
  if (!roomId) return;
  const now = Date.now();
  if (active && (typingSent.roomId !== roomId || now - typingSent.at > TYPING_RENEW_MS)) {
    if (socket.send({ type: "typing", room_id: roomId, typing: true })) typingSent = { roomId, at: now };
  } else if (!active) {
    stopTyping();
  }
}

function stopTyping() {
  if (typingSent.roomId) socket.send({ type: "typing", room_id: typingSent.roomId, typing: false });
  typingSent = { roomId: null, at: 0 };
}

// ---- live events ----

function onEvent(frame) {
  switch (frame.type) {
    case "ready":
      return onReady(frame);
    case "message.created":
      return onMessage(frame.message);
    case "message.updated":
      return putMessage(frame.message);
    case "message.deleted":
      return deleted(frame);
    case "reaction.updated":
      return reacted(frame);
    case "receipt":
      return receipt(frame);
    case "typing":
      return typed(frame);
    case "presence":
      state.presence.set(frame.user_id, frame.status);
      renderRooms(openRoom);
      return renderHeader();
    case "member.joined":
    case "member.left":
    case "member.updated":
      return membersChanged(frame);
    case "room.updated":
      return roomUpdated(frame.room);
    case "room.deleted":
      return refreshRooms();
    case "synced":
      return synced(frame);
    case "error":
      return onSocketError(frame);
    default:
      return undefined;
  }
}

function onReady(frame) {
  state.me = frame.user;
  state.users.set(frame.user.id, frame.user);
  // Ask for whatever the loaded rooms missed while there was no socket (or before this one).
  const rooms = {};
  for (const [roomId, t] of state.timelines) {
    if (t.loaded && state.rooms.has(roomId)) rooms[roomId] = { seq: t.seq, rev: t.rev };
  }
  if (Object.keys(rooms).length) socket.send({ type: "sync", rooms });
  refreshRooms();
  if (state.openRoom) loadMembers(state.openRoom);
}

async function onMessage(message) {
  const room = state.rooms.get(message.room_id);
  if (!room) {
    refreshRooms();
    return;
  }
  const loaded = state.timelines.get(message.room_id)?.loaded;
  const fresh = loaded ? timeline(message.room_id).put(message) : true;
  if (message.sender_id === state.me.id && message.client_id) {
    mainView.remove(`pending:${message.client_id}`);
    threadView.remove(`pending:${message.client_id}`);
  }
  if (message.seq > room.last_seq) {
    room.last_seq = message.seq;
    room.last_message_at = message.created_at;
    room.last_message = message;
  }
  // Sending moves the sender's own read marker (API.md, Messages).
  if (message.sender_id === state.me.id && room.membership) {
    room.membership.read_seq = Math.max(room.membership.read_seq, message.seq);
  }
  if (fresh && message.thread_id) countReply(message);
  await ensureUsers([message.sender_id]);
  if (state.openRoom === message.room_id) {
    show(message);
    renderReceipt();
  }
  if (state.openRoom === message.room_id && document.visibilityState === "visible") {
    markRead(message.room_id);
  } else if (fresh && message.sender_id !== state.me.id) {
    const counts = state.unread.get(message.room_id) ?? { unread_count: 0, mention_count: 0 };
    counts.unread_count += 1;
    if (message.mentions.includes(state.me.id)) counts.mention_count += 1;
    state.unread.set(message.room_id, counts);
    socket.send({ type: "delivered", room_id: message.room_id, seq: message.seq });
    refreshUnread();
  }
  renderRooms(openRoom);
}

/** A new reply in a thread: its root, if loaded, counts one more. */
function countReply(reply) {
  const root = state.timelines.get(reply.room_id)?.get(reply.thread_id);
  if (!root) return;
  root.thread = {
    reply_count: (root.thread?.reply_count ?? 0) + 1,
    last_reply_at: reply.created_at,
  };
  show(root);
}

/** Shows a message wherever it belongs on screen: the main timeline, the open thread, or both. */
function show(message) {
  if (message.room_id !== state.openRoom) return;
  if (!message.thread_id) mainView.upsert(message);
  if (state.openThread && (message.id === state.openThread || message.thread_id === state.openThread)) {
    threadView.upsert(message);
  }
}

// Events carry reactions without `me` (API.md: the same bytes go to every receiver), so what
// the client knew of its own reactions is kept.
function keepMine(old, reactions) {
  return reactions.map((r) => ({
    ...r,
    me: r.me ?? old?.reactions?.find((o) => o.emoji === r.emoji)?.me ?? false,
  }));
}

function putMessage(message) {
  const old = state.timelines.get(message.room_id)?.get(message.id);
  // A change to a message older than what is loaded: paging back will read it as it is now.
  if (!old) return;
  const t = timeline(message.room_id);
  t.put({ ...message, reactions: keepMine(old, message.reactions), thread: message.thread ?? old?.thread });
  show(t.get(message.id));
}

function deleted({ room_id, message_id, rev }) {
  const t = state.timelines.get(room_id);
  const old = t?.get(message_id);
  if (old) {
    t.put({ ...old, deleted: true, body: null, attachment: null, reactions: [], rev: Math.max(rev, old.rev) });
    show(t.get(message_id));
    renderReceipt();
  }
  if (room_id !== state.openRoom) refreshUnread();
}

function reacted(frame) {
  const t = state.timelines.get(frame.room_id);
  const old = t?.get(frame.message_id);
  if (!old) return;
  const reactions = frame.reactions.map((r) => ({
    ...r,
    me:
      frame.user_id === state.me.id && r.emoji === frame.emoji
        ? frame.added
        : old.reactions.find((o) => o.emoji === r.emoji)?.me ?? false,
  }));
  t.put({ ...old, reactions, rev: Math.max(frame.rev, old.rev) });
  show(t.get(frame.message_id));
}

function receipt(frame) {
  if (!state.receipts.has(frame.room_id)) state.receipts.set(frame.room_id, new Map());
  state.receipts.get(frame.room_id).set(frame.user_id, frame);
  if (frame.room_id === state.openRoom) renderReceipt();
}

function typed({ room_id, user_id, typing: active }) {
  if (!state.typing.has(room_id)) state.typing.set(room_id, new Map());
  const typers = state.typing.get(room_id);
  clearTimeout(typers.get(user_id));
  if (active) {
    typers.set(
      user_id,
      setTimeout(() => typed({ room_id, user_id, typing: false }), TYPING_SHOWN_MS),
    );
  } else {
    typers.delete(user_id);
  }
  ensureUsers([user_id]).then(renderTyping);
}

function membersChanged(frame) {
  const userId = frame.user_id ?? frame.member.user.id;
  if (userId === state.me.id) {
    // Joined, left or changed role: the room list is the place that knows.
    refreshRooms();
  }
  if (frame.room_id === state.openRoom) loadMembers(frame.room_id);
}

function roomUpdated(room) {
  const known = state.rooms.get(room.id);
  if (!known) return;
  state.rooms.set(room.id, { ...room, membership: known.membership });
  if (room.id === state.openRoom) renderHeader();
  renderRooms(openRoom);
}

/** A `sync` that hit its cap of messages: the gap is closed by reading the newest page again. */
async function synced(frame) {
  for (const [roomId, result] of Object.entries(frame.rooms)) {
    if (result.complete) continue;
    state.timelines.delete(roomId);
    if (state.openRoom === roomId) openRoom(roomId);
  }
}

function onSocketError(frame) {
  // A sync of a room the user is no longer in: the room list catches up.
  if (frame.room_id) refreshRooms();
  else console.warn("chat socket:", frame.code, frame.message);
}

// ---- status ----

const STATUS_TEXT = {
  connecting: "Connecting...",
  online: "Connected",
  reconnecting: "Reconnecting...",
  offline: "Offline",
};

function showStatus(status) {
  const node = $("#status");
  node.className = `status ${status}`;
  node.textContent = STATUS_TEXT[status];
}

function showError(e) {
  // A server out of reach is what the connection status says already; every list is read
  // again on the next `ready`.
  if (e.code === "network") return;
  const node = $("#composer-error");
  const fields = Object.entries(e.details?.fields ?? {}).map(([field, why]) => `${field}: ${why}`);
  const text = fields.length ? `${e.message} (${fields.join("; ")})` : e.message;
  node.textContent = text;
  setTimeout(() => {
    if (node.textContent === text) node.textContent = "";
  }, 6000);
}
