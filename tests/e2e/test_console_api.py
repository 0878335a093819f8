"""Black-box tests of `iplock console`'s management API (docs/console-api.yaml): the real
binary on a SQLite store (a subset again on PostgreSQL), users made with the real CLI, every
endpoint, and hostile input (oversized bodies, bad JSON, bad CIDRs, wrong content type,
missing or foreign CSRF tokens, viewers, read tokens) answered with a JSON error while the
store stays exactly as it was."""
import http.client
import json
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from conftest import IPLOCK, free_port, wait_port, stop_process
from gate_util import Gate, Upstream, create_key, curl, keys
from pg_util import pg  # noqa: F401 (the session's cluster)
from verify_util import make_ca

ADMIN_PW = "correct horse battery"
VIEWER_PW = "viewer password 1"


def console_cli(db, *args, stdin=None):
    return subprocess.run([IPLOCK, "console", *args, "--db", str(db)], input=stdin,
                          capture_output=True, text=True, timeout=30)


class Console:
    """A running `iplock console`; stop() ends it by its handle."""

    def __init__(self, tmp, db, extra=""):
        self.tmp = Path(tmp)
        self.port = free_port()
        self.config = self.tmp / f"console-{self.port}.ini"
        self.config.write_text(f"[console]\nlisten = 127.0.0.1:{self.port}\ndb = {db}\n"
                               f"routes = stripe\negress = 127.0.0.9\n{extra}\n")
        self.err = open(self.tmp / f"console-{self.port}.err", "w+")
        self.proc = subprocess.Popen([IPLOCK, "console", "-c", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=self.err)
        try:
            wait_port("127.0.0.1", self.port)
        except TimeoutError:
            self.stop(check=False)
            raise AssertionError("console did not start: " + self.log())

    def log(self):
        self.err.flush()
        self.err.seek(0)
        return self.err.read()

    def stop(self, check=True):
        stop_process(self.proc)
        text = self.log()
        self.err.close()
        if check and self.proc.returncode != 0:
            raise AssertionError(f"console exited {self.proc.returncode}: {text[-3000:]}")
        return text


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body) if self.body else None

    def err(self):
        return self.json()["error"]

    def header(self, name):
        return self.headers.get(name.lower())

    def cookies(self):
        return [v for k, v in self.header_list if k == "set-cookie"]


def call(port, method, path, body=None, headers=None, source=None, raw=None):
    """One request on its own connection; body: a dict (sent as JSON), bytes or None."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                   source_address=(source, 0) if source else None)
    h = dict(headers or {})
    data = None
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    elif body is not None:
        data = body
    try:
        if raw is not None:
            c.connect()
            c.sock.sendall(raw)
            r = http.client.HTTPResponse(c.sock, method=method)
            r.begin()
        else:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
        out = Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        out.header_list = [(k.lower(), v) for k, v in r.getheaders()]
        return out
    finally:
        c.close()


class Client:
    """A logged-in user: the session cookie and its CSRF token on every request."""

    def __init__(self, port, user, pw, source=None):
        self.port = port
        self.source = source
        r = call(port, "POST", "/api/v1/login", {"username": user, "password": pw}, source=source)
        assert r.status == 200, r.body
        self.login_resp = r
        cookie = r.header("set-cookie")
        self.cookie = cookie.split(";")[0]
        self.csrf = r.json()["csrf_token"]

    def req(self, method, path, body=None, csrf=True, headers=None, cookie=None):
        h = {"Cookie": cookie or self.cookie}
        if csrf and method != "GET":
            h["X-CSRF-Token"] = self.csrf if csrf is True else csrf
        h.update(headers or {})
        return call(self.port, method, path, body, h, source=self.source)

    def get(self, path):
        return self.req("GET", path)


def token_call(port, token, method, path, body=None):
    return call(port, method, path, body, {"Authorization": f"Bearer {token}"})


def make_env(tmp, db):
    assert console_cli(db, "users", "add", "alice", "--password-stdin", "--role", "admin",
                       stdin=ADMIN_PW + "\n").returncode == 0
    assert console_cli(db, "users", "add", "victor", "--password-stdin", "--role", "viewer",
                       stdin=VIEWER_PW + "\n").returncode == 0
    c = Console(tmp, db)
    e = {"db": db, "console": c, "port": c.port, "tmp": tmp}
    e["admin"] = Client(c.port, "alice", ADMIN_PW)
    e["viewer"] = Client(c.port, "victor", VIEWER_PW)
    return e


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    """The console on a SQLite store."""
    tmp = tmp_path_factory.mktemp("console")
    e = make_env(tmp, tmp / "keys.db")
    e["sql"] = lambda q, *a: sqlite3.connect(e["db"], isolation_level=None).execute(q, a).fetchall()
    yield e
    e["console"].stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def anycon(request, tmp_path_factory):
    """The console on SQLite, then on PostgreSQL (the subset that touches the backends)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("con")
        return
    cluster = request.getfixturevalue("pg")
    tmp = tmp_path_factory.mktemp("console_pg")
    db, name = cluster.new_db()
    e = make_env(tmp, db)
    e["sql"] = lambda q, *a: [tuple(r.split("|")) for r in
                              cluster.sql(q % a if a else q, db=name).splitlines() if r]
    yield e
    e["console"].stop()


