// Interop: a Node `http` server (Node's own, no npm package) for hvws's HTTP
// client (tests/http_client_node.rs starts it, reads the address it prints,
// and stops it by its PID):
//
//   node tests/interop/http_server.mjs     # prints "listening on http://127.0.0.1:PORT"
//
//   GET  /hello         "hello", kept alive
//   GET  /chunked       three pieces ("first piece", "second", "third!") in
//                       the chunked coding, 40 ms apart
//   GET  /sse           text/event-stream: a comment, a `retry`, then four
//                       events 40 ms apart (ids 1-4, types, a two-line
//                       data), then the end of the body
//   GET  /redirect/N    302 to /redirect/N-1; /redirect/0 answers "landed"
//   GET  /absolute/N    301 to the absolute URL of /redirect/N
//   POST /see-other     303 to /redirect/0 (the client turns it into a GET)
//   GET  /close         "bye" with `Connection: close`: Node ends the
//                       connection after it
//   GET  /slow          200 at once, then one byte every 100 ms for 5 s
//   POST /echo          the body back
//   GET  /stats         {"connections": N, "requests": M}: connections
//                       accepted and requests answered so far
//
// `keepAliveTimeout` is 50 ms (Node 20 adds a second of grace: an idle
// connection is closed about 1.05 s after its last response), so a client
// that comes back later finds its kept-alive connection closed (and sends
// an idempotent request again once). Stops on SIGTERM.
import { createServer } from "node:http";

let connections = 0;
let requests = 0;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function handle(req, res) {
  requests += 1;
  const url = new URL(req.url, "http://placeholder");
  const path = url.pathname;
  const text = (status, body, headers = {}) => {
    res.writeHead(status, { "Content-Type": "text/plain", "Content-Length": Buffer.byteLength(body), ...headers });
    res.end(body);
  };
  let m;
  if (req.method === "GET" && path === "/hello") {
    text(200, "hello");
  } else if (req.method === "GET" && path === "/chunked") {
    // No Content-Length: Node sends the chunked coding, one chunk per write.
    res.writeHead(200, { "Content-Type": "text/plain" });
    for (const piece of ["first piece", "second", "third!"]) {
      res.write(piece);
      await sleep(40);
    }
    res.end();
  } else if (req.method === "GET" && path === "/sse") {
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
    res.write(": hello from node\nretry: 2500\n\n");
    const events = [
      "id: 1\nevent: tick\ndata: one\n\n",
      "id: 2\ndata: line one\ndata: line two\n\n",
      "id: 3\nevent: score\ndata: {\"a\":1}\n\n",
      "data: no id\n\n",
    ];
    for (const event of events) {
      await sleep(40);
      res.write(event);
    }
    res.end();
  } else if (req.method === "GET" && (m = /^\/redirect\/(\d+)$/.exec(path))) {
    const n = Number(m[1]);
    if (n === 0) {
      text(200, "landed");
    } else {
      text(302, "", { Location: `/redirect/${n - 1}` });
    }
  } else if (req.method === "GET" && (m = /^\/absolute\/(\d+)$/.exec(path))) {
    text(301, "", { Location: `http://${req.headers.host}/redirect/${m[1]}` });
  } else if (req.method === "POST" && path === "/see-other") {
    req.resume();
    req.on("end", () => text(303, "", { Location: "/redirect/0" }));
  } else if (req.method === "GET" && path === "/close") {
    text(200, "bye", { Connection: "close" });
  } else if (req.method === "GET" && path === "/slow") {
    res.writeHead(200, { "Content-Type": "text/plain" });
    for (let i = 0; i < 50 && !res.destroyed; i++) {
      res.write(".");
      await sleep(100);
    }
    res.end();
  } else if (req.method === "POST" && path === "/echo") {
    const parts = [];
    req.on("data", (d) => parts.push(d));
    req.on("end", () => {
      const body = Buffer.concat(parts);
      res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": body.length });
      res.end(body);
    });
  } else if (req.method === "GET" && path === "/stats") {
    // Not counted: asking must not change the answer.
    requests -= 1;
    const body = JSON.stringify({ connections, requests });
    res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
    res.end(body);
  } else {
    text(404, "not found");
  }
}

const server = createServer((req, res) => {
  handle(req, res).catch((e) => {
    console.error(e);
    res.destroy();
  });
});
server.keepAliveTimeout = 50;
server.on("connection", () => {
  connections += 1;
});
server.listen(0, "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
process.on("SIGTERM", () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
