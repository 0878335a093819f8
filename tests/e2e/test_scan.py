"""iplock scan as a black box: true positives in many syntaxes, negatives, formats (SARIF
structure), exit codes, ignores, baseline, stdin, git history. Keys are built at run time so
the repository holds nothing that looks like a key."""
import csv
import io
import json
import os
import secrets
import stat
import string
import subprocess
from pathlib import Path

import pytest

BIN = os.environ.get("IPLOCK_BIN") or str(Path(__file__).resolve().parents[2] / "build" / "iplock")
ALNUM = string.ascii_letters + string.digits


def body(n=99):
    return "".join(secrets.choice(ALNUM) for _ in range(n))


def key(kind="sk_live", n=99):
    if kind == "whsec":
        return "wh" + "sec_" + body(max(n, 32))
    a, b = kind.split("_", 1)
    return a + "_" + b + "_" + body(n)


def scan(*args, cwd=None, stdin=None, timeout=25):
    return subprocess.run([BIN, "scan", *args], cwd=cwd, input=stdin, capture_output=True,
                          timeout=timeout)


def scan_json(*args, cwd=None, stdin=None):
    r = scan("--format", "json", "--show-secrets", *args, cwd=cwd, stdin=stdin)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)


def test_true_positives_in_many_syntaxes(tmp_path):
    k = {name: key(kind) for name, kind in [
        ("env", "sk_live"), ("json", "rk_live"), ("yaml", "sk_test"), ("xml", "rk_test"),
        ("py", "sk_live"), ("js", "whsec"), ("url", "sk_live"), ("log", "rk_live"),
        ("eof", "sk_live"), ("b2b1", "sk_live"), ("b2b2", "rk_live"), ("org", "sk_org_live"),
        ("short", "sk_live")]}
    k["short"] = "sk_" + "live_" + body(24)
    k["org"] = "sk_" + "org_" + "live_" + body(99)
    files = {
        ".env": "# app\nSTRIPE_SECRET_KEY=%s\n" % k["env"],
        "config.json": '{\n  "stripe": {"key": "%s"}\n}\n' % k["json"],
        "config.yaml": "stripe:\n  secret_key: %s\n  mode: test\n" % k["yaml"],
        "app.xml": "<config><stripe key='%s'/></config>\n" % k["xml"],
        "pay.py": "import stripe\nstripe.api_key = \"%s\"\n" % k["py"],
        "hook.js": "const s = `%s`;\n" % k["js"],
        "url.txt": "https://example.com/cb?key=%s&user=1\n" % k["url"],
        "app.log": "2024-01-01T00:00:00Z WARN auth(Bearer %s) failed\n" % k["log"],
        "eof.txt": "no newline at the end: %s" % k["eof"],
        "b2b.csv": "%s,%s\n" % (k["b2b1"], k["b2b2"]),
        "org.toml": "key = [\"%s\"]\n" % k["org"],
        "legacy.ini": "key=%s|\n" % k["short"],
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    rc, rep = scan_json(".", cwd=tmp_path)
    assert rc == 1
    found = {f["secret"] for f in rep["findings"]}
    assert found == set(k.values())
    by = {f["secret"]: f for f in rep["findings"]}
    f = by[k["env"]]
    assert (f["file"], f["line"], f["column"], f["kind"], f["severity"]) == \
        (".env", 2, 19, "sk_live", "critical")
    assert f["offset"] == len("# app\nSTRIPE_SECRET_KEY=")
    assert by[k["yaml"]]["severity"] == "low" and by[k["js"]]["severity"] == "high"
    assert by[k["org"]]["kind"] == "sk_org"
    assert by[k["b2b2"]]["column"] == len(k["b2b1"]) + 2
    assert by[k["eof"]]["file"] == "eof.txt"
    import hashlib
    assert f["fingerprint"] == hashlib.sha256(k["env"].encode()).hexdigest()


@pytest.mark.parametrize("after", list(",.&<)]}/|\"' \t\n;:"))
def test_boundary_characters_after_a_key(tmp_path, after):
    k = key()
    (tmp_path / "f").write_text("x=" + k + after + "tail")
    rc, rep = scan_json(str(tmp_path / "f"))
    assert [f["secret"] for f in rep["findings"]] == [k]


def test_negatives(tmp_path):
    b = body(40)
    lines = [
        "ta" + "sk_live_" + b,           # task_live_: not a key
        "sk-live_" + b, "sk_live-" + b, "whsec-" + b, "Xsk_" + "live_" + b, "7rk_" + "live_" + b,
        "sk_" + "live_" + body(9),        # too short
        "sk_" + "live_" + body(248),      # too long: one longer token
        "sk_live_!!!!!!!!!!!!!!!!!!!!", "sk_live_" + "x" * 30, "sk_live_" + "a" * 30,
        "sk_live_YOUR_KEY_HERE", "sk_live_<your-key>", "sk_live_...", "sk_live_YOURSECRETKEY123",
        "wh" + "sec_" + body(31),         # whsec_ needs 32+
        "pk_" + "live_" + b,              # publishable: only with --include-publishable
    ]
    (tmp_path / "neg.txt").write_text("\n".join(lines) + "\n")
    r = scan(str(tmp_path / "neg.txt"))
    assert r.returncode == 0, r.stdout
    assert r.stdout == b""


def test_exit_codes_and_usage(tmp_path):
    (tmp_path / "clean.txt").write_text("nothing here\n")
    (tmp_path / "dirty.txt").write_text(key() + "\n")
    assert scan(str(tmp_path / "clean.txt")).returncode == 0
    assert scan(str(tmp_path / "dirty.txt")).returncode == 1
    assert scan("--help").returncode == 0
    assert scan("--bogus").returncode == 2
    assert scan("--format", "xml", str(tmp_path)).returncode == 2
    assert scan(str(tmp_path / "missing")).returncode == 2
    assert scan("--revoke", str(tmp_path)).returncode == 2  # --revoke without --db
    r = scan("--ignore-file", str(tmp_path / "nope"), str(tmp_path))
    assert r.returncode == 2 and r.stderr.count(b"\n") == 1


def test_text_output_is_redacted(tmp_path):
    k = key()
    (tmp_path / "f.env").write_text("K=%s\n" % k)
    r = scan(str(tmp_path / "f.env"))
    out = r.stdout.decode()
    assert r.returncode == 1
    assert k not in out and k not in r.stderr.decode()
    assert "sk_live_****" + k[-4:] in out
    assert "f.env:1:3: critical sk_live" in out
    assert k in scan("--show-secrets", str(tmp_path / "f.env")).stdout.decode()
    for fmt in ("json", "jsonl", "sarif", "csv"):
        assert k not in scan("--format", fmt, str(tmp_path)).stdout.decode()


def test_jsonl_and_csv(tmp_path):
    ks = [key(), key("rk_test")]
    (tmp_path / "a.txt").write_text("%s\n\"x,y\" %s\n" % tuple(ks))
    r = scan("--format", "jsonl", "--show-secrets", str(tmp_path))
    rows = [json.loads(l) for l in r.stdout.decode().splitlines()]
    assert [x["secret"] for x in rows] == ks and rows[1]["line"] == 2
    r = scan("--format", "csv", str(tmp_path))
    table = list(csv.DictReader(io.StringIO(r.stdout.decode())))
    assert [t["kind"] for t in table] == ["sk_live", "rk_test"]
    assert table[1]["column"] == "7" and table[0]["secret"].endswith(ks[0][-4:])


def test_sarif_structure(tmp_path):
    (tmp_path / "dir with space").mkdir()
    (tmp_path / "dir with space" / "k.py").write_text("a = 1\nKEY = '%s'\n" % key())
    (tmp_path / "w.txt").write_text(key("whsec"))
    r = scan("--format", "sarif", str(tmp_path))
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    sarif_validate(doc)
    assert doc["version"] == "2.1.0" and "sarif-2.1.0" in doc["$schema"]
    assert isinstance(doc["runs"], list) and len(doc["runs"]) == 1
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "iplock" and driver["version"]
    ids = [rule["id"] for rule in driver["rules"]]
    assert len(ids) == len(set(ids))
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"]
        assert rule["defaultConfiguration"]["level"] in ("none", "note", "warning", "error")
        assert float(rule["properties"]["security-severity"]) >= 0
    assert len(run["results"]) == 2
    for res in run["results"]:
        assert res["ruleId"] in ids and ids[res["ruleIndex"]] == res["ruleId"]
        assert res["level"] in ("none", "note", "warning", "error")
        assert res["message"]["text"]
        loc = res["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uri"]
        assert " " not in loc["artifactLocation"]["uri"]
        reg = loc["region"]
        assert reg["startLine"] >= 1 and reg["startColumn"] >= 1
        assert reg["endColumn"] > reg["startColumn"] and reg["byteLength"] > 0
        assert len(res["partialFingerprints"]["iplockKeyHash/v1"]) == 64
    py = [x for x in run["results"] if x["ruleId"] == "sk_live"][0]
    assert py["locations"][0]["physicalLocation"]["region"]["startLine"] == 2
    assert "dir%20with%20space/k.py" in py["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]


# SARIF 2.1.0 (OASIS, sarif-schema-2.1.0.json): the properties each object we emit may carry
# (the schema sets additionalProperties false on them) and the ones it requires. The schema file
# is not packaged in Debian nor shipped by any npm package we could reach, so this checks by hand.
SARIF_ALLOWED = {
    "sarifLog": {"$schema", "version", "runs", "inlineExternalProperties", "properties"},
    "run": {"tool", "invocations", "conversion", "language", "versionControlProvenance",
            "originalUriBaseIds", "artifacts", "logicalLocations", "graphs", "results",
            "automationDetails", "runAggregates", "baselineGuid", "redactionTokens",
            "defaultEncoding", "defaultSourceLanguage", "newlineSequences", "columnKind",
            "externalPropertyFileReferences", "threadFlowLocations", "taxonomies", "addresses",
            "translations", "policies", "webRequests", "webResponses", "specialLocations",
            "properties"},
    "tool": {"driver", "extensions", "properties"},
    "toolComponent": {"guid", "name", "organization", "product", "productSuite",
                      "shortDescription", "fullDescription", "fullName", "version",
                      "semanticVersion", "dottedQuadFileVersion", "releaseDateUtc", "downloadUri",
                      "informationUri", "globalMessageStrings", "notifications", "rules", "taxa",
                      "locations", "language", "contents", "isComprehensive",
                      "localizedDataSemanticVersion",
                      "minimumRequiredLocalizedDataSemanticVersion", "associatedComponent",
                      "translationMetadata", "supportedTaxonomies", "properties"},
    "reportingDescriptor": {"id", "deprecatedIds", "guid", "deprecatedGuids", "name",
                            "deprecatedNames", "shortDescription", "fullDescription",
                            "messageStrings", "defaultConfiguration", "helpUri", "help",
                            "relationships", "properties"},
    "reportingConfiguration": {"enabled", "level", "rank", "parameters", "properties"},
    "multiformatMessageString": {"text", "markdown", "properties"},
    "result": {"ruleId", "ruleIndex", "rule", "kind", "level", "message", "analysisTarget",
               "locations", "guid", "correlationGuid", "occurrenceCount", "partialFingerprints",
               "fingerprints", "stacks", "codeFlows", "graphs", "graphTraversals",
               "relatedLocations", "suppressions", "baselineState", "rank", "attachments",
               "hostedViewerUri", "workItemUris", "provenance", "fixes", "taxa", "webRequest",
               "webResponse", "properties"},
    "message": {"text", "markdown", "id", "arguments", "properties"},
    "location": {"id", "physicalLocation", "logicalLocations", "message", "annotations",
                 "relationships", "properties"},
    "physicalLocation": {"address", "artifactLocation", "region", "contextRegion", "properties"},
    "artifactLocation": {"uri", "uriBaseId", "index", "description", "properties"},
    "region": {"startLine", "startColumn", "endLine", "endColumn", "charOffset", "charLength",
               "byteOffset", "byteLength", "snippet", "message", "sourceLanguage", "properties"},
}
LEVELS = ("none", "note", "warning", "error")


def sarif_check(kind, obj, required=()):
    assert isinstance(obj, dict), (kind, obj)
    extra = set(obj) - SARIF_ALLOWED[kind]
    assert not extra, f"{kind} has properties the 2.1.0 schema forbids: {extra}"
    for r in required:
        assert r in obj, f"{kind} lacks required {r}"
    if "properties" in obj:
        bag = obj["properties"]
        assert isinstance(bag, dict)
        if "tags" in bag:
            assert all(isinstance(t, str) for t in bag["tags"])
            assert len(set(bag["tags"])) == len(bag["tags"])


def sarif_validate(doc):
    """The schema's constraints on what iplock writes: required members, enums, minimums."""
    sarif_check("sarifLog", doc, ("version", "runs"))
    assert doc["version"] == "2.1.0"
    assert doc["$schema"].startswith("https://") and doc["$schema"].endswith(".json")
    for run in doc["runs"]:
        sarif_check("run", run, ("tool",))
        assert run.get("columnKind", "unicodeCodePoints") in ("utf16CodeUnits",
                                                              "unicodeCodePoints")
        sarif_check("tool", run["tool"], ("driver",))
        drv = run["tool"]["driver"]
        sarif_check("toolComponent", drv, ("name",))
        for rule in drv.get("rules", []):
            sarif_check("reportingDescriptor", rule, ("id",))
            for m in ("shortDescription", "fullDescription", "help"):
                if m in rule:
                    sarif_check("multiformatMessageString", rule[m], ("text",))
            if "defaultConfiguration" in rule:
                sarif_check("reportingConfiguration", rule["defaultConfiguration"])
                assert rule["defaultConfiguration"].get("level", "warning") in LEVELS
        for res in run.get("results", []):
            sarif_check("result", res, ("message",))
            assert res.get("level", "warning") in LEVELS
            assert isinstance(res.get("ruleIndex", -1), int) and res.get("ruleIndex", -1) >= -1
            sarif_check("message", res["message"])
            assert "text" in res["message"] or "id" in res["message"]
            assert all(isinstance(v, str) for v in res.get("partialFingerprints", {}).values())
            for loc in res.get("locations", []):
                sarif_check("location", loc)
                ph = loc["physicalLocation"]
                sarif_check("physicalLocation", ph)
                assert "address" in ph or "artifactLocation" in ph
                sarif_check("artifactLocation", ph["artifactLocation"])
                assert isinstance(ph["artifactLocation"]["uri"], str)
                reg = ph["region"]
                sarif_check("region", reg)
                for f in ("startLine", "startColumn", "endLine", "endColumn"):
                    assert f not in reg or (isinstance(reg[f], int) and reg[f] >= 1), (f, reg)
                for f in ("byteOffset", "charOffset"):
                    assert f not in reg or (isinstance(reg[f], int) and reg[f] >= -1), (f, reg)
                for f in ("byteLength", "charLength"):
                    assert f not in reg or (isinstance(reg[f], int) and reg[f] >= 0), (f, reg)


def test_sarif_levels_severities_regions(tmp_path):
    """Each kind's level and security-severity (docs/scan.md), and each region on the key's
    exact bytes: 1-based line/column, endColumn one past the key's last column."""
    sk, wh, rk = key("sk_live", 60), key("whsec", 40), key("rk_test", 30)
    text = "first line\n  x = '%s' # two\n\n%s\tpad %s\n" % (sk, wh, rk)
    (tmp_path / "k.txt").write_text(text)
    r = scan("--format", "sarif", str(tmp_path / "k.txt"))
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    sarif_validate(doc)
    run = doc["runs"][0]
    rules = {rule["id"]: rule for rule in run["tool"]["driver"]["rules"]}
    want = {"sk_live": ("critical", "error", "9.5", sk),
            "whsec": ("high", "error", "8.0", wh),
            "rk_test": ("low", "warning", "3.0", rk)}
    assert [res["ruleId"] for res in run["results"]] == ["sk_live", "whsec", "rk_test"]
    raw = text.encode()
    lines = text.split("\n")
    for res in run["results"]:
        sev, level, score, k = want[res["ruleId"]]
        rule = rules[res["ruleId"]]
        assert rule["defaultConfiguration"]["level"] == level
        assert float(rule["properties"]["security-severity"]) == float(score)
        assert res["level"] == level and res["properties"]["severity"] == sev
        assert k not in json.dumps(res) and k[-4:] in res["message"]["text"]
        reg = res["locations"][0]["physicalLocation"]["region"]
        line = next(i for i, l in enumerate(lines) if k in l)
        col = lines[line].index(k) + 1
        assert (reg["startLine"], reg["startColumn"], reg["endLine"], reg["endColumn"]) == \
            (line + 1, col, line + 1, col + len(k)), (res["ruleId"], reg)
        assert raw[reg["byteOffset"]:reg["byteOffset"] + reg["byteLength"]] == k.encode()


def test_sarif_validator_catches_schema_errors():
    """The hand validator must refuse what the 2.1.0 schema refuses (else it proves nothing)."""
    good = {"version": "2.1.0", "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "runs": [{"tool": {"driver": {"name": "x"}}, "results": [
                {"message": {"text": "m"}, "level": "error", "locations": [
                    {"physicalLocation": {"artifactLocation": {"uri": "a"},
                                          "region": {"startLine": 1, "startColumn": 1}}}]}]}]}
    sarif_validate(good)
    bad = [("level", "critical"), ("message", {}), ("severity", "high")]
    for field, value in bad:
        doc = json.loads(json.dumps(good))
        doc["runs"][0]["results"][0][field] = value
        with pytest.raises(AssertionError):
            sarif_validate(doc)
    doc = json.loads(json.dumps(good))
    doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startColumn"] = 0
    with pytest.raises(AssertionError):
        sarif_validate(doc)
    doc = json.loads(json.dumps(good))
    del doc["runs"][0]["tool"]["driver"]["name"]
    with pytest.raises(AssertionError):
        sarif_validate(doc)


