// End-to-end: examples/chat_server's page (GET /) in headless Chromium.
//
//   cargo build --release --features "tls deflate" --example chat_server --example gen_test_certs
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
// And once more with chat_server --deflate (permessage-deflate, which
// Chromium always offers): the handshake of each page's WebSocket, as the
// DevTools protocol reports it (Network.webSocketWillSendHandshakeRequest
// and Network.webSocketHandshakeResponseReceived), must show Chromium's
// offer and the server's Sec-WebSocket-Extensions: permessage-deflate, the
// server's log the same; the conversation and a long message (compressed
// both ways) must go through. No screenshot either.
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
 * whose log has been checked. `onPage` sees each page before it loads
 * (and is awaited).
 */
async function conversation(browser, base, onPage = () => {}) {
  const alice = await browser.newPage();
  await onPage(alice);
  await alice.goto(base);
  await alice.locator("#status[data-state=online]").waitFor();
  assert.equal(await alice.textContent("#nick"), "user_1");

  const bob = await browser.newPage();
  await onPage(bob);
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

/** Lower-cased header names: CDP reports them as they were on the wire. */
const lowerKeys = (headers) => Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));

test("the chat with chat_server --deflate: Chromium agrees to permessage-deflate", { timeout: 120_000 }, async () => {
  const server = await startServer(serverBin, ["--port", "0", "--deflate"], listening, { RUST_LOG: "info" });
  const base = `http://127.0.0.1:${server.port}/`;
  const { browser, close } = await launch();
  try {
    // Every WebSocket handshake of every page, from the DevTools protocol.
    const handshakes = new Map();
    const handshake = (id) => handshakes.get(id) ?? handshakes.set(id, {}).get(id);
    const watch = async (page) => {
      const cdp = await page.context().newCDPSession(page);
      cdp.on("Network.webSocketWillSendHandshakeRequest", (e) => {
        handshake(e.requestId).request = lowerKeys(e.request.headers);
      });
      cdp.on("Network.webSocketHandshakeResponseReceived", (e) => {
        Object.assign(handshake(e.requestId), { status: e.response.status, response: lowerKeys(e.response.headers) });
      });
      await cdp.send("Network.enable");
    };
    const bob = await conversation(browser, base, watch);

    // A message over the server's 64-byte threshold: Chromium compresses
    // it, the server inflates it, and compresses its echo.
    const long = `a long line, compressed both ways: ${"la ".repeat(40)}`.trim();
    await say(bob, long);
    await line(bob, `echo: ${long}`);

    const seen = [...handshakes.values()].filter((h) => h.response);
    console.log("handshakes seen through CDP:", JSON.stringify(seen.map((h) => ({
      offer: h.request?.["sec-websocket-extensions"],
      status: h.status,
      answer: h.response["sec-websocket-extensions"],
    }))));
    assert.equal(seen.length, 2); // alice's and bob's
    for (const h of seen) {
      assert.equal(h.status, 101);
      assert.match(h.request?.["sec-websocket-extensions"] ?? "", /permessage-deflate/);
      assert.match(h.response["sec-websocket-extensions"] ?? "", /^permessage-deflate/);
    }
    const answer = seen[0].response["sec-websocket-extensions"];
    // The server's own view, from its log line for each page's connection.
    for (const nick of ["user_1", "user_2"]) {
      const logged = server.output.find((l) => l.includes(`as ${nick},`));
      assert.ok(logged?.endsWith(`extensions: ${answer}`), logged);
    }
    console.log(`Chromium and chat_server --deflate agreed "${answer}"`);
  } finally {
    await close();
    await server.stop();
  }
});
