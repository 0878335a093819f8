"""The nginx auth_request example (etc/nginx/iplock-auth-request.conf) with Debian's nginx
in front of the gate in forward-auth mode: allowed, refused with the gate's JSON body, XFF
spoofing through nginx ignored; and the gate's path table (issue 9) through nginx: the gate
decides on exactly the target nginx forwards, and the upstream never receives a path to a
resource the key lacks."""
import json

import pytest

from gate_util import PATH_ROWS, Gate, RawUpstream, Upstream, backend_view, create_key, curl, raw_http
from servers import Nginx, have_nginx, nginx_example

MSG_IP = "The API key provided does not allow requests from your IP address."


def make_stack(tmp_path, up, db):
    sk = create_key(db, "--type", "secret", "--allow", "127.0.0.2")
    rk = create_key(db, "--type", "restricted", "--perm", "charge=read")
    org = create_key(db, "--type", "org")
    gate = Gate(tmp_path, db, mode="forward-auth", extra="trusted_proxies = 127.0.0.1")
    ng = Nginx(tmp_path, nginx_example("iplock-auth-request.conf"), GATE_ADDR=f"127.0.0.1:{gate.port}",
               UPSTREAM_ADDR=f"127.0.0.1:{up.port}")
    port = ng.port
    return {"url": f"http://127.0.0.1:{port}", "port": port, "sk": sk, "rk": rk, "org": org,
            "up": up, "gate": gate, "nginx": ng}


def stop_stack(st):
    st["nginx"].stop()
    st["gate"].stop()
    st["up"].close()


@pytest.fixture
def stack(tmp_path, store_db):
    if not have_nginx():
        pytest.skip("nginx not installed")
    st = make_stack(tmp_path, Upstream(), store_db(tmp_path))
    yield st
    stop_stack(st)


@pytest.fixture(scope="module")
def raw_stack(tmp_path_factory, store_db):
    """The same stack with an upstream that records the exact request line nginx sent."""
    if not have_nginx():
        pytest.skip("nginx not installed")
    tmp = tmp_path_factory.mktemp("nginx-raw")
    st = make_stack(tmp, RawUpstream(), store_db(tmp))
    yield st
    stop_stack(st)


def test_nginx_auth_request(stack):
    url = stack["url"] + "/v1/charges"
    sk = stack["sk"]
    st, body, _ = curl(url, "-H", "Authorization: Bearer " + sk["secret"], source="127.0.0.2")
    assert st == 200, body
    h = json.loads(body)["echo"]["headers"]
    assert h["x-iplock-key-id"] == sk["id"] and h["x-iplock-key-type"] == "secret"
    st, body, _ = curl(url, "-H", "Authorization: Bearer " + sk["secret"], source="127.0.0.5")
    assert st == 401 and json.loads(body)["error"]["message"] == MSG_IP
    # a client's own X-Forwarded-For is left of $remote_addr: never taken as the client
    st, body, _ = curl(url, "-H", "Authorization: Bearer " + sk["secret"], "-H",
                       "X-Forwarded-For: 127.0.0.2", source="127.0.0.5")
    assert st == 401
    st, body, _ = curl(url, source="127.0.0.2")
    assert st == 401 and "did not provide an API key" in json.loads(body)["error"]["message"]
    st, body, _ = curl(url, "-X", "POST", "-d", "amount=1", "-H",
                       "Authorization: Bearer " + stack["rk"]["secret"], source="127.0.0.2")
    assert st == 403 and "rak_charge_write" in json.loads(body)["error"]["message"]
    # forged identity headers from the client never reach the API
    st, body, _ = curl(url, "-H", "Authorization: Bearer " + stack["rk"]["secret"], "-H",
                       "X-Iplock-Key-Type: secret", source="127.0.0.2")
    assert st == 200 and json.loads(body)["echo"]["headers"]["x-iplock-key-type"] == "restricted"
    # the gate's 400 (org key without Stripe-Context) survives auth_request's 500 mapping
    st, body, _ = curl(url, "-H", "Authorization: Bearer " + stack["org"]["secret"],
                       source="127.0.0.2")
    assert st == 400 and "Stripe-Context" in json.loads(body)["error"]["message"]
    st, body, _ = curl(url, "-H", "Authorization: Bearer " + stack["org"]["secret"], "-H",
                       "Stripe-Context: acct_1", "-H", "Stripe-Version: 2024-06-20",
                       source="127.0.0.2")
    assert st == 200
    log = stack["gate"].access()
    assert any(l["client"] == "127.0.0.5" and l["client_from"] == "x-forwarded-for" for l in log)


