"""Issue 16, items 1, 2 and 9: a second `iplock proxy` (or gate) on an address another process
listens on refuses to start instead of sharing the port through SO_REUSEPORT; a SIGHUP that
changes a listener's address opens the new one and closes the old one, or is refused whole
with the old listeners still serving; every listener opened or closed is in the log."""
import http.client
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import IPLOCK, PASSWORD, base_config, basic, free_port, wait_port
from gate_util import Gate, create_key
from servers import TcpServer

CURL = ["curl", "-s", "--max-time", "10"]


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("lcert")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    return crt, key


@pytest.fixture
def echo():
    """A TCP backend for inbound endpoints: answers every connection with "ECHO" and closes."""
    e = TcpServer(lambda c, _peer: c.sendall(b"ECHO"), threaded=False)
    yield e
    e.close()


def ask_http(port):
    r = subprocess.run([*CURL, "-o", "/dev/null", "-w", "%{http_code}", "-x",
                        f"http://alice:{PASSWORD}@127.0.0.1:{port}", f"http://127.0.0.1:{ask_http.origin}/x"],
                       capture_output=True, timeout=20)
    return r.stdout.decode()


def ask_socks(port):
    r = subprocess.run([*CURL, "-o", "/dev/null", "-w", "%{http_code}", "--socks5-hostname",
                        f"alice:{PASSWORD}@127.0.0.1:{port}", f"http://127.0.0.1:{ask_http.origin}/x"],
                       capture_output=True, timeout=20)
    return r.stdout.decode()


def ask_tls(port):
    r = subprocess.run([*CURL, "-o", "/dev/null", "-w", "%{http_code}", "--proxy", f"https://127.0.0.1:{port}",
                        "--proxy-cacert", str(ask_tls.crt), "--proxy-user", f"alice:{PASSWORD}",
                        f"http://127.0.0.1:{ask_http.origin}/x"], capture_output=True, timeout=20)
    return r.stdout.decode()


