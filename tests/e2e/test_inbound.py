"""Black-box tests of `iplock proxy` inbound endpoints ([inbound NAME]): TLS routed by the
ClientHello's server name to two backends on one port without being decrypted, PROXY v2 towards
the backend, and client allow CIDRs. Backends are made here: python ssl with a self-signed
certificate, and a plain TCP server that parses the PROXY v2 header."""
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest

from conftest import base_config, free_port, wait_port
from servers import TcpServer, echo_until_eof, recv_exact

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("cert")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "2", "-subj", "/CN=iplock-test",
                    "-addext", "subjectAltName=DNS:a.example,DNS:b.example,DNS:c.example,DNS:x.wild.example"],
                   check=True, capture_output=True, timeout=30)
    return str(crt), str(key)


class Backend(TcpServer):
    """A TCP server on 127.0.0.1; per connection: optional PROXY v2 header, optional TLS, then
    it reads one line and answers "TAG|peer|proxy-src|sni|line" and closes."""

    def __init__(self, tag, cert=None, proxy_v2=False):
        self.tag, self.proxy_v2 = tag, proxy_v2
        self.ctx = None
        if cert:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(*cert)
        super().__init__(self.handle, backlog=16)

    def handle(self, c, peer):
        c.settimeout(5)
        try:
            src = "-"
            if self.proxy_v2:
                h = recv_exact(c, 16)
                assert h[:12] == V2_SIG and h[12] == 0x21, h
                body = recv_exact(c, struct.unpack("!H", h[14:16])[0])
                if h[13] == 0x11:
                    s, d = socket.inet_ntoa(body[0:4]), socket.inet_ntoa(body[4:8])
                    sp, dp = struct.unpack("!HH", body[8:12])
                    src = f"{s}:{sp}>{d}:{dp}"
                elif h[13] == 0x21:
                    s = socket.inet_ntop(socket.AF_INET6, body[0:16])
                    d = socket.inet_ntop(socket.AF_INET6, body[16:32])
                    sp, dp = struct.unpack("!HH", body[32:36])
                    src = f"[{s}]:{sp}>[{d}]:{dp}"
            sni = "-"
            if self.ctx:
                seen = {}
                self.ctx.sni_callback = lambda sock, name, ctx: seen.__setitem__("n", name)
                c = self.ctx.wrap_socket(c, server_side=True)
                sni = seen.get("n") or "-"
            line = b""
            while not line.endswith(b"\n") and len(line) < 1000:
                d = c.recv(1000)
                if not d:
                    break
                line += d
            c.sendall(f"{self.tag}|{peer[0]}|{src}|{sni}|".encode() + line)
        except Exception as e:  # the test sees a closed connection
            print("backend error", e)
        finally:
            c.close()       # the TLS wrapper, when there is one


@pytest.fixture
def backends():
    made = []

    def make(*a, **kw):
        b = Backend(*a, **kw)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


def tls_ask(port, sni, msg=b"hello\n", bind=None):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.socket()
    raw.settimeout(5)
    if bind:
        raw.bind((bind, 0))
    raw.connect(("127.0.0.1", port))
    with ctx.wrap_socket(raw, server_hostname=sni) as s:
        s.sendall(msg)
        out = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            out += d
        return out.decode()


def plain_ask(port, msg=b"ping\n", bind=None):
    s = socket.socket()
    s.settimeout(5)
    if bind:
        s.bind((bind, 0))
    s.connect(("127.0.0.1", port))
    try:
        s.sendall(msg)
        out = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            out += d
        return out.decode(), s.getsockname()
    except ConnectionResetError:
        return "", s.getsockname()
    finally:
        s.close()


def start(proxy_factory, origin, password_hash, inbound_text, ports):
    p = proxy_factory(base_config(origin.port, password_hash, extra=inbound_text))
    for port in ports:
        wait_port("127.0.0.1", port)
    return p


