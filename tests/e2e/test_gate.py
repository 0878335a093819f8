"""Black-box tests of `iplock gate`: the real gate between clients on distinct loopback
addresses (127.0.0.2 allowed, 127.0.0.5 not) and an upstream, driven with curl, raw sockets
and Stripe's own Python SDK (python3-stripe) pointed at the gate."""
import hashlib
import json
import os
import socket
import ssl
import struct
import subprocess
import time

import pytest
import requests

from gate_util import Gate, Upstream, create_key, curl, free_port, keys, wait_port, IPLOCK
# the `pg` fixture (the session's cluster) comes from conftest.py

MSG_IP = "The API key provided does not allow requests from your IP address."
MSG_NOKEY = ("You did not provide an API key. You need to provide your API key in the "
             "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
             "YOUR_SECRET_KEY').")
MSG_PK = "This API call cannot be made with a publishable API key. Please use a secret API key."


@pytest.fixture(scope="module")
def upstream():
    u = Upstream()
    yield u
    u.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def env(request, tmp_path_factory, upstream):
    """The gate on a SQLite file, then again on a PostgreSQL database."""
    tmp = tmp_path_factory.mktemp("gate")
    db = tmp / "keys.db" if request.param == "sqlite" else request.getfixturevalue("pg").new_db()[0]
    e = {"db": db, "tmp": tmp}
    e["sk"] = create_key(db, "--type", "secret", "--mode", "test", "--allow", "127.0.0.2",
                         "--allow", "::ffff:127.0.0.3")
    e["open"] = create_key(db, "--type", "secret", "--mode", "live")
    e["rk"] = create_key(db, "--type", "restricted", "--perm", "charge=read",
                         "--perm", "customer=write")
    e["pk"] = create_key(db, "--type", "publishable")
    e["org"] = create_key(db, "--type", "org", "--mode", "live")
    g = Gate(tmp, db, upstream.port, extra="trusted_proxies = 127.0.0.4\naccount = acct_test1")
    e["gate"] = g
    yield e
    g.stop()


def err(body):
    return json.loads(body)["error"]


def get(env, path="/v1/charges", key=None, source="127.0.0.2", args=()):
    a = list(args)
    if key:
        a += ["-H", f"Authorization: Bearer {key}"]
    return curl(env["gate"].url + path, *a, source=source)


def test_allowed_adds_identity_and_passes_headers(env, upstream):
    k = env["sk"]
    st, body, _ = get(env, "/v1/charges?limit=3", k["secret"],
                      args=["-H", "Stripe-Account: acct_123", "-H", "X-Iplock-Key-Id: forged",
                            "-H", "Idempotency-Key: abc"])
    assert st == 200, body
    h = json.loads(body)["echo"]["headers"]
    assert h["x-iplock-key-id"] == k["id"]
    assert h["x-iplock-key-type"] == "secret"
    assert h["x-iplock-key-mode"] == "test"
    assert h["stripe-account"] == "acct_123"
    assert h["idempotency-key"] == "abc"
    assert h["x-forwarded-for"] == "127.0.0.2"
    assert h["x-iplock-client"] == "127.0.0.2"
    assert json.loads(body)["echo"]["path"] == "/v1/charges?limit=3"


def test_basic_auth_key_as_username(env):
    st, body, _ = curl(env["gate"].url + "/v1/charges", "-u", env["sk"]["secret"] + ":",
                       source="127.0.0.2")
    assert st == 200


def test_every_refusal_exact(env):
    sk, rk, pk, org = env["sk"], env["rk"], env["pk"], env["org"]
    st, body, _ = get(env)
    assert (st, err(body)["message"]) == (401, MSG_NOKEY)
    bogus = "sk_test_" + "Q" * 20 + "Aso0"
    st, body, _ = get(env, key=bogus)
    assert (st, err(body)["message"]) == (401, "Invalid API Key provided: sk_test_****Aso0")
    assert err(body)["type"] == "invalid_request_error"
    st, body, _ = get(env, key=sk["secret"], source="127.0.0.5")
    assert (st, err(body)["message"]) == (401, MSG_IP)
    st, body, _ = get(env, key=rk["secret"], args=["-X", "POST"])
    assert st == 403
    assert err(body)["message"] == (
        f"The provided key '{rk['masked']}' does not have the required permissions for this "
        "endpoint on account 'acct_test1'. Having the 'rak_charge_write' permission would "
        "allow this request to continue.")
    st, body, _ = get(env, key=rk["secret"])
    assert st == 200
    st, body, _ = get(env, "/v1/customers/cus_1", key=rk["secret"], args=["-X", "DELETE"])
    assert st == 200
    st, body, _ = get(env, "/v1/balance", key=rk["secret"])
    assert st == 403
    st, body, _ = get(env, key=pk["secret"])
    assert (st, err(body)["message"]) == (401, MSG_PK)
    st, body, _ = get(env, "/v1/tokens", key=pk["secret"], args=["-X", "POST"])
    assert st == 200
    st, body, _ = get(env, key=org["secret"])
    assert st == 400 and "Stripe-Context" in err(body)["message"]
    st, body, _ = get(env, key=org["secret"], args=["-H", "Stripe-Context: acct_1",
                                                    "-H", "Stripe-Version: 2024-06-20"])
    assert st == 200


