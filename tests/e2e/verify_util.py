"""Helpers for the iplock echo / verify tests and the Stripe end-to-end scenario: a test CA made
with the openssl CLI, a small fake Stripe API, a running `iplock echo`, and `iplock verify`.
Every process started here is stopped by its own handle; every wait is bounded."""
import json
import subprocess

from conftest import IPLOCK, free_port, stop_process, wait_port
from fake_stripe import FakeStripe  # noqa: F401 (re-exported for the tests)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, timeout=60, **kw)


def make_ca(d):
    """A test CA and a server certificate for 127.0.0.1 / localhost signed by it.
    Returns (ca_crt, server_crt, server_key)."""
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = d / "ca.key", d / "ca.crt"
    key, csr, crt, ext = d / "server.key", d / "server.csr", d / "server.crt", d / "server.ext"
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(ca_key), "-out", str(ca_crt), "-days", "2",
         "-subj", "/CN=iplock test CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(csr), "-subj", "/CN=localhost"])
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext)])
    return ca_crt, crt, key


class Echo:
    """A running `iplock echo`."""

    def __init__(self, tmp, cert=None, key=None):
        self.port = free_port()
        self.tls = cert is not None
        self.err = open(tmp / f"echo-{self.port}.err", "w+")
        args = [IPLOCK, "echo", "--listen", f"127.0.0.1:{self.port}"]
        if cert:
            args += ["--tls-cert", str(cert), "--tls-key", str(key)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.err)
        try:
            wait_port("127.0.0.1", self.port)
        except TimeoutError:
            self.stop()
            raise

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/ip"

    def stop(self):
        stop_process(self.proc)
        self.err.seek(0)
        text = self.err.read()
        self.err.close()
        assert self.proc.returncode == 0, f"iplock echo exited {self.proc.returncode}: {text[-2000:]}"


def verify(*args, timeout=60):
    """Runs `iplock verify ARGS`; returns the CompletedProcess (text)."""
    return subprocess.run([IPLOCK, "verify", *args], capture_output=True, text=True, timeout=timeout)


def verify_json(*args):
    p = verify("--json", *args)
    return p.returncode, json.loads(p.stdout), p.stderr
