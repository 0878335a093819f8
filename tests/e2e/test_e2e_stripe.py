"""The whole system with the real clients our users run, untouched: `iplock proxy` (egress
127.0.0.2 and 127.0.0.3) -> `iplock gate` with TLS (a test CA) -> a fake Stripe API, keys made
with `iplock keys`. Debian's python3-stripe (stripe.proxy / api_base / ca_bundle_path), npm
stripe with https-proxy-agent, curl and Python requests (proxy URL and HTTPS_PROXY).

Scenarios: both egress addresses allowlisted (also with an https:// proxy URL); only one (SDK AuthenticationError with Stripe's
IP message, `iplock verify --api` names the missing address, the fix works); a leaked key
used from 127.0.0.5 without the proxy; a restricted key without charge write (PermissionError);
rotation with --expire-old 1h (old and new keys both work, allowlist inherited)."""
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import IPLOCK, PASSWORD, Proxy, base_config, free_port
from gate_util import Gate, create_key, keys
from verify_util import FakeStripe, make_ca, verify, verify_json

JS = Path(__file__).parent / "js"
IP_MSG = "The API key provided does not allow requests from your IP address."
ROUTES = """
[route charges]
path = /v1/charges*
resource = charge

[route balance]
path = /v1/balance*
resource = balance
"""

# Configured exactly as users do; one process per scenario because python3-stripe keeps the
# proxy in a module-level HTTP client made at the first request. python3-stripe 5 uses requests.
PY_STRIPE = r"""
import json, sys
import stripe
cfg = json.loads(sys.argv[1])
stripe.api_key = cfg["key"]
stripe.proxy = cfg.get("proxy")
stripe.api_base = cfg["api_base"]
stripe.ca_bundle_path = cfg["ca"]
stripe.max_network_retries = 0
out = []
for _ in range(cfg.get("n", 1)):
    try:
        ch = stripe.Charge.create(amount=2000, currency="usd", source="tok_visa", description="Order #12345")
        out.append({"ok": True, "id": ch.id, "status": ch.status, "amount": ch.amount,
                    "client": type(stripe.default_http_client).__name__})
    except stripe.error.StripeError as e:
        out.append({"ok": False, "cls": type(e).__name__, "http_status": e.http_status,
                    "message": e.user_message or str(e)})
print(json.dumps(out))
"""

NODE_STRIPE = r"""
const Stripe = require('stripe');
const { HttpsProxyAgent } = require('https-proxy-agent');
const cfg = JSON.parse(process.argv[1]);
const stripe = new Stripe(cfg.key, {
  httpAgent: new HttpsProxyAgent(cfg.proxy), host: '127.0.0.1', port: cfg.port, protocol: 'https',
  maxNetworkRetries: 0,
});
(async () => {
  const out = [];
  for (let i = 0; i < (cfg.n || 1); i++) {
    try {
      const ch = await stripe.charges.create({ amount: 2000, currency: 'usd', source: 'tok_visa',
                                               description: 'Order #12345' });
      out.push({ ok: true, id: ch.id, status: ch.status, amount: ch.amount });
    } catch (e) {
      out.push({ ok: false, cls: e.type, http_status: e.statusCode, message: e.message });
    }
  }
  console.log(JSON.stringify(out));
})();
"""


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(extra)
    return env