def test_revoked_and_expired(env):
    db = env["db"]
    a = create_key(db, "--type", "secret")
    b = create_key(db, "--type", "secret")
    assert get(env, key=a["secret"])[0] == 200
    keys(db, "revoke", a["id"])
    keys(db, "expire", b["id"])
    time.sleep(0.15)
    st, body, _ = get(env, key=a["secret"])
    assert (st, err(body)["message"]) == (401, f"Invalid API Key provided: {a['masked']}")
    st, body, _ = get(env, key=b["secret"])
    assert st == 401 and err(body)["code"] == "api_key_expired"
    assert err(body)["message"] == f"Expired API Key provided: {b['masked']}"


def test_rotation_inherits_allowlist_and_old_key_expires(env):
    db = env["db"]
    k = create_key(db, "--type", "secret", "--allow", "127.0.0.2")
    _, new, _ = keys(db, "rotate", k["id"], "--expire-old", "1h")
    time.sleep(0.15)
    assert get(env, key=new["secret"])[0] == 200
    assert get(env, key=new["secret"], source="127.0.0.5")[0] == 401
    assert get(env, key=k["secret"])[0] == 200          # grace period
    _, newer, _ = keys(db, "rotate", new["id"], "--expire-old", "now")
    time.sleep(0.15)
    st, body, _ = get(env, key=new["secret"])
    assert st == 401 and err(body)["code"] == "api_key_expired"
    assert get(env, key=newer["secret"], source="127.0.0.5")[0] == 401
    assert get(env, key=newer["secret"])[0] == 200


