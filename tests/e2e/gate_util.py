"""Helpers for the gate and keys black-box tests: the iplock binary, free ports, an upstream
that echoes what it received, a running gate, and key creation through the real CLI. Every
process started here is stopped by its own handle; every wait is bounded."""
import json
import re
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import unquote_to_bytes

from conftest import IPLOCK, ROOT, free_port, stop_process, wait_port  # noqa: F401 (re-exported to the gate tests)
from servers import HttpServer, TcpServer


def keys(db, *args, check=True):
    """Runs `iplock keys --db DB --json ARGS`; returns (rc, parsed JSON or None, stderr)."""
    p = subprocess.run([IPLOCK, "keys", "--db", str(db), "--json", *args],
                       capture_output=True, text=True, timeout=20)
    if check and p.returncode != 0:
        raise AssertionError(f"iplock keys {args} failed: {p.stderr}")
    out = json.loads(p.stdout) if p.stdout.strip() else None
    return p.returncode, out, p.stderr


def create_key(db, *args):
    """Creates a key; returns its JSON (with 'secret')."""
    return keys(db, "create", *args)[1]


class Upstream(HttpServer):
    """HTTP/1.1 server on 127.0.0.1 answering every request with a JSON echo of it (HTTPS with
    tls=(cert file, key file))."""

    def __init__(self, tls=None):
        self.requests = []
        self.lock = threading.Lock()
        up = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _do(self):
                body = b""
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        body += self.rfile.read(size)
                        self.rfile.readline()
                else:
                    n = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(n) if n else b""
                rec = {"method": self.command, "path": self.path,
                       "headers": {k.lower(): v for k, v in self.headers.items()},
                       "body_len": len(body), "body_sha": __import__("hashlib").sha256(body).hexdigest()}
                with up.lock:
                    up.requests.append(rec)
                if self.path.startswith("/slow"):
                    time.sleep(0.5)
                if self.path.startswith("/hang"):
                    time.sleep(5)
                    return
                if self.path.startswith("/close"):
                    # a body delimited by closing the connection (no length, no chunks)
                    self.close_connection = True
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                     b"Connection: close\r\n\r\n" + b"y" * 100000)
                    return
                if self.path.startswith("/big/"):
                    n = int(self.path.split("/")[2])
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(n))
                    self.end_headers()
                    chunk = b"x" * 65536
                    left = n
                    while left:
                        k = min(left, len(chunk))
                        self.wfile.write(chunk[:k])
                        left -= k
                    return
                # a Stripe list object, so the SDK's list()/create() calls parse it
                out = json.dumps({"object": "list", "data": [], "has_more": False,
                                  "url": self.path.split("?")[0], "echo": rec}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(out)

            do_GET = do_POST = do_DELETE = do_HEAD = do_PUT = _do

        super().__init__(Handler, tls=tls)

    def last(self):
        with self.lock:
            return self.requests[-1] if self.requests else None


DEFAULT_ROUTES = """
[route tokens]
method = POST
path = /v1/tokens*
resource = token
publishable = true

[route charges]
path = /v1/charges*
resource = charge

[route customers]
path = /v1/customers*
resource = customer
"""


class Gate:
    """A running `iplock gate` with its own config; stop() kills it by its handle."""

    def __init__(self, tmp, db, upstream_port=None, extra="", listen_opts=None, routes=None,
                 mode="reverse-proxy"):
        self.tmp = Path(tmp)
        self.port = free_port()
        self.log = self.tmp / f"access-{self.port}.log"
        lines = ["[gate]"]
        self.ports = {}
        for name, opts in (listen_opts or {"plain": ""}).items():
            p = self.port if name == "plain" else free_port()
            self.ports[name] = p
            lines.append(f"listen = 127.0.0.1:{p} {opts}".rstrip())
        lines += [f"db = {db}", f"mode = {mode}"]
        # a key is said once in [gate]: extra may set its own access_log
        if not re.search(r"^\s*access_log\s*=", extra, re.M):
            lines.append(f"access_log = {self.log}")
        if upstream_port:
            lines.append(f"upstream = 127.0.0.1:{upstream_port}")
        lines.append(extra)
        lines.append(DEFAULT_ROUTES if routes is None else routes)
        self.config = self.tmp / f"gate-{self.port}.ini"
        self.config.write_text("\n".join(lines) + "\n")
        self.stderr = open(self.tmp / f"gate-{self.port}.err", "w+")
        self.proc = subprocess.Popen([IPLOCK, "gate", "-c", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=self.stderr)
        try:
            for p in self.ports.values():
                wait_port("127.0.0.1", p)
        except TimeoutError:
            text = self.errors()
            self.stop(check=False)
            raise AssertionError("gate did not start: " + text)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def errors(self):
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read()

    def access(self):
        if not self.log.exists():
            return []
        return [json.loads(l) for l in self.log.read_text().splitlines() if l.strip()]

    def access_wait(self, n, timeout=5):
        """The access log once it has at least n lines (bounded wait): the gate writes a
        request's line just after its response, so a client can read the answer first."""
        end = time.time() + timeout
        while True:
            try:
                lines = self.access()
            except ValueError:      # a line being written
                lines = []
            if len(lines) >= n or time.time() > end:
                return lines
            time.sleep(0.01)

    def stop(self, check=True):
        """SIGTERM: the gate exits 0 after freeing everything (so ASan/LSan can judge)."""
        stop_process(self.proc)
        text = self.errors()
        self.stderr.close()
        if check and self.proc.returncode != 0:
            raise AssertionError(f"gate exited {self.proc.returncode}: {text[-3000:]}")
        return self.proc.returncode


def curl(url, *args, source=None, timeout=10):
    """curl -s: returns (status, body, headers text)."""
    cmd = ["curl", "-s", "-S", "-o", "-", "-D", "/dev/stderr", "-w", "\n%{http_code}",
           "--max-time", str(timeout)]
    if source:
        cmd += ["--interface", source]
    p = subprocess.run(cmd + list(args) + [url], capture_output=True, text=True,
                       timeout=timeout + 5)
    body, _, code = p.stdout.rpartition("\n")
    return int(code or 0), body, p.stderr


class RawUpstream(TcpServer):
    """An upstream that records each request exactly as it arrived on the wire (request line
    and header fields in order, duplicates kept) and answers 200 with a small JSON body plus
    `extra` response header lines (to test what the gate passes back)."""

    def __init__(self, extra=b""):
        self.extra = extra
        self.requests = []
        self.lock = threading.Lock()
        super().__init__(self._serve_conn, reuse_addr=True)

    def _serve_conn(self, c, _peer):
        c.settimeout(10)
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            fields = []
            for l in lines[1:]:
                n, _, v = l.partition(b":")
                fields.append((n.decode("latin-1"), v.strip().decode("latin-1")))
            n = 0
            for k, v in fields:
                if k.lower() == "content-length":
                    n = int(v)
            while len(buf) < n:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            buf = buf[n:]
            line = lines[0].decode("latin-1")
            with self.lock:
                self.requests.append({"line": line, "target": line.split(" ")[1],
                                      "fields": fields})
            body = json.dumps({"line": line}).encode()
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + self.extra +
                      b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

    def count(self):
        with self.lock:
            return len(self.requests)

    def last(self):
        with self.lock:
            return self.requests[-1] if self.requests else None



def raw_http(port, target, fields=(), method="GET", timeout=10, host="127.0.0.1", body=b""):
    """One request sent byte for byte (str or bytes target, (name, value) fields), read to the
    end. Returns (status, {lower-case name: [values]}, body bytes)."""
    import socket
    if isinstance(target, str):
        target = target.encode("latin-1")
    head = method.encode() + b" " + target + b" HTTP/1.1\r\n"
    if host is not None:
        head += b"Host: " + host.encode() + b"\r\n"
    for n, v in fields:
        head += n.encode("latin-1") + b": " + v.encode("latin-1") + b"\r\n"
    head += b"Connection: close\r\n\r\n"
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(head + body)
        data = b""
        while True:
            try:
                d = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not d:
                break
            data += d
    finally:
        s.close()
    h, _, body = data.partition(b"\r\n\r\n")
    lines = h.decode("latin-1").split("\r\n")
    if not lines or len(lines[0].split(" ")) < 2:
        return 0, {}, body
    hdrs = {}
    for l in lines[1:]:
        n, _, v = l.partition(":")
        hdrs.setdefault(n.strip().lower(), []).append(v.strip())
    return int(lines[0].split(" ")[1]), hdrs, body


LONG = "/v1/charges/" + "a" * 3000

# The gate's path table (test_gate_paths.py, test_gate_nginx.py), for a restricted key with
# only charge=read and routes charges and customers.
# (name, target, status with path_normalize = refuse, rewrite: 400 | (status, upstream path))
PATH_ROWS = [
    ("plain", "/v1/charges", 200, (200, "/v1/charges")),
    ("plain_query", "/v1/charges?limit=3&x=../../customers", 200,
     (200, "/v1/charges?limit=3&x=../../customers")),
    ("other_resource", "/v1/customers", 403, (403, None)),
    ("dot_dot", "/v1/charges/../customers", 400, (403, None)),
    ("enc_dot_dot_lower", "/v1/charges/%2e%2e/customers", 400, (403, None)),
    ("enc_dot_dot_mixed", "/v1/charges/%2E%2e/customers", 400, (403, None)),
    ("half_enc_dot_dot", "/v1/charges/.%2E/customers", 400, (403, None)),
    ("enc_slash", "/v1/charges%2F..%2Fcustomers", 400, 400),
    ("enc_slash_lower", "/v1/charges%2f..%2fcustomers", 400, 400),
    ("enc_dots_and_slash", "/v1/charges/%2e%2e%2fcustomers", 400, 400),
    ("backslash", "/v1/charges\\..\\customers", 400, 400),
    ("enc_backslash", "/v1/charges%5C..%5Ccustomers", 400, 400),
    ("enc_backslash_lower", "/v1/charges%5c..%5ccustomers", 400, 400),
    ("semicolon_param", "/v1/charges;/../customers", 400, 400),
    ("dotdot_semicolon", "/v1/charges/..;/customers", 400, 400),
    ("enc_semicolon", "/v1/charges%3B/../customers", 400, 400),
    ("double_slash_dotdot", "/v1/charges//../customers", 400, (403, None)),
    ("leading_double_slash", "//v1/charges", 400, (200, "/v1/charges")),
    ("inner_double_slash", "/v1//charges", 400, (200, "/v1/charges")),
    ("enc_nul", "/v1/charges%00/../customers", 400, 400),
    ("enc_crlf", "/v1/charges%0d%0aX-Evil:%201", 400, 400),
    ("raw_ctl", b"/v1/charges\x01", 400, 400),
    ("raw_del", b"/v1/charges\x7f", 400, 400),
    ("raw_non_ascii", b"/v1/charges\xc3\xa9", 400, 400),
    ("enc_non_ascii", "/v1/charges%C3%A9", 400, 400),
    ("overlong", LONG, 400, 400),
    ("dot", "/v1/charges/./x", 400, (200, "/v1/charges/x")),
    ("trailing_dotdot", "/v1/charges/..", 400, (403, None)),
    ("unreserved_enc", "/v1/%63harges", 400, (200, "/v1/charges")),
    ("unreserved_enc_other", "/v1/%63ustomers", 400, (403, None)),
    ("lower_pct", "/v1/charges/ch_1%3a", 400, (200, "/v1/charges/ch_1%3A")),
    ("mixed", "/v1/./charges/%2E%2E/%2e/customers", 400, (403, None)),
    ("mixed_slash", "/v1/charges/%2e/..%2F/customers", 400, 400),
    ("double_enc", "/v1/charges%252e%252e/customers", 400, 400),
    ("query_nul", "/v1/charges?x=%00", 400, 400),
    ("fragment", "/v1/charges#/../customers", 400, 400),
    ("absolute_form", "http://127.0.0.1/v1/charges/../customers", 400, (403, None)),
    ("absolute_form_ok", "http://127.0.0.1/v1/charges", 200, (200, "/v1/charges")),
]


def backend_view(target):
    """What an API framework that normalises everything routes on: every escape decoded,
    '\\' as '/', ';' parameters dropped, slashes merged, dot-segments resolved."""
    path = target.split("?", 1)[0]
    if "://" in path:
        path = "/" + path.split("://", 1)[1].split("/", 1)[1]
    p = unquote_to_bytes(path).decode("latin-1").replace("\\", "/")
    out = []
    for seg in p.split("/"):
        seg = seg.split(";", 1)[0]
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
    return "/" + "/".join(out)
