// A list of messages kept in seq order, keyed by message id, so a live event replaces or
// inserts one element instead of redrawing the list (which would lose scroll position and an
// edit in progress). The room's main timeline and the thread panel are both one of these.

import { messageNode } from "./message-view.js";

// Messages of one sender this close together share the first one's name and time.
const GROUP_MS = 5 * 60 * 1000;

const isMessage = (node) => node?.classList.contains("message");

function neighbour(node, direction) {
  let n = node[direction];
  while (n && !isMessage(n)) n = n[direction];
  return n;
}

/** Whether `node` continues the message before it (same sender, a moment later). */
function continues(node) {
  const before = neighbour(node, "previousElementSibling");
  return (
    before !== null &&
    before.dataset.sender === node.dataset.sender &&
    Number(node.dataset.time) - Number(before.dataset.time) < GROUP_MS
  );
}

function regroup(...nodes) {
  for (const node of nodes) if (node) node.classList.toggle("continued", continues(node));
}

export class TimelineView {
  /**
   * @param {HTMLElement} container the scrolling element
   * @param {object} actions the controller's message actions (see message-view.js)
   * @param {object} options `{inThread}` for the thread panel
   */
  constructor(container, actions, options = {}) {
    this.container = container;
    this.actions = actions;
    this.options = options;
    this.nodes = new Map();
  }

  /** Empties the list, leaving `placeholder` (an element) if given. */
  clear(placeholder) {
    this.nodes.clear();
    this.container.replaceChildren(...(placeholder ? [placeholder] : []));
  }

  /** Shows `message`: replaces its element if shown, else inserts it by seq (pending last). */
  upsert(message) {
    const stick = this.atBottom();
    const node = messageNode(message, this.actions, this.options);
    const old = this.nodes.get(message.id);
    this.nodes.set(message.id, node);
    if (old) {
      old.replaceWith(node);
    } else {
      this.container.querySelector(":scope > .empty")?.remove();
      this.container.insertBefore(node, this.nodeAfter(message));
    }
    regroup(node, neighbour(node, "nextElementSibling"));
    if (stick) this.scrollToBottom();
  }

  /** Takes a message's element out (a pending send that became a real message). */
  remove(id) {
    const node = this.nodes.get(id);
    if (!node) return;
    const next = neighbour(node, "nextElementSibling");
    node.remove();
    this.nodes.delete(id);
    regroup(next);
  }

  has(id) {
    return this.nodes.has(id);
  }

  /** The first element that belongs after `message`: the first with a higher seq or pending. */
  nodeAfter(message) {
    if (message.pending) return null;
    for (const node of this.container.querySelectorAll(":scope > .message")) {
      if (!node.dataset.seq || Number(node.dataset.seq) > message.seq) return node;
    }
    return null;
  }

  atBottom() {
    const c = this.container;
    return c.scrollHeight - c.scrollTop - c.clientHeight < 80;
  }

  scrollToBottom() {
    this.container.scrollTop = this.container.scrollHeight;
  }
}
