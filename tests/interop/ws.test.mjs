// Interop: Node's `ws` package (npm, not written here) as the client of
// hvws's example servers, over ws:// and over wss://, and with
// permessage-deflate.
//
//   cargo build --release --examples --features "tls deflate"
//   (cd tests/interop && npm ci && node --test ws.test.mjs)
//
// Starts target/release/examples/{echo_server,chat_server,tutorial04_patterns}
// on port 0, and echo_server and chat_server once more with --tls-cert and
// --tls-key; the echo and chat tests run against both, the wss:// ones
// trusting only the test CA (`ca`).
//
// permessage-deflate (ws clients offer it unless `perMessageDeflate:
// false`): echo_server --deflate (the server's defaults, no context
// takeover either way), echo_server --deflate-takeover (context takeover
// both ways) and chat_server --deflate. Each test checks what the 101's
// Sec-WebSocket-Extensions agreed (and `ws.extensions`), and the bytes the
// socket read and wrote (`bytesRead`, `bytesWritten`), so a message that
// should travel compressed did. Small messages (ws's threshold set to 0 so
// it compresses them too), 1 MiB ones, fragmented ones (3 small frames, 16
// of 64 KiB), a client asking for no context takeover, one asking for
// 10-bit windows, a broadcast to clients with different terms, a client
// that offers nothing, and the chat.
//
// Stops the servers by PID afterwards.
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
  servers.echoDeflate = await startServer(
    path.join(binDir, "echo_server"),
    ["--port", "0", "--deflate"],
    /echo on ws:\/\/[\d.]+:(\d+)\/echo/,
  );
  servers.echoTakeover = await startServer(
    path.join(binDir, "echo_server"),
    ["--port", "0", "--deflate-takeover"],
    /echo on ws:\/\/[\d.]+:(\d+)\/echo/,
  );
  servers.chatDeflate = await startServer(
    path.join(binDir, "chat_server"),
    ["--port", "0", "--deflate"],
    /chat on ws:\/\/[\d.]+:(\d+)\/chat/,
    { RUST_LOG: "info" },
  );
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
 * message `{ data, isBinary }`; `closed` to `{ code, reason }`;
 * `extensions()`, once open, to the Sec-WebSocket-Extensions the server
 * answered ("none" if it answered none).
 */
