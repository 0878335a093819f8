"""Destination names through c-ares against a DNS server of the test's own (UDP, loopback):
answers cached per TTL, every address of a name checked (one forbidden record refuses the
request: fail closed), unknown names 502."""
import socket
import struct
import subprocess
import threading
import time
from collections import Counter

import pytest

from conftest import base_config

CURL = ["curl", "-s", "--max-time", "10"]


class DnsServer:
    def __init__(self, records):
        self.records = records            # name -> [(ipv4, ttl)]
        self.queries = Counter()          # (name, qtype) -> count
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.t = threading.Thread(target=self.serve, daemon=True)
        self.t.start()

    def serve(self):
        while not self.stop:
            try:
                data, addr = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            try:
                self.sock.sendto(self.answer(data), addr)
            except Exception:
                pass

    def answer(self, q):
        qid, flags, qd = struct.unpack(">HHH", q[:6])
        i, labels = 12, []
        while q[i]:
            labels.append(q[i + 1:i + 1 + q[i]].decode())
            i += 1 + q[i]
        qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
        question = q[12:i + 5]
        name = ".".join(labels).lower()
        self.queries[(name, qtype)] += 1
        if name not in self.records:
            return struct.pack(">HHHHHH", qid, 0x8183, 1, 0, 0, 0) + question
        answers = b""
        n = 0
        if qtype == 1:
            for ip, ttl in self.records[name]:
                answers += struct.pack(">HHHIH", 0xC00C, 1, 1, ttl, 4) + socket.inet_aton(ip)
                n += 1
        return struct.pack(">HHHHHH", qid, 0x8180, 1, n, 0, 0) + question + answers

    def close(self):
        self.stop = True
        self.t.join(timeout=2)
        self.sock.close()


@pytest.fixture
def dns():
    d = DnsServer({
        "origin.test": [("127.0.0.1", 2)],
        "mixed.test": [("127.0.0.1", 60), ("10.0.0.7", 60)],
        "private.test": [("10.1.2.3", 60)],
        "meta.test": [("169.254.169.254", 60)],
    })
    yield d
    d.close()


@pytest.fixture
def dproxy(proxy_factory, origin, password_hash, dns):
    return proxy_factory(base_config(origin.port, password_hash, extra_proxy="workers = 1"),
                         extra_args=("--dns-servers", f"127.0.0.1:{dns.port}"))


def status(p, url, connect=False):
    r = subprocess.run([*CURL, "-o", "/dev/null", "-w", "%{http_code}", *(["-p"] if connect else []),
                        "-x", p.url(), url], capture_output=True, timeout=30)
    return r.stdout.decode()


def test_name_resolves_and_ttl_cache(dproxy, origin, dns):
    origin.clear()
    for _ in range(3):
        assert status(dproxy, f"http://origin.test:{origin.port}/a") == "200"
    assert dns.queries[("origin.test", 1)] == 1          # answered from the cache twice
    time.sleep(2.6)                                        # TTL 2 s has run out
    assert status(dproxy, f"http://origin.test:{origin.port}/b", connect=True) == "200"
    assert dns.queries[("origin.test", 1)] == 2
    assert set(origin.peers()) <= {"127.0.0.2", "127.0.0.3"} and len(origin.peers()) == 4


def test_mixed_records_fail_closed(dproxy, origin, dns):
    origin.clear()
    assert status(dproxy, f"http://mixed.test:{origin.port}/m") == "403"
    assert status(dproxy, f"http://mixed.test:{origin.port}/m", connect=True) in ("403", "000")
    assert origin.peers() == []


def test_private_and_metadata_names_refused(dproxy, origin):
    assert status(dproxy, f"http://private.test:{origin.port}/") == "403"
    assert status(dproxy, "http://meta.test/latest/meta-data/") == "403"


def test_unknown_name_502(dproxy, origin):
    assert status(dproxy, f"http://nope.test:{origin.port}/") == "502"
