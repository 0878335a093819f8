"""The fleet front (etc/nginx/iplock-gate-fleet.conf) with Debian's nginx in front of two
`iplock gate` nodes (mode = reverse-proxy) on one PostgreSQL database (pg_util's throwaway
cluster): requests spread over both nodes; a revocation made by `iplock keys` is refused
through nginx within 100 ms; the allowlist is checked against the real client (nginx's
X-Forwarded-For, the gates trusting nginx); one node killed, requests keep succeeding."""
import http.client
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from gate_util import IPLOCK, Gate, Upstream, create_key, curl, keys, wait_port
from servers import Nginx, have_nginx, nginx_example
# the `pg` fixture (the session's cluster) comes from conftest.py

MSG_IP = "The API key provided does not allow requests from your IP address."


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, pg):  # noqa: F811
    if not have_nginx():
        pytest.skip("nginx not installed")
    tmp = tmp_path_factory.mktemp("fleet")
    db, _ = pg.new_db()
    sk = create_key(db, "--type", "secret", "--allow", "127.0.0.2")
    up = Upstream()
    gates = [Gate(tmp, db, upstream_port=up.port, extra="trusted_proxies = 127.0.0.1")
             for _ in range(2)]
    ng = Nginx(tmp, nginx_example("iplock-gate-fleet.conf"), GATE_A_ADDR=f"127.0.0.1:{gates[0].port}",
               GATE_B_ADDR=f"127.0.0.1:{gates[1].port}")
    yield {"db": db, "sk": sk, "up": up, "gates": gates, "port": ng.port, "nginx": ng}
    ng.stop()
    for g in gates:
        if not g.stderr.closed:     # node A: stopped, or killed on purpose, by the last test
            g.stop(check=g.proc.returncode != -signal.SIGKILL)
    up.close()


class Client:
    """One keep-alive connection to nginx; get(key) -> (status, body)."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def get(self, key, path="/v1/charges"):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            self.conn.request("GET", path, headers={"Authorization": "Bearer " + key})
            r = self.conn.getresponse()
            return r.status, r.read()
        except (OSError, http.client.HTTPException):
            self.conn = None
            raise


def served(gates):
    return [len(g.access_wait(0)) for g in gates]   # access_wait: a line being written


def test_fleet_spreads_requests(fleet):
    k = create_key(fleet["db"], "--type", "secret")
    before = served(fleet["gates"])
    c = Client(fleet["port"])
    for _ in range(20):
        st, body = c.get(k["secret"])
        assert st == 200, body
    # each gate logs a request just after answering it: wait (bounded) for all 20 lines
    deadline = time.monotonic() + 5
    while True:
        got = [a - b for a, b in zip(served(fleet["gates"]), before)]
        if sum(got) >= 20 or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert sum(got) == 20 and min(got) >= 5, got     # round robin: about 10 each


def test_fleet_revocation_within_100ms(fleet):
    db, c = fleet["db"], Client(fleet["port"])
    k = create_key(db, "--type", "secret")
    # both nodes know the key before it is revoked
    deadline = time.monotonic() + 10
    while not all(c.get(k["secret"])[0] == 200 for _ in range(4)):
        assert time.monotonic() < deadline, "the new key never reached both nodes"
        time.sleep(0.01)
    keys(db, "revoke", k["id"])
    t0 = time.monotonic()
    run = 0
    # refused by both nodes: 4 refusals in a row cover each round-robin node twice
    while run < 4:
        st, body = c.get(k["secret"])
        run = run + 1 if st == 401 else 0
        if st == 401:
            assert "Invalid API Key" in json.loads(body)["error"]["message"]
        assert time.monotonic() - t0 < 5, "revocation never reached both nodes"
    took = time.monotonic() - t0
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    limit = 0.1 if load < cores else 0.5       # same rule as test_gate_pg.py
    print(f"revocation refused through nginx by both nodes after {took * 1000:.1f} ms "
          f"(load {load:.1f})")
    assert took < limit, f"{took * 1000:.0f} ms at load {load:.1f}"


def test_fleet_allowlist_uses_real_client(fleet):
    url = f"http://127.0.0.1:{fleet['port']}/v1/charges"
    sk, up = fleet["sk"], fleet["up"]
    auth = ("-H", "Authorization: Bearer " + sk["secret"])
    # several requests so both nodes decide; nginx connects from 127.0.0.1, which is not in
    # the allowlist: a 200 means the gate used nginx's X-Forwarded-For
    for _ in range(4):
        st, body, _ = curl(url, *auth, source="127.0.0.2")
        assert st == 200, body
        assert up.requests[-1]["headers"]["x-iplock-client"] == "127.0.0.2"
        st, body, _ = curl(url, *auth, source="127.0.0.5")
        assert st == 401 and json.loads(body)["error"]["message"] == MSG_IP
        # a client's own X-Forwarded-For is never taken as the client
        st, body, _ = curl(url, *auth, "-H", "X-Forwarded-For: 127.0.0.2", source="127.0.0.5")
        assert st == 401 and json.loads(body)["error"]["message"] == MSG_IP


def traffic_while(port, key, action, threads=3):
    """Runs GETs on `threads` keep-alive connections, calls action() 0.3 s in, goes on for
    1 s; returns (results before action, all results): a status or the exception's repr."""
    results, stop = [], threading.Event()

    def loop():
        cl = Client(port)
        while not stop.is_set():
            try:
                results.append(cl.get(key)[0])
            except (OSError, http.client.HTTPException) as e:
                results.append(repr(e))

    ts = [threading.Thread(target=loop) for _ in range(threads)]
    for t in ts:
        t.start()
    time.sleep(0.3)
    n_before = len(results)
    action()
    time.sleep(1.0)
    stop.set()
    for t in ts:
        t.join(timeout=10)
    return n_before, results


