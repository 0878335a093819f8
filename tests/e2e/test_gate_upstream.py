"""`[gate] upstream` with a scheme: http://host:port, and https://host:port with the
upstream's certificate verified (upstream_ca, or the system trust store) and its name or IP
checked; precise errors for malformed values."""
import json
import subprocess

import pytest
import requests

from gate_util import IPLOCK, Gate, Upstream, create_key, curl


def make_cert(tmp_path, name, san):
    cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=upstream", "-addext",
                    "subjectAltName=" + san], check=True, capture_output=True, timeout=30)
    return cert, key


def tls_upstream(cert, key):
    return Upstream(tls=(cert, key))


@pytest.fixture
def keydb(tmp_path, store_db):
    db = store_db(tmp_path)
    return db, create_key(db, "--type", "secret")


def auth(k):
    return ["-H", "Authorization: Bearer " + k["secret"]]


def test_https_upstream_verified(tmp_path, keydb):
    db, sk = keydb
    cert, key = make_cert(tmp_path, "up", "IP:127.0.0.1")
    up = tls_upstream(cert, key)
    gate = Gate(tmp_path, db, extra=f"upstream = https://127.0.0.1:{up.port}\nupstream_ca = {cert}")
    try:
        st, body, _ = curl(gate.url + "/v1/charges?limit=1", *auth(sk))
        assert st == 200, body
        echo = json.loads(body)["echo"]
        assert echo["path"] == "/v1/charges?limit=1"
        assert echo["headers"]["x-iplock-key-id"] == sk["id"]
        # bodies both ways and keep-alive over the TLS upstream connection
        with requests.Session() as s:
            for i in range(3):
                r = s.post(gate.url + "/v1/charges", data=b"x" * (50000 + i),
                           headers={"Authorization": "Bearer " + sk["secret"]}, timeout=10)
                assert r.status_code == 200 and r.json()["echo"]["body_len"] == 50000 + i
        assert len(up.requests) == 4
    finally:
        gate.stop()
        up.close()


@pytest.mark.parametrize("case", ["untrusted", "wrong_ip"])
def test_https_upstream_refused_certificate(tmp_path, keydb, case):
    db, sk = keydb
    san = "IP:127.0.0.1" if case == "untrusted" else "IP:127.0.0.2"
    cert, key = make_cert(tmp_path, "up", san)
    up = tls_upstream(cert, key)
    extra = f"upstream = https://127.0.0.1:{up.port}"
    if case == "wrong_ip":
        extra += f"\nupstream_ca = {cert}"      # trusted, but issued for another address
    gate = Gate(tmp_path, db, extra=extra)
    try:
        st, body, _ = curl(gate.url + "/v1/charges", *auth(sk))
        assert st == 502 and json.loads(body)["error"]["type"] == "api_error"
        assert up.requests == []
        assert gate.access_wait(1)[-1]["reason"] == "upstream_tls"
        assert "TLS handshake failed" in gate.errors()
    finally:
        gate.stop()
        up.close()


def test_http_scheme_upstream(tmp_path, keydb):
    db, sk = keydb
    up = Upstream()
    gate = Gate(tmp_path, db, extra=f"upstream = http://127.0.0.1:{up.port}/")
    try:
        st, body, _ = curl(gate.url + "/v1/charges", *auth(sk))
        assert st == 200 and json.loads(body)["echo"]["path"] == "/v1/charges"
    finally:
        gate.stop()
        up.close()


@pytest.mark.parametrize("lines,needle", [
    ("upstream = ftp://127.0.0.1:1", "scheme must be http:// or https://"),
    ("upstream = http://", "needs a host after the scheme"),
    ("upstream = https://127.0.0.1:1/v1", "without a path"),
    ("upstream = http://127.0.0.1:1?x", "without a path or query"),
    ("upstream = https://user@127.0.0.1:1", "credentials"),
    ("upstream = http://127.0.0.1:99999", "port"),
    ("upstream = http://[::1:1", "]"),
    ("upstream = http://127.0.0.1:1\nupstream_ca = ca.pem", "upstream_ca needs an https:// upstream"),
    ("upstream = https://127.0.0.1:1\nupstream_ca = /nonexistent/ca.pem", "No such file"),
])
def test_upstream_value_errors(tmp_path, lines, needle):
    cfg = tmp_path / "g.ini"
    cfg.write_text(f"[gate]\nlisten = 127.0.0.1:1\ndb = k.db\n{lines}\n")
    p = subprocess.run([IPLOCK, "gate", "-c", str(cfg), "--check"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 1 and needle in p.stderr, p.stderr


@pytest.mark.parametrize("value", ["http://127.0.0.1", "https://127.0.0.1:9443/",
                                   "https://[::1]:9443", "HTTP://127.0.0.1:80", "127.0.0.1:9000"])
def test_upstream_values_accepted(tmp_path, value):
    cfg = tmp_path / "g.ini"
    cfg.write_text(f"[gate]\nlisten = 127.0.0.1:1\ndb = k.db\nupstream = {value}\n")
    p = subprocess.run([IPLOCK, "gate", "-c", str(cfg), "--check"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 0, p.stderr


def test_builtin_stripe_routes(tmp_path, store_db):
    """`routes = stripe`: Stripe's main resources with their permission names, no [route]."""
    db = store_db(tmp_path)
    rk = create_key(db, "--type", "restricted", "--perm", "charge=read",
                    "--perm", "checkout_session=write")
    pk = create_key(db, "--type", "publishable")
    up = Upstream()
    gate = Gate(tmp_path, db, up.port, extra="routes = stripe", routes="")
    try:
        def call(key, path, *args):
            st, body, _ = curl(gate.url + path, "-H", "Authorization: Bearer " + key["secret"],
                               *args)
            return st, (json.loads(body).get("error", {}).get("message", "") if body else "")
        assert call(rk, "/v1/charges/ch_1")[0] == 200
        st, msg = call(rk, "/v1/customers")
        assert st == 403 and "rak_customer_read" in msg
        st, msg = call(rk, "/v1/refunds", "-d", "charge=ch_1")
        assert st == 403 and "rak_refund_write" in msg
        st, msg = call(rk, "/v1/charges", "-d", "amount=1")
        assert st == 403 and "rak_charge_write" in msg
        assert call(rk, "/v1/checkout/sessions", "-d", "mode=payment")[0] == 200
        st, msg = call(rk, "/v1/payment_intents/pi_1")
        assert st == 403 and "rak_payment_intent_read" in msg
        assert call(pk, "/v1/tokens", "-d", "card[number]=4242")[0] == 200
        st, msg = call(pk, "/v1/charges")
        assert st == 401 and "publishable API key" in msg
    finally:
        gate.stop()
        up.close()
    cfg = tmp_path / "g.ini"
    cfg.write_text(f"[gate]\nlisten = 127.0.0.1:1\ndb = k.db\nupstream = 127.0.0.1:2\nroutes = paypal\n")
    p = subprocess.run([IPLOCK, "gate", "-c", str(cfg), "--check"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 1 and "routes must be stripe" in p.stderr
    cfg.write_text(f"[gate]\nlisten = 127.0.0.1:1\ndb = k.db\nupstream = 127.0.0.1:2\nroutes = stripe\n")
    p = subprocess.run([IPLOCK, "gate", "-c", str(cfg), "--check"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 0 and "54 routes" in p.stdout, p.stdout
