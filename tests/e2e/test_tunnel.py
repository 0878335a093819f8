"""Black-box tests of `iplock tunnel`: a real PostgreSQL session and an HTTP origin reached
through local port forwards that ride CONNECT tunnels of `iplock proxy` (egress 127.0.0.2 and
127.0.0.3); refusals (407, 403) and a proxy that is down give clear, password-free errors."""
import json
import os
import socket
import subprocess
import urllib.request

import pytest

from conftest import IPLOCK, PASSWORD, base_config, free_port, wait_port
from pg_util import USER as PG_USER
from servers import TcpServer, echo_until_eof, recv_exact
from tunnel_util import Tunnel, closed_quickly, psql, wait_for
# pg_tcp (the session's PostgreSQL cluster that listens on 127.0.0.1) comes from conftest.py

EGRESS = {"127.0.0.2", "127.0.0.3"}


@pytest.fixture
def tunnels(tmp_path):
    started = []

    def make(args, env=None, wait=()):
        t = Tunnel(tmp_path, args, env=env, wait=wait)
        started.append(t)
        return t

    yield make
    for t in started:
        rc = t.stop()
        assert rc == 0, f"tunnel exited {rc}: {t.stderr()[-2000:]}"


def pg_proxy(proxy_factory, origin, password_hash, pg_tcp):
    return proxy_factory(base_config(origin.port, password_hash,
                                     extra_proxy=f"connect_ports = {pg_tcp.port}"))


def http_get(port, path="/"):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return json.loads(r.read())


def test_postgres_session_leaves_from_egress(proxy_factory, origin, password_hash, pg_tcp, tunnels):
    proxy = pg_proxy(proxy_factory, origin, password_hash, pg_tcp)
    local = free_port()
    t = tunnels(["--proxy", proxy.url(), f"127.0.0.1:{local}=127.0.0.1:{pg_tcp.port}"], wait=[local])
    seen = set()
    for _ in range(4):     # each connection dials afresh: both pool addresses show up in turn
        r = psql(local, "SELECT inet_client_addr()")
        assert r.returncode == 0, r.stderr + t.stderr()
        seen.add(r.stdout.strip())
    assert seen <= EGRESS and seen, seen
    # a real session: DDL, writes, a transaction, reads back
    r = psql(local, "CREATE TABLE t(id int primary key, v text); "
                    "BEGIN; INSERT INTO t SELECT g, repeat('x', 1000) FROM generate_series(1, 2000) g; COMMIT; "
                    "SELECT count(*), sum(length(v)) FROM t; DROP TABLE t;")
    assert r.returncode == 0, r.stderr
    assert "2000|2000000" in r.stdout
    assert PASSWORD not in t.stderr()
    lines = [l for l in proxy.log_lines() if l.get("method") == "CONNECT"]
    assert lines and all(l["egress"] in EGRESS and l["status"] == 200 for l in lines)


def test_wrong_password_407_logged_once_without_password(proxy_factory, origin, password_hash, pg_tcp,
                                                          tunnels):
    proxy = pg_proxy(proxy_factory, origin, password_hash, pg_tcp)
    local = free_port()
    bad = "Wrong-Passw0rd-1234"
    t = tunnels(["-v", "--proxy", proxy.url(password=bad), f"{local}=127.0.0.1:{pg_tcp.port}"], wait=[local])
    for _ in range(3):
        assert closed_quickly(local)
    assert wait_for(lambda: "407" in t.stderr())
    err = t.stderr()
    assert bad not in err and PASSWORD not in err
    errors = [l for l in err.splitlines() if " error: " in l]
    assert len(errors) == 1, err
    assert "proxy_auth_invalid" in errors[0] and "check the user name and password" in errors[0]
    assert "alice:****" in errors[0]
    r = psql(local, "SELECT 1")
    # psql's exit 2 is "connection failed": the tunnel closed it, not a query error or a timeout
    assert r.returncode == 2 and "server closed the connection unexpectedly" in r.stderr, r.stderr


