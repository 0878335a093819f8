"""Side by side, one run: the same forward-auth gate with the same 1,000 keys on SQLite and on
PostgreSQL, and nginx answering 200 at the same location, all with one worker (wrk,
keep-alive, interleaved rounds, medians of req/s and of server CPU per request; any non-2xx
answer fails the run), then propagation from
commit to enforcement on 3 PostgreSQL nodes over N changes (p50/p99/max), beside the same for
SQLite's data_version polling (3 gates on one file). Short by default (2 shared cores):
  IPLOCK_BIN=build/iplock /usr/bin/python3 bench/gate_pg.py [SECS] [ROUNDS] [CHANGES]"""
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
from gate_util import Gate, create_key, keys  # noqa: E402
from pg_util import PgCluster  # noqa: E402
import servers  # noqa: E402
from test_gate_pg import Probe  # noqa: E402

SECS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
CHANGES = int(sys.argv[3]) if len(sys.argv) > 3 else 200


def fill(db, n):
    ks = [create_key(db, "--type", "secret") for _ in range(n)]
    return ks


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(port, key, pid):
    """(req/s, server CPU µs per request) of one wrk round; any non-2xx answer fails the run."""
    lua = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    lua.write(f'wrk.headers["Authorization"] = "Bearer {key}"\n')
    lua.close()
    c0 = cpu_seconds(pid)
    out = subprocess.run(["wrk", "-t1", "-c20", f"-d{SECS}s", "-s", lua.name,
                          f"http://127.0.0.1:{port}/v1/charges"],
                         capture_output=True, text=True).stdout
    c1 = cpu_seconds(pid)
    os.unlink(lua.name)
    if "Non-2xx" in out or "Socket errors" in out:
        sys.exit("bench/gate_pg: a round had errors or non-2xx answers:\n" + out)
    m = re.search(r"(\d+) requests in", out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return rps, (c1 - c0) * 1e6 / max(1, int(m.group(1)))


class Nginx(servers.Nginx):
    """nginx answering 200 at the same location: what serving the bare request costs."""

    def __init__(self, tmp):
        super().__init__(os.path.join(tmp, "nginx"), "server { listen LISTEN_ADDR; keepalive_requests 1000000;\n"
                         "  location / { return 200; } }\n", worker_connections=1024)
        time.sleep(0.2)   # the worker process, not only the master's listener
        self.pid = int(subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                                      text=True).stdout.split()[0])


def median(v):
    v = sorted(v)
    return v[len(v) // 2]


def propagation(db, tmp, n):
    gates = [Gate(tmp, db, mode="forward-auth", extra="access_log = off") for _ in range(3)]
    probes = [Probe(g) for g in gates]
    ks = fill(db, n)
    lat = []
    try:
        for k in ks:
            while not all(p.ask(k["secret"]) == 200 for p in probes):
                time.sleep(0.001)
            keys(db, "revoke", k["id"])
            t0 = time.monotonic()
            pending = set(range(3))
            while pending:
                for i in list(pending):
                    if probes[i].ask(k["secret"]) == 401:
                        lat.append(time.monotonic() - t0)
                        pending.discard(i)
    finally:
        for g in gates:
            g.stop()
    lat.sort()
    return (lat[len(lat) // 2] * 1000, lat[min(len(lat) - 1, int(len(lat) * .99))] * 1000,
            lat[-1] * 1000)


def main():
    pg = PgCluster()
    tmp = tempfile.mkdtemp(prefix="iplock-bench-pg-")
    try:
        sq = os.path.join(tmp, "keys.db")
        pdb, _ = pg.new_db()
        stores = {}
        for name, db in (("SQLite", sq), ("PostgreSQL", pdb)):
            stores[name] = (db, fill(db, 200)[0]["secret"])
        runs = {"SQLite": [], "PostgreSQL": [], "nginx": []}
        for _ in range(ROUNDS):          # interleaved: a burst of load on the box hits all three
            for name, (db, key) in stores.items():
                g = Gate(tmp, db, mode="forward-auth", extra="access_log = off\nworkers = 1")
                try:
                    runs[name].append(wrk(g.port, key, g.proc.pid))
                finally:
                    g.stop()
            n = Nginx(tmp)
            try:
                runs["nginx"].append(wrk(n.port, "x", n.pid))
            finally:
                n.stop()
        print(f"| server (1 worker) | req/s, median of {ROUNDS} x {SECS} s | CPU µs/request, median |"
              "\n|---|---|---|")
        for name, r in runs.items():
            print(f"| {'gate on ' if name != 'nginx' else ''}{name} | {median([x[0] for x in r]):.0f} "
                  f"| {median([x[1] for x in r]):.1f} |")
        ratios = [p[0] / q[0] for p, q in zip(runs["PostgreSQL"], runs["SQLite"])]
        cpu = [q[1] / p[1] for p, q in zip(runs["PostgreSQL"], runs["SQLite"])]
        print(f"PostgreSQL / SQLite throughput, per interleaved round: "
              f"{' '.join(f'{x:.3f}' for x in ratios)}; median {median(ratios):.3f} (goal >= 0.95)")
        print(f"PostgreSQL / SQLite by CPU per request (SQLite µs / PostgreSQL µs): "
              f"median {median(cpu):.3f}")
        pdb2, _ = pg.new_db()
        p50, p99, mx = propagation(pdb2, tmp, CHANGES)
        print(f"propagation, 3 nodes, {CHANGES} revocations, PostgreSQL NOTIFY: "
              f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {mx:.2f} ms")
        sq2 = os.path.join(tmp, "prop.db")
        p50, p99, mx = propagation(sq2, tmp, CHANGES)
        print(f"propagation, 3 nodes, {CHANGES} revocations, SQLite data_version: "
              f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {mx:.2f} ms")
        print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    finally:
        pg.close()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