def snapshot(e):
    """Everything a call could change: keys (with children), audit, users, tokens."""
    k = e["admin"].get("/api/v1/keys?limit=100").json()
    a = e["admin"].get("/api/v1/audit?limit=200").json()
    u = e["admin"].get("/api/v1/users").json()
    t = e["admin"].get("/api/v1/tokens").json()
    return json.dumps([k, a, u, t], sort_keys=True)


def new_key(e, **kw):
    body = {"type": "secret", "mode": "test", "name": "k"}
    body.update(kw)
    r = e["admin"].req("POST", "/api/v1/keys", body)
    assert r.status == 201, r.body
    return r.json()


# ---- sessions, login, security headers ----

def test_login_cookie_me_logout(con):
    r = con["admin"].login_resp
    cookie = r.header("set-cookie")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie       # plain listener; TLS adds it (test_tls_cookie_secure)
    me = con["admin"].get("/api/v1/me").json()
    assert me["user"] == {"name": "alice", "role": "admin"} and me["auth"] == "session"
    assert me["csrf_token"] == con["admin"].csrf
    c = Client(con["port"], "alice", ADMIN_PW)
    assert c.req("POST", "/api/v1/logout", csrf=False).status == 403     # CSRF on logout too
    r = c.req("POST", "/api/v1/logout")
    assert r.status == 204 and "Max-Age=0" in r.header("set-cookie")
    r = c.get("/api/v1/me")
    assert r.status == 401 and r.err()["code"] == "not_authenticated"


def test_bad_login_and_throttling(con):
    # a client address of its own, so the per-address throttle stays there
    src = "127.0.0.7"
    for i in range(5):
        r = call(con["port"], "POST", "/api/v1/login", {"username": "alice", "password": "nope"},
                 source=src)
        assert r.status == 401 and r.err()["code"] == "bad_credentials"
    r = call(con["port"], "POST", "/api/v1/login", {"username": "alice", "password": ADMIN_PW},
             source=src)
    assert r.status == 429 and r.err()["code"] == "throttled" and int(r.header("retry-after")) > 0
    # an unknown user gets the same answer as a wrong password
    r = call(con["port"], "POST", "/api/v1/login", {"username": "nobody", "password": "x"},
             source="127.0.0.8")
    assert r.status == 401 and r.err()["message"] == "wrong user name or password"
    assert "nope" not in con["console"].log() and ADMIN_PW not in con["console"].log()


def test_unauthenticated_and_bad_token(con):
    for path in ("/api/v1/keys", "/api/v1/me", "/api/v1/audit"):
        r = call(con["port"], "GET", path)
        assert r.status == 401 and r.err()["type"] == "authentication_error"
    r = call(con["port"], "GET", "/api/v1/keys", headers={"Cookie": "iplock_session=forged"})
    assert r.status == 401
    r = token_call(con["port"], "ilc_" + "x" * 40, "GET", "/api/v1/keys")
    assert r.status == 401 and r.err()["message"] == "invalid API token"


def test_security_headers_and_assets(con):
    for path in ("/", "/index.html", "/api/v1/me"):
        r = con["admin"].get(path)
        csp = r.header("content-security-policy")
        assert r.status == 200 and csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert r.header("x-content-type-options") == "nosniff"
        assert r.header("x-frame-options") == "DENY"
    r = call(con["port"], "GET", "/")
    assert r.header("content-type").startswith("text/html") and b"<html" in r.body
    assert call(con["port"], "GET", "/nope.js").status == 404
    r = call(con["port"], "HEAD", "/index.html")
    assert r.status == 200 and r.body == b""
    assert con["admin"].get("/api/v1/me").header("cache-control") == "no-store"
    assert call(con["port"], "GET", "/api/v1/nope").err()["code"] == "not_found"
    r = con["admin"].req("DELETE", "/api/v1/keys")
    assert r.status == 405 and "GET" in r.header("allow")
    assert call(con["port"], "GET", "/healthz").json() == {"status": "ok"}


