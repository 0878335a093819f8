"""Helpers for `iplock tunnel` tests: a throwaway PostgreSQL cluster on loopback and the tunnel
process. Every process is stopped by its own handle; every wait is bounded."""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

from conftest import IPLOCK, free_port, wait_port


def pg_bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return os.path.dirname(found[-1]) if found else None


class Postgres:
    """initdb + pg_ctl in a temp dir, listening on a random 127.0.0.1 port, trust for
    127.0.0.0/8. As root the cluster runs as the postgres user (PostgreSQL refuses root)."""

    def __init__(self):
        self.bindir = pg_bindir()
        if not self.bindir:
            raise RuntimeError("PostgreSQL server binaries not found (Debian package postgresql)")
        self.dir = tempfile.mkdtemp(prefix="iplock-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.as_user = None
        if os.geteuid() == 0:
            self.as_user = "postgres"
            pw = pwd.getpwnam(self.as_user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync",
                  "-E", "UTF8", timeout=60)
        with open(os.path.join(self.data, "pg_hba.conf"), "a") as f:
            f.write("host all all 127.0.0.0/8 trust\n")
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w", "-t", "30",
                  "-o", f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off",
                  "start", timeout=45)
        wait_port("127.0.0.1", self.port)

    def _run(self, prog, *args, timeout=30):
        cmd = [os.path.join(self.bindir, prog), *args]
        if self.as_user:
            cmd = ["runuser", "-u", self.as_user, "--", *cmd]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"{prog} failed: {r.stdout}{r.stderr}")

    def stop(self):
        try:
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "-t", "20", "stop", timeout=30)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def psql(port, sql, timeout=20):
    env = dict(os.environ, PGCONNECT_TIMEOUT="10", PGSSLMODE="disable")
    return subprocess.run(["psql", "-X", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
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
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode


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
