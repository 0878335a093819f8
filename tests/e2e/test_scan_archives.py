"""iplock scan beyond plain files: archives found by content (nested), docker-save and OCI
images (layers, whiteouts, config Env/history), encoded secrets (base64 in a Kubernetes Secret,
double base64, percent, JSON/shell escapes), zip bombs and truncated streams. The corpus is
built here (python zipfile/tarfile/gzip; no docker daemon); keys are made at run time."""
import base64
import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import secrets
import string
import subprocess
import tarfile
import urllib.parse
import zipfile
from pathlib import Path

import pytest

BIN = os.environ.get("IPLOCK_BIN") or str(Path(__file__).resolve().parents[2] / "build" / "iplock")
ALNUM = string.ascii_letters + string.digits


def body(n=99):
    return "".join(secrets.choice(ALNUM) for _ in range(n))


def key(kind="sk_live", n=99):
    a, b = kind.split("_", 1)
    return a + "_" + b + "_" + body(n)


def scan(*args, stdin=None, cwd=None, timeout=60):
    return subprocess.run([BIN, "scan", *args], input=stdin, cwd=cwd, capture_output=True,
                          timeout=timeout)


def scan_json(*args, stdin=None, cwd=None):
    r = scan("--format", "json", "--show-secrets", *args, stdin=stdin, cwd=cwd)
    assert r.returncode in (0, 1), r.stderr
    return r, json.loads(r.stdout)["findings"]


