// Benchmark peer: the echo_server protocol on Node's `ws` (benches/README.md,
// "permessage-deflate (issue 11)").
//
//   npm ci && node server.mjs --port N [--deflate] [--no-context-takeover]
//
//   /echo       every message back, text as text, binary as binary
//   /broadcast  every message to every open /broadcast connection, the
//               sender included: ws.send on each, as ws's README shows
//
// --deflate: perMessageDeflate: true (ws's defaults: zlib level 6, window
// 15, memLevel 8, context takeover both ways, messages under 1024 bytes
// uncompressed, at most 10 zlib jobs at once on libuv's thread pool).
// --no-context-takeover: also serverNoContextTakeover and
// clientNoContextTakeover. Stops on SIGTERM.
import { parseArgs } from "node:util";
import { WebSocketServer } from "ws";

const { values: args } = parseArgs({
  options: {
    port: { type: "string", default: "9001" },
    deflate: { type: "boolean", default: false },
    "no-context-takeover": { type: "boolean", default: false },
  },
});
let perMessageDeflate = false;
if (args.deflate) {
  perMessageDeflate = args["no-context-takeover"]
    ? { serverNoContextTakeover: true, clientNoContextTakeover: true }
    : true;
}

const wss = new WebSocketServer({
  host: "127.0.0.1",
  port: Number(args.port),
  maxPayload: 16 << 20,
  perMessageDeflate,
});
const broadcast = new Set();

wss.on("connection", (ws, req) => {
  const path = new URL(req.url, "http://x").pathname;
  if (path === "/broadcast") {
    broadcast.add(ws);
    ws.on("message", (data, isBinary) => {
      for (const peer of broadcast) peer.send(data, { binary: isBinary });
    });
    ws.on("close", () => broadcast.delete(ws));
  } else {
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  }
});
wss.on("listening", () => {
  const { port } = wss.address();
  console.log(`echo on ws://127.0.0.1:${port}/echo, broadcast on ws://127.0.0.1:${port}/broadcast`);
});
process.on("SIGTERM", () => process.exit(0));
