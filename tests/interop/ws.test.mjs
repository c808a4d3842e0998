// Interop: Node's `ws` package (npm, not written here) as the client of
// hvws's example servers, over ws:// and over wss://.
//
//   cargo build --release --examples --features tls
//   (cd tests/interop && npm ci && node --test ws.test.mjs)
//
// Starts target/release/examples/{echo_server,chat_server,tutorial04_patterns}
// on port 0, and echo_server and chat_server once more with --tls-cert and
// --tls-key; the echo and chat tests run against both, the wss:// ones
// trusting only the test CA (`ca`). Stops the servers by PID afterwards.
// BIN_DIR overrides where the binaries are; TLS_CERTS names a directory
// with ca.pem, cert.pem and key.pem (otherwise gen_test_certs makes them in
// a temporary one).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { startServer } from "./server.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const binDir = process.env.BIN_DIR ?? path.join(root, "target/release/examples");
const MiB = 1 << 20;
const API_KEY = "interop-secret";
const servers = {};
// The test certificates' directory, and the CA that wss:// clients trust.
let certs;
let madeCerts = false;
let ca;

before(async () => {
  certs = process.env.TLS_CERTS;
  if (!certs) {
    certs = mkdtempSync(path.join(tmpdir(), "hvws-certs-"));
    madeCerts = true;
    execFileSync(path.join(binDir, "gen_test_certs"), ["--out", certs], { timeout: 30_000 });
  }
  ca = readFileSync(path.join(certs, "ca.pem"));
  const tlsArgs = ["--tls-cert", path.join(certs, "cert.pem"), "--tls-key", path.join(certs, "key.pem")];
  servers.echo = await startServer(path.join(binDir, "echo_server"), ["--port", "0"], /echo on ws:\/\/[\d.]+:(\d+)\/echo/);
  servers.chat = await startServer(path.join(binDir, "chat_server"), ["--port", "0"], /chat on ws:\/\/[\d.]+:(\d+)\/chat/, {
    RUST_LOG: "info",
  });
  servers.patterns = await startServer(
    path.join(binDir, "tutorial04_patterns"),
    ["--port", "0", "--session-secs", "1", "--api-key", API_KEY],
    /patterns on ws:\/\/[\d.]+:(\d+)\//,
  );
  servers.echoTls = await startServer(
    path.join(binDir, "echo_server"),
    ["--port", "0", ...tlsArgs],
    /echo on wss:\/\/[\d.]+:(\d+)\/echo/,
  );
  servers.echoTls.tls = true;
  servers.chatTls = await startServer(
    path.join(binDir, "chat_server"),
    ["--port", "0", ...tlsArgs],
    /chat on wss:\/\/[\d.]+:(\d+)\/chat/,
    { RUST_LOG: "info" },
  );
  servers.chatTls.tls = true;
});

after(async () => {
  await Promise.all(Object.values(servers).map((s) => s.stop()));
  if (madeCerts) rmSync(certs, { recursive: true, force: true });
});

const url = (server, p) => `${servers[server].tls ? "wss" : "ws"}://127.0.0.1:${servers[server].port}${p}`;

/** GET `p` from `server` over http or https (trusting the test CA); the body. */
function httpGet(server, p) {
  const { tls, port } = servers[server];
  const get = (tls ? https : http).get;
  const body = new Promise((resolve, reject) => {
    get(`${tls ? "https" : "http"}://127.0.0.1:${port}${p}`, tls ? { ca } : {}, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve(text));
    }).on("error", reject);
  });
  return within(body, `GET ${p}`);
}

/** Within `ms`, or fail naming `what`. */
function within(promise, what, ms = 5000) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A `ws` client with a message queue: `next()` resolves to the next
 * message `{ data, isBinary }`; `closed` to `{ code, reason }`.
 */
