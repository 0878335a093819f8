"""Two `iplock proxy` nodes behind Debian's HAProxy (TCP mode, send-proxy-v2, health checks on
/healthz), configured from etc/fleet/ with only ports, paths and check timings rewritten: node 1
leaves from 127.0.0.2, node 2 from 127.0.0.3.

- `iplock verify` through the balancer finds both nodes' addresses (one node alone: only its own).
- PROXY protocol: the node logs the real client (a client bound to 127.0.0.7), refuses a spoofed
  header from a peer not in trusted_balancers, and a connection without a valid header.
- python3-stripe with stripe.proxy = HAProxy against an HTTPS origin that records the source
  address: the origin sees both egress addresses; node 1 stopped (SIGTERM, then kill -9) in the
  middle of a stream: only requests in flight on node 1 are hit, and the SDK's retries
  (max_network_retries) succeed through node 2. The failover time is measured and printed."""
import json
import re
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from conftest import IPLOCK, PASSWORD, Proxy, free_port, stop_process, wait_port
from servers import HttpServer
from verify_util import Echo, make_ca, verify_json

ROOT = Path(__file__).resolve().parents[2]
ETC = ROOT / "etc" / "fleet"
CHECK = "default-server inter 100ms fastinter 100ms downinter 100ms fall 2 rise 1"


def sub1(text, old, new):
    """Replace exactly one occurrence: the example must still have the line the test rewrites."""
    assert text.count(old) == 1, f"etc/fleet example changed: {old!r} not found once"
    return text.replace(old, new)


class Origin(HttpServer):
    """An HTTPS Stripe-shaped origin (POST /v1/charges) that records the TCP peer (the egress
    address), the Idempotency-Key, and when each request started; every answer closes its
    connection, so each request is a new CONNECT through the balancer."""

    def __init__(self, cert, key, delay=0.0):
        self.delay = delay
        self.seen = []        # (peer, idempotency key, t_start)
        self.active = {}      # peer -> [t_start, ...] of requests being answered
        self.lock = threading.Lock()
        o = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                peer, t0 = self.client_address[0], time.time()
                with o.lock:
                    o.seen.append((peer, self.headers.get("Idempotency-Key"), t0))
                    o.active.setdefault(peer, []).append(t0)
                try:
                    self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    time.sleep(o.delay)
                    body = json.dumps({"id": "ch_%d" % time.time_ns(), "object": "charge", "amount": 2000,
                                       "currency": "usd", "status": "succeeded", "paid": True,
                                       "egress": peer}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass   # the node that carried this request was killed
                finally:
                    with o.lock:
                        o.active[peer].remove(t0)
                self.close_connection = True

        super().__init__(H, tls=(cert, key))

    def peers(self):
        with self.lock:
            return [p for p, _, _ in self.seen]


class HAProxy:
    def __init__(self, tmp, nodes):
        self.port = free_port()
        self.sock = tmp / "haproxy.sock"
        self.out = open(tmp / "haproxy.log", "w+")
        text = (ETC / "haproxy.cfg").read_text()
        text = sub1(text, "stats socket /run/haproxy/iplock.sock", f"stats socket {self.sock}")
        text = sub1(text, "bind 127.0.0.1:3128", f"bind 127.0.0.1:{self.port}")
        text = sub1(text, "maxconn 20000", "maxconn 1000")   # within the test's descriptor limit
        text = re.sub(r"default-server [^\n]*", CHECK, text)
        for i, n in enumerate(nodes, 1):
            text = sub1(text, f"127.0.0.1:{i}3128 send-proxy-v2 check port {i}9090",
                        f"127.0.0.1:{n.port} send-proxy-v2 check port {n.admin}")
        self.cfg = tmp / "haproxy.cfg"
        self.cfg.write_text(text)
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(self.cfg)], stdout=self.out,
                                     stderr=subprocess.STDOUT)
        try:
            wait_port("127.0.0.1", self.port)
        except TimeoutError:
            self.stop()
            raise RuntimeError((tmp / "haproxy.log").read_text()[-2000:])

    def status(self):
        """{server: status} of the backend, from the stats socket ("UP", "DOWN", ...)."""
        data = b""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            try:
                s.connect(str(self.sock))
            except OSError:
                return {}   # the stats socket may open a moment after the frontend
            s.sendall(b"show stat\n")
            while chunk := s.recv(65536):
                data += chunk
        lines = data.decode().splitlines()
        head = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(head, l.split(","))) for l in lines[1:] if l]
        return {r["svname"]: r["status"] for r in rows if r["pxname"] == "iplock_nodes"
                and r["svname"] not in ("BACKEND", "FRONTEND")}

    def stop(self):
        stop_process(self.proc)
        self.out.close()


