"""Gate fleet on PostgreSQL: several `iplock gate` processes on one database, changes made by
`iplock keys` in another process, propagation measured, reconnects, outages and on_stale.
Every server here is real: a throwaway cluster (pg_util) and the iplock binary."""
import http.client
import os
import signal
import statistics
import subprocess
import threading
import time

import pytest

from gate_util import IPLOCK, Gate, create_key, keys
# the `pg` fixture (the session's cluster) comes from conftest.py

AUTH = "/v1/charges"


class Probe:
    """One keep-alive connection to a forward-auth gate; ask(key) -> HTTP status."""

    def __init__(self, gate):
        self.gate = gate
        self.conn = None

    def ask(self, key, path=AUTH):
        for _ in range(3):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.gate.port, timeout=5)
                self.conn.request("GET", path, headers={"Authorization": "Bearer " + key})
                r = self.conn.getresponse()
                r.read()
                return r.status
            except (OSError, http.client.HTTPException):
                self.conn = None
        raise AssertionError("gate did not answer: " + self.gate.errors()[-2000:])

    def metrics(self):
        c = http.client.HTTPConnection("127.0.0.1", self.gate.port, timeout=5)
        c.request("GET", "/_iplock/metrics")
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        assert r.status == 200, body
        out = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                name, _, val = line.rpartition(" ")
                out[name.split("{")[0]] = float(val)
        return out


def start_gates(tmp, db, n, extra=""):
    gates = [Gate(tmp, db, mode="forward-auth", extra="metrics = on\n" + extra) for _ in range(n)]
    return gates, [Probe(g) for g in gates]


def stop_gates(gates):
    for g in gates:
        g.stop()


def make_keys(db, n, *args):
    return [create_key(db, "--type", "secret", *args) for _ in range(n)]


def db_revoked(pg, name):
    """{key id: revoked?} as the database has it."""
    rows = pg.sql("SELECT id, revoked_at IS NOT NULL FROM keys", db=name)
    return {r.split("|")[0]: r.split("|")[1] == "t" for r in rows.splitlines() if r}


def wait_converged(probes, ks, want, timeout=15.0):
    """Waits until every gate answers every key as the database says; returns mismatches."""
    deadline = time.monotonic() + timeout
    while True:
        bad = [(i, k["id"]) for i, p in enumerate(probes) for k in ks
               if (p.ask(k["secret"]) == 200) == want[k["id"]]]
        if not bad or time.monotonic() > deadline:
            return bad
        time.sleep(0.2)


def test_three_gates_see_revocation_from_a_fourth_process(pg, tmp_path):
    db, _ = pg.new_db()
    n = 60          # the 1,000-change figure is bench/gate_pg.py's; this checks the bound
    ks = make_keys(db, n)
    gates, probes = start_gates(tmp_path, db, 3)
    try:
        lat_exit, lat_start = [], []
        for k in ks:
            assert all(p.ask(k["secret"]) == 200 for p in probes)
            t_start = time.monotonic()
            keys(db, "revoke", k["id"])
            t0 = time.monotonic()
            pending = set(range(3))
            while pending:
                for i in list(pending):
                    if probes[i].ask(k["secret"]) == 401:
                        now = time.monotonic()
                        lat_exit.append(now - t0)
                        lat_start.append(now - t_start)
                        pending.discard(i)
                assert time.monotonic() - t0 < 2.0, "revocation not seen within 2 s"

        def q(v, f):
            return sorted(v)[min(len(v) - 1, int(len(v) * f))] * 1000
        print(f"\npropagation over {n} revocations x 3 gates, from the revoking command's exit: "
              f"p50 {q(lat_exit, .5):.2f} ms, p99 {q(lat_exit, .99):.2f} ms, "
              f"max {max(lat_exit) * 1000:.2f} ms; from its start (process start-up, connect, "
              f"commit included): p50 {q(lat_start, .5):.1f} ms, p99 {q(lat_start, .99):.1f} ms")
        print("slowest:", " ".join(f"{v * 1000:.0f}" for v in sorted(lat_exit)[-12:]), "ms")
        # the goal is 100 ms; a machine running more than a process per core (the shared test
        # box) only shows scheduling delay, so there the bound is looser and the figure printed
        load, cores = os.getloadavg()[0], os.cpu_count() or 1
        limit = 100.0 if load <= cores else 500.0
        if limit > 100.0:
            print(f"load {load:.1f} on {cores} cores: p99 judged against {limit:.0f} ms")
        assert q(lat_exit, .99) <= limit
        for p in probes:
            m = p.metrics()
            assert m["iplock_gate_store_connected"] == 1
            assert m["iplock_gate_keys"] == n
            assert m["iplock_gate_store_version"] == float(pg.sql(
                "SELECT v FROM iplock_version", db=db.rsplit("dbname=", 1)[1]))
    finally:
        stop_gates(gates)