def test_change_applies_within_100ms(env):
    db = env["db"]
    k = create_key(db, "--type", "secret", "--allow", "127.0.0.2")
    s = requests.Session()
    url = env["gate"].url + "/v1/charges"
    hdr = {"Authorization": "Bearer " + k["secret"]}

    class Src(requests.adapters.HTTPAdapter):
        def init_poolmanager(self, *a, **kw):
            kw["source_address"] = ("127.0.0.2", 0)
            return super().init_poolmanager(*a, **kw)
    s.mount("http://", Src())
    # the key's creation reaches the gate by the same feed; the clock below starts at each change
    deadline = time.monotonic() + 2
    while s.get(url, headers=hdr, timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "new key not served within 2 s"
        time.sleep(0.005)
    for args, want in [(["restrict", k["id"], "--remove", "127.0.0.2", "--allow", "127.0.0.9"], 401),
                       (["restrict", k["id"], "--clear"], 200)]:
        keys(db, *args)
        t0 = time.monotonic()
        while True:
            st = s.get(url, headers=hdr, timeout=5).status_code
            if st == want:
                break
            assert time.monotonic() - t0 < 0.1, "change not applied within 100 ms"
        assert time.monotonic() - t0 < 0.1


def test_xff_spoofing_ignored_and_trusted_chain(env):
    sk = env["sk"]["secret"]
    # untrusted peer: its X-Forwarded-For is never read
    st, body, _ = get(env, key=sk, source="127.0.0.5", args=["-H", "X-Forwarded-For: 127.0.0.2"])
    assert (st, err(body)["message"]) == (401, MSG_IP)
    # trusted proxy 127.0.0.4: right to left, first untrusted is the client
    st, body, _ = get(env, key=sk, source="127.0.0.4", args=["-H", "X-Forwarded-For: 127.0.0.2"])
    assert st == 200
    h = json.loads(body)["echo"]["headers"]
    assert h["x-forwarded-for"] == "127.0.0.2, 127.0.0.4" and h["x-iplock-client"] == "127.0.0.2"
    assert get(env, key=sk, source="127.0.0.4",
               args=["-H", "X-Forwarded-For: 127.0.0.2, 127.0.0.5"])[0] == 401
    assert get(env, key=sk, source="127.0.0.4",
               args=["-H", "X-Forwarded-For: 9.9.9.9, 127.0.0.2, 127.0.0.4"])[0] == 200
    # unparseable chain: client unknown, keys with an allowlist fail closed
    st, body, _ = get(env, key=sk, source="127.0.0.4",
                      args=["-H", "X-Forwarded-For: 127.0.0.2, bogus"])
    assert (st, err(body)["message"]) == (401, MSG_IP)
    # ... but a key without an allowlist still works
    assert get(env, key=env["open"]["secret"], source="127.0.0.4",
               args=["-H", "X-Forwarded-For: bogus"])[0] == 200
    log = env["gate"].access()
    spoof = [l for l in log if l["peer"] == "127.0.0.5" and l["chain"] == "127.0.0.2"]
    assert spoof and spoof[0]["client"] == "127.0.0.5" and spoof[0]["decision"] == "deny"


def test_access_log_never_has_the_key(env):
    log = env["gate"].access()
    assert log
    text = env["gate"].log.read_text()
    for name in ("sk", "rk", "pk", "org", "open"):
        assert env[name]["secret"][8:] not in text
    l = [x for x in log if x["key_id"] == env["sk"]["id"] and x["status"] == 200][0]
    for f in ("time", "client", "peer", "decision", "reason", "status", "duration_us", "chain"):
        assert f in l
    assert l["reason"] == "ok"


def test_stripe_sdk(env):
    stripe = pytest.importorskip("stripe")

    class Src(requests.adapters.HTTPAdapter):
        def __init__(self, src):
            self.src = src
            super().__init__()

        def init_poolmanager(self, *a, **kw):
            kw["source_address"] = (self.src, 0)
            return super().init_poolmanager(*a, **kw)

    def client(src):
        s = requests.Session()
        s.mount("http://", Src(src))
        return stripe.http_client.RequestsClient(session=s)

    stripe.api_base = env["gate"].url
    stripe.max_network_retries = 0
    try:
        stripe.default_http_client = client("127.0.0.2")
        stripe.api_key = env["sk"]["secret"]
        lst = stripe.Charge.list(limit=3)
        assert lst.object == "list"
        stripe.default_http_client = client("127.0.0.5")
        with pytest.raises(stripe.error.AuthenticationError) as ei:
            stripe.Charge.list()
        assert ei.value.http_status == 401 and MSG_IP in str(ei.value.user_message)
        stripe.default_http_client = client("127.0.0.2")
        stripe.api_key = "sk_test_" + "Z" * 30 + "abcd"
        with pytest.raises(stripe.error.AuthenticationError) as ei:
            stripe.Customer.list()
        assert ei.value.user_message == "Invalid API Key provided: sk_test_****abcd"
        stripe.api_key = env["rk"]["secret"]
        with pytest.raises(stripe.error.PermissionError) as ei:
            stripe.Charge.create(amount=100, currency="usd")
        assert "rak_charge_write" in ei.value.user_message
        stripe.api_key = env["pk"]["secret"]
        with pytest.raises(stripe.error.AuthenticationError) as ei:
            stripe.Customer.list()
        assert ei.value.user_message == MSG_PK
        stripe.api_key = env["org"]["secret"]
        with pytest.raises(stripe.error.InvalidRequestError):
            stripe.Customer.list()
        exp = create_key(env["db"], "--type", "secret")
        keys(env["db"], "expire", exp["id"])
        time.sleep(0.15)
        stripe.api_key = exp["secret"]
        with pytest.raises(stripe.error.AuthenticationError) as ei:
            stripe.Customer.list()
        assert ei.value.json_body["error"]["code"] == "api_key_expired"
    finally:
        stripe.default_http_client = None
        stripe.api_key = None


def test_streaming_bodies_and_keepalive(env, upstream):
    k = env["open"]["secret"]
    s = requests.Session()
    h = {"Authorization": "Bearer " + k}
    data = os.urandom(3 * 1024 * 1024 + 17)
    r = s.post(env["gate"].url + "/v1/files", data=data, headers=h, timeout=20)
    assert r.status_code == 200
    assert r.json()["echo"]["body_sha"] == hashlib.sha256(data).hexdigest()

    def gen():
        for i in range(0, len(data), 100000):
            yield data[i:i + 100000]
    r = s.post(env["gate"].url + "/v1/files", data=gen(), headers=h, timeout=20)
    assert r.status_code == 200 and r.json()["echo"]["body_len"] == len(data)
    r = s.get(env["gate"].url + "/big/20000000", headers=h, timeout=20)
    assert r.status_code == 200 and len(r.content) == 20000000
    r = requests.get(env["gate"].url + "/close", headers=h, timeout=20)
    assert r.status_code == 200 and len(r.content) == 100000
    r = s.head(env["gate"].url + "/v1/charges", headers=h, timeout=20)
    assert r.status_code == 200
    # a refused request with a body leaves the connection usable
    r = s.post(env["gate"].url + "/v1/charges", data=b"x" * 50000, timeout=20)
    assert r.status_code == 401
    for _ in range(5):
        assert s.get(env["gate"].url + "/v1/charges", headers=h, timeout=5).status_code == 200
    conns = {l["conn"] for l in env["gate"].access()[-5:]}
    assert len(conns) == 1


def test_in_flight_request_keeps_its_decision(env):
    import threading
    db = env["db"]
    k = create_key(db, "--type", "secret", "--allow", "127.0.0.2")
    res = {}

    def slow():
        res["slow"] = get(env, "/slow", k["secret"])[0]
    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.2)                      # the request is at the upstream now
    keys(db, "revoke", k["id"])
    time.sleep(0.12)
    assert get(env, key=k["secret"])[0] == 401
    t.join(timeout=10)
    assert res["slow"] == 200


