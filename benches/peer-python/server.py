"""Benchmark peer: the echo_server protocol on Python's `websockets`
(asyncio implementation; benches/README.md, "permessage-deflate (issue 11)").

    .venv/bin/python server.py --port N [--no-deflate]

  /echo        every message back, text as text, binary as binary
  /broadcast   every message to every open /broadcast connection, the sender
               included (websockets.asyncio.server.broadcast)

Compression is websockets' default (permessage-deflate with its server
defaults: window 12 both ways, memLevel 5, context takeover both ways);
--no-deflate turns it off. Keepalive pings are off (the load generator
does not answer them in time under load). Stops on SIGTERM.
"""

import argparse
import asyncio
import signal

from websockets.asyncio.server import broadcast, serve
from websockets.exceptions import ConnectionClosed

members = set()


async def handler(ws):
    path = ws.request.path
    try:
        if path == "/broadcast":
            members.add(ws)
            try:
                async for msg in ws:
                    broadcast(members, msg)
            finally:
                members.discard(ws)
        else:
            async for msg in ws:
                await ws.send(msg)
    except ConnectionClosed:
        pass


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=9001)
    p.add_argument("--no-deflate", action="store_true")
    a = p.parse_args()
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(
        handler,
        "127.0.0.1",
        a.port,
        compression=None if a.no_deflate else "deflate",
        max_size=16 << 20,
        ping_interval=None,
        max_queue=None,
    ):
        print(f"echo on ws://127.0.0.1:{a.port}/echo", flush=True)
        await stop


asyncio.run(main())