def test_inline_allow(tmp_path):
    k1, k2, k3 = key(), key(), key()
    (tmp_path / "a.py").write_text(
        "A = '%s'  # iplock:allow\nB = '%s'  # gitleaks:allow\n# iplock:allow\nC = '%s'\n"
        % (k1, k2, k3))
    rc, rep = scan_json(str(tmp_path / "a.py"))
    assert [f["secret"] for f in rep["findings"]] == [k3]
    assert rep["summary"]["suppressed"]["inline"] == 2


def test_ignore_file_and_default_iplockignore(tmp_path):
    k1, k2 = key(), key("rk_live")
    (tmp_path / "a.txt").write_text("%s\n%s\n" % (k1, k2))
    rc, rep = scan_json("a.txt", cwd=tmp_path)
    fp1 = [f["fingerprint"] for f in rep["findings"] if f["secret"] == k1][0]
    (tmp_path / ".iplockignore").write_text("# known test fixture\n%s  docs example\n" % fp1)
    rc, rep = scan_json("a.txt", cwd=tmp_path)
    assert [f["secret"] for f in rep["findings"]] == [k2]
    assert rep["summary"]["suppressed"]["ignore_file"] == 1
    other = tmp_path / "other.ignore"
    other.write_text("a.txt:sk_live:1:" + fp1 + "\n")  # gitleaks-style entries work too
    rc, rep = scan_json("--ignore-file", str(other), str(tmp_path / "a.txt"))
    assert [f["secret"] for f in rep["findings"]] == [k2]
    other.write_text("not-a-fingerprint\n")
    r = scan("--ignore-file", str(other), str(tmp_path / "a.txt"))
    assert r.returncode == 2 and b":1:" in r.stderr