class World:
    def __init__(self, tmp, password_hash):
        self.tmp = tmp
        self.ca, crt, key = make_ca(tmp / "pki")
        self.api = FakeStripe()
        self.db = tmp / "keys.db"
        keys(self.db, "list")   # creates the store
        self.gate = Gate(tmp, self.db, upstream_port=self.api.port, listen_opts={"tls": "tls"},
                         extra=f"tls_cert = {crt}\ntls_key = {key}\naccount = acct_1IplockTest", routes=ROUTES)
        self.gport = self.gate.ports["tls"]
        self.base = f"https://127.0.0.1:{self.gport}"
        d = tmp / "proxy"
        d.mkdir()
        self.tls_port = free_port()   # the proxy's TLS listener (an https:// proxy URL)
        self.proxy = Proxy(d, base_config(self.gport, password_hash, extra_proxy=(
            f"tls_listen = 127.0.0.1:{self.tls_port}\ntls_cert = {crt}\ntls_key = {key}")))

    def proxy_url(self, pin=None, tls=False):
        url = self.proxy.url(user=f"alice+egress={pin}" if pin else "alice")
        return url.replace("http://", "https://", 1).replace(f":{self.proxy.port}", f":{self.tls_port}") if tls else url

    def py_stripe(self, key, proxy=None, n=1, pin=None):
        cfg = {"key": key, "proxy": proxy or self.proxy_url(pin), "api_base": self.base, "ca": str(self.ca), "n": n}
        r = subprocess.run(["/usr/bin/python3", "-c", PY_STRIPE, json.dumps(cfg)], capture_output=True,
                           text=True, timeout=60, env=clean_env())
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout.strip().splitlines()[-1])

    def node_stripe(self, key, n=1, pin=None, proxy=None):
        cfg = {"key": key, "proxy": proxy or self.proxy_url(pin), "port": self.gport, "n": n}
        r = subprocess.run(["node", "-e", NODE_STRIPE, json.dumps(cfg)], cwd=JS, capture_output=True, text=True,
                           timeout=60, env=clean_env(NODE_EXTRA_CA_CERTS=str(self.ca)))
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout.strip().splitlines()[-1])

    def curl_charge(self, key, proxy=None, env_proxy=None, source=None):
        cmd = ["curl", "-s", "--max-time", "10", "--cacert", str(self.ca), "-u", f"{key}:",
               "-d", "amount=2000", "-d", "currency=usd", "-d", "source=tok_visa", "--data-urlencode",
               "description=Order #12345", "-w", "\n%{http_code}"]
        if proxy:
            cmd += ["-x", proxy]
        if source:
            cmd += ["--interface", source]
        env = clean_env(**({"HTTPS_PROXY": env_proxy} if env_proxy else {}))
        r = subprocess.run(cmd + [f"{self.base}/v1/charges"], capture_output=True, text=True, timeout=30, env=env)
        body, _, code = r.stdout.rpartition("\n")
        return int(code or 0), json.loads(body) if body.strip() else None

    def verify_api(self, key, *extra):
        return verify_json("--proxy", self.proxy_url(), "--api", self.base, "--key", key,
                           "--cacert", str(self.ca), *extra)

    def close(self):
        rc = self.proxy.stop()
        self.gate.stop()
        self.api.close()
        assert rc == 0, self.proxy.stderr.read_text()[-2000:]


@pytest.fixture(scope="module")
def world(tmp_path_factory, password_hash):
    w = World(tmp_path_factory.mktemp("stripe"), password_hash)
    yield w
    w.close()


def assert_charge(res):
    assert res["ok"], res
    assert res["status"] == "succeeded" and res["amount"] == 2000 and res["id"].startswith("ch_")


def test_both_egress_allowlisted_every_client_succeeds(world, monkeypatch):
    import requests
    k = create_key(world.db, "--type", "secret", "--mode", "test", "--name", "both",
                   "--allow", "127.0.0.2", "--allow", "127.0.0.3")
    world.api.clear()
    py = world.py_stripe(k["secret"], n=2)
    for res in py:
        assert_charge(res)
    assert py[0]["client"] == "RequestsClient"
    for res in world.node_stripe(k["secret"], n=2):
        assert_charge(res)
    for _ in range(2):
        status, body = world.curl_charge(k["secret"], proxy=world.proxy_url())
        assert status == 200 and body["object"] == "charge"
    status, body = world.curl_charge(k["secret"], env_proxy=world.proxy_url())
    assert status == 200 and body["status"] == "succeeded"
    data = {"amount": 2000, "currency": "usd", "source": "tok_visa", "description": "Order #12345"}
    url = f"{world.base}/v1/charges"
    for kw in ({"proxies": {"https": world.proxy_url()}},):
        r = requests.post(url, auth=(k["secret"], ""), data=data, verify=str(world.ca), timeout=10, **kw)
        assert r.status_code == 200 and r.json()["object"] == "charge"
    for var in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", world.proxy_url())
    r = requests.post(url, auth=(k["secret"], ""), data=data, verify=str(world.ca), timeout=10)
    assert r.status_code == 200 and r.json()["paid"] is True
    # every call reached the API, from both egress addresses and from nothing else
    clients = world.api.clients()
    assert len(clients) == 9 and set(clients) == {"127.0.0.2", "127.0.0.3"}, clients
    deadline = time.time() + 5   # a tunnel's log line is written when it closes
    while {l["egress"] for l in world.proxy.log_lines() if l.get("egress")} != {"127.0.0.2", "127.0.0.3"}:
        assert time.time() < deadline, world.proxy.log_lines()
        time.sleep(0.05)
    rc, out, _ = world.verify_api(k["secret"])
    assert rc == 0 and out["ok"], out
    assert [(r["egress"], r["verdict"], r["status"]) for r in out["results"]] == [
        ("127.0.0.2", "accepted", 200), ("127.0.0.3", "accepted", 200)]
    assert out["key"] == k["masked"] and k["secret"] not in json.dumps(out)


