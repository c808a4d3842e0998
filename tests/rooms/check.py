"""room_server and chat_server --threads, checked from outside (run by
tests/rooms/run.sh).

    python3 tests/rooms/check.py target/debug/examples

1. room_server's flags: in a build without the `redis` feature (this
   one), --redis URL is refused with exit 2 and says which feature it
   needs (tests/redis/ runs it with the feature); a bad or missing flag
   exits 2.
2. room_server --port 0 --threads 4 (RUST_LOG=info): the port from its
   first line; 12 clients, each placed on a thread by the server's log
   (`thread T: ... opened from 127.0.0.1:PORT`), on at least 2 threads.
3. The protocol on one client: joined/left/rooms and every `error:` answer.
4. Every client joins `lobby`, the even ones `red` too; each says one line
   in the lobby, each even one a line in red, each odd one in red gets
   `error: not in red`. Each subscriber hears each line exactly once
   (counted; a `rooms` answer after them shows nothing more came), the odd
   ones nothing from red. A client that leaves hears no more.
5. SIGTERM by PID: every client gets 1001, the server exits 0.
6. chat_server --port 0 --threads 4: clients until two are on different
   threads; distinct names, the join, each one's line and the leave cross
   threads; GET /clients counts every thread's clients; SIGTERM.
7. echo_server --port 0 --threads 4: /echo echoes; 12 /broadcast clients
   each say a line, and each hears every line once.

Standard library only: the WebSocket client below is just enough for
text frames, pings and closes. Prints one line per check and
`rooms: N passed, M failed`; exits 1 if any check failed.
"""

import base64
import hashlib
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

TIMEOUT = 5  # seconds, for every single wait


class Failure(Exception):
    pass


passed = 0


def check(ok, what):
    global passed
    if not ok:
        raise Failure(what)
    passed += 1
    print(f"ok   {what}")


