// Server-Sent Events in headless Chromium: examples/hv07_sse_and_streaming
// (dasHV HV-07) read by the browser's own EventSource, not by a client we
// wrote.
//
//   cargo build --release --example hv07_sse_and_streaming
//   (cd tests/browser && npm ci && node --test sse.test.mjs)
//
// `/events` must deliver its `message` events and its `complete` event;
// `/ticks?n=5&ms=100` its five `tick` events with their ids (lastEventId),
// written over half a second by the server's game loop. Then a page is
// closed while a long stream is open, and the server must carry on serving.
//
// Environment: HV07 (the binary; default target/release/examples/
// hv07_sse_and_streaming), CHROMIUM (default /usr/bin/chromium).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startServer } from "../interop/server.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const serverBin = process.env.HV07 ?? path.join(root, "target/release/examples/hv07_sse_and_streaming");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const listening = /hv07: serving on http:\/\/127\.0\.0\.1:(\d+)\//;

test("EventSource reads hv07's streams as they are written", async () => {
  const server = await startServer(serverBin, ["--port", "0"], listening);
  const profile = mkdtempSync(path.join(tmpdir(), "hvws-chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  browser.setDefaultTimeout(15_000);
  try {
    const base = `http://127.0.0.1:${server.port}`;
    const page = await browser.newPage();
    await page.goto(`${base}/plain`);
    assert.equal(await page.textContent("body"), "hello from plain endpoint");

    const events = await page.evaluate(() => new Promise((resolve, reject) => {
      const got = [];
      const es = new EventSource("/events");
      const add = (e) => got.push(`${e.type}:${e.data}`);
      es.addEventListener("message", add);
      es.addEventListener("complete", (e) => { add(e); es.close(); resolve(got); });
      setTimeout(() => reject(new Error(`timed out with ${got}`)), 10_000);
    }));
    assert.deepEqual(events, ["message:first", "message:second", "complete:all done"]);

    const ticks = await page.evaluate(() => new Promise((resolve, reject) => {
      const got = [];
      const es = new EventSource("/ticks?n=5&ms=100");
      es.addEventListener("tick", (e) => {
        got.push({ data: e.data, id: e.lastEventId });
        if (got.length === 5) { es.close(); resolve(got); }
      });
      setTimeout(() => reject(new Error(`timed out with ${JSON.stringify(got)}`)), 10_000);
    }));
    assert.deepEqual(ticks.map((t) => t.data), ["1", "2", "3", "4", "5"]);
    assert.deepEqual(ticks.map((t) => t.id), ["1", "2", "3", "4", "5"]);

    // A tab that leaves mid-stream: the server drops that stream and goes on.
    const leaving = await browser.newPage();
    await leaving.goto(`${base}/plain`);
    await leaving.evaluate(() => new Promise((resolve) => {
      const es = new EventSource("/ticks?n=1000&ms=50");
      es.addEventListener("tick", () => resolve());
    }));
    await leaving.close();
    const again = await page.evaluate(async () => (await fetch("/plain")).text());
    assert.equal(again, "hello from plain endpoint");
  } finally {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
    await server.stop();
  }
});
