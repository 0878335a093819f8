"""issue 16 item 3: no output of iplock carries more of a key than its prefix and last 4.

`iplock keys revoke sk_test_…` (the key where its id goes) printed `no such key: sk_test_01pK…`
with 56 secret characters, to stderr and so into CI logs. This sweep feeds full keys to every
error path of `keys`, `gate`, `scan`, `verify`, `webhook`, `proxy`, `tunnel` and `echo` it can
reach (as an argument, an option value, a config value, a header or URL sent to a running
gate or proxy, a bad proxy URL, a file given to a command) and checks stdout, stderr, access
logs and the gate's answers: no 8-character window of a key's secret body may appear (the
masked form shows only the last 4).

Error paths covered, by source file (every message that can quote user input):
  src/main.c      unknown command
  cli/keys.c      unknown command; -c unreadable / bad gate config (each [gate] value);
                  --db unopenable; create: --type, --mode, --name too long, --allow, --perm
                  (no '=', bad resource, bad level, resource too long), unexpected argument;
                  list/audit extra argument; show/restrict/perm/rotate/expire/revoke with an
                  unknown key text, extra arguments, --allow/--remove/--expire-old/--reason
                  values; perm unknown resource (-c route table); the success paths that name
                  a key given by its text; --name and --reason holding a key (stored masked)
  cli/gate.c      unexpected argument; -c unreadable; every [gate] and [route] value, section
                  and option name in a config (--check and start); running gate: unknown,
                  revoked, malformed and over-long keys (Bearer and Basic), X-Forwarded-For,
                  path, query, Stripe-Context: stderr, access log and response body
  cli/scan.c      missing path; --format; unknown option; --revoke --db; --ignore-file;
                  --baseline (missing and malformed); -o unwritable; --git on a non-repo;
                  findings in every format (text json jsonl sarif csv); --revoke messages
                  (--show-secrets prints keys on purpose and is not swept)
  cli/verify.c    unexpected argument; unknown option; --proxy unparsable / unreachable with
                  the key as user or password; --echo, --api, --path, --timeout, --expect,
                  --db, --key with spaces, --key-file, --cacert, --proxy-cacert; 407 from a
                  running proxy for a user that is a key (text and --json)
  cli/webhook.c   unknown action; unexpected argument; unknown option; --timestamp;
                  --tolerance; --secret-file and --payload-file unreadable; --header that does
                  not verify (a key inside it)
  cli/proxy.c     unknown option; -c unreadable; every [proxy] and [user] value, a section
                  and option name (--check and start); running proxy: 407 with the key as
                  user and password, the key in a URL, a CONNECT target and a Host header:
                  stderr and access log
  cli/tunnel.c    unknown option; --proxy unparsable and with the key as password (--check
                  shows it); a mapping; -c unreadable; [proxy] url and [tunnel] values
  cli/echo.c      --listen, unexpected argument
  cli/passwd.c    unknown option
"""
import base64
import json
import secrets
import string
import subprocess
import time

import pytest

from conftest import IPLOCK, PASSWORD, Proxy, base_config, free_port, wait_port
from gate_util import Gate, create_key, curl

ALNUM = string.ascii_letters + string.digits


def body(n=99):
    return "".join(secrets.choice(ALNUM) for _ in range(n))


# fabricated keys of each form (the store does not know them) and a webhook secret
UNKNOWN = "rk_live_" + body()
ORG = "sk_org_test_" + body()
WHSEC = "whsec_" + body(32)
SECRETS = [UNKNOWN, ORG, WHSEC]


def windows(secret):
    """Every 8-character run of the secret body: none may appear in any output."""
    b = secret[secret.rfind("_", 0, 16) + 1:]
    return [b[i:i + 8] for i in range(len(b) - 7)]


def leaks(text, extra=()):
    for s in SECRETS + list(extra):
        for w in windows(s):
            if w in text:
                return s[:12] + "…", w
    return None


def run(*args, stdin=None, env=None, timeout=30):
    p = subprocess.run([IPLOCK, *args], capture_output=True, text=True, input=stdin, env=env,
                       timeout=timeout)
    return p