def node_config(n, password_hash, origin_port, echo_port):
    text = (ETC / f"node{n}.ini").read_text()
    text = sub1(text, f"listen = 127.0.0.1:{n}3128 proxy_protocol=v2", "listen = 127.0.0.1:@PORT@ proxy_protocol=v2")
    text = sub1(text, f"admin_listen = 127.0.0.1:{n}9090", "admin_listen = 127.0.0.1:@ADMIN@")
    text = sub1(text, "connect_ports = 443", f"connect_ports = 443 {origin_port}")
    text = sub1(text, "http_ports = 80 443", f"http_ports = 80 443 {echo_port}")
    text = sub1(text, "access_log = -", "access_log = @LOG@\nallow_destinations = 127.0.0.1/32")
    text = sub1(text, "allow = api.stripe.com:443", "allow = 127.0.0.1:*")
    return re.sub(r"password_hash = \S+", lambda _: f"password_hash = {password_hash}", text)


class Node(Proxy):
    def __init__(self, tmp, n, text):
        self.admin = free_port()
        super().__init__(tmp, text.replace("@ADMIN@", str(self.admin)))

    def denials(self, code):
        return denials(self.admin, code)


def denials(admin_port, code):
    """iplock_denials_total{code=CODE} on a node's /metrics (0 when not counted yet)."""
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=5) as r:
        m = re.search(r'iplock_denials_total\{code="%s"\} (\d+)' % code, r.read().decode())
    return int(m.group(1)) if m else 0


def wait_for(cond, timeout=10.0, step=0.02):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, password_hash):
    tmp = tmp_path_factory.mktemp("fleet")
    ca, crt, key = make_ca(tmp / "pki")
    origin = Origin(crt, key, delay=0.4)
    echo = Echo(tmp)
    nodes, ha = [], None
    try:
        for n in (1, 2):
            d = tmp / f"node{n}"
            d.mkdir()
            nodes.append(Node(d, n, node_config(n, password_hash, origin.port, echo.port)))
        ha = HAProxy(tmp, nodes)
        assert wait_for(lambda: ha.status() == {"node1": "UP", "node2": "UP"}), ha.status()
        yield {"tmp": tmp, "ca": ca, "origin": origin, "echo": echo, "nodes": nodes, "ha": ha}
    finally:
        if ha:
            ha.stop()
        rcs = [(p.stop(), p) for p in nodes]
        echo.stop()
        origin.close()
        for rc, p in rcs:   # node 1 may have been killed (-9); a node that was not exits 0
            assert rc in (0, -9), f"node exited {rc}: {p.stderr.read_text()[-2000:]}"


def ha_url(fleet):
    return f"http://alice:{PASSWORD}@127.0.0.1:{fleet['ha'].port}"


def test_verify_through_the_balancer_finds_every_node(fleet):
    url = f"http://127.0.0.1:{fleet['echo'].port}/ip"
    rc, rep, err = verify_json("--proxy", ha_url(fleet), "--echo", url, "--expect", "127.0.0.2,127.0.0.3")
    assert rc == 0, (rep, err)
    assert sorted(rep["pool"]) == ["127.0.0.2", "127.0.0.3"]
    assert sorted((r["egress"], r["seen"], r["verdict"]) for r in rep["results"]) == [
        ("127.0.0.2", "127.0.0.2", "ok"), ("127.0.0.3", "127.0.0.3", "ok")]


def pp_v2(src, sport, dst, dport):
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    return sig + bytes([0x21, 0x11]) + struct.pack("!H", 12) + socket.inet_aton(src) + \
        socket.inet_aton(dst) + struct.pack("!HH", sport, dport)


