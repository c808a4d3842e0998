"""Checks examples/http_get from outside against Python's http.server.

Usage: python3 tests/http_get/check.py PATH/TO/http_get
Prints "http_get: N passed, M failed"; exits 1 if any failed.
"""

import http.server
import socket
import subprocess
import sys
import threading
import time

BIN = sys.argv[1]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_text(self, status, body, extra=()):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self):
        if self.path == "/hello":
            self.send_text(200, "hello world")
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"first piece", b"second", b"third!"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
                time.sleep(0.15)
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/redirect":
            self.send_text(302, "", [("Location", "/hello")])
        elif self.path == "/loop":
            self.send_text(302, "", [("Location", "/loop")])
        elif self.path == "/missing":
            self.send_text(404, "no such thing")
        elif self.path == "/never":
            time.sleep(5)
            self.close_connection = True
        elif self.path == "/headers":
            self.send_text(200, self.headers.get("X-Test", "none"))
        else:
            self.send_text(404, "not found")

    do_HEAD = do_GET

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n).decode()
        self.send_text(200, f"{self.command} {body}")

    do_PUT = do_POST
    do_DELETE = do_POST


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
BASE = f"http://127.0.0.1:{server.server_address[1]}"

passed = failed = 0


def check(name, args, code, stdout=None, stdout_lines=None, stderr_has=None):
    global passed, failed
    try:
        p = subprocess.run([BIN, *args], capture_output=True, timeout=20)
    except subprocess.TimeoutExpired:
        print(f"FAIL {name}: timed out")
        failed += 1
        return
    out = p.stdout.decode(errors="replace")
    err = p.stderr.decode(errors="replace")
    problems = []
    if p.returncode != code:
        problems.append(f"exit {p.returncode}, expected {code}")
    if stdout is not None and out != stdout:
        problems.append(f"stdout {out!r}, expected {stdout!r}")
    if stdout_lines is not None and not stdout_lines(out.splitlines()):
        problems.append(f"stdout {out!r} not as expected")
    if stderr_has is not None and not (err.startswith("error: ") and stderr_has in err):
        problems.append(f"stderr {err!r}, expected 'error: ...{stderr_has}...'")
    if problems:
        print(f"FAIL {name}: " + "; ".join(problems))
        failed += 1
    else:
        print(f"ok   {name}")
        passed += 1


def streamed(lines):
    # HTTP 200, then one "chunk n bytes" per piece (n from 1), then done.
    if lines[0] != "HTTP 200" or not lines[-1].startswith("done "):
        return False
    chunks = lines[1:-1]
    sizes = []
    for i, line in enumerate(chunks, 1):
        word, n, size = line.split()
        if word != "chunk" or int(n) != i:
            return False
        sizes.append(int(size))
    return len(chunks) >= 3 and sum(sizes) == int(lines[-1].split()[1]) == 23


check("GET", [f"{BASE}/hello"], 0, stdout="HTTP 200\nhello world")
check("404 is a response", [f"{BASE}/missing"], 0, stdout="HTTP 404\nno such thing")
check("chunked", [f"{BASE}/chunked"], 0, stdout="HTTP 200\nfirst piecesecondthird!")
check("--stream", [f"{BASE}/chunked", "--stream"], 0, stdout_lines=streamed)
check("redirect followed", [f"{BASE}/redirect"], 0, stdout="HTTP 200\nhello world")
check("--no-redirect", [f"{BASE}/redirect", "--no-redirect"], 0, stdout="HTTP 302\n")
check("redirect loop", [f"{BASE}/loop"], 2, stdout="", stderr_has="too many redirects")
check("-d posts", [f"{BASE}/echo", "-d", "a=1"], 0, stdout="HTTP 200\nPOST a=1")
check("-X PUT -d", [f"{BASE}/echo", "-X", "PUT", "-d", "x"], 0, stdout="HTTP 200\nPUT x")
check("-H", [f"{BASE}/headers", "-H", "X-Test: yes"], 0, stdout="HTTP 200\nyes")
check("-X HEAD", [f"{BASE}/hello", "-X", "HEAD"], 0, stdout="HTTP 200\n")
check("--timeout-ms", [f"{BASE}/never", "--timeout-ms", "300"], 2, stdout="", stderr_has="timed out")
check("refused", [f"http://127.0.0.1:{free_port()}/"], 2, stdout="", stderr_has="refused")
check("DNS", ["http://nonexistent.invalid/"], 2, stdout="", stderr_has="resolve")
check("bad arguments", [], 2, stderr_has="usage")

server.shutdown()
print(f"http_get: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
