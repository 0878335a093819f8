"""The gate decides on exactly the request the API will act on (issue 9). A restricted key
with only charge=read, routes charges and customers, an upstream that records the exact
request line and fields it got. For every spelling of a path the result is either a 400
before the upstream sees anything, or an upstream request whose path is exactly the one the
decision was made on (the access log's "path"), in both path_normalize modes. Then: one
credential, one method, one Host, and the hop-by-hop rule in both directions."""
import json
import re
import pytest

from gate_util import PATH_ROWS as ROWS, Gate, RawUpstream, backend_view, create_key, raw_http

@pytest.fixture(scope="module", params=["refuse", "rewrite"])
def env(request, tmp_path_factory, store_db):
    tmp = tmp_path_factory.mktemp("paths-" + request.param)
    db = store_db(tmp)
    up = RawUpstream()
    e = {"mode": request.param, "up": up}
    e["rk"] = create_key(db, "--type", "restricted", "--perm", "charge=read")
    e["rkw"] = create_key(db, "--type", "restricted", "--perm", "charge=write")
    e["sk"] = create_key(db, "--type", "secret")
    e["gate"] = Gate(tmp, db, up.port, extra=f"path_normalize = {request.param}")
    yield e
    e["gate"].stop()
    up.close()


def bearer(key):
    return ("Authorization", "Bearer " + key["secret"])


@pytest.mark.parametrize("name,target,refuse,rewrite", ROWS, ids=[r[0] for r in ROWS])
def test_spelling(env, name, target, refuse, rewrite):
    up, gate = env["up"], env["gate"]
    before = up.count()
    logged = len(gate.access())
    st, _, body = raw_http(gate.port, target, [bearer(env["rk"])])
    want = refuse if env["mode"] == "refuse" else rewrite
    want_status, want_path = (want, None) if isinstance(want, int) else want
    if env["mode"] == "refuse" and want_status == 200:
        want_path = target if isinstance(target, str) and target.startswith("/") else "/v1/charges"
    assert st == want_status, (name, st, body)
    err = json.loads(body)["error"] if st != 200 else None
    if st == 400:
        assert err["type"] == "invalid_request_error" and err["message"]
        assert up.count() == before, "refused, yet the upstream saw it"
        log = gate.access_wait(logged + 1)[logged:]
        assert log and log[-1]["status"] == 400 and log[-1]["decision"] == "deny"
        assert log[-1]["reason"], log[-1]
        return
    if st == 403:
        assert up.count() == before
        assert "rak_customer_read" in err["message"] or "permissions" in err["message"]
        return
    # forwarded: the upstream got exactly the path decided on, and it is a charges path
    assert up.count() == before + 1
    got = up.last()["target"]
    assert got == want_path, (name, got)
    decided = gate.access_wait(logged + 1)[-1]
    assert decided["status"] == 200 and decided["path"] == got.split("?")[0]
    assert backend_view(got).startswith("/v1/charges"), got
    if env["mode"] == "rewrite" and isinstance(target, str) and target[0] == "/" and got != target:
        assert decided.get("path_in"), decided


def test_refusal_reasons_logged(env):
    gate = env["gate"]
    n = len(gate.access())
    raw_http(gate.port, "/v1/charges%2F..%2Fcustomers", [bearer(env["rk"])])
    assert gate.access_wait(n + 1)[-1]["reason"] == "path_encoded_slash"
    st, _, body = raw_http(gate.port, "/v1/charges/../customers", [bearer(env["rk"])])
    last = gate.access_wait(n + 2)[-1]
    if env["mode"] == "refuse":
        assert st == 400 and last["reason"] == "path_dot_segment"
        assert "'.' or '..'" in json.loads(body)["error"]["message"]
    else:
        assert st == 403 and last["path"] == "/v1/customers"


def refused_before_upstream(env, fields, target="/v1/charges", method="GET", host="127.0.0.1"):
    up = env["up"]
    before, n = up.count(), len(env["gate"].access())
    st, _, body = raw_http(env["gate"].port, target, fields, method=method, host=host)
    assert st == 400, body
    assert json.loads(body)["error"]["type"] == "invalid_request_error"
    assert up.count() == before
    return env["gate"].access_wait(n + 1)[-1]["reason"]