def tar_bytes(members, fmt=tarfile.PAX_FORMAT, mode="w"):
    """members: list of (name, bytes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=fmt) as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 1700000000
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def zip_bytes(members, method=zipfile.ZIP_DEFLATED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def sha(b):
    return hashlib.sha256(b).hexdigest()


def docker_save(layers, env, history, new_layout=False):
    """A `docker save` tarball: layers is a list of member lists (each a layer tar)."""
    layer_tars = [tar_bytes(m, fmt=tarfile.GNU_FORMAT) for m in layers]
    diff_ids = ["sha256:" + sha(t) for t in layer_tars]
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": env, "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": h} for h in history],
    }).encode()
    members = []
    if new_layout:
        cfg_name = "blobs/sha256/" + sha(config)
        names = ["blobs/sha256/" + sha(t) for t in layer_tars]
        members += [(n, t) for n, t in zip(names, layer_tars)]
        members.append((cfg_name, config))
    else:
        cfg_name = sha(config) + ".json"
        names = []
        for i, t in enumerate(layer_tars):
            lid = sha(b"layer%d" % i + t)
            names.append(lid + "/layer.tar")
            members += [(lid + "/VERSION", b"1.0"), (lid + "/layer.tar", t)]
        members.append((cfg_name, config))
    manifest = json.dumps([{"Config": cfg_name, "RepoTags": ["app:1"], "Layers": names}]).encode()
    members.append(("manifest.json", manifest))
    return tar_bytes(members), diff_ids, sha(config)


def oci_layout(dirpath, layers, env):
    blobs = dirpath / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data):
        d = sha(data)
        (blobs / d).write_bytes(data)
        return "sha256:" + d, len(data)

    ldesc = []
    for m in layers:
        t = gzip.compress(tar_bytes(m, fmt=tarfile.GNU_FORMAT), mtime=0)
        d, n = put(t)
        ldesc.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d,
                      "size": n})
    cd, cn = put(json.dumps({"config": {"Env": env}, "rootfs": {"diff_ids": []},
                             "history": []}).encode())
    md, mn = put(json.dumps({"schemaVersion": 2, "config": {"digest": cd, "size": cn},
                             "layers": ldesc}).encode())
    (dirpath / "index.json").write_text(json.dumps(
        {"schemaVersion": 2, "manifests": [{"digest": md, "size": mn}]}))
    (dirpath / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return [x["digest"] for x in ldesc], cd


@pytest.fixture
def corpus(tmp_path):
    """The issue's corpus: planted keys (where each must be found) and negatives."""
    c = tmp_path / "corpus"
    c.mkdir()
    planted = {}

    # a key in a zip inside a tar.gz, at line 12 of app/config.js
    k = key("sk_live")
    js = "".join("// line %d\n" % i for i in range(1, 12)) + "module.exports = {key: '%s'};\n" % k
    inner = zip_bytes([("app/config.js", js.encode()), ("README", b"nothing here\n")])
    (c / "release.tar.gz").write_bytes(gzip.compress(tar_bytes(
        [("bundle.zip", inner), ("notes.txt", b"release notes\n")])))
    planted[k] = ("release.tar.gz!bundle.zip!app/config.js", 12)

    # xz, bzip2 and zstd-less single streams, and a jar named .bin (content, not name)
    k = key("rk_live")
    (c / "logs.xz").write_bytes(lzma.compress(("ok\nAuthorization: Bearer %s\n" % k).encode()))
    planted[k] = ("logs.xz", 2)
    k = key("sk_live")
    (c / "dump.bz2").write_bytes(bz2.compress(("x\ny\nSTRIPE=%s\n" % k).encode()))
    planted[k] = ("dump.bz2", 3)
    k = key("rk_live")
    (c / "plugin.bin").write_bytes(zip_bytes([("META-INF/app.properties",
                                               ("stripe.key=%s\n" % k).encode())]))
    planted[k] = ("plugin.bin!META-INF/app.properties", 1)

    # a docker-save image: a key added in layer 1 and deleted in layer 2; a key in ENV and
    # in a history line
    k_del, k_env, k_hist = key("sk_live"), key("sk_live"), key("rk_live")
    img, diff_ids, cfg = docker_save(
        layers=[[("app/main.py", b"print('hi')\n")],
                [("app/.env", ("A=1\nB=2\nSTRIPE_KEY=%s\n" % k_del).encode())],
                [("app/.wh..env", b""), ("app/run.sh", b"#!/bin/sh\n")]],
        env=["PATH=/usr/bin", "STRIPE_KEY=" + k_env],
        history=["/bin/sh -c #(nop) ADD file:abc in /", "/bin/sh -c #(nop)  ENV RK=" + k_hist])
    (c / "image.tar").write_bytes(img)
    planted[k_del] = ("image.tar!%s!app/.env (deleted in a later layer)" % diff_ids[1], 3)
    planted[k_env] = ("image.tar!sha256:%s!config.Env[1]" % cfg, 1)
    planted[k_hist] = ("image.tar!sha256:%s!history[1].created_by" % cfg, 1)

    # base64 in a Kubernetes Secret (line 7), and double base64 in an .env (line 2)
    k = key("sk_live")
    b64 = base64.b64encode(k.encode()).decode()
    (c / "secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: stripe\ntype: Opaque\ndata:\n"
        "  STRIPE_SECRET_KEY: %s\n  USER: %s\n" % (b64, base64.b64encode(b"admin").decode()))
    planted[k] = ("secret.yaml", 7)
    k = key("rk_live")
    bb = base64.b64encode(base64.b64encode(k.encode())).decode()
    (c / "double.env").write_text("# encoded twice\nSTRIPE_B64B64=%s\nOTHER=1\n" % bb)
    planted[k] = ("double.env", 2)

    # negatives: archives, images and encodings of near misses and placeholders
    neg = c / "neg"
    neg.mkdir()
    near = "task_live_%s sk_live_%s sk-live_%s sk_live_xxxxxxxxxxxxxxxxxxxx\n" % (
        body(30), body(9), body(30))
    (neg / "near.tar.gz").write_bytes(gzip.compress(tar_bytes([("a.txt", near.encode())])))
    (neg / "near.zip").write_bytes(zip_bytes([("a.txt", near.encode())]))
    (neg / "b64.yaml").write_text("data:\n  a: %s\n  b: %s\n" % (
        base64.b64encode(near.encode()).decode(), base64.b64encode(os.urandom(300)).decode()))
    (neg / "hashes.txt").write_text("\n".join(sha(os.urandom(8)) for _ in range(200)) + "\n")
    (neg / "random.b64").write_text(base64.b64encode(os.urandom(20000)).decode() + "\n")
    negimg, _, _ = docker_save(layers=[[("etc/hosts", b"127.0.0.1 localhost\n")]],
                               env=["PATH=/bin", "MODE=sk_live_short"], history=["RUN true"])
    (neg / "neg-image.tar").write_bytes(negimg)
    return c, planted


