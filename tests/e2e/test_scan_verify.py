"""iplock scan --verify as a black box: each finding classified against the key store and
against a Stripe-compatible API, here a real `iplock gate` on loopback (reverse-proxy mode in
front of a tiny upstream), directly and through `iplock proxy`. Nothing leaves the machine."""
import csv
import io
import json
import time

from conftest import base_config
from gate_util import Gate, Upstream, create_key, free_port, keys
from servers import HttpServer
from test_scan import key, scan

ROUTES = """
[route charges]
path = /v1/charges*
resource = charge

[route customers]
path = /v1/customers*
resource = customer

[route balance]
path = /v1/balance*
resource = balance
"""


def make_world(tmp_path):
    db = tmp_path / "keys.db"
    k = {
        "any": create_key(db, "--type", "secret", "--mode", "test", "--name", "any"),
        "locked": create_key(db, "--type", "secret", "--mode", "live", "--name", "locked",
                             "--allow", "127.0.0.2", "--allow", "127.0.0.3"),
        "expired": create_key(db, "--type", "secret", "--mode", "test", "--name", "expired"),
        "revoked": create_key(db, "--type", "secret", "--mode", "live", "--name", "revoked"),
        "rak": create_key(db, "--type", "restricted", "--mode", "live", "--name", "rak",
                          "--perm", "customer=read", "--perm", "balance=read"),
    }
    keys(db, "expire", k["expired"]["id"])
    keys(db, "revoke", k["revoked"]["id"], "--reason", "test")
    stranger = key("sk_live")
    src = tmp_path / "src"
    src.mkdir()
    lines = ["%s = %s" % (name, v["secret"]) for name, v in k.items()]
    lines.append("stranger = " + stranger)
    lines.append("whsec = " + key("whsec"))
    (src / "leak.env").write_text("\n".join(lines) + "\n")
    return db, k, stranger, src


def by_line(findings):
    return {f["line"]: f for f in findings}


def test_verify_classes_against_store_and_gate(tmp_path):
    db, k, stranger, src = make_world(tmp_path)
    up = Upstream()
    gate = Gate(tmp_path, db, up.port, routes=ROUTES)
    try:
        t0 = time.monotonic()
        r = scan("--format", "json", "--verify", "--db", str(db), "--verify-api", gate.url,
                 "--verify-rate", "50", str(src))
        took = time.monotonic() - t0
    finally:
        gate.stop()
        up.close()
    assert r.returncode == 1, r.stderr
    f = by_line(json.loads(r.stdout)["findings"])
    v = {n: f[n]["verify"] for n in f}
    # 1 any: active anywhere, live at the API
    assert (f[1]["liveness"], v[1]["store"], v[1]["allowlist_entries"], v[1]["api"]) == \
        ("live", "active", 0, "live")
    assert "store: active, any address; api: live" == v[1]["detail"]
    # 2 locked to two addresses: the gate sees 127.0.0.1 and answers 401 naming the IP rule
    assert (f[2]["liveness"], v[2]["store"], v[2]["allowlist_entries"], v[2]["api"], v[2]["http_status"]) == \
        ("locked", "active", 2, "locked", 401)
    assert "locked to 2 addresses" in v[2]["detail"] and "IP-locked" in v[2]["detail"]
    # 3 expired, 4 revoked: dead by both
    assert (f[3]["liveness"], v[3]["store"], v[3]["api"]) == ("dead", "expired", "invalid")
    assert (f[4]["liveness"], v[4]["store"], v[4]["api"]) == ("dead", "revoked", "invalid")
    # 5 restricted: 403 on charges names the permission; the probes reveal what it may read
    assert (f[5]["liveness"], v[5]["api"], v[5]["missing_permission"]) == \
        ("live", "restricted", "rak_charge_read")
    assert v[5]["permissions"] == {"charges": "denied", "customers": "read", "balance": "read",
                                   "payment_intents": "denied", "refunds": "denied",
                                   "invoices": "denied"}
    # 6 a key this store never made: the API calls it invalid
    assert (f[6]["liveness"], v[6]["store"], v[6]["api"]) == ("dead", "not-in-store", "invalid")
    # 7 a webhook secret is no API key: not probed
    assert (f[7]["liveness"], v[7]["store"]) == ("unknown", "not-in-store") and "api" not in v[7]
    # rate limit 50/s: 1 + 1 + 1 + 1 + 6 + 1 probes take at least 10 intervals of 20 ms
    assert took >= 0.2
    # probes are read-only GETs, never logged with the key
    assert {a.get("method") for a in gate.access()} <= {"GET"}
    for s in [v["secret"] for v in k.values()] + [stranger]:
        assert s.encode() not in r.stderr and s.encode() not in r.stdout
    assert b"verified: 2 live, 1 locked, 3 dead, 1 unknown" in r.stderr


