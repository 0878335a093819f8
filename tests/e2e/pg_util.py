"""A throwaway PostgreSQL cluster for the tests: initdb + pg_ctl from Debian's postgresql
package in a temporary folder, run as `nobody` when the tests run as root, listening only on a
unix socket in that folder. One per test session (the `pg` fixture); each test that needs a
store takes a fresh database from pg.new_db(). Stopped at session end. PgCluster(tcp=True) (the
`pg_tcp` fixture) also listens on 127.0.0.1:<pg.port> and trusts 127.0.0.0/8, for tests that
reach PostgreSQL over TCP (through `iplock tunnel` and the proxy's egress addresses)."""
import glob
import itertools
import os
import shutil
import subprocess
import tempfile

import pytest

USER = "iplock"     # the cluster's superuser; trust authentication, no password

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1] if glob.glob("/usr/lib/postgresql/*/bin") else None


def _as_owner(cmd):
    """Runs cmd (a list) as the cluster's owner: nobody when we are root."""
    if os.geteuid() == 0:
        cmd = ["su", "-s", "/bin/sh", "nobody", "-c", " ".join(f"'{c}'" for c in cmd)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


class PgDb(str):
    """A libpq connection string that knows its cluster and database name."""

    def __new__(cls, conninfo, cluster, name):
        o = super().__new__(cls, conninfo)
        o.cluster = cluster
        o.name = name
        return o


class PgCluster:
    def __init__(self, tcp=False):
        from conftest import free_port  # here: conftest imports this module
        if not PG_BIN:
            raise RuntimeError("no PostgreSQL server binaries (apt-get install postgresql)")
        self.dir = tempfile.mkdtemp(prefix="iplock-pg-")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "nobody")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.port = free_port() if tcp else None
        self.base = f"host={self.dir} user={USER}" + (f" port={self.port}" if tcp else "")
        self.serial = itertools.count(1)
        p = _as_owner([f"{PG_BIN}/initdb", "-D", self.data, "-U", USER, "-A", "trust",
                       "--no-sync", "-E", "UTF8"])
        if p.returncode:
            raise RuntimeError("initdb: " + p.stdout + p.stderr)
        if tcp:
            with open(os.path.join(self.data, "pg_hba.conf"), "a") as f:
                f.write("host all all 127.0.0.0/8 trust\n")
        self.start()

    def start(self):
        listen = f"127.0.0.1 -p {self.port}" if self.port else ""
        opts = (f"-c listen_addresses={listen} -c unix_socket_directories={self.dir} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        p = _as_owner([f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "30",
                       "-o", opts, "start"])
        if p.returncode:
            raise RuntimeError("pg_ctl start: " + p.stdout + p.stderr + self.server_log())

    def running(self):
        return _as_owner([f"{PG_BIN}/pg_ctl", "-D", self.data, "status"]).returncode == 0

    def ensure_running(self):
        """For a test's cleanup: a test that stopped the cluster and failed before restarting it
        must not take every later test of the session down with it."""
        if not self.running():
            self.start()

    def stop(self, mode="fast"):
        _as_owner([f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", mode, "-w", "stop"])

    def server_log(self):
        try:
            with open(self.log) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def sql(self, sql, db="postgres"):
        """Runs sql with psql; returns stdout (unaligned, tuples only)."""
        p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            f"{self.base} dbname={db}", "-c", sql],
                           capture_output=True, text=True, timeout=30)
        if p.returncode:
            raise AssertionError(f"psql {sql!r}: {p.stderr}")
        return p.stdout.strip()

    def new_db(self):
        """A fresh, empty database; returns (libpq connection string, database name)."""
        name = f"iplock_e{os.getpid()}_{next(self.serial)}"
        self.sql(f"CREATE DATABASE {name}")
        return f"{self.base} dbname={name}", name

    def new_pgdb(self):
        conninfo, name = self.new_db()
        return PgDb(conninfo, self, name)

    def close(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg():
    c = PgCluster()
    yield c
    c.close()


@pytest.fixture(scope="session")
def pg_tcp():
    """A second session cluster that also listens on 127.0.0.1:pg_tcp.port (started on first use)."""
    c = PgCluster(tcp=True)
    yield c
    c.close()