def test_one_credential(env):
    sk, rk = env["sk"], env["rk"]
    assert refused_before_upstream(env, [bearer(rk), bearer(sk)]) == "duplicate_credentials"
    # Basic and Bearer: two places, two keys
    import base64
    basic = "Basic " + base64.b64encode((sk["secret"] + ":").encode()).decode()
    assert refused_before_upstream(env, [bearer(rk), ("Authorization", basic)]) == \
        "duplicate_credentials"
    assert refused_before_upstream(env, [bearer(rk), ("Proxy-Authorization", basic)]) == \
        "proxy_authorization"
    assert refused_before_upstream(env, [("Proxy-Authorization", "Bearer " + sk["secret"])]) == \
        "proxy_authorization"
    # one credential: it reaches the API, and it is the only field that can carry a key
    st, _, _ = raw_http(env["gate"].port, "/v1/charges", [bearer(rk)])
    assert st == 200
    names = [n.lower() for n, _ in env["up"].last()["fields"]]
    assert names.count("authorization") == 1 and "proxy-authorization" not in names


@pytest.mark.parametrize("field", ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"])
def test_method_override_refused(env, field):
    assert refused_before_upstream(env, [bearer(env["sk"]), (field, "DELETE")]) == \
        "method_override"


def test_unknown_method_needs_write(env):
    up, gate = env["up"], env["gate"]
    before = up.count()
    st, _, body = raw_http(gate.port, "/v1/charges", [bearer(env["rk"])], method="PROPFIND")
    assert st == 403 and "rak_charge_write" in json.loads(body)["error"]["message"]
    assert up.count() == before
    st, _, _ = raw_http(gate.port, "/v1/charges", [bearer(env["rkw"])], method="PROPFIND")
    assert st == 200 and up.last()["line"] == "PROPFIND /v1/charges HTTP/1.1"


def test_one_host(env):
    assert refused_before_upstream(env, [bearer(env["sk"]), ("Host", "evil.example")]) == \
        "duplicate_host"
    assert refused_before_upstream(env, [bearer(env["sk"])],
                                   target="http://evil.example/v1/charges") == "host_mismatch"
    assert refused_before_upstream(env, [bearer(env["sk"])], host=None,
                                   target="http://evil.example/v1/charges") in (
        "host_mismatch", "bad_request")
    # absolute-form naming the Host goes on in origin-form
    st, _, _ = raw_http(env["gate"].port, "http://127.0.0.1/v1/charges?a=1", [bearer(env["rk"])])
    assert st == 200 and env["up"].last()["line"] == "GET /v1/charges?a=1 HTTP/1.1"


def test_hop_by_hop_request(env):
    st, _, _ = raw_http(env["gate"].port, "/v1/charges", [
        bearer(env["rk"]), ("Connection", "keep-alive, X-Secret"), ("X-Secret", "1"),
        ("Connection", "X-Other"), ("X-Other", "2"), ("TE", "trailers"), ("Trailer", "X-T"),
        ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"), ("Upgrade", "h2c"),
        ("X-Kept", "yes")])
    assert st == 200
    names = [n.lower() for n, _ in env["up"].last()["fields"]]
    for gone in ("x-secret", "x-other", "te", "trailer", "keep-alive", "proxy-connection",
                 "upgrade", "connection"):
        assert gone not in names, (gone, names)
    assert "x-kept" in names and "x-iplock-key-id" in names


@pytest.mark.parametrize("named", ["Content-Length", "Host"])
def test_connection_cannot_remove_framing(env, named):
    """`Connection: Content-Length` must not strip the framing of a body the gate relays as
    is: the API would read the body as a second request nobody checked."""
    up = env["up"]
    before = up.count()
    smuggled = b"GET /v1/customers HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    st, _, _ = raw_http(env["gate"].port, "/v1/charges",
                        [bearer(env["rkw"]), ("Connection", named),
                         ("Content-Length", str(len(smuggled)))],
                        method="POST", body=smuggled)
    assert st == 200
    import time
    time.sleep(0.2)
    assert up.count() == before + 1, [r["line"] for r in up.requests[before:]]
    fields = {n.lower(): v for n, v in up.last()["fields"]}
    assert fields["content-length"] == str(len(smuggled)) and fields["host"] == "127.0.0.1"


def test_hop_by_hop_response(tmp_path, store_db):
    up = RawUpstream(extra=b"Connection: X-Resp-Secret\r\nX-Resp-Secret: 1\r\nTE: trailers\r\n"
                           b"Trailer: X-T\r\nUpgrade: h2c\r\nKeep-Alive: timeout=5\r\n"
                           b"Proxy-Authenticate: Basic\r\nProxy-Foo: 1\r\nX-Kept: yes\r\n")
    db = store_db(tmp_path)
    sk = create_key(db, "--type", "secret")
    gate = Gate(tmp_path, db, up.port)
    try:
        st, hdrs, _ = raw_http(gate.port, "/v1/charges", [bearer(sk)])
        assert st == 200
        for gone in ("x-resp-secret", "te", "trailer", "upgrade", "keep-alive",
                     "proxy-authenticate", "proxy-foo"):
            assert gone not in hdrs, (gone, hdrs)
        assert hdrs["x-kept"] == ["yes"]
        assert hdrs["connection"] == ["close"]
    finally:
        gate.stop()
        up.close()