class Sweep:
    """Collects every case's outputs; fails once, listing every leak and every case that did
    not reach an error path (so the sweep cannot pass by testing nothing)."""

    def __init__(self, extra=()):
        self.extra = list(extra)
        self.problems = []
        self.n = 0

    def text(self, label, text):
        self.n += 1
        bad = leaks(text, self.extra)
        if bad:
            self.problems.append(f"{label}: leaks {bad[0]} (window {bad[1]!r}): {text[-600:]!r}")

    def cmd(self, label, *args, ok=False, **kw):
        p = run(*args, **kw)
        self.text(label, p.stdout + p.stderr)
        if ok is None:
            return p
        if ok and p.returncode != 0:
            self.problems.append(f"{label}: expected success, got {p.returncode}: {p.stderr}")
        if not ok and p.returncode == 0:
            self.problems.append(f"{label}: expected an error, got 0: {p.stdout[-300:]}")
        return p

    def check(self):
        assert not self.problems, f"{len(self.problems)} of {self.n} cases:\n" + "\n".join(self.problems)


@pytest.fixture
def store(tmp_path):
    db = tmp_path / "keys.db"
    known = create_key(db, "--type", "secret", "--mode", "test")
    restricted = create_key(db, "--type", "restricted", "--mode", "live", "--perm", "charge=read")
    return db, known, restricted


def test_keys_error_paths_never_echo_a_key(store, tmp_path):
    db, known, rk = store
    KEY = known["secret"]
    sw = Sweep([KEY, rk["secret"]])
    K = ["keys", "--db", str(db)]
    for key in (UNKNOWN, ORG, WHSEC):
        sw.cmd(f"iplock {key[:3]}", key)
        sw.cmd("keys unknown command", *K, key)
        sw.cmd("keys -c unreadable", "keys", "-c", f"/nonexistent/{key}.ini", "list")
        sw.cmd("keys --db unopenable", "keys", "--db", f"/nonexistent/{key}/k.db", "list")
        sw.cmd("create --type", *K, "create", "--type", key)
        sw.cmd("create --mode", *K, "create", "--type", "secret", "--mode", key)
        sw.cmd("create --name too long", *K, "create", "--type", "secret", "--name", key + "x" * 200)
        sw.cmd("create --allow", *K, "create", "--type", "secret", "--allow", key)
        sw.cmd("create --allow list", *K, "create", "--type", "secret", "--allow", f"10.0.0.0/8,{key}")
        sw.cmd("create --perm no =", *K, "create", "--type", "restricted", "--perm", key)
        sw.cmd("create --perm resource", *K, "create", "--type", "restricted", "--perm", key + "=read")
        sw.cmd("create --perm level", *K, "create", "--type", "restricted", "--perm", "charge=" + key)
        sw.cmd("create unexpected", *K, "create", "--type", "secret", key, "x")
        sw.cmd("create missing value", *K, "create", "--type", "secret", key)
        sw.cmd("list extra", *K, "list", key)
        sw.cmd("audit extra", *K, "audit", key)
        for sub in (["show"], ["restrict", "--allow", "1.2.3.4"], ["perm", "charge=read"],
                    ["rotate"], ["expire"], ["revoke"]):
            sw.cmd(f"{sub[0]} unknown key text", *K, sub[0], key, *sub[1:])
        sw.cmd("show extra", *K, "show", known["id"], key)
        sw.cmd("restrict --allow", *K, "restrict", known["id"], "--allow", key)
        sw.cmd("restrict --remove", *K, "restrict", known["id"], "--remove", key)
        sw.cmd("restrict unexpected", *K, "restrict", known["id"], key)
        sw.cmd("perm bad", *K, "perm", rk["id"], key)
        sw.cmd("perm resource", *K, "perm", rk["id"], key + "=read")
        sw.cmd("perm level", *K, "perm", rk["id"], "charge=" + key)
        sw.cmd("rotate --expire-old", *K, "rotate", known["id"], "--expire-old", key)
        sw.cmd("rotate unexpected", *K, "rotate", known["id"], key)
        sw.cmd("expire extra", *K, "expire", known["id"], key)
        sw.cmd("revoke unexpected", *K, "revoke", known["id"], key)
    # a gate config (for -c) whose values are keys
    for name in ("listen", "db", "upstream", "mode", "auth_path", "trusted_proxies",
                 "idle_timeout", "header_timeout", "workers", "tls_cert", "bogus_" + UNKNOWN):
        cfg = tmp_path / "g.ini"
        vals = {"listen": "127.0.0.1:1", "db": str(db), "mode": "forward-auth"}
        vals[name] = UNKNOWN
        if name == "tls_cert":
            vals["listen"] = "127.0.0.1:1 tls"
        cfg.write_text("[gate]\n" + "".join(f"{k} = {v}\n" for k, v in vals.items()))
        # db = KEY is a (strange) relative file name: it may work; the output is what counts
        sw.cmd(f"keys -c with {name} = KEY", "keys", "-c", str(cfg), "list",
               ok=None if name == "db" else False)
    # the unknown resource message lists known ones, and names the one given
    cfg = tmp_path / "routes.ini"
    cfg.write_text(f"[gate]\nlisten = 127.0.0.1:1\ndb = {db}\nmode = forward-auth\n"
                   "[route c]\npath = /v1/charges*\nresource = charge\n")
    sw.cmd("perm unknown resource", "keys", "-c", str(cfg), "perm", rk["id"], "sk_live_" + body(40) + "=read")
    # the key's own text where its id goes: success, the id is named, the key masked
    for sub in (["show"], ["restrict", "--allow", "127.0.0.9"], ["perm", "refund=read"],
                ["rotate", "--expire-old", "1h"]):
        key = rk["secret"]
        p = sw.cmd(f"{sub[0]} by key text", *K, sub[0], key, *sub[1:], ok=True)
        assert rk["masked"] in p.stderr and rk["id"] in p.stderr
    sw.cmd("create --name holding a key", *K, "create", "--type", "secret", "--name", f"for {UNKNOWN}", ok=True)
    sw.cmd("revoke --reason holding a key", *K, "revoke", KEY, "--reason", f"leaked: {KEY}", ok=True)
    sw.cmd("list after", *K, "list", ok=True)
    sw.cmd("list --json after", *K, "--json", "list", ok=True)
    sw.cmd("audit after", *K, "audit", ok=True)
    sw.cmd("audit --json after", *K, "--json", "audit", ok=True)
    sw.cmd("revoke twice by text", *K, "revoke", KEY)
    # nothing of a key reached the database either (names and reasons are stored masked)
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("keys.db"))
    sw.text("the database files", raw.decode("latin-1"))
    sw.check()


