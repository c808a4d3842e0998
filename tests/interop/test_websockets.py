"""Interop: Python's `websockets` (PyPI, not written here) as the client of
hvws's example servers, over ws:// and over wss://, and with
permessage-deflate.

    cargo build --release --examples --features "tls deflate"
    tests/interop/.venv/bin/python tests/interop/test_websockets.py

Starts target/release/examples/{echo_server,chat_server,tutorial04_patterns}
on port 0 (each prints the port it got), and echo_server and chat_server
once more with --tls-cert/--tls-key; runs every check against the plain
servers and the echo and chat checks again over TLS, with an `ssl` context
that trusts only the test CA.

Then permessage-deflate (websockets' clients offer it unless told
`compression=None`): echo_server --deflate (the server's defaults, no
context takeover either way) and chat_server --deflate, and echo_server
--deflate-takeover (context takeover both ways). Every check there first
makes sure the extension was agreed (the 101's Sec-WebSocket-Extensions),
or, for the client that offers none, that it was not; it counts the bytes
the client read from the socket to see compressed messages really arrive
compressed. Small messages, 1 MiB ones (text, compressible and random
binary), fragmented ones (3 small frames; 16 frames of 64 KiB), a client
that asks for no context takeover, one that asks for 9-bit windows, a
broadcast to clients with different terms (one compressed encoding cannot
serve them all), and the chat conversation.

Stops the servers by PID, and prints `python-websockets: N passed, M
failed`, `python-websockets over wss: N passed, M failed` and
`python-websockets with permessage-deflate: N passed, M failed`. Exits 1 if
any check failed. BIN_DIR overrides where the
binaries are; TLS_CERTS names a directory with ca.pem, cert.pem and key.pem
(otherwise gen_test_certs makes them in a temporary one).
"""

import asyncio
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from pathlib import Path

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("BIN_DIR", ROOT / "target" / "release" / "examples"))
MiB = 1 << 20
API_KEY = "interop-secret"


# What clients of the wss:// servers trust: the test CA and nothing else, so
# a check passes only if the server shows the certificate the CA signed.
CLIENT_SSL = None


def connect(url, **kwargs):
    """websockets' `connect`, trusting the test CA for wss:// URLs."""
    if url.startswith("wss://"):
        kwargs.setdefault("ssl", CLIENT_SSL)
    return ws_connect(url, **kwargs)


class Server:
    """An example binary started with --port 0; `port` is the one it printed.
    With `tls` (the certificate directory) it is started with --tls-cert and
    --tls-key, and its URLs are wss:// and https://."""

    def __init__(self, name, args, pattern, tls=None):
        self.tls = tls is not None
        if tls is not None:
            args = [*args, "--tls-cert", str(tls / "cert.pem"), "--tls-key", str(tls / "key.pem")]
        env = dict(os.environ, RUST_LOG="info")
        self.proc = subprocess.Popen(
            [str(BIN_DIR / name), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + 10
        seen = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            m = re.search(pattern, line)
            if m:
                self.port = int(m.group(1))
                break
        else:
            self.stop()
            raise RuntimeError(f"{name} printed no port: {seen}")
        if not hasattr(self, "port"):
            self.stop()
            raise RuntimeError(f"{name} exited: {seen}")
        # Keep draining its output so it never blocks on a full pipe.
        self.drain = asyncio.get_event_loop().run_in_executor(None, self.proc.stdout.read)

    def url(self, path):
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}{path}"

    def http_url(self, path):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()  # this PID only
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def http_get(server, path):
    context = CLIENT_SSL if server.tls else None
    with urllib.request.urlopen(server.http_url(path), timeout=5, context=context) as r:
        return r.read().decode()


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), 5)