def connect_from(src, port, data, timeout=5.0):
    """Connect from address src, send data, return what comes back until close ("" on reset)."""
    with socket.socket() as s:
        s.settimeout(timeout)
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
                if b"\r\n\r\n" in out:
                    break
        except ConnectionResetError:
            pass
        return out


def test_proxy_protocol_real_client_logged_spoofing_refused(fleet):
    import base64
    node1, node2 = fleet["nodes"]
    auth = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    connect = (f"CONNECT 127.0.0.1:{fleet['origin'].port} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Proxy-Authorization: Basic {auth}\r\n\r\n").encode()
    # through HAProxy from 127.0.0.7: the node that took it logs 127.0.0.7, not HAProxy's 127.0.0.1
    for _ in range(2):   # round robin: both nodes
        assert connect_from("127.0.0.7", fleet["ha"].port, connect).startswith(b"HTTP/1.1 200")

    def clients():   # of the CONNECTs to the origin (verify's requests, from 127.0.0.1, went to the echo)
        dest = f"127.0.0.1:{fleet['origin'].port}"
        return [l["client"] for n in (node1, node2) for l in n.log_lines() if l.get("destination") == dest]
    assert wait_for(lambda: clients().count("127.0.0.7") >= 2), clients()
    assert "127.0.0.1" not in clients()

    # a spoofed header straight to a node from 127.0.0.8 (not in trusted_balancers): closed
    # before anything is read, counted, and the claimed address is nowhere in the log
    before = node2.denials("proxy_protocol_untrusted")
    assert connect_from("127.0.0.8", node2.port, pp_v2("203.0.113.5", 4444, "127.0.0.1", node2.port) + connect) == b""
    assert wait_for(lambda: node2.denials("proxy_protocol_untrusted") == before + 1)
    assert "203.0.113.5" not in node2.log.read_text()
    # a trusted peer without a valid header (v1 text on the v2 listener; plain HTTP): closed, counted
    bad = node2.denials("proxy_protocol_invalid")
    assert connect_from("127.0.0.1", node2.port, b"PROXY TCP4 203.0.113.5 127.0.0.1 1 2\r\n" + connect) == b""
    assert connect_from("127.0.0.1", node2.port, connect) == b""
    assert wait_for(lambda: node2.denials("proxy_protocol_invalid") == bad + 2)
    # and the header from the trusted balancer address works directly too
    assert connect_from("127.0.0.1", node2.port, pp_v2("198.51.100.9", 5555, "127.0.0.1", node2.port)
                        + connect).startswith(b"HTTP/1.1 200")
    assert wait_for(lambda: "198.51.100.9" in clients())


# Threads of one python3-stripe process, each making charges back to back for `seconds`;
# prints one JSON line per request: start, end, ok or the error's class.
STREAM = r"""
import json, sys, threading, time
import stripe
cfg = json.loads(sys.argv[1])
stripe.api_key = "sk_test_fleet"
stripe.proxy = cfg["proxy"]
stripe.api_base = cfg["api_base"]
stripe.ca_bundle_path = cfg["ca"]
stripe.max_network_retries = 3
out, lock = [], threading.Lock()
def run():
    end = time.time() + cfg["seconds"]
    while time.time() < end:
        t0 = time.time()
        try:
            ch = stripe.Charge.create(amount=2000, currency="usd", source="tok_visa")
            r = {"ok": True, "egress": ch["egress"]}
        except stripe.error.StripeError as e:
            r = {"ok": False, "cls": type(e).__name__, "msg": str(e)[:200]}
        r.update(start=t0, end=time.time())
        with lock:
            out.append(r)
ts = [threading.Thread(target=run) for _ in range(cfg["threads"])]
for t in ts: t.start()
for t in ts: t.join()
print(json.dumps(out))
"""


