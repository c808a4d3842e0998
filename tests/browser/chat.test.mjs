// End-to-end: examples/chat_server's page (GET /) in headless Chromium.
//
//   cargo build --release --example chat_server
//   (cd tests/browser && npm ci && node --test chat.test.mjs)
//
// Two pages join the chat, each sends a message and sees the other's, one
// closes and the other sees `user_1 left`; a screenshot of the survivor goes
// to tutorials/browser-chat.png (the README shows it). Then the server is
// killed and restarted on the same port, and the page must reconnect by
// itself (exponential backoff in the page's script).
//
// Environment: CHAT_SERVER (the binary; default target/release/examples/
// chat_server), CHROMIUM (default /usr/bin/chromium), SCREENSHOT (where to
// write the picture).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServer } from "../interop/server.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const serverBin = process.env.CHAT_SERVER ?? path.join(root, "target/release/examples/chat_server");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const screenshot = process.env.SCREENSHOT ?? path.join(root, "tutorials/browser-chat.png");
// chat_server logs "chat on ws://127.0.0.1:PORT/chat" when it listens.
const listening = /chat on ws:\/\/127\.0\.0\.1:(\d+)\/chat/;

// These flags keep Chromium from reaching for the network at start-up
// (there is none here but loopback) and make it run as root in CI.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Resolves once the page's log has a line whose raw text is `raw`. */
function line(page, raw) {
  return page.locator(`#log li[data-raw="${raw}"]`).waitFor();
}

async function say(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

async function logOf(page) {
  return page.locator("#log li").evaluateAll((lis) => lis.map((li) => li.dataset.raw));
}

test("two browser pages chat through chat_server, and a page reconnects after a restart", { timeout: 120_000 }, async () => {
  let server = await startServer(serverBin, ["--port", "0"], listening, { RUST_LOG: "info" });
  const port = server.port;
  const base = `http://127.0.0.1:${port}/`;
  const profile = mkdtempSync(path.join(tmpdir(), "hvws-chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 640, height: 360 },
  });
  browser.setDefaultTimeout(15_000);
  try {
    const alice = await browser.newPage();
    await alice.goto(base);
    await alice.locator("#status[data-state=online]").waitFor();
    assert.equal(await alice.textContent("#nick"), "user_1");

    const bob = await browser.newPage();
    await bob.goto(base);
    await bob.locator("#status[data-state=online]").waitFor();
    assert.equal(await bob.textContent("#nick"), "user_2");
    await line(alice, "user_2 joined");

    await say(alice, "hello from the first tab");
    await line(alice, "echo: hello from the first tab");
    await line(bob, "user_1: hello from the first tab");

    await say(bob, "hi! the second tab here");
    await line(bob, "echo: hi! the second tab here");
    await line(alice, "user_2: hi! the second tab here");

    await alice.close(); // the tab goes away; its WebSocket with it
    await line(bob, "user_1 left");
    const bobLog = await logOf(bob);
    console.log("second page's log:", JSON.stringify(bobLog));
    assert.deepEqual(bobLog, [
      "welcome user_2",
      "user_1: hello from the first tab",
      "echo: hi! the second tab here",
      "user_1 left",
    ]);
    await bob.screenshot({ path: screenshot });
    console.log("screenshot:", path.relative(root, screenshot));

    // Messages are shown as text, never parsed as HTML.
    await say(bob, "<b>not bold</b>");
    await line(bob, "echo: <b>not bold</b>");
    assert.equal(await bob.locator("#log li b").count(), 1); // only user_1's name

    // The server dies; the page notices, backs off, and comes back by itself.
    await server.stop();
    await bob.locator("#status[data-state=offline]").waitFor();
    console.log("while the server is down:", await bob.textContent("#status"));
    server = await startServer(serverBin, ["--port", String(port)], listening, { RUST_LOG: "info" });
    await bob.locator("#status[data-state=online]").waitFor();
    assert.equal(await bob.textContent("#nick"), "user_1"); // a new server counts from 1
    await say(bob, "back again");
    await line(bob, "echo: back again");
  } finally {
    await browser.close();
    await server.stop();
    rmSync(profile, { recursive: true, force: true });
  }
});