def test_session_idle_and_absolute_timeout(con, tmp_path):
    c = Console(tmp_path, con["db"], extra="session_idle = 2\nsession_absolute = 5")
    try:
        a = Client(c.port, "alice", ADMIN_PW)
        assert a.get("/api/v1/me").status == 200
        time.sleep(3.1)
        r = a.get("/api/v1/me")
        assert r.status == 401 and r.err()["code"] == "session_expired"
        assert "Max-Age=0" in r.header("set-cookie")
        b = Client(c.port, "alice", ADMIN_PW)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 8:    # active, but past session_absolute it ends
            r = b.get("/api/v1/me")
            if r.status == 401:
                break
            time.sleep(0.5)
        assert r.status == 401 and r.err()["code"] == "session_expired"
        assert time.monotonic() - t0 > 3
    finally:
        c.stop()


def test_tls_cookie_secure(con, tmp_path):
    """On a TLS listener the session cookie is Secure, and the API works over TLS."""
    import ssl
    ca, crt, key = make_ca(tmp_path / "pki")
    c = Console(tmp_path, con["db"], extra=f"tls_cert = {crt}\ntls_key = {key}")
    try:
        ctx = ssl.create_default_context(cafile=str(ca))
        h = http.client.HTTPSConnection("127.0.0.1", c.port, context=ctx, timeout=10)
        h.request("POST", "/api/v1/login", body=json.dumps({"username": "alice", "password": ADMIN_PW}),
                  headers={"Content-Type": "application/json"})
        r = h.getresponse()
        r.read()
        assert r.status == 200
        cookie = r.getheader("Set-Cookie")
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        h.request("GET", "/api/v1/me", headers={"Cookie": cookie.split(";")[0]})
        r = h.getresponse()
        assert r.status == 200 and json.loads(r.read())["user"]["name"] == "alice"
        h.close()
    finally:
        c.stop()


# ---- keys ----

def test_create_list_get(anycon):
    e = anycon
    out = new_key(e, name="checkout", note="used by the shop")
    assert out["secret"].startswith("sk_test_") and out["key"]["masked"].endswith(out["secret"][-4:])
    rk = new_key(e, type="restricted", mode="live", name="reports",
                 permissions={"charge": "write", "customer": "read", "refund": "none"},
                 allowlist=["10.1.0.0/16", "::ffff:10.2.0.1"])
    k = rk["key"]
    assert k["type"] == "restricted" and k["permissions"] == {"charge": "write", "customer": "read"}
    assert k["allowlist"] == ["10.1.0.0/16", "10.2.0.1"]
    got = e["admin"].get(f"/api/v1/keys/{k['id']}").json()
    assert got["id"] == k["id"] and got["usage"]["allowed"] == 0
    # the key text is shown once: never in a read afterwards
    for path in (f"/api/v1/keys/{k['id']}", "/api/v1/keys", "/api/v1/audit"):
        assert rk["secret"] not in e["admin"].get(path).body.decode()
    lst = e["admin"].get("/api/v1/keys?type=restricted&mode=live").json()
    assert [x["id"] for x in lst["data"]][:1] == [k["id"]]
    assert all(x["type"] == "restricted" for x in lst["data"])
    assert [x["id"] for x in e["admin"].get("/api/v1/keys?q=CHECKOUT").json()["data"]] == \
        [out["key"]["id"]]
    assert e["admin"].get("/api/v1/keys?q=shop").json()["data"][0]["id"] == out["key"]["id"]
    assert e["admin"].get(f"/api/v1/keys?q={out['secret'][-4:]}").json()["data"][0]["id"] == \
        out["key"]["id"]
    # pagination: pages of 1 walk every key once, newest first
    seen, after = [], None
    while True:
        r = e["admin"].get("/api/v1/keys?limit=1" + (f"&after={after}" if after else "")).json()
        seen += [x["id"] for x in r["data"]]
        if not r["has_more"]:
            break
        after = r["next_cursor"]
    allk = [x["id"] for x in e["admin"].get("/api/v1/keys").json()["data"]]
    assert seen == allk and len(set(seen)) == len(seen) >= 2
    for bad in ("limit=0", "limit=101", "limit=x", "after=nonsense", "type=bogus", "mode=x",
                "status=x", "q=%ZZ"):
        r = e["admin"].get("/api/v1/keys?" + bad)
        assert r.status == 400, bad
    assert e["admin"].get("/api/v1/keys/key_doesnotexist0000").status == 404