def test_gate_error_paths_never_echo_a_key(store, tmp_path):
    db, known, rk = store
    sw = Sweep([known["secret"]])
    sw.cmd("gate unexpected argument", "gate", UNKNOWN)
    sw.cmd("gate -c unreadable", "gate", "-c", f"/nonexistent/{UNKNOWN}.ini")
    base = {"listen": "127.0.0.1:1", "db": str(db), "mode": "reverse-proxy", "upstream": "127.0.0.1:1"}
    names = ["listen", "upstream", "mode", "trusted_proxies", "idle_timeout", "header_timeout",
             "workers", "access_log", "bogus_" + ORG]
    for name in names:
        vals = dict(base)
        vals[name] = (f"/nonexistent/{ORG}/a.log" if name == "access_log" else ORG)
        cfg = tmp_path / f"g-{len(sw.problems)}.ini"
        cfg.write_text("[gate]\n" + "".join(f"{k} = {v}\n" for k, v in vals.items()))
        sw.cmd(f"gate --check with {name} = KEY", "gate", "-c", str(cfg), "--check",
               ok=name == "access_log")
        if name == "access_log":
            sw.cmd("gate start with access_log in a missing dir", "gate", "-c", str(cfg))
    for route in ({"method": ORG}, {"path": ORG + "["}, {"resource": ORG}, {"publishable": ORG},
                  {"bogus_" + ORG: "1"}):
        cfg = tmp_path / "r.ini"
        cfg.write_text("[gate]\n" + "".join(f"{k} = {v}\n" for k, v in base.items()) +
                       "[route r]\npath = /x\n" + "".join(f"{k} = {v}\n" for k, v in route.items()))
        p = run("gate", "-c", str(cfg), "--check")
        sw.text(f"gate --check route {route}", p.stdout + p.stderr)
    cfg = tmp_path / "s.ini"
    cfg.write_text("[gate]\n" + "".join(f"{k} = {v}\n" for k, v in base.items()) + f"[{ORG}]\nx = 1\n")
    p = run("gate", "-c", str(cfg), "--check")
    sw.text("gate section named by a key", p.stdout + p.stderr)
    cfg.write_text(f"[gate]\nlisten = 127.0.0.1:1\ntls_cert = /nonexistent/{ORG}.pem\n")
    sw.cmd("gate unreadable tls_cert", "gate", "-c", str(cfg))

    # a running gate: keys in headers, paths and queries
    subprocess.run([IPLOCK, "keys", "--db", str(db), "revoke", known["id"]], check=True,
                   capture_output=True, timeout=20)
    g = Gate(tmp_path, db, mode="forward-auth", extra="trusted_proxies = 127.0.0.1")
    try:
        u = g.url + "/v1/charges"
        basic_user = base64.b64encode(f"{UNKNOWN}:".encode()).decode()
        requests = [
            ("Bearer unknown", u, ["-H", f"Authorization: Bearer {UNKNOWN}"]),
            ("Bearer revoked", u, ["-H", f"Authorization: Bearer {known['secret']}"]),
            ("Bearer org unknown", u, ["-H", f"Authorization: Bearer {ORG}"]),
            ("Bearer malformed", u, ["-H", f"Authorization: Bearer {UNKNOWN}!!"]),
            ("Bearer over-long", u, ["-H", f"Authorization: Bearer {UNKNOWN * 6}"]),
            ("Bearer whsec", u, ["-H", f"Authorization: Bearer {WHSEC}"]),
            ("Basic unknown", u, ["-H", f"Authorization: Basic {basic_user}"]),
            ("key as user", u, ["-u", f"{ORG}:"]),
            ("key in X-Forwarded-For", u, ["-H", f"Authorization: Bearer {rk['secret']}",
                                           "-H", f"X-Forwarded-For: {UNKNOWN}"]),
            ("key in path", f"{g.url}/v1/charges/{UNKNOWN}", ["-H", f"Authorization: Bearer {ORG}"]),
            ("key in query", f"{u}?key={UNKNOWN}", ["-H", f"Authorization: Bearer {rk['secret']}"]),
            ("key in Stripe-Context", u, ["-H", f"Authorization: Bearer {ORG}", "-H", f"Stripe-Context: {UNKNOWN}"]),
        ]
        for label, url, args in requests:
            status, resp, headers = curl(url, *args)
            assert status, label
            sw.text(f"gate answer: {label}", resp + headers)
        time.sleep(0.3)
    finally:
        g.stop()
    sw.text("gate stderr", g.errors() if not g.stderr.closed else "")
    sw.text("gate stderr file", (tmp_path / f"gate-{g.port}.err").read_text())
    sw.text("gate access log", g.log.read_text() if g.log.exists() else "")
    assert g.log.exists() and len(g.log.read_text().splitlines()) >= len(requests)
    sw.check()