def test_one_egress_allowlisted_half_fails_and_verify_names_the_fix(world):
    k = create_key(world.db, "--type", "secret", "--mode", "test", "--name", "half", "--allow", "127.0.0.2")
    assert_charge(world.py_stripe(k["secret"], pin=1)[0])
    res = world.py_stripe(k["secret"], pin=2)[0]
    assert not res["ok"] and res["cls"] == "AuthenticationError" and res["http_status"] == 401
    assert IP_MSG in res["message"]
    assert_charge(world.node_stripe(k["secret"], pin=1)[0])
    res = world.node_stripe(k["secret"], pin=2)[0]
    assert res["cls"] == "StripeAuthenticationError" and res["http_status"] == 401 and IP_MSG in res["message"]
    # round-robin without a pin: some calls through each address, the ones via .3 fail
    results = world.py_stripe(k["secret"], n=1) + world.py_stripe(k["secret"], n=1)
    assert sorted(r["ok"] for r in results) == [False, True]

    r = verify("--proxy", world.proxy_url(), "--api", world.base, "--key", k["secret"], "--cacert", str(world.ca))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "missing 1 of the 2 egress addresses: 127.0.0.3" in r.stdout
    assert "iplock keys restrict KEY_ID --allow 127.0.0.3" in r.stdout
    assert k["secret"] not in r.stdout + r.stderr and k["masked"] in r.stdout and PASSWORD not in r.stdout
    rc, out, _ = world.verify_api(k["secret"], "--db", str(world.db))
    assert rc == 1 and out["not_allowed"] == ["127.0.0.3"] and out["key_id"] == k["id"]
    assert {r["egress"]: r["verdict"] for r in out["results"]} == {"127.0.0.2": "accepted", "127.0.0.3": "ip_not_allowed"}
    assert out["fix"] == f"iplock keys --db {world.db} restrict {k['id']} --allow 127.0.0.3"
    # the fix verify printed, pasted as is: the next request already passes
    subprocess.run([IPLOCK] + out["fix"].split()[1:], check=True, capture_output=True, timeout=20)
    rc, out, _ = world.verify_api(k["secret"])
    assert rc == 0, out
    assert_charge(world.py_stripe(k["secret"], pin=2)[0])


def test_leaked_key_from_another_address_is_refused(world):
    k = create_key(world.db, "--type", "secret", "--mode", "test", "--allow", "127.0.0.2", "--allow", "127.0.0.3")
    world.api.clear()
    status, body = world.curl_charge(k["secret"], source="127.0.0.5")   # no proxy: straight from .5
    assert status == 401 and body["error"]["message"].startswith(IP_MSG)
    assert body["error"]["type"] == "invalid_request_error"
    assert world.api.clients() == []
    # and verify says so when no address of the pool is allowed
    k2 = create_key(world.db, "--type", "secret", "--mode", "test", "--allow", "127.0.0.5")
    r = verify("--proxy", world.proxy_url(), "--api", world.base, "--key", k2["secret"], "--cacert", str(world.ca))
    assert r.returncode == 1 and "missing 2 of the 2 egress addresses: 127.0.0.2 127.0.0.3" in r.stdout
    assert "no request through this proxy is accepted" in r.stdout