def test_create_refusals(con):
    a = con["admin"]
    before = snapshot(con)
    cases = [
        ({"type": "publishable"}, "invalid_field"),
        ({"type": "secret", "permissions": {"charge": "read"}}, "invalid_field"),
        ({"type": "restricted", "permissions": {"nosuch": "read"}}, "invalid_field"),
        ({"type": "restricted", "permissions": {"charge": "admin"}}, "invalid_field"),
        ({"type": "secret", "allowlist": ["10.0.0.5/24"]}, "invalid_entry"),
        ({"type": "secret", "allowlist": ["1.2.3.4"] * 101}, "too_many_entries"),
        ({"type": "secret", "expires_at": 1}, "invalid_field"),
        ({"type": "secret", "name": "x" * 201}, "invalid_field"),
        ({"type": "secret", "color": "red"}, "unknown_field"),
        ({}, "missing_field"),
    ]
    for body, code in cases:
        r = a.req("POST", "/api/v1/keys", body)
        assert r.status == 400 and r.err()["code"] == code, (body, r.body)
    r = a.req("POST", "/api/v1/keys", {"type": "secret", "allowlist": ["10.0.0.5/24"]})
    assert "write 10.0.0.0/24" in r.err()["message"] and r.err()["param"] == "allowlist[0]"
    assert snapshot(con) == before


def test_hostile_input_changes_nothing(anycon):
    e = anycon
    a, v = e["admin"], e["viewer"]
    kid = new_key(e)["key"]["id"]
    before = snapshot(e)
    path = f"/api/v1/keys/{kid}/allowlist"
    body = {"allowlist": ["127.0.0.2"], "confirm": True}
    h = {"Cookie": a.cookie, "X-CSRF-Token": a.csrf}
    checks = [
        # oversized body: refused from its Content-Length, before a byte of it is read
        (call(e["port"], "PUT", path, b"{" + b" " * 70000 + b"}",
              dict(h, **{"Content-Type": "application/json"})), 413, "body_too_large"),
        (call(e["port"], "PUT", path, b'{"allowlist": [', dict(h, **{"Content-Type": "application/json"})),
         400, "bad_json"),
        (call(e["port"], "PUT", path, b'["a"]', dict(h, **{"Content-Type": "application/json"})),
         400, "bad_json"),
        (call(e["port"], "PUT", path, b'{"allowlist": [], "allowlist": ["1.2.3.4"]}',
              dict(h, **{"Content-Type": "application/json"})), 400, "bad_json"),
        (call(e["port"], "PUT", path, json.dumps(body).encode(), dict(h, **{"Content-Type": "text/plain"})),
         415, "unsupported_media_type"),
        (call(e["port"], "PUT", path, json.dumps(body).encode(), dict(h)), 415, "unsupported_media_type"),
        (a.req("PUT", path, body, csrf=False), 403, "csrf_missing"),
        (a.req("PUT", path, body, csrf="0" * 43), 403, "csrf_invalid"),
        # another user's session: alice's cookie with victor's CSRF token
        (a.req("PUT", path, body, csrf=v.csrf), 403, "csrf_invalid"),
        (v.req("PUT", path, body), 403, "forbidden"),
        (v.req("POST", "/api/v1/keys", {"type": "secret"}), 403, "forbidden"),
        (v.req("POST", f"/api/v1/keys/{kid}/revoke"), 403, "forbidden"),
        (a.req("PUT", path, {"allowlist": ["10.0.0.5/24"], "confirm": True}), 400, "invalid_entry"),
        (a.req("PUT", path, {"allowlist": ["300.1.1.1"], "confirm": True}), 400, "invalid_entry"),
        (a.req("PUT", path, {"allowlist": ["fe80::1%eth0"], "confirm": True}), 400, "invalid_entry"),
        (a.req("PUT", path, {"allowlist": "127.0.0.2", "confirm": True}), 400, "invalid_field"),
        (a.req("PUT", path, {"allowlist": [], "confirm": "yes"}), 400, "invalid_field"),
        (a.req("PUT", path, {"allowlist": [], "extra": 1}), 400, "unknown_field"),
        (a.req("PUT", path, {"a": [[[[[[[[[[1]]]]]]]]]]}), 400, "bad_json"),
    ]
    for i, (r, status, code) in enumerate(checks):
        assert r.status == status and r.err()["code"] == code, (i, r.status, r.body)
        assert r.header("content-type") == "application/json"
        assert "\n" not in r.err()["message"]
    r = call(e["port"], "PUT", path, raw=(f"PUT {path} HTTP/1.1\r\nHost: x\r\nCookie: {a.cookie}\r\n"
                                          f"X-CSRF-Token: {a.csrf}\r\nContent-Type: application/json\r\n"
                                          "Transfer-Encoding: chunked\r\n\r\n5\r\n{}   \r\n0\r\n\r\n").encode())
    assert r.status == 411
    assert snapshot(e) == before