def test_rewrite_refused_in_forward_auth(tmp_path):
    import subprocess
    from gate_util import IPLOCK
    cfg = tmp_path / "g.ini"
    cfg.write_text(f"[gate]\nlisten = 127.0.0.1:1\ndb = {tmp_path}/k.db\nmode = forward-auth\n"
                   "path_normalize = rewrite\n")
    p = subprocess.run([IPLOCK, "gate", "-c", str(cfg), "--check"], capture_output=True,
                       text=True, timeout=20)
    assert p.returncode != 0 and "path_normalize = rewrite needs mode" in p.stderr
    cfg.write_text(f"[gate]\nlisten = 127.0.0.1:1\ndb = {tmp_path}/k.db\nupstream = 127.0.0.1:1\n"
                   "path_normalize = sometimes\n")
    p = subprocess.run([IPLOCK, "gate", "-c", str(cfg), "--check"], capture_output=True,
                       text=True, timeout=20)
    assert p.returncode != 0 and "path_normalize must be refuse or rewrite" in p.stderr


def test_backend_view_model():
    """The test's model of a normalising backend is itself right."""
    assert backend_view("/v1/charges/..;/customers") == "/v1/customers"
    assert backend_view("/v1/charges%2F..%2Fcustomers?x") == "/v1/customers"
    assert backend_view("/v1/charges\\..\\customers") == "/v1/customers"
    assert re.match(r"^/v1/charges", backend_view("/v1//charges/./x"))


@pytest.fixture(scope="module")
def fa(tmp_path_factory, store_db):
    tmp = tmp_path_factory.mktemp("paths-fa")
    db = store_db(tmp)
    e = {"rk": create_key(db, "--type", "restricted", "--perm", "charge=read")}
    e["gate"] = Gate(tmp, db, mode="forward-auth")
    yield e
    e["gate"].stop()


@pytest.mark.parametrize("name,target,refuse,_rewrite", ROWS, ids=[r[0] for r in ROWS])
@pytest.mark.parametrize("field", ["X-Original-URI", "X-Forwarded-Uri"])
def test_forward_auth_checks_canonical_target(fa, field, name, target, refuse, _rewrite):
    """Forward auth never rewrites: the described target is allowed only when canonical."""
    if isinstance(target, bytes) or target.startswith("http://"):
        want = 400     # not a valid header value / not origin-form: refused
    else:
        want = refuse
    n = len(fa["gate"].access())
    st, hdrs, body = raw_http(fa["gate"].port, "/_iplock/auth",
                              [bearer(fa["rk"]), (field, target.decode("latin-1")
                                                  if isinstance(target, bytes) else target),
                               ("X-Original-Method" if field == "X-Original-URI"
                                else "X-Forwarded-Method", "GET")])
    assert st == want, (name, st, body)
    if st == 400 and name not in ("raw_ctl", "raw_del"):   # those fail llhttp's head parse
        assert hdrs["x-iplock-status"] == ["400"]
        assert json.loads(hdrs["x-iplock-error"][0])["error"]["type"] == "invalid_request_error"
    if st == 200:
        assert fa["gate"].access_wait(n + 1)[-1]["path"] == target.split("?")[0]


def test_forward_auth_one_description(fa):
    for fields in ([("X-Original-URI", "/v1/charges"), ("X-Forwarded-Uri", "/v1/customers")],
                   [("X-Original-URI", "/v1/charges"), ("X-Original-URI", "/v1/customers")],
                   [("X-Original-URI", "/v1/charges"), ("X-Original-Method", "GET"),
                    ("X-Forwarded-Method", "DELETE")]):
        n = len(fa["gate"].access())
        st, _, _ = raw_http(fa["gate"].port, "/_iplock/auth", [bearer(fa["rk"])] + fields)
        assert st == 400
        assert fa["gate"].access_wait(n + 1)[-1]["reason"] == "ambiguous_original_request"
    n = len(fa["gate"].access())
    st, _, _ = raw_http(fa["gate"].port, "/_iplock/auth",
                        [bearer(fa["rk"]), ("X-Original-URI", "/v1/charges"),
                         ("X-Original-Method", "get x")])
    assert st == 400 and fa["gate"].access_wait(n + 1)[-1]["reason"] == "bad_method"