async def closed_by_server(ws):
    """Waits for the server's close frame; returns (code, reason)."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    except ConnectionClosed as e:
        assert e.rcvd is not None, f"no close frame received: {e}"
        return e.rcvd.code, e.rcvd.reason


# --- echo_server ------------------------------------------------------------------


async def echo_text(s):
    async with connect(s["echo"].url("/echo")) as ws:
        for msg in ["hello", "", "héllo wörld ✓ 🎉", "x" * 70_000]:
            await ws.send(msg)
            got = await recv(ws)
            assert got == msg and isinstance(got, str), (len(got), type(got))
    return "4 text messages (empty, UTF-8, 70 kB) echoed as text"


async def echo_binary(s):
    async with connect(s["echo"].url("/echo")) as ws:
        data = bytes(range(256)) * 4
        await ws.send(data)
        got = await recv(ws)
        assert got == data and isinstance(got, bytes)
    return "1 KiB of every byte value echoed as binary"


async def echo_one_mib(s):
    async with connect(s["echo"].url("/echo"), max_size=4 * MiB) as ws:
        text = ("0123456789abcdef" * (MiB // 16))
        data = os.urandom(MiB)
        await ws.send(text)
        got_text = await recv(ws)
        await ws.send(data)
        got_data = await recv(ws)
        assert got_text == text, len(got_text)
        assert got_data == data, len(got_data)
    return "1 MiB text and 1 MiB random binary echoed intact"


async def echo_fragments_and_ping(s):
    async with connect(s["echo"].url("/echo")) as ws:
        await ws.send(["frag", "men", "ted ✓"])  # one text message, three frames
        got = await recv(ws)
        assert got == "fragmented ✓", got
        pong = await ws.ping(b"py-ping")
        latency = await asyncio.wait_for(pong, 5)
    return f"3-fragment message reassembled; ping answered in {latency * 1000:.1f} ms"


async def echo_client_close_code(s):
    ws = await connect(s["echo"].url("/echo"))
    await ws.close(code=4000, reason="python says bye")
    rcvd = ws.protocol.close_rcvd
    assert rcvd is not None and rcvd.code == 4000, rcvd
    return f"client closed with 4000; server answered {rcvd.code} {rcvd.reason!r}"


async def broadcast_path(s):
    async with connect(s["echo"].url("/broadcast")) as a, connect(s["echo"].url("/broadcast")) as b:
        await asyncio.sleep(0.1)  # both registered
        await a.send("to everyone")
        assert await recv(a) == "to everyone"
        assert await recv(b) == "to everyone"
    return "a /broadcast message reached both connections, sender included"


# --- chat_server --------------------------------------------------------------------


async def chat_session(s):
    chat = s["chat"]
    async with connect(chat.url("/chat")) as alice:
        welcome_a = await recv(alice)
        assert welcome_a.startswith("welcome user_"), welcome_a
        name_a = welcome_a.removeprefix("welcome ")
        await alice.send("hello server!")
        assert await recv(alice) == "echo: hello server!"
        async with connect(chat.url("/chat")) as bob:
            name_b = (await recv(bob)).removeprefix("welcome ")
            assert await recv(alice) == f"{name_b} joined"
            assert http_get(chat, "/clients") == "2"
            assert http_get(chat, "/ping") == "pong"
            await bob.send("hi everyone!")
            assert await recv(bob) == "echo: hi everyone!"
            assert await recv(alice) == f"{name_b}: hi everyone!"
            await alice.close()
            assert await recv(bob) == f"{name_a} left"
    return f"{name_a}/{name_b}: welcome, echo, joined, broadcast, GET /clients = 2, left"


async def chat_page(s):
    html = http_get(s["chat"], "/")
    assert "<title>hvws chat</title>" in html and "new WebSocket(url)" in html
    return f"GET / serves the chat page ({len(html)} bytes)"


# --- tutorial04_patterns: close codes and reasons in both directions --------------------


async def server_closes_with_reason(s):
    p = s["patterns"]
    async with connect(p.url("/ticker")) as ws:
        assert await recv(ws) == "ready"
        await ws.send("one")
        assert await recv(ws) == "count:1"
        await ws.send("bye")
        assert await recv(ws) == "final:1"
        ticker = await closed_by_server(ws)
    assert ticker == (1000, "done"), ticker
    async with connect(p.url("/timeboxed")) as ws:
        started = time.monotonic()
        await ws.send("hi")
        assert await recv(ws) == "you said: hi"
        assert await recv(ws) == "session expired"
        timeboxed = await closed_by_server(ws)
        lasted = time.monotonic() - started
    assert timeboxed == (4001, "session timeout"), timeboxed
    assert lasted >= 0.9, lasted
    return f"/ticker bye -> {ticker}; /timeboxed after {lasted:.1f}s -> {timeboxed}"


async def client_close_reaches_server(s):
    p = s["patterns"]
    async with connect(p.url("/ticker")) as ws:
        assert await recv(ws) == "ready"
        for i in range(3):
            await ws.send(str(i))
            await recv(ws)
        await ws.close(code=4321, reason="python client leaving")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        summaries = http_get(p, "/ticker/summaries").splitlines()
        if "final:3 (4321 python client leaving)" in summaries:
            return "server recorded final:3 (4321 python client leaving)"
        await asyncio.sleep(0.05)
    raise AssertionError(f"summaries: {summaries}")


async def auth(s):
    p = s["patterns"]
    async with connect(p.url("/secure")) as ws:
        missing = await closed_by_server(ws)
    async with connect(p.url("/secure"), additional_headers={"x-api-key": "nope"}) as ws:
        bad = await closed_by_server(ws)
    assert missing == (1008, "missing x-api-key"), missing
    assert bad == (1008, "bad x-api-key"), bad
    async with connect(p.url("/secure"), additional_headers={"X-Api-Key": API_KEY}) as ws:
        assert await recv(ws) == "authorized"
    async with connect(p.url(f"/private?token={API_KEY}")) as ws:
        assert await recv(ws) == "authorized"
    try:
        async with connect(p.url("/private?token=nope")):
            raise AssertionError("the handshake was accepted")
    except InvalidStatus as e:
        status = e.response.status_code
        body = e.response.body.decode()
    assert (status, body) == (401, "bad x-api-key"), (status, body)
    return f"close {missing[0]} {missing[1]!r} / {bad[1]!r}; header and ?token= accepted; handshake refused {status} {body!r}"


async def bridge_and_room(s):
    p = s["patterns"]
    async with connect(p.url("/bridge")) as ws:
        await ws.send(b"\x00\x01\x02 binary \xff")
        ack = await recv(ws)
    assert ack == b"ack:12", ack
    async with connect(p.url("/room")) as a:
        assert await recv(a) == "[*] someone joined"
        async with connect(p.url("/room")) as b:
            assert await recv(b) == "[*] someone joined"
            assert await recv(a) == "[*] someone joined"
            await a.send("name:py")
            assert await recv(b) == "[*] py joined"
            await a.send("hello room")
            assert await recv(b) == "py: hello room"
            await a.close()
            assert await recv(b) == "[*] py left"
    return "bridge acked 12 bytes in binary; room: joined, named, message, left"


# --- over TLS only ---------------------------------------------------------------------


async def tls_is_verified(s):
    """The certificate is really checked, and the port speaks only TLS."""
    chat = s["chat"]
    try:
        async with connect(chat.url("/chat"), ssl=ssl.create_default_context(), open_timeout=5):
            raise AssertionError("a client without the test CA was accepted")
    except ssl.SSLCertVerificationError as e:
        refused = e.verify_message
    try:
        async with connect(f"ws://127.0.0.1:{chat.port}/chat", open_timeout=5):
            raise AssertionError("plain ws:// was accepted on the TLS port")
    except (InvalidMessage, ConnectionError, EOFError) as e:
        plain = type(e).__name__
    async with connect(chat.url("/chat")) as ws:
        assert (await recv(ws)).startswith("welcome user_")
        version = ws.transport.get_extra_info("ssl_object").version()
    return f"without the test CA: {refused!r}; ws:// on the TLS port: {plain}; with it: {version}"


# --- with permessage-deflate ----------------------------------------------------------
#
# The servers: "echo" and "chat" with --deflate, or (with "takeover" true)
# "echo" with --deflate-takeover.


def agreed(ws):
    """The Sec-WebSocket-Extensions of the server's 101, or None."""
    return ws.response.headers.get("Sec-WebSocket-Extensions")