def test_baseline_reports_only_new_findings(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    old = key()
    (src / "a.txt").write_text(old + "\n")
    base = tmp_path / "base.json"
    r = scan("--format", "json", "--output", str(base), str(src))
    assert r.returncode == 1 and r.stdout == b""
    assert stat.S_IMODE(base.stat().st_mode) == 0o600
    assert scan("--baseline", str(base), str(src)).returncode == 0
    new = key("whsec")
    (src / "b.txt").write_text(new + "\n")
    rc, rep = scan_json("--baseline", str(base), str(src))
    assert rc == 1 and [f["secret"] for f in rep["findings"]] == [new]
    assert rep["summary"]["suppressed"]["baseline"] == 1
    (tmp_path / "bad.json").write_text("{nope")
    assert scan("--baseline", str(tmp_path / "bad.json"), str(src)).returncode == 2


def test_stdin_small_and_across_window_edges(tmp_path):
    k = key()
    rc, rep = scan_json("-", stdin=("a\nb=%s\n" % k).encode())
    assert [(f["file"], f["line"], f["column"], f["secret"]) for f in rep["findings"]] == \
        [("-", 2, 3, k)]
    # 3 MiB through the 1 MiB windows: keys near every edge are found once, where the file
    # scan finds them
    filler = ("lorem ipsum task_id=1 disk_usage sec_level\n" * 30000).encode()
    blob = bytearray()
    keys = []
    while len(blob) < 3 * 1024 * 1024:
        blob += filler[: (1 << 20) - 60 - (len(blob) % (1 << 20))]
        k = key()
        keys.append(k)
        blob += (" " + k + " \n").encode()
    p = tmp_path / "big.txt"
    p.write_bytes(bytes(blob))
    _, from_stdin = scan_json("-", stdin=bytes(blob))
    _, from_file = scan_json(str(p))
    strip = lambda rep: [(f["line"], f["column"], f["offset"], f["secret"]) for f in rep["findings"]]
    assert strip(from_stdin) == strip(from_file)
    assert [f["secret"] for f in from_file["findings"]] == keys


def test_binary_files_and_publishable(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    k = key()
    (d / "core.bin").write_bytes(b"\x7fELF\x00\x00" + k.encode() + b"\x00")
    assert scan(str(d)).returncode == 0               # binary skipped in a walk
    assert scan("--binary", str(d)).returncode == 1
    assert scan(str(d / "core.bin")).returncode == 1   # a named file is always scanned
    pk = "pk_" + "live_" + body(99)
    (tmp_path / "web.js").write_text("Stripe('%s')\n" % pk)
    assert scan(str(tmp_path / "web.js")).returncode == 0
    rc, rep = scan_json("--include-publishable", str(tmp_path / "web.js"))
    assert rc == 1 and rep["findings"][0]["severity"] == "info"


def test_symlinks_not_followed_and_git_dir_skipped(tmp_path):
    (tmp_path / "outside.txt").write_text(key())
    d = tmp_path / "d"
    (d / ".git").mkdir(parents=True)
    (d / ".git" / "config").write_text(key())
    os.symlink(tmp_path / "outside.txt", d / "link.txt")
    assert scan(str(d)).returncode == 0


def git(repo, *args, env=None):
    e = dict(os.environ, GIT_AUTHOR_NAME="Ada Leak", GIT_AUTHOR_EMAIL="ada@example.com",
             GIT_COMMITTER_NAME="Ada Leak", GIT_COMMITTER_EMAIL="ada@example.com",
             GIT_AUTHOR_DATE="2024-03-01T12:00:00+00:00",
             GIT_COMMITTER_DATE="2024-03-01T12:00:00+00:00", GIT_CONFIG_GLOBAL="/dev/null",
             GIT_CONFIG_NOSYSTEM="1")
    e.update(env or {})
    r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, env=e, timeout=20)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode().strip()


def test_git_history_key_added_then_removed(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README").write_text("hello\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "init")
    k = key()
    (repo / "settings.py").write_text("DEBUG = True\nSTRIPE_KEY = '%s'\n" % k)
    (repo / "copy.py").write_text("DEBUG = True\nSTRIPE_KEY = '%s'\n" % k)  # same blob
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "add settings",
        env={"GIT_AUTHOR_DATE": "2024-03-02T09:30:00+00:00"})
    leak = git(repo, "rev-parse", "HEAD")
    (repo / "settings.py").write_text("DEBUG = True\nSTRIPE_KEY = os.environ['K']\n")
    (repo / "copy.py").unlink()
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "remove key")
    assert scan(str(repo)).returncode == 0             # the working tree is clean
    rc, rep = scan_json("--git", str(repo))
    assert rc == 1
    assert len(rep["findings"]) == 1                   # one unique blob, scanned once
    f = rep["findings"][0]
    assert f["secret"] == k and f["commit"] == leak
    assert f["author"] == "Ada Leak <ada@example.com>"
    assert f["date"].startswith("2024-03-02T09:30:00")
    assert f["file"] in ("settings.py", "copy.py") and f["line"] == 2 and f["column"] == 15
    assert len(f["blob"]) == 40
    txt = scan("--git", str(repo)).stdout.decode()
    assert "commit=" + leak[:12] in txt and k not in txt
    sarif = json.loads(scan("--git", "--format", "sarif", str(repo)).stdout)
    assert sarif["runs"][0]["results"][0]["properties"]["commit"] == leak


