// One message as an element: who and when, the body, an attachment, reactions, a thread's
// reply count and the message's own actions (react, reply in thread, edit, delete).

import { el, enterSends, size, when } from "./dom.js";
import { state, userName } from "./state.js";

const QUICK_REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "👀"];

// Images a browser shows inline; the server serves exactly these `inline` too (API.md, Uploads).
const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);

/**
 * The element of `message`. `actions` are the controller's: `react(message, emoji, on)`,
 * `edit(message, body)`, `remove(message)`, `openThread(message)`, `retry(message)`,
 * `imageUrl(attachment)` (a promise of an object URL) and `download(attachment)`.
 * In the thread panel (`inThread`) a message offers no thread of its own.
 */
export function messageNode(message, actions, { inThread = false } = {}) {
  const mine = message.sender_id === state.me.id;
  const classes = ["message"];
  if (mine) classes.push("mine");
  if (message.pending) classes.push("pending");
  if (message.failed) classes.push("failed");
  if (message.mentions?.includes(state.me.id)) classes.push("mention");
  const node = el("article", {
    class: classes.join(" "),
    "data-id": message.id,
    "data-sender": message.sender_id,
    "data-time": Date.parse(message.created_at),
  });
  if (!message.pending) node.dataset.seq = message.seq;

  node.append(
    el(
      "header",
      {},
      el("span", { class: "who" }, userName(message.sender_id)),
      " ",
      el("time", { datetime: message.created_at }, when(message.created_at)),
      message.edited_at && !message.deleted ? el("span", { class: "edited" }, " (edited)") : null,
    ),
  );

  if (message.deleted) {
    node.append(el("p", { class: "body deleted" }, "This message was deleted."));
    return node;
  }
  if (message.body) node.append(el("p", { class: "body" }, message.body));
  if (message.kind === "file") node.append(attachmentNode(message.attachment, actions));
  if (message.reactions?.length) node.append(reactionsNode(message, actions));
  if (!inThread && message.thread?.reply_count) {
    const n = message.thread.reply_count;
    node.append(
      el(
        "button",
        { class: "link thread-link", type: "button", onclick: () => actions.openThread(message) },
        n === 1 ? "1 reply" : `${n} replies`,
      ),
    );
  }
  if (message.failed) {
    node.append(
      el(
        "p",
        { class: "error" },
        "Not sent. ",
        el("button", { class: "link", type: "button", onclick: () => actions.retry(message) }, "Retry"),
      ),
    );
  }
  if (!message.pending) node.append(toolsNode(node, message, actions, { mine, inThread }));
  return node;
}

function attachmentNode(attachment, actions) {
  if (!attachment) return el("p", { class: "muted" }, "The file was removed.");
  if (IMAGE_TYPES.has(attachment.content_type)) {
    const img = el("img", { alt: attachment.name, class: "image" });
    actions.imageUrl(attachment).then(
      (url) => {
        img.src = url;
      },
      () => img.replaceWith(el("p", { class: "muted" }, `${attachment.name} cannot be shown.`)),
    );
    return el("figure", { class: "attachment" }, img, el("figcaption", {}, attachment.name));
  }
  return el(
    "button",
    { class: "attachment file", type: "button", onclick: () => actions.download(attachment) },
    `⬇ ${attachment.name} (${size(attachment.size)})`,
  );
}

function reactionsNode(message, actions) {
  return el(
    "div",
    { class: "reactions" },
    message.reactions.map((r) =>
      el(
        "button",
        {
          class: "reaction",
          type: "button",
          "aria-pressed": String(Boolean(r.me)),
          title: r.me ? "Take your reaction back" : `React with ${r.emoji}`,
          onclick: () => actions.react(message, r.emoji, !r.me),
        },
        `${r.emoji} ${r.count}`,
      ),
    ),
  );
}

function toolsNode(node, message, actions, { mine, inThread }) {
  const role = state.rooms.get(message.room_id)?.membership?.role;
  const moderator = role === "owner" || role === "admin";
  const palette = el(
    "div",
    { class: "palette", hidden: true },
    QUICK_REACTIONS.map((emoji) =>
      el(
        "button",
        {
          type: "button",
          "aria-label": `React with ${emoji}`,
          onclick: () => {
            palette.hidden = true;
            const already = message.reactions?.find((r) => r.emoji === emoji)?.me;
            actions.react(message, emoji, !already);
          },
        },
        emoji,
      ),
    ),
  );
  const tool = (label, onclick) => el("button", { type: "button", class: "tool", onclick }, label);
  return el(
    "div",
    { class: "tools" },
    tool("React", () => {
      palette.hidden = !palette.hidden;
    }),
    // A thread is one level deep: a reply in a thread cannot start one (API.md, Messages).
    !inThread && !message.thread_id ? tool("Reply in thread", () => actions.openThread(message)) : null,
    mine && message.body ? tool("Edit", () => startEditing(node, message, actions)) : null,
    mine || moderator
      ? tool("Delete", () => {
          if (confirm("Delete this message for everyone?")) actions.remove(message);
        })
      : null,
    palette,
  );
}

function startEditing(node, message, actions) {
  const body = node.querySelector(".body");
  const input = el("textarea", { class: "edit", "aria-label": "Edit message", rows: 2 });
  input.value = message.body;
  const form = el(
    "form",
    {
      class: "editing",
      onsubmit: (e) => {
        e.preventDefault();
        const text = input.value.trim();
        if (text && text !== message.body) actions.edit(message, text);
        else form.replaceWith(body);
      },
    },
    input,
    el("span", { class: "muted hint" }, "Enter to save, Escape to cancel"),
  );
  enterSends(input);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Escape") form.replaceWith(body);
  });
  body.replaceWith(form);
  input.focus();
}