def assert_deflate(ws, s, *params):
    """The server agreed to permessage-deflate, with its own terms (no
    context takeover either way unless it keeps context) and `params`."""
    ext = agreed(ws)
    assert ext is not None and ext.startswith("permessage-deflate"), f"not agreed: {ext!r}"
    nct = "server_no_context_takeover" in ext, "client_no_context_takeover" in ext
    if not params:
        assert nct == ((False, False) if s["takeover"] else (True, True)), ext
    for p in params:
        assert p in ext, f"{p} missing from {ext!r}"
    assert ws.protocol.extensions and ws.protocol.extensions[0].name == "permessage-deflate", ws.protocol.extensions
    return ext


def count_read(ws):
    """Counts the bytes `ws` reads from its socket from now on: a list
    whose one element grows."""
    read = [0]
    receive_data = ws.protocol.receive_data

    def counting(data):
        read[0] += len(data)
        return receive_data(data)

    ws.protocol.receive_data = counting  # websockets looks it up for each read
    return read


async def deflate_small(s):
    async with connect(s["echo"].url("/echo")) as ws:
        ext = assert_deflate(ws, s)
        # Under the server's 64-byte threshold (sent back uncompressed) and over.
        for msg in ["hello", "", "héllo wörld ✓ 🎉", '{"x": 1, "y": 2, "name": "player"}' * 4]:
            await ws.send(msg)
            got = await recv(ws)
            assert got == msg and isinstance(got, str), (len(got), type(got))
        data = bytes(range(256)) * 4
        await ws.send(data)
        got = await recv(ws)
        assert got == data and isinstance(got, bytes)
    return f"agreed {ext!r}; 4 texts (empty, UTF-8, 144 bytes of JSON) and 1 KiB of binary echoed"