function open(address, options = {}) {
  const tls = address.startsWith("wss:") ? { ca } : {};
  const ws = new WebSocket(address, options.protocols ?? [], { maxPayload: 16 * MiB, ...tls, ...options });
  const queue = [];
  const waiting = [];
  ws.on("message", (data, isBinary) => {
    const m = { data: isBinary ? data : data.toString(), isBinary };
    const w = waiting.shift();
    if (w) w(m);
    else queue.push(m);
  });
  const closed = new Promise((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
  const opened = new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  const next = () => within(queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiting.push(r)), "a message");
  return { ws, opened: within(opened, "open"), closed: within(closed, "close"), next };
}

// The echo and chat tests, over ws:// and then over wss:// (tagged [wss]).
for (const scheme of ["ws", "wss"]) {
  const tls = scheme === "wss";
  const tag = tls ? " [wss]" : "";
  const echo = tls ? "echoTls" : "echo";
  const chat = tls ? "chatTls" : "chat";

  test(`echo_server${tag}: text, including empty and UTF-8, comes back as text`, async () => {
    const c = open(url(echo, "/echo"));
    await c.opened;
    for (const msg of ["hello", "", "héllo wörld ✓ 🎉"]) {
      c.ws.send(msg);
      assert.deepEqual(await c.next(), { data: msg, isBinary: false });
    }
    c.ws.close();
    await c.closed;
  });

  test(`echo_server${tag}: binary comes back as binary`, async () => {
    const c = open(url(echo, "/echo"));
    await c.opened;
    const data = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    c.ws.send(data);
    const m = await c.next();
    assert.equal(m.isBinary, true);
    assert.ok(data.equals(m.data));
    c.ws.close();
    await c.closed;
  });

  test(`echo_server${tag}: a 1 MiB text and a 1 MiB binary message come back intact`, async () => {
    const c = open(url(echo, "/echo"));
    await c.opened;
    const text = "0123456789abcdef".repeat(MiB / 16);
    const data = randomBytes(MiB);
    c.ws.send(text);
    c.ws.send(data);
    const t = await c.next();
    const b = await c.next();
    assert.equal(t.isBinary, false);
    assert.equal(t.data.length, MiB);
    assert.equal(t.data, text);
    assert.ok(b.isBinary && data.equals(b.data));
    c.ws.close();
    await c.closed;
  });

  test(`echo_server${tag}: a fragmented message is reassembled; pings are answered`, async () => {
    const c = open(url(echo, "/echo"));
    await c.opened;
    c.ws.send("frag", { fin: false });
    c.ws.send("men", { fin: false });
    c.ws.send("ted ✓", { fin: true });
    assert.deepEqual(await c.next(), { data: "fragmented ✓", isBinary: false });
    const pong = new Promise((resolve) => c.ws.once("pong", (d) => resolve(d.toString())));
    c.ws.ping("node-ping");
    assert.equal(await within(pong, "pong"), "node-ping");
    c.ws.close();
    await c.closed;
  });

  test(`echo_server${tag}: the client's close code comes back in the server's close frame`, async () => {
    const c = open(url(echo, "/echo"));
    await c.opened;
    c.ws.close(4000, "node says bye");
    const closed = await c.closed;
    assert.equal(closed.code, 4000);
  });

  test(`echo_server${tag}: a /broadcast message reaches every /broadcast connection, the sender included`, async () => {
    const a = open(url(echo, "/broadcast"));
    const b = open(url(echo, "/broadcast"));
    // The server registers a connection before its 101 leaves, so both
    // are members once both are open.
    await Promise.all([a.opened, b.opened]);
    a.ws.send("to everyone");
    assert.deepEqual(await a.next(), { data: "to everyone", isBinary: false });
    assert.deepEqual(await b.next(), { data: "to everyone", isBinary: false });
    a.ws.close();
    b.ws.close();
    await Promise.all([a.closed, b.closed]);
  });

  test(`chat_server${tag}: welcome, echo, joined, broadcast, HTTP alongside, left`, async () => {
    const alice = open(url(chat, "/chat"));
    const welcomeA = (await alice.next()).data;
    assert.match(welcomeA, /^welcome user_\d+$/);
    const nameA = welcomeA.slice("welcome ".length);
    alice.ws.send("hello server!");
    assert.equal((await alice.next()).data, "echo: hello server!");
    const bob = open(url(chat, "/chat"));
    const nameB = (await bob.next()).data.slice("welcome ".length);
    assert.equal((await alice.next()).data, `${nameB} joined`);
    assert.equal(await httpGet(chat, "/clients"), "2");
    bob.ws.send("hi everyone!");
    assert.equal((await bob.next()).data, "echo: hi everyone!");
    assert.equal((await alice.next()).data, `${nameB}: hi everyone!`);
    alice.ws.close(1000);
    assert.equal((await bob.next()).data, `${nameA} left`);
    bob.ws.close();
    await Promise.all([alice.closed, bob.closed]);
  });
}

test("wss: the certificate is really checked; the page is served over https", async () => {
  const untrusted = new WebSocket(url("chatTls", "/chat"));
  const error = await within(new Promise((resolve) => untrusted.once("error", resolve)), "the refusal");
  assert.match(error.code, /CERT|VERIFY|SIGNATURE/);
  const trusted = open(url("chatTls", "/chat"));
  assert.match((await trusted.next()).data, /^welcome user_\d+$/);
  assert.equal(trusted.ws._socket.encrypted, true);
  trusted.ws.close();
  await trusted.closed;
  const html = await httpGet("chatTls", "/");
  assert.ok(html.includes("<title>hvws chat</title>"));
});

test("tutorial04_patterns: server closes carry their codes and reasons", async () => {
  const ticker = open(url("patterns", "/ticker"));
  assert.equal((await ticker.next()).data, "ready");
  ticker.ws.send("one");
  assert.equal((await ticker.next()).data, "count:1");
  ticker.ws.send("bye");
  assert.equal((await ticker.next()).data, "final:1");
  assert.deepEqual(await ticker.closed, { code: 1000, reason: "done" });

  const timeboxed = open(url("patterns", "/timeboxed"));
  await timeboxed.opened;
  const started = Date.now();
  timeboxed.ws.send("hi");
  assert.equal((await timeboxed.next()).data, "you said: hi");
  assert.equal((await timeboxed.next()).data, "session expired");
  assert.deepEqual(await timeboxed.closed, { code: 4001, reason: "session timeout" });
  assert.ok(Date.now() - started >= 900);

  const missing = open(url("patterns", "/secure"));
  assert.deepEqual(await missing.closed, { code: 1008, reason: "missing x-api-key" });
  const bad = open(url("patterns", "/secure"), { headers: { "x-api-key": "nope" } });
  assert.deepEqual(await bad.closed, { code: 1008, reason: "bad x-api-key" });
});

test("tutorial04_patterns: the client's close code and reason reach the server", async () => {
  const c = open(url("patterns", "/ticker"));
  assert.equal((await c.next()).data, "ready");
  c.ws.send("a");
  await c.next();
  c.ws.send("b");
  await c.next();
  c.ws.close(4444, "node client leaving");
  await c.closed;
  const deadline = Date.now() + 5000;
  let summaries = [];
  while (Date.now() < deadline) {
    const r = await fetch(`http://127.0.0.1:${servers.patterns.port}/ticker/summaries`);
    summaries = (await r.text()).split("\n");
    if (summaries.includes("final:2 (4444 node client leaving)")) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`summaries: ${JSON.stringify(summaries)}`);
});

test("tutorial04_patterns: auth by header or query; a refused handshake is HTTP 401", async () => {
  const header = open(url("patterns", "/secure"), { headers: { "X-Api-Key": API_KEY } });
  assert.equal((await header.next()).data, "authorized");
  header.ws.close();
  const query = open(url("patterns", `/private?token=${API_KEY}`));
  assert.equal((await query.next()).data, "authorized");
  query.ws.close();

  const refused = new WebSocket(url("patterns", "/private"));
  const status = await within(
    new Promise((resolve) => {
      refused.on("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode, body }));
      });
    }),
    "the 401",
  );
  refused.on("error", () => {}); // ws reports the abort as an error too
  refused.terminate();
  assert.deepEqual(status, { status: 401, body: "missing x-api-key" });
  await Promise.all([header.closed, query.closed]);
});

test("tutorial04_patterns: binary bridge and chat room", async () => {
  const bridge = open(url("patterns", "/bridge"));
  await bridge.opened;
  bridge.ws.send(Buffer.from([0, 1, 2, 3, 255]));
  const ack = await bridge.next();
  assert.ok(ack.isBinary);
  assert.equal(ack.data.toString(), "ack:5");
  bridge.ws.close();

  const a = open(url("patterns", "/room"));
  assert.equal((await a.next()).data, "[*] someone joined");
  const b = open(url("patterns", "/room"));
  assert.equal((await b.next()).data, "[*] someone joined");
  assert.equal((await a.next()).data, "[*] someone joined");
  a.ws.send("name:node");
  assert.equal((await b.next()).data, "[*] node joined");
  a.ws.send("hello room");
  assert.equal((await b.next()).data, "node: hello room");
  a.ws.close();
  assert.equal((await b.next()).data, "[*] node left");
  b.ws.close();
  await Promise.all([bridge.closed, a.closed, b.closed]);
});