def test_git_errors(tmp_path):
    r = scan("--git", str(tmp_path))
    assert r.returncode == 2
    repo = tmp_path / "empty"
    repo.mkdir()
    git(repo, "init", "-q")
    assert scan("--git", str(repo)).returncode == 0


def keys_cli(db, *args):
    r = subprocess.run([BIN, "keys", "--db", str(db), "--json", *args], capture_output=True,
                       timeout=20)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout) if r.stdout.strip() else None


def test_revoke_found_keys_in_a_real_key_store(tmp_path):
    db = tmp_path / "keys.db"
    made = keys_cli(db, "create", "--type", "secret", "--mode", "live", "--name", "prod")
    rak = keys_cli(db, "create", "--type", "restricted", "--mode", "test")
    kept = keys_cli(db, "create", "--type", "secret", "--mode", "live")
    stranger = key()
    src = tmp_path / "src"
    src.mkdir()
    (src / "deploy.env").write_text("STRIPE=%s\nRAK=%s\nOTHER=%s\n"
                                    % (made["secret"], rak["secret"], stranger))
    (src / "again.txt").write_text(made["secret"] + "\n")
    r = scan("--revoke", "--db", str(db), "--actor", "ci-bot", "--format", "json", str(src))
    assert r.returncode == 1, r.stderr
    rep = json.loads(r.stdout)
    status = {(f["file"].split("/")[-1], f["line"]): (f["revoke_status"], f.get("key_id"))
              for f in rep["findings"]}
    assert status[("deploy.env", 1)] == ("revoked", made["id"])
    assert status[("again.txt", 1)] == ("revoked", made["id"])
    assert status[("deploy.env", 2)] == ("revoked", rak["id"])
    assert status[("deploy.env", 3)] == ("not-in-store", None)
    assert b"revoked 2 keys" in r.stderr and made["secret"].encode() not in r.stderr
    shown = keys_cli(db, "show", made["id"])
    assert shown["revoked_at"]
    assert not keys_cli(db, "show", kept["id"])["revoked_at"]
    audit = subprocess.run([BIN, "keys", "--db", str(db), "audit"], capture_output=True,
                           timeout=20).stdout.decode()
    assert "ci-bot" in audit and "found by iplock scan in" in audit
    assert "deploy.env:2:5" in audit and "again.txt:1:1 (2 places)" in audit
    # a second run finds them already revoked and writes nothing new
    r = scan("--revoke", "--db", str(db), "--format", "jsonl", str(src / "deploy.env"))
    assert json.loads(r.stdout.splitlines()[0])["revoke_status"] == "already-revoked"
    # a missing store is an error before anything is scanned, and is not created
    r = scan("--revoke", "--db", str(tmp_path / "nope.db"), str(src))
    assert r.returncode == 2 and not (tmp_path / "nope.db").exists()
