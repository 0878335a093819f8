"""iplock scan --follow as a black box: a growing log (and stdin) reported line by line as it is
written, truncation and rotation, and the time from a key's line being written to a running
`iplock gate` refusing that key (--follow --revoke --db). Keys are made at run time."""
import http.client
import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path

from gate_util import Gate, Upstream, create_key
from test_scan import BIN, key


def start_follow(path, *args, stdin=None):
    # unbuffered: a readline() must not pull a second line into a buffer select() cannot see
    return subprocess.Popen([BIN, "scan", "--follow", str(path), "--format", "jsonl", *args],
                            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)


def read_line(proc, timeout=5.0):
    """One stdout line of the scanner, or None after timeout (no blocking forever)."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else None


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    return proc.returncode, out, err


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def test_follow_reports_each_line_as_it_is_written(tmp_path):
    log = tmp_path / "ci.log"
    log.write_text("build started\n")
    k1, k2, k3 = key("sk_live"), key("rk_live"), key("sk_live")
    p = start_follow(log)
    try:
        append(log, "step 1\nexport STRIPE_KEY=%s\n" % k1)
        f1 = json.loads(read_line(p))
        assert (f1["line"], f1["column"], f1["kind"]) == (3, 19, "sk_live")
        assert f1["secret"] == "sk_live_****" + k1[-4:]
        # a line not finished yet is not reported; its end makes it one finding
        append(log, "token " + k2)
        assert read_line(p, 0.6) is None
        append(log, " used\n")
        f2 = json.loads(read_line(p))
        assert (f2["line"], f2["column"], f2["kind"]) == (4, 7, "rk_live")
        # truncation (a CI runner reusing its log): follows from the new start
        with open(log, "w") as f:
            f.write("fresh %s\n" % k3)
        f3 = json.loads(read_line(p))
        assert (f3["line"], f3["column"]) == (1, 7)
        # rotation: the path names a new file
        os.rename(log, tmp_path / "ci.log.1")
        log.write_text("rotated\nagain %s\n" % k1)
        f4 = json.loads(read_line(p))
        assert (f4["line"], f4["column"], f4["fingerprint"]) == (2, 7, f1["fingerprint"])
    finally:
        rc, out, err = stop(p)
    assert rc == 1, err
    assert b"truncated" in err and b"replaced" in err
    for k in (k1, k2, k3):
        assert k.encode() not in err + out


def test_follow_waits_for_the_file_and_exits_0_without_findings(tmp_path):
    log = tmp_path / "later.log"
    p = start_follow(log)
    time.sleep(0.3)
    log.write_text("no keys here: task_live_%s\n" % key("sk_live")[8:])
    time.sleep(0.3)
    rc, out, err = stop(p)
    assert rc == 0, err
    assert out == b"" and b"waiting for" in err and b"0 findings" in err


def test_follow_stdin_flushes_each_finding_and_ends_with_the_stream(tmp_path):
    k = key("sk_live")
    p = start_follow("-", "--format", "text", stdin=subprocess.PIPE)
    p.stdin.write(("log line\nkey=%s\n" % k).encode())
    p.stdin.flush()
    line = read_line(p)
    assert line is not None and line.startswith(b"-:2:5: critical sk_live sk_live_****" + k[-4:].encode())
    p.stdin.write(b"last line without newline " + key("whsec").encode())
    p.stdin.close()
    assert p.wait(timeout=10) == 1
    rest = p.stdout.read()
    assert b"-:3:27: high whsec" in rest


def test_follow_overlong_line_is_scanned_in_pieces(tmp_path):
    """A line over 1 MiB: keys on both sides of the piece boundary, each found once."""
    log = tmp_path / "long.log"
    log.write_text("")
    ka, kb = key("sk_live"), key("sk_live")
    cut = (1 << 20) - 260 - 51   # kb starts 50 bytes before the first piece's cut, ends after it
    line = "a " + ka + " " + "x" * (cut - len(ka) - 3) + " " + kb + " " + "y" * 300000 + "\n"
    p = start_follow(log)
    append(log, line)
    got = [json.loads(read_line(p)) for _ in range(2)]
    rc, out, err = stop(p)
    assert rc == 1 and out == b""
    assert [(g["line"], g["column"]) for g in got] == [(1, 3), (1, line.index(kb) + 1)]


def test_follow_revoke_latency_to_gate_enforcement(tmp_path):
    """Line written -> key revoked by --follow --revoke -> a running gate answers 401.
    20 keys, each polled on a kept-alive connection; p99 must be under 1 s."""
    db = tmp_path / "keys.db"
    made = [create_key(db, "--type", "secret", "--mode", "test", "--name", f"k{i}") for i in range(20)]
    up = Upstream()
    gate = Gate(tmp_path, db, up.port)
    log = tmp_path / "ci.log"
    log.write_text("ci start\n")
    p = start_follow(log, "--revoke", "--db", str(db), "-q")
    conn = http.client.HTTPConnection("127.0.0.1", gate.port, timeout=5)

    def status(secret):
        conn.request("GET", "/v1/charges", headers={"Authorization": "Bearer " + secret})
        r = conn.getresponse()
        r.read()
        return r.status

    lat = []
    try:
        time.sleep(0.3)
        for i, k in enumerate(made):
            assert status(k["secret"]) == 200
            t0 = time.perf_counter()
            append(log, "step %d: curl -u %s: https://api.example.com\n" % (i, k["secret"]))
            while status(k["secret"]) != 401:
                if time.perf_counter() - t0 > 5:
                    raise AssertionError("key %d not refused within 5 s" % i)
            lat.append(time.perf_counter() - t0)
            assert json.loads(read_line(p))["revoke_status"] == "revoked"
        # a key never written stays usable
        other = create_key(db, "--type", "secret", "--mode", "test")
        assert status(other["secret"]) == 200
    finally:
        conn.close()
        rc, out, err = stop(p)
        gate.stop()
        up.close()
    assert rc == 1, err
    lat.sort()
    p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print("\nfollow->revoke->gate 401 over %d keys: min %.1f ms, p50 %.1f ms, p99 %.1f ms, max %.1f ms"
          % (len(lat), lat[0] * 1e3, p50 * 1e3, p99 * 1e3, lat[-1] * 1e3))
    assert p99 < 1.0
    for k in made:
        assert k["secret"].encode() not in err