def test_scan_error_paths_never_echo_a_key(store, tmp_path):
    db, known, _ = store
    KEY = known["secret"]
    sw = Sweep([KEY])
    leak = tmp_path / "leak.txt"
    leak.write_text(f"STRIPE={KEY}\nother = {UNKNOWN}\nhook = {WHSEC}\norg: {ORG}\n")
    sw.cmd("scan missing path", "scan", f"/nonexistent/{UNKNOWN}")
    sw.cmd("scan --format", "scan", "--format", UNKNOWN, str(leak))
    sw.cmd("scan unknown option", "scan", f"--bogus={UNKNOWN}")
    sw.cmd("scan --revoke --db", "scan", "--revoke", "--db", f"/nonexistent/{UNKNOWN}.db", str(leak))
    sw.cmd("scan --ignore-file", "scan", "--ignore-file", f"/nonexistent/{UNKNOWN}", str(leak))
    sw.cmd("scan --baseline missing", "scan", "--baseline", f"/nonexistent/{UNKNOWN}", str(leak))
    bad = tmp_path / "bad.json"
    bad.write_text(f'{{"findings": "{UNKNOWN}"')
    sw.cmd("scan --baseline malformed", "scan", "--baseline", str(bad), str(leak))
    ign = tmp_path / "ignore"
    ign.write_text(f"{UNKNOWN}\n")
    p = run("scan", "--ignore-file", str(ign), str(leak))
    sw.text("scan --ignore-file holding a key", p.stdout + p.stderr)
    sw.cmd("scan -o unwritable", "scan", "-o", f"/nonexistent/{UNKNOWN}", str(leak))
    sw.cmd("scan --git non-repo", "scan", "--git", f"/nonexistent/{UNKNOWN}")
    for fmt in ("text", "json", "jsonl", "sarif", "csv"):
        p = run("scan", "--format", fmt, str(leak))
        assert p.returncode == 1, p.stderr
        sw.text(f"scan findings --format {fmt}", p.stdout + p.stderr)
    p = run("scan", "--revoke", "--db", str(db), str(leak))
    assert p.returncode == 1 and known["id"] in p.stderr, p.stderr
    sw.text("scan --revoke", p.stdout + p.stderr)
    sw.check()