def test_sni_routes_two_hosts_on_one_port(proxy_factory, origin, password_hash, cert, backends):
    a, b, d = backends("A", cert), backends("B", cert), backends("DEFAULT", cert)
    port = free_port()
    proxy = start(proxy_factory, origin, password_hash, f"""
[inbound web]
listen = 127.0.0.1:{port}
sni = a.example=127.0.0.1:{a.port} *.wild.example=127.0.0.1:{b.port}
  b.example=127.0.0.1:{b.port}
forward = 127.0.0.1:{d.port}
""", [port])
    r = tls_ask(port, "a.example")
    assert r.startswith("A|") and r.endswith("|a.example|hello\n"), r
    r = tls_ask(port, "B.Example", b"second\n")          # names are case-insensitive
    assert r.startswith("B|") and "second" in r, r
    assert tls_ask(port, "x.wild.example").startswith("B|")
    assert tls_ask(port, "c.example").startswith("DEFAULT|")     # no route: the default forward
    # a real client from Debian: openssl s_client -servername
    out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "b.example",
                          "-quiet", "-ign_eof"], input=b"from-s_client\n", capture_output=True, timeout=20)
    assert b"B|127.0.0.1|-|b.example|from-s_client" in out.stdout, out.stderr[-500:]
    time.sleep(0.2)
    lines = [l for l in proxy.log_lines() if l.get("inbound") == "web"]
    assert {l["sni"] for l in lines} >= {"a.example", "b.example", "x.wild.example", "c.example"}
    assert all(l["bytes_up"] > 0 and l["bytes_down"] > 0 for l in lines if l["sni"])   # not wait_port


def test_sni_without_route_or_default_is_closed(proxy_factory, origin, password_hash, cert, backends):
    a = backends("A", cert)
    port = free_port()
    proxy = start(proxy_factory, origin, password_hash, f"""
[inbound strict]
listen = 127.0.0.1:{port}
sni = a.example=127.0.0.1:{a.port}
""", [port])
    # the ClientHello was read whole, so the close is a clean EOF mid-handshake (not a timeout)
    with pytest.raises(ssl.SSLZeroReturnError):   # Python 3.11 reports a handshake EOF so
        tls_ask(port, "other.example")
    out, _ = plain_ask(port, b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")   # not TLS at all
    assert out == ""
    assert tls_ask(port, "a.example").startswith("A|")
    time.sleep(0.2)
    reasons = {l["reason"] for l in proxy.log_lines() if l.get("inbound") == "strict"}
    assert "no route for this server name" in reasons and "not a TLS ClientHello" in reasons


def test_proxy_protocol_v2_gives_backend_the_client_address(proxy_factory, origin, password_hash, backends):
    b = backends("PP", proxy_v2=True)
    port = free_port()
    start(proxy_factory, origin, password_hash, f"""
[inbound pp]
listen = 127.0.0.1:{port}
forward = 127.0.0.1:{b.port}
proxy_protocol = v2
""", [port])
    out, (cip, cport) = plain_ask(port, b"payload after header\n", bind="127.0.0.4")
    tag, peer, src, sni, line = out.split("|")
    assert tag == "PP" and line == "payload after header\n"
    assert src == f"127.0.0.4:{cport}>127.0.0.1:{port}"      # the client, not the proxy
    assert peer == "127.0.0.1"


def test_proxy_protocol_v2_with_sni_routing(proxy_factory, origin, password_hash, cert, backends):
    b = backends("TLSPP", cert, proxy_v2=True)
    port = free_port()
    start(proxy_factory, origin, password_hash, f"""
[inbound both]
listen = 127.0.0.1:{port}
sni = a.example=127.0.0.1:{b.port}
proxy_protocol = v2
""", [port])
    r = tls_ask(port, "a.example", b"x\n", bind="127.0.0.6")
    assert r.startswith("TLSPP|127.0.0.1|127.0.0.6:") and "|a.example|x\n" in r, r


def test_allow_cidrs_refuse_other_clients(proxy_factory, origin, password_hash, backends):
    b = backends("OK")
    port = free_port()
    proxy = start(proxy_factory, origin, password_hash, f"""
[inbound only-local]
listen = 127.0.0.1:{port}
forward = 127.0.0.1:{b.port}
allow = 127.0.0.1/32 127.0.0.4/32
""", [port])
    deadline = time.time() + 5
    while b.accepted < 1 and time.time() < deadline:  # wait_port's own connection (allowed)
        time.sleep(0.05)
    before = b.accepted
    out, _ = plain_ask(port, bind="127.0.0.5")
    assert out == ""
    time.sleep(0.3)
    assert b.accepted == before                      # never reached the backend
    out, _ = plain_ask(port, bind="127.0.0.4")
    assert out.startswith("OK|")
    time.sleep(0.2)
    refused = [l for l in proxy.log_lines() if l.get("inbound") == "only-local" and l["client"] == "127.0.0.5"]
    assert refused and refused[0]["reason"] == "client address not allowed" and refused[0]["backend"] is None


def test_bulk_bytes_both_ways_intact(proxy_factory, origin, password_hash):
    import hashlib
    echo = TcpServer(lambda c, _peer: echo_until_eof(c, 262144), backlog=8)   # echoes bulk relays
    port = free_port()
    start(proxy_factory, origin, password_hash, f"""
[inbound bulk]
listen = 127.0.0.1:{port}
forward = 127.0.0.1:{echo.port}
""", [port])
    data = bytes(range(256)) * (4 * 1024 * 12)        # 12 MiB
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    got = []

    def reader():
        while True:
            d = s.recv(1 << 20)
            if not d:
                return
            got.append(d)

    th = threading.Thread(target=reader)
    th.start()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)                       # half-close passes through
    th.join(timeout=30)
    s.close()
    echo.close()
    out = b"".join(got)
    assert len(out) == len(data) and hashlib.sha256(out).digest() == hashlib.sha256(data).digest()


