// The room list of the sidebar: each room with its unread badge (mentions stand out), and for a
// direct room the other member's presence dot. Redrawn whole: it is short and cheap to build.

import { $, el } from "./dom.js";
import { roomTitle, sortedRooms, state } from "./state.js";

/** Redraws the room list; `open(roomId)` is called when one is picked. */
export function renderRooms(open) {
  // The open room is being read while the page is on screen: its count is about to be zero.
  const reading = (id) => id === state.openRoom && document.visibilityState === "visible";
  const items = sortedRooms().map((room) => {
    const counts = state.unread.get(room.id);
    const unread = reading(room.id) ? 0 : counts?.unread_count ?? 0;
    const mentions = counts?.mention_count ?? 0;
    const peer = state.peers.get(room.id);
    const title = roomTitle(room);
    const label = unread ? `${title}, ${unread} unread` : title;
    return el(
      "li",
      {},
      el(
        "button",
        {
          type: "button",
          class: `room-item${room.id === state.openRoom ? " current" : ""}${unread ? " has-unread" : ""}`,
          "aria-current": room.id === state.openRoom ? "true" : null,
          "aria-label": label,
          "data-room": room.id,
          onclick: () => open(room.id),
        },
        room.kind === "direct" ? presenceDot(peer) : el("span", { class: "hash", "aria-hidden": "true" }, "#"),
        el("span", { class: "room-title" }, title),
        unread
          ? el("span", { class: `badge${mentions ? " mentioned" : ""}`, "aria-hidden": "true" }, String(unread))
          : null,
      ),
    );
  });
  $("#rooms").replaceChildren(
    ...(items.length ? items : [el("li", { class: "muted empty" }, "No rooms yet.")]),
  );
  const total = [...state.rooms.values()]
    .filter((r) => !r.membership?.muted && !reading(r.id))
    .reduce((sum, r) => sum + (state.unread.get(r.id)?.unread_count ?? 0), 0);
  document.title = total ? `(${total}) chat` : "chat";
}

/** A dot for a user's presence, with its name for screen readers. */
export function presenceDot(userId) {
  const status = state.presence.get(userId) ?? "offline";
  return el("span", { class: `dot ${status}`, role: "img", "aria-label": status, title: status });
}
