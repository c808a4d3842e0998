// Interop: a Node `ws` server for hvws's client (examples/interop_client.rs),
// with the same paths as py_server.py:
//
//   node tests/interop/ws_server.mjs        # prints its ws:// address
//   node tests/interop/ws_server.mjs --tls-cert CERT.pem --tls-key KEY.pem
//                                           # wss://, prints that
//   node tests/interop/ws_server.mjs --deflate [--no-context-takeover]
//
// --deflate accepts permessage-deflate (`perMessageDeflate`, with context
// takeover both ways and windows of 15 bits as ws does by default, but a
// threshold of 0 so even the smallest message and fragment is compressed);
// --no-context-takeover adds serverNoContextTakeover and
// clientNoContextTakeover. Without --deflate compression is off.
//
//   /echo        every message back, text as text, binary as binary
//   /wire        answers each message with "LEN READ": its length in bytes
//                and how many bytes the server has read from the socket
//                (the handshake included)
//   /extensions  sends the Sec-WebSocket-Extensions the server answered, or
//                "none"
//   /fragments   one text message in three frames, a ping, then
//                "pong received" once the pong is back
//   /big-fragments  one 1 MiB text message in 16 frames of 64 KiB, frame i
//                the two digits of i over and over
//   /close       reads "CODE REASON" and closes with that code and reason
//   /record      remembers the code and reason of the client's close
//   /report      sends "CODE REASON" of the last /record close
// Subprotocols: v2.interop, v1.interop. Stops on SIGTERM.
import { readFileSync } from "node:fs";
import { createServer } from "node:https";
import { parseArgs } from "node:util";
import { WebSocketServer } from "ws";

const { values: args } = parseArgs({
  options: {
    "tls-cert": { type: "string" },
    "tls-key": { type: "string" },
    deflate: { type: "boolean" },
    "no-context-takeover": { type: "boolean" },
  },
});
if (Boolean(args["tls-cert"]) !== Boolean(args["tls-key"])) {
  console.error("--tls-cert and --tls-key go together");
  process.exit(2);
}
// With a certificate, an https server carries the WebSockets (wss://).
const https = args["tls-cert"]
  ? createServer({ cert: readFileSync(args["tls-cert"]), key: readFileSync(args["tls-key"]) })
  : null;

let lastClose = "none";
let recorded = Promise.resolve();
let markRecorded = () => {};

const wss = new WebSocketServer({
  ...(https ? { server: https } : { host: "127.0.0.1", port: 0 }),
  maxPayload: 16 << 20,
  perMessageDeflate: args.deflate
    ? {
        threshold: 0,
        serverNoContextTakeover: Boolean(args["no-context-takeover"]),
        clientNoContextTakeover: Boolean(args["no-context-takeover"]),
      }
    : false,
  // Our favourite of what the client offered; none if it offered none.
  handleProtocols: (offered) => ["v2.interop", "v1.interop"].find((p) => offered.has(p)) ?? false,
});

// The Sec-WebSocket-Extensions answered, kept with the request for /extensions.
wss.on("headers", (headers, req) => {
  const line = headers.find((h) => /^sec-websocket-extensions:/i.test(h));
  req.extensionsAnswered = line ? line.slice(line.indexOf(":") + 1).trim() : "none";
});

wss.on("connection", (ws, req) => {
  const path = new URL(req.url, "http://x").pathname;
  if (path === "/echo") {
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  } else if (path === "/wire") {
    ws.on("message", (data) => ws.send(`${data.length} ${ws._socket.bytesRead}`));
  } else if (path === "/extensions") {
    ws.send(req.extensionsAnswered);
  } else if (path === "/big-fragments") {
    for (let i = 0; i < 16; i++) ws.send(String(i).padStart(2, "0").repeat(1 << 15), { fin: i === 15 });
  } else if (path === "/fragments") {
    ws.send("Hel", { fin: false });
    ws.send("lo, ", { fin: false });
    ws.send("hvws", { fin: true });
    ws.once("pong", () => ws.send("pong received"));
    ws.ping("server-ping");
  } else if (path === "/close") {
    ws.once("message", (data) => {
      const text = data.toString();
      const space = text.indexOf(" ");
      ws.close(Number(text.slice(0, space)), text.slice(space + 1));
    });
  } else if (path === "/record") {
    recorded = new Promise((resolve) => (markRecorded = resolve));
    ws.on("close", (code, reason) => {
      lastClose = `${code} ${reason.toString()}`;
      markRecorded();
    });
  } else if (path === "/report") {
    const timeout = new Promise((resolve) => setTimeout(resolve, 5000));
    Promise.race([recorded, timeout]).then(() => ws.send(lastClose));
  } else {
    ws.close(4004, `no such path ${path}`);
  }
});

wss.on("listening", () => console.log(`ws server on ${https ? "wss" : "ws"}://127.0.0.1:${wss.address().port}`));
https?.listen(0, "127.0.0.1");
process.on("SIGTERM", () => {
  for (const c of wss.clients) c.terminate();
  wss.close(() => process.exit(0));
});
