"""game_server and game_bot, checked from outside (run by tests/game/run.sh).

    python3 tests/game/check.py target/release/examples

One scenario, every wait bounded:

1. game_server --idle-secs 1 on a free 127.0.0.1 port; GET /health is `ok`,
   GET /state is an `application/json` snapshot.
2. game_bot with 4 bots: 0 and 1 good, 2 bad (--bad-bots 1), 3 silent
   (--silent-bots 1). Each is welcomed with its own id; the bad one is
   closed with 4000 and a reason that starts with `bad input` (cut to fit a
   close frame), the silent one with 4001 `idle` although it answered
   pings; GET /state then lists exactly the good bots.
3. SIGTERM: the server exits 0 and the good bots see 1001, then plan
   reconnects; a server restarted on the same port gets them back, and not
   the kicked two.
4. The bots exit 0 and their summaries say every snapshot showed them where
   their inputs took them. SIGINT stops the second server, exit 0.

Prints one line per check and `game: N passed, M failed`; exits 1 if any
check failed.
"""

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

BOT_SECS = 12  # the bots' whole run: covers the kicks, a stop and a restart


class Proc:
    """A child process whose stdout lines are collected as they come."""

    def __init__(self, name, argv):
        self.name = name
        self.lines = []
        self.eof = False
        self.cond = threading.Condition()
        self.p = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
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

    def wait_line(self, pattern, timeout, start=0):
        """The first line at index >= start that matches, as (index, match)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.lines)):
                    m = rx.search(self.lines[i])
                    if m:
                        return i, m
                left = deadline - time.monotonic()
                if self.eof:
                    raise Failure(f"{self.name} ended without a line matching {pattern!r}")
                if left <= 0:
                    raise Failure(f"{self.name}: no line matching {pattern!r} within {timeout} s")
                self.cond.wait(min(left, 0.2))

    def matching(self, pattern):
        rx = re.compile(pattern)
        with self.cond:
            return [m for m in map(rx.search, self.lines) if m]

    def signal(self, sig):
        if self.p.poll() is None:
            self.p.send_signal(sig)  # by PID

    def wait_exit(self, timeout):
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
            return "\n".join(f"    {self.name}| {l}" for l in self.lines)


class Failure(Exception):
    pass


passed = 0
failed = 0


def check(ok, what):
    global passed
    if not ok:
        raise Failure(what)
    passed += 1
    print(f"ok   {what}")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def wait_healthy(port, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return http_get(port, "/health")
        except OSError:
            if time.monotonic() > deadline:
                raise Failure(f"no answer on 127.0.0.1:{port}/health within {timeout} s")
            time.sleep(0.1)


def close_of(bots, k, timeout, start=0):
    i, m = bots.wait_line(
        rf"^bot {k} close code=(\d+) reason=\"(.*)\" clean=(\w+) by=(\w+)$", timeout, start
    )
    reason = m.group(2).replace('\\"', '"').replace("\\\\", "\\")
    return i, int(m.group(1)), reason, m.group(3) == "true"


def summary(bots, k):
    m = bots.matching(rf"^bot {k} summary (.*)$")
    if not m:
        raise Failure(f"bot {k} printed no summary")
    return {kv.split("=")[0]: kv.split("=")[1] for kv in m[-1].group(1).split()}


def scenario(examples, procs):
    port = free_port()
    server_argv = [str(examples / "game_server"), "--port", str(port), "--hz", "30",
                   "--idle-secs", "1", "--host", "127.0.0.1"]

    # 1. The server and its HTTP side.
    server = Proc("server", server_argv)
    procs.append(server)
    status, ctype, body = wait_healthy(port, 15)
    check(status == 200 and body == "ok", f"GET /health answers ok (port {port})")
    status, ctype, body = http_get(port, "/state")
    state = json.loads(body)
    check(
        status == 200 and ctype == "application/json" and state["type"] == "snapshot"
        and isinstance(state["tick"], int) and state["players"] == [],
        f"GET /state is an application/json snapshot with no players: {body}",
    )

    # 2. Bots: welcomes, the kick, the idle close.
    bots = Proc("bots", [str(examples / "game_bot"), "--url", f"ws://127.0.0.1:{port}/game",
                         "--bots", "4", "--bad-bots", "1", "--silent-bots", "1",
                         "--secs", str(BOT_SECS)])
    procs.append(bots)
    ids = {k: int(bots.wait_line(rf"^bot {k} open id=(\d+)$", 10)[1].group(1)) for k in range(4)}
    check(len(set(ids.values())) == 4, f"each bot welcomed with its own id: {ids}")

    _, code, reason, clean = close_of(bots, 2, 10)
    check(
        code == 4000 and reason.startswith("bad input: unknown field")
        and len(reason.encode()) <= 123 and clean,
        f"the bad bot is closed with 4000 {reason[:40]!r}... ({len(reason.encode())} bytes, cut to fit)",
    )
    _, code, reason, clean = close_of(bots, 3, 10)
    check(code == 4001 and reason == "idle" and clean,
          f"the silent bot is closed with 4001 {reason!r}, clean={clean}")

    time.sleep(0.3)  # a few frames with only the good bots
    _, ctype, body = http_get(port, "/state")
    later = json.loads(body)
    listed = sorted(p["id"] for p in later["players"])
    check(
        later["tick"] > state["tick"] and listed == sorted([ids[0], ids[1]])
        and all(isinstance(p["x"], int) and isinstance(p["y"], int) for p in later["players"]),
        f"GET /state at tick {later['tick']} lists the good bots only: {listed}",
    )

    # 3. SIGTERM: 1001 for everyone, exit 0; restart; the good bots return.
    mark = len(bots.lines)
    server.signal(signal.SIGTERM)
    rc = server.wait_exit(10)
    check(rc == 0, f"SIGTERM: game_server exits {rc}")
    check(any("player" in l and "1001" in l for l in server.lines),
          "game_server closed its players with 1001 before exiting")
    for k in (0, 1):
        i, code, reason, clean = close_of(bots, k, 5, mark)
        bots.wait_line(rf"^bot {k} reconnecting attempt=1 delay_ms=\d+$", 5, i)
        check(code == 1001 and clean, f"bot {k} saw {code} {reason!r} (clean) and plans a reconnect")

    time.sleep(0.5)  # at least one refused attempt
    server = Proc("server2", server_argv)
    procs.append(server)
    wait_healthy(port, 15)
    for k in (0, 1):
        _, m = bots.wait_line(rf"^bot {k} open id=(\d+)$", 15, mark)
        check(True, f"bot {k} is back after the restart (id {m.group(1)})")

    # 4. The bots' own account, after their run.
    rc = bots.wait_exit(BOT_SECS + 20)
    check(rc == 0, f"game_bot exits {rc} after --secs {BOT_SECS}")
    for k in (2, 3):
        opens = len(bots.matching(rf"^bot {k} open "))
        retries = len(bots.matching(rf"^bot {k} reconnecting "))
        check(opens == 1 and retries == 0, f"bot {k}, closed with 400x, did not come back ({opens} open, {retries} reconnecting)")
    for k in (0, 1):
        s = summary(bots, k)
        check(
            s["opens"] == "2" and int(s["snapshots"]) > 30 and int(s["inputs"]) > 10
            and int(s["moves_seen"]) > 10 and s["mismatches"] == "0" and s["missing"] == "0",
            f"bot {k}: every snapshot showed it where its inputs took it ({s})",
        )
    check(not bots.matching(r"^bot \d+ mismatch "), "no bot saw a snapshot out of step with its inputs")
    s = summary(bots, 3)
    check(int(s["pings"]) >= 1, f"the silent bot answered {s['pings']} pings before its idle close")

    server.signal(signal.SIGINT)
    rc = server.wait_exit(10)
    check(rc == 0, f"SIGINT: the restarted game_server exits {rc}")


def main():
    global failed
    examples = Path(sys.argv[1] if len(sys.argv) > 1 else "target/release/examples")
    procs = []
    started = time.monotonic()
    try:
        scenario(examples, procs)
    except (Failure, OSError, KeyError, ValueError) as e:
        failed += 1
        print(f"FAIL {e}")
        for p in procs:
            print(p.dump())
    finally:
        for p in procs:
            p.kill()
    print(f"({time.monotonic() - started:.1f} s)")
    print(f"game: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
