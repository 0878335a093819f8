"""What the systemd units of issue 15 rely on, black-box: `iplock tunnel` (the iplock-tunnel@
unit, Type=notify, ExecReload=kill -HUP) tells systemd READY=1, survives SIGHUP and reports the
file's state, drains open connections on SIGTERM; every command's --help follows the common
layout and every config key the parsers accept is in iplock.ini(5) (tools/man.py check);
--version names a commit."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from conftest import IPLOCK, ROOT, free_port, wait_port

MAN = [sys.executable, str(ROOT / "tools" / "man.py")]


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


def notify_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(10)
    return s, path


def read_notify(sock, want):
    """Datagrams until one contains want; returns them all."""
    got = []
    deadline = time.time() + 10
    while time.time() < deadline:
        msg = sock.recv(4096).decode()
        got.append(msg)
        if want in msg:
            return got
    raise TimeoutError(f"no {want} in {got}")


def start_tunnel(tmp_path, proxy_port, listen_port):
    cfg = tmp_path / "tunnel-t.ini"
    cfg.write_text(f"[proxy]\nurl = http://u:p@127.0.0.1:{proxy_port}\n\n"
                   f"[tunnel t]\nlisten = 127.0.0.1:{listen_port}\nremote = db.example:5432\n")
    sock, path = notify_socket(tmp_path)
    log = open(tmp_path / "tunnel.log", "w+")
    p = subprocess.Popen([IPLOCK, "tunnel", "-c", str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                         env={**os.environ, "NOTIFY_SOCKET": path})
    return p, sock, cfg, log


def test_tunnel_notify_reload_and_drain(tmp_path):
    proxy = socket.socket()
    proxy.bind(("127.0.0.1", 0))
    proxy.listen(4)   # a proxy that accepts and never answers: the tunnel's connection stays open
    listen_port = free_port()
    p, sock, cfg, log = start_tunnel(tmp_path, proxy.getsockname()[1], listen_port)
    try:
        read_notify(sock, "READY=1")
        wait_port("127.0.0.1", listen_port)

        # reload: a valid file is reported valid, a broken one refused, the process stays
        p.send_signal(signal.SIGHUP)
        got = read_notify(sock, "READY=1")
        assert any("RELOADING=1" in m for m in got)
        wait_for(lambda: "is valid" in Path(log.name).read_text(), what="SIGHUP logged")
        cfg.write_text("[proxy]\nurl = ftp://nope\n")
        p.send_signal(signal.SIGHUP)
        read_notify(sock, "READY=1")
        wait_for(lambda: "the running settings stay" in Path(log.name).read_text()
                 and "tunnel-t.ini:2" in Path(log.name).read_text(), what="bad file logged")
        assert p.poll() is None

        # drain: SIGTERM with a connection open closes the listener, waits for the connection
        c = socket.create_connection(("127.0.0.1", listen_port))
        upstream, _ = proxy.accept()          # the tunnel dialled the proxy for it
        p.send_signal(signal.SIGTERM)
        read_notify(sock, "STOPPING=1")
        wait_for(lambda: "listeners closed" in Path(log.name).read_text(), what="drain logged")
        time.sleep(0.3)
        assert p.poll() is None, "stopped with a connection open"
        try:
            socket.create_connection(("127.0.0.1", listen_port), timeout=1).close()
            assert False, "the listener still accepts while draining"
        except OSError:
            pass
        c.close()
        upstream.close()
        assert p.wait(timeout=10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        proxy.close()
        sock.close()
        log.close()


def test_help_layout_and_man_keys():
    r = subprocess.run(MAN + ["check", IPLOCK], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_man_check_fails_on_an_undocumented_key(tmp_path):
    """A key a parser accepts but the docs table lacks fails the check (the copy of the tree gets
    one more key in src/gate/config.c)."""
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "docs", tree / "docs")
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("*.h"))
    gate = tree / "src" / "gate" / "config.c"
    gate.write_text(gate.read_text() + '\nstatic int x(const char *name) { return !strcmp(name, "zz_new_key"); }\n')
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import man
        assert not man.check_keys(ROOT)
        problems = man.check_keys(tree)
    finally:
        sys.path.pop(0)
    assert any("zz_new_key" in x and "src/gate" in x for x in problems), problems
    # and the docs row for a key that no parser accepts any more
    md = tree / "docs" / "tunnel.md"
    md.write_text(md.read_text().replace("| `remote` |", "| `remote_gone` |"))
    problems = man.check_keys(tree)
    assert any("remote" in x and "src/tunnel" in x for x in problems), problems
    assert any("remote_gone" in x for x in problems), problems


def test_man_pages_generated(tmp_path):
    r = subprocess.run(MAN + ["gen", IPLOCK, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    names = sorted(f.name for f in tmp_path.iterdir())
    cmds = re.findall(r"^  ([a-z][a-z0-9-]*) ", subprocess.run([IPLOCK, "--help"], capture_output=True,
                      text=True).stdout.split("Commands:")[1].split("\n\n")[0], re.M)
    assert set(names) == {"iplock.1", "iplock.ini.5"} | {f"iplock-{c}.1" for c in cmds}
    proxy = (tmp_path / "iplock-proxy.1").read_text()
    assert ".SH SYNOPSIS" in proxy and ".SH EXIT STATUS" in proxy and "drain_timeout" in proxy
    ini = (tmp_path / "iplock.ini.5").read_text()
    assert "drain_timeout" in ini and "usage_flush" in ini and "remote" in ini
    if shutil.which("man"):
        w = subprocess.run(["man", "--warnings", "-l", "-Tutf8", "-Z", str(tmp_path / "iplock.ini.5")],
                           capture_output=True, text=True, env={**os.environ, "MANWIDTH": "80"})
        assert w.returncode == 0 and not w.stderr, w.stderr


def test_version_names_a_commit():
    out = subprocess.run([IPLOCK, "--version"], capture_output=True, text=True).stdout
    assert re.fullmatch(r"iplock \d+\.\d+\.\d+ \(commit ([0-9a-f]{7,40}(-dirty)?|unknown)\)\n", out), out


def test_every_example_config_is_valid():
    """What `make install` puts in /etc/iplock (etc/iplock-NAME.example.ini) passes its own
    command's --check: a unit never starts on a file its binary refuses."""
    examples = sorted((ROOT / "etc").glob("iplock-*.example.ini"))
    assert {p.name.split("-")[1].split(".")[0] for p in examples} >= {"proxy", "gate", "console", "tunnel"}
    for p in examples:
        cmd = p.name[len("iplock-"):].split(".")[0].split("-")[0]
        r = subprocess.run([IPLOCK, cmd, "-c", str(p), "--check"], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, (p.name, r.stdout, r.stderr)