@pytest.fixture
def running_proxy(proxy_factory, origin, password_hash):
    return proxy_factory(base_config(origin.port, password_hash))


def test_verify_and_webhook_error_paths_never_echo_a_key(running_proxy, tmp_path):
    sw = Sweep()
    dead = free_port()
    echo = f"http://127.0.0.1:{dead}/ip"
    V = ["verify"]
    for key in (UNKNOWN, ORG):
        sw.cmd("verify unexpected argument", *V, "--proxy", f"http://a:b@127.0.0.1:{dead}", "--echo", echo, key)
        sw.cmd("verify unknown option", *V, f"--bogus={key}")
        sw.cmd("verify --proxy unparsable", *V, "--proxy", key, "--echo", echo)
        sw.cmd("verify --proxy bad scheme", *V, "--proxy", f"ftp://u:{key}@127.0.0.1:1", "--echo", echo)
        sw.cmd("verify --proxy unreachable, key as password", *V, "--proxy",
               f"http://alice:{key}@127.0.0.1:{dead}", "--echo", echo)
        sw.cmd("verify --proxy unreachable, key as user", *V, "--proxy",
               f"http://{key}:pw@127.0.0.1:{dead}", "--echo", echo)
        sw.cmd("verify --proxy unreachable --json", *V, "--json", "--proxy",
               f"http://{key}:{key}@127.0.0.1:{dead}", "--echo", echo)
        sw.cmd("verify --proxy key as host", *V, "--proxy", f"http://{key}:1", "--echo", echo)
        sw.cmd("verify --echo", *V, "--proxy", f"http://a:b@127.0.0.1:{dead}", "--echo", key)
        sw.cmd("verify --api", *V, "--proxy", f"http://a:b@127.0.0.1:{dead}", "--api", key, "--key", key)
        sw.cmd("verify --timeout", *V, "--proxy", f"http://a:b@127.0.0.1:{dead}", "--echo", echo, "--timeout", key)
        sw.cmd("verify --path", *V, "--proxy", f"http://a:b@127.0.0.1:{dead}", "--key", key, "--path", key)
        sw.cmd("verify --expect", *V, "--proxy", f"http://a:b@127.0.0.1:{dead}", "--echo", echo, "--expect", key)
        sw.cmd("verify --db", *V, "--proxy", f"http://a:b@127.0.0.1:{dead}", "--key", key, "--db", f"/nonexistent/{key}")
        sw.cmd("verify --key with a space", *V, "--proxy", f"http://a:b@127.0.0.1:{dead}", "--key", key + " x")
        sw.cmd("verify --key-file", *V, "--proxy", f"http://a:b@127.0.0.1:{dead}", "--key-file", f"/nonexistent/{key}")
        sw.cmd("verify --cacert", *V, "--proxy", f"http://a:b@127.0.0.1:{dead}", "--echo",
               f"https://127.0.0.1:{dead}/ip", "--cacert", f"/nonexistent/{key}")
        sw.cmd("verify --proxy-cacert", *V, "--proxy", f"https://a:b@127.0.0.1:{dead}", "--echo", echo,
               "--proxy-cacert", f"/nonexistent/{key}")
        sw.cmd("verify --proxy-cacert on http", *V, "--proxy", f"http://a:b@127.0.0.1:{dead}", "--echo", echo,
               "--proxy-cacert", key)
        sw.cmd("verify --key against unreachable proxy", *V, "--proxy", f"http://a:b@127.0.0.1:{dead}",
               "--key", key, "--api", f"http://127.0.0.1:{dead}")
        # a running proxy refuses a user that is a key (407): the message names the user
        url = f"http://{key}:{key}@127.0.0.1:{running_proxy.port}"
        sw.cmd("verify 407 for a key as user", *V, "--proxy", url, "--echo", echo)
        sw.cmd("verify 407 --json", *V, "--json", "--proxy", url, "--echo", echo)

    W = ["webhook"]
    payload = tmp_path / "payload.json"
    payload.write_text('{"id": "evt_1"}')
    for key in (WHSEC, UNKNOWN):
        sw.cmd("webhook unknown action", *W, key)
        sw.cmd("webhook unexpected argument", *W, "sign", "--secret", WHSEC, key)
        sw.cmd("webhook unknown option", *W, "sign", f"--bogus={key}")
        sw.cmd("webhook --timestamp", *W, "sign", "--secret", WHSEC, "--timestamp", key)
        sw.cmd("webhook --tolerance", *W, "verify", "--secret", WHSEC, "--header", "t=1", "--tolerance", key)
        sw.cmd("webhook --secret-file", *W, "sign", "--secret-file", f"/nonexistent/{key}")
        sw.cmd("webhook --payload-file", *W, "sign", "--secret", WHSEC, "--payload-file", f"/nonexistent/{key}")
        sw.cmd("webhook --header not verifying", *W, "verify", "--secret", WHSEC, "--header",
               f"t={int(time.time())},v1={key}", "--payload-file", str(payload))
        sw.cmd("webhook --header junk", *W, "verify", "--secret", WHSEC, "--header", key,
               "--payload-file", str(payload))
    sw.check()


