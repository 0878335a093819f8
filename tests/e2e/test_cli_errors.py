"""Issue 16, items 4 and 11: a config error names its key once, --check counts in words that
agree with the number, and every subcommand reports a missing or invalid config file with its
`iplock CMD:` prefix and exit status 1 (2 is kept for bad usage: unknown flag, missing argument),
the same with and without --check."""
import subprocess

import pytest

from conftest import IPLOCK


def run(*args):
    return subprocess.run([IPLOCK, *args], capture_output=True, text=True, timeout=20)


@pytest.mark.parametrize("cmd", ["proxy", "gate", "tunnel"])
@pytest.mark.parametrize("check", [False, True])
def test_missing_config_has_prefix_and_exit_1(cmd, check, tmp_path):
    missing = tmp_path / "missing.ini"
    r = run(cmd, "-c", str(missing), *(["--check"] if check else []))
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stderr == f"iplock {cmd}: {missing}: No such file or directory\n"


@pytest.mark.parametrize("cmd", ["proxy", "gate", "tunnel", "echo"])
def test_bad_usage_is_exit_2(cmd):
    r = run(cmd, "--no-such-flag")
    assert r.returncode == 2 and r.stderr.startswith(f"iplock {cmd}: "), r.stderr
    r = run(cmd, "-c") if cmd != "echo" else run(cmd, "--listen")
    assert r.returncode == 2 and r.stderr.startswith(f"iplock {cmd}: "), r.stderr


@pytest.mark.parametrize("cmd", ["proxy", "gate", "tunnel"])
@pytest.mark.parametrize("check", [False, True])
def test_invalid_config_is_exit_1(cmd, check, tmp_path):
    bad = tmp_path / "bad.ini"
    bad.write_text("[nonsense]\n")
    r = run(cmd, "-c", str(bad), *(["--check"] if check else []))
    assert r.returncode == 1 and r.stderr.startswith(f"iplock {cmd}: {bad}"), r.stderr


PROXY = """[proxy]
listen = 127.0.0.1:1
egress = 127.0.0.2
{proxy}
[user alice]
password_hash = {hash}
"""


@pytest.mark.parametrize("proxy,user,want", [
    ("egress_policy = random", "", ":4: egress_policy must be round-robin, sticky or primary"),
    ("relay = zerocopy", "", ":4: relay must be auto, splice or copy"),
    ("", "pbkdf2-sha256$1000$c2FsdA", ":6: password_hash: expected pbkdf2-sha256$ITERATIONS$SALT$HASH"),
    ("", "sha1$x", ":6: password_hash must start with pbkdf2-sha256$"),
])
def test_config_error_names_the_key_once(proxy, user, want, tmp_path, password_hash):
    cfg = tmp_path / "p.ini"
    cfg.write_text(PROXY.format(proxy=proxy, hash=user or password_hash))
    r = run("proxy", "-c", str(cfg), "--check")
    assert r.returncode == 1 and want in r.stderr, r.stderr
    key = want.split(": ", 1)[1].split(" ")[0].rstrip(":")
    assert r.stderr.count(key) == 1, r.stderr


def test_check_counts_are_pluralised(tmp_path, password_hash):
    HASH = password_hash
    cfg = tmp_path / "p.ini"
    cfg.write_text(PROXY.format(proxy="", hash=HASH))
    r = run("proxy", "-c", str(cfg), "--check")
    assert r.returncode == 0 and r.stdout == f"{cfg}: ok (1 user, 1 egress address)\n", r.stdout + r.stderr
    cfg.write_text(PROXY.format(proxy="", hash=HASH).replace("egress = 127.0.0.2", "egress = 127.0.0.2 127.0.0.3")
                   + "[user bob]\npassword_hash = " + HASH + "\n")
    r = run("proxy", "-c", str(cfg), "--check")
    assert r.stdout == f"{cfg}: ok (2 users, 2 egress addresses)\n", r.stdout + r.stderr
