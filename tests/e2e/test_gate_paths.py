"""The gate decides on exactly the request the API will act on (issue 9). A restricted key
with only charge=read, routes charges and customers, an upstream that records the exact
request line and fields it got. For every spelling of a path the result is either a 400
before the upstream sees anything, or an upstream request whose path is exactly the one the
decision was made on (the access log's "path"), in both path_normalize modes. Then: one
credential, one method, one Host, and the hop-by-hop rule in both directions."""
import json
import re
from urllib.parse import unquote_to_bytes

import pytest

from gate_util import Gate, RawUpstream, create_key, raw_http

LONG = "/v1/charges/" + "a" * 3000

# (name, target, status with path_normalize = refuse, rewrite: 400 | (status, upstream path))
ROWS = [
    ("plain", "/v1/charges", 200, (200, "/v1/charges")),
    ("plain_query", "/v1/charges?limit=3&x=../../customers", 200,
     (200, "/v1/charges?limit=3&x=../../customers")),
    ("other_resource", "/v1/customers", 403, (403, None)),
    ("dot_dot", "/v1/charges/../customers", 400, (403, None)),
    ("enc_dot_dot_lower", "/v1/charges/%2e%2e/customers", 400, (403, None)),
    ("enc_dot_dot_mixed", "/v1/charges/%2E%2e/customers", 400, (403, None)),
    ("half_enc_dot_dot", "/v1/charges/.%2E/customers", 400, (403, None)),
    ("enc_slash", "/v1/charges%2F..%2Fcustomers", 400, 400),
    ("enc_slash_lower", "/v1/charges%2f..%2fcustomers", 400, 400),
    ("enc_dots_and_slash", "/v1/charges/%2e%2e%2fcustomers", 400, 400),
    ("backslash", "/v1/charges\\..\\customers", 400, 400),
    ("enc_backslash", "/v1/charges%5C..%5Ccustomers", 400, 400),
    ("enc_backslash_lower", "/v1/charges%5c..%5ccustomers", 400, 400),
    ("semicolon_param", "/v1/charges;/../customers", 400, 400),
    ("dotdot_semicolon", "/v1/charges/..;/customers", 400, 400),
    ("enc_semicolon", "/v1/charges%3B/../customers", 400, 400),
    ("double_slash_dotdot", "/v1/charges//../customers", 400, (403, None)),
    ("leading_double_slash", "//v1/charges", 400, (200, "/v1/charges")),
    ("inner_double_slash", "/v1//charges", 400, (200, "/v1/charges")),
    ("enc_nul", "/v1/charges%00/../customers", 400, 400),
    ("enc_crlf", "/v1/charges%0d%0aX-Evil:%201", 400, 400),
    ("raw_ctl", b"/v1/charges\x01", 400, 400),
    ("raw_del", b"/v1/charges\x7f", 400, 400),
    ("raw_non_ascii", b"/v1/charges\xc3\xa9", 400, 400),
    ("enc_non_ascii", "/v1/charges%C3%A9", 400, 400),
    ("overlong", LONG, 400, 400),
    ("dot", "/v1/charges/./x", 400, (200, "/v1/charges/x")),
    ("trailing_dotdot", "/v1/charges/..", 400, (403, None)),
    ("unreserved_enc", "/v1/%63harges", 400, (200, "/v1/charges")),
    ("unreserved_enc_other", "/v1/%63ustomers", 400, (403, None)),
    ("lower_pct", "/v1/charges/ch_1%3a", 400, (200, "/v1/charges/ch_1%3A")),
    ("mixed", "/v1/./charges/%2E%2E/%2e/customers", 400, (403, None)),
    ("mixed_slash", "/v1/charges/%2e/..%2F/customers", 400, 400),
    ("double_enc", "/v1/charges%252e%252e/customers", 400, 400),
    ("query_nul", "/v1/charges?x=%00", 400, 400),
    ("fragment", "/v1/charges#/../customers", 400, 400),
    ("absolute_form", "http://127.0.0.1/v1/charges/../customers", 400, (403, None)),
    ("absolute_form_ok", "http://127.0.0.1/v1/charges", 200, (200, "/v1/charges")),
]


def backend_view(target):
    """What an API framework that normalises everything routes on: every escape decoded,
    '\\' as '/', ';' parameters dropped, slashes merged, dot-segments resolved."""
    path = target.split("?", 1)[0]
    if "://" in path:
        path = "/" + path.split("://", 1)[1].split("/", 1)[1]
    p = unquote_to_bytes(path).decode("latin-1").replace("\\", "/")
    out = []
    for seg in p.split("/"):
        seg = seg.split(";", 1)[0]
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
    return "/" + "/".join(out)


@pytest.fixture(scope="module", params=["refuse", "rewrite"])
def env(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("paths-" + request.param)
    db = tmp / "keys.db"
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
        log = gate.access()[logged:]
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
    decided = gate.access()[-1]
    assert decided["status"] == 200 and decided["path"] == got.split("?")[0]
    assert backend_view(got).startswith("/v1/charges"), got
    if env["mode"] == "rewrite" and isinstance(target, str) and target[0] == "/" and got != target:
        assert decided.get("path_in"), decided


def test_refusal_reasons_logged(env):
    gate = env["gate"]
    raw_http(gate.port, "/v1/charges%2F..%2Fcustomers", [bearer(env["rk"])])
    assert gate.access()[-1]["reason"] == "path_encoded_slash"
    st, _, body = raw_http(gate.port, "/v1/charges/../customers", [bearer(env["rk"])])
    if env["mode"] == "refuse":
        assert st == 400 and gate.access()[-1]["reason"] == "path_dot_segment"
        assert "'.' or '..'" in json.loads(body)["error"]["message"]
    else:
        assert st == 403 and gate.access()[-1]["path"] == "/v1/customers"


def refused_before_upstream(env, fields, target="/v1/charges", method="GET", host="127.0.0.1"):
    up = env["up"]
    before = up.count()
    st, _, body = raw_http(env["gate"].port, target, fields, method=method, host=host)
    assert st == 400, body
    assert json.loads(body)["error"]["type"] == "invalid_request_error"
    assert up.count() == before
    return env["gate"].access()[-1]["reason"]


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


def test_hop_by_hop_response(tmp_path):
    up = RawUpstream(extra=b"Connection: X-Resp-Secret\r\nX-Resp-Secret: 1\r\nTE: trailers\r\n"
                           b"Trailer: X-T\r\nUpgrade: h2c\r\nKeep-Alive: timeout=5\r\n"
                           b"Proxy-Authenticate: Basic\r\nProxy-Foo: 1\r\nX-Kept: yes\r\n")
    db = tmp_path / "keys.db"
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