def test_forbidden_port_403_with_reason(proxy_factory, origin, password_hash, pg_tcp, tunnels):
    proxy = proxy_factory(base_config(origin.port, password_hash))   # pg port not in connect_ports
    local = free_port()
    t = tunnels(["--proxy", proxy.url(), f"{local}=127.0.0.1:{pg_tcp.port}"], wait=[local])
    assert closed_quickly(local)
    assert wait_for(lambda: "403" in t.stderr())
    err = t.stderr()
    assert "port_not_allowed" in err and f"CONNECT to port {pg_tcp.port} is not allowed" in err
    assert PASSWORD not in err


def test_several_mappings_config_file(proxy_factory, origin, password_hash, pg_tcp, tunnels, tmp_path):
    proxy = pg_proxy(proxy_factory, origin, password_hash, pg_tcp)
    lpg, lweb, lbad = free_port(), free_port(), free_port()
    cfg = tmp_path / "tunnel.ini"
    cfg.write_text(f"""; iplock tunnel configuration
[proxy]
url = {proxy.url()}
connect_timeout = 5s

[tunnel db]
listen = 127.0.0.1:{lpg}
remote = 127.0.0.1:{pg_tcp.port}

[tunnel web]
listen = 127.0.0.1:{lweb}
remote = 127.0.0.1:{origin.port}

[tunnel closed]
listen = {lbad}
remote = 127.0.0.1:22
""")
    os.chmod(cfg, 0o600)
    t = tunnels(["-c", str(cfg)], wait=[lpg, lweb, lbad])
    r = psql(lpg, "SELECT inet_client_addr()")
    assert r.returncode == 0 and r.stdout.strip() in EGRESS, r.stderr
    origin.clear()
    assert http_get(lweb, "/via-tunnel")["origin"] in EGRESS
    assert set(origin.peers()) <= EGRESS
    # bulk bytes (the relay moves a full direction to splice in auto mode) arrive intact
    n = 12 * 1024 * 1024 + 3
    with urllib.request.urlopen(f"http://127.0.0.1:{lweb}/big/{n}/cl", timeout=20) as r:
        body = r.read()
    assert len(body) == n and body[:256] == bytes(range(256)) and body[-3:] == bytes(range(3))
    # a refused mapping does not disturb the others, and its listener stays
    assert closed_quickly(lbad)
    assert wait_for(lambda: "tunnel closed:" in t.stderr() and "403" in t.stderr())
    assert closed_quickly(lbad)
    r = psql(lpg, "SELECT 2")
    assert r.returncode == 0 and r.stdout.strip() == "2"