def test_stripe_sdk_survives_node_loss(fleet):
    origin, ha, (node1, node2) = fleet["origin"], fleet["ha"], fleet["nodes"]
    cfg = {"proxy": ha_url(fleet), "api_base": f"https://127.0.0.1:{origin.port}", "ca": str(fleet["ca"]),
           "seconds": 5.0, "threads": 4}
    client = subprocess.Popen(["/usr/bin/python3", "-c", STREAM, json.dumps(cfg)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        # both egress addresses seen, then a request in flight on node 1 with time left to run
        assert wait_for(lambda: {"127.0.0.2", "127.0.0.3"} <= set(origin.peers()), timeout=10), origin.peers()

        def fresh_on_node1():
            with origin.lock:
                return any(time.time() - t < 0.15 for t in origin.active.get("127.0.0.2", []))
        assert wait_for(fresh_on_node1, timeout=5, step=0.005)
        with origin.lock:
            inflight = list(origin.active.get("127.0.0.2", []))
        t_term = time.time()
        node1.proc.send_signal(signal.SIGTERM)
        time.sleep(0.1)
        node1.proc.kill()
        t_kill = time.time()
        node1.proc.wait(timeout=5)
        assert wait_for(lambda: ha.status().get("node1", "").startswith("DOWN"), timeout=10, step=0.005), ha.status()
        t_down = time.time()
        out, err = client.communicate(timeout=60)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    assert client.returncode == 0, err
    print(f"\nfailover: HAProxy marked node 1 DOWN {1000 * (t_down - t_term):.0f} ms after SIGTERM, "
          f"{1000 * (t_down - t_kill):.0f} ms after kill -9 ({CHECK})")
    reqs = json.loads(out.strip().splitlines()[-1])
    failed = [r for r in reqs if not r["ok"]]
    # only requests in flight on node 1 when it was killed may fail; none started after
    for r in failed:
        assert r["start"] < t_kill < r["end"], (r, t_kill)
    assert len(failed) <= len(inflight), failed
    after = [r for r in reqs if r["start"] > t_kill]
    assert after and all(r["ok"] and r["egress"] == "127.0.0.3" for r in after if r["start"] > t_down)
    assert all(r["ok"] for r in after), [r for r in after if not r["ok"]]
    # the requests cut on node 1 were retried by the SDK (same Idempotency-Key) and got through
    # node 2; the retry is counted by the SDK as the same, successful call
    with origin.lock:
        seen = list(origin.seen)
    by_key = {}
    for peer, key, t in seen:
        by_key.setdefault(key, []).append((t, peer))
    retried = [v for v in by_key.values() if len(v) > 1]
    assert retried, "no request was in flight on node 1 at the kill"
    for tries in retried:
        tries.sort()
        assert tries[0][1] == "127.0.0.2" and tries[-1][1] == "127.0.0.3", tries
    print(f"requests: {len(reqs)}, in flight on node 1 at the kill: {len(inflight)}, "
          f"retried through node 2: {len(retried)}, failed: {len(failed)}")


def test_proxy_protocol_on_every_listener_kind(tmp_path, proxy_factory, origin, password_hash):
    """One node, no HAProxy: v1 on the HTTP listener, v2 on SOCKS5 and on TLS (the header
    comes before the ClientHello); the auth throttle counts the header's client, not the
    balancer; a header that never completes is closed at header_timeout."""
    import base64
    from conftest import base_config
    ca, crt, key = make_ca(tmp_path / "pki")
    socks_port, tls_port, admin = free_port(), free_port(), free_port()
    text = base_config(origin.port, password_hash, extra_proxy=(
        f"socks_listen = 127.0.0.1:{socks_port} proxy_protocol=v2\n"
        f"tls_listen = 127.0.0.1:{tls_port} proxy_protocol=v2\ntls_cert = {crt}\ntls_key = {key}\n"
        f"trusted_balancers = 127.0.0.1/32\nadmin_listen = 127.0.0.1:{admin}\nworkers = 1"))
    text = sub1(text, "listen = 127.0.0.1:@PORT@", "listen = 127.0.0.1:@PORT@ proxy_protocol=v1")
    text = sub1(text, "header_timeout = 2s", "header_timeout = 500ms")
    p = proxy_factory(text)
    auth = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()

    def get(client, password=PASSWORD):
        cred = base64.b64encode(f"alice:{password}".encode()).decode()
        return connect_from("127.0.0.1", p.port, f"PROXY TCP4 {client} 127.0.0.1 40000 {p.port}\r\n"
                            f"GET http://127.0.0.1:{origin.port}/pp HTTP/1.1\r\nHost: x\r\n"
                            f"Proxy-Authorization: Basic {cred}\r\nConnection: close\r\n\r\n".encode())
    assert get("198.51.100.1").startswith(b"HTTP/1.1 200")
    # ten wrong passwords from one real client throttle that client only
    for i in range(10):
        assert b"proxy_auth_invalid" in get("198.51.100.66", f"guess{i}")
    assert b"proxy_auth_throttled" in get("198.51.100.66", "guess-next")
    assert b"proxy_auth_invalid" in get("198.51.100.67", "guess-other")

    # SOCKS5 behind a v2 header
    with socket.socket() as s:
        s.settimeout(5)
        s.connect(("127.0.0.1", socks_port))
        u, pw = b"alice", PASSWORD.encode()
        s.sendall(pp_v2("198.51.100.2", 40001, "127.0.0.1", socks_port) + b"\x05\x01\x02")
        assert s.recv(2) == b"\x05\x02"
        s.sendall(b"\x01" + bytes([len(u)]) + u + bytes([len(pw)]) + pw)
        assert s.recv(2) == b"\x01\x00"
        s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack("!H", origin.port))
        assert s.recv(10)[:2] == b"\x05\x00"
    # TLS behind a v2 header: the header first, then the ClientHello
    ctx = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw:
        raw.sendall(pp_v2("198.51.100.3", 40002, "127.0.0.1", tls_port))
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1\r\nHost: x\r\n"
                      f"Proxy-Authorization: Basic {auth}\r\n\r\n".encode())
            assert s.recv(100).startswith(b"HTTP/1.1 200")

    def clients():
        return {l["client"] for l in p.log_lines() if l.get("status") == 200}
    assert wait_for(lambda: {"198.51.100.1", "198.51.100.2", "198.51.100.3"} <= clients()), clients()
    assert "127.0.0.1" not in clients()
    # half a header, then nothing: closed at header_timeout and counted
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
        s.sendall(b"PROXY TCP4 198.51.100.4 ")
        t0 = time.time()
        assert s.recv(10) == b""
        assert 0.3 < time.time() - t0 < 3
    assert wait_for(lambda: denials(admin, "proxy_protocol_timeout") == 1)


