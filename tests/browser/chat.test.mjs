// End-to-end: examples/chat_server's page (GET /) in headless Chromium.
//
//   cargo build --release --features tls --example chat_server --example gen_test_certs
//   (cd tests/browser && npm ci && node --test chat.test.mjs)
//
// Two pages join the chat, each sends a message and sees the other's, one
// closes and the other sees `user_1 left`; a screenshot of the survivor goes
// to tutorials/browser-chat.png (the README shows it). Then the server is
// killed and restarted on the same port, and the page must reconnect by
// itself (exponential backoff in the page's script).
//
// The same conversation runs again over https/wss, with chat_server given
// a test certificate (--tls-cert/--tls-key). Chromium trusts that one
// certificate by the SHA-256 of its public key
// (--ignore-certificate-errors-spki-list), and is first shown to refuse the
// page without it. That run takes no screenshot.
//
// Environment: CHAT_SERVER (the binary; default target/release/examples/
// chat_server), CHROMIUM (default /usr/bin/chromium), SCREENSHOT (where to
// write the picture), TLS_CERTS (a directory with cert.pem and key.pem;
// otherwise examples/gen_test_certs makes them in a temporary one).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate, createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServer } from "../interop/server.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const serverBin = process.env.CHAT_SERVER ?? path.join(root, "target/release/examples/chat_server");
const certTool = path.join(path.dirname(serverBin), "gen_test_certs");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const screenshot = process.env.SCREENSHOT ?? path.join(root, "tutorials/browser-chat.png");
// chat_server logs "chat on ws://127.0.0.1:PORT/chat" when it listens, and
// "chat on wss://..." with a certificate.
const listening = /chat on ws:\/\/127\.0\.0\.1:(\d+)\/chat/;
const listeningTls = /chat on wss:\/\/127\.0\.0\.1:(\d+)\/chat/;

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

/** Chromium with a fresh profile (removed by `close()`), `extraArgs` added. */
async function launch(extraArgs = []) {
  const profile = mkdtempSync(path.join(tmpdir(), "hvws-chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: [...CHROMIUM_ARGS, ...extraArgs],
    viewport: { width: 640, height: 360 },
  });
  browser.setDefaultTimeout(15_000);
  return {
    browser,
    close: async () => {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Two pages chat through the server at `base` (a fresh one, so the pages
 * are user_1 and user_2) until the first one closes; returns the second,
 * whose log has been checked. `onPage` sees each page before it loads.
 */
async function conversation(browser, base, onPage = () => {}) {
  const alice = await browser.newPage();
  onPage(alice);
  await alice.goto(base);
  await alice.locator("#status[data-state=online]").waitFor();
  assert.equal(await alice.textContent("#nick"), "user_1");

  const bob = await browser.newPage();
  onPage(bob);
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
  return bob;
}

test("two browser pages chat through chat_server, and a page reconnects after a restart", { timeout: 120_000 }, async () => {
  let server = await startServer(serverBin, ["--port", "0"], listening, { RUST_LOG: "info" });
  const port = server.port;
  const base = `http://127.0.0.1:${port}/`;
  const { browser, close } = await launch();
  try {
    const bob = await conversation(browser, base);
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
    await close();
    await server.stop();
  }
});

/** The base64 SHA-256 of the certificate's SubjectPublicKeyInfo (DER), as
 * --ignore-certificate-errors-spki-list takes it. */
function spkiHash(certPem) {
  const spki = new X509Certificate(certPem).publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest("base64");
}

test("the same chat over https/wss, Chromium trusting the test certificate", { timeout: 120_000 }, async () => {
  let certs = process.env.TLS_CERTS;
  const madeCerts = !certs;
  if (madeCerts) {
    certs = mkdtempSync(path.join(tmpdir(), "hvws-certs-"));
    execFileSync(certTool, ["--out", certs], { timeout: 30_000 });
  }
  const cert = path.join(certs, "cert.pem");
  const tlsArgs = ["--tls-cert", cert, "--tls-key", path.join(certs, "key.pem")];
  const server = await startServer(serverBin, ["--port", "0", ...tlsArgs], listeningTls, { RUST_LOG: "info" });
  const base = `https://127.0.0.1:${server.port}/`;
  let session = null;
  try {
    // Without being told, Chromium refuses the page: the certificate is
    // really checked, and what follows passes because of the flag.
    session = await launch();
    const page = await session.browser.newPage();
    await assert.rejects(page.goto(base), /ERR_CERT_AUTHORITY_INVALID/);
    await session.close();
    session = null;

    const spki = spkiHash(readFileSync(cert));
    console.log("trusting the certificate whose SPKI SHA-256 is", spki);
    session = await launch([`--ignore-certificate-errors-spki-list=${spki}`]);
    const sockets = [];
    const bob = await conversation(session.browser, base, (p) => p.on("websocket", (ws) => sockets.push(ws.url())));
    assert.equal(await bob.evaluate(() => location.protocol), "https:");
    const wss = `wss://127.0.0.1:${server.port}/chat`;
    assert.deepEqual(sockets, [wss, wss]);
    // The HTTP routes are served over the same TLS port.
    assert.equal(await bob.evaluate(async () => (await fetch("/clients")).text()), "1");
    console.log("pages loaded from", base, "and chatted over", wss);
  } finally {
    await session?.close();
    await server.stop();
    if (madeCerts) rmSync(certs, { recursive: true, force: true });
  }
});
