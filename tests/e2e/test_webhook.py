"""iplock webhook sign|verify, cross-checked both ways with Debian's python3-stripe."""
import os
import secrets
import string
import subprocess
import time
from pathlib import Path

import pytest
import stripe

BIN = os.environ.get("IPLOCK_BIN") or str(Path(__file__).resolve().parents[2] / "build" / "iplock")
ALNUM = string.ascii_letters + string.digits


def whsec():
    # built at run time: no secret-looking literal in the tree
    return "wh" + "sec_" + "".join(secrets.choice(ALNUM) for _ in range(32))


def run(*args, payload=b"", env=None):
    return subprocess.run([BIN, "webhook", *args], input=payload, capture_output=True,
                          timeout=20, env=env)


def sign(secret_list, payload, ts=None):
    args = ["sign"]
    for s in secret_list:
        args += ["--secret", s]
    if ts is not None:
        args += ["--timestamp", str(ts)]
    r = run(*args, payload=payload)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode().strip()


def verify(secret_list, header, payload, tolerance=None):
    args = ["verify", "--header", header]
    for s in secret_list:
        args += ["--secret", s]
    if tolerance is not None:
        args += ["--tolerance", str(tolerance)]
    return run(*args, payload=payload)


def py_verify(payload, header, secret, tolerance=300):
    """(ok, message) as stripe-python sees it."""
    try:
        stripe.WebhookSignature.verify_header(payload.decode(), header, secret, tolerance)
        return True, ""
    except stripe.error.SignatureVerificationError as e:
        return False, str(e)


def py_header(payload, secret, ts):
    sig = stripe.WebhookSignature._compute_signature("%d.%s" % (ts, payload.decode()), secret)
    return "t=%d,v1=%s" % (ts, sig)


PAYLOAD = b'{"id":"evt_1","object":"event","type":"charge.succeeded","data":{"x":"\xc3\xa9"}}'


def test_ours_verify_in_stripe_python():
    s = whsec()
    h = sign([s], PAYLOAD)
    assert h.startswith("t=") and ",v1=" in h
    assert py_verify(PAYLOAD, h, s) == (True, "")


def test_stripe_python_headers_verify_here():
    s = whsec()
    for payload in (PAYLOAD, b"", b"plain text\nwith lines\n", "ünïcødé".encode()):
        h = py_header(payload, s, int(time.time()))
        r = verify([s], h, payload)
        assert r.returncode == 0, (payload, r.stderr)


def test_same_signature_as_stripe_python():
    s = whsec()
    ts = 1492774577
    assert sign([s], PAYLOAD, ts) == py_header(PAYLOAD, s, ts)


def test_tampered_payload_fails_both():
    s = whsec()
    h = sign([s], PAYLOAD)
    bad = PAYLOAD.replace(b"evt_1", b"evt_2")
    r = verify([s], h, bad)
    ok, msg = py_verify(bad, h, s)
    assert r.returncode == 1 and not ok
    assert r.stderr.decode().strip() == msg == \
        "No signatures found matching the expected signature for payload"


def test_wrong_secret_fails_both():
    s, other = whsec(), whsec()
    h = sign([s], PAYLOAD)
    r = verify([other], h, PAYLOAD)
    assert r.returncode == 1 and not py_verify(PAYLOAD, h, other)[0]


def test_stale_timestamp_fails_both_with_the_sdk_message():
    s = whsec()
    ts = int(time.time()) - 3600
    h = sign([s], PAYLOAD, ts)
    r = verify([s], h, PAYLOAD)
    ok, msg = py_verify(PAYLOAD, h, s)
    assert r.returncode == 1 and not ok
    assert r.stderr.decode().strip() == msg == "Timestamp outside the tolerance zone (%d)" % ts
    # a wider tolerance accepts it, in both
    assert verify([s], h, PAYLOAD, tolerance=7200).returncode == 0
    assert py_verify(PAYLOAD, h, s, 7200)[0]