def test_reload_turns_proxy_protocol_on_and_off(proxy_factory, origin, password_hash):
    """The listener keeps its socket across SIGHUP; what it requires changes with the file."""
    from conftest import base_config
    plain = base_config(origin.port, password_hash, extra_proxy="workers = 1")
    p = proxy_factory(plain)
    req = (f"GET http://127.0.0.1:{origin.port}/r HTTP/1.1\r\nHost: x\r\nProxy-Authorization: "
           f"Basic {__import__('base64').b64encode(f'alice:{PASSWORD}'.encode()).decode()}\r\n"
           "Connection: close\r\n\r\n").encode()
    assert connect_from("127.0.0.1", p.port, req).startswith(b"HTTP/1.1 200")
    p.write_config(sub1(plain, "listen = 127.0.0.1:@PORT@",
                        "listen = 127.0.0.1:@PORT@ proxy_protocol=v2\ntrusted_balancers = 127.0.0.1/32"))
    p.reload()
    assert "now serves the HTTP proxy (listen, PROXY v2)" in p.stderr.read_text()
    assert connect_from("127.0.0.1", p.port, req) == b""
    assert connect_from("127.0.0.1", p.port, pp_v2("198.51.100.20", 1, "127.0.0.1", p.port) + req) \
        .startswith(b"HTTP/1.1 200")
    # a bad value is refused whole, with one line, and the running config stays
    p.write_config(sub1(plain, "listen = 127.0.0.1:@PORT@", "listen = 127.0.0.1:@PORT@ proxy_protocol=v2"))
    p.reload()
    assert "reload refused" in p.stderr.read_text() and "needs trusted_balancers" in p.stderr.read_text()
    assert connect_from("127.0.0.1", p.port, req) == b""
    p.write_config(plain)
    p.reload()
    assert connect_from("127.0.0.1", p.port, req).startswith(b"HTTP/1.1 200")
    assert "198.51.100.20" in {l["client"] for l in p.log_lines()}
