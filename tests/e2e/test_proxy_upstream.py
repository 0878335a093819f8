"""The proxy's upstream side, driven with raw origins: the response's HTTP version, the connect
and idle timeouts, upstream keep-alive reuse and the one redial of a closed kept-alive upstream."""
import socket
import time

from conftest import base_config, basic, raw_request
from servers import TcpServer


class RawOrigin(TcpServer):
    """An origin on 127.0.0.1 that answers every request with `reply` (bytes) and records, per
    request, the peer (address, port) it came from. drop_reused: a second request on one
    connection is read and the connection closed without an answer (a kept-alive upstream that
    timed out just as the proxy reused it)."""

    def __init__(self, reply, drop_reused=False, pieces=1, close=False):
        # pieces: the reply is sent in that many writes, 20 ms apart; close: then the connection ends
        self.reply, self.drop_reused, self.pieces, self.close_after = reply, drop_reused, pieces, close
        self.requests = []
        super().__init__(self._serve)

    def _serve(self, c, peer):
        buf, served = b"", 0
        c.settimeout(10)
        while True:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            head, buf = buf.split(b"\r\n\r\n", 1)
            self.requests.append((peer, head.split(b"\r\n")[0]))
            if self.drop_reused and served:
                return
            step = -(-len(self.reply) // self.pieces)
            for i in range(0, len(self.reply), step):
                c.sendall(self.reply[i:i + step])
                if self.pieces > 1:
                    time.sleep(0.02)
            served += 1
            if self.close_after:
                return


def get(port, origin_port, path="/", n=1):
    def req(last):
        return (f"GET http://127.0.0.1:{origin_port}{path} HTTP/1.1\r\nHost: 127.0.0.1:{origin_port}\r\n"
                f"Proxy-Authorization: {basic()}\r\n{'Connection: close' + chr(13) + chr(10) if last else ''}"
                "\r\n").encode()
    # the last request asks the proxy to close, so the read ends at the answer, not a timeout
    return raw_request(port, b"".join(req(i == n - 1) for i in range(n)), timeout=5.0)


def test_http10_origin_status_line_carries_proxy_version(proxy_factory, password_hash):
    o = RawOrigin(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    try:
        p = proxy_factory(base_config(o.port, password_hash))
        out = get(p.port, o.port)
        assert out.startswith(b"HTTP/1.1 200 OK\r\n"), out[:80]
        assert out.endswith(b"\r\n\r\nhi")
    finally:
        o.close()


def test_upstream_keepalive_reused_then_redialled_once(proxy_factory, password_hash):
    o = RawOrigin(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    try:
        p = proxy_factory(base_config(o.port, password_hash).replace("egress = 127.0.0.2 127.0.0.3", "egress = 127.0.0.2"))
        out = get(p.port, o.port, n=3)
        assert out.count(b"HTTP/1.1 200 OK") == 3
        assert len({peer for peer, _ in o.requests}) == 1, o.requests   # one upstream connection
    finally:
        o.close()
    o2 = RawOrigin(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", drop_reused=True)
    try:
        p2 = proxy_factory(base_config(o2.port, password_hash).replace("egress = 127.0.0.2 127.0.0.3", "egress = 127.0.0.2"))
        with socket.create_connection(("127.0.0.1", p2.port), timeout=5) as s:
            req = (f"GET http://127.0.0.1:{o2.port}/ HTTP/1.1\r\nHost: x\r\n"
                   f"Proxy-Authorization: {basic()}\r\n\r\n").encode()
            for i in range(2):
                s.sendall(req)
                got = b""
                while not got.endswith(b"ok"):
                    d = s.recv(4096)
                    assert d, f"request {i}: proxy closed: {got!r}"
                    got += d
                assert got.startswith(b"HTTP/1.1 200 OK"), got
        # the second request was sent on the kept-alive connection, dropped, and redialled once
        peers = [peer for peer, _ in o2.requests]
        assert len(peers) == 3 and peers[0] == peers[1] != peers[2], o2.requests
    finally:
        o2.close()


def test_connect_timeout_gives_504_in_time(proxy_factory, password_hash):
    # a listener whose accept queue is full drops further SYNs: the connect hangs
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    port = ls.getsockname()[1]
    fillers = []
    try:
        for _ in range(3):
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(("127.0.0.1", port))
            fillers.append(f)
        time.sleep(0.2)
        p = proxy_factory(base_config(port, password_hash, extra_proxy="connect_timeout = 500ms"))
        t0 = time.time()
        out = get(p.port, port)
        took = time.time() - t0
        assert out.startswith(b"HTTP/1.1 504 "), out[:200]
        assert 0.4 < took < 3.0, took
    finally:
        for f in fillers:
            f.close()
        ls.close()


def test_idle_tunnel_closed_after_idle_timeout(proxy_factory, origin, password_hash):
    p = proxy_factory(base_config(origin.port, password_hash, extra_proxy="idle_timeout = 500ms"))
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
        s.sendall(f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1\r\nHost: x\r\n"
                  f"Proxy-Authorization: {basic()}\r\n\r\n".encode())
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        t0 = time.time()
        s.settimeout(5)
        assert s.recv(4096) == b""          # closed by the proxy, not by the client's timeout
        took = time.time() - t0
        assert 0.4 < took < 3.0, took


def test_response_framings_through_the_forward_path(proxy_factory, password_hash):
    """The streamed exchange (http/exchange): a head and body arriving in pieces, a chunked body
    kept chunked, and a body until close given to the client with Connection: close and ended by
    the proxy's close, complete."""
    cases = [
        (dict(reply=b"HTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\nabcdefghijklmnopqrstuvwxyz", pieces=5),
         b"abcdefghijklmnopqrstuvwxyz", False),
        (dict(reply=b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
              pieces=3), b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", False),
        (dict(reply=b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the origin closes", pieces=2,
              close=True), b"until the origin closes", True),
    ]
    for kw, body, closes in cases:
        o = RawOrigin(**kw)
        try:
            p = proxy_factory(base_config(o.port, password_hash))
            with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
                s.sendall((f"GET http://127.0.0.1:{o.port}/ HTTP/1.1\r\nHost: x\r\n"
                           f"Proxy-Authorization: {basic()}\r\n\r\n").encode())
                got, deadline = b"", time.monotonic() + 5
                while not got.endswith(body) and time.monotonic() < deadline:
                    d = s.recv(4096)
                    if not d:
                        break
                    got += d
                head, _, rest = got.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200 OK"), got
                assert rest == body, got
                assert (b"Connection: close" in head) == closes, head
                if closes:
                    s.settimeout(5)
                    assert s.recv(1) == b"", "until-close body: the proxy must close after it"
        finally:
            o.close()
