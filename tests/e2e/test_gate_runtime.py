"""Issue 10: the gate on the shared runtime (src/net/server.c) and TLS context (src/net/tls.c):
one TLS 1.3 session ticket per handshake as every iplock listener (OpenSSL's default is two),
no TLS 1.1, and sd_notify READY/RELOADING/STOPPING around SIGHUP and SIGTERM."""
import os
import signal
import socket
import subprocess
import time

from gate_util import Gate, create_key, free_port, wait_port, IPLOCK


def make_cert(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    return cert, key


def s_client(port, *args):
    req = b"GET /v1/charges HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-ign_eof", *args],
                          input=req, capture_output=True, timeout=20)


def test_gate_tls_is_net_tls(tmp_path, store_db):
    db = store_db(tmp_path)
    create_key(db, "--type", "secret", "--mode", "test")
    cert, key = make_cert(tmp_path)
    g = Gate(tmp_path, db, mode="forward-auth", listen_opts={"plain": "tls"},
             extra=f"tls_cert = {cert}\ntls_key = {key}")
    try:
        p = s_client(g.port, "-tls1_3")
        out = p.stdout.decode(errors="replace")
        assert "HTTP/1.1 401" in out, out[-2000:]   # the gate answered over TLS 1.3
        assert out.count("Post-Handshake New Session Ticket arrived") == 1, out[-3000:]
        p = s_client(g.port, "-tls1_1")
        assert "HTTP/1.1" not in p.stdout.decode(errors="replace")
    finally:
        g.stop()


def test_gate_sd_notify(tmp_path, store_db):
    db = store_db(tmp_path)
    create_key(db, "--type", "secret", "--mode", "test")
    port = free_port()
    cfg = tmp_path / "gate.ini"
    cfg.write_text(f"[gate]\nlisten = 127.0.0.1:{port}\ndb = {db}\nmode = forward-auth\n"
                   f"access_log = {tmp_path / 'access.log'}\nworkers = 2\n")
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    proc = subprocess.Popen([IPLOCK, "gate", "-c", str(cfg)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        assert sock.recv(4096) == b"READY=1"
        wait_port("127.0.0.1", port)
        proc.send_signal(signal.SIGHUP)
        assert sock.recv(4096).startswith(b"RELOADING=1\nMONOTONIC_USEC=")
        assert sock.recv(4096) == b"READY=1"
        proc.send_signal(signal.SIGTERM)
        assert sock.recv(4096) == b"STOPPING=1"
        assert proc.wait(timeout=10) == 0
        err = proc.stderr.read().decode()
        assert "access log reopened" in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
