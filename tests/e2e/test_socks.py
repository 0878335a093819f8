"""SOCKS5 on `iplock proxy`: sniffed on the HTTP port and on its own listener, with curl
(--socks5-hostname), Python requests (socks5h://, python3-socks) and raw sockets for the
reply codes. The origin must only ever see pool addresses, and wrong credentials nothing."""
import socket
import struct
import subprocess

import pytest

from conftest import PASSWORD, base_config, free_port

CURL = ["curl", "-s", "--max-time", "10"]


def socks_url(p, user="alice", pw=PASSWORD, port=None):
    return f"socks5h://{user}:{pw}@127.0.0.1:{port or p.port}"


def test_curl_socks5_hostname_sniffed_on_http_port(proxy, origin):
    origin.clear()
    for _ in range(4):
        r = subprocess.run([*CURL, "--socks5-hostname", f"alice:{PASSWORD}@127.0.0.1:{proxy.port}",
                            f"http://localhost:{origin.port}/s"], capture_output=True, timeout=20)
        assert r.returncode == 0, r.stderr
    # "localhost" resolves to 127.0.0.1 only when c-ares reads /etc/hosts; 127.0.0.1 is allowed
    assert set(origin.peers()) == {"127.0.0.2", "127.0.0.3"}


def test_requests_socks5h_and_dedicated_listener(proxy_factory, origin, password_hash):
    import requests
    sport = free_port()
    p = proxy_factory(base_config(origin.port, password_hash, extra_proxy=f"socks_listen = 127.0.0.1:{sport}"))
    origin.clear()
    for port in (p.port, sport):
        for _ in range(3):
            r = requests.get(f"http://127.0.0.1:{origin.port}/r",
                             proxies={"http": socks_url(p, port=port)}, timeout=10)
            assert r.json()["origin"] in ("127.0.0.2", "127.0.0.3")
    assert set(origin.peers()) <= {"127.0.0.2", "127.0.0.3"}
    r = requests.get(f"http://127.0.0.1:{origin.port}/r",
                     proxies={"http": socks_url(p, user="alice+egress=2", port=sport)}, timeout=10)
    assert r.json()["origin"] == "127.0.0.3"
    line = [l for l in p.log_lines() if l["method"] == "SOCKS5"][-1]
    assert line["user"] == "alice" and line["egress"] == "127.0.0.3"


def handshake(port, methods=b"\x02", user=b"alice", pw=PASSWORD.encode()):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"\x05" + bytes([len(methods)]) + methods)
    rep = s.recv(2)
    if rep != b"\x05\x02":
        return s, rep
    s.sendall(b"\x01" + bytes([len(user)]) + user + bytes([len(pw)]) + pw)
    return s, s.recv(2)


def request(s, atyp, addr, port, cmd=1):
    s.sendall(b"\x05" + bytes([cmd]) + b"\x00" + bytes([atyp]) + addr + struct.pack(">H", port))
    return s.recv(10)


def test_httpx_style_greeting_and_reply_codes(proxy_factory, origin, password_hash):
    p = proxy_factory(base_config(origin.port, password_hash).replace("allow_destinations = 127.0.0.1/32", ""))
    # no-auth only: refused (auth is on)
    s, rep = handshake(p.port, methods=b"\x00")
    assert rep == b"\x05\xff"
    s.close()
    # wrong password
    s, rep = handshake(p.port, pw=b"nope")
    assert rep == b"\x01\x01"
    s.close()
    # loopback forbidden by policy: 0x02
    s, rep = handshake(p.port)
    assert rep == b"\x01\x00"
    assert request(s, 1, socket.inet_aton("127.0.0.1"), origin.port)[1] == 0x02
    s.close()
    # port not allowed: 0x02; BIND: 0x07; bad ATYP: 0x08
    s, _ = handshake(p.port)
    assert request(s, 3, bytes([11]) + b"example.com", 22)[1] == 0x02
    s.close()
    s, _ = handshake(p.port)
    assert request(s, 1, socket.inet_aton("8.8.8.8"), 443, cmd=2)[1] == 0x07
    s.close()
    s, _ = handshake(p.port)
    s.sendall(b"\x05\x01\x00\x09")
    assert s.recv(10)[1] == 0x08
    s.close()
    # mapped IPv6 loopback is loopback
    s, _ = handshake(p.port)
    assert request(s, 4, socket.inet_pton(socket.AF_INET6, "::ffff:127.0.0.1"), origin.port)[1] == 0x02
    s.close()


def test_connection_refused_and_unresolvable(proxy_factory, origin, password_hash):
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    p = proxy_factory(base_config(origin.port, password_hash).replace("connect_ports = 443 80", f"connect_ports = 443 80 {port}"))
    s, _ = handshake(p.port)
    assert request(s, 1, socket.inet_aton("127.0.0.1"), port)[1] == 0x05
    s.close()
    s, _ = handshake(p.port)
    assert request(s, 3, bytes([20]) + b"no-such-host.invalid", 443)[1] in (0x04, 0x01)
    s.close()
    s, _ = handshake(p.port)
    rep = request(s, 1, socket.inet_aton("127.0.0.1"), origin.port)
    assert rep[:2] == b"\x05\x00" and socket.inet_ntoa(rep[4:8]) in ("127.0.0.2", "127.0.0.3")
    s.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
    assert b"200 OK" in out


def test_httpx_socks5_username_password_only_greeting(proxy, origin):
    # httpx offers only the username/password method in its greeting
    import httpx
    origin.clear()
    with httpx.Client(proxies=f"socks5://alice:{PASSWORD}@127.0.0.1:{proxy.port}", timeout=10) as c:
        r = c.get(f"http://127.0.0.1:{origin.port}/hx")
    assert r.json()["origin"] in ("127.0.0.2", "127.0.0.3")
    assert origin.peers() and set(origin.peers()) <= {"127.0.0.2", "127.0.0.3"}
