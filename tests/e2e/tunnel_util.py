"""Helpers for `iplock tunnel` tests: psql through a tunnel to pg_util's cluster (the `pg_tcp`
fixture) and the tunnel process. Every process is stopped by its own handle; every wait is
bounded."""
import os
import socket
import subprocess
import time

from conftest import IPLOCK, stop_process, wait_port
from pg_util import USER as PG_USER


def psql(port, sql, timeout=20):
    env = dict(os.environ, PGCONNECT_TIMEOUT="10", PGSSLMODE="disable")
    return subprocess.run(["psql", "-X", "-h", "127.0.0.1", "-p", str(port), "-U", PG_USER,
                           "-d", "postgres", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          capture_output=True, text=True, timeout=timeout, env=env)


class Tunnel:
    def __init__(self, tmp, args, env=None, wait=()):
        self.stderr_path = os.path.join(str(tmp), f"tunnel-{time.monotonic_ns()}.stderr")
        self.proc = subprocess.Popen([IPLOCK, "tunnel", *args], stdout=subprocess.DEVNULL,
                                     stderr=open(self.stderr_path, "w"),
                                     env=dict(os.environ, **(env or {})))
        try:
            for port in wait:
                wait_port("127.0.0.1", port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(self.stderr())

    def stderr(self):
        with open(self.stderr_path) as f:
            return f.read()

    def stop(self):
        return stop_process(self.proc)


def wait_for(pred, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def closed_quickly(port, timeout=5.0):
    """Connect to a local tunnel port; True when the tunnel closes it without a byte."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        try:
            return s.recv(1) == b""
        except ConnectionResetError:
            return True
