// Interop: Node's `ws` package (npm, not written here) as the client of
// hvws's example servers.
//
//   cargo build --release --examples
//   (cd tests/interop && npm ci && node --test ws.test.mjs)
//
// Starts target/release/examples/{echo_server,chat_server,tutorial04_patterns}
// on port 0 and stops them by PID afterwards. BIN_DIR overrides where the
// binaries are.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { startServer } from "./server.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const binDir = process.env.BIN_DIR ?? path.join(root, "target/release/examples");
const MiB = 1 << 20;
const API_KEY = "interop-secret";
const servers = {};

before(async () => {
  servers.echo = await startServer(path.join(binDir, "echo_server"), ["--port", "0"], /echo on ws:\/\/[\d.]+:(\d+)\/echo/);
  servers.chat = await startServer(path.join(binDir, "chat_server"), ["--port", "0"], /chat on ws:\/\/[\d.]+:(\d+)\/chat/, {
    RUST_LOG: "info",
  });
  servers.patterns = await startServer(
    path.join(binDir, "tutorial04_patterns"),
    ["--port", "0", "--session-secs", "1", "--api-key", API_KEY],
    /patterns on ws:\/\/[\d.]+:(\d+)\//,
  );
});

after(async () => {
  await Promise.all(Object.values(servers).map((s) => s.stop()));
});

const url = (server, p) => `ws://127.0.0.1:${servers[server].port}${p}`;

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
  const ws = new WebSocket(address, options.protocols ?? [], { maxPayload: 16 * MiB, ...options });
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

test("echo_server: text, including empty and UTF-8, comes back as text", async () => {
  const c = open(url("echo", "/echo"));
  await c.opened;
  for (const msg of ["hello", "", "héllo wörld ✓ 🎉"]) {
    c.ws.send(msg);
    assert.deepEqual(await c.next(), { data: msg, isBinary: false });
  }
  c.ws.close();
  await c.closed;
});

test("echo_server: binary comes back as binary", async () => {
  const c = open(url("echo", "/echo"));
  await c.opened;
  const data = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  c.ws.send(data);
  const m = await c.next();
  assert.equal(m.isBinary, true);
  assert.ok(data.equals(m.data));
  c.ws.close();
  await c.closed;
});

test("echo_server: a 1 MiB text and a 1 MiB binary message come back intact", async () => {
  const c = open(url("echo", "/echo"));
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

test("echo_server: a fragmented message is reassembled; pings are answered", async () => {
  const c = open(url("echo", "/echo"));
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

test("echo_server: the client's close code comes back in the server's close frame", async () => {
  const c = open(url("echo", "/echo"));
  await c.opened;
  c.ws.close(4000, "node says bye");
  const closed = await c.closed;
  assert.equal(closed.code, 4000);
});

test("chat_server: welcome, echo, joined, broadcast, HTTP alongside, left", async () => {
  const alice = open(url("chat", "/chat"));
  const welcomeA = (await alice.next()).data;
  assert.match(welcomeA, /^welcome user_\d+$/);
  const nameA = welcomeA.slice("welcome ".length);
  alice.ws.send("hello server!");
  assert.equal((await alice.next()).data, "echo: hello server!");
  const bob = open(url("chat", "/chat"));
  const nameB = (await bob.next()).data.slice("welcome ".length);
  assert.equal((await alice.next()).data, `${nameB} joined`);
  const clients = await (await fetch(`http://127.0.0.1:${servers.chat.port}/clients`)).text();
  assert.equal(clients, "2");
  bob.ws.send("hi everyone!");
  assert.equal((await bob.next()).data, "echo: hi everyone!");
  assert.equal((await alice.next()).data, `${nameB}: hi everyone!`);
  alice.ws.close(1000);
  assert.equal((await bob.next()).data, `${nameA} left`);
  bob.ws.close();
  await Promise.all([alice.closed, bob.closed]);
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