def check_survived(n_before, results, threads=3):
    assert n_before > 0 and len(results) > n_before + 10, len(results)
    # Every request nginx had not yet got an answer for is moved to the other node: no 502
    # ever. A response whose head nginx had already passed on cannot be retried by any proxy
    # (the gate stops at once, no drain): at most one cut body per connection in flight.
    statuses = [r for r in results if isinstance(r, int)]
    assert set(statuses) == {200}, sorted(set(statuses))
    cut = [r for r in results if not isinstance(r, int)]
    assert len(cut) <= threads and all("IncompleteRead" in r for r in cut), cut


def test_fleet_survives_a_stopped_or_killed_node(fleet):
    """Last in this file: it ends with node A killed. Traffic runs while A gets SIGTERM, then
    (restarted) SIGKILL; nginx moves each failed connection to node B."""
    k = create_key(fleet["db"], "--type", "secret")
    a, b = fleet["gates"]
    c = Client(fleet["port"])
    deadline = time.monotonic() + 10
    while not all(c.get(k["secret"])[0] == 200 for _ in range(4)):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    check_survived(*traffic_while(fleet["port"], k["secret"], a.stop))
    # A again, from its own config (same port), until nginx sends it requests again
    a.stderr = open(a.tmp / f"gate-{a.port}.err", "a+")
    a.proc = subprocess.Popen([IPLOCK, "gate", "-c", str(a.config)],
                              stdout=subprocess.DEVNULL, stderr=a.stderr)
    wait_port("127.0.0.1", a.port)
    n = len(a.access())
    deadline = time.monotonic() + 15          # fail_timeout (5 s) must pass first
    while len(a.access()) <= n:
        assert time.monotonic() < deadline, "nginx never came back to the restarted node"
        assert c.get(k["secret"])[0] == 200
        time.sleep(0.05)

    def kill():
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(timeout=5)
    check_survived(*traffic_while(fleet["port"], k["secret"], kill))
    # and afterwards node B takes everything
    b_before = len(b.access())
    for _ in range(6):
        assert c.get(k["secret"])[0] == 200
    assert len(b.access_wait(b_before + 6)) >= b_before + 6
