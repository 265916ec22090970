// The one live connection of API.md's WebSocket section. It opens with a single-use ticket
// (a browser cannot set headers on a WebSocket, and a ticket keeps the token out of URLs),
// reconnects with backoff whenever it drops, and reports its status. What was missed while
// it was down is the caller's to ask for with `sync` once `ready` arrives.

import * as api from "./api.js";

const MAX_BACKOFF_MS = 30_000;
// The server pings idle sockets itself, but a browser cannot see those pings: a connection
// whose network silently died would look open for minutes. So the client pings when it has
// heard nothing for a while, and gives the socket up when even that gets no answer.
const QUIET_MS = 20_000;
const DEAD_MS = 35_000;

export class LiveSocket {
  /**
   * @param {object} handlers `event(frame)` for every server frame, `status(state)` with
   *   state `connecting` | `online` | `reconnecting` | `offline`, and `signedOut()`.
   */
  constructor(handlers) {
    this.handlers = handlers;
    this.ws = null;
    this.attempts = 0;
    this.retryTimer = null;
    this.heartbeat = null;
    this.lastHeard = 0;
    this.stopped = true;
    this.opening = false;
    this.onOnline = () => this.connectNow();
    // The browser knows before any timeout that the network went away.
    this.onOffline = () => this.drop("offline");
  }

  start() {
    this.stopped = false;
    addEventListener("online", this.onOnline);
    addEventListener("offline", this.onOffline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    removeEventListener("online", this.onOnline);
    removeEventListener("offline", this.onOffline);
    clearTimeout(this.retryTimer);
    clearInterval(this.heartbeat);
    this.ws?.close(1000, "bye");
    this.ws = null;
  }

  /** Sends a frame if the socket is open; returns whether it was sent. */
  send(frame) {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  connectNow() {
    if (this.stopped || this.ws || this.opening) return;
    clearTimeout(this.retryTimer);
    this.attempts = 0;
    this.connect();
  }

  async connect() {
    this.handlers.status("connecting");
    this.opening = true;
    let ticket;
    try {
      ({ ticket } = await api.wsTicket());
    } catch (e) {
      this.opening = false;
      if (e.status !== 401) this.retry(); // On 401 api.js has signed the session out already.
      return;
    }
    this.opening = false;
    if (this.stopped) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/v1/ws?ticket=${encodeURIComponent(ticket)}`);
    this.ws = ws;
    ws.onmessage = (e) => {
      this.lastHeard = Date.now();
      let frame;
      try {
        frame = JSON.parse(e.data);
      } catch {
        return;
      }
      if (frame.type === "ready") {
        this.attempts = 0;
        this.handlers.status("online");
      }
      this.handlers.event(frame);
    };
    ws.onopen = () => {
      this.lastHeard = Date.now();
      clearInterval(this.heartbeat);
      this.heartbeat = setInterval(() => this.checkAlive(), QUIET_MS / 2);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.heartbeat);
      if (e.code === 4001) {
        this.stop();
        this.handlers.signedOut();
      } else if (!this.stopped) {
        this.retry();
      }
    };
  }

  checkAlive() {
    const quiet = Date.now() - this.lastHeard;
    if (quiet > DEAD_MS) this.drop("no answer");
    else if (quiet > QUIET_MS) this.send({ type: "ping" });
  }

  // Gives the socket up at once: on a dead network its close handshake could take minutes.
  drop(reason) {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    clearInterval(this.heartbeat);
    ws.close(4000, reason);
    this.retry();
  }

  retry() {
    if (this.stopped) return;
    if (!navigator.onLine) {
      // Nothing to try until the browser is back online (`online` reconnects at once).
      this.handlers.status("offline");
      return;
    }
    // Exponential backoff with jitter, so a restarted server is not hit by every client at once.
    const base = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** this.attempts);
    const delay = Math.round(base * (0.5 + Math.random() / 2));
    this.attempts += 1;
    this.handlers.status("reconnecting");
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }
}