def test_allowlist_check_and_confirm(anycon):
    e = anycon
    k = new_key(e, name="shop")["key"]
    kid = k["id"]
    hour = int(time.time()) // 3600 * 3600
    now = int(time.time())
    # what the gate's telemetry would have written: two clients used it, one was refused
    e["sql"]("INSERT INTO key_usage (key_id, last_used, last_client) VALUES ('%s', %d, '127.0.0.3')"
             % (kid, now))
    for client, allowed, denied in (("127.0.0.2", 5, 0), ("127.0.0.3", 3, 0), ("127.0.0.4", 0, 2)):
        e["sql"]("INSERT INTO key_usage_hourly (key_id, client, hour, allowed, denied) VALUES "
                 "('%s', '%s', %d, %d, %d)" % (kid, client, hour, allowed, denied))
    # an old hour (8 days ago) does not count
    e["sql"]("INSERT INTO key_usage_hourly (key_id, client, hour, allowed, denied) VALUES "
             "('%s', '127.0.0.6', %d, 9, 0)" % (kid, hour - 8 * 86400))
    a = e["admin"]
    chk = a.req("POST", f"/api/v1/keys/{kid}/allowlist/check", {"allowlist": ["127.0.0.2"]}).json()
    assert [c["client"] for c in chk["refused_clients"]] == ["127.0.0.3"]
    assert chk["refused_clients"][0]["requests"] == 3 and chk["refused_clients"][0]["last_seen"] == now
    assert chk["missing_egress"] == ["127.0.0.9"]
    assert chk["suggested"] == ["127.0.0.2", "127.0.0.3", "127.0.0.9"]
    assert chk["warnings"] == 2 and chk["needs_confirm"] is True
    # a viewer may check (it changes nothing)
    assert e["viewer"].req("POST", f"/api/v1/keys/{kid}/allowlist/check",
                           {"allowlist": ["127.0.0.2"]}).status == 200
    ok = a.req("POST", f"/api/v1/keys/{kid}/allowlist/check",
               {"allowlist": ["127.0.0.0/29", "127.0.0.9"]}).json()
    assert ok["warnings"] == 0 and ok["refused_clients"] == [] and ok["missing_egress"] == []
    before = snapshot(e)
    r = a.req("PUT", f"/api/v1/keys/{kid}/allowlist", {"allowlist": ["127.0.0.2", "::1"]})
    assert r.status == 409 and r.err()["code"] == "confirmation_required"
    assert r.err()["check"]["refused_clients"][0]["client"] == "127.0.0.3"
    assert snapshot(e) == before
    r = a.req("PUT", f"/api/v1/keys/{kid}/allowlist", {"allowlist": ["127.0.0.2", "::1"], "confirm": True})
    assert r.status == 200 and r.json()["key"]["allowlist"] == ["127.0.0.2", "::1"]
    rec = a.get(f"/api/v1/audit?key={kid}&limit=1").json()["data"][0]
    assert rec["action"] == "restrict" and rec["actor"] == "alice"
    assert "confirmed" in rec["reason"] and "127.0.0.3" in rec["reason"] and "127.0.0.9" in rec["reason"]
    assert rec["before"]["allow"] == [] and rec["after"]["allow"] == ["127.0.0.2", "::1"]
    # no warnings: no confirmation needed, no reason recorded
    r = a.req("PUT", f"/api/v1/keys/{kid}/allowlist", {"allowlist": ["127.0.0.0/29", "127.0.0.9"]})
    assert r.status == 200
    assert a.get(f"/api/v1/audit?key={kid}&limit=1").json()["data"][0]["reason"] is None
    # the whole key page shows where it was last used from
    assert a.get(f"/api/v1/keys/{kid}").json()["last_used"] == {"time": now, "client": "127.0.0.3"}


