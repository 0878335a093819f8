"""Regression: test_hangup_after_half_close_does_not_spin. A client that half-closes and then
resets while the other side stays silent left its socket hung up with interest 0; epoll reports
ERR/HUP whatever the interest (level-triggered), so the relay woke up forever and burnt a core.
Checked for the proxy's CONNECT relay, an inbound endpoint and `iplock tunnel`."""
import socket
import struct
import subprocess
import time

import pytest

from conftest import IPLOCK, free_port, wait_port
from servers import TcpServer


def cpu_ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def half_close_then_reset(port, first=b""):
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    if first:
        c.sendall(first)
        assert c.recv(100).startswith(b"HTTP/1.1 200")
    c.sendall(b"x")
    time.sleep(0.1)
    c.shutdown(socket.SHUT_WR)
    time.sleep(0.1)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()                                  # RST


def assert_idle(proc):
    time.sleep(0.2)
    a = cpu_ticks(proc.pid)
    time.sleep(1.0)
    used = cpu_ticks(proc.pid) - a
    assert used < 10, f"{used} ticks of CPU in 1 s with nothing to do"


@pytest.mark.parametrize("kind", ["connect", "inbound", "tunnel"])
def test_hangup_after_half_close_does_not_spin(kind, tmp_path):
    silent = TcpServer(None, backlog=8)    # accepts and holds connections, never writes
    pport, iport = free_port(), free_port()
    conf = tmp_path / "p.ini"
    conf.write_text(f"""[proxy]
listen = 127.0.0.1:{pport}
egress = 127.0.0.2
auth = none
open_proxy = yes
workers = 1
access_log = off
drain_timeout = 1s
allow_destinations = 127.0.0.1/32
connect_ports = {silent.port}

[inbound s]
listen = 127.0.0.1:{iport}
forward = 127.0.0.1:{silent.port}
""")
    procs = [subprocess.Popen([IPLOCK, "proxy", "-c", str(conf)], stderr=subprocess.DEVNULL)]
    try:
        wait_port("127.0.0.1", pport)
        if kind == "connect":
            half_close_then_reset(pport, f"CONNECT 127.0.0.1:{silent.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert_idle(procs[0])
        elif kind == "inbound":
            half_close_then_reset(iport)
            assert_idle(procs[0])
        else:
            local = free_port()
            procs.append(subprocess.Popen([IPLOCK, "tunnel", "--proxy", f"http://127.0.0.1:{pport}",
                                           f"{local}=127.0.0.1:{silent.port}"], stderr=subprocess.DEVNULL))
            wait_port("127.0.0.1", local)
            time.sleep(0.2)
            half_close_then_reset(local)
            assert_idle(procs[1])
            assert_idle(procs[0])
    finally:
        for p in procs:
            p.terminate()
            assert p.wait(timeout=10) == 0
        silent.close()