def test_no_change_lost_across_db_restart_and_dropped_connections(pg, tmp_path):
    db, name = pg.new_db()
    ks = make_keys(db, 60)
    gates, probes = start_gates(tmp_path, db, 3, "resync = 0.5\n")
    stop = threading.Event()
    done = []

    def writer():
        # revokes keys one by one; a command that failed on the outage is retried
        for k in ks[::2]:
            while not stop.is_set():
                rc, _, err = keys(db, "revoke", k["id"], check=False)
                if rc == 0 or "already revoked" in err:
                    done.append(k["id"])
                    break
                time.sleep(0.05)
            time.sleep(0.02)
    try:
        t = threading.Thread(target=writer)
        t.start()
        time.sleep(0.3)
        # dropped connections: every session on the store's database but ours
        pg.sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' "
               "AND pid <> pg_backend_pid()")
        time.sleep(0.3)
        pg.stop("fast")
        time.sleep(0.5)
        pg.start()
        time.sleep(0.3)
        pg.sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' "
               "AND pid <> pg_backend_pid()")
        t.join(timeout=60)
        stop.set()
        assert len(done) == 30, done
        want = db_revoked(pg, name)
        assert sum(want.values()) == 30
        assert wait_converged(probes, ks, want) == []
        for p in probes:
            m = p.metrics()
            assert m["iplock_gate_store_reconnects_total"] >= 1
            assert m["iplock_gate_store_connected"] == 1
    finally:
        stop.set()
        pg.ensure_running()
        stop_gates(gates)


@pytest.mark.parametrize("on_stale", ["deny", "serve"])
def test_max_staleness_and_on_stale(pg, tmp_path, on_stale):
    db, _ = pg.new_db()
    good, gone = make_keys(db, 2)
    keys(db, "revoke", gone["id"])
    gates, probes = start_gates(tmp_path, db, 1,
                                f"resync = 0.2\nmax_staleness = 3\non_stale = {on_stale}\n")
    p = probes[0]
    try:
        assert p.ask(good["secret"]) == 200
        assert p.ask(gone["secret"]) == 401
        t0 = time.monotonic()
        pg.stop("fast")
        # within max_staleness (the last contact was at most resync before t0): from memory
        if time.monotonic() - t0 < 2:   # a stop slower than that on a loaded machine proves nothing
            assert p.ask(good["secret"]) == 200
        deadline = time.monotonic() + 15
        while p.metrics()["iplock_gate_store_stale"] != 1:
            assert time.monotonic() < deadline, "never went stale"
            time.sleep(0.1)
        assert time.monotonic() - t0 > 2.5   # not before max_staleness
        m = p.metrics()
        assert m["iplock_gate_store_connected"] == 0
        assert m["iplock_gate_store_stale"] == 1
        assert m["iplock_gate_store_staleness_seconds"] > 3
        if on_stale == "deny":
            assert p.ask(good["secret"]) == 503
        else:
            assert p.ask(good["secret"]) == 200
            assert p.ask(gone["secret"]) == 401
        pg.start()
        deadline = time.monotonic() + 15
        while p.metrics()["iplock_gate_store_stale"] == 1:
            assert time.monotonic() < deadline, "never reconnected"
            time.sleep(0.2)
        assert p.ask(good["secret"]) == 200
        # one line when the store went away, one when it came back: not one per retry
        errs = gates[0].errors()
        assert errs.count("unreachable") == 1, errs
        assert errs.count("reachable again") == 1, errs
    finally:
        pg.ensure_running()
        stop_gates(gates)


