"""Black-box tests of `iplock keys`: every subcommand, JSON output, errors that change
nothing, the full key shown once, rotation inheriting the allowlist, the audit log."""
import hashlib
import json
import os
import re
import sqlite3
import subprocess

import pytest

from gate_util import IPLOCK, keys, create_key
from pg_util import PgDb  # the `pg` fixture (the session's cluster) comes from conftest.py


def run(db, *args):
    return subprocess.run([IPLOCK, "keys", "--db", str(db), *args], capture_output=True,
                          text=True, timeout=20)


def snapshot(db):
    if isinstance(db, PgDb):
        # one psql call for the four tables (a call per table made this test slow)
        q = " UNION ALL ".join(f"SELECT '{t}' || ' ' || t::text FROM {t} t"
                               for t in ("keys", "allow", "perms", "audit"))
        lines = db.cluster.sql(q, db=db.name).splitlines()
        return [sorted(l for l in lines if l.startswith(t + " "))
                for t in ("keys", "allow", "perms", "audit")]
    con = sqlite3.connect(str(db))
    try:
        rows = []
        for t in ("keys", "allow", "perms", "audit"):
            rows.append(sorted(map(repr, con.execute(f"SELECT * FROM {t}").fetchall())))
        return rows
    finally:
        con.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    """Every test on a SQLite file and again on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "keys.db"
    return request.getfixturevalue("pg").new_pgdb()


def test_help_and_usage(db):
    p = subprocess.run([IPLOCK, "keys", "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "restrict" in p.stdout
    p = subprocess.run([IPLOCK, "keys", "list"], capture_output=True, text=True)
    assert p.returncode == 2 and "--db" in p.stderr
    p = run(db, "frobnicate")
    assert p.returncode == 2 and "unknown command" in p.stderr


def test_create_formats_and_hash_at_rest(db):
    made = {}
    for t, m, prefix in [("secret", "live", "sk_live_"), ("restricted", "test", "rk_test_"),
                         ("publishable", "live", "pk_live_"), ("org", "test", "sk_org_test_")]:
        k = create_key(db, "--type", t, "--mode", m, "--name", f"{t} key")
        s = k["secret"]
        assert s.startswith(prefix)
        assert re.fullmatch(re.escape(prefix) + r"[A-Za-z0-9]{99}", s)
        assert k["masked"] == prefix + "****" + s[-4:]
        assert re.fullmatch(r"key_[A-Za-z0-9]{16}", k["id"])
        made[k["id"]] = s
    if isinstance(db, PgDb):
        hashes = dict(r.split("|") for r in
                      db.cluster.sql("SELECT id, hash FROM keys", db=db.name).splitlines())
        dump = db.cluster.sql("SELECT string_agg(t::text, ' ') FROM (SELECT k::text FROM keys k "
                              "UNION ALL SELECT a::text FROM audit a) t", db=db.name)
        for kid, s in made.items():
            assert hashes[kid] == hashlib.sha256(s.encode()).hexdigest()
            assert s[8:] not in dump
        return
    con = sqlite3.connect(str(db))
    hashes = {r[0]: r[1] for r in con.execute("SELECT id, hash FROM keys")}
    mode = con.execute("PRAGMA journal_mode").fetchone()[0]
    con.close()
    assert mode == "wal"
    for kid, s in made.items():
        assert hashes[kid] == hashlib.sha256(s.encode()).hexdigest()
    raw = b"".join(p.read_bytes() for p in db.parent.iterdir() if p.name.startswith("keys.db"))
    for s in made.values():
        assert s.encode() not in raw and s[8:].encode() not in raw
    # the full key is never shown again
    for args in (["list"], ["show", next(iter(made))], ["audit"]):
        out = run(db, *args).stdout + run(db, "--json", *args).stdout
        for s in made.values():
            assert s[-20:] not in out


def test_text_create_shows_key_once(db):
    p = run(db, "create", "--type", "secret", "--mode", "test")
    assert p.returncode == 0
    m = re.search(r"sk_test_[A-Za-z0-9]{99}", p.stdout)
    assert m and "only time" in p.stdout


def test_bad_input_changes_nothing(db):
    k = create_key(db, "--type", "secret", "--allow", "127.0.0.2")
    pk = create_key(db, "--type", "publishable")
    before = snapshot(db)
    # exit status: 1 bad input (the command has the right shape, a value is refused),
    # 2 bad usage (the shape is wrong: unknown option, missing value, unparsable value)
    cases = [
        (["create", "--type", "secret", "--allow", "10.0.0.300"], "10.0.0.300", 1),
        (["create", "--type", "secret", "--allow", "10.0.0.1/8"], "host bits", 1),
        (["create", "--type", "publishable", "--allow", "1.2.3.4"], "publishable", 1),
        (["create", "--type", "bogus"], "type", 2),
        (["create", "--type", "secret", "--perm", "charge=write"], "restricted", 1),
        (["create", "--type", "restricted", "--perm", "charge"], "permission", 2),
        (["create", "--type", "restricted", "--perm", "Charge=read"], "resource name", 1),
        (["create", "--type", "secret", "--name", "x" * 201], "name", 1),
        (["create", "--type", "secret", "--allow"], "--allow", 2),
        (["create", "--type", "secret", "--bogus", "x"], "--bogus", 2),
        (["restrict", pk["id"], "--allow", "1.2.3.4"], "publishable", 1),
        (["restrict", k["id"], "--allow", "1.2.3.0/24", "--allow", "nope"], "nope", 1),
        (["restrict", k["id"], "--remove", "9.9.9.9"], "not in the allowlist", 1),
        (["restrict", "key_doesnotexist00", "--allow", "1.2.3.4"], "no such key", 1),
        (["restrict", k["id"], "--allow", ","], "--allow", 1),
        (["restrict", k["id"], "--allow"], "--allow", 2),
        (["show", "key_doesnotexist00"], "no such key", 1),
        (["show"], "show", 2),
        (["revoke", "key_doesnotexist00"], "no such key", 1),
        (["revoke", k["id"], "--reason"], "--reason", 2),
        (["revoke", k["id"], "--bogus"], "--bogus", 2),
        (["perm", k["id"], "charge=write"], "restricted", 1),
        (["perm", k["id"], "charge=admin"], "permission", 2),
        (["perm", k["id"]], "perm", 2),
        (["rotate", k["id"], "--expire-old", "8d"], "7-day", 1),
        (["rotate", k["id"], "--expire-old", "169h"], "7-day", 1),
        (["rotate", k["id"], "--expire-old", "10081"], "7-day", 1),
        (["rotate", k["id"], "--expire-old", "soon"], "expire-old", 2),
        (["rotate", k["id"], "--expire-old", "-5"], "expire-old", 2),
        (["rotate", k["id"], "--expire-old", "7x"], "expire-old", 2),
        (["rotate", k["id"], "--expire-old"], "expire-old", 2),
        (["rotate", "key_doesnotexist00", "--expire-old", "1h"], "no such key", 1),
        (["expire", pk["id"]], "publishable", 1),
        (["expire", "key_doesnotexist00"], "no such key", 1),
        (["restrict", k["id"]], "--allow", 2),
        (["audit", "x"], "audit", 2),
        (["list", "x"], "list", 2),
    ]
    for args, needle, code in cases:
        p = run(db, *args)
        assert p.returncode == code, (args, p.returncode, p.stderr)
        assert needle in p.stderr, (args, p.stderr)
        assert p.stdout == "", args
        assert p.stderr.count("\n") == 1, (args, p.stderr)
        assert snapshot(db) == before, args


def test_expire_old_exit_status_boundaries(db):
    """issue 16 item 5: --expire-old over 7 days is bad input (1), as keys.md says; the last
    accepted values are exactly 7 days."""
    for ok in ("7d", "168h", "10080", "now", "0"):
        k = create_key(db, "--type", "secret")
        p = run(db, "rotate", k["id"], "--expire-old", ok)
        assert p.returncode == 0, (ok, p.stderr)
    k = create_key(db, "--type", "secret")
    for bad, code in (("8d", 1), ("169h", 1), ("10081", 1), ("7d1", 2), ("1w", 2), ("", 2)):
        p = run(db, "rotate", k["id"], "--expire-old", bad)
        assert p.returncode == code, (bad, p.returncode, p.stderr)


def test_restrict_add_remove_clear(db):
    k = create_key(db, "--type", "secret", "--allow", "127.0.0.2")
    _, out, _ = keys(db, "restrict", k["id"], "--allow", "10.0.0.0/8", "--allow", "2001:db8::/32",
                     "--allow", "::ffff:192.0.2.1")
    assert out["allow"] == ["10.0.0.0/8", "127.0.0.2", "192.0.2.1", "2001:db8::/32"]
    _, out, _ = keys(db, "restrict", k["id"], "--remove", "127.0.0.2/32")
    assert out["allow"] == ["10.0.0.0/8", "192.0.2.1", "2001:db8::/32"]
    p = run(db, "restrict", k["id"], "--clear")
    assert p.returncode == 0 and "ANY address" in p.stdout
    _, out, _ = keys(db, "show", k["id"])
    assert out["allow"] == []
    # thousands of entries on one key
    args = []
    for i in range(2000):
        args += ["--allow", f"10.{i // 256}.{i % 256}.0/24"]
    _, out, _ = keys(db, "restrict", k["id"], *args)
    assert len(out["allow"]) == 2000


def test_perm_and_show(db):
    k = create_key(db, "--type", "restricted", "--perm", "charge=read")
    _, out, _ = keys(db, "perm", k["id"], "charge=write", "customer=read")
    assert out["permissions"] == {"charge": "write", "customer": "read"}
    _, out, _ = keys(db, "perm", k["id"], "customer=none")
    assert out["permissions"] == {"charge": "write"}
    p = run(db, "show", k["id"])
    assert "charge=write" in p.stdout and k["masked"] in p.stdout


def test_rotate_inherits_everything(db):
    k = create_key(db, "--type", "restricted", "--mode", "live", "--name", "billing",
                   "--allow", "127.0.0.2", "--allow", "2001:db8::/48", "--perm", "charge=write")
    _, new, _ = keys(db, "rotate", k["id"], "--expire-old", "24h")
    assert new["secret"].startswith("rk_live_") and new["secret"] != k["secret"]
    assert new["rotated_from"] == k["id"]
    assert new["name"] == "billing"
    assert new["allow"] == k["allow"]
    assert new["permissions"] == {"charge": "write"}
    _, old, _ = keys(db, "show", k["id"])
    assert 24 * 3600 - 60 <= old["expires_at"] - old["created"] <= 24 * 3600 + 60
    assert old["status"].startswith("expires in")
    _, new2, _ = keys(db, "rotate", new["id"])
    _, again, _ = keys(db, "show", new["id"])
    assert again["status"] == "expired"
    assert new2["allow"] == k["allow"]


def test_expire_revoke_list_audit(db):
    a = create_key(db, "--type", "secret", "--name", "a")
    b = create_key(db, "--type", "secret", "--name", "b")
    keys(db, "expire", a["id"])
    keys(db, "revoke", b["id"], "--reason", "leaked")
    p = run(db, "revoke", b["id"])
    assert p.returncode != 0 and "already revoked" in p.stderr
    _, lst, _ = keys(db, "list")
    st = {k["id"]: k["status"] for k in lst}
    assert st == {a["id"]: "expired", b["id"]: "revoked"}
    p = run(db, "list")
    assert a["id"] in p.stdout and "expired" in p.stdout
    _, audit, _ = keys(db, "audit")
    acts = [(r["action"], r["key_id"]) for r in audit]
    assert acts == [("create", a["id"]), ("create", b["id"]), ("expire", a["id"]),
                    ("revoke", b["id"])]
    import pwd
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert all(r["actor"] == me for r in audit)
    rev = audit[-1]
    assert rev["reason"] == "leaked"
    assert rev["before"]["revoked_at"] is None and rev["after"]["revoked_at"] is not None
    assert audit[0]["before"] is None and audit[0]["after"]["id"] == a["id"]


def test_config_db(tmp_path):
    # -c reads the gate's config with the gate's own parser: it must be one the gate accepts
    (tmp_path / "g.ini").write_text("[gate]\nlisten = 127.0.0.1:1\ndb = sub.db\nmode = forward-auth\n")
    p = subprocess.run([IPLOCK, "keys", "-c", str(tmp_path / "g.ini"), "create", "--type",
                        "secret"], capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "sub.db").exists()
    (tmp_path / "bad.ini").write_text("[gate]\ndb = sub.db\n")
    p = subprocess.run([IPLOCK, "keys", "-c", str(tmp_path / "bad.ini"), "list"],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 1 and "listen" in p.stderr and p.stderr.count("\n") == 1


def test_keys_revoke_full_key_is_resolved_not_echoed(db):
    """issue 16 item 3: `keys revoke <the key itself>` printed `no such key: sk_test_01pK…` (56
    secret characters). Every command that takes an id takes the key's text too, finds it by
    its SHA-256, names the id (key masked) and never prints the key."""
    k = create_key(db, "--type", "secret", "--mode", "test")
    secret = k["secret"]
    p = run(db, "revoke", secret, "--reason", "pasted the key")
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert k["id"] in out and k["masked"] in out
    assert secret not in out and secret[8:20] not in out
    _, shown, _ = keys(db, "show", k["id"])
    assert shown["revoked_at"] is not None
    # every other command that takes an id resolves the text the same way
    r = create_key(db, "--type", "restricted", "--perm", "charge=read")
    for args in (["show", r["secret"]], ["restrict", r["secret"], "--allow", "127.0.0.9"],
                 ["perm", r["secret"], "refund=read"], ["expire", r["secret"]],
                 ["rotate", r["secret"], "--expire-old", "1h"]):
        p = run(db, *args)
        assert p.returncode == 0, (args, p.stderr)
        assert f"{r['masked']} is {r['id']}" in p.stderr, (args, p.stderr)
        assert r["secret"] not in p.stdout + p.stderr
    # a key the store does not know: masked in the error, exit 1
    unknown = "sk_test_" + "Q" * 50 + "abcdEFGH1234"
    p = run(db, "revoke", unknown)
    assert p.returncode == 1 and "sk_test_****1234" in p.stderr
    assert "QQQQQQQQ" not in p.stdout + p.stderr


def test_perm_unknown_resource_refused_with_gate_routes(tmp_path):
    """issue 16 item 7: with the gate's config, a resource no route names is a typo: refused,
    listing the known ones; `none` (removing) stays allowed."""
    cfg = tmp_path / "gate.ini"
    cfg.write_text("[gate]\nlisten = 127.0.0.1:1\ndb = keys.db\nmode = forward-auth\n"
                   "[route charges]\npath = /v1/charges*\nresource = charge\n"
                   "[route refunds]\npath = /v1/refunds*\nresource = refund\n"
                   "[route refunds2]\npath = /v2/refunds*\nresource = refund\n")

    def kc(*args):
        return subprocess.run([IPLOCK, "keys", "-c", str(cfg), *args], capture_output=True,
                              text=True, timeout=20)
    p = kc("--json", "create", "--type", "restricted", "--perm", "charge=read")
    assert p.returncode == 0, p.stderr
    kid = json.loads(p.stdout)["id"]
    db = tmp_path / "keys.db"
    before = snapshot(db)
    p = kc("perm", kid, "nosuchres=read")
    assert p.returncode == 1, p.stderr
    assert "unknown resource 'nosuchres'" in p.stderr and "charge, refund" in p.stderr
    assert p.stderr.count("\n") == 1
    p = kc("create", "--type", "restricted", "--perm", "chrage=write")
    assert p.returncode == 1 and "unknown resource 'chrage'" in p.stderr
    assert snapshot(db) == before
    p = kc("--json", "perm", kid, "refund=write", "nosuchres=none")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["permissions"] == {"charge": "read", "refund": "write"}
    # without the gate's config no route table is known: any well-formed resource is taken
    _, out, _ = keys(db, "perm", kid, "nosuchres=read")
    assert out["permissions"]["nosuchres"] == "read"


def test_perm_two_changes_one_audit_record(db):
    """issue 16 item 7: one `perm` command with two changes wrote two audit records."""
    k = create_key(db, "--type", "restricted", "--perm", "charge=read")
    _, before, _ = keys(db, "audit")
    _, out, _ = keys(db, "perm", k["id"], "charge=write", "refund=read")
    assert out["permissions"] == {"charge": "write", "refund": "read"}
    _, after, _ = keys(db, "audit")
    new = after[len(before):]
    assert len(new) == 1 and new[0]["action"] == "perm"
    assert new[0]["before"]["permissions"] == {"charge": "read"}
    assert new[0]["after"]["permissions"] == {"charge": "write", "refund": "read"}
    # a bad change among good ones changes nothing and writes nothing
    snap = snapshot(db)
    p = run(db, "perm", k["id"], "customer=read", "Bad=read")
    assert p.returncode == 1 and snapshot(db) == snap


def test_allow_takes_comma_lists(db):
    """issue 16 item 8: `--allow 10.0.0.0/8,192.168.0.0/16` failed with "bad prefix length"."""
    k = create_key(db, "--type", "secret", "--allow", "10.0.0.0/8,192.168.0.0/16")
    assert k["allow"] == ["10.0.0.0/8", "192.168.0.0/16"]
    _, out, _ = keys(db, "restrict", k["id"], "--allow", "127.0.0.2, 2001:db8::/32",
                     "--remove", "10.0.0.0/8,192.168.0.0/16")
    assert out["allow"] == ["127.0.0.2", "2001:db8::/32"]
    _, out, _ = keys(db, "restrict", k["id"], "--allow", "1.2.3.4 ,5.6.7.8,,")
    assert out["allow"] == ["1.2.3.4", "127.0.0.2", "2001:db8::/32", "5.6.7.8"]
    # a bad element names itself and changes nothing
    snap = snapshot(db)
    p = run(db, "restrict", k["id"], "--allow", "9.9.9.9,10.0.0.1/8")
    assert p.returncode == 1 and "10.0.0.1/8" in p.stderr and snapshot(db) == snap