def test_validate_entries(con):
    r = con["viewer"].req("POST", "/api/v1/entries/validate",
                          {"entries": ["10.0.0.0/8", "10.0.0.5/24", "2001:db8::/32", "::ffff:1.2.3.4", "x", 5]})
    out = r.json()["entries"]
    assert [x["ok"] for x in out] == [True, False, True, True, False, False]
    assert out[1]["error"].startswith("host bits set: write 10.0.0.0/24")
    assert out[3]["canonical"] == "1.2.3.4"


def test_report_enforce_roll_perms_revoke_patch(con):
    a = con["admin"]
    rk = new_key(con, type="restricted", permissions={"charge": "read"}, allowlist=["127.0.0.2"])
    kid = rk["key"]["id"]
    r = a.req("PUT", f"/api/v1/keys/{kid}/allowlist_mode", {"mode": "report"})
    assert r.status == 200 and r.json()["allowlist_mode"] == "report"
    r = a.req("PUT", f"/api/v1/keys/{kid}/allowlist_mode", {"mode": "enforce"})
    assert r.json()["allowlist_mode"] == "enforce"
    assert a.req("PUT", f"/api/v1/keys/{kid}/allowlist_mode", {"mode": "maybe"}).status == 400
    # permissions: the matrix replaces the old one
    r = a.req("PUT", f"/api/v1/keys/{kid}/permissions", {"permissions": {"refund": "write"}})
    assert r.status == 200 and r.json()["permissions"] == {"refund": "write"}
    assert a.req("PUT", f"/api/v1/keys/{kid}/permissions",
                 {"permissions": {"bogus": "read"}}).status == 400
    sk = new_key(con)["key"]["id"]
    assert a.req("PUT", f"/api/v1/keys/{sk}/permissions",
                 {"permissions": {"charge": "read"}}).err()["code"] == "not_allowed"
    # note and name
    r = a.req("PATCH", f"/api/v1/keys/{kid}", {"note": "rotate monthly", "name": "reports v2"})
    assert r.json()["note"] == "rotate monthly" and r.json()["name"] == "reports v2"
    # roll: the old key expires in 24 h, the new one keeps everything that limits it
    t0 = int(time.time())
    r = a.req("POST", f"/api/v1/keys/{kid}/roll", {"expire_in": "24h"})
    assert r.status == 201, r.body
    out = r.json()
    assert out["secret"].startswith("rk_") and out["secret"] != rk["secret"]
    assert out["key"]["rotated_from"] == kid and out["key"]["permissions"] == {"refund": "write"}
    assert out["key"]["allowlist"] == ["127.0.0.2"] and out["key"]["note"] == "rotate monthly"
    assert t0 + 86400 - 5 <= out["old"]["expires_at"] <= t0 + 86400 + 5
    assert a.req("POST", f"/api/v1/keys/{kid}/roll", {"expire_in": "2w"}).status == 400
    # revoke, twice
    nid = out["key"]["id"]
    r = a.req("POST", f"/api/v1/keys/{nid}/revoke", {"reason": "leaked"})
    assert r.status == 200 and r.json()["status"] == "revoked"
    r = a.req("POST", f"/api/v1/keys/{nid}/revoke")
    assert r.status == 409 and r.err()["code"] == "already_revoked"
    assert a.req("PUT", f"/api/v1/keys/{nid}/allowlist_mode", {"mode": "report"}).status == 409
    acts = [x["action"] for x in a.get(f"/api/v1/audit?key={nid}").json()["data"]]
    assert acts == ["revoke", "create"]


def test_audit_filters(con):
    a = con["admin"]
    kid = new_key(con, name="audited")["key"]["id"]
    a.req("PATCH", f"/api/v1/keys/{kid}", {"note": "n1"})
    recs = a.get(f"/api/v1/audit?key={kid}").json()["data"]
    assert [r["action"] for r in recs] == ["edit", "create"] and all(r["key_id"] == kid for r in recs)
    assert recs[0]["before"]["note"] == "" and recs[0]["after"]["note"] == "n1"
    by_victor = a.get("/api/v1/audit?actor=victor").json()
    assert by_victor["data"] == []          # the viewer never changed anything
    page = a.get("/api/v1/audit?actor=alice&limit=2").json()
    assert len(page["data"]) == 2 and page["has_more"]
    nxt = a.get(f"/api/v1/audit?actor=alice&limit=2&before={page['next_cursor']}").json()
    assert nxt["data"][0]["seq"] < page["data"][-1]["seq"]
    assert a.get("/api/v1/audit?limit=0").status == 400


