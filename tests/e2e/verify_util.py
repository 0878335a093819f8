"""Helpers for the iplock echo / verify tests and the Stripe end-to-end scenario: a test CA made
with the openssl CLI, a small fake Stripe API, a running `iplock echo`, and `iplock verify`.
Every process started here is stopped by its own handle; every wait is bounded."""
import json
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from conftest import IPLOCK, free_port, wait_port


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, timeout=60, **kw)


def make_ca(d):
    """A test CA and a server certificate for 127.0.0.1 / localhost signed by it.
    Returns (ca_crt, server_crt, server_key)."""
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = d / "ca.key", d / "ca.crt"
    key, csr, crt, ext = d / "server.key", d / "server.csr", d / "server.crt", d / "server.ext"
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(ca_key), "-out", str(ca_crt), "-days", "2",
         "-subj", "/CN=iplock test CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(csr), "-subj", "/CN=localhost"])
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext)])
    return ca_crt, crt, key


class FakeStripe:
    """A tiny Stripe-shaped API behind the gate: POST /v1/charges makes a charge object, GET
    /v1/balance a balance object. Records the client address the gate vouched for
    (X-Iplock-Client) and the key id of every request."""

    def __init__(self):
        self.seen = []      # (client address per the gate, method, path, key id)
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _reply(self, code, obj):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Request-Id", "req_test%d" % time.time_ns())
                self.end_headers()
                self.wfile.write(body)

            def _record(self):
                with api.lock:
                    api.seen.append((self.headers.get("X-Iplock-Client"), self.command,
                                     self.path.split("?")[0], self.headers.get("X-Iplock-Key-Id")))

            def do_GET(self):
                self._record()
                if self.path.split("?")[0] == "/v1/balance":
                    return self._reply(200, {
                        "object": "balance", "livemode": False,
                        "available": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}],
                        "pending": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}]})
                self._reply(404, {"error": {"type": "invalid_request_error",
                                            "message": f"Unrecognized request URL (GET: {self.path})"}})

            def do_POST(self):
                self._record()
                n = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(n).decode())
                if self.path.split("?")[0] != "/v1/charges":
                    return self._reply(404, {"error": {"type": "invalid_request_error",
                                                       "message": "Unrecognized request URL"}})
                amount = int(form.get("amount", ["0"])[0])
                now = int(time.time())
                self._reply(200, {
                    "id": "ch_%d" % time.time_ns(), "object": "charge", "amount": amount,
                    "amount_captured": amount, "amount_refunded": 0, "captured": True,
                    "currency": form.get("currency", ["usd"])[0], "created": now,
                    "description": form.get("description", [None])[0], "livemode": False,
                    "paid": True, "refunded": False, "status": "succeeded",
                    "source": {"id": "card_test", "object": "card", "brand": "Visa", "last4": "4242"},
                    "metadata": {}, "outcome": {"type": "authorized", "network_status": "approved_by_network"}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def clients(self):
        with self.lock:
            return [c for c, _, _, _ in self.seen]

    def clear(self):
        with self.lock:
            self.seen.clear()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Echo:
    """A running `iplock echo`."""

    def __init__(self, tmp, cert=None, key=None):
        self.port = free_port()
        self.tls = cert is not None
        self.err = open(tmp / f"echo-{self.port}.err", "w+")
        args = [IPLOCK, "echo", "--listen", f"127.0.0.1:{self.port}"]
        if cert:
            args += ["--tls-cert", str(cert), "--tls-key", str(key)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.err)
        try:
            wait_port("127.0.0.1", self.port)
        except TimeoutError:
            self.stop()
            raise

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/ip"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.err.seek(0)
        text = self.err.read()
        self.err.close()
        assert self.proc.returncode == 0, f"iplock echo exited {self.proc.returncode}: {text[-2000:]}"


def verify(*args, timeout=60):
    """Runs `iplock verify ARGS`; returns the CompletedProcess (text)."""
    return subprocess.run([IPLOCK, "verify", *args], capture_output=True, text=True, timeout=timeout)


def verify_json(*args):
    p = verify("--json", *args)
    return p.returncode, json.loads(p.stdout), p.stderr