def ask_inbound(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            return s.recv(16).decode()
    except OSError as e:
        return f"error {e}"


def ask_admin(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/healthz")
        return str(c.getresponse().status)
    except OSError as e:
        return f"error {e}"


OK = {"listen": ("200", ask_http), "socks_listen": ("200", ask_socks), "tls_listen": ("200", ask_tls),
      "inbound": ("ECHO", ask_inbound), "admin_listen": ("200", ask_admin)}


def listener_config(kind, port, origin_port, password_hash, cert, echo_port, main_port="@PORT@"):
    """A proxy config whose `kind` listener is on port (main listen on main_port)."""
    crt, key = cert
    extra_proxy, extra = f"tls_cert = {crt}\ntls_key = {key}\n", ""
    if kind in ("socks_listen", "tls_listen", "admin_listen"):
        extra_proxy += f"{kind} = 127.0.0.1:{port}\n"
    elif kind == "inbound":
        extra = f"[inbound ib]\nlisten = 127.0.0.1:{port}\nforward = 127.0.0.1:{echo_port}\n"
    text = base_config(origin_port, password_hash, extra_proxy=extra_proxy, extra=extra)
    return text.replace("listen = 127.0.0.1:@PORT@", f"listen = 127.0.0.1:{main_port}")


def stderr_text(p):
    return Path(p.stderr).read_text()


def wait_log(p, needle, count=1, timeout=10):
    """Waits for the count-th occurrence of needle in the proxy's log (stderr), bounded."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if stderr_text(p).count(needle) >= count:
            return stderr_text(p)
        if p.proc.poll() is not None:
            break
        time.sleep(0.02)
    raise AssertionError(f"no {needle!r} x{count} in the log:\n{stderr_text(p)[-3000:]}")


def reload_and_wait(p):
    """SIGHUP, then wait for its outcome line: "reloaded" or "reload refused"."""
    text = stderr_text(p)
    n = text.count("reloaded ") + text.count("reload refused")
    p.reload()
    deadline = time.time() + 10
    while time.time() < deadline:
        text = stderr_text(p)
        if text.count("reloaded ") + text.count("reload refused") > n:
            return text
        time.sleep(0.02)
    raise AssertionError("no reload outcome in the log:\n" + text[-3000:])


@pytest.fixture(autouse=True)
def _globals(origin, cert):
    ask_http.origin = origin.port
    ask_tls.crt = cert[0]


@pytest.mark.parametrize("kind", ["listen", "socks_listen", "tls_listen", "inbound", "admin_listen"])
def test_second_proxy_on_a_port_in_use_refuses_to_start(kind, proxy_factory, origin, password_hash, cert,
                                                        echo, tmp_path):
    port = free_port()
    first = proxy_factory(listener_config(kind, port, origin.port, password_hash, cert, echo.port))
    if kind == "listen":
        port = first.port
    wait_port("127.0.0.1", port)
    # the second has other credentials: a client it stole would get 407
    other = subprocess.run([IPLOCK, "passwd", "alice", "--password-stdin"], input="another-password",
                           capture_output=True, text=True, timeout=30, check=True).stdout
    other_hash = next(l.split("=", 1)[1].strip() for l in other.splitlines() if l.startswith("password_hash"))
    cfg = tmp_path / "second.ini"
    cfg.write_text(listener_config(kind, port, origin.port, other_hash, cert, echo.port,
                                   main_port=port if kind == "listen" else free_port())
                   .replace("access_log = @LOG@", "access_log = off"))
    second = subprocess.Popen([IPLOCK, "proxy", "-c", str(cfg)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        rc = second.wait(timeout=10)
    except subprocess.TimeoutExpired:
        second.kill()
        second.wait(timeout=5)
        raise AssertionError(f"a second proxy with the same {kind} started")
    err = second.stderr.read()
    second.stderr.close()
    assert rc != 0
    assert "Address already in use" in err and f"127.0.0.1:{port}" in err, err
    want, ask = OK[kind]
    assert [ask(port) for _ in range(20)] == [want] * 20
    assert first.proc.poll() is None


def test_second_gate_with_workers_refuses_to_start(tmp_path):
    db = tmp_path / "keys.db"
    create_key(db, "--type", "secret", "--mode", "test")
    g = Gate(tmp_path, db, free_port(), extra="workers = 2")
    try:
        cfg = tmp_path / "second-gate.ini"
        cfg.write_text(g.config.read_text())
        r = subprocess.run([IPLOCK, "gate", "-c", str(cfg)], capture_output=True, text=True, timeout=10)
        assert r.returncode == 1
        assert "Address already in use" in r.stderr and f"127.0.0.1:{g.port}" in r.stderr, r.stderr
    finally:
        g.stop()


def test_proxy_workers_still_share_their_own_port(proxy_factory, origin, password_hash):
    p = proxy_factory(base_config(origin.port, password_hash, extra_proxy="workers = 4"))
    assert [ask_http(p.port) for _ in range(8)] == ["200"] * 8
    assert "4 workers" in stderr_text(p)


@pytest.mark.parametrize("kind", ["listen", "socks_listen", "tls_listen", "inbound", "admin_listen"])
def test_reload_moves_a_listener(kind, proxy_factory, origin, password_hash, cert, echo):
    old, new = free_port(), free_port()
    text = listener_config(kind, old, origin.port, password_hash, cert, echo.port)
    p = proxy_factory(text)
    if kind == "listen":
        old = p.port
    moved = text.replace("@PORT@", str(new)) if kind == "listen" else text.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
    wait_port("127.0.0.1", old)
    want, ask = OK[kind]
    assert ask(old) == want
    tunnel = None
    if kind == "listen":   # a tunnel through the old listener outlives it
        tunnel = socket.create_connection(("127.0.0.1", old), timeout=5)
        tunnel.sendall(f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1\r\nProxy-Authorization: {basic()}\r\n\r\n".encode())
        assert tunnel.recv(100).startswith(b"HTTP/1.1 200")
    p.write_config(moved)
    log = reload_and_wait(p)
    assert f"reloaded {p.path}" in log, log
    if tunnel:
        tunnel.sendall(b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = b""
        while (d := tunnel.recv(65536)):
            out += d
        tunnel.close()
        assert b"200 OK" in out and b"/after" in out
    assert f"127.0.0.1:{new}" in log and f"127.0.0.1:{old}" in log, log
    assert [ask(new) for _ in range(5)] == [want] * 5
    with pytest.raises(ConnectionRefusedError):   # the old port is closed, not just slow
        socket.create_connection(("127.0.0.1", old), timeout=2).close()
    if kind == "admin_listen":
        assert f"admin (/metrics, /healthz) now on 127.0.0.1:{new}" in log
    else:
        assert f"stopped listening for the" in log and f"on 127.0.0.1:{old}" in log
        assert f"reload: listening for the" in log


@pytest.mark.parametrize("kind", ["listen", "socks_listen", "tls_listen", "inbound", "admin_listen"])
def test_reload_to_a_port_in_use_is_refused_and_old_listener_serves(kind, proxy_factory, origin, password_hash,
                                                                   cert, echo):
    old = free_port()
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)   # as another iplock would
    busy.bind(("127.0.0.1", 0))
    busy.listen(8)
    taken = busy.getsockname()[1]
    try:
        text = listener_config(kind, old, origin.port, password_hash, cert, echo.port)
        p = proxy_factory(text)
        if kind == "listen":
            old = p.port
            p.write_config(text.replace("@PORT@", str(taken)))
        else:
            p.write_config(text.replace(f"127.0.0.1:{old}", f"127.0.0.1:{taken}"))
        wait_port("127.0.0.1", old)
        log = reload_and_wait(p)
        refused = [l for l in log.splitlines() if "reload refused" in l]
        assert refused and "Address already in use" in refused[-1] and f"127.0.0.1:{taken}" in refused[-1], log
        want, ask = OK[kind]
        assert [ask(old) for _ in range(5)] == [want] * 5
        assert p.proc.poll() is None
    finally:
        busy.close()


def test_reload_adds_and_removes_listeners_and_logs_each(proxy_factory, origin, password_hash, cert, echo):
    sport, tport, iport = free_port(), free_port(), free_port()
    base = listener_config("none", 0, origin.port, password_hash, cert, echo.port)
    p = proxy_factory(base)
    more = base.replace("\n[user alice]", f"socks_listen = 127.0.0.1:{sport}\ntls_listen = 127.0.0.1:{tport}\n"
                        "\n[user alice]") + f"\n[inbound ib]\nlisten = 127.0.0.1:{iport}\nforward = 127.0.0.1:{echo.port}\n"
    p.write_config(more)
    log = reload_and_wait(p)
    for needle in (f"SOCKS5 proxy (socks_listen) on 127.0.0.1:{sport}", f"TLS proxy (tls_listen) on 127.0.0.1:{tport}",
                   f"inbound ib on 127.0.0.1:{iport}"):
        assert f"reload: listening for the {needle}" in log, log
    assert ask_socks(sport) == "200" and ask_tls(tport) == "200" and ask_inbound(iport) == "ECHO"
    p.write_config(base)
    log = reload_and_wait(p)
    for port in (sport, tport, iport):
        assert f"on 127.0.0.1:{port} (connections accepted there carry on)" in log, log
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert ask_http(p.port) == "200"


def test_start_logs_every_listener(proxy_factory, origin, password_hash, cert, echo):
    sport, tport, iport, aport = free_port(), free_port(), free_port(), free_port()
    base = listener_config("none", 0, origin.port, password_hash, cert, echo.port)
    text = base.replace("\n[user alice]", f"socks_listen = 127.0.0.1:{sport}\ntls_listen = 127.0.0.1:{tport}\n"
                        f"admin_listen = 127.0.0.1:{aport}\n\n[user alice]") + \
        f"\n[inbound ib]\nlisten = 127.0.0.1:{iport}\nforward = 127.0.0.1:{echo.port}\n"
    p = proxy_factory(text)
    for port in (sport, tport, iport, aport):
        wait_port("127.0.0.1", port)
    log = wait_log(p, f"admin (/metrics, /healthz) on 127.0.0.1:{aport}")
    for needle in (f"HTTP proxy (listen) on 127.0.0.1:{p.port}", f"SOCKS5 proxy (socks_listen) on 127.0.0.1:{sport}",
                   f"TLS proxy (tls_listen) on 127.0.0.1:{tport}", f"inbound ib on 127.0.0.1:{iport}"):
        assert f"listening for the {needle}" in log, log


def test_gate_sighup_with_changed_listen_says_restart_needed(tmp_path):
    db = tmp_path / "keys.db"
    create_key(db, "--type", "secret", "--mode", "test")
    g = Gate(tmp_path, db, free_port())
    try:
        new = free_port()
        g.config.write_text(g.config.read_text().replace(f"127.0.0.1:{g.port}", f"127.0.0.1:{new}"))
        g.proc.send_signal(1)
        deadline = time.time() + 10
        while time.time() < deadline and "access log reopened" not in g.errors():
            time.sleep(0.02)
        log = g.errors()
        assert "listener changes need a restart, the old listeners keep serving" in log, log
        with socket.create_connection(("127.0.0.1", g.port), timeout=5):
            pass
        g.config.write_text("[gate]\nbogus = 1\n")
        g.proc.send_signal(1)
        deadline = time.time() + 10
        while time.time() < deadline and g.errors().count("access log reopened") < 2:
            time.sleep(0.02)
        assert "not applied; the running configuration and listeners stay" in g.errors()
        assert g.proc.poll() is None
    finally:
        g.stop()