def test_upstream_timeout_is_504(env, upstream, tmp_path):
    g = Gate(tmp_path, env["db"], upstream.port, extra="idle_timeout = 1")
    try:
        t0 = time.monotonic()
        st, body, _ = curl(g.url + "/hang", "-H", "Authorization: Bearer " + env["open"]["secret"])
        assert st == 504 and err(body)["type"] == "api_error"
        assert time.monotonic() - t0 < 4
    finally:
        g.stop()


def test_allowed_expect_100_continue_relayed(env):
    st, body, hdrs = get(env, "/v1/charges", env["open"]["secret"],
                         args=["-X", "POST", "-H", "Expect: 100-continue",
                               "--data-binary", "x" * 3000, "-H", "Content-Type: text/plain"])
    assert st == 200 and json.loads(body)["echo"]["body_len"] == 3000
    assert "100 continue" in hdrs.lower()


def test_refused_expect_100_continue_closes(env):
    # curl waits for 100 Continue; the gate answers 401 at once and closes, so the body it
    # never sends cannot be mistaken for the next request
    st, body, hdrs = get(env, "/v1/charges", None,
                         args=["-X", "POST", "-H", "Expect: 100-continue",
                               "--data-binary", "x" * 3000, "-H", "Content-Type: text/plain"])
    assert st == 401 and "connection: close" in hdrs.lower()


def test_upstream_closing_kept_alive_connection_is_retried(env, tmp_path):
    import threading
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(10)
    served = []

    def serve():
        # answers one request per connection, keeps it open, and drops it (unanswered)
        # when a second request arrives: the race a reused upstream connection can lose
        try:
            for _ in range(6):
                c, _ = srv.accept()
                data = b""
                while b"\r\n\r\n" not in data:
                    data += c.recv(4096)
                # recorded before answering: the client may check `served` as soon as it has the answer
                served.append(data.split(b"\r\n")[0])
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                c.settimeout(5)
                try:
                    c.recv(4096)
                except OSError:
                    pass
                c.close()
        except OSError:
            pass
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    g = Gate(tmp_path, env["db"], srv.getsockname()[1])
    try:
        s = requests.Session()
        h = {"Authorization": "Bearer " + env["open"]["secret"]}
        for _ in range(3):
            r = s.get(g.url + "/v1/charges", headers=h, timeout=5)
            assert r.status_code == 200 and r.text == "ok"
        assert len(served) == 3
    finally:
        g.stop()
        srv.close()


def test_upstream_down_is_502(env, tmp_path):
    g = Gate(tmp_path, env["db"], free_port())
    try:
        st, body, _ = curl(g.url + "/v1/charges", "-H",
                           "Authorization: Bearer " + env["open"]["secret"])
        assert st == 502 and err(body)["type"] == "api_error"
    finally:
        g.stop()


def send_raw(port, payload, timeout=5):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not b:
                break
            out += b
        return out


