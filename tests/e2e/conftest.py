"""Shared fixtures for black-box tests: the real iplock binary on loopback, an origin server
that reports the TCP peer address it saw, and raw-socket helpers. Every process started here
is stopped by its own handle; every wait is bounded."""
import hashlib
import json
import os
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from servers import HttpServer

ROOT = Path(__file__).resolve().parents[2]
IPLOCK = os.environ.get("IPLOCK_BIN", str(ROOT / "build" / "iplock"))
PASSWORD = "s3cret-pass"


_ports_given = set()


def free_port(host="127.0.0.1"):
    """A port free now and never handed out before in this test run: the kernel may give a just
    released port again, and two of one config's listeners then collide (a flaky failure)."""
    while True:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def wait_port(host, port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} never opened")


class Origin(HttpServer):
    """An HTTP/1.1 origin on 127.0.0.1 that answers with the peer address it saw."""

    def __init__(self):
        self.seen = []          # (peer address, method, path) of every request that arrived
        self.lock = threading.Lock()
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _record(self):
                with origin.lock:
                    origin.seen.append((self.client_address[0], self.command, self.path))

            def _reply(self, obj, code=200, extra=None):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _read_body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().strip().split(b";")[0], 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length", 0) or 0)
                return self.rfile.read(n)

            def do_GET(self):
                self._record()
                if self.path.startswith("/big/"):
                    n = int(self.path.split("/")[2])
                    chunk = bytes(range(256)) * 256
                    self.send_response(200)
                    if "chunked" in self.path:
                        self.send_header("Transfer-Encoding", "chunked")
                    else:
                        self.send_header("Content-Length", str(n))
                    self.end_headers()
                    sent = 0
                    while sent < n:
                        part = chunk[: min(len(chunk), n - sent)]
                        if "chunked" in self.path:
                            self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
                        else:
                            self.wfile.write(part)
                        sent += len(part)
                    if "chunked" in self.path:
                        self.wfile.write(b"0\r\n\r\n")
                    return
                self._reply({"origin": self.client_address[0], "path": self.path,
                             "headers": {k.lower(): v for k, v in self.headers.items()}})

            do_HEAD = do_GET

            def do_POST(self):
                self._record()
                data = self._read_body()
                self._reply({"origin": self.client_address[0], "len": len(data),
                             "sha256": hashlib.sha256(data).hexdigest(),
                             "headers": {k.lower(): v for k, v in self.headers.items()}})

            do_PUT = do_POST

        super().__init__(Handler)

    def peers(self):
        with self.lock:
            return [p for p, _, _ in self.seen]

    def clear(self):
        with self.lock:
            self.seen.clear()


@pytest.fixture(scope="session")
def origin():
    o = Origin()
    yield o
    o.close()


@pytest.fixture(scope="session")
def password_hash():
    out = subprocess.run([IPLOCK, "passwd", "alice", "--password-stdin"], input=PASSWORD,
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return next(l.split("=", 1)[1].strip() for l in out.splitlines() if l.startswith("password_hash"))


def stop_process(proc):
    """SIGTERM, a bounded wait, SIGKILL if it did not exit; returns the exit status. Only ever
    the process this handle started (by its PID)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return proc.returncode


class Proxy:
    def __init__(self, tmp, config_text, extra_args=(), preexec=None):
        self.port = free_port()
        self.path = Path(tmp) / "proxy.ini"
        self.log = Path(tmp) / "access.log"
        self.stderr = Path(tmp) / "proxy.stderr"
        self.write_config(config_text)
        self.proc = subprocess.Popen([IPLOCK, "proxy", "-c", str(self.path), *extra_args],
                                     stdout=subprocess.DEVNULL, stderr=open(self.stderr, "w"),
                                     preexec_fn=preexec)
        try:
            wait_port("127.0.0.1", self.port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(self.stderr.read_text())

    def write_config(self, text):
        self.path.write_text(text.replace("@PORT@", str(self.port)).replace("@LOG@", str(self.log)))

    def url(self, user="alice", password=PASSWORD):
        return f"http://{user}:{password}@127.0.0.1:{self.port}"

    def log_lines(self):
        if not self.log.exists():
            return []
        return [json.loads(l) for l in self.log.read_text().splitlines() if l.strip()]

    def reload_count(self):
        text = self.stderr.read_text() if self.stderr.exists() else ""
        return text.count("] info: reloaded ") + text.count("reload refused")

    def reload(self, timeout=10.0):
        """SIGHUP, then wait until the proxy says the reload was applied or refused (the line it
        logs just before telling systemd READY=1), instead of sleeping."""
        before = self.reload_count()
        self.proc.send_signal(1)
        deadline = time.time() + timeout
        while self.reload_count() == before:
            if time.time() > deadline or self.proc.poll() is not None:
                raise TimeoutError(f"no reload line from the proxy: {self.stderr.read_text()[-2000:]}")
            time.sleep(0.01)

    def stop(self):
        return stop_process(self.proc)


def base_config(origin_port, password_hash, extra_proxy="", extra_user="", extra=""):
    return f"""[proxy]
listen = 127.0.0.1:@PORT@
egress = 127.0.0.2 127.0.0.3
allow_destinations = 127.0.0.1/32
connect_ports = 443 80 {origin_port}
http_ports = 80 {origin_port}
header_timeout = 2s
access_log = @LOG@
{extra_proxy}

[user alice]
password_hash = {password_hash}
{extra_user}
{extra}
"""


@pytest.fixture
def proxy_factory(tmp_path):
    started = []

    def make(text, extra_args=(), preexec=None):
        d = tmp_path / f"p{len(started)}"
        d.mkdir()
        p = Proxy(d, text, extra_args, preexec)
        started.append(p)
        return p

    yield make
    for p in started:
        rc = p.stop()
        assert rc == 0, f"proxy exited {rc}: {p.stderr.read_text()[-2000:]}"


@pytest.fixture
def proxy(proxy_factory, origin, password_hash):
    return proxy_factory(base_config(origin.port, password_hash))


def raw_request(port, data, timeout=5.0, read_all=True):
    """Send raw bytes to the proxy; return everything it answers until it closes (bounded)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
            if not read_all and b"\r\n\r\n" in out:
                break
        return out


def basic(user="alice", password=PASSWORD):
    import base64
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- key stores: every gate test runs on SQLite and on a throwaway PostgreSQL cluster ---------
from pg_util import pg, pg_tcp  # noqa: E402,F401 (one cluster each per test session, started on first use)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store_db(request, tmp_path_factory):
    """A factory of fresh, empty key stores on this module's backend: store_db(tmp_dir) gives a
    SQLite file in tmp_dir, or a new database on the session's PostgreSQL cluster."""
    if request.param == "sqlite":
        return lambda tmp=None: (tmp or tmp_path_factory.mktemp("store")) / "keys.db"
    cluster = request.getfixturevalue("pg")
    return lambda tmp=None: cluster.new_pgdb()
