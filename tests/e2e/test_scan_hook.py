"""iplock scan --staged and --install-hook as a black box: the index, not the work tree, is
scanned; the hook blocks a commit that stages a key; an existing hook is chained and still runs;
installing twice changes nothing. Keys are made at run time."""
import os
import subprocess
from pathlib import Path

from test_scan import BIN, key, scan


def git(repo, *args, check=True, env=None):
    e = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x", GIT_COMMITTER_NAME="t",
             GIT_COMMITTER_EMAIL="t@x")
    e.pop("GIT_DIR", None)
    e.update(env or {})
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=check,
                          timeout=30, env=e)


def make_repo(tmp_path):
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", str(repo))
    git(repo, "config", "commit.gpgsign", "false")
    return repo


def test_staged_scans_the_index_not_the_work_tree(tmp_path):
    repo = make_repo(tmp_path)
    old, staged, unstaged = key("sk_live"), key("rk_live"), key("sk_live")
    (repo / "old.env").write_text("K=%s\n" % old)
    (repo / "app.py").write_text("print(1)\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "first")
    # nothing staged yet: a key already committed in an untouched file is not this commit's
    r = scan("--staged", cwd=repo)
    assert r.returncode == 0, r.stderr
    # stage a key, then take it out of the work tree: the index still has it
    (repo / "app.py").write_text("print(1)\nkey = '%s'\n" % staged)
    git(repo, "add", "app.py")
    (repo / "app.py").write_text("print(1)\n")
    # and a key only in the work tree, never staged
    (repo / "local.env").write_text("K=%s\n" % unstaged)
    r = scan("--staged", "--format", "json", "--show-secrets", cwd=repo)
    assert r.returncode == 1, r.stderr
    import json
    found = json.loads(r.stdout)["findings"]
    assert [(f["file"], f["line"], f["secret"]) for f in found] == [("app.py", 2, staged)]
    assert b"commit blocked" in r.stderr
    # a path argument is the repository
    r = scan("--staged", str(repo))
    assert r.returncode == 1 and b"app.py:2:" in r.stdout
    assert scan("--staged", str(tmp_path / "nope")).returncode == 2


def test_staged_on_an_unborn_branch(tmp_path):
    repo = make_repo(tmp_path)
    (repo / "a.txt").write_text("x=%s\n" % key("sk_live"))
    git(repo, "add", "a.txt")
    r = scan("--staged", cwd=repo)
    assert r.returncode == 1 and b"a.txt:1:3: critical sk_live" in r.stdout


def test_hook_blocks_a_staged_key_and_passes_an_unstaged_one(tmp_path):
    repo = make_repo(tmp_path)
    r = scan("--install-hook", str(repo))
    assert r.returncode == 0 and b"installed" in r.stdout, r.stderr
    hook = repo / ".git" / "hooks" / "pre-commit"
    assert os.access(hook, os.X_OK) and BIN in hook.read_text()
    k = key("sk_live")
    (repo / "config.js").write_text("const stripe = require('stripe')('%s');\n" % k)
    git(repo, "add", "config.js")
    c = git(repo, "commit", "-qm", "leak", check=False)
    assert c.returncode == 1
    out = c.stdout + c.stderr  # git shows a hook's stdout on stderr
    assert b"config.js:1:" in out and b"sk_live_****" + k[-4:].encode() in out
    assert k.encode() not in c.stdout + c.stderr
    assert git(repo, "rev-parse", "--verify", "-q", "HEAD", check=False).returncode != 0
    # unstage it, keep the key in the work tree only: the commit of something else goes through
    git(repo, "rm", "-q", "--cached", "config.js")
    (repo / "README").write_text("hello\n")
    git(repo, "add", "README")
    c = git(repo, "commit", "-qm", "ok", check=False)
    assert c.returncode == 0, c.stdout + c.stderr


def test_hook_chains_an_existing_hook_and_is_idempotent(tmp_path):
    repo = make_repo(tmp_path)
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    marker = tmp_path / "old-hook-ran"
    old = "#!/bin/sh\necho ran >> '%s'\nexit ${OLD_HOOK_RC:-0}\n" % marker
    (hooks / "pre-commit").write_text(old)
    (hooks / "pre-commit").chmod(0o755)
    r = scan("--install-hook", cwd=repo)
    assert r.returncode == 0 and b"kept as pre-commit.iplock-chained" in r.stdout, r.stderr
    assert (hooks / "pre-commit.iplock-chained").read_text() == old
    first = (hooks / "pre-commit").read_text()
    # a second install: same hook, the chained one untouched and not chained to ourselves
    r = scan("--install-hook", cwd=repo)
    assert r.returncode == 0 and b"updated" in r.stdout
    assert (hooks / "pre-commit").read_text() == first
    assert (hooks / "pre-commit.iplock-chained").read_text() == old
    assert sorted(p.name for p in hooks.iterdir() if "iplock" in p.name) == ["pre-commit.iplock-chained"]
    (repo / "a.txt").write_text("clean\n")
    git(repo, "add", "a.txt")
    assert git(repo, "commit", "-qm", "one", check=False).returncode == 0
    assert marker.read_text() == "ran\n"
    # the old hook's verdict still counts
    (repo / "b.txt").write_text("clean too\n")
    git(repo, "add", "b.txt")
    c = git(repo, "commit", "-qm", "two", check=False, env={"OLD_HOOK_RC": "3"})
    assert c.returncode == 1 and marker.read_text() == "ran\nran\n"
    assert git(repo, "log", "-1", "--format=%s").stdout.strip() == b"one"   # refused, not failed later
    # and a key is still blocked after the old hook passed
    (repo / "c.txt").write_text(key("rk_live") + "\n")
    git(repo, "add", "c.txt")
    c = git(repo, "commit", "-qm", "three", check=False)
    assert c.returncode == 1 and b"c.txt:1:1: critical rk_live" in c.stdout + c.stderr


def test_install_hook_refuses_to_clobber_and_outside_a_repo(tmp_path):
    repo = make_repo(tmp_path)
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "pre-commit").write_text("#!/bin/sh\nexit 0\n")
    (hooks / "pre-commit.iplock-chained").write_text("#!/bin/sh\nexit 0\n")
    r = scan("--install-hook", cwd=repo)
    assert r.returncode == 2 and b"move one of them away" in r.stderr
    assert (hooks / "pre-commit").read_text() == "#!/bin/sh\nexit 0\n"
    plain = tmp_path / "plain"
    plain.mkdir()
    r = scan("--install-hook", cwd=plain, )
    assert r.returncode == 2 and b"not a git repository" in r.stderr


def test_pre_commit_framework_manifest():
    root = Path(__file__).resolve().parents[2]
    # the few keys the framework needs, read without a YAML library (not a test dependency)
    text = (root / ".pre-commit-hooks.yaml").read_text()
    items = [l.strip() for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    assert items[0] == "- id: iplock-scan"
    h = dict(l.lstrip("- ").split(": ", 1) for l in items)
    assert h["entry"] == "iplock scan --staged" and h["pass_filenames"] == "false"
    assert h["language"] == "system" and h["stages"] == "[pre-commit]"