async def deflate_one_mib(s):
    async with connect(s["echo"].url("/echo"), max_size=4 * MiB) as ws:
        assert_deflate(ws, s)
        read = count_read(ws)
        text = "0123456789abcdef" * (MiB // 16)
        await ws.send(text)
        got_text = await recv(ws)
        text_read = read[0]
        assert got_text == text, len(got_text)
        assert text_read < MiB // 4, f"the 1 MiB text arrived in {text_read} bytes: not compressed"
        compressible = b"".join(i.to_bytes(4, "big") for i in range(MiB // 4))
        await ws.send(compressible)
        assert await recv(ws) == compressible
        noise = os.urandom(MiB)
        await ws.send(noise)
        assert await recv(ws) == noise
    return f"1 MiB text ({text_read} bytes on the wire), 1 MiB counting and 1 MiB random binary echoed intact"


async def deflate_fragments(s):
    async with connect(s["echo"].url("/echo"), max_size=4 * MiB) as ws:
        assert_deflate(ws, s)
        await ws.send(["frag", "men", "ted ✓"])  # one compressed message, three frames
        assert await recv(ws) == "fragmented ✓"
        chunks = [f"{i:02d}" * (1 << 15) for i in range(16)]
        read = count_read(ws)
        await ws.send(chunks)  # 1 MiB in 16 compressed frames
        got = await recv(ws)
        assert got == "".join(chunks), len(got)
        assert read[0] < MiB // 4, read[0]
        pong = await ws.ping(b"py-ping")
        await asyncio.wait_for(pong, 5)
    return f"3-fragment and 16-fragment (1 MiB, {read[0]} bytes back) messages reassembled; ping answered"


async def deflate_no_context_takeover(s):
    offer = ClientPerMessageDeflateFactory(client_no_context_takeover=True, server_no_context_takeover=True)
    async with connect(s["echo"].url("/echo"), extensions=[offer], max_size=4 * MiB) as ws:
        ext = assert_deflate(ws, s, "server_no_context_takeover")
        # Similar messages, the kind context takeover would help with.
        for tick in range(20):
            msg = f'{{"tick": {tick}, "players": [{{"id": 1, "x": {tick * 3}, "y": 7}}, {{"id": 2, "x": 4, "y": {tick}}}]}}'
            await ws.send(msg)
            assert await recv(ws) == msg
        read = count_read(ws)
        text = "0123456789abcdef" * (MiB // 16)
        await ws.send(text)
        assert await recv(ws) == text
        assert read[0] < MiB // 4, read[0]
    return f"agreed {ext!r}; 20 game-state messages and 1 MiB ({read[0]} bytes back) echoed"


async def deflate_small_windows(s):
    offer = ClientPerMessageDeflateFactory(server_max_window_bits=9, client_max_window_bits=9)
    async with connect(s["echo"].url("/echo"), extensions=[offer], max_size=4 * MiB) as ws:
        ext = assert_deflate(ws, s, "server_max_window_bits=9", "client_max_window_bits=9")
        text = "".join(f"line {i}: the quick brown fox\n" for i in range(40_000))
        read = count_read(ws)
        await ws.send(text)
        assert await recv(ws) == text
        assert read[0] < len(text) // 2, (read[0], len(text))
        await ws.send("short one, over the threshold of sixty-four bytes, twice over!!")
        assert await recv(ws) == "short one, over the threshold of sixty-four bytes, twice over!!"
    return f"agreed {ext!r}; {len(text) >> 10} KiB ({read[0] >> 10} KiB back) and a short message echoed"


async def deflate_broadcast(s):
    """One /broadcast message to clients with different terms: the
    server's terms, 10-bit server window, and no compression."""
    url = s["echo"].url("/broadcast")
    small_window = [ClientPerMessageDeflateFactory(server_max_window_bits=10)]
    async with (
        connect(url) as a,
        connect(url, extensions=small_window) as b,
        connect(url, compression=None) as c,
    ):
        assert_deflate(a, s)
        assert_deflate(b, s, "server_max_window_bits=10")
        assert agreed(c) is None, agreed(c)
        await asyncio.sleep(0.1)  # all registered
        reads = [count_read(ws) for ws in (a, b, c)]
        msg = '{"event": "round over", "scores": [3, 1, 4, 1, 5, 9, 2, 6]}' * 8
        await a.send(msg)
        for ws in (a, b, c):
            assert await recv(ws) == msg
        reads = [r[0] for r in reads]
        assert reads[0] < len(msg) // 2 and reads[1] < len(msg) // 2 and reads[2] > len(msg), reads
    return f"{len(msg)} bytes from a /broadcast client reached it, a 10-bit-window client and an uncompressed one in {reads} bytes"


async def deflate_declined(s):
    async with connect(s["echo"].url("/echo"), compression=None, max_size=4 * MiB) as ws:
        assert agreed(ws) is None, agreed(ws)
        assert not ws.protocol.extensions, ws.protocol.extensions
        read = count_read(ws)
        text = "0123456789abcdef" * (MiB // 16)
        await ws.send(text)
        assert await recv(ws) == text
        assert read[0] >= MiB, read[0]
        await ws.send("small")
        assert await recv(ws) == "small"
    return f"no offer, no extension; 1 MiB came back uncompressed ({read[0]} bytes)"


async def deflate_chat(s):
    async with connect(s["chat"].url("/chat")) as ws:
        ext = assert_deflate(ws, s)
        assert (await recv(ws)).startswith("welcome user_")
    detail = await chat_session(s)
    return f"agreed {ext!r}; {detail}"


TESTS = [
    echo_text,
    echo_binary,
    echo_one_mib,
    echo_fragments_and_ping,
    echo_client_close_code,
    broadcast_path,
    chat_session,
    chat_page,
    server_closes_with_reason,
    client_close_reaches_server,
    auth,
    bridge_and_room,
]


# The echo_server and chat_server checks again, over wss:// and https://.
TLS_TESTS = [
    echo_text,
    echo_binary,
    echo_one_mib,
    echo_fragments_and_ping,
    echo_client_close_code,
    broadcast_path,
    chat_session,
    chat_page,
    tls_is_verified,
]


DEFLATE_TESTS = [
    deflate_small,
    deflate_one_mib,
    deflate_fragments,
    deflate_no_context_takeover,
    deflate_small_windows,
    deflate_broadcast,
    deflate_declined,
    deflate_chat,
]


# The same checks against echo_server --deflate-takeover (no chat).
DEFLATE_TAKEOVER_TESTS = [t for t in DEFLATE_TESTS if t is not deflate_chat]


async def run_tests(tests, servers, tag):
    """Runs each check; prints one line per check; returns (passed, failed)."""
    passed = failed = 0
    for test in tests:
        try:
            detail = await asyncio.wait_for(test(servers), 30)
            print(f"ok   {test.__name__}{tag}: {detail}")
            passed += 1
        except Exception:
            print(f"FAIL {test.__name__}{tag}:\n{traceback.format_exc()}")
            failed += 1
    return passed, failed


def test_certs():
    """The directory with ca.pem, cert.pem and key.pem, and the temporary
    directory to clean up if we made it."""
    if os.environ.get("TLS_CERTS"):
        return Path(os.environ["TLS_CERTS"]), None
    tmp = tempfile.TemporaryDirectory(prefix="hvws-certs-")
    subprocess.run([str(BIN_DIR / "gen_test_certs"), "--out", tmp.name], check=True, capture_output=True, timeout=30)
    return Path(tmp.name), tmp


async def main():
    global CLIENT_SSL
    certs, tmp = test_certs()
    CLIENT_SSL = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    servers = {}
    try:
        servers["echo"] = Server("echo_server", ["--port", "0"], r"echo on ws://[\d.]+:(\d+)/echo")
        servers["chat"] = Server("chat_server", ["--port", "0"], r"chat on ws://[\d.]+:(\d+)/chat")
        servers["patterns"] = Server(
            "tutorial04_patterns",
            ["--port", "0", "--session-secs", "1", "--api-key", API_KEY],
            r"patterns on ws://[\d.]+:(\d+)/",
        )
        tls = {
            "echo": Server("echo_server", ["--port", "0"], r"echo on wss://[\d.]+:(\d+)/echo", tls=certs),
            "chat": Server("chat_server", ["--port", "0"], r"chat on wss://[\d.]+:(\d+)/chat", tls=certs),
        }
        servers.update({f"{name} (tls)": server for name, server in tls.items()})
        deflate = {
            "echo": Server("echo_server", ["--port", "0", "--deflate"], r"echo on ws://[\d.]+:(\d+)/echo"),
            "chat": Server("chat_server", ["--port", "0", "--deflate"], r"chat on ws://[\d.]+:(\d+)/chat"),
        }
        servers.update({f"{name} (deflate)": server for name, server in deflate.items()})
        takeover = {
            "echo": Server("echo_server", ["--port", "0", "--deflate-takeover"], r"echo on ws://[\d.]+:(\d+)/echo")
        }
        servers["echo (deflate-takeover)"] = takeover["echo"]
        passed, failed = await run_tests(TESTS, servers, "")
        tls_passed, tls_failed = await run_tests(TLS_TESTS, tls, " [wss]")
        d_passed, d_failed = await run_tests(DEFLATE_TESTS, {**deflate, "takeover": False}, " [deflate]")
        t_passed, t_failed = await run_tests(
            DEFLATE_TAKEOVER_TESTS, {**takeover, "takeover": True}, " [deflate-takeover]"
        )
        d_passed, d_failed = d_passed + t_passed, d_failed + t_failed
    finally:
        for s in servers.values():
            s.stop()
        if tmp is not None:
            tmp.cleanup()
    print(f"python-websockets: {passed} passed, {failed} failed")
    print(f"python-websockets over wss: {tls_passed} passed, {tls_failed} failed")
    print(f"python-websockets with permessage-deflate: {d_passed} passed, {d_failed} failed")
    return 1 if failed or tls_failed or d_failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