def test_one_mib_allowlist(pg, tmp_path, monkeypatch):
    db, _ = pg.new_db()
    entries = [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(1, 95001)]
    assert len(",".join(entries)) > 1 << 20
    chunks = [",".join(entries[i:i + 9000]) for i in range(0, len(entries), 9000)]
    args = []
    for c in chunks:
        args += ["--allow", c]
    k = create_key(db, "--type", "secret", *args)
    assert len(k["allow"]) == len(entries)
    # building a 95,000-range set is slow under ASan: give start-up more than the usual 10 s
    import conftest
    import gate_util
    monkeypatch.setattr(gate_util, "wait_port", lambda h, p: conftest.wait_port(h, p, 120))
    t0 = time.monotonic()
    gates, probes = start_gates(tmp_path, db, 1)
    print(f"\ngate start-up with one {len(entries)}-entry allowlist: "
          f"{time.monotonic() - t0:.2f} s")
    try:
        g = gates[0]
        # forward-auth: the client is the TCP peer; 127.0.0.1 is not in 10.0.0.0/8
        assert probes[0].ask(k["secret"]) == 401
        keys(db, "restrict", k["id"], "--allow", "127.0.0.1")
        deadline = time.monotonic() + 5
        while probes[0].ask(k["secret"]) != 200:
            assert time.monotonic() < deadline, g.errors()
            time.sleep(0.05)
    finally:
        stop_gates(gates)


def test_concurrent_writers(pg, tmp_path):
    db, name = pg.new_db()
    gates, probes = start_gates(tmp_path, db, 2)
    try:
        procs = [subprocess.Popen(
            ["sh", "-c", f'for i in $(seq 15); do "{IPLOCK}" keys --db "{db}" --json create '
                         '--type secret || exit 1; done'],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
        outs = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
        gens = pg.sql("SELECT gen FROM keys", db=name).split()
        assert len(gens) == 60 and len(set(gens)) == 60
        assert pg.sql("SELECT count(*) FROM audit WHERE action = 'create'", db=name) == "60"
        assert pg.sql("SELECT v FROM iplock_version", db=name) == str(max(map(int, gens)))
        deadline = time.monotonic() + 5
        while any(p.metrics()["iplock_gate_keys"] != 60 for p in probes):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        stop_gates(gates)


def test_kill9_writer_mid_transaction_changes_nothing(pg, tmp_path):
    db, name = pg.new_db()
    k = create_key(db, "--type", "secret")
    before = (pg.sql("SELECT v FROM iplock_version", db=name),
              pg.sql("SELECT count(*) FROM keys", db=name),
              pg.sql("SELECT count(*) FROM allow", db=name),
              pg.sql("SELECT count(*) FROM audit", db=name))
    # a session holding the audit table makes the writer stop right before its last write
    holder = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", f"{pg.base} dbname={name}"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    holder.stdin.write("BEGIN; LOCK TABLE audit IN EXCLUSIVE MODE; SELECT 'locked';\n")
    holder.stdin.flush()
    assert "locked" in holder.stdout.readline()
    w = subprocess.Popen([IPLOCK, "keys", "--db", db, "restrict", k["id"], "--allow", "10.0.0.0/8"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while pg.sql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}' "
                     "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO audit%'",
                     db=name) != "1":
            assert time.monotonic() < deadline, "writer never reached its audit record"
            time.sleep(0.05)
        os.kill(w.pid, signal.SIGKILL)
        w.wait(timeout=5)
    finally:
        holder.stdin.write("COMMIT;\n\\q\n")
        holder.stdin.flush()
        holder.wait(timeout=10)
    # the server notices the dead client and rolls its transaction back
    deadline = time.monotonic() + 10
    while pg.sql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}' "
                 "AND pid <> pg_backend_pid()", db=name) != "0":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    after = (pg.sql("SELECT v FROM iplock_version", db=name),
             pg.sql("SELECT count(*) FROM keys", db=name),
             pg.sql("SELECT count(*) FROM allow", db=name),
             pg.sql("SELECT count(*) FROM audit", db=name))
    assert after == before
    _, info, _ = keys(db, "show", k["id"])
    assert info["allow"] == []


