"""Report-only IP restrictions (`iplock keys restrict KEY --report`): the gate allows a request
from outside the key's allowlist, says so in `Iplock-Ip-Validation: would-refuse`, logs it as
"ip_would_refuse" and counts it in the usage telemetry; `--enforce` refuses it again. On SQLite
and on PostgreSQL, in reverse-proxy and forward-auth mode."""
import sqlite3
import time

import pytest

from gate_util import Gate, Upstream, create_key, curl, keys
from pg_util import pg  # noqa: F401 (the session's cluster)

HDR = "iplock-ip-validation: would-refuse"


@pytest.fixture(scope="module")
def upstream():
    u = Upstream()
    yield u
    u.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def env(request, tmp_path_factory, upstream):
    tmp = tmp_path_factory.mktemp("report")
    if request.param == "sqlite":
        db = tmp / "keys.db"
        e = {"db": db, "sql": lambda q: sqlite3.connect(db).execute(q).fetchall()}
    else:
        cluster = request.getfixturevalue("pg")
        db, name = cluster.new_db()
        e = {"db": db, "sql": lambda q: [tuple(r.split("|")) for r in
                                         cluster.sql(q, db=name).splitlines() if r]}
    e["key"] = create_key(db, "--type", "secret", "--mode", "test", "--allow", "127.0.0.2")
    keys(db, "restrict", e["key"]["id"], "--report")
    e["gate"] = Gate(tmp, db, upstream.port, extra="usage = on\nusage_flush = 0.2\nmode = both\n")
    yield e
    e["gate"].stop()


def get(env, source, path="/v1/charges"):
    return curl(env["gate"].url + path, "-H", f"Authorization: Bearer {env['key']['secret']}",
                source=source)


def test_report_only_allows_flags_logs_and_counts(env, upstream):
    st, _, hdrs = get(env, "127.0.0.5")
    assert st == 200, "report-only must not refuse"
    assert HDR in hdrs.lower()
    assert upstream.last()["path"] == "/v1/charges"
    # from inside the allowlist: no flag
    st, _, hdrs = get(env, "127.0.0.2")
    assert st == 200 and HDR not in hdrs.lower()
    # forward-auth answers carry the flag too
    st, _, hdrs = get(env, "127.0.0.5", "/_iplock/auth")
    assert st == 200 and HDR in hdrs.lower()
    reasons = [l.get("reason") for l in env["gate"].access_wait(3)]
    assert reasons.count("ip_would_refuse") == 2
    # telemetry: the outside client's requests are allowed and counted as "would refuse"
    kid = env["key"]["id"]
    deadline = time.monotonic() + 10
    while True:
        get(env, "127.0.0.2")    # a later request hands the batch over
        rows = env["sql"](f"SELECT client, allowed, denied, reported FROM key_usage_hourly "
                          f"WHERE key_id = '{kid}' ORDER BY client")
        got = {r[0]: tuple(int(x) for x in r[1:]) for r in rows}
        if got.get("127.0.0.5", (0, 0, 0))[2] >= 2:
            break
        assert time.monotonic() < deadline, f"usage never written: {got}"
        time.sleep(0.2)
    assert got["127.0.0.5"][0] >= 2 and got["127.0.0.5"][1] == 0
    assert got["127.0.0.2"][2] == 0


def test_enforce_refuses_again(env):
    kid = env["key"]["id"]
    rc, out, _ = keys(env["db"], "restrict", kid, "--enforce")
    assert rc == 0 and out["allow_mode"] == "enforce"
    deadline = time.monotonic() + 10
    while True:
        st, body, hdrs = get(env, "127.0.0.5")
        if st == 401:
            break
        assert time.monotonic() < deadline, "enforce never reached the gate"
        time.sleep(0.05)
    assert "does not allow requests from your IP address" in body and HDR not in hdrs.lower()
    assert get(env, "127.0.0.2")[0] == 200
    rc, out, _ = keys(env["db"], "restrict", kid, "--report")
    assert rc == 0 and out["allow_mode"] == "report"
    audit = keys(env["db"], "audit")[1]
    acts = [a["action"] for a in audit if a.get("key_id") == kid]
    assert acts[-3:] == ["report", "enforce", "report"]


def test_report_and_enforce_exclude_each_other(env):
    rc, _, err = keys(env["db"], "restrict", env["key"]["id"], "--report", "--enforce", check=False)
    assert rc == 2 and "exclude" in err
