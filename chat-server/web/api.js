// The HTTP side of the chat API (API.md): every call goes through `request`, which adds the
// access token, refreshes it once when the server answers 401, and turns error bodies into
// `ApiError`s. The session lives in sessionStorage, so each browser tab (or window) can be
// signed in as a different user, and closing the tab forgets it.

const STORAGE_KEY = "chat.session";

/** An error answer of the API: its status, `code` and `details` (API.md, Conventions). */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `request failed (${status})`);
    this.status = status;
    this.code = body?.code || "network";
    this.details = body?.details;
  }
}

let session = readSession();
let refreshing = null;

/** Called when the session ends without the user asking (a refused refresh, a revoked token). */
export const hooks = { signedOut: () => {} };

function readSession() {
  try {
    return JSON.parse(sessionStorage.getItem(STORAGE_KEY));
  } catch {
    return null;
  }
}

function keep(login) {
  session = {
    access_token: login.access_token,
    refresh_token: login.refresh_token,
    user: login.user,
  };
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
  return session;
}

/** The signed-in user, or null. */
export function me() {
  return session?.user ?? null;
}

/** Forgets the session locally. */
export function forget() {
  session = null;
  sessionStorage.removeItem(STORAGE_KEY);
}

// Refresh tokens are single-use: two refreshes racing with one token look like a stolen token
// to the server, which then signs the session out. So every caller waits on the same refresh.
function refresh() {
  refreshing ??= (async () => {
    const res = await fetch("/v1/auth/refresh", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ refresh_token: session.refresh_token }),
    });
    if (!res.ok) return false;
    keep(await res.json());
    return true;
  })()
    .catch(() => false)
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

async function request(method, path, { json, form, raw = false } = {}, retried = false) {
  const headers = {};
  if (session) headers.authorization = `Bearer ${session.access_token}`;
  let body = form;
  if (json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(json);
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body });
  } catch {
    throw new ApiError(0, { code: "network", message: "The server cannot be reached." });
  }
  if (res.status === 401 && session) {
    if (!retried && (await refresh())) return request(method, path, { json, form, raw }, true);
    forget();
    hooks.signedOut();
  }
  if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
  if (res.status === 204) return null;
  return raw ? res.blob() : res.json();
}

const id = encodeURIComponent;

export async function register(username, password) {
  return request("POST", "/v1/auth/register", { json: { username, password } });
}

export async function login(username, password) {
  return keep(await request("POST", "/v1/auth/login", { json: { login: username, password } }));
}

export async function logout() {
  try {
    await request("POST", "/v1/auth/logout");
  } finally {
    forget();
  }
}

export const wsTicket = () => request("POST", "/v1/ws/ticket");

/** All of the caller's rooms: the list is bounded by CHAT_MAX_ROOMS_PER_USER, so follow it. */
export async function myRooms() {
  const rooms = [];
  let cursor = null;
  do {
    const query = cursor ? `&cursor=${id(cursor)}` : "";
    const page = await request("GET", `/v1/rooms?limit=100${query}`);
    rooms.push(...page.rooms);
    cursor = page.next_cursor;
  } while (cursor);
  return rooms;
}

export const room = (roomId) => request("GET", `/v1/rooms/${id(roomId)}`);
export const publicRooms = (q) => request("GET", `/v1/rooms/public?limit=50&q=${id(q)}`);
export const createRoom = (fields) => request("POST", "/v1/rooms", { json: fields });
export const joinRoom = (roomId) => request("POST", `/v1/rooms/${id(roomId)}/join`);
export const members = (roomId) => request("GET", `/v1/rooms/${id(roomId)}/members?limit=100`);
export const openDirect = (userId) => request("POST", "/v1/dms", { json: { user_id: userId } });
export const unread = () => request("GET", "/v1/unread");
export const receipts = (roomId) => request("GET", `/v1/rooms/${id(roomId)}/receipts?limit=100`);
export const user = (userId) => request("GET", `/v1/users/${id(userId)}`);
export const findUsers = (q) => request("GET", `/v1/users?limit=10&q=${id(q)}`);
export const presence = (userIds) =>
  request("GET", `/v1/presence?user_ids=${userIds.map(id).join(",")}`);

/** The newest page of a room's history, or the page before `before`. */
export function history(roomId, before) {
  const query = before ? `&before=${before}` : "";
  return request("GET", `/v1/rooms/${id(roomId)}/messages?limit=50${query}`);
}

/** The replies of a thread with seq above `after`, oldest first. */
export const thread = (roomId, messageId, after) =>
  request("GET", `/v1/rooms/${id(roomId)}/messages/${id(messageId)}/thread?limit=100&after=${after}`);

export const send = (roomId, fields) =>
  request("POST", `/v1/rooms/${id(roomId)}/messages`, { json: fields });

export const edit = (roomId, messageId, body) =>
  request("PATCH", `/v1/rooms/${id(roomId)}/messages/${id(messageId)}`, { json: { body } });

export const remove = (roomId, messageId) =>
  request("DELETE", `/v1/rooms/${id(roomId)}/messages/${id(messageId)}`);

export function react(roomId, messageId, emoji, on) {
  const path = `/v1/rooms/${id(roomId)}/messages/${id(messageId)}/reactions/${id(emoji)}`;
  return request(on ? "PUT" : "DELETE", path);
}

export const markRead = (roomId, seq) =>
  request("POST", `/v1/rooms/${id(roomId)}/read`, { json: { seq } });

export function upload(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  return request("POST", "/v1/uploads", { form });
}

/** An upload's bytes, fetched with the token (so no token or signed URL lands in `src`). */
export const uploadBytes = (uploadId) =>
  request("GET", `/v1/uploads/${id(uploadId)}/content`, { raw: true });

/** A short-lived signed URL of an upload, for a download the browser streams to disk. */
export const uploadLink = (uploadId) => request("GET", `/v1/uploads/${id(uploadId)}/link`);