def test_proxy_tunnel_echo_error_paths_never_echo_a_key(tmp_path, origin, password_hash, proxy_factory):
    sw = Sweep()
    sw.cmd("proxy unknown option", "proxy", UNKNOWN)
    sw.cmd("proxy -c unreadable", "proxy", "-c", f"/nonexistent/{UNKNOWN}.ini")
    sw.cmd("proxy -c unreadable --check", "proxy", "-c", f"/nonexistent/{UNKNOWN}.ini", "--check")
    sw.cmd("proxy --dns-servers", "proxy", "-c", f"/nonexistent/{UNKNOWN}.ini", "--dns-servers", UNKNOWN)
    good = base_config(origin.port, password_hash).replace("@PORT@", str(free_port())).replace(
        "@LOG@", str(tmp_path / "a.log"))
    lines = good.splitlines()
    for i, line in enumerate(lines):
        if " = " not in line:
            continue
        name = line.split(" = ")[0]
        for val in (UNKNOWN, f"{UNKNOWN} 127.0.0.2", f"/nonexistent/{UNKNOWN}/x"):
            cfg = tmp_path / "p.ini"
            cfg.write_text("\n".join(lines[:i] + [f"{name} = {val}"] + lines[i + 1:]) + "\n")
            p = run("proxy", "-c", str(cfg), "--check")
            sw.text(f"proxy --check {name} = KEY", p.stdout + p.stderr)
    for extra in (f"[user {UNKNOWN}]\npassword_hash = {UNKNOWN}\n", f"[{UNKNOWN}]\nx = 1\n",
                  f"[user bob]\n{UNKNOWN} = 1\n", f"[user bob]\npassword_hash = {password_hash}\nallow = {UNKNOWN}\n",
                  "[proxy]\ntls_listen = 127.0.0.1:1\n" f"tls_cert = /nonexistent/{UNKNOWN}.pem\n"
                  f"tls_key = /nonexistent/{UNKNOWN}.key\n"):
        cfg = tmp_path / "p.ini"
        cfg.write_text(good + extra)
        sw.cmd("proxy --check with a key in " + extra.split("\n")[0], "proxy", "-c", str(cfg), "--check")
    # a running proxy: the key as credentials, in a URL, a CONNECT target, a Host header
    px = proxy_factory(base_config(origin.port, password_hash))
    auth = base64.b64encode(f"{UNKNOWN}:{ORG}".encode()).decode()
    good_auth = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    for raw in (f"GET http://127.0.0.1:{origin.port}/?k={UNKNOWN} HTTP/1.1\r\nHost: x\r\n"
                f"Proxy-Authorization: Basic {auth}\r\n\r\n",
                f"GET http://127.0.0.1:{origin.port}/?k={UNKNOWN} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Proxy-Authorization: Basic {good_auth}\r\nConnection: close\r\n\r\n",
                f"CONNECT {UNKNOWN}.example:443 HTTP/1.1\r\nHost: {UNKNOWN}\r\n"
                f"Proxy-Authorization: Basic {good_auth}\r\n\r\n",
                f"GET http://{ORG}.invalid/ HTTP/1.1\r\nHost: {ORG}.invalid\r\n"
                f"Proxy-Authorization: Basic {good_auth}\r\nConnection: close\r\n\r\n"):
        from conftest import raw_request
        answer = raw_request(px.port, raw.encode(), timeout=5).decode("latin-1")
        if "Server: BaseHTTP" not in answer:   # the origin's own echo of the URL is not ours
            sw.text("proxy answer", answer)
    time.sleep(0.3)
    sw.text("proxy stderr", px.stderr.read_text())
    sw.text("proxy access log", px.log.read_text() if px.log.exists() else "")
    assert px.log.exists() and px.log.read_text().count("\n") >= 3

    T = ["tunnel"]
    sw.cmd("tunnel unknown option", *T, f"--{UNKNOWN}")
    sw.cmd("tunnel --proxy unparsable", *T, "--proxy", UNKNOWN, "1=x:1", "--check")
    sw.cmd("tunnel --proxy bad scheme", *T, "--proxy", f"ftp://a:{UNKNOWN}@127.0.0.1:1", "1=x:1")
    p = sw.cmd("tunnel --check shows the proxy", *T, "--proxy", f"http://{ORG}:{UNKNOWN}@127.0.0.1:1",
               f"{free_port()}=x.example:1", "--check", ok=True)
    sw.cmd("tunnel mapping", *T, "--proxy", "http://a:b@127.0.0.1:1", UNKNOWN, "--check")
    sw.cmd("tunnel mapping remote", *T, "--proxy", "http://a:b@127.0.0.1:1", f"1={UNKNOWN}", "--check")
    sw.cmd("tunnel -c unreadable", *T, "-c", f"/nonexistent/{UNKNOWN}.ini")
    for text in (f"[proxy]\nurl = {UNKNOWN}\n", f"[proxy]\nurl = http://a:b@127.0.0.1:1\n[tunnel {UNKNOWN}]\n"
                 f"listen = {UNKNOWN}\nremote = x:1\n", f"[proxy]\nurl = http://a:b@127.0.0.1:1\n[tunnel t]\n"
                 f"listen = 1\nremote = {UNKNOWN}\n", f"[proxy]\n{UNKNOWN} = 1\n"):
        cfg = tmp_path / "t.ini"
        cfg.write_text(text)
        sw.cmd("tunnel -c with a key", *T, "-c", str(cfg), "--check")
    sw.cmd("echo --listen", "echo", "--listen", UNKNOWN)
    sw.cmd("echo unexpected", "echo", "--listen", "127.0.0.1:1", UNKNOWN)
    sw.cmd("passwd unknown option", "passwd", "alice", f"--{UNKNOWN}")
    sw.check()