# Requests nginx itself reads differently from the raw target ($uri is decoded and merged):
# with proxy_pass without a URI part nginx forwards the raw target, and X-Original-URI is
# $request_uri, so the gate checks what is forwarded; a $uri-based check would have passed
# "/v1/customers/..%2Fcharges" as charges while the API gets a customers path.
NGINX_ROWS = PATH_ROWS + [
    ("nginx_merges", "/v1/customers/../charges", 400, None),
    ("nginx_decodes_slash", "/v1/customers/..%2Fcharges", 400, None),
    ("nginx_merges_slashes", "/v1//customers/..//charges", 400, None),
]


@pytest.mark.parametrize("name,target,refuse,_rewrite", NGINX_ROWS, ids=[r[0] for r in NGINX_ROWS])
def test_nginx_path_table(raw_stack, name, target, refuse, _rewrite):
    up, gate = raw_stack["up"], raw_stack["gate"]
    before, logged = up.count(), len(gate.access())
    st, _, body = raw_http(raw_stack["port"], target,
                           [("Authorization", "Bearer " + raw_stack["rk"]["secret"])])
    # the gate logs just after answering: wait (bounded) when it was asked at all
    new = gate.access_wait(logged + 1, timeout=0.5 if up.count() == before else 5)[logged:]
    if up.count() == before:
        # refused, by nginx itself (before asking the gate) or by the gate
        assert st in (400, 403), (name, st, body)
        if refuse == 200:
            pytest.fail(f"{name}: a canonical charges request was refused ({st})")
        if new:
            assert new[-1]["decision"] == "deny"
            if st == 400:
                assert json.loads(body)["error"]["type"] == "invalid_request_error"
        return
    # forwarded: nginx sent exactly the path the gate decided on, and it is a charges path
    assert refuse == 200 and st == 200, (name, st, body)
    got = up.last()["target"]
    assert new and new[-1]["decision"] == "allow" and new[-1]["path"] == got.split("?")[0]
    assert backend_view(got).startswith("/v1/charges"), got


def test_nginx_ambiguous_requests_refused(raw_stack):
    up, port, rk = raw_stack["up"], raw_stack["port"], raw_stack["rk"]["secret"]
    before, n = up.count(), len(raw_stack["gate"].access())
    for fields in ([("Authorization", "Bearer " + rk), ("Authorization", "Bearer " + rk)],
                   [("Authorization", "Bearer " + rk), ("Proxy-Authorization", "Bearer " + rk)],
                   [("Authorization", "Bearer " + rk), ("X-HTTP-Method-Override", "DELETE")]):
        st, _, body = raw_http(port, "/v1/charges", fields)
        assert st == 400, (fields, body)
    assert up.count() == before
    log = raw_stack["gate"].access_wait(n + 2)
    # nginx itself refuses a second Authorization field; the gate refuses the rest
    assert {"proxy_authorization", "method_override"} <= {l["reason"] for l in log}
    # a client's own description of "the original request" never replaces nginx's
    st, _, body = raw_http(port, "/v1/customers", [
        ("Authorization", "Bearer " + rk), ("X-Forwarded-Uri", "/v1/charges"),
        ("X-Original-URI", "/v1/charges"), ("X-Forwarded-Method", "GET")])
    assert st == 403 and "rak_customer_read" in json.loads(body)["error"]["message"]
    assert up.count() == before
