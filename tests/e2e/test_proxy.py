"""Black-box tests of `iplock proxy`: the real binary on loopback with egress 127.0.0.2 and
127.0.0.3, driven by curl and raw sockets. One test per numbered behaviour of the issue."""
import json
import socket
import subprocess
import threading
import time

import pytest

from conftest import (PASSWORD, base_config, basic, raw_request, wait_port)

CURL = ["curl", "-s", "--max-time", "10"]


def curl(*args, check=True):
    r = subprocess.run([*CURL, *args], capture_output=True, timeout=30)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def curl_json(*args):
    return json.loads(curl(*args).stdout)


# 1. plain HTTP forwarding ---------------------------------------------------------------

def test_forward_origin_form_and_hop_by_hop_removed(proxy, origin):
    body = curl_json("-x", proxy.url(), "-H", "Connection: keep-alive, X-Secret-Hop",
                     "-H", "X-Secret-Hop: 1", "-H", "Keep-Alive: 5", "-H", "TE: trailers",
                     "-H", "Proxy-Connection: keep-alive", "-H", "X-Kept: yes",
                     f"http://127.0.0.1:{origin.port}/path?q=1")
    assert body["path"] == "/path?q=1"          # origin form on the wire
    h = body["headers"]
    for gone in ("x-secret-hop", "keep-alive", "te", "proxy-connection", "proxy-authorization"):
        assert gone not in h
    assert h["x-kept"] == "yes"
    assert h["host"] == f"127.0.0.1:{origin.port}"


def test_keepalive_both_sides(proxy, origin):
    u = f"http://127.0.0.1:{origin.port}"
    r = curl("-v", "-x", proxy.url(), f"{u}/a", f"{u}/b", f"{u}/c")
    assert r.stderr.count(b"Re-using existing connection") >= 2
    time.sleep(0.3)
    lines = [l for l in proxy.log_lines() if l["status"] == 200]
    assert len(lines) == 3 and {l["id"] for l in lines} == {lines[0]["id"]}


def test_large_and_chunked_bodies_streamed_intact(proxy, origin, tmp_path):
    import hashlib
    data = bytes(range(256)) * (4 * 1024 * 20)      # 20 MiB upload
    f = tmp_path / "up.bin"
    f.write_bytes(data)
    want = hashlib.sha256(data).hexdigest()
    u = f"http://127.0.0.1:{origin.port}/up"
    r = curl_json("-x", proxy.url(), "--data-binary", f"@{f}", u)
    assert r["len"] == len(data) and r["sha256"] == want
    r = curl_json("-x", proxy.url(), "-H", "Transfer-Encoding: chunked", "--data-binary", f"@{f}", u)
    assert r["len"] == len(data) and r["sha256"] == want
    for kind in ("cl", "chunked"):
        n = 30 * 1024 * 1024 + 7
        out = curl("-x", proxy.url(), f"http://127.0.0.1:{origin.port}/big/{n}/{kind}").stdout
        assert len(out) == n and out[:256] == bytes(range(256))


def test_head_request_has_no_body(proxy, origin):
    r = curl("-I", "-x", proxy.url(), f"http://127.0.0.1:{origin.port}/h")
    assert b"200 OK" in r.stdout


@pytest.mark.parametrize("vector", [
    b"Content-Length: 5\r\nContent-Length: 6\r\n",
    b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    b"Content-Length : 5\r\n",
    b"X-Folded: a\r\n b\r\n",
    b"Transfer-Encoding: chunked, identity\r\n",
])
def test_smuggling_vectors_refused(proxy, origin, vector):
    origin.clear()
    req = (f"POST http://127.0.0.1:{origin.port}/s HTTP/1.1\r\nHost: x\r\n"
           f"Proxy-Authorization: {basic()}\r\n").encode() + vector + b"\r\nhello"
    out = raw_request(proxy.port, req)
    assert out.startswith(b"HTTP/1.1 400"), out
    assert origin.peers() == []