def test_proxy_down_then_up_recovers(origin, password_hash, pg_tcp, tunnels, tmp_path):
    pport = free_port()
    local = free_port()
    url = f"http://alice:{PASSWORD}@127.0.0.1:{pport}"
    # the URL from the environment keeps the password out of the process list
    t = tunnels([f"{local}=127.0.0.1:{pg_tcp.port}"], env={"IPLOCK_PROXY_URL": url}, wait=[local])
    assert closed_quickly(local)
    assert wait_for(lambda: "cannot reach proxy" in t.stderr())
    assert "Connection refused" in t.stderr() and PASSWORD not in t.stderr()
    conf = tmp_path / "proxy.ini"
    conf.write_text(base_config(origin.port, password_hash, extra_proxy=f"connect_ports = {pg_tcp.port}")
                    .replace("@PORT@", str(pport)).replace("@LOG@", str(tmp_path / "access.log")))
    proc = subprocess.Popen([IPLOCK, "proxy", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_port("127.0.0.1", pport)
        r = psql(local, "SELECT inet_client_addr()")
        assert r.returncode == 0 and r.stdout.strip() in EGRESS, r.stderr + t.stderr()
        assert wait_for(lambda: "carries tunnels again" in t.stderr())
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_bad_usage_and_config_errors(tmp_path):
    def run(*args):
        return subprocess.run([IPLOCK, "tunnel", *args], capture_output=True, text=True, timeout=10)

    assert run("--help").returncode == 0
    r = run("--proxy", "http://a:b@127.0.0.1:1", "nonsense")
    assert r.returncode == 2 and "mapping" in r.stderr
    r = run("5432=db:5432")
    assert r.returncode == 2 and "proxy URL is required" in r.stderr
    r = run("--proxy", "ftp://x:1", "5432=db:5432")
    assert r.returncode == 2 and "http://" in r.stderr
    cfg = tmp_path / "t.ini"
    cfg.write_text("[proxy]\nurl = http://u:pw@127.0.0.1:3128\n\n[tunnel a]\nlisten = 127.0.0.1:7000\n"
                   "remote = db.example.com\n")
    r = run("-c", str(cfg), "--check")
    # a config file error is bad input (1), not bad usage (2): docs/config.md, exit status
    assert r.returncode == 1 and f"{cfg}:6: remote: port required" in r.stderr, r.stderr
    cfg.write_text("[proxy]\nurl = http://u:secretpassword@127.0.0.1:3128\n[tunnel a]\nlisten = 7000\n"
                   "remote = db.example.com:5432\n[tunnel b]\nlisten = 7000\nremote = x:1\n")
    r = run("-c", str(cfg), "--check")
    assert r.returncode == 1 and f"{cfg}:6: [tunnel b]: duplicate listen address" in r.stderr, r.stderr
    cfg.write_text("[proxy]\nurl = http://u:secretpassword@127.0.0.1:3128\n[tunnel a]\nlisten = 7000\n"
                   "remote = db.example.com:5432\n")
    r = run("-c", str(cfg), "--check")
    assert r.returncode == 0 and "secretpassword" not in r.stdout and "u:****" in r.stdout


def test_socks5h_postgres_and_refusals(proxy_factory, origin, password_hash, pg_tcp, tunnels):
    # the proxy speaks SOCKS5 on its HTTP port (socks = sniff, the default)
    proxy = pg_proxy(proxy_factory, origin, password_hash, pg_tcp)
    socks = proxy.url().replace("http://", "socks5h://")
    good, bad_port = free_port(), free_port()
    t = tunnels(["--proxy", socks, f"{good}=127.0.0.1:{pg_tcp.port}", f"{bad_port}=127.0.0.1:22"],
                wait=[good, bad_port])
    r = psql(good, "SELECT inet_client_addr()")
    assert r.returncode == 0 and r.stdout.strip() in EGRESS, r.stderr + t.stderr()
    assert closed_quickly(bad_port)
    assert wait_for(lambda: "connection not allowed by ruleset" in t.stderr())
    local = free_port()
    t2 = tunnels(["--proxy", proxy.url(password="Wrong-Passw0rd-1234").replace("http://", "socks5h://"),
                  f"{local}=127.0.0.1:{pg_tcp.port}"], wait=[local])
    assert closed_quickly(local)
    assert wait_for(lambda: "refused the credentials" in t2.stderr())
    assert "Wrong-Passw0rd" not in t2.stderr() and PASSWORD not in t.stderr()


def test_https_proxy_url(proxy_factory, origin, password_hash, pg_tcp, tunnels, tmp_path):
    from test_tls_proxy import make_cert
    crt, key = make_cert(tmp_path)
    other_crt, _ = make_cert(tmp_path)
    tport = free_port()
    proxy = proxy_factory(base_config(origin.port, password_hash,
                                      extra_proxy=f"connect_ports = {pg_tcp.port}\ntls_listen = 127.0.0.1:{tport}\n"
                                                  f"tls_cert = {crt}\ntls_key = {key}"))
    url = proxy.url().replace("http://", "https://").replace(f":{proxy.port}", f":{tport}")
    local, web = free_port(), free_port()
    t = tunnels(["--proxy", url, "--proxy-cacert", str(crt), f"{local}=127.0.0.1:{pg_tcp.port}",
                 f"{web}=127.0.0.1:{origin.port}"], wait=[local, web])
    r = psql(local, "SELECT inet_client_addr()")
    assert r.returncode == 0 and r.stdout.strip() in EGRESS, r.stderr + t.stderr()
    n = 6 * 1024 * 1024 + 5          # bulk through OpenSSL both ways of the relay
    with urllib.request.urlopen(f"http://127.0.0.1:{web}/big/{n}/chunked", timeout=20) as resp:
        assert len(resp.read()) == n
    assert PASSWORD not in t.stderr()
    # a certificate the tunnel does not trust: a clear error, no credentials sent
    bad = free_port()
    t2 = tunnels(["--proxy", url, "--proxy-cacert", str(other_crt), f"{bad}=127.0.0.1:{pg_tcp.port}"], wait=[bad])
    assert closed_quickly(bad)
    assert wait_for(lambda: "certificate is not trusted" in t2.stderr())
    assert PASSWORD not in t2.stderr()


class FakeProxy(TcpServer):
    """A scripted proxy on 127.0.0.1 for the tunnel's handshake edge cases: `script(fp, conn)`
    speaks the handshake, then the connection echoes. Records what it received."""

    def __init__(self, script):
        self.script, self.seen = script, []
        super().__init__(self.handle, backlog=8, threaded=False)

    def handle(self, c, _peer):
        c.settimeout(5)
        if self.script(self, c):
            echo_until_eof(c)

    def recv_exact(self, c, n):
        try:
            data = recv_exact(c, n)
        except EOFError as e:        # an OSError: the server ends the connection quietly
            raise OSError("closed") from e
        self.seen.append(data)
        return data


def dribble(c, data):
    import time
    for i in range(len(data)):            # one byte per segment: the parser must reassemble
        c.sendall(data[i:i + 1])
        time.sleep(0.002)


def socks_script(fp, c):
    assert fp.recv_exact(c, 3) == b"\x05\x01\x02"
    dribble(c, b"\x05\x02")
    ver, ulen = fp.recv_exact(c, 2)
    user = fp.recv_exact(c, ulen)
    plen = fp.recv_exact(c, 1)[0]
    pw = fp.recv_exact(c, plen)
    assert (user, pw) == (b"bob", b"p@ss w0rd")
    dribble(c, b"\x01\x00")
    head = fp.recv_exact(c, 5)
    assert head[:4] == b"\x05\x01\x00\x03"
    name = fp.recv_exact(c, head[4] + 2)
    assert name[:-2] == b"db.internal.example" and name[-2:] == (5432).to_bytes(2, "big")
    dribble(c, b"\x05\x00\x00\x03\x0dbound.example\x04\x38" + b"EARLY")
    return True


def http_script(fp, c):
    head = b""
    while b"\r\n\r\n" not in head:
        d = c.recv(4096)
        if not d:
            return False
        head += d
    fp.seen.append(head)
    dribble(c, b"HTTP/1.1 200 Connection established\r\nVia: fake\r\n\r\nEARLY")
    return True


@pytest.mark.parametrize("scheme,script", [("socks5h", socks_script), ("http", http_script)])
def test_handshake_split_and_early_bytes(scheme, script, tunnels):
    fp = FakeProxy(script)
    try:
        local = free_port()
        # percent-encoded credentials are decoded before they are sent
        t = tunnels(["--proxy", f"{scheme}://bob:p%40ss%20w0rd@127.0.0.1:{fp.port}",
                     f"{local}=db.internal.example:5432"], wait=[local])
        with socket.create_connection(("127.0.0.1", local), timeout=5) as s:
            s.sendall(b"ping")
            got = b""
            while len(got) < 9:
                d = s.recv(100)
                if not d:
                    break
                got += d
        assert got == b"EARLYping", (got, t.stderr())
        if scheme == "http":
            head = fp.seen[0].decode()
            assert head.startswith("CONNECT db.internal.example:5432 HTTP/1.1\r\n")
            assert "Proxy-Authorization: Basic Ym9iOnBAc3MgdzByZA==\r\n" in head
        assert "p@ss" not in t.stderr() and "w0rd" not in t.stderr()
    finally:
        fp.close()


def test_ipv6_local_listener(proxy_factory, origin, password_hash, pg_tcp, tunnels):
    proxy = pg_proxy(proxy_factory, origin, password_hash, pg_tcp)
    local = free_port()
    t = tunnels(["--proxy", proxy.url(), f"[::1]:{local}=127.0.0.1:{pg_tcp.port}"])
    env = dict(os.environ, PGCONNECT_TIMEOUT="10", PGSSLMODE="disable")
    for _ in range(100):
        r = subprocess.run(["psql", "-X", "-h", "::1", "-p", str(local), "-U", PG_USER, "-d", "postgres", "-At", "-c",
                            "SELECT inet_client_addr()"], capture_output=True, text=True, timeout=20, env=env)
        if r.returncode == 0:
            break
        import time
        time.sleep(0.05)
    assert r.returncode == 0 and r.stdout.strip() in EGRESS, r.stderr + t.stderr()