def test_users_admin_only(con):
    a, v = con["admin"], con["viewer"]
    assert v.get("/api/v1/users").status == 403
    assert [u["name"] for u in a.get("/api/v1/users").json()["data"]] == ["alice", "victor"]
    r = a.req("POST", "/api/v1/users", {"name": "tmp", "password": "short", "role": "viewer"})
    assert r.status == 400
    r = a.req("POST", "/api/v1/users", {"name": "tmp", "password": "long enough pw", "role": "viewer"})
    assert r.status == 201
    assert a.req("POST", "/api/v1/users", {"name": "tmp", "password": "long enough pw",
                                           "role": "viewer"}).status == 409
    t = Client(con["port"], "tmp", "long enough pw")
    assert t.get("/api/v1/me").status == 200
    assert a.req("DELETE", "/api/v1/users/tmp").status == 204
    assert t.get("/api/v1/me").status == 401            # the session ended with the user
    assert a.req("DELETE", "/api/v1/users/alice").status == 400
    assert a.req("DELETE", "/api/v1/users/nobody").status == 404
    acts = [r["action"] for r in a.get("/api/v1/audit?actor=alice&limit=5").json()["data"]]
    assert acts[:2] == ["user.remove", "user.add"]
    out = console_cli(con["db"], "users", "list", "--json")
    assert [json.loads(l)["name"] for l in out.stdout.splitlines()] == ["alice", "victor"]


def test_tokens(anycon):
    e = anycon
    a = e["admin"]
    r = a.req("POST", "/api/v1/tokens", {"name": "ci-read", "scope": "read"})
    assert r.status == 201
    rtok, rid = r.json()["secret"], r.json()["token"]["id"]
    wtok = a.req("POST", "/api/v1/tokens", {"name": "deploy", "scope": "write"}).json()["secret"]
    assert rtok.startswith("ilc_") and rtok not in a.get("/api/v1/tokens").body.decode()
    assert token_call(e["port"], rtok, "GET", "/api/v1/keys").status == 200
    r = token_call(e["port"], rtok, "POST", "/api/v1/keys", {"type": "secret"})
    assert r.status == 403 and r.err()["code"] == "token_scope"
    r = token_call(e["port"], wtok, "POST", "/api/v1/keys", {"type": "secret", "name": "by-bot"})
    assert r.status == 201                  # no cookie, no CSRF: the token is the credential
    kid = r.json()["key"]["id"]
    rec = a.get(f"/api/v1/audit?key={kid}").json()["data"][0]
    assert rec["actor"] == "token:deploy"
    assert token_call(e["port"], wtok, "GET", "/api/v1/users").status == 403
    assert token_call(e["port"], wtok, "POST", "/api/v1/tokens", {"name": "x", "scope": "write"}).status == 403
    assert a.req("DELETE", f"/api/v1/tokens/{rid}").status == 204
    assert token_call(e["port"], rtok, "GET", "/api/v1/keys").status == 401
    assert e["viewer"].get("/api/v1/tokens").status == 403


def test_config_endpoint(con):
    cfg = con["viewer"].get("/api/v1/config").json()
    names = [r["name"] for r in cfg["resources"]]
    assert "charge" in names and len(names) == len(set(names))
    assert cfg["egress"] == ["127.0.0.9"] and cfg["roll_expiry"] == ["now", "1h", "24h", "3d", "7d"]


def test_routes_from_gate_ini(tmp_path):
    gate_ini = tmp_path / "gate.ini"
    gate_ini.write_text("[gate]\nlisten = 127.0.0.1:1\ndb = x.db\nupstream = 127.0.0.1:2\n"
                        "[route widgets]\npath = /v1/widgets*\nresource = widget\n")
    cfg = tmp_path / "c.ini"
    cfg.write_text(f"[console]\nlisten = 127.0.0.1:1\ndb = k.db\nroutes = {gate_ini.name}\n")
    p = subprocess.run([IPLOCK, "console", "-c", str(cfg), "--check"], capture_output=True, text=True)
    assert p.returncode == 0 and "1 routes" in p.stdout, p.stderr
    cfg.write_text("[console]\nlisten = 127.0.0.1:1\ndb = k.db\negress = 10.0.0.0/8\n")
    p = subprocess.run([IPLOCK, "console", "-c", str(cfg), "--check"], capture_output=True, text=True)
    assert p.returncode == 1 and "not ranges" in p.stderr