def pp2(src, dst="127.0.0.1", sport=1234, dport=80):
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return sig + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def test_proxy_protocol(env, upstream, tmp_path):
    g = Gate(tmp_path, env["db"], upstream.port,
             listen_opts={"plain": "", "v1": "proxy_protocol=v1", "v2": "proxy_protocol=v2"})
    k = env["sk"]["secret"]
    req = (f"GET /v1/charges HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {k}\r\n"
           "Connection: close\r\n\r\n").encode()
    try:
        v1 = g.ports["v1"]
        assert send_raw(v1, b"PROXY TCP4 127.0.0.2 127.0.0.1 5555 80\r\n" + req).startswith(b"HTTP/1.1 200")
        assert send_raw(v1, b"PROXY TCP4 127.0.0.5 127.0.0.1 5555 80\r\n" + req).startswith(b"HTTP/1.1 401")
        assert send_raw(v1, b"PROXY TCP6 ::ffff:127.0.0.3 ::1 5555 80\r\n" + req).startswith(b"HTTP/1.1 200")
        assert send_raw(v1, req) == b""        # required, never sniffed
        assert send_raw(v1, b"PROXY UNKNOWN\r\n" + req).startswith(b"HTTP/1.1 401")
        v2 = g.ports["v2"]
        assert send_raw(v2, pp2("127.0.0.2") + req).startswith(b"HTTP/1.1 200")
        assert send_raw(v2, pp2("127.0.0.5") + req).startswith(b"HTTP/1.1 401")
        assert send_raw(v2, b"PROXY TCP4 127.0.0.2 127.0.0.1 5555 80\r\n" + req) == b""
        # the plain listener does not take a PROXY header as one
        assert send_raw(g.port, b"PROXY TCP4 127.0.0.2 127.0.0.1 5555 80\r\n" + req).startswith(b"HTTP/1.1 400")
        log = [l for l in g.access() if l["client"] == "127.0.0.2"]
        assert log and log[0]["client_from"] == "proxy-protocol" and log[0]["peer"] == "127.0.0.2"
    finally:
        g.stop()


