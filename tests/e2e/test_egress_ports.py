"""EADDRNOTAVAIL from connect() is port exhaustion for one (egress, destination) pair, not a dead
egress address: the proxy tries the next address and keeps the first in rotation (issue 10).

Made real in a network namespace of our own (root only): ip_local_port_range is narrowed to a
few ports and every one of them is held by a live connection from 127.0.0.2 to the origin, so
the kernel answers a connect() from 127.0.0.2 to that origin with EADDRNOTAVAIL and nothing
else changes. The test's main thread enters the namespace (setns), so the origins, the proxy
and the clients it starts all live there; the finalizer leaves and deletes it."""
import ctypes
import errno
import os
import socket
import subprocess
import urllib.request

import pytest

from conftest import Origin, base_config, basic, free_port, raw_request

CLONE_NEWNET = 0x40000000
IP_BIND_ADDRESS_NO_PORT = 24
# four ephemeral ports, outside the default range: the listeners' free_port() picks, made
# before the range narrows, can never be among them
PORTS = (61000, 61003)


def _setns(fd):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")


@pytest.fixture
def netns():
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace")
    name = f"iplock-ports-{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"ip netns add: {r.stderr.strip()}")
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    ns = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        _setns(ns)
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        yield lambda: subprocess.run(["sysctl", "-q", "-w",
                                      f"net.ipv4.ip_local_port_range={PORTS[0]} {PORTS[1]}"],
                                     check=True)
    finally:
        _setns(home)
        os.close(home)
        os.close(ns)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def connect_from(src, port):
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    s.bind((src, 0))
    try:
        s.connect(("127.0.0.1", port))
    except OSError:
        s.close()
        raise
    return s


def get(proxy, port, path):
    return raw_request(proxy.port, (f"GET http://127.0.0.1:{port}{path} HTTP/1.1\r\n"
                                    f"Host: 127.0.0.1:{port}\r\nProxy-Authorization: {basic()}\r\n"
                                    "Connection: close\r\n\r\n").encode())


def metrics(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return dict(l.rsplit(" ", 1) for l in text.splitlines() if l and not l.startswith("#"))


def test_eaddrnotavail_tries_next_egress_and_keeps_first_up(netns, proxy_factory, password_hash):
    busy, other = Origin(), Origin()
    held = []
    try:
        aport = free_port()
        extra = f"egress_policy = primary\nadmin_listen = 127.0.0.1:{aport}\n"
        proxy = proxy_factory(base_config(busy.port, password_hash, extra_proxy=extra)
                              .replace(f"http_ports = 80 {busy.port}",
                                       f"http_ports = 80 {busy.port} {other.port}"))
        netns()   # from here on, four ephemeral ports; every listener is already bound
        # hold every ephemeral port from 127.0.0.2 to `busy` (chosen at connect, as the proxy's
        # are: a port taken by an explicit bind() would be closed to every address instead)
        for _ in range(PORTS[1] - PORTS[0] + 1):
            held.append(connect_from("127.0.0.2", busy.port))
        with pytest.raises(OSError) as ei:
            connect_from("127.0.0.2", busy.port)
        assert ei.value.errno == errno.EADDRNOTAVAIL
        connect_from("127.0.0.3", busy.port).close()     # the other address still has ports
        connect_from("127.0.0.2", other.port).close()    # and 127.0.0.2 to another destination

        # primary: 127.0.0.2 first, EADDRNOTAVAIL, then 127.0.0.3 for the same request
        for i in range(3):
            out = get(proxy, busy.port, f"/busy{i}")
            assert out.startswith(b"HTTP/1.1 200 "), out[:300]
        assert busy.peers() == ["127.0.0.3"] * 3
        m = metrics(aport)
        assert float(m['iplock_egress_connect_failures_total{egress="127.0.0.2"}']) >= 1, m
        # not marked down: still in rotation, and the next destination leaves from it again
        assert m['iplock_egress_up{egress="127.0.0.2"}'] == "1", m
        out = get(proxy, other.port, "/other")
        assert out.startswith(b"HTTP/1.1 200 "), out[:300]
        assert other.peers() == ["127.0.0.2"]
        assert "marked down" not in proxy.stderr.read_text()
        proxy.stop()
    finally:
        for s in held:
            s.close()
        busy.close()
        other.close()