def test_corpus_recall_and_precision(corpus):
    c, planted = corpus
    r, f = scan_json(str(c))
    got = {x["secret"]: (x["file"], x["line"]) for x in f}
    want = {k: (str(c / p), line) for k, (p, line) in planted.items()}
    missing = {k[:12]: v for k, v in want.items() if k not in got}
    assert not missing, "missed: %r\nstderr: %s" % (missing, r.stderr.decode())
    for k, v in want.items():
        assert got[k] == v, (k[:12], got[k], v)
    extra = [x for x in f if x["secret"] not in want]
    assert not extra, extra
    assert not [x for x in f if "/neg/" in x["file"]]
    assert r.returncode == 1


def test_zip_bomb_skipped_and_scan_goes_on(tmp_path):
    k = key("sk_live")
    bomb = zip_bytes([("zeros.bin", b"\0" * (200 << 20)), ("after.txt", ("k=%s\n" % k).encode())])
    assert len(bomb) < 400_000
    (tmp_path / "bomb.zip").write_bytes(bomb)
    k2 = key("rk_live")
    (tmp_path / "z.txt").write_text("later=%s\n" % k2)
    r, f = scan_json(str(tmp_path))
    err = r.stderr.decode()
    assert "bomb.zip!zeros.bin: skipped: compression ratio over 100" in err, err
    assert "1 archive member skipped" in err
    # the member after the bomb and the next file are still scanned
    assert {x["secret"] for x in f} == {k, k2}
    assert r.returncode == 1
    # machine-readable too: the JSON report and SARIF's tool execution notifications
    doc = json.loads(scan("--format", "json", str(tmp_path)).stdout)
    [skip] = doc["skipped"]
    assert skip["path"] == str(tmp_path / "bomb.zip") + "!zeros.bin"
    assert skip["reason"].startswith("compression ratio over 100 after ")
    assert doc["summary"]["skipped"] == 1
    sarif = json.loads(scan("--format", "sarif", str(tmp_path)).stdout)
    notes = sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert len(notes) == 1 and notes[0]["level"] == "warning"
    assert "bomb.zip!zeros.bin: skipped: compression ratio over 100" in notes[0]["message"]["text"]


def test_size_limit_inside_archives(tmp_path):
    k = key("sk_live")
    data = (body(80) + "\n").encode() * 30000 + ("k=%s\n" % k).encode()
    (tmp_path / "big.tar.gz").write_bytes(gzip.compress(tar_bytes([("big.txt", data)])))
    r, f = scan_json("--max-decompressed-size", "1M", str(tmp_path / "big.tar.gz"))
    assert f == [] and r.returncode == 0
    assert "big.tar.gz!big.txt: skipped: larger than 1048576 bytes decompressed" in \
        r.stderr.decode()
    r, f = scan_json(str(tmp_path / "big.tar.gz"))
    assert [x["secret"] for x in f] == [k]