def test_password_never_logged(pg, tmp_path):
    db = "postgresql://iplock:hunter2sekrit@127.0.0.1:1/nowhere"
    p = subprocess.run([IPLOCK, "keys", "--db", db, "list"], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 3
    assert "hunter2sekrit" not in p.stdout + p.stderr
    assert "iplock:***@127.0.0.1" in p.stderr
    cfg = tmp_path / "g.ini"
    cfg.write_text(f"[gate]\nlisten = 127.0.0.1:1\nmode = forward-auth\ndb = {db}\n")
    p = subprocess.run([IPLOCK, "gate", "-c", str(cfg)], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode != 0
    assert "hunter2sekrit" not in p.stdout + p.stderr and "***" in p.stderr


def test_read_only_role_for_gates(pg, tmp_path):
    """docs/gate.md's grants: the gate runs as a role that can only read."""
    db, name = pg.new_db()
    k = create_key(db, "--type", "secret")  # the key tools' role creates the schema
    pg.sql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'iplock_gate') THEN "
           "CREATE ROLE iplock_gate LOGIN; END IF; END $$", db=name)
    pg.sql("GRANT SELECT ON iplock_schema, iplock_version, keys, allow, perms TO iplock_gate",
           db=name)
    gdb = f"host={pg.dir} user=iplock_gate dbname={name}"
    gates, probes = start_gates(tmp_path, gdb, 1)
    try:
        assert probes[0].ask(k["secret"]) == 200
        keys(db, "revoke", k["id"])
        deadline = time.monotonic() + 2
        while probes[0].ask(k["secret"]) != 401:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        # and that role cannot change a key
        rc, _, err = keys(gdb, "revoke", k["id"], check=False)
        assert rc != 0
    finally:
        stop_gates(gates)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_key_usage_telemetry(pg, tmp_path, backend):
    """usage = on: per key the last use and client, per key and client hourly counts."""
    if backend == "sqlite":
        db = str(tmp_path / "keys.db")

        def sql(q):
            import sqlite3
            con = sqlite3.connect(db)
            try:
                return "\n".join("|".join(str(c) for c in r) for r in con.execute(q))
            finally:
                con.close()
    else:
        db, name = pg.new_db()

        def sql(q):
            return pg.sql(q, db=name)
    k = create_key(db, "--type", "secret", "--allow", "127.0.0.1")
    gates, probes = start_gates(tmp_path, db, 1, "usage = on\nusage_flush = 0.2\n")
    try:
        for _ in range(5):
            assert probes[0].ask(k["secret"]) == 200
        other = http.client.HTTPConnection("127.0.0.1", gates[0].port, timeout=5,
                                           source_address=("127.0.0.2", 0))
        for _ in range(2):
            other.request("GET", AUTH, headers={"Authorization": "Bearer " + k["secret"]})
            r = other.getresponse()
            r.read()
            assert r.status == 401
        other.close()
        # a batch is handed over at the first request after usage_flush: written while running
        time.sleep(0.3)
        assert probes[0].ask(k["secret"]) == 200
        deadline = time.monotonic() + 5
        while not sql(f"SELECT last_client FROM key_usage WHERE key_id = '{k['id']}'"):
            assert time.monotonic() < deadline, "usage never written while running"
            time.sleep(0.05)
        assert probes[0].ask(k["secret"]) == 200
    finally:
        stop_gates(gates)
    # the rest is written at exit
    rows = sql(f"SELECT client, allowed, denied FROM key_usage_hourly WHERE key_id = '{k['id']}' "
               "ORDER BY client")
    assert rows.splitlines() == ["127.0.0.1|7|0", "127.0.0.2|0|2"]
    last = sql(f"SELECT last_used, last_client FROM key_usage WHERE key_id = '{k['id']}'")
    t, client = last.split("|")
    assert client == "127.0.0.1" and abs(int(t) - time.time()) < 60
    # usage is not a key change: the version did not move
    if backend == "postgresql":
        assert sql("SELECT v FROM iplock_version") == "1"


def test_scan_revoke_on_postgresql_reaches_the_gates(pg, tmp_path):
    """A leak found by `iplock scan --revoke --db postgresql...` is refused by a running gate."""
    db, _ = pg.new_db()
    leaked, kept = make_keys(db, 2)
    gates, probes = start_gates(tmp_path, db, 1)
    try:
        src = tmp_path / "src"
        src.mkdir()
        (src / "deploy.env").write_text(f"STRIPE={leaked['secret']}\n")
        assert probes[0].ask(leaked["secret"]) == 200
        r = subprocess.run([IPLOCK, "scan", "--revoke", "--db", db, "--actor", "ci", str(src)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1, r.stderr
        assert "revoked 1 key" in r.stderr and leaked["secret"] not in r.stdout + r.stderr
        deadline = time.monotonic() + 2
        while probes[0].ask(leaked["secret"]) != 401:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert probes[0].ask(kept["secret"]) == 200
    finally:
        stop_gates(gates)
