"""Interop: a Python `websockets` server for hvws's client
(examples/interop_client.rs) to talk to.

    tests/interop/.venv/bin/python tests/interop/py_server.py   # prints its ws:// address
    tests/interop/.venv/bin/python tests/interop/py_server.py \
        --tls-cert CERT.pem --tls-key KEY.pem                   # wss://, prints that

Paths:
  /echo        every message back, text as text, binary as binary
  /fragments   sends one text message in three frames, pings, and reports
               whether the pong came back ("pong received")
  /close       reads "CODE REASON" and closes with that code and reason
  /record      remembers the code and reason of the client's close
  /report      sends "CODE REASON" of the last /record close
Subprotocols: v2.interop, v1.interop. Stops on SIGTERM.
"""

import argparse
import asyncio
import signal
import ssl

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

last_close = "none"
recorded = None  # an asyncio.Event, set when /record has seen a close


async def drain(ws):
    """Reads until the connection closes, whatever the close code."""
    try:
        async for _ in ws:
            pass
    except ConnectionClosed:
        pass


async def handler(ws):
    global last_close
    path = ws.request.path
    if path == "/echo":
        try:
            async for msg in ws:
                await ws.send(msg)
        except ConnectionClosed:
            pass
    elif path == "/fragments":
        await ws.send(["Hel", "lo, ", "hvws"])  # one message, three frames
        pong = await ws.ping(b"server-ping")
        await asyncio.wait_for(pong, 5)
        await ws.send("pong received")
        await drain(ws)
    elif path == "/close":
        code, _, reason = (await ws.recv()).partition(" ")
        await ws.close(int(code), reason)
    elif path == "/record":
        recorded.clear()
        await drain(ws)
        rcvd = ws.protocol.close_rcvd
        last_close = f"{rcvd.code} {rcvd.reason}" if rcvd else "no close frame"
        recorded.set()
    elif path == "/report":
        try:
            await asyncio.wait_for(recorded.wait(), 5)
        except asyncio.TimeoutError:
            pass
        await ws.send(last_close)
        await drain(ws)
    else:
        await ws.close(4004, f"no such path {path}")


def select_subprotocol(_conn, offered):
    """Our favourite of what the client offered; none if it offered none."""
    for p in ("v2.interop", "v1.interop"):
        if p in offered:
            return p
    return None


async def main(tls):
    global recorded
    recorded = asyncio.Event()
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(
        handler,
        "127.0.0.1",
        0,
        select_subprotocol=select_subprotocol,
        max_size=16 << 20,
        compression=None,
        ssl=tls,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        scheme = "wss" if tls else "ws"
        print(f"websockets server on {scheme}://127.0.0.1:{port}", flush=True)
        await stop


def server_tls(cert, key):
    """An `ssl` context serving `cert` (PEM chain) with `key`; None for
    plain ws://."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise SystemExit("--tls-cert and --tls-key go together")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="websockets interop server for hvws's client")
    parser.add_argument("--tls-cert", help="serve wss:// with this PEM certificate chain")
    parser.add_argument("--tls-key", help="and this PEM private key")
    args = parser.parse_args()
    asyncio.run(main(server_tls(args.tls_cert, args.tls_key)))
