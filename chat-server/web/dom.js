// Small DOM helpers. Every piece of user content enters the page as text (`textContent` or
// text nodes), never as HTML, so a message cannot inject markup or script.

/** `el("button", {class: "x", onclick}, "text", child)`: an element with attributes and children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

export const $ = (selector) => document.querySelector(selector);

const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const day = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** A time of day, or the date too when it is not today. */
export function when(rfc3339) {
  const date = new Date(rfc3339);
  return date.toDateString() === new Date().toDateString() ? clock.format(date) : day.format(date);
}

/** A byte count for people. */
export function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * A `client_id` for a send. Built from getRandomValues rather than randomUUID, which browsers
 * offer only on secure origins (a server reached by its LAN address over plain HTTP is not one).
 */
export function clientId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A textarea where Enter submits its form and Shift+Enter starts a new line. */
export function enterSends(textarea) {
  textarea.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      textarea.form.requestSubmit();
    }
  });
}