def test_truncated_gzip_skipped_with_reason(tmp_path):
    k = key("sk_live")
    gz = gzip.compress(("\n".join(body(70) for _ in range(5000)) + "\n").encode())
    (tmp_path / "cut.log.gz").write_bytes(gz[: len(gz) // 2])
    (tmp_path / "ok.txt").write_text("k=%s\n" % k)
    r, f = scan_json(str(tmp_path))
    err = r.stderr.decode()
    assert "cut.log.gz: skipped: corrupt or truncated" in err, err
    assert [x["secret"] for x in f] == [k]


def test_corrupt_zip_member(tmp_path):
    k = key("sk_live")
    z = bytearray(zip_bytes([("a.txt", ("x" * 5000 + "\n").encode() * 10),
                             ("b.txt", ("k=%s\n" % k).encode())], method=zipfile.ZIP_DEFLATED))
    z[60:90] = b"\xff" * 30  # inside a.txt's deflate data
    (tmp_path / "bad.zip").write_bytes(bytes(z))
    r = scan("--format", "json", str(tmp_path / "bad.zip"))
    assert r.returncode in (0, 1)
    assert "bad.zip" in r.stderr.decode() and "skipped" in r.stderr.decode()


def test_nesting_depth_limit(tmp_path):
    k = key("sk_live")
    blob = ("k=%s\n" % k).encode()
    for i in range(3):
        blob = zip_bytes([("l%d.zip" % i if i else "k.txt", blob)])
    (tmp_path / "deep.zip").write_bytes(blob)
    r, f = scan_json(str(tmp_path / "deep.zip"))
    assert [x["file"] for x in f] == [str(tmp_path / "deep.zip") + "!l2.zip!l1.zip!k.txt"]
    r, f = scan_json("--max-archive-depth", "2", str(tmp_path / "deep.zip"))
    assert f == [] and "nested deeper than --max-archive-depth" in r.stderr.decode()
    r, f = scan_json("--max-archive-depth", "0", str(tmp_path / "deep.zip"))
    assert f == []


def test_stdin_and_git_blob_archives(tmp_path):
    k = key("sk_live")
    tgz = gzip.compress(tar_bytes([("conf/app.env", ("\nK=%s\n" % k).encode())]))
    r, f = scan_json("-", stdin=tgz)
    assert [(x["file"], x["line"], x["secret"]) for x in f] == [("-!conf/app.env", 2, k)]
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "dist.tgz").write_bytes(tgz)
    env = dict(os.environ, GIT_AUTHOR_NAME="a", GIT_AUTHOR_EMAIL="a@x", GIT_COMMITTER_NAME="a",
               GIT_COMMITTER_EMAIL="a@x")
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-qm", "dist"]):
        subprocess.run(["git", "-C", str(repo), *cmd], check=True, env=env)
    r, f = scan_json("--git", str(repo))
    assert [(x["file"], x["line"], x["secret"]) for x in f] == [("dist.tgz!conf/app.env", 2, k)]
    assert f[0]["commit"]


def test_docker_save_new_layout_and_oci_dir(tmp_path):
    k1, k2 = key("sk_live"), key("rk_live")
    img, diff_ids, cfg = docker_save(
        layers=[[("srv/config.yml", ("key: %s\n" % k1).encode())],
                [("srv/.wh..wh..opq", b"")]],
        env=["E=" + k2], history=[], new_layout=True)
    (tmp_path / "new.tar").write_bytes(img)
    r, f = scan_json(str(tmp_path / "new.tar"))
    got = sorted((x["file"], x["secret"]) for x in f)
    base = str(tmp_path / "new.tar")
    assert got == sorted([(base + "!%s!srv/config.yml (deleted in a later layer)" % diff_ids[0], k1),
                          (base + "!sha256:%s!config.Env[0]" % cfg, k2)]), got

    k3, k4 = key("sk_live"), key("sk_live")
    d = tmp_path / "oci"
    d.mkdir()
    layers, cd = oci_layout(d, [[("app/secret.txt", ("s=%s\n" % k3).encode())],
                                [("app/other.txt", b"x\n")]], ["K=" + k4])
    r, f = scan_json(str(d))
    got = sorted((x["file"], x["secret"]) for x in f)
    assert got == sorted([(str(d) + "!%s!app/secret.txt" % layers[0], k3),
                          (str(d) + "!%s!config.Env[0]" % cd, k4)]), got


def test_other_providers_each_rule_and_negatives(tmp_path):
    b36 = body(36)
    aws_id = "AK" + "IA" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
    aws_secret = "aB/" + body(37)
    toks = {
        "github_pat": "gh" + "p_" + b36,
        "github_oauth": "gh" + "o_" + body(36),
        "github_app_token": "gh" + "s_" + body(36),
        "github_refresh_token": "gh" + "r_" + body(36),
        "github_fine_grained_pat": "github" + "_pat_" + body(82),
        "mercury": "secret-token:" + "mercury_production_wma_" + body(43) + "_yrucrem",
        "unit": "v2.public." + "eyJyb2xlIjoi" + body(120),
        "adyen": "AQE" + body(80) + "==-" + body(43) + "=-" + "k(2^<Lt*nb~m4zQ9",
        "aws_access_key_id": aws_id,
        "aws_secret_access_key": aws_secret,
    }
    (tmp_path / "creds.txt").write_text(
        "".join("%s: %s\n" % (k, v) for k, v in toks.items() if not k.startswith("aws")) +
        "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n" % (aws_id, aws_secret))
    neg = tmp_path / "neg"
    neg.mkdir()
    (neg / "near.txt").write_text("\n".join([
        "ghp_" + body(20), "xghp_" + b36, "gh" + "p_" + body(40), "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", body(40), "github_pat_" + body(20),
        "mercury_production_wma_" + body(10) + "_yrucrem", "v2.public.eyJzdWIi" + body(80),
        "AQE" + body(80), "MAKIA" + "ABCDEFGHIJKLMNOP"]) + "\n")
    r, f = scan_json(str(tmp_path))
    got = {x["kind"]: x["secret"] for x in f}
    assert got == toks, (sorted(got), r.stderr)
    assert not [x for x in f if "/neg/" in x["file"]]
    sev = {x["kind"]: x["severity"] for x in f}
    assert sev["aws_access_key_id"] == "high" and sev["mercury"] == "critical"
    # SARIF has one rule per kind, new ones included
    r = scan("--format", "sarif", str(tmp_path / "creds.txt"))
    rules = json.loads(r.stdout)["runs"][0]["tool"]["driver"]["rules"]
    assert {"github_pat", "mercury", "unit", "adyen", "aws_access_key_id"} <= {x["id"] for x in rules}


def test_percent_and_escapes_and_decode_depth(tmp_path):
    k = key("sk_live")
    a, b = k.split("_", 1)
    (tmp_path / "ci.log").write_text(
        "step 1\nGET /cb?key=%s HTTP/1.1\n" % urllib.parse.quote(k, safe="").replace("_", "%5F") +
        '{"env": {"KEY": "%s"}}\n' % "".join("\\u%04x" % ord(c) for c in k))
    r, f = scan_json(str(tmp_path / "ci.log"))
    assert sorted(x["line"] for x in f) == [2, 3] and {x["secret"] for x in f} == {k}
    r, f = scan_json("--max-decode-depth", "0", str(tmp_path / "ci.log"))
    assert f == []
    bb = base64.b64encode(base64.b64encode(k.encode())).decode()
    (tmp_path / "d.env").write_text("X=%s\n" % bb)
    assert [x["secret"] for x in scan_json("--max-decode-depth", "1", str(tmp_path / "d.env"))[1]] == []
    assert [x["secret"] for x in scan_json(str(tmp_path / "d.env"))[1]] == [k]
    r = scan("--max-decode-depth", "9", str(tmp_path))
    assert r.returncode == 2 and b"bad value" in r.stderr


def test_git_blob_over_64mib_archive_streamed(tmp_path):
    """blobs over 64 MiB are streamed, not held: their first bytes still tell an archive"""
    k = key("sk_live")
    big = tar_bytes([("big.bin", os.urandom(65 << 20)), ("conf.env", ("K=%s\n" % k).encode())])
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "big.tar").write_bytes(big)
    env = dict(os.environ, GIT_AUTHOR_NAME="a", GIT_AUTHOR_EMAIL="a@x", GIT_COMMITTER_NAME="a",
               GIT_COMMITTER_EMAIL="a@x")
    for cmd in (["init", "-q"], ["-c", "core.compression=0", "add", "."], ["commit", "-qm", "big"]):
        subprocess.run(["git", "-C", str(repo), *cmd], check=True, env=env, timeout=120)
    r, f = scan_json("--git", str(repo))
    assert [(x["file"], x["line"], x["secret"]) for x in f] == [("big.tar!conf.env", 1, k)]


def test_gzipped_docker_save(tmp_path):
    """`docker save | gzip`: the image is still read through its manifest (layers by digest)"""
    k1, k2 = key("sk_live"), key("rk_live")
    img, diff_ids, cfg = docker_save(
        layers=[[("a/x.env", ("K=%s\n" % k1).encode())]] + [[("f%d" % i, body(3000).encode())]
                                                             for i in range(40)],
        env=["E=" + k2], history=["/bin/sh -c echo step %d %s" % (i, body(60)) for i in range(3000)])
    (tmp_path / "img.tar.gz").write_bytes(gzip.compress(img))  # a config over one inflate block
    r, f = scan_json(str(tmp_path / "img.tar.gz"))
    base = str(tmp_path / "img.tar.gz")
    assert sorted((x["file"], x["secret"]) for x in f) == sorted(
        [(base + "!%s!a/x.env" % diff_ids[0], k1), (base + "!sha256:%s!config.Env[0]" % cfg, k2)])