def test_v0_only_header_fails_both():
    s = whsec()
    ts = int(time.time())
    sig = stripe.WebhookSignature._compute_signature("%d.%s" % (ts, PAYLOAD.decode()), s)
    h = "t=%d,v0=%s" % (ts, sig)
    r = verify([s], h, PAYLOAD)
    ok, msg = py_verify(PAYLOAD, h, s)
    assert r.returncode == 1 and not ok
    assert r.stderr.decode().strip() == msg == "No signatures found with expected scheme v1"


@pytest.mark.parametrize("header", [
    "", "garbage", "t=", "t=abc,v1=00", "v1=00", "t=1,v1", "t", "t=1__2,v1=a", "t=0x10,v1=a",
    "t=1, v1=abc", "t=1,V1=abc", ",,,", "t=-5,v1=a", "t=1=2,v1=a", "t= 7 ,v1=a", "t=+7,v1=a",
    "t=1,t=x,v1=a", "t=1_0,v1=a", "t=_1,v1=a", "t=1_,v1=a", "v1=a,t=1", "t=1\t,v1=a",
])
def test_malformed_and_odd_headers_agree_with_stripe_python(header):
    s = whsec()
    r = verify([s], header, PAYLOAD)
    ok, msg = py_verify(PAYLOAD, header, s)
    assert (r.returncode == 0) == ok
    assert r.returncode in (0, 1)
    assert r.stderr.decode().strip() == msg


def test_odd_timestamps_sign_like_python():
    """t=007 is signed as 7 (Python's int()), so a stripe-made signature over '7.' verifies."""
    s = whsec()
    ts = int(time.time())
    sig = stripe.WebhookSignature._compute_signature("%d.%s" % (ts, PAYLOAD.decode()), s)
    for form in ("00%d" % ts, "+%d" % ts, " %d " % ts):
        h = "t=%s,v1=%s" % (form, sig)
        assert py_verify(PAYLOAD, h, s)[0]
        assert verify([s], h, PAYLOAD).returncode == 0, form


def test_rolling_secrets():
    old, new = whsec(), whsec()
    both = sign([old, new], PAYLOAD)
    assert both.count(",v1=") == 2
    # Stripe-python verifies the two-signature header with either secret
    assert py_verify(PAYLOAD, both, old)[0] and py_verify(PAYLOAD, both, new)[0]
    # we accept a header from either secret when given both
    for s in (old, new):
        h = py_header(PAYLOAD, s, int(time.time()))
        assert verify([old, new], h, PAYLOAD).returncode == 0
    assert verify([whsec()], both, PAYLOAD).returncode == 1


def test_secret_file_and_env(tmp_path):
    s = whsec()
    f = tmp_path / "secrets"
    f.write_text("# rolling\n%s\n" % s)
    h = sign([s], PAYLOAD)
    r = run("verify", "--secret-file", str(f), "--header", h, payload=PAYLOAD)
    assert r.returncode == 0, r.stderr
    env = dict(os.environ, IPLOCK_WEBHOOK_SECRET=s)
    assert run("verify", "--header", h, payload=PAYLOAD, env=env).returncode == 0
    p = tmp_path / "payload"
    p.write_bytes(PAYLOAD)
    assert run("verify", "--secret", s, "--header", h, "--payload-file", str(p)).returncode == 0


def test_usage_errors():
    assert run("--help").returncode == 0
    assert run("sign", "--help").returncode == 0
    assert run().returncode == 2
    assert run("frobnicate").returncode == 2
    assert run("sign").returncode == 2  # no secret
    assert run("verify", "--secret", "whsec_x").returncode == 2  # no header
    r = run("verify", "--secret", "whsec_x", "--header", "t=1,v1=a", "--tolerance", "0")
    assert r.returncode == 2 and b"refused" in r.stderr
    assert run("sign", "--secret", "whsec_x", "--timestamp", "soon").returncode == 2
    assert run("sign", "--secret", "whsec_x", "--bogus").returncode == 2
