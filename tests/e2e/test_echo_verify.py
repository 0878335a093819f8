"""`iplock echo` (plain and TLS) and `iplock verify --echo`: every pool address pinned in turn
and seen by the echo; --expect; a pool address that cannot exit; the failures that stop the
check (unreachable proxy, 407, timeout, TLS) with one clear line; https:// proxy URLs."""
import http.client
import json
import socket
import ssl
import subprocess
import time
from http.server import BaseHTTPRequestHandler

import pytest

from conftest import IPLOCK, PASSWORD, Proxy, base_config, free_port
from servers import HttpServer
from verify_util import Echo, make_ca, verify, verify_json, wait_port


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_ca(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def echoes(tmp_path_factory, pki):
    ca, crt, key = pki
    d = tmp_path_factory.mktemp("echo")
    plain, tls = Echo(d), Echo(d, crt, key)
    yield plain, tls
    plain.stop()
    tls.stop()


@pytest.fixture(scope="module")
def liar():
    """An echo behind NAT, as it were: it always reports the same other address."""
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            body = b'{"origin": "203.0.113.9, 10.0.0.1"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = HttpServer(Handler)
    yield srv.port
    srv.close()


@pytest.fixture(scope="module")
def vproxy(tmp_path_factory, echoes, liar, password_hash, pki):
    plain, tls = echoes
    ca, crt, key = pki
    d = tmp_path_factory.mktemp("vproxy")
    tport = free_port()
    p = Proxy(d, base_config(f"{plain.port} {tls.port} {liar}", password_hash,
                             extra_proxy=f"tls_listen = 127.0.0.1:{tport}\ntls_cert = {crt}\ntls_key = {key}",
                             extra="[user bob]\npassword_hash = " + password_hash +
                             "\negress = 192.0.2.1 127.0.0.3\n"))
    p.tls_port = tport
    yield p
    assert p.stop() == 0, p.stderr.read_text()[-2000:]


def curl(*args):
    return subprocess.run(["curl", "-s", "--max-time", "10", *args], capture_output=True, text=True, timeout=30)


# ---- iplock echo -------------------------------------------------------------------------

def test_echo_answers_origin_keepalive_and_errors(echoes):
    plain, _ = echoes
    r = curl("--interface", "127.0.0.5", f"http://127.0.0.1:{plain.port}/ip", f"http://127.0.0.1:{plain.port}/?x=1")
    assert r.stdout.count('{"origin": "127.0.0.5"}') == 2
    c = http.client.HTTPConnection("127.0.0.1", plain.port, timeout=5)
    for path, status in (("/ip", 200), ("/", 200), ("/nope", 404), ("/ip", 200)):
        c.request("GET", path)
        resp = c.getresponse()
        body = json.loads(resp.read())
        assert resp.status == status
        assert body == {"origin": "127.0.0.1"} if status == 200 else "error" in body
    c.request("HEAD", "/ip")
    resp = c.getresponse()
    assert resp.status == 200 and resp.read() == b""
    c.request("POST", "/ip", body=b"x")
    resp = c.getresponse()
    assert resp.status == 405 and resp.getheader("Allow") == "GET, HEAD"
    resp.read()
    c.close()
    for raw, status in ((b"NONSENSE\r\n\r\n", b"400"), (b"GET /ip HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", b"431"),
                        (b"GET /ip HTTP/1.1\r\nBad Name: x\r\n\r\n", b"400")):
        with socket.create_connection(("127.0.0.1", plain.port), timeout=5) as s:
            s.sendall(raw)
            out = b""
            while True:
                d = s.recv(4096)
                if not d:
                    break
                out += d
        assert out.startswith(b"HTTP/1.1 " + status), out[:100]
        assert b"Connection: close" in out


def test_echo_tls_and_usage(echoes, pki):
    _, tls = echoes
    ca = pki[0]
    r = curl("--cacert", str(ca), "--interface", "127.0.0.4", tls.url)
    assert json.loads(r.stdout) == {"origin": "127.0.0.4"}
    ctx = ssl.create_default_context(cafile=str(ca))
    c = http.client.HTTPSConnection("localhost", tls.port, context=ctx, timeout=5)
    for _ in range(3):
        c.request("GET", "/ip")
        assert json.loads(c.getresponse().read()) == {"origin": "127.0.0.1"}
    c.close()
    assert subprocess.run([IPLOCK, "echo", "--help"], capture_output=True).returncode == 0
    for bad in ([], ["--listen", "nohost"], ["--listen", "127.0.0.1:1", "--tls-cert", "x"], ["--bogus"]):
        r = subprocess.run([IPLOCK, "echo", *bad], capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, (bad, r.stderr)


def test_echo_workers_reload_and_drain(tmp_path):
    """On net/server: --workers, SIGHUP keeps it serving, a second echo cannot join the port,
    SIGTERM closes idle connections and finishes a request under way with Connection: close."""
    import signal
    port = free_port()
    err = open(tmp_path / "echo.err", "w+")
    p = subprocess.Popen([IPLOCK, "echo", "--listen", f"127.0.0.1:{port}", "--workers", "2"],
                         stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_port("127.0.0.1", port)
        p.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        assert p.poll() is None
        r = curl(f"http://127.0.0.1:{port}/ip")
        assert json.loads(r.stdout) == {"origin": "127.0.0.1"}
        r = subprocess.run([IPLOCK, "echo", "--listen", f"127.0.0.1:{port}", "--workers", "2"],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 1 and "cannot listen" in r.stderr, r.stderr
        r = subprocess.run([IPLOCK, "echo", "--listen", f"127.0.0.1:{port}", "--workers", "0"],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and "--workers" in r.stderr, r.stderr
        idle = socket.create_connection(("127.0.0.1", port), timeout=5)
        busy = socket.create_connection(("127.0.0.1", port), timeout=5)
        busy.sendall(b"GET /ip HTTP/1.1\r\nHost: x\r\n")       # head not complete yet
        time.sleep(0.3)
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        assert idle.recv(100) == b""                               # closed without an answer
        # every worker drains once the port refuses (each closes its own SO_REUSEPORT
        # listener): only then is the answer sure to say Connection: close, whichever worker
        # holds `busy`
        end = time.monotonic() + 5
        while True:
            probe = socket.socket()
            refused = probe.connect_ex(("127.0.0.1", port)) != 0
            probe.close()
            if refused or time.monotonic() > end:
                break
            time.sleep(0.01)
        busy.sendall(b"\r\n")
        out = b""
        while True:
            d = busy.recv(4096)
            if not d:
                break
            out += d
        assert out.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in out, out
        assert p.wait(timeout=10) == 0
        assert time.monotonic() - t0 < 5
        idle.close()
        busy.close()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=5)
        err.close()


# ---- iplock verify --echo -----------------------------------------------------------------

def test_verify_echo_plain_and_tls(vproxy, echoes, pki):
    plain, tls = echoes
    url = vproxy.url()
    r = verify("--proxy", url, "--echo", plain.url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "127.0.0.2        127.0.0.2        ok" in r.stdout
    assert "127.0.0.3        127.0.0.3        ok" in r.stdout
    assert PASSWORD not in r.stdout + r.stderr and "alice:****@" in r.stdout
    rc, out, _ = verify_json("--proxy", url, "--echo", tls.url, "--cacert", str(pki[0]),
                             "--expect", "127.0.0.3,127.0.0.2")
    assert rc == 0 and out["ok"] and out["pool"] == ["127.0.0.2", "127.0.0.3"]
    assert [(x["egress"], x["seen"], x["verdict"]) for x in out["results"]] == [
        ("127.0.0.2", "127.0.0.2", "ok"), ("127.0.0.3", "127.0.0.3", "ok")]
    # the log shows that verify really pinned each address in turn
    # (the proxy writes a line when the connection ends, which may be just after verify exits)
    deadline = time.time() + 5
    while True:
        pinned = [l["egress"] for l in vproxy.log_lines() if l.get("destination") == f"127.0.0.1:{tls.port}"]
        if len(pinned) >= 2 or time.time() > deadline:
            break
        time.sleep(0.05)
    assert pinned[-2:] == ["127.0.0.2", "127.0.0.3"]


def test_verify_expect_names_the_difference(vproxy, echoes):
    plain, _ = echoes
    r = verify("--proxy", vproxy.url(), "--echo", plain.url, "--expect", "127.0.0.2,127.0.0.4")
    assert r.returncode == 1
    assert "expected but not in the pool: 127.0.0.4" in r.stdout
    assert "in the pool but not expected: 127.0.0.3" in r.stdout
    rc, out, _ = verify_json("--proxy", vproxy.url(), "--echo", plain.url, "--expect", "127.0.0.2,127.0.0.4")
    assert rc == 1 and not out["ok"]
    assert out["expected_not_in_pool"] == ["127.0.0.4"] and out["in_pool_not_expected"] == ["127.0.0.3"]


def test_verify_mismatch_when_the_echo_sees_another_address(vproxy, liar):
    rc, out, _ = verify_json("--proxy", vproxy.url(), "--echo", f"http://127.0.0.1:{liar}/ip")
    assert rc == 1 and not out["ok"]
    assert [(r["egress"], r["seen"], r["verdict"]) for r in out["results"]] == [
        ("127.0.0.2", "203.0.113.9", "mismatch"), ("127.0.0.3", "203.0.113.9", "mismatch")]
    assert out["results"][0]["detail"] == "pinned to 127.0.0.2 but left from 203.0.113.9"


def test_verify_pool_address_that_cannot_exit(vproxy, echoes):
    plain, _ = echoes
    r = verify("--proxy", vproxy.url(user="bob"), "--echo", plain.url)
    assert r.returncode == 1, r.stdout
    lines = {l.split()[0]: l for l in r.stdout.splitlines() if l.startswith(("192.", "127."))}
    assert "error" in lines["192.0.2.1"] and "502" in lines["192.0.2.1"]
    assert lines["127.0.0.3"].split()[1:3] == ["127.0.0.3", "ok"]
    assert "1 egress address did not pass: 192.0.2.1 (error)" in r.stdout


def test_verify_https_proxy_nested_tls(vproxy, echoes, pki):
    _, tls = echoes
    url = f"https://alice:{PASSWORD}@127.0.0.1:{vproxy.tls_port}"
    r = verify("--proxy", url, "--proxy-cacert", str(pki[0]), "--echo", tls.url, "--cacert", str(pki[0]))
    assert r.returncode == 0, r.stdout + r.stderr
    # without the proxy's CA: one line naming the reason, exit 3
    r = verify("--proxy", url, "--echo", tls.url, "--cacert", str(pki[0]))
    assert r.returncode == 3
    assert r.stderr.startswith("iplock verify: TLS to the proxy 127.0.0.1:") and "certificate verify failed" in r.stderr
    assert r.stderr.count("\n") == 1 and PASSWORD not in r.stderr + r.stdout


def test_verify_failures_are_one_clear_line(vproxy, echoes, tmp_path):
    plain, tls = echoes
    dead = free_port()
    r = verify("--proxy", f"http://alice:{PASSWORD}@127.0.0.1:{dead}", "--echo", plain.url)
    assert r.returncode == 3 and "cannot reach the proxy 127.0.0.1:%d: Connection refused" % dead in r.stderr
    r = verify("--proxy", vproxy.url(password="wrong"), "--echo", plain.url)
    assert r.returncode == 3 and "refused the credentials of user 'alice' (407" in r.stderr
    rc, out, err = verify_json("--proxy", vproxy.url(password="wrong"), "--echo", plain.url)
    assert rc == 3 and out["ok"] is False and "407" in out["error"]
    # a proxy that accepts and never answers: the timeout names itself
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        r = verify("--proxy", f"http://alice:x@127.0.0.1:{port}", "--echo", plain.url, "--timeout", "0.5")
    assert r.returncode == 3 and "timed out" in r.stderr and r.stderr.count("\n") == 1
    # the echo's certificate is not trusted: every address fails the same way, one line says why
    r = verify("--proxy", vproxy.url(), "--echo", tls.url)
    assert r.returncode == 3 and "certificate verify failed" in r.stderr
    for bad in ([], ["--proxy", vproxy.url()], ["--proxy", "ftp://x", "--echo", plain.url],
                ["--proxy", vproxy.url(), "--echo", plain.url, "--expect", "1.2.3"],
                ["--proxy", vproxy.url(), "--echo", plain.url, "--timeout", "0"]):
        r = verify(*bad)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, (bad, r.stderr)
    assert verify("--help").returncode == 0


def test_verify_untrusted_tls_proxy_hints_proxy_cacert(echoes, pki, password_hash, tmp_path):
    """issue 16 item 10: verify on a TLS proxy whose certificate it cannot verify said only
    "unable to get local issuer certificate"; iplock tunnel adds how to fix it. Same hint here,
    for a self-signed proxy certificate and for one signed by a CA the system does not know."""
    plain, _ = echoes
    crt, key = tmp_path / "self.crt", tmp_path / "self.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(crt), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    tport = free_port()
    p = Proxy(tmp_path, base_config(f"{plain.port}", password_hash,
                                    extra_proxy=f"tls_listen = 127.0.0.1:{tport}\ntls_cert = {crt}\ntls_key = {key}"))
    try:
        url = f"https://alice:{PASSWORD}@127.0.0.1:{tport}"
        hint = "(give the proxy's CA with --proxy-cacert FILE)"
        r = verify("--proxy", url, "--echo", plain.url)
        assert r.returncode == 3 and r.stderr.count("\n") == 1, r.stderr
        assert "certificate verify failed: self-signed certificate" in r.stderr and hint in r.stderr
        rc, out, _ = verify_json("--proxy", url, "--echo", plain.url)
        assert rc == 3 and hint in out["error"]
        # a CA file that does not sign it: the hint names the file given
        r = verify("--proxy", url, "--proxy-cacert", str(pki[0]), "--echo", plain.url)
        assert r.returncode == 3 and f"the proxy's CA is not in --proxy-cacert {pki[0]}" in r.stderr
        assert r.stderr.count("\n") == 1
        r = verify("--proxy", url, "--proxy-cacert", str(crt), "--echo", plain.url)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        assert p.stop() == 0


def test_verify_private_ca_tls_proxy_hint(vproxy, echoes):
    """issue 16 item 10, the issue's own case: a proxy certificate from a private CA."""
    plain, _ = echoes
    r = verify("--proxy", f"https://alice:{PASSWORD}@127.0.0.1:{vproxy.tls_port}", "--echo", plain.url)
    assert r.returncode == 3
    assert "unable to get local issuer certificate (give the proxy's CA with --proxy-cacert FILE)" in r.stderr