function open(address, options = {}) {
  const tls = address.startsWith("wss:") ? { ca } : {};
  const ws = new WebSocket(address, options.protocols ?? [], { maxPayload: 16 * MiB, ...tls, ...options });
  let answered;
  ws.once("upgrade", (res) => (answered = res.headers["sec-websocket-extensions"] ?? "none"));
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
  return { ws, opened: within(opened, "open"), closed: within(closed, "close"), next, extensions: () => answered };
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

// --- permessage-deflate -----------------------------------------------------------------

/** `c` (open) agreed to permessage-deflate: on the server's own terms (no
 * context takeover either way unless `takeover`) when `params` is empty,
 * else with each of `params`. Returns the header. */
function assertDeflate(c, takeover, ...params) {
  const ext = c.extensions();
  assert.match(ext, /^permessage-deflate/);
  assert.equal(c.ws.extensions, "permessage-deflate");
  if (params.length === 0) {
    const nct = ["server_no_context_takeover", "client_no_context_takeover"].map((p) => ext.includes(p));
    assert.deepEqual(nct, takeover ? [false, false] : [true, true], ext);
  }
  for (const p of params) assert.ok(ext.includes(p), `${p} missing from ${ext}`);
  return ext;
}

/** Bytes `c`'s socket has read and written so far. */
const wire = (c) => ({ read: c.ws._socket.bytesRead, written: c.ws._socket.bytesWritten });

const gameState = (tick) =>
  JSON.stringify({ tick, players: [{ id: 1, x: tick * 3, y: 7 }, { id: 2, x: 4, y: tick }] });

for (const [name, server, takeover] of [
  ["echo_server --deflate", "echoDeflate", false],
  ["echo_server --deflate-takeover", "echoTakeover", true],
]) {
  test(`${name}: permessage-deflate agreed; small messages compressed both ways`, async () => {
    // threshold 0: ws compresses even the smallest message.
    const c = open(url(server, "/echo"), { perMessageDeflate: { threshold: 0 } });
    await c.opened;
    const ext = assertDeflate(c, takeover);
    console.log(`${name}: ws agreed "${ext}"`);
    for (const msg of ["hello", "", "héllo wörld ✓ 🎉", gameState(1).repeat(3)]) {
      c.ws.send(msg);
      assert.deepEqual(await c.next(), { data: msg, isBinary: false });
    }
    const data = Buffer.from(Array.from({ length: 1024 }, (_, i) => i & 255));
    c.ws.send(data);
    const m = await c.next();
    assert.ok(m.isBinary && data.equals(m.data));
    c.ws.close();
    await c.closed;
  });

  test(`${name}: 1 MiB text and binary; the text travels compressed both ways`, async () => {
    const c = open(url(server, "/echo"), { perMessageDeflate: true });
    await c.opened;
    assertDeflate(c, takeover);
    const before = wire(c);
    const text = "0123456789abcdef".repeat(MiB / 16);
    c.ws.send(text);
    assert.equal((await c.next()).data, text);
    const after = wire(c);
    const read = after.read - before.read;
    const written = after.written - before.written;
    assert.ok(read < MiB / 4, `the echo took ${read} bytes`);
    assert.ok(written < MiB / 4, `ws wrote ${written} bytes`);
    const data = randomBytes(MiB);
    c.ws.send(data);
    const b = await c.next();
    assert.ok(b.isBinary && data.equals(b.data));
    c.ws.close();
    await c.closed;
    console.log(`${name}: 1 MiB of text went out in ${written} bytes and came back in ${read}`);
  });

  test(`${name}: fragmented compressed messages, 3 small frames and 16 of 64 KiB`, async () => {
    const c = open(url(server, "/echo"), { perMessageDeflate: { threshold: 0 } });
    await c.opened;
    assertDeflate(c, takeover);
    c.ws.send("frag", { fin: false });
    c.ws.send("men", { fin: false });
    c.ws.send("ted ✓", { fin: true });
    assert.deepEqual(await c.next(), { data: "fragmented ✓", isBinary: false });
    const chunks = Array.from({ length: 16 }, (_, i) => String(i).padStart(2, "0").repeat(1 << 15));
    const before = wire(c);
    chunks.forEach((chunk, i) => c.ws.send(chunk, { fin: i === 15 }));
    const m = await c.next();
    assert.equal(m.data.length, MiB);
    assert.equal(m.data, chunks.join(""));
    const read = wire(c).read - before.read;
    assert.ok(read < MiB / 4, `the echo took ${read} bytes`);
    c.ws.close();
    await c.closed;
  });

  test(`${name}: a client that asks for no context takeover`, async () => {
    const c = open(url(server, "/echo"), {
      perMessageDeflate: { serverNoContextTakeover: true, clientNoContextTakeover: true, threshold: 0 },
    });
    await c.opened;
    // ws asks the server with server_no_context_takeover; its own
    // clientNoContextTakeover it just does (the server may answer it or not).
    const ext = assertDeflate(c, takeover, "server_no_context_takeover");
    console.log(`${name}: no-context-takeover client agreed "${ext}"`);
    for (let tick = 0; tick < 20; tick++) {
      c.ws.send(gameState(tick));
      assert.equal((await c.next()).data, gameState(tick));
    }
    const text = "0123456789abcdef".repeat(MiB / 16);
    c.ws.send(text);
    assert.equal((await c.next()).data, text);
    c.ws.close();
    await c.closed;
  });

  test(`${name}: a client that asks for 10-bit windows`, async () => {
    const c = open(url(server, "/echo"), {
      perMessageDeflate: { serverMaxWindowBits: 10, clientMaxWindowBits: 10, threshold: 0 },
    });
    await c.opened;
    const ext = assertDeflate(c, takeover, "server_max_window_bits=10", "client_max_window_bits=10");
    console.log(`${name}: 10-bit client agreed "${ext}"`);
    const text = Array.from({ length: 40_000 }, (_, i) => `line ${i}: the quick brown fox\n`).join("");
    const before = wire(c);
    c.ws.send(text);
    assert.equal((await c.next()).data, text);
    const read = wire(c).read - before.read;
    assert.ok(read < text.length / 2, `${text.length} bytes came back in ${read}`);
    c.ws.close();
    await c.closed;
  });

  test(`${name}: a broadcast reaches clients with different terms, each as it agreed`, async () => {
    const a = open(url(server, "/broadcast"), { perMessageDeflate: true });
    const b = open(url(server, "/broadcast"), { perMessageDeflate: { serverMaxWindowBits: 11 } });
    const c = open(url(server, "/broadcast"), { perMessageDeflate: false });
    await Promise.all([a.opened, b.opened, c.opened]);
    assertDeflate(a, takeover);
    assertDeflate(b, takeover, "server_max_window_bits=11");
    assert.equal(c.extensions(), "none");
    const before = [a, b, c].map((x) => wire(x).read);
    const msg = JSON.stringify({ event: "round over", scores: [3, 1, 4, 1, 5, 9, 2, 6] }).repeat(8);
    a.ws.send(msg);
    for (const x of [a, b, c]) assert.deepEqual(await x.next(), { data: msg, isBinary: false });
    const read = [a, b, c].map((x, i) => wire(x).read - before[i]);
    assert.ok(read[0] < msg.length / 2 && read[1] < msg.length / 2 && read[2] > msg.length, `${read}`);
    for (const x of [a, b, c]) x.ws.close();
    await Promise.all([a.closed, b.closed, c.closed]);
  });

  test(`${name}: a client that offers no permessage-deflate gets plain messages`, async () => {
    const c = open(url(server, "/echo"), { perMessageDeflate: false });
    await c.opened;
    assert.equal(c.extensions(), "none");
    assert.equal(c.ws.extensions, "");
    const before = wire(c);
    const text = "0123456789abcdef".repeat(MiB / 16);
    c.ws.send(text);
    assert.equal((await c.next()).data, text);
    assert.ok(wire(c).read - before.read >= MiB);
    c.ws.send("small");
    assert.equal((await c.next()).data, "small");
    c.ws.close();
    await c.closed;
  });
}

test("chat_server --deflate: the conversation, compressed", async () => {
  const alice = open(url("chatDeflate", "/chat"));
  const welcomeA = (await alice.next()).data;
  const ext = assertDeflate(alice, false);
  const nameA = welcomeA.slice("welcome ".length);
  const bob = open(url("chatDeflate", "/chat"));
  const nameB = (await bob.next()).data.slice("welcome ".length);
  assertDeflate(bob, false);
  assert.equal((await alice.next()).data, `${nameB} joined`);
  // Over the server's 64-byte threshold: the echo and the broadcast are
  // compressed.
  const long = `a long line that the server compresses: ${"la ".repeat(40)}`;
  bob.ws.send(long);
  assert.equal((await bob.next()).data, `echo: ${long}`);
  assert.equal((await alice.next()).data, `${nameB}: ${long}`);
  alice.ws.close(1000);
  assert.equal((await bob.next()).data, `${nameA} left`);
  bob.ws.close();
  await Promise.all([alice.closed, bob.closed]);
  // The server's own view, from its log line for alice's connection.
  const logged = () => servers.chatDeflate.output.find((l) => l.includes(`as ${nameA},`));
  const deadline = Date.now() + 5000;
  while (!logged() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const log = logged();
  assert.ok(log?.endsWith(`extensions: ${ext}`), log);
  console.log(`chat_server --deflate: agreed "${ext}"; its log: ${log}`);
});
