"""The TLS listener (an https:// proxy URL): credentials and CONNECT targets never cross the
network in cleartext. curl --proxy https://, Python requests with an HTTPS proxy, SOCKS5 over
TLS, certificate reload on SIGHUP."""
import socket
import ssl
import subprocess
import time

import pytest

from conftest import PASSWORD, base_config, basic, free_port


def make_cert(d, cn="127.0.0.1"):
    key, crt = d / f"{cn}-{time.time_ns()}.key", d / f"{cn}-{time.time_ns()}.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(crt), "-days", "2", "-subj", f"/CN={cn}",
                    "-addext", f"subjectAltName=IP:{cn}"], check=True, capture_output=True, timeout=60)
    return crt, key


@pytest.fixture
def tls_proxy(proxy_factory, origin, password_hash, tmp_path):
    crt, key = make_cert(tmp_path)
    tport = free_port()
    p = proxy_factory(base_config(origin.port, password_hash,
                                  extra_proxy=f"tls_listen = 127.0.0.1:{tport}\ntls_cert = {crt}\ntls_key = {key}"))
    p.tls_port, p.crt, p.key = tport, crt, key
    return p


def test_curl_https_proxy_forward_and_connect(tls_proxy, origin):
    origin.clear()
    for extra in ([], ["-p"]):
        r = subprocess.run(["curl", "-s", "--max-time", "10", *extra, "--proxy", f"https://127.0.0.1:{tls_proxy.tls_port}",
                            "--proxy-cacert", str(tls_proxy.crt), "--proxy-user", f"alice:{PASSWORD}",
                            f"http://127.0.0.1:{origin.port}/tls"], capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert b'"origin"' in r.stdout
    assert set(origin.peers()) <= {"127.0.0.2", "127.0.0.3"} and len(origin.peers()) == 2
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "--proxy",
                        f"https://127.0.0.1:{tls_proxy.tls_port}", "--proxy-cacert", str(tls_proxy.crt),
                        "--proxy-user", "alice:wrong", f"http://127.0.0.1:{origin.port}/tls"],
                       capture_output=True, timeout=30)
    assert r.stdout == b"407"


def test_requests_with_https_proxy(tls_proxy, origin):
    import requests
    url = f"https://alice:{PASSWORD}@127.0.0.1:{tls_proxy.tls_port}"
    r = requests.get(f"http://127.0.0.1:{origin.port}/rq", proxies={"http": url}, verify=str(tls_proxy.crt), timeout=10)
    assert r.json()["origin"] in ("127.0.0.2", "127.0.0.3")


def tls_connect(p):
    ctx = ssl.create_default_context(cafile=str(p.crt))
    raw = socket.create_connection(("127.0.0.1", p.tls_port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def test_socks5_over_tls_and_large_tunnel(tls_proxy, origin):
    s = tls_connect(tls_proxy)
    s.sendall(b"\x05\x01\x02")
    assert s.recv(2) == b"\x05\x02"
    s.sendall(b"\x01\x05alice" + bytes([len(PASSWORD)]) + PASSWORD.encode())
    assert s.recv(2) == b"\x01\x00"
    s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + origin.port.to_bytes(2, "big"))
    assert s.recv(10)[:2] == b"\x05\x00"
    n = 8 * 1024 * 1024 + 3
    s.sendall(f"GET /big/{n}/cl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    out = b""
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        out += d
    head, body = out.split(b"\r\n\r\n", 1)
    assert len(body) == n and body[:256] == bytes(range(256))


def test_cert_reloaded_on_sighup(tls_proxy, tmp_path):
    first = tls_connect(tls_proxy).getpeercert(binary_form=True)
    crt2, key2 = make_cert(tmp_path)
    tls_proxy.path.write_text(tls_proxy.path.read_text().replace(str(tls_proxy.crt), str(crt2)).replace(str(tls_proxy.key), str(key2)))
    tls_proxy.reload()
    time.sleep(0.5)
    ctx = ssl.create_default_context(cafile=str(crt2))
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", tls_proxy.tls_port), timeout=5),
                         server_hostname="127.0.0.1") as s:
        assert s.getpeercert(binary_form=True) != first
    # a broken key on reload is refused and the running certificate stays
    tls_proxy.path.write_text(tls_proxy.path.read_text().replace(str(key2), str(tmp_path / "missing.key")))
    tls_proxy.reload()
    time.sleep(0.3)
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", tls_proxy.tls_port), timeout=5),
                         server_hostname="127.0.0.1") as s:
        assert s.version().startswith("TLS")


def test_plaintext_to_tls_port_fails_cleanly(tls_proxy):
    with socket.create_connection(("127.0.0.1", tls_proxy.tls_port), timeout=5) as s:
        s.sendall(f"CONNECT 127.0.0.1:443 HTTP/1.1\r\nProxy-Authorization: {basic()}\r\n\r\n".encode())
        s.settimeout(5)
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        assert not data.startswith(b"HTTP/1.1 200")
