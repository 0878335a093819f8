"""The README's first commands on a fresh machine: `make run` (and `make`) install the packages,
then build, in ONE invocation. A make that read the tree before node-llhttp was installed has
cached its source directory as missing and stops with "No rule to make target" (issue 10).

The tree is copied to a temporary directory; a stand-in for tools/deps.sh (DEPS_CMD) "installs"
llhttp by creating LLHTTP_SRC_DIR / LLHTTP_INC_DIR there, and a stand-in compiler checks every
input exists and writes its output, so the real Makefile logic runs in about a second."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LLHTTP = Path("/usr/share/llhttp")

FAKE_CC = """#!/bin/sh
# stand-in compiler: every .c/.o input must exist; the -o output is written
out=""; prev=""
for a in "$@"; do
  if [ "$prev" = "-o" ]; then out="$a"
  else case "$a" in *.c|*.o) [ -f "$a" ] || { echo "fakecc: missing $a" >&2; exit 1; };; esac
  fi
  prev="$a"
done
[ -n "$out" ] && echo fake > "$out"
"""

# stand-in for tools/deps.sh: the package "install" creates the llhttp directories only now
FAKE_DEPS = """#!/bin/sh
set -e
mkdir -p "{pkg}/llhttp" "{pkg}/include/llhttp"
cp {llhttp}/*.c "{pkg}/llhttp/"
touch "{pkg}/include/llhttp/llhttp.h"
"""

# run under `make test` too: the outer make's flags (SANITIZE=1, -j2) must not leak in
# a make run from `make SANITIZE=1 e2e` exports SANITIZE (and BUILD) to us: the copy builds plain
ENV = {k: v for k, v in os.environ.items()
       if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEFILES", "MAKEOVERRIDES", "SANITIZE",
                    "BUILD", "CC")}

OLD_RUN = "run: deps $(BUILD)/iplock\n\t@sh tools/run-demo.sh $(BUILD)/iplock\n"


def tree(tmp, makefile_text=None):
    work = tmp / "tree"
    shutil.copytree(ROOT / "src", work / "src")
    shutil.copytree(ROOT / "tools", work / "tools")
    (work / "Makefile").write_text(makefile_text or (ROOT / "Makefile").read_text())
    (work / "tools" / "run-demo.sh").write_text('test -f "$1" && echo "demo would start $1"\n')
    pkg = tmp / "pkg"
    (tmp / "cc").write_text(FAKE_CC)
    (tmp / "deps").write_text(FAKE_DEPS.format(pkg=pkg, llhttp=LLHTTP))
    os.chmod(tmp / "cc", 0o755)
    return work, pkg


def first_make(tmp, target, makefile_text=None):
    work, pkg = tree(tmp, makefile_text)
    assert not pkg.exists()
    return subprocess.run(
        ["make", "--no-print-directory", target, f"CC={tmp / 'cc'}",
         f"DEPS_CMD=sh {tmp / 'deps'}", f"LLHTTP_SRC_DIR={pkg / 'llhttp'}",
         f"LLHTTP_INC_DIR={pkg / 'include' / 'llhttp'}"],
        cwd=work, capture_output=True, text=True, timeout=120, env=ENV), work, pkg


@pytest.fixture(autouse=True)
def need_llhttp():
    if not list(LLHTTP.glob("*.c")):
        pytest.skip("node-llhttp's sources are not installed")


@pytest.mark.parametrize("target", ["run", "all"])
def test_first_make_finds_sources_installed_by_deps(tmp_path, target):
    r, work, pkg = first_make(tmp_path, target)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "No rule to make target" not in r.stderr
    assert (pkg / "llhttp" / "api.c").exists()
    for name in ("api", "http", "llhttp"):
        assert f"CC {pkg / 'llhttp' / name}.c" in r.stdout, r.stdout
        assert (work / "build" / "obj" / "llhttp" / f"{name}.o").exists()
    assert (work / "build" / "iplock").exists()
    if target == "run":
        assert r.stdout.rstrip().endswith("demo would start build/iplock"), r.stdout


def test_old_run_recipe_fails_the_first_time(tmp_path):
    """The check above can fail: the recipe before commit 8fcc509 (deps as a prerequisite of the
    same make that builds) stops on the first run and works on the second."""
    text = (ROOT / "Makefile").read_text()
    old, n = re.subn(r"run: deps\n\t@\$\(MAKE\)[^\n]*\n\t@sh tools/run-demo.sh \$\(BUILD\)/iplock\n",
                     lambda _: OLD_RUN, text)
    assert n == 1
    r, work, pkg = first_make(tmp_path, "run", old)
    assert r.returncode != 0 and "No rule to make target" in r.stderr, r.stdout + r.stderr
    assert "llhttp" in r.stderr and (pkg / "llhttp" / "api.c").exists()
    r2 = subprocess.run(["make", "--no-print-directory", "run", f"CC={tmp_path / 'cc'}",
                         f"DEPS_CMD=sh {tmp_path / 'deps'}",
                         f"LLHTTP_SRC_DIR={pkg / 'llhttp'}",
                         f"LLHTTP_INC_DIR={pkg / 'include' / 'llhttp'}"],
                        cwd=work, capture_output=True, text=True, timeout=120, env=ENV)
    assert r2.returncode == 0, r2.stderr
