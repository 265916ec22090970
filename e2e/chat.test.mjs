// Two people chat in the web client, each in a browser context of their own (Debian's chromium
// driven by playwright-core), against a chat-server this test starts on a free port with a
// fresh data directory (the binary CHAT_SERVER_BIN names, else target/debug/chat-server). Every
// check of the other person's screen waits a bounded time for an update that can only arrive
// over the live connection: neither page reloads.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..");
const serverBinary = process.env.CHAT_SERVER_BIN ?? path.join(repo, "target", "debug", "chat-server");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const artifacts = path.join(here, "artifacts");

/** How long an update may take to reach the other browser. */
const LIVE_MS = 5_000;

// A 24x24 PNG, small enough to write here and a real image for the server's type check.
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAABgAAAAYCAIAAABvFaqvAAAAH0lEQVR4nGPQz79HFcQwatCoQaMGjRo0atCoQQNvEADcbFcuWlZWDAAAAABJRU5ErkJggg==",
  "base64",
);

let server;
let dataDir;
let base;
let browser;
let alice;
let bob;
const pageErrors = [];

/** Starts chat-server on a free port and resolves to its base URL once it listens. */
function startServer() {
  dataDir = mkdtempSync(path.join(tmpdir(), "chat-e2e-"));
  server = spawn(serverBinary, [], {
    env: { ...process.env, CHAT_ADDR: "127.0.0.1:0", CHAT_DATA_DIR: dataDir, CHAT_LOG: "warn,chat_server::cli=info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("chat-server did not start within 30 s")), 30_000);
    const scan = (chunk) => {
      const found = /listening on (http:\/\/[0-9.:]+)/.exec(chunk.toString());
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    };
    server.stdout.on("data", scan);
    server.stderr.on("data", scan);
    server.on("error", reject);
    server.on("exit", (code) => reject(new Error(`chat-server exited with ${code}`)));
  });
}

/** A person: a browser context of their own with one page, signed up through the page. */
async function person(username) {
  const context = await browser.newContext({ viewport: { width: 1180, height: 760 } });
  const page = await context.newPage();
  // Clicks and fills wait for their element too: a step that cannot happen fails soon.
  page.setDefaultTimeout(2 * LIVE_MS);
  page.on("pageerror", (e) => pageErrors.push(`${username}: ${e.message}`));
  // Deleting asks for confirmation; the person says yes.
  page.on("dialog", (dialog) => dialog.accept());
  await page.goto(base);
  await page.fill("#signin input[name=username]", username);
  await page.fill("#signin input[name=password]", `${username} password`);
  await page.click("text=Create account");
  await page.locator("#status", { hasText: "Connected" }).waitFor({ timeout: LIVE_MS });
  return { name: username, context, page };
}

/** The message in `who`'s open conversation (or thread) whose text contains `text`. */
const message = (who, text, scope = "#timeline") => who.page.locator(`${scope} .message`, { hasText: text });

/** Waits until `who` sees `text` in a message, without any reload. */
const sees = (who, text, scope) => message(who, text, scope).waitFor({ timeout: LIVE_MS });

async function send(who, text) {
  await who.page.fill("#message", text);
  await who.page.press("#message", "Enter");
  await sees(who, text);
}

/** Clicks one of a message's tools (they show on hover, like in any chat). */
async function tool(who, text, name) {
  const node = message(who, text).first();
  await node.hover();
  await node.getByRole("button", { name, exact: true }).click();
}

before(async () => {
  base = await startServer();
  browser = await chromium.launch({
    executablePath: chromiumPath,
    // Without the background-networking switches chromium reaches for Google's services, and
    // on a closed network its connections are refused; the rest keep the run quiet and lean.
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  alice = await person("alice");
  bob = await person("bob");
});

after(async () => {
  mkdirSync(artifacts, { recursive: true });
  // The pictures are taken whatever happened: on a failure they show where it stopped.
  if (bob) await bob.page.screenshot({ path: path.join(artifacts, "chat.png") });
  if (alice) await alice.page.screenshot({ path: path.join(artifacts, "chat-alice.png") });
  await browser?.close();
  server?.removeAllListeners("exit");
  server?.kill();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("alice creates a public room and bob joins it from the directory", async () => {
  await alice.page.click("text=New room");
  await alice.page.fill("#form-room input[name=name]", "lobby");
  await alice.page.fill("#form-room input[name=topic]", "Say hi");
  await alice.page.check("#form-room input[name=public]");
  await alice.page.click("#form-room button[value=create]");
  await alice.page.locator("#room-name", { hasText: "lobby" }).waitFor();

  await bob.page.click("text=Browse");
  await bob.page.click("text=Join lobby");
  await bob.page.locator("#room-name", { hasText: "lobby" }).waitFor();
  await alice.page.locator("#members-count", { hasText: "2 members" }).waitFor({ timeout: LIVE_MS });
});

test("bob sees alice typing, then her message, live", async () => {
  await alice.page.fill("#message", "hello b");
  // `fill` sets the value at once; typing one key fires the input events a person would.
  await alice.page.type("#message", "o");
  await bob.page.locator("#typing", { hasText: "alice is typing" }).waitFor({ timeout: LIVE_MS });
  await alice.page.type("#message", "b");
  await alice.page.press("#message", "Enter");
  await sees(bob, "hello bob");
  await bob.page.locator("#typing", { hasText: /^$/ }).waitFor({ timeout: LIVE_MS });
});

test("alice sees that bob read her message", async () => {
  await alice.page.locator("#timeline .receipt", { hasText: "Read by bob" }).waitFor({ timeout: LIVE_MS });
});

test("bob answers and alice sees it", async () => {
  await send(bob, "hi alice, nice room");
  await sees(alice, "hi alice, nice room");
});

test("an edit reaches the other person", async () => {
  await tool(alice, "hello bob", "Edit");
  await alice.page.fill("#timeline .message textarea.edit", "hello bob, welcome");
  await alice.page.press("#timeline .message textarea.edit", "Enter");
  await sees(bob, "hello bob, welcome");
  await message(bob, "hello bob, welcome").locator(".edited").waitFor({ timeout: LIVE_MS });
});

test("a reaction reaches the other person", async () => {
  await tool(bob, "hello bob, welcome", "React");
  await message(bob, "hello bob, welcome").getByRole("button", { name: "React with 👍" }).click();
  await message(alice, "hello bob, welcome").locator(".reaction", { hasText: "👍 1" }).waitFor({ timeout: LIVE_MS });
  const mine = message(bob, "hello bob, welcome").locator(".reaction", { hasText: "👍 1" });
  await mine.waitFor({ timeout: LIVE_MS });
  assert.equal(await mine.getAttribute("aria-pressed"), "true");
});

test("a reply in a thread shows on the root and in the thread", async () => {
  await tool(bob, "hello bob, welcome", "Reply in thread");
  await bob.page.fill("#thread-message", "replying in a thread");
  await bob.page.press("#thread-message", "Enter");
  await sees(bob, "replying in a thread", "#thread-messages");
  const replies = message(alice, "hello bob, welcome").getByRole("button", { name: "1 reply" });
  await replies.waitFor({ timeout: LIVE_MS });
  await replies.click();
  await sees(alice, "replying in a thread", "#thread-messages");
  // Thread replies stay out of the main timeline.
  assert.equal(await message(alice, "replying in a thread").count(), 0);
  await alice.page.click("#thread-close");
});

test("an uploaded image reaches the other person", async () => {
  await alice.page.setInputFiles("#file", { name: "blue.png", mimeType: "image/png", buffer: PNG });
  const image = bob.page.locator("#timeline .message img[alt='blue.png']");
  await image.waitFor({ timeout: LIVE_MS });
  await bob.page.waitForFunction(
    () => document.querySelector("#timeline img[alt='blue.png']")?.naturalWidth === 24,
    null,
    { timeout: LIVE_MS },
  );
});

test("a deletion reaches the other person", async () => {
  await send(alice, "oops, wrong room");
  await sees(bob, "oops, wrong room");
  await tool(alice, "oops, wrong room", "Delete");
  await message(alice, "This message was deleted.").waitFor({ timeout: LIVE_MS });
  await message(bob, "This message was deleted.").waitFor({ timeout: LIVE_MS });
  assert.equal(await message(bob, "oops, wrong room").count(), 0);
});

test("a direct message shows as unread for bob, with alice online", async () => {
  await alice.page.click("text=Message someone");
  await alice.page.fill("#form-dm input[name=q]", "bob");
  await alice.page.click("#form-dm button[value=open]");
  await alice.page.locator("#room-name", { hasText: "bob" }).waitFor();
  await send(alice, "psst, a private word");

  const dm = bob.page.getByRole("button", { name: "alice, 1 unread" });
  await dm.waitFor({ timeout: LIVE_MS });
  await dm.locator(".dot.online").waitFor();
  await dm.click();
  await sees(bob, "psst, a private word");
  await bob.page.getByRole("button", { name: "alice", exact: true }).waitFor({ timeout: LIVE_MS });
});

test("bob misses nothing while his network is down", async () => {
  await bob.context.setOffline(true);
  await bob.page.locator("#status", { hasText: "Offline" }).waitFor({ timeout: LIVE_MS });
  await send(alice, "sent while you were away");
  // Long enough for a live event to have arrived, had the socket still been open.
  await bob.page.waitForTimeout(1_000);
  assert.equal(await message(bob, "sent while you were away").count(), 0);

  await bob.context.setOffline(false);
  await bob.page.locator("#status", { hasText: "Connected" }).waitFor({ timeout: LIVE_MS });
  await sees(bob, "sent while you were away");
});

test("a message in another room shows as a badge", async () => {
  await alice.page.click("#rooms >> text=lobby");
  await send(alice, "back in the lobby");
  await bob.page.getByRole("button", { name: "lobby, 1 unread" }).waitFor({ timeout: LIVE_MS });
  assert.deepEqual(pageErrors, [], "no script error on either page");
});

test("the API reference at /docs renders every operation, from this server alone", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  const elsewhere = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("request", (r) => {
    if (!r.url().startsWith(base)) elsewhere.push(r.url());
  });
  const spec = await (await page.request.get(`${base}/openapi.json`)).json();
  const methods = ["get", "put", "post", "delete", "patch"];
  const operations = Object.values(spec.paths).flatMap((item) => methods.filter((m) => m in item)).length;
  await page.goto(`${base}/docs`);
  await page.locator("details.op").first().waitFor({ timeout: LIVE_MS });
  assert.equal(await page.locator("details.op").count(), operations, "one entry per operation");
  await page.locator("details.op", { hasText: "/v1/auth/login" }).first().click();
  await page.getByText("LoginResult").first().waitFor({ timeout: LIVE_MS });
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: path.join(artifacts, "docs.png") });
  assert.deepEqual(errors, [], "no script error");
  assert.deepEqual(elsewhere, [], "nothing is fetched from another origin");
  await context.close();
});