def make_cert(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    return cert, key


def test_tls_behind_proxy_protocol(env, upstream, tmp_path):
    cert, key = make_cert(tmp_path)
    g = Gate(tmp_path, env["db"], upstream.port,
             listen_opts={"plain": "tls proxy_protocol=v2", "v1": "tls proxy_protocol=v1"},
             extra=f"tls_cert = {cert}\ntls_key = {key}")
    ctx = ssl.create_default_context(cafile=str(cert))
    req = (f"GET /v1/charges HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {env['sk']['secret']}"
           "\r\nConnection: close\r\n\r\n").encode()

    def over_tls(port, header, split=False):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            if split:   # the header in two pieces: nothing of the handshake may be lost
                raw.sendall(header[:7])
                time.sleep(0.05)
                raw.sendall(header[7:])
            else:
                raw.sendall(header)
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(req)
                out = b""
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    out += b
                return out
    try:
        assert over_tls(g.port, pp2("127.0.0.2")).startswith(b"HTTP/1.1 200")
        assert over_tls(g.port, pp2("127.0.0.2"), split=True).startswith(b"HTTP/1.1 200")
        assert over_tls(g.port, pp2("127.0.0.5")).startswith(b"HTTP/1.1 401")
        v1 = b"PROXY TCP4 127.0.0.2 127.0.0.1 5555 443\r\n"
        assert over_tls(g.ports["v1"], v1, split=True).startswith(b"HTTP/1.1 200")
    finally:
        g.stop()


def test_tls(env, upstream, tmp_path):
    cert, key = make_cert(tmp_path)
    g = Gate(tmp_path, env["db"], upstream.port, listen_opts={"plain": "tls"},
             extra=f"tls_cert = {cert}\ntls_key = {key}")
    try:
        url = f"https://127.0.0.1:{g.port}/v1/charges"
        st, body, _ = curl(url, "--cacert", str(cert), "-H",
                           "Authorization: Bearer " + env["sk"]["secret"], source="127.0.0.2")
        assert st == 200, body
        st, body, _ = curl(url, "--cacert", str(cert), "-H",
                           "Authorization: Bearer " + env["sk"]["secret"], source="127.0.0.5")
        assert (st, err(body)["message"]) == (401, MSG_IP)
        s = requests.Session()
        data = os.urandom(1024 * 1024)
        r = s.post(url, data=data, verify=str(cert), timeout=20,
                   headers={"Authorization": "Bearer " + env["open"]["secret"]})
        assert r.json()["echo"]["body_sha"] == hashlib.sha256(data).hexdigest()
        r = s.get(f"https://127.0.0.1:{g.port}/big/5000000", verify=str(cert), timeout=20,
                  headers={"Authorization": "Bearer " + env["open"]["secret"]})
        assert len(r.content) == 5000000
        # a close-delimited body ends with close_notify: curl sees a clean end
        p = subprocess.run(["curl", "-s", "-S", "--cacert", str(cert), "-o", "/dev/null", "-w",
                            "%{http_code} %{size_download}", "-H",
                            "Authorization: Bearer " + env["open"]["secret"],
                            f"https://127.0.0.1:{g.port}/close"], capture_output=True,
                           text=True, timeout=20)
        assert p.returncode == 0 and p.stdout == "200 100000", p.stderr
    finally:
        g.stop()


def test_forward_auth_endpoint(env, tmp_path):
    g = Gate(tmp_path, env["db"], mode="forward-auth")
    try:
        st, body, hdrs = curl(g.url + "/anything", "-H",
                              "Authorization: Bearer " + env["rk"]["secret"],
                              "-H", "X-Original-Method: GET", "-H", "X-Original-URI: /v1/charges/ch_1")
        assert st == 200
        assert f"x-iplock-key-id: {env['rk']['id']}".lower() in hdrs.lower()
        st, body, hdrs = curl(g.url + "/anything", "-H",
                              "Authorization: Bearer " + env["rk"]["secret"],
                              "-H", "X-Forwarded-Method: POST", "-H", "X-Forwarded-Uri: /v1/charges")
        assert st == 403 and "rak_charge_write" in err(body)["message"]
        assert "x-iplock-error:" in hdrs.lower()
        # Envoy ext_authz style: the checked request is the request itself
        st, body, _ = curl(g.url + "/v1/charges", "-X", "POST", "-H",
                           "Authorization: Bearer " + env["sk"]["secret"], source="127.0.0.5")
        assert (st, err(body)["message"]) == (401, MSG_IP)
        # Envoy ext_authz also checks method and path from the request line itself, with no
        # X-Original-* / X-Forwarded-* headers: a restricted key's GET passes, its POST and a
        # path outside its permissions are refused with Stripe's message and the error header.
        rk = env["rk"]
        auth = "Authorization: Bearer " + rk["secret"]
        st, body, hdrs = curl(g.url + "/v1/charges/ch_1", "-H", auth)
        assert st == 200, body
        assert f"x-iplock-key-id: {rk['id']}".lower() in hdrs.lower()
        st, body, hdrs = curl(g.url + "/v1/charges", "-X", "POST", "-H", auth, "-d", "amount=1")
        assert st == 403, body
        assert err(body)["message"] == (
            f"The provided key '{rk['masked']}' does not have the required permissions for "
            "this endpoint. Having the 'rak_charge_write' permission would allow this request "
            "to continue.")
        assert "x-iplock-error:" in hdrs.lower()
        assert "x-iplock-key-id:" not in hdrs.lower()
        st, body, hdrs = curl(g.url + "/v1/balance", "-H", auth)
        assert st == 403, body
        assert "x-iplock-key-id:" not in hdrs.lower()
    finally:
        g.stop()


def test_help_and_check(tmp_path):
    p = subprocess.run([IPLOCK, "gate", "--help"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and "forward-auth" in p.stdout
    p = subprocess.run([IPLOCK, "gate"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "-c FILE" in p.stderr
    cfg = tmp_path / "ok.ini"
    cfg.write_text("[gate]\nlisten = 127.0.0.1:1\ndb = k.db\nupstream = 127.0.0.1:2\n"
                   "[route x]\npath = /v1/x*\nresource = x\n")
    p = subprocess.run([IPLOCK, "gate", "-c", str(cfg), "--check"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 0 and "(1 listener, 1 route)" in p.stdout
    assert not (tmp_path / "k.db").exists()


def test_bad_config_is_exit_1(tmp_path):
    cfg = tmp_path / "bad.ini"
    cfg.write_text("[gate]\nlisten = 127.0.0.1:1\ndb = k.db\nupstream = 127.0.0.1:2\n"
                   "[route x]\npath = v1/nope\nresource = x\n")
    p = subprocess.run([IPLOCK, "gate", "-c", str(cfg)], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 1 and "path" in p.stderr
    cfg.write_text("[gate]\nlisten = 127.0.0.1:1\ndb = k.db\nupstream = 127.0.0.1:2\n"
                   "trusted_proxies = 10.0.0.1/8\n")
    p = subprocess.run([IPLOCK, "gate", "-c", str(cfg)], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 1 and "host bits" in p.stderr


def test_ipv6_client_and_allowlist(env, upstream, tmp_path):
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    db = env["db"]
    v6 = create_key(db, "--type", "secret", "--allow", "::1")
    v6net = create_key(db, "--type", "secret", "--allow", "::/127")
    port = free_port()
    cfg = tmp_path / "v6.ini"
    cfg.write_text(f"[gate]\nlisten = [::1]:{port}\ndb = {db}\nupstream = 127.0.0.1:{upstream.port}\n")
    p = subprocess.Popen([IPLOCK, "gate", "-c", str(cfg)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("::1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.02)
        url = f"http://[::1]:{port}/v1/charges"
        assert curl(url, "-g", "-H", "Authorization: Bearer " + v6["secret"])[0] == 200
        assert curl(url, "-g", "-H", "Authorization: Bearer " + v6net["secret"])[0] == 200
        st, body, _ = curl(url, "-g", "-H", "Authorization: Bearer " + env["sk"]["secret"])
        assert (st, err(body)["message"]) == (401, MSG_IP)
    finally:
        p.terminate()
        p.wait(timeout=10)


def test_pipelined_requests_answered_in_order(env):
    k = env["open"]["secret"]
    one = (f"GET /v1/charges/a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {k}\r\n\r\n"
           "GET /v1/charges/b HTTP/1.1\r\nHost: x\r\n\r\n"
           f"GET /v1/charges/c HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {k}\r\n"
           "Connection: close\r\n\r\n").encode()
    out = send_raw(env["gate"].port, one, timeout=5)
    import re
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", out) == [b"200", b"401", b"200"]
    assert out.index(b"/v1/charges/a") < out.index(b"did not provide") < out.index(b"/v1/charges/c")


def test_request_sent_while_one_is_in_flight_waits_without_spinning(env):
    """The next request arrives while the gate waits for the upstream: the socket is then
    readable but not read yet; the gate must neither spin on it nor lose it."""
    g = env["gate"]
    k = env["open"]["secret"]

    def cpu():
        f = open(f"/proc/{g.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])
    with socket.create_connection(("127.0.0.1", g.port), timeout=5) as s:
        s.sendall(f"GET /slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {k}\r\n\r\n".encode())
        time.sleep(0.05)                       # /slow is at the upstream now
        c0 = cpu()
        s.sendall(f"GET /v1/charges/next HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {k}\r\n"
                  "Connection: close\r\n\r\n".encode())
        out = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            b = s.recv(65536)
            if not b:
                break
            out += b
        assert cpu() - c0 <= 15                # ticks: a spinning loop would use ~45 before /slow answers
    import re
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", out) == [b"200", b"200"]
    assert out.index(b"/slow") < out.index(b"/v1/charges/next")


def test_http10_and_connection_close(env):
    k = env["open"]["secret"]
    out = send_raw(env["gate"].port, (f"GET /v1/charges HTTP/1.0\r\nAuthorization: Bearer {k}"
                                      "\r\n\r\n").encode())
    assert out.startswith(b"HTTP/1.1 200") and b"connection: close" in out.lower()
    out = send_raw(env["gate"].port, b"GARBAGE\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")


def test_slow_head_cut_off_by_header_timeout(env, upstream, tmp_path):
    g = Gate(tmp_path, env["db"], upstream.port, extra="header_timeout = 1")
    try:
        with socket.create_connection(("127.0.0.1", g.port), timeout=5) as s:
            t0 = time.monotonic()
            closed = False
            for ch in b"GET /v1/charges HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40:
                try:
                    s.sendall(bytes([ch]))
                except OSError:
                    closed = True
                    break
                time.sleep(0.1)
                if time.monotonic() - t0 > 3:
                    break
            if not closed:
                s.settimeout(3)
                try:
                    closed = s.recv(100) == b""
                except OSError:
                    closed = True
            assert closed and time.monotonic() - t0 < 3.5
        # an idle keep-alive connection is not cut by the header timeout
        sess = requests.Session()
        h = {"Authorization": "Bearer " + env["open"]["secret"]}
        assert sess.get(g.url + "/v1/charges", headers=h, timeout=5).status_code == 200
        time.sleep(1.5)
        assert sess.get(g.url + "/v1/charges", headers=h, timeout=5).status_code == 200
        assert len({l["conn"] for l in g.access()[-2:]}) == 1
    finally:
        g.stop()


def test_client_reset_while_waiting_does_not_spin(env):
    g = env["gate"]
    k = env["open"]["secret"]

    def cpu():
        f = open(f"/proc/{g.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])
    s = socket.create_connection(("127.0.0.1", g.port), timeout=5)
    s.sendall(f"GET /slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {k}\r\n\r\n".encode())
    time.sleep(0.05)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()                                  # RST while the upstream is still working
    c0 = cpu()
    time.sleep(0.4)
    assert cpu() - c0 <= 10                    # ticks: a spinning loop would use ~40
    time.sleep(0.3)
    assert any(l["path"] == "/slow" and l["status"] == 499 for l in g.access())
    assert get(env, key=k)[0] == 200


def test_hostile_bytes_do_not_hurt(env, upstream, tmp_path):
    """Random and truncated input on plain, PROXY and TLS listeners: the gate answers or
    closes, never dies (the fixture's stop() fails on a non-zero exit, so ASan/LSan too)."""
    import random
    rnd = random.Random(4)
    cert, key = make_cert(tmp_path)
    g = Gate(tmp_path, env["db"], upstream.port,
             listen_opts={"plain": "", "v1": "proxy_protocol=v1", "v2": "proxy_protocol=v2",
                          "tls": "tls"}, extra=f"tls_cert = {cert}\ntls_key = {key}")
    k = env["open"]["secret"]
    good = (f"POST /v1/charges HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {k}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").encode()
    samples = [good[:i] for i in range(0, len(good), 7)]
    samples += [bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 300))) for _ in range(30)]
    samples += [good.replace(b"5\r\nhello", b"zz\r\nhello"),
                b"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
                b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 500 + b"\r\n",
                b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n",
                pp2("127.0.0.2")[:20], b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n" + good]
    try:
        for port in g.ports.values():
            for smp in samples:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                        s.sendall(smp)
                        s.shutdown(socket.SHUT_WR)
                        s.settimeout(2)
                        while s.recv(65536):
                            pass
                except OSError:
                    pass
        assert g.proc.poll() is None
        assert get({"gate": g}, key=env["open"]["secret"])[0] == 200
    finally:
        g.stop()


def test_sighup_reopens_access_log(env, upstream, tmp_path):
    import signal
    g = Gate(tmp_path, env["db"], upstream.port)
    try:
        h = ["-H", "Authorization: Bearer " + env["open"]["secret"]]
        assert curl(g.url + "/v1/charges", *h)[0] == 200
        rotated = g.log.with_suffix(".1")
        g.log.rename(rotated)
        g.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 5
        while not g.log.exists() and time.time() < deadline:
            time.sleep(0.02)
        assert curl(g.url + "/v1/customers", *h)[0] == 200
        time.sleep(0.1)
        assert "/v1/charges" in rotated.read_text()
        assert "/v1/customers" in g.log.read_text() and "/v1/charges" not in g.log.read_text()
        assert g.proc.poll() is None
    finally:
        g.stop()


def test_workers(env, upstream, tmp_path):
    """workers = 3: every worker sees key changes at once, and all stop cleanly."""
    db = env["db"]
    g = Gate(tmp_path, db, upstream.port, extra="workers = 3")
    k = create_key(db, "--type", "secret", "--allow", "127.0.0.2")
    try:
        h = ["-H", "Authorization: Bearer " + k["secret"]]
        for _ in range(12):       # fresh connections land on different workers
            assert curl(g.url + "/v1/charges", *h, source="127.0.0.2")[0] == 200
        keys(db, "restrict", k["id"], "--clear", "--allow", "127.0.0.9")
        time.sleep(0.12)
        for _ in range(12):
            assert curl(g.url + "/v1/charges", *h, source="127.0.0.2")[0] == 401
        s = requests.Session()
        data = os.urandom(500000)
        for _ in range(4):
            r = s.post(g.url + "/v1/files", data=data, timeout=10,
                       headers={"Authorization": "Bearer " + env["open"]["secret"]})
            assert r.json()["echo"]["body_sha"] == hashlib.sha256(data).hexdigest()
        assert len({l["conn"] for l in g.access()}) >= 13
    finally:
        g.stop()
