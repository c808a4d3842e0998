"""Interop: a Python `websockets` server for hvws's client
(examples/interop_client.rs) to talk to.

    tests/interop/.venv/bin/python tests/interop/py_server.py   # prints its ws:// address
    tests/interop/.venv/bin/python tests/interop/py_server.py \
        --tls-cert CERT.pem --tls-key KEY.pem                   # wss://, prints that
    tests/interop/.venv/bin/python tests/interop/py_server.py --deflate

--deflate accepts permessage-deflate with websockets' defaults (what
`serve` does unless told `compression=None`: server and client windows of
12 bits, memLevel 5, context takeover both ways; it compresses every
message, however small); without it compression is off.

Paths:
  /echo        every message back, text as text, binary as binary
  /wire        answers each message with "LEN READ": its length in bytes and
               how many bytes the server has read from the connection since
               the handshake (so a client sees what its message cost on the
               wire)
  /extensions  sends the Sec-WebSocket-Extensions the server answered, or
               "none"
  /fragments   sends one text message in three frames, pings, and reports
               whether the pong came back ("pong received")
  /big-fragments  sends one 1 MiB text message in 16 frames of 64 KiB, frame
               i the two digits of i over and over
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
    elif path == "/wire":
        read = 0
        receive_data = ws.protocol.receive_data

        def counting(data):
            nonlocal read
            read += len(data)
            return receive_data(data)

        ws.protocol.receive_data = counting
        try:
            async for msg in ws:
                size = len(msg.encode() if isinstance(msg, str) else msg)
                await ws.send(f"{size} {read}")
        except ConnectionClosed:
            pass
    elif path == "/extensions":
        await ws.send(ws.response.headers.get("Sec-WebSocket-Extensions", "none"))
        await drain(ws)
    elif path == "/big-fragments":
        await ws.send([f"{i:02d}" * (1 << 15) for i in range(16)])
        await drain(ws)
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


async def main(tls, deflate):
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
        compression="deflate" if deflate else None,
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
    parser.add_argument("--deflate", action="store_true", help="accept permessage-deflate (websockets' defaults)")
    args = parser.parse_args()
    asyncio.run(main(server_tls(args.tls_cert, args.tls_key), args.deflate))