def test_fail_on_and_formats(tmp_path):
    db, k, stranger, src = make_world(tmp_path)
    up = Upstream()
    gate = Gate(tmp_path, db, up.port, routes=ROUTES)
    try:
        base = ["--verify", "--db", str(db), "--verify-api", gate.url, "--verify-rate", "100"]
        # live keys present: --fail-on live fails
        assert scan(*base, "--fail-on", "live", str(src)).returncode == 1
        # text and CSV carry the class; SARIF too, in properties
        t = scan(*base, str(src)).stdout.decode()
        assert 'liveness=locked verify="store: active, locked to 2 addresses; api: live but IP-locked' in t
        c = list(csv.DictReader(io.StringIO(scan(*base, "--format", "csv", str(src)).stdout.decode())))
        assert [row["liveness"] for row in c] == ["live", "locked", "dead", "dead", "live", "dead", "unknown"]
        sarif = json.loads(scan(*base, "--format", "sarif", str(src)).stdout)
        props = [res["properties"] for res in sarif["runs"][0]["results"]]
        assert [p["liveness"] for p in props] == ["live", "locked", "dead", "dead", "live", "dead", "unknown"]
        assert props[4]["verify"]["permissions"]["customers"] == "read"
        jl = [json.loads(l) for l in scan(*base, "--format", "jsonl", str(src)).stdout.splitlines()]
        assert jl[1]["verify"]["class"] == "locked"
        # only dead keys left: --fail-on live passes, --fail-on any (the default) does not
        dead = tmp_path / "dead"
        dead.mkdir()
        (dead / "x.env").write_text("a=%s\nb=%s\n" % (k["revoked"]["secret"], k["expired"]["secret"]))
        assert scan(*base, "--fail-on", "live", str(dead)).returncode == 0
        assert scan(*base, "--fail-on", "unknown", str(dead)).returncode == 0
        assert scan(*base, str(dead)).returncode == 1
        assert scan(*base, "--fail-on", "none", str(src)).returncode == 0
        # a locked key: fails --fail-on locked, passes --fail-on live
        lk = tmp_path / "lk"
        lk.mkdir()
        (lk / "x.env").write_text("a=%s\n" % k["locked"]["secret"])
        assert scan(*base, "--fail-on", "live", str(lk)).returncode == 0
        assert scan(*base, "--fail-on", "locked", str(lk)).returncode == 1
    finally:
        gate.stop()
        up.close()


def test_network_error_is_unknown_and_store_decides(tmp_path):
    db, k, stranger, src = make_world(tmp_path)
    dead_port = free_port()
    r = scan("--format", "json", "--verify", "--db", str(db), "--verify-api",
             "http://127.0.0.1:%d" % dead_port, "--verify-rate", "100", str(src))
    assert r.returncode == 1, r.stderr
    f = by_line(json.loads(r.stdout)["findings"])
    assert f[1]["verify"]["api"] == "unknown" and "cannot reach" in f[1]["verify"]["detail"]
    assert f[1]["liveness"] == "live"          # store: active, any address
    assert f[2]["liveness"] == "locked"        # store: locked to 2 addresses
    assert f[4]["liveness"] == "dead"          # store: revoked
    assert f[6]["liveness"] == "unknown"       # neither could tell
    # store only (no API): the same classes, no probes
    r = scan("--format", "json", "--verify", "--db", str(db), str(src))
    f = by_line(json.loads(r.stdout)["findings"])
    assert [f[i]["liveness"] for i in range(1, 8)] == ["live", "locked", "dead", "dead", "live",
                                                         "unknown", "unknown"]


def test_verify_through_iplock_proxy_sees_the_key_live(tmp_path, proxy_factory, password_hash):
    """Through the proxy the gate sees an allowlisted egress address: the locked key is live."""
    db, k, stranger, src = make_world(tmp_path)
    up = Upstream()
    gate = Gate(tmp_path, db, up.port, routes=ROUTES)
    px = proxy_factory(base_config(gate.port, password_hash))
    try:
        r = scan("--format", "json", "--verify-api", gate.url, "--proxy", px.url(),
                 "--verify-rate", "100", str(src))
    finally:
        gate.stop()
        up.close()
    assert r.returncode == 1, r.stderr
    f = by_line(json.loads(r.stdout)["findings"])
    assert (f[2]["liveness"], f[2]["verify"]["api"]) == ("live", "live")
    assert "store" not in f[2]["verify"]
    assert {a["client"] for a in gate.access()} <= {"127.0.0.2", "127.0.0.3"}
    assert b"hunter" not in r.stderr