class Proc:
    """A child process whose output lines (stdout and stderr) are collected."""

    def __init__(self, name, argv, env=None):
        self.name = name
        self.lines = []
        self.eof = False
        self.cond = threading.Condition()
        self.p = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            env={**os.environ, **(env or {})},
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_line(self, pattern, timeout=TIMEOUT):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    m = rx.search(line)
                    if m:
                        return m
                if self.eof:
                    raise Failure(f"{self.name} ended without a line matching {pattern!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Failure(f"{self.name}: no line matching {pattern!r} within {timeout} s")
                self.cond.wait(min(left, 0.2))

    def signal(self, sig):
        if self.p.poll() is None:
            self.p.send_signal(sig)  # by PID

    def wait_exit(self, timeout=TIMEOUT):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Failure(f"{self.name} (pid {self.p.pid}) still running after {timeout} s")

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()  # SIGKILL to this PID only
            self.p.wait(5)

    def dump(self):
        with self.cond:
            return "\n".join(f"    {self.name}| {l}" for l in self.lines[-60:])


class WS:
    """A blocking WebSocket client: text out (masked), text, ping and close in."""

    def __init__(self, port, path):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.addr = "%s:%d" % self.sock.getsockname()
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
        )
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        accept = base64.b64encode(
            hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
        ).decode()
        status, *lines = head.decode().split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines)}
        if not status.startswith("HTTP/1.1 101") or headers.get("sec-websocket-accept") != accept:
            raise Failure(f"handshake refused: {head!r}")

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise Failure(f"{self.addr}: the server closed the TCP connection")
        self.buf += data

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send_frame(self, opcode, payload):
        head = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def send(self, text):
        self._send_frame(0x1, text.encode())

    def send_binary(self, data):
        self._send_frame(0x2, data)

    def next(self):
        """The next message: ("text", str) or ("close", code, reason)."""
        message, first = b"", None
        while True:
            b0, b1 = self._take(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._take(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._take(8))[0]
            payload = self._take(n)
            if opcode == 0x9:
                self._send_frame(0xA, payload)
            elif opcode == 0xA:
                pass
            elif opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                try:
                    self._send_frame(0x8, payload[:2])
                except OSError:
                    pass
                return ("close", code, payload[2:].decode())
            else:
                if opcode != 0x0:
                    first = opcode
                message += payload
                if b0 & 0x80:
                    if first != 0x1:
                        raise Failure(f"{self.addr}: a binary message")
                    return ("text", message.decode())

    def recv(self):
        m = self.next()
        if m[0] != "text":
            raise Failure(f"{self.addr}: wanted text, got {m}")
        return m[1]

    def ask(self, command, want):
        self.send(command)
        got = self.recv()
        if got != want:
            raise Failure(f"{self.addr}: {command!r} answered {got!r}, want {want!r}")

    def close(self):
        try:
            self._send_frame(0x8, struct.pack("!H", 1000))
            while self.next()[0] != "close":
                pass
        finally:
            self.sock.close()


def placed(server, clients, pattern):
    """Each client's thread, from the server's log."""
    return {c.addr: int(server.wait_line(pattern.format(addr=re.escape(c.addr))).group(1)) for c in clients}


def flags(examples):
    rs = str(examples / "room_server")
    r = subprocess.run([rs, "--port", "0", "--redis", "redis://127.0.0.1:6379"], capture_output=True, text=True, timeout=TIMEOUT)
    check(
        r.returncode == 2 and "room_server: --redis needs the Redis bridge: build with --features redis" in r.stderr,
        f"--redis is refused with exit 2 without the redis feature: {r.stderr.strip()!r}",
    )
    for argv in (["--port"], ["--port", "x"], ["--threads", "0", "--port", "0"], ["--bogus"], []):
        r = subprocess.run([rs, *argv], capture_output=True, text=True, timeout=TIMEOUT)
        check(r.returncode == 2 and "usage: room_server" in r.stderr, f"room_server {' '.join(argv)} exits 2 with the usage")


def rooms(examples, procs):
    server = Proc("room_server", [str(examples / "room_server"), "--port", "0", "--threads", "4"], {"RUST_LOG": "info"})
    procs.append(server)
    m = server.wait_line(r"^room_server listening on 127\.0\.0\.1:(\d+), 4 threads: ws://127\.0\.0\.1:\d+/rooms$")
    port = int(m.group(1))
    check(port != 0, f"room_server --port 0 --threads 4 prints its port: {port}")

    clients = [WS(port, "/rooms") for _ in range(12)]
    threads = placed(server, clients, r"thread (\d+): \S+ opened from {addr}$")
    on = sorted(set(threads.values()))
    check(len(on) >= 2, f"12 clients on threads {[threads[c.addr] for c in clients]}")

    c = clients[0]
    for command, want in [
        ("rooms", "rooms:"),
        ("join red", "joined red"),
        ("join red", "error: already in red"),
        ("join blue", "joined blue"),
        ("rooms", "rooms: blue red"),
        ("leave blue", "left blue"),
        ("leave blue", "error: not in blue"),
        ("leave red", "left red"),
        ("say red hi", "error: not in red"),
        ("join", "error: join needs a room: join ROOM"),
        ("leave", "error: leave needs a room: leave ROOM"),
        ("join ", "error: empty room name"),
        ("join a b", "error: a room name is printable ASCII without spaces"),
        ("join " + "x" * 33, "error: room name over 32 bytes"),
        ("say", "error: say needs a room and a text: say ROOM TEXT"),
        ("say red", "error: say needs a room and a text: say ROOM TEXT"),
        ("rooms now", "error: rooms takes no argument"),
        ("hello", "error: unknown command; the commands are join ROOM, leave ROOM, say ROOM TEXT, rooms"),
    ]:
        c.ask(command, want)
    c.send_binary(b"\x01\x02")
    check(c.recv() == "error: commands are text messages", "join/leave/rooms answers and 18 error cases, and a binary message, as documented")
    for i in range(16):
        c.ask(f"join r{i}", f"joined r{i}")
    c.ask("join r16", "error: at most 16 rooms per client")
    for i in range(16):
        c.ask(f"leave r{i}", f"left r{i}")
    check(True, "a client may be in 16 rooms, not 17")

    # Everyone in the lobby, the even ones in red too.
    for i, c in enumerate(clients):
        c.ask("join lobby", "joined lobby")
        if i % 2 == 0:
            c.ask("join red", "joined red")
    for i, c in enumerate(clients):
        c.send(f"say lobby hello from {i}")
        if i % 2 == 0:
            c.send(f"say red red from {i}")
        else:
            c.send(f"say red sneaking in {i}")
    n = len(clients)
    lobby = sorted(f"lobby: hello from {i}" for i in range(n))
    red = sorted(f"red: red from {i}" for i in range(0, n, 2))
    for i, c in enumerate(clients):
        want = lobby + (red if i % 2 == 0 else [f"error: not in red"])
        heard = sorted(c.recv() for _ in range(len(want)))
        if heard != sorted(want):
            raise Failure(f"client {i} on thread {threads[c.addr]} heard {heard}, want {sorted(want)}")
        # Had a line come twice, the copy would come before this answer:
        # it travels in the same batch as its first copy.
        c.ask("rooms", "rooms: lobby red" if i % 2 == 0 else "rooms: lobby")
    check(True, f"{n} lines in the lobby and {n // 2} in red over {len(on)} threads: each subscriber heard each once, nothing more; the odd ones got `error: not in red`")

    # A client that leaves hears nothing more; one on another thread says.
    # The leaver, an odd one (in the lobby only), shares its thread with
    # another subscriber (6 odd clients on 4 threads: two share one), whose
    # copy shows the thread delivered the line before the leaver's `rooms`
    # answer.
    leaver = next(c for c in clients[1::2] if sum(t == threads[c.addr] for t in threads.values()) >= 2)
    sayer = next(c for c in clients if threads[c.addr] != threads[leaver.addr])
    leaver.ask("leave lobby", "left lobby")
    sayer.send("say lobby after the leave")
    for c in clients:
        if c is not leaver:
            got = c.recv()
            if got != "lobby: after the leave":
                raise Failure(f"{c.addr} got {got!r}")
    leaver.ask("rooms", "rooms:")
    check(True, f"a client that left the lobby (thread {threads[leaver.addr]}) hears nothing from thread {threads[sayer.addr]}")

    # A client that closes: its rooms go with it.
    clients[2].close()
    clients = [c for c in clients if c is not clients[2]]
    server.wait_line(r"room lobby inactive|closed: 1000")

    server.signal(signal.SIGTERM)
    codes = [c.next() for c in clients]
    check(all(m[0] == "close" and m[1] == 1001 for m in codes), f"SIGTERM: all {len(clients)} clients got 1001")
    rc = server.wait_exit()
    check(rc == 0, f"room_server exits 0 after SIGTERM (got {rc})")
    for c in clients:
        c.sock.close()


def chat(examples, procs):
    server = Proc("chat_server", [str(examples / "chat_server"), "--port", "0", "--threads", "4"], {"RUST_LOG": "info"})
    procs.append(server)
    port = int(server.wait_line(r"chat on ws://127\.0\.0\.1:(\d+)/chat, 4 threads").group(1))
    check(True, f"chat_server --port 0 --threads 4 listens on {port}")
    pattern = r"opened /chat as user_\d+, thread (\d+), from {addr}, extensions: none$"
    # Connect until two are on different threads; each reads its welcome
    # and the joins of the ones after it.
    clients, names = [], []
    for _ in range(32):
        c = WS(port, "/chat")
        w = c.recv()
        if not w.startswith("welcome user_"):
            raise Failure(f"first message {w!r}")
        for old in clients:
            # Skipping the late notice of an earlier join (see next_line).
            j = old.recv()
            while j in {f"{n} joined" for n in names}:
                j = old.recv()
            if j != f"{w.removeprefix('welcome ')} joined":
                raise Failure(f"{old.addr} got {j!r} for the newcomer")
        clients.append(c)
        names.append(w.removeprefix("welcome "))
        threads = placed(server, clients, pattern)
        if len(set(threads.values())) >= 2:
            break
    known = {f"{n} joined" for n in names}

    def next_line(c):
        """The next line but the notice of an earlier join: a join
        published on another thread just before c subscribed may still
        reach c (threads have no order between them)."""
        while True:
            line = c.recv()
            if line not in known:
                return line

    check(len(set(names)) == len(names), f"{len(clients)} clients, on threads {[threads[c.addr] for c in clients]}, names all distinct: {names}")
    a = clients[0]
    i = next(k for k, c in enumerate(clients) if threads[c.addr] != threads[a.addr])
    b = clients[i]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/clients", timeout=TIMEOUT) as r:
        count = r.read().decode()
    check(count == str(len(clients)), f"GET /clients counts every thread's clients: {count}")
    b.send("hi from b")
    got = next_line(b)
    check(got == "echo: hi from b", f"the sender gets its echo: {got!r}")
    for k, c in enumerate(clients):
        if c is not b:
            got = next_line(c)
            if got != f"{names[i]}: hi from b":
                raise Failure(f"client {k} got {got!r}")
    a.send("hi from a")
    got = next_line(a)
    if got != "echo: hi from a":
        raise Failure(f"{names[0]} got {got!r}")
    got = next_line(b)
    check(got == f"{names[0]}: hi from a", f"{names[0]} (thread {threads[a.addr]}) and {names[i]} (thread {threads[b.addr]}) hear each other: {got!r}")
    a.close()
    got = next_line(b)
    check(got == f"{names[0]} left", f"{names[i]} hears that {names[0]} left: {got!r}")
    server.signal(signal.SIGTERM)
    server.wait_exit()
    for c in clients:
        c.sock.close()


def echo(examples, procs):
    server = Proc("echo_server", [str(examples / "echo_server"), "--port", "0", "--threads", "4"])
    procs.append(server)
    m = server.wait_line(r"^echo on ws://127\.0\.0\.1:(\d+)/echo, broadcast on ws://127\.0\.0\.1:\d+/broadcast, 4 threads$")
    port = int(m.group(1))
    e = WS(port, "/echo")
    e.send("echo me")
    check(e.recv() == "echo me", f"echo_server --threads 4 (port {port}) echoes on /echo")
    # 12 connections: the kernel puts them on several of the 4 threads
    # (all on one: a chance of 4 in 4^12).
    clients = [WS(port, "/broadcast") for _ in range(12)]
    # Each says one line once all are connected; each hears every line once.
    for i, c in enumerate(clients):
        c.send(f"line {i}")
    want = sorted(f"line {i}" for i in range(len(clients)))
    for c in clients:
        heard = sorted(c.recv() for _ in range(len(want)))
        if heard != want:
            raise Failure(f"{c.addr} heard {heard}")
    e.send("fence")
    check(e.recv() == "fence", "each of 12 /broadcast clients of echo_server --threads 4 heard each line once; /echo got none")
    server.signal(signal.SIGTERM)
    server.wait_exit()
    for c in clients + [e]:
        c.sock.close()


def main():
    examples = Path(sys.argv[1] if len(sys.argv) > 1 else "target/debug/examples")
    procs = []
    try:
        flags(examples)
        rooms(examples, procs)
        chat(examples, procs)
        echo(examples, procs)
    except (Failure, OSError, ValueError) as e:
        print(f"FAIL {e}")
        for p in procs:
            print(p.dump())
        print(f"rooms: {passed} passed, 1 failed")
        return 1
    finally:
        for p in procs:
            p.kill()
    print(f"rooms: {passed} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