def test_cli_errors(tmp_path, con):
    missing = tmp_path / "missing.ini"
    for args, rc, text in (
        (["-c", str(missing)], 1, f"iplock console: {missing}: No such file or directory"),
        (["-c", str(missing), "--check"], 1, "No such file or directory"),
        (["--no-such-flag"], 2, "unknown option"),
        (["-c"], 2, "needs a value"),
        (["users", "add", "bob", "--role", "admin", "--db", str(con["db"])], 2, "--password-stdin"),
        (["users", "add", "bob", "--password-stdin", "--db", str(con["db"])], 2, "--role"),
        (["tokens", "create", "x", "--db", str(con["db"])], 2, "--scope"),
        (["users", "remove", "nobody", "--db", str(con["db"])], 1, "no such user"),
    ):
        p = subprocess.run([IPLOCK, "console", *args], input="short\n", capture_output=True,
                           text=True, timeout=20)
        assert p.returncode == rc and text in p.stderr, (args, p.returncode, p.stderr)
        assert p.stderr.startswith("iplock console")
    p = console_cli(con["db"], "users", "add", "bob", "--password-stdin", "--role", "admin",
                    stdin="short\n")
    assert p.returncode == 2 and "10-1024" in p.stderr
    p = console_cli(con["db"], "tokens", "create", "cli-tok", "--scope", "read")
    assert p.returncode == 0 and p.stdout.startswith("ilc_") and "shown once" in p.stderr
    lst = console_cli(con["db"], "tokens", "list")
    assert "cli-tok" in lst.stdout and p.stdout.strip() not in lst.stdout
    tid = [l for l in lst.stdout.splitlines() if "cli-tok" in l][0].split()[0]
    assert console_cli(con["db"], "tokens", "revoke", tid).returncode == 0


def test_console_save_reaches_the_gate(con):
    """The restriction saved through the API is what a running gate enforces."""
    up = Upstream()
    g = Gate(con["tmp"], con["db"], up.port)
    try:
        out = new_key(con, name="via-console")
        hdr = ["-H", f"Authorization: Bearer {out['secret']}"]
        assert curl(g.url + "/v1/charges", *hdr, source="127.0.0.5")[0] == 200
        r = con["admin"].req("PUT", f"/api/v1/keys/{out['key']['id']}/allowlist",
                             {"allowlist": ["127.0.0.2", "127.0.0.9"], "confirm": True})
        assert r.status == 200
        assert curl(g.url + "/v1/charges", *hdr, source="127.0.0.5")[0] == 401
        assert curl(g.url + "/v1/charges", *hdr, source="127.0.0.2")[0] == 200
    finally:
        g.stop()
        up.close()


def test_secrets_never_logged(con):
    log = con["console"].log()
    assert ADMIN_PW not in log and VIEWER_PW not in log
    assert "sk_test_" not in log and "rk_live_" not in log and "ilc_" not in log
    assert '"path":"/api/v1/keys"' in log.replace(" ", "")


def test_check_names_the_fleet_egress_addresses(anycon):
    """The proxy nodes' egress addresses recorded in the store (users_db heartbeat) count as
    egress beside `egress =`; a node silent for over a week does not."""
    e = anycon
    kid = new_key(e, name="fleet")["key"]["id"]
    now = int(time.time())
    for node, beat, addr in (("proxy-a", now, "10.1.2.3"), ("proxy-old", now - 8 * 86400, "10.9.9.9")):
        e["sql"]("INSERT INTO proxy_nodes (name, started, heartbeat) VALUES ('%s', %d, %d)"
                 % (node, beat, beat))
        e["sql"]("INSERT INTO proxy_node_egress (node, addr, healthy, verdict, checked) VALUES "
                 "('%s', '%s', 1, 'up', %d)" % (node, addr, beat))
    try:
        chk = e["admin"].req("POST", f"/api/v1/keys/{kid}/allowlist/check",
                             {"allowlist": ["127.0.0.9"]}).json()
        assert chk["missing_egress"] == ["10.1.2.3"], chk
        assert chk["needs_confirm"] is True
    finally:
        e["sql"]("DELETE FROM proxy_node_egress")
        e["sql"]("DELETE FROM proxy_nodes")