def test_verify_usage_errors(tmp_path):
    assert scan("--verify", str(tmp_path)).returncode == 2
    assert scan("--fail-on", "live", str(tmp_path)).returncode == 2
    assert scan("--fail-on", "sometimes", str(tmp_path)).returncode == 2
    assert scan("--proxy", "http://127.0.0.1:1", str(tmp_path)).returncode == 2
    r = scan("--verify-api", "ftp://x", str(tmp_path))
    assert r.returncode == 2 and b"--verify-api" in r.stderr
    assert scan("--verify-api", "http://127.0.0.1:1", "--verify-rate", "0", str(tmp_path)).returncode == 2


def test_follow_with_verify_classifies_at_once(tmp_path):
    import subprocess
    from test_scan import BIN
    db, k, stranger, src = make_world(tmp_path)
    log = tmp_path / "ci.log"
    log.write_text("")
    p = subprocess.Popen([BIN, "scan", "--follow", str(log), "--format", "jsonl", "--verify",
                          "--db", str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         bufsize=0)
    try:
        with open(log, "a") as fh:
            fh.write("key %s\n" % k["locked"]["secret"])
        import select
        ready, _, _ = select.select([p.stdout], [], [], 5)
        assert ready
        f = json.loads(p.stdout.readline())
        assert f["liveness"] == "locked" and f["verify"]["allowlist_entries"] == 2
    finally:
        p.terminate()
        p.communicate(timeout=10)


def test_api_answers_stripe_style(tmp_path):
    """A Stripe-like API that appends the caller's IP to the 401, rate-limits one key and fails
    on another: the IP is reported, the others are unknown with the reason; only GETs arrive."""
    from http.server import BaseHTTPRequestHandler
    seen = []

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            k = self.headers.get("Authorization", "")[len("Bearer "):]
            seen.append((self.command, self.path, k))
            code, msg = {"A": (401, "The API key provided does not allow requests from your IP "
                                    "address (%s)." % self.client_address[0]),
                         "B": (429, "Too many requests"), "C": (500, "oops")}.get(k[-1], (200, ""))
            body = json.dumps({"error": {"type": "invalid_request_error", "message": msg}}
                              if code != 200 else {"object": "list", "data": []}).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = HttpServer(H)
    ka, kb, kc, kd = (key("sk_live")[:-1] + c for c in "ABCD")
    (tmp_path / "f.txt").write_text("\n".join([ka, kb, kc, kd]) + "\n")
    try:
        r = scan("--format", "json", "--verify-api", "http://127.0.0.1:%d/base/" % srv.port,
                 "--verify-rate", "100", "--fail-on", "locked", str(tmp_path / "f.txt"))
    finally:
        srv.close()
    assert r.returncode == 1, r.stderr
    f = by_line(json.loads(r.stdout)["findings"])
    assert (f[1]["liveness"], f[1]["verify"]["api"], f[1]["verify"]["ip"]) == ("locked", "locked", "127.0.0.1")
    assert "127.0.0.1 not allowed" in f[1]["verify"]["detail"]
    assert (f[2]["liveness"], f[2]["verify"]["detail"]) == ("unknown", "api: unknown (rate limited (429))")
    assert (f[3]["liveness"], f[3]["verify"]["detail"]) == ("unknown", "api: unknown (server error (500))")
    assert f[4]["liveness"] == "live"
    assert {(m, p) for m, p, _ in seen} == {("GET", "/base/v1/charges?limit=1")}
    assert sorted(k for _, _, k in seen) == sorted([ka, kb, kc, kd])


def test_other_providers_tokens_never_sent_to_the_api(tmp_path):
    """A GitHub or AWS token found beside a Stripe key is classified without a probe: sending it
    to the Stripe-compatible API would leak it to a third party."""
    from http.server import BaseHTTPRequestHandler
    seen = []

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            seen.append(self.headers.get("Authorization", ""))
            body = b'{"object": "list", "data": []}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = HttpServer(H)
    gh = "ghp_" + "aZ3kQ9mW2xR7tB5nL8pV4cY6hJ1dF0gS3eU2"
    sk = key("sk_live")
    (tmp_path / "f.txt").write_text(f"GITHUB_TOKEN={gh}\nSTRIPE_KEY={sk}\n")
    try:
        r = scan("--format", "json", "--verify-api", "http://127.0.0.1:%d" % srv.port,
                 "--verify-rate", "100", str(tmp_path / "f.txt"))
    finally:
        srv.close()
    f = by_line(json.loads(r.stdout)["findings"])
    assert f[2]["liveness"] == "live"
    assert f[1]["liveness"] == "unknown" and "not a Stripe key" in f[1]["verify"]["detail"]
    assert seen == ["Bearer " + sk]