def test_restricted_key_without_charge_write_gets_permission_error(world):
    k = create_key(world.db, "--type", "restricted", "--mode", "test", "--perm", "charge=read",
                   "--perm", "balance=read", "--allow", "127.0.0.2", "--allow", "127.0.0.3")
    res = world.py_stripe(k["secret"])[0]
    assert res["cls"] == "PermissionError" and res["http_status"] == 403
    assert "rak_charge_write" in res["message"] and "acct_1IplockTest" in res["message"]
    res = world.node_stripe(k["secret"])[0]
    assert res["cls"] == "StripePermissionError" and res["http_status"] == 403
    # its read permission is enough for verify's GET /v1/balance
    rc, out, _ = world.verify_api(k["secret"])
    assert rc == 0 and {r["verdict"] for r in out["results"]} == {"accepted"}


def test_rotation_keeps_working_clients_working(world):
    k = create_key(world.db, "--type", "secret", "--mode", "test", "--name", "rot",
                   "--allow", "127.0.0.2", "--allow", "127.0.0.3")
    assert_charge(world.py_stripe(k["secret"])[0])
    _, new, _ = keys(world.db, "rotate", k["id"], "--expire-old", "1h")
    assert new["allow"] == ["127.0.0.2", "127.0.0.3"] and new["rotated_from"] == k["id"]
    for key in (k["secret"], new["secret"]):
        for res in world.py_stripe(key, n=2) + world.node_stripe(key):
            assert_charge(res)
        rc, out, _ = world.verify_api(key)
        assert rc == 0, out
    # the inherited allowlist is enforced on the new key too
    status, body = world.curl_charge(new["secret"], source="127.0.0.5")
    assert status == 401 and body["error"]["message"].startswith(IP_MSG)


def test_verify_api_failures(world, tmp_path):
    k = create_key(world.db, "--type", "secret", "--mode", "test")
    # the gate's CA not given: every address fails the TLS handshake, one line names it
    r = verify("--proxy", world.proxy_url(), "--api", world.base, "--key", k["secret"])
    assert r.returncode == 3 and "certificate verify failed" in r.stderr
    assert k["secret"] not in r.stdout + r.stderr
    # an unknown key: rejected with Stripe's message, key masked
    bogus = "sk_test_" + "Z" * 99
    rc, out, _ = world.verify_api(bogus)
    assert rc == 1 and {r["verdict"] for r in out["results"]} == {"rejected"}
    assert "Invalid API Key provided: sk_test_****ZZZZ" in out["results"][0]["detail"]
    assert bogus not in json.dumps(out)
    # an API that echoes the key in its message: verify masks it before printing
    r = verify("--proxy", world.proxy_url(), "--api", world.base, "--key", k["secret"], "--cacert", str(world.ca),
               "--path", "/v1/careless")
    assert r.returncode == 1 and "No such object for Bearer " + k["masked"] in r.stdout
    assert k["secret"] not in r.stdout + r.stderr
    # the key from a file (kept out of ps) and --path
    kf = tmp_path / "key"
    kf.write_text(k["secret"] + "\n")
    r = verify("--proxy", world.proxy_url(), "--api", world.base, "--key-file", str(kf),
               "--cacert", str(world.ca), "--path", "/v1/balance")
    assert r.returncode == 0, r.stdout


def test_https_proxy_url_end_to_end(world):
    """TLS to the proxy too (credentials and CONNECT target never in cleartext), then the
    client's own TLS to the gate inside the tunnel."""
    k = create_key(world.db, "--type", "secret", "--mode", "test", "--allow", "127.0.0.2", "--allow", "127.0.0.3")
    url = world.proxy_url(tls=True)
    world.api.clear()
    for res in world.py_stripe(k["secret"], proxy=url, n=2) + world.node_stripe(k["secret"], proxy=url):
        assert_charge(res)
    r = subprocess.run(["curl", "-s", "--max-time", "10", "--proxy", url, "--proxy-cacert", str(world.ca),
                        "--cacert", str(world.ca), "-u", f"{k['secret']}:", f"{world.base}/v1/balance"],
                       capture_output=True, text=True, timeout=30, env=clean_env())
    assert json.loads(r.stdout)["object"] == "balance"
    assert len(world.api.clients()) == 4
    rc, out, _ = verify_json("--proxy", url, "--proxy-cacert", str(world.ca), "--api", world.base,
                             "--key", k["secret"], "--cacert", str(world.ca))
    assert rc == 0 and [r["verdict"] for r in out["results"]] == ["accepted", "accepted"], out
    assert out["proxy"] == f"https://alice:****@127.0.0.1:{world.tls_port}"