def test_backend_down_closes_client(proxy_factory, origin, password_hash):
    port, dead = free_port(), free_port()
    proxy = start(proxy_factory, origin, password_hash, f"""
[inbound dead]
listen = 127.0.0.1:{port}
forward = 127.0.0.1:{dead}
""", [port])
    out, _ = plain_ask(port)
    assert out == ""
    time.sleep(0.2)
    assert any(l.get("reason") == "backend refused the connection" for l in proxy.log_lines())


def test_reload_changes_routes_and_allow(proxy_factory, origin, password_hash, cert, backends):
    a, b = backends("A", cert), backends("B", cert)
    port = free_port()
    text = base_config(origin.port, password_hash, extra=f"""
[inbound web]
listen = 127.0.0.1:{port}
sni = a.example=127.0.0.1:{a.port}
""")
    proxy = proxy_factory(text)
    wait_port("127.0.0.1", port)
    assert tls_ask(port, "a.example").startswith("A|")
    proxy.write_config(text.replace(f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}")
                       + "allow = 127.0.0.1/32\n")
    proxy.reload()
    deadline = time.time() + 5
    while time.time() < deadline and not tls_ask(port, "a.example").startswith("B|"):
        time.sleep(0.1)
    assert tls_ask(port, "a.example").startswith("B|")
    out, _ = plain_ask(port, bind="127.0.0.7")
    assert out == ""


def test_max_conns_counts_inbound_connections(proxy_factory, origin, password_hash, backends):
    b = backends("OK")
    port = free_port()
    proxy = proxy_factory(base_config(origin.port, password_hash, extra_proxy="max_conns = 1", extra=f"""
[inbound capped]
listen = 127.0.0.1:{port}
forward = 127.0.0.1:{b.port}
"""))
    wait_port("127.0.0.1", port)
    time.sleep(0.3)                                  # wait_port's own connection is gone
    first = socket.create_connection(("127.0.0.1", port), timeout=5)   # held open
    time.sleep(0.3)
    out, _ = plain_ask(port)
    assert out == ""
    first.sendall(b"hi\n")
    assert first.recv(100).startswith(b"OK|")
    first.close()
    time.sleep(0.3)
    assert plain_ask(port)[0].startswith("OK|")      # the budget came back
    assert any(l.get("reason") == "the proxy is at its connection limit" for l in proxy.log_lines())


def test_ipv6_endpoint_proxy_v2(proxy_factory, origin, password_hash, backends):
    b = backends("PP6", proxy_v2=True)
    port = free_port()
    proxy_factory(base_config(origin.port, password_hash, extra=f"""
[inbound v6]
listen = [::1]:{port}
forward = 127.0.0.1:{b.port}
proxy_protocol = v2
allow = ::1/128
"""))
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection(("::1", port), timeout=1).close()
            break
        except OSError:
            assert time.time() < deadline
            time.sleep(0.05)
    s = socket.create_connection(("::1", port), timeout=5)
    s.sendall(b"over v6\n")
    out = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        out += d
    cport = s.getsockname()[1]
    s.close()
    tag, peer, src, sni, line = out.decode().split("|")
    assert tag == "PP6" and line == "over v6\n"
    assert src == f"[::1]:{cport}>[::1]:{port}"
