"""Black-box tests of `iplock passwd`: config block with the hash only on stdout, the proxy URL
with the password exactly once on stderr, --password-stdin, usage errors."""
import base64
import hashlib
import hmac
import os
import re
import subprocess
import urllib.parse
from pathlib import Path

import pytest

BIN = os.environ.get("IPLOCK_BIN") or str(Path(__file__).resolve().parents[2] / "build" / "iplock")
URL_RE = re.compile(r"http://([^:@/]+):([^@/]*)@(\S+)")


def run(*args, stdin=None):
    return subprocess.run([BIN, "passwd", *args], input=stdin, capture_output=True, text=True,
                          timeout=20)


def verify(hash_text, password):
    """Check a pbkdf2-sha256$ITER$SALT$HASH against a password, independently of iplock."""
    scheme, iterations, salt, key = hash_text.split("$")
    assert scheme == "pbkdf2-sha256"
    salt, key = base64.b64decode(salt, validate=True), base64.b64decode(key, validate=True)
    got = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, int(iterations), len(key))
    return hmac.compare_digest(got, key)


def parse_block(stdout, name):
    lines = stdout.splitlines()
    assert lines[0] == f"[user {name}]"
    assert len(lines) == 2, stdout
    key, _, value = lines[1].partition(" = ")
    assert key == "password_hash"
    assert re.fullmatch(r"pbkdf2-sha256\$100000\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=", value), value
    return value


def test_random_password_block_and_url_once():
    r = run("alice")
    assert r.returncode == 0, r.stderr
    hash_text = parse_block(r.stdout, "alice")
    urls = URL_RE.findall(r.stdout + r.stderr)
    assert len(urls) == 1, (r.stdout, r.stderr)
    user, password, hostport = urls[0]
    assert user == "alice" and hostport == "127.0.0.1:3128"
    assert re.fullmatch(r"[A-Za-z0-9]{24}", password)
    # the password is shown only in the URL, never in the config block
    assert password not in r.stdout
    assert (r.stdout + r.stderr).count(password) == 1
    assert verify(hash_text, password)
    assert not verify(hash_text, password + "x")


def test_passwords_differ_between_runs():
    a, b = run("bob"), run("bob")
    pa, pb = URL_RE.findall(a.stderr)[0][1], URL_RE.findall(b.stderr)[0][1]
    assert pa != pb
    assert parse_block(a.stdout, "bob") != parse_block(b.stdout, "bob")


def test_password_stdin_and_url_encoding():
    password = "hunter2 x:y@z/%"
    r = run("svc.bot-1_a", "--password-stdin", "--host", "::1", "--port", "8080",
            stdin=password + "\r\n")
    assert r.returncode == 0, r.stderr
    hash_text = parse_block(r.stdout, "svc.bot-1_a")
    assert verify(hash_text, password)
    urls = URL_RE.findall(r.stderr)
    assert len(urls) == 1
    user, enc, hostport = urls[0]
    assert user == "svc.bot-1_a" and hostport == "[::1]:8080"
    assert urllib.parse.unquote(enc) == password
    assert password not in r.stdout


def test_password_stdin_last_line_without_newline():
    r = run("carol", "--password-stdin", stdin="abc")
    assert r.returncode == 0
    assert verify(parse_block(r.stdout, "carol"), "abc")


@pytest.mark.parametrize("stdin", ["", "\n", "\r\n"])
def test_password_stdin_empty(stdin):
    r = run("dave", "--password-stdin", stdin=stdin)
    assert r.returncode == 2
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [
    ["a+b"], ["a b"], [""], ["x" * 65], ["al/ice"], ["élan"], [],
    ["alice", "bob"], ["alice", "--bogus"], ["alice", "--port", "0"], ["alice", "--port", "65536"],
    ["alice", "--port"], ["alice", "--host", "0x7f000001"], ["alice", "--host", "a b"],
])
def test_bad_usage_exit_2(args):
    r = run(*args)
    assert r.returncode == 2, (args, r.stdout, r.stderr)
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1
    assert "iplock passwd:" in r.stderr


def test_longest_name_ok():
    r = run("n" * 64)
    assert r.returncode == 0
    parse_block(r.stdout, "n" * 64)


def test_help():
    r = run("--help")
    assert r.returncode == 0
    assert "usage: iplock passwd NAME" in r.stdout
    assert "--password-stdin" in r.stdout


def test_listed_in_main_help():
    r = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0
    assert re.search(r"^\s+passwd\s", r.stdout, re.M)