@pytest.mark.parametrize("named", ["Content-Length", "Transfer-Encoding"])
def test_connection_cannot_remove_framing(proxy, origin, named):
    """`Connection: Content-Length` must not strip the framing of a body relayed as is: the
    origin would read the body as a second request (smuggling)."""
    origin.clear()
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    if named == "Content-Length":
        framing, body = f"Content-Length: {len(smuggled)}\r\n".encode(), smuggled
    else:
        framing = b"Transfer-Encoding: chunked\r\n"
        body = b"%x\r\n" % len(smuggled) + smuggled + b"\r\n0\r\n\r\n"
    req = (f"POST http://127.0.0.1:{origin.port}/s HTTP/1.1\r\nHost: x\r\n"
           f"Proxy-Authorization: {basic()}\r\nConnection: {named}\r\n").encode() + \
        framing + b"\r\n" + body
    out = raw_request(proxy.port, req, read_all=False)
    assert out.startswith(b"HTTP/1.1 200"), out
    time.sleep(0.3)
    assert [p for _, _, p in origin.seen] == ["/s"], origin.seen


def test_https_absolute_form_refused_with_reason(proxy):
    out = raw_request(proxy.port, f"GET https://api.stripe.com/v1/charges HTTP/1.1\r\n"
                      f"Host: api.stripe.com\r\nProxy-Authorization: {basic()}\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 400")
    body = json.loads(out.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["type"] == "proxy_error" and "CONNECT" in body["error"]["message"]


# 2. CONNECT tunnels ------------------------------------------------------------------------

def test_connect_tunnel_and_early_data(proxy, origin):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
        # CONNECT and the first tunnelled bytes in one segment, as TLS clients do
        s.sendall(f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1\r\nHost: x\r\nProxy-Authorization: {basic()}\r\n\r\n"
                  f"GET /t HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        out = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            out += c
    assert out.startswith(b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200 OK")
    assert json.loads(out.split(b"\r\n\r\n")[2])["origin"] in ("127.0.0.2", "127.0.0.3")


def test_half_close(proxy):
    # a server that reads until EOF, then answers: only works if the FIN is passed on
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def serve():
        c, _ = srv.accept()
        data = b""
        while True:
            d = c.recv(4096)
            if not d:
                break
            data += d
        c.sendall(b"got:" + data)
        c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    # this port is not allowed by default: use a proxy with it allowed
    proxy.write_config(proxy.path.read_text().replace("connect_ports = 443 80", f"connect_ports = 443 80 {port}"))
    proxy.reload()
    time.sleep(0.3)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as s:
        s.sendall(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nProxy-Authorization: {basic()}\r\n\r\n".encode())
        head = s.recv(4096)
        assert head.startswith(b"HTTP/1.1 200")
        s.sendall(b"ping")
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            out += d
    assert out == b"got:ping"
    srv.close()


# 3. authentication ------------------------------------------------------------------------

@pytest.mark.parametrize("creds", [None, ("alice", "wrong"), ("bob", PASSWORD), ("alice", "")])
def test_407_and_origin_sees_nothing(proxy, origin, creds):
    origin.clear()
    args = ["-i", "-x", f"http://127.0.0.1:{proxy.port}"]
    if creds:
        args += ["--proxy-user", f"{creds[0]}:{creds[1]}"]
    r = curl(*args, f"http://127.0.0.1:{origin.port}/x")
    assert r.stdout.startswith(b"HTTP/1.1 407")
    assert b'Proxy-Authenticate: Basic realm="iplock"' in r.stdout
    # the same refusal for a CONNECT: the status line, not just any curl failure
    head = f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1\r\nHost: 127.0.0.1:{origin.port}\r\n"
    if creds:
        head += f"Proxy-Authorization: {basic(*creds)}\r\n"
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
        s.sendall((head + "\r\n").encode())
        got = b""
        while b"\r\n\r\n" not in got and (d := s.recv(4096)):
            got += d
    assert got.startswith(b"HTTP/1.1 407 Proxy Authentication Required\r\n"), got
    assert b'Proxy-Authenticate: Basic realm="iplock"' in got
    assert origin.peers() == []
    for line in proxy.log_lines():
        assert PASSWORD not in json.dumps(line) and "wrong" not in json.dumps(line)


# 4. egress pools --------------------------------------------------------------------------

def test_round_robin_uses_both_and_nothing_else(proxy, origin):
    origin.clear()
    u = f"http://127.0.0.1:{origin.port}/rr"
    for _ in range(10):
        curl("-x", proxy.url(), u)
        curl("-p", "-x", proxy.url(), u)
    peers = origin.peers()
    assert len(peers) == 20
    assert set(peers) == {"127.0.0.2", "127.0.0.3"}


def test_pinning_by_username_option_and_header(proxy, origin):
    u = f"http://127.0.0.1:{origin.port}/pin"
    for _ in range(4):
        assert curl_json("-x", proxy.url(user="alice+egress=2"), u)["origin"] == "127.0.0.3"
        assert curl_json("-p", "-x", proxy.url(user="alice+egress=1"), u)["origin"] == "127.0.0.2"
        assert curl_json("-x", proxy.url(), "--proxy-header", "X-Iplock-Egress: 2", u)["origin"] == "127.0.0.3"
        assert curl_json("-x", proxy.url(), "--proxy-header", "X-Iplock-Egress: 127.0.0.2", u)["origin"] == "127.0.0.2"
    r = curl("-i", "-x", proxy.url(user="alice+egress=3"), u)
    assert r.stdout.startswith(b"HTTP/1.1 400")
    r = curl("-i", "-x", proxy.url(), "--proxy-header", "X-Iplock-Egress: 127.0.0.9", u)
    assert r.stdout.startswith(b"HTTP/1.1 400")


def test_failed_egress_marked_down_and_never_default(proxy_factory, origin, password_hash):
    # 192.0.2.1 is not on this machine: bind fails (EADDRNOTAVAIL), so it goes down
    p = proxy_factory(base_config(origin.port, password_hash).replace(
        "egress = 127.0.0.2 127.0.0.3", "egress = 192.0.2.1 127.0.0.3"))
    origin.clear()
    u = f"http://127.0.0.1:{origin.port}/fail"
    for _ in range(6):
        assert curl_json("-x", p.url(), u)["origin"] == "127.0.0.3"
    assert set(origin.peers()) == {"127.0.0.3"}
    # pinned to the broken address: fail closed with 502, never another address
    origin.clear()
    r = curl("-i", "-x", p.url(user="alice+egress=1"), u)
    assert r.stdout.startswith(b"HTTP/1.1 502")
    assert origin.peers() == []


def test_sticky_policy(proxy_factory, origin, password_hash):
    p = proxy_factory(base_config(origin.port, password_hash, extra_proxy="egress_policy = sticky"))
    seen = {curl_json("-x", p.url(), f"http://127.0.0.1:{origin.port}/s")["origin"] for _ in range(6)}
    assert len(seen) == 1


# 5. destination safety --------------------------------------------------------------------

def test_loopback_refused_without_allow(proxy_factory, origin, password_hash):
    p = proxy_factory(base_config(origin.port, password_hash).replace("allow_destinations = 127.0.0.1/32", ""))
    origin.clear()
    for target in (f"127.0.0.1:{origin.port}", f"localhost:{origin.port}"):
        r = curl("-i", "-x", p.url(), f"http://{target}/x")
        assert r.stdout.startswith(b"HTTP/1.1 403"), r.stdout
        r = curl("-p", "-i", "-x", p.url(), f"http://{target}/x", check=False)
        assert b"403" in r.stdout
    for raw in ("0x7f000001", "0177.0.0.1", "127.1", "2130706433", "[::ffff:127.0.0.1]", "169.254.169.254"):
        out = raw_request(p.port, f"CONNECT {raw}:{origin.port} HTTP/1.1\r\nProxy-Authorization: {basic()}\r\n\r\n".encode())
        assert out[:12] in (b"HTTP/1.1 400", b"HTTP/1.1 403"), (raw, out)
    assert origin.peers() == []


def test_ports_restricted(proxy, origin):
    out = raw_request(proxy.port, f"CONNECT 127.0.0.1:22 HTTP/1.1\r\nProxy-Authorization: {basic()}\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 403")
    assert b"port 22" in out


def test_proxy_itself_refused(proxy):
    out = raw_request(proxy.port, f"CONNECT 127.0.0.1:{proxy.port} HTTP/1.1\r\nProxy-Authorization: {basic()}\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 403"), out


def test_user_destination_allow_list(proxy_factory, origin, password_hash):
    p = proxy_factory(base_config(origin.port, password_hash, extra_user="allow = api.stripe.com:443 *.example.com:443"))
    r = curl("-i", "-x", p.url(), f"http://127.0.0.1:{origin.port}/x")
    assert r.stdout.startswith(b"HTTP/1.1 403")


# 7. limits --------------------------------------------------------------------------------

def test_slowloris_closed_by_header_timeout(proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
        s.sendall(b"GET http://127.0.0.1/ HTTP/1.1\r\n")
        t0 = time.time()
        out = b""
        while time.time() - t0 < 8:
            try:
                s.sendall(b"X-a: b\r\n")
            except OSError:
                break
            try:
                s.settimeout(0.5)
                d = s.recv(4096)
                if not d:
                    break
                out += d
            except socket.timeout:
                continue
        assert time.time() - t0 < 6
    assert out.startswith(b"HTTP/1.1 408") or out == b""


def test_header_caps_431(proxy, origin):
    big = b"X-Big: " + b"a" * 20000 + b"\r\n"
    out = raw_request(proxy.port, f"GET http://127.0.0.1:{origin.port}/ HTTP/1.1\r\n".encode() + big + b"\r\n")
    assert out.startswith(b"HTTP/1.1 431")
    many = b"".join(b"X-%d: v\r\n" % i for i in range(200))
    out = raw_request(proxy.port, f"GET http://127.0.0.1:{origin.port}/ HTTP/1.1\r\n".encode() + many + b"\r\n")
    assert out.startswith(b"HTTP/1.1 431")


def test_per_user_connection_cap(proxy_factory, origin, password_hash):
    p = proxy_factory(base_config(origin.port, password_hash, extra_user="max_conns = 1"))
    a = socket.create_connection(("127.0.0.1", p.port))
    a.sendall(f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1\r\nProxy-Authorization: {basic()}\r\n\r\n".encode())
    assert a.recv(100).startswith(b"HTTP/1.1 200")
    out = raw_request(p.port, f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1\r\nProxy-Authorization: {basic()}\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 503")
    a.close()


# 8/9. errors and the log ------------------------------------------------------------------

def test_connect_refused_is_502_json(proxy_factory, origin, password_hash):
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    p = proxy_factory(base_config(origin.port, password_hash).replace("connect_ports = 443 80", f"connect_ports = 443 80 {port}"))
    out = raw_request(p.port, f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nProxy-Authorization: {basic()}\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 502")
    assert json.loads(out.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "connect_refused"


def test_access_log_fields(proxy, origin):
    curl("-p", "-x", proxy.url(), f"http://127.0.0.1:{origin.port}/log")
    time.sleep(0.2)
    line = proxy.log_lines()[-1]
    for k in ("time", "user", "client", "method", "destination", "resolved", "egress", "status",
              "bytes_up", "bytes_down", "duration_ms", "reason"):
        assert k in line
    assert line["method"] == "CONNECT" and line["user"] == "alice" and line["status"] == 200
    assert line["bytes_down"] > 0 and line["bytes_up"] > 0


def _log_lines_at(path, n, timeout=10.0):
    """The access log lines at path once there are n of them (the line follows the reply)."""
    deadline = time.time() + timeout
    while True:
        lines = [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.exists() else []
        if len(lines) >= n or time.time() > deadline:
            return lines
        time.sleep(0.02)


def test_reload_reopens_access_log_after_rename(proxy, origin):
    curl("-p", "-x", proxy.url(), f"http://127.0.0.1:{origin.port}/first")
    assert [l["method"] for l in _log_lines_at(proxy.log, 1)] == ["CONNECT"]
    rotated = proxy.log.with_name("access.log.1")
    proxy.log.rename(rotated)   # logrotate's rename, then its postrotate reload
    proxy.reload()
    curl("-x", proxy.url(), f"http://127.0.0.1:{origin.port}/second")
    assert [l["method"] for l in _log_lines_at(proxy.log, 1)] == ["GET"]
    assert [l["method"] for l in _log_lines_at(rotated, 1)] == ["CONNECT"]


def test_reload_keeps_access_log_when_reopen_fails(proxy, origin):
    missing = proxy.log.parent / "no-such-dir" / "access.log"
    proxy.path.write_text(proxy.path.read_text().replace(f"access_log = {proxy.log}", f"access_log = {missing}"))
    proxy.reload()
    assert proxy.proc.poll() is None
    err = proxy.stderr.read_text()
    assert f"cannot open access log {missing}" in err and "still writing to the one open before" in err
    curl("-x", proxy.url(), f"http://127.0.0.1:{origin.port}/kept")
    assert [l["method"] for l in _log_lines_at(proxy.log, 1)] == ["GET"]
    assert not missing.parent.exists()


# 11. config check and reload --------------------------------------------------------------

def test_check_reports_file_line(tmp_path):
    from conftest import IPLOCK
    bad = tmp_path / "bad.ini"
    bad.write_text("[proxy]\nlisten = 127.0.0.1:1\negress = 127.0.0.2\nbogus = 1\n")
    r = subprocess.run([IPLOCK, "proxy", "-c", str(bad), "--check"], capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and f"{bad}:4:" in r.stderr


def test_reload_keeps_tunnels_and_refuses_bad_config(proxy, origin):
    a = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    a.sendall(f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1\r\nProxy-Authorization: {basic()}\r\n\r\n".encode())
    assert a.recv(100).startswith(b"HTTP/1.1 200")
    good = proxy.path.read_text()
    proxy.path.write_text(good + "\nnot valid\n")
    proxy.reload()
    time.sleep(0.3)
    assert proxy.proc.poll() is None
    assert curl_json("-x", proxy.url(), f"http://127.0.0.1:{origin.port}/still")["path"] == "/still"
    proxy.path.write_text(good.replace("egress = 127.0.0.2 127.0.0.3", "egress = 127.0.0.3"))
    proxy.reload()
    time.sleep(0.3)
    # the old tunnel still works after both reloads
    a.sendall(b"GET /old HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out = b""
    while True:
        d = a.recv(65536)
        if not d:
            break
        out += d
    assert b"200 OK" in out
    a.close()
    origin.clear()
    for _ in range(4):
        curl("-x", proxy.url(), f"http://127.0.0.1:{origin.port}/new")
    assert set(origin.peers()) == {"127.0.0.3"}


def test_reload_under_load_drops_nothing(proxy, origin):
    errors = []
    done = threading.Event()

    def load():
        while not done.is_set():
            r = subprocess.run([*CURL, "-p", "-x", proxy.url(), f"http://127.0.0.1:{origin.port}/l"],
                               capture_output=True, timeout=30)
            if r.returncode != 0 or b"origin" not in r.stdout:
                errors.append(r)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(5):
        time.sleep(0.2)
        proxy.reload()
    time.sleep(0.3)
    done.set()
    for t in threads:
        t.join(timeout=30)
    assert errors == []


def test_version_and_help():
    from conftest import IPLOCK
    assert subprocess.run([IPLOCK, "--version"], capture_output=True, text=True).stdout.startswith("iplock ")
    r = subprocess.run([IPLOCK, "proxy", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "usage: iplock proxy" in r.stdout
    r = subprocess.run([IPLOCK, "nope"], capture_output=True, text=True)
    assert r.returncode == 2


def test_pool_endpoint_lists_callers_pool(proxy_factory, origin, password_hash):
    p = proxy_factory(base_config(origin.port, password_hash,
                                  extra_user="egress = 127.0.0.3 127.0.0.2\negress_policy = primary"))
    r = curl("-u", f"alice:{PASSWORD}", f"http://127.0.0.1:{p.port}/iplock/pool")
    body = json.loads(r.stdout)
    assert body["user"] == "alice" and body["egress"] == ["127.0.0.3", "127.0.0.2"]
    assert body["policy"] == "primary"
    r = curl("-i", f"http://127.0.0.1:{p.port}/iplock/pool")
    assert r.stdout.startswith(b"HTTP/1.1 407")
    r = curl("-i", "-u", "alice:nope", f"http://127.0.0.1:{p.port}/iplock/pool")
    assert r.stdout.startswith(b"HTTP/1.1 407")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / __import__("os").sysconf("SC_CLK_TCK")


def test_emfile_backs_off_instead_of_spinning(proxy_factory, origin, password_hash):
    import resource

    def low_fds():
        resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))

    p = proxy_factory(base_config(origin.port, password_hash, extra_proxy="workers = 1"), preexec=low_fds)
    conns = []
    for _ in range(80):     # more than the proxy can hold: accept() fails with EMFILE
        try:
            conns.append(socket.create_connection(("127.0.0.1", p.port), timeout=2))
        except OSError:
            break
    time.sleep(0.3)
    before = cpu_seconds(p.proc.pid)
    time.sleep(2.0)
    spent = cpu_seconds(p.proc.pid) - before
    assert spent < 0.5, f"proxy burned {spent:.2f} CPU s while out of descriptors"
    for c in conns:
        c.close()
    time.sleep(0.5)
    assert curl_json("-x", p.url(), f"http://127.0.0.1:{origin.port}/after")["path"] == "/after"
    assert "pausing the listener" in p.stderr.read_text()


def test_password_guessing_is_throttled_per_address(proxy_factory, origin, password_hash):
    p = proxy_factory(base_config(origin.port, password_hash, extra_proxy="workers = 1"))
    u = f"http://127.0.0.1:{origin.port}/g"
    assert curl_json("-x", p.url(), u)["path"] == "/g"          # verified once: now cached
    for i in range(10):
        assert curl("-i", "-x", p.url(password=f"guess{i}"), u).stdout.startswith(b"HTTP/1.1 407")
    r = curl("-i", "-x", p.url(password="guess-next"), u)
    assert r.stdout.startswith(b"HTTP/1.1 407") and b"proxy_auth_throttled" in r.stdout
    # the client whose credentials were verified before still gets through
    assert curl_json("-x", p.url(), u)["path"] == "/g"


@pytest.mark.parametrize("relay", ["auto", "splice", "copy"])
def test_tunnel_bulk_intact_in_every_relay_mode(proxy_factory, origin, password_hash, relay):
    import hashlib
    p = proxy_factory(base_config(origin.port, password_hash, extra_proxy=f"relay = {relay}"))
    n = 24 * 1024 * 1024 + 11
    out = curl("-p", "-x", p.url(), f"http://127.0.0.1:{origin.port}/big/{n}/cl").stdout
    expect = (bytes(range(256)) * 256 * (n // 65536 + 1))[:n]
    assert len(out) == n and hashlib.sha256(out).digest() == hashlib.sha256(expect).digest()


def test_client_reset_while_waiting_does_not_spin(proxy_factory, origin, password_hash):
    import struct
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    p = proxy_factory(base_config(origin.port, password_hash, extra_proxy="workers = 1")
                      .replace(f"http_ports = 80 {origin.port}", f"http_ports = 80 {origin.port} {port}"))
    s = socket.create_connection(("127.0.0.1", p.port), timeout=5)
    s.sendall(f"GET http://127.0.0.1:{port}/slow HTTP/1.1\r\nHost: x\r\nProxy-Authorization: {basic()}\r\n\r\n".encode())
    conn, _ = silent.accept()          # the request reached the silent upstream
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()                          # RST while the proxy waits for the response
    time.sleep(0.2)
    before = cpu_seconds(p.proc.pid)
    time.sleep(1.0)
    assert cpu_seconds(p.proc.pid) - before < 0.2
    conn.close()
    silent.close()
    time.sleep(0.2)
    assert any(l.get("reason") == "client went away" for l in p.log_lines())
