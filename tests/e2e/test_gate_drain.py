"""The gate drains on SIGTERM as the proxy does: its listeners close, an idle keep-alive client
is closed, a request in flight still gets its whole 200, and the process exits 0; a second
signal stops it at once; drain_timeout bounds the wait. (Before: SIGTERM cut the request.)"""
import http.client
import signal
import socket
import threading
import time

from gate_util import Gate, Upstream, create_key

ROUTES = """
[route slow]
path = /slow*
resource = charge

[route hang]
path = /hang*
resource = charge

[route charges]
path = /v1/charges*
resource = charge
"""


def wait_for(pred, timeout=10, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def upstream_saw(up, prefix):
    with up.lock:
        return any(r["path"].startswith(prefix) for r in up.requests)


def start(tmp_path, db, extra=""):
    key = create_key(db, "--type", "secret")["secret"]
    up = Upstream()
    g = Gate(tmp_path, db, upstream_port=up.port, routes=ROUTES, extra=extra)
    return up, g, {"Authorization": f"Bearer {key}"}


def in_flight(g, path, auth, out):
    """A request on its own connection, its status and body (or the error) put in out."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", g.port, timeout=15)
        c.request("GET", path, headers=auth)
        r = c.getresponse()
        out["status"], out["body"] = r.status, r.read()
        c.close()
    except (OSError, http.client.HTTPException) as e:
        out["error"] = repr(e)


def test_sigterm_lets_the_request_in_flight_finish(tmp_path, store_db):
    up, g, auth = start(tmp_path, store_db(tmp_path))
    try:
        # an idle keep-alive client: one answered request, the connection left open
        idle = http.client.HTTPConnection("127.0.0.1", g.port, timeout=10)
        idle.request("GET", "/v1/charges", headers=auth)
        r = idle.getresponse()
        assert r.status == 200
        r.read()
        out = {}
        t = threading.Thread(target=in_flight, args=(g, "/slow/one", auth, out))
        t.start()
        wait_for(lambda: upstream_saw(up, "/slow"), what="the upstream to get /slow")
        g.proc.send_signal(signal.SIGTERM)
        t.join(15)
        assert out.get("status") == 200, out
        assert b'"/slow/one"' in out["body"]
        # the idle client was closed, not kept until the end
        idle.sock.settimeout(5)
        assert idle.sock.recv(1) == b""
        assert g.proc.wait(timeout=10) == 0
        # nothing listens any more
        s = socket.socket()
        try:
            assert s.connect_ex(("127.0.0.1", g.port)) != 0
        finally:
            s.close()
        assert "draining" in g.errors()
    finally:
        g.stop(check=False)
        up.close()


def test_second_signal_and_drain_timeout_stop_a_hanging_request(tmp_path, store_db):
    up, g, auth = start(tmp_path, store_db(tmp_path))          # drain_timeout 30 s: only the second signal ends it
    up2 = g2 = None
    try:
        out = {}
        t = threading.Thread(target=in_flight, args=(g, "/hang/a", auth, out))
        t.start()
        wait_for(lambda: upstream_saw(up, "/hang"), what="the upstream to get /hang")
        g.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert g.proc.poll() is None, "the gate stopped with a request in flight"
        t0 = time.time()
        g.proc.send_signal(signal.SIGTERM)
        assert g.proc.wait(timeout=5) == 0
        assert time.time() - t0 < 3
        t.join(15)
        assert "status" not in out or out["status"] != 200

        # drain_timeout = 500ms: the gate gives up on the hanging request by itself
        sub = tmp_path / "b"
        sub.mkdir()
        up2, g2, auth2 = start(sub, store_db(sub), extra="drain_timeout = 500ms")
        out2 = {}
        t2 = threading.Thread(target=in_flight, args=(g2, "/hang/b", auth2, out2))
        t2.start()
        wait_for(lambda: upstream_saw(up2, "/hang"), what="the upstream to get /hang")
        t0 = time.time()
        g2.proc.send_signal(signal.SIGTERM)
        assert g2.proc.wait(timeout=5) == 0
        assert 0.4 < time.time() - t0 < 3
        assert "drain_timeout reached" in g2.errors()
        t2.join(15)
    finally:
        g.stop(check=False)
        up.close()
        if g2:
            g2.stop(check=False)
        if up2:
            up2.close()
