#!/usr/bin/python3
"""Man pages from one source each, so they cannot drift (docs/install.md, "Man pages"):

  iplock(1), iplock-COMMAND(1)  the binary's own text: the command table of `iplock --help` and
                                each `iplock COMMAND --help` (usage, description, options,
                                exit status), read from the built binary;
  iplock.ini(5)                 the key tables of docs/*.md (| key | default | value |, under a
                                heading naming the `[section]`), i.e. the same rows the docs show.

  tools/man.py gen   BIN OUTDIR   write the pages
  tools/man.py check BIN          every command's --help has the common layout, and every config
                                  key the parsers accept (src/*/config*.c) is documented in
                                  iplock.ini(5) and vice versa; exit 1 with the reasons otherwise

New subcommands and new docs key tables are picked up without editing this file; a docs page
is named after its command (docs/gate.md: iplock gate), except docs/config.md (iplock proxy).
Standard library only (python3 is a build dependency of the Debian package)."""
import datetime
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC_PRODUCT = {"config": "proxy"}          # docs/config.md documents the proxy's file
PRODUCT_DOC = {v: k for k, v in DOC_PRODUCT.items()}
CONF_NAME = {"tunnel": "tunnel-NAME"}      # the iplock-tunnel@NAME unit reads tunnel-NAME.ini


def run_help(binary, *args):
    p = subprocess.run([binary, *args], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def blocks(text):
    out, cur = [], []
    for line in text.rstrip("\n").split("\n"):
        if line.strip():
            cur.append(line.rstrip())
        elif cur:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def commands(binary):
    """[(name, one-line summary)] from the Commands: table of `iplock --help`."""
    _, out, _ = run_help(binary, "--help")
    cmds, inside = [], False
    for line in out.split("\n"):
        if line.strip() == "Commands:":
            inside = True
        elif inside:
            m = re.match(r"^  ([a-z][a-z0-9-]*)\s+(.*)$", line)
            if not m:
                break
            cmds.append((m.group(1), m.group(2)))
    return cmds


def parse_help(text, cmd):
    """Split a --help text into usage lines, description, body blocks and exit status; list the
    ways it departs from the common layout (empty when it follows it)."""
    problems = []
    bl = blocks(text)
    if not bl or not bl[0][0].startswith(f"usage: iplock {cmd}".rstrip()):
        problems.append(f"first line is not 'usage: iplock {cmd} ...'")
        return None, problems
    usage = [bl[0][0][len("usage: "):]] + [l.strip() for l in bl[0][1:]]
    rest = bl[1:]
    desc = []
    while rest and not rest[0][0].startswith(" ") and not rest[0][0].startswith("Exit status:"):
        desc.append(rest.pop(0))
    if not desc:
        problems.append("no description paragraph after the usage lines")
    exit_status, body = [], []
    for b in rest:
        for i, line in enumerate(b):
            if line.startswith("Exit status:"):
                if b[:i]:
                    body.append(b[:i])
                exit_status = b[i:]
                break
        else:
            if exit_status:
                exit_status += b
            else:
                body.append(b)
    if not any(re.match(r"^\s+-", l) for b in body for l in b):
        problems.append("no option lines ('  -x, --option  what it does')")
    if not exit_status:
        problems.append("no 'Exit status:' paragraph")
    return {"usage": usage, "desc": desc, "body": body, "exit": exit_status}, problems


# ---------------------------------------------------------------- roff

def esc(s):
    s = s.replace("\\", "\\e")
    return s


def line_safe(s):
    """A text line roff would take as a request starts with . or ': guard it."""
    return "\\&" + s if s[:1] in (".", "'") else s


def md_inline(s):
    s = esc(s)
    s = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", s)              # [text](link) -> text
    s = re.sub(r"\*\*([^*]+)\*\*", r"\\fB\1\\fR", s)
    s = re.sub(r"\*\(([^)]*)\)\*", r"(\1)", s)                  # *(required)*
    s = re.sub(r"`([^`]*)`", r"\\fB\1\\fR", s)
    return s


def th(name, section, version, title):
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or None
    date = (datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc) if epoch
            else datetime.datetime.now(datetime.timezone.utc)).strftime("%Y-%m-%d")
    return [f'.TH "{name.upper()}" "{section}" "{date}" "iplock {version}" "{title}"']


def verbatim(lines):
    out = [".PP", ".nf"]
    out += [line_safe(esc(l)) for l in lines]
    return out + [".fi"]


def para(block):
    return [".PP"] + [line_safe(esc(" ".join(l.strip() for l in block)))]


def version_of(binary):
    _, out, _ = run_help(binary, "--version")
    m = re.match(r"iplock (\S+)", out)
    return m.group(1) if m else "unknown"


def page_command(binary, cmd, summary, version, all_cmds):
    _, out, _ = run_help(binary, cmd, "--help")
    h, problems = parse_help(out, cmd)
    if h is None:
        raise SystemExit(f"iplock {cmd} --help: {'; '.join(problems)}")
    r = th(f"iplock-{cmd}", 1, version, "iplock manual")
    r += [".SH NAME", f"iplock-{cmd} \\- {esc(summary)}", ".SH SYNOPSIS", ".nf"]
    r += [line_safe(esc(u)) for u in h["usage"]] + [".fi", ".SH DESCRIPTION"]
    for b in h["desc"]:
        r += para(b)
    if h["body"]:
        r.append(".SH OPTIONS")
        for b in h["body"]:
            r += verbatim(b) if b[0].startswith(" ") or len(b) > 1 and b[1].startswith(" ") else para(b)
    if h["exit"]:
        r += [".SH EXIT STATUS"] + [line_safe(esc(" ".join(l.strip() for l in h["exit"])[len("Exit status:"):].strip()))]
    doc = PRODUCT_DOC.get(cmd, cmd)
    files = []
    if cmd in doc_keys():                 # a config file of its own, in iplock.ini(5)
        files += [".TP", f"/etc/iplock/{CONF_NAME.get(cmd, cmd)}.ini", "the configuration file, see \\fBiplock.ini\\fR(5)"]
    if (ROOT / "docs" / f"{doc}.md").exists():
        files += [".TP", f"/usr/share/doc/iplock/{doc}.md", "the full documentation"]
    if files:
        r += [".SH FILES"] + files
    see = ["\\fBiplock\\fR(1)", "\\fBiplock.ini\\fR(5)"] + [f"\\fBiplock\\-{c}\\fR(1)" for c, _ in all_cmds if c != cmd]
    r += [".SH SEE ALSO", ", ".join(see)]
    return "\n".join(r) + "\n"


def page_main(binary, cmds, version):
    _, out, _ = run_help(binary, "--help")
    bl = blocks(out)
    usage = [bl[0][0][len("usage: "):]] + [l.strip() for l in bl[0][1:]]
    desc = bl[1]
    opts = [b for b in bl[2:] if b[0].startswith("  -")]
    exit_b = [b for b in bl if b[0].startswith("Exit status:")]
    r = th("iplock", 1, version, "iplock manual")
    r += [".SH NAME", "iplock \\- static egress IPs and IP\\-locked API keys", ".SH SYNOPSIS", ".nf"]
    r += [line_safe(esc(u)) for u in usage] + [".fi", ".SH DESCRIPTION"] + para(desc)
    r += [".SH COMMANDS"]
    for c, s in cmds:
        r += [".TP", f"\\fB{c}\\fR", line_safe(esc(s)) + f" (\\fBiplock\\-{c}\\fR(1))"]
    r += [".SH OPTIONS"]
    for b in opts:
        r += verbatim(b)
    if exit_b:
        r += [".SH EXIT STATUS", line_safe(esc(" ".join(exit_b[0])[len("Exit status:"):].strip()))]
    r += [".SH FILES", ".TP", "/etc/iplock/*.ini", "configuration files, see \\fBiplock.ini\\fR(5)",
          ".TP", "/usr/share/doc/iplock/", "the full documentation (Markdown)"]
    r += [".SH SEE ALSO", ", ".join(["\\fBiplock.ini\\fR(5)"] + [f"\\fBiplock\\-{c}\\fR(1)" for c, _ in cmds])]
    return "\n".join(r) + "\n"


# ---------------------------------------------------------------- configuration keys

def doc_keys(root=ROOT):
    """{product: [(section, [keys], default, value)]} from the key tables of docs/*.md."""
    out = {}
    for md in sorted((root / "docs").glob("*.md")):
        product = DOC_PRODUCT.get(md.stem, md.stem)
        section, in_table = None, False
        for line in md.read_text().split("\n"):
            if line.startswith("#"):
                m = re.search(r"`\[([^\]]+)\]`", line)
                section = m.group(1) if m else None
                in_table = False
            elif re.match(r"^\|\s*key\s*\|", line):
                in_table = section is not None
            elif in_table and line.startswith("|"):
                cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
                if len(cells) < 3 or set(cells[0]) <= set("-: "):
                    continue
                keys = re.findall(r"`([a-z_][a-z0-9_]*)`", cells[0])
                out.setdefault(product, []).append((section, keys, cells[1], "|".join(cells[2:])))
            elif in_table:
                in_table = False
    return out


def route_keys(root=ROOT):
    """The [route NAME] keys of src/store/routes.c (gate_route_acc_key), shared by gate and console."""
    text = (root / "src" / "store" / "routes.c").read_text()
    body = text[text.index("gate_route_acc_key("):]
    body = body[:body.index("\n}\n")]
    return set(re.findall(r'strcmp\(\s*name\s*,\s*"([a-z_][a-z0-9_]*)"', body))


def code_keys(root=ROOT):
    """{product: set(keys)} the config parsers accept: key tables ({ "name", SECTION_... },
    core/ini tables { "name", INI_... } and their macros),
    arrays named *keys[] and strcmp(name, "...") in src/*/config*.c."""
    out = {}
    for c in sorted((root / "src").glob("*/config*.c")):
        text = re.sub(r"/\*.*?\*/", "", c.read_text(), flags=re.S)
        keys = set(re.findall(r'\{\s*"([a-z_][a-z0-9_]*)"\s*,\s*SECTION_', text))
        # core/ini key tables: { "name", INI_..., ... } or a product's macro over them (GATE_KEY("name", ...))
        keys |= set(re.findall(r'\{\s*"([a-z_][a-z0-9_]*)"\s*,\s*INI_', text))
        keys |= set(re.findall(r'\b[A-Z_]*(?:KEY|CHOICE)\(\s*"([a-z_][a-z0-9_]*)"', text))
        for arr in re.findall(r"keys\[\]\s*=\s*\{([^}]*)\}", text):
            keys |= set(re.findall(r'"([a-z_][a-z0-9_]*)"', arr))
        keys |= set(re.findall(r'str(?:n?case)?cmp\(\s*(?:name|key|k)\s*,\s*"([a-z_][a-z0-9_]*)"', text))
        if "gate_route_acc_key(" in text:    # [route NAME] keys, read by the shared store/routes.c
            keys |= route_keys(root)
        if keys:
            out.setdefault(c.parent.name, set()).update(keys)
    return out


def page_ini(version, root=ROOT):
    docs = doc_keys(root)
    r = th("iplock.ini", 5, version, "iplock manual")
    r += [".SH NAME", "iplock.ini \\- configuration files of iplock's servers",
          ".SH SYNOPSIS", ".nf"] + [f"/etc/iplock/{CONF_NAME.get(p, p)}.ini" for p in sorted(docs)] + [".fi",
          ".SH DESCRIPTION",
          "INI files: \\fB[section]\\fR headers, \\fBkey = value\\fR lines, \\fB;\\fR or \\fB#\\fR "
          "comments. Errors name the file and line; \\fBiplock COMMAND \\-c FILE \\-\\-check\\fR "
          "validates a file without starting. The tables below are the key tables of "
          "/usr/share/doc/iplock/*.md, where each key is explained at length."]
    for product in sorted(docs):
        doc = PRODUCT_DOC.get(product, product)
        r += [f".SH {esc(product.upper())} (iplock {esc(product)} \\-c /etc/iplock/{esc(CONF_NAME.get(product, product))}.ini)",
              f"See \\fBiplock\\-{esc(product)}\\fR(1) and /usr/share/doc/iplock/{doc}.md."]
        last = None
        for section, keys, default, value in docs[product]:
            if section != last:
                r += [f".SS [{esc(section)}]"]
                last = section
            d = md_inline(default)
            r += [".TP", ", ".join(f"\\fB{esc(k)}\\fR" for k in keys) +
                  ("" if not d else f" {d}" if d.startswith("(") else f" (default: {d})")]
            r += [line_safe(md_inline(value))]
    r += [".SH SEE ALSO", "\\fBiplock\\fR(1)"]
    return "\n".join(r) + "\n"


def man_ini_keys(page):
    """{product: set(keys)} as the generated iplock.ini(5) lists them (the tag line of each .TP)."""
    out, product, tag = {}, None, False
    for line in page.split("\n"):
        m = re.match(r"^\.SH (\S+) \(iplock ", line)
        if m:
            product = m.group(1).lower()
        elif line.startswith(".SH"):
            product = None
        elif product and tag:
            for k in re.findall(r"\\fB([a-z_][a-z0-9_]*)\\fR(?:, |$| \()", line):
                out.setdefault(product, set()).add(k)
        tag = line == ".TP"
    return out


def check_help(binary):
    """Every command of the table answers --help on stdout, exit 0, in the common layout."""
    problems = []
    cmds = commands(binary)
    if len(cmds) < 2:
        problems.append("iplock --help: no Commands: table")
    for cmd, _ in cmds:
        rc, out, err = run_help(binary, cmd, "--help")
        if rc != 0 or err:
            problems.append(f"iplock {cmd} --help: exit {rc}, stderr {err[:80]!r} (want 0, nothing)")
        _, p = parse_help(out, cmd)
        problems += [f"iplock {cmd} --help: {x}" for x in p]
    return problems


def check_keys(root=ROOT):
    """Every key a parser accepts is in iplock.ini(5), and the page lists no other."""
    problems = []
    man = man_ini_keys(page_ini("check", root))
    for product, keys in sorted(code_keys(root).items()):
        doc = PRODUCT_DOC.get(product, product)
        missing = sorted(keys - man.get(product, set()))
        if missing:
            problems.append(f"src/{product}: config keys not in iplock.ini(5): {', '.join(missing)} "
                            f"(add them to a '| key | default | value |' table in docs/{doc}.md)")
        extra = sorted(man.get(product, set()) - keys)
        if extra:
            problems.append(f"docs/{doc}.md: keys in iplock.ini(5) that src/{product} does not accept: "
                            f"{', '.join(extra)}")
    return problems


def check(binary, root=ROOT):
    return check_help(binary) + check_keys(root)


def main(argv):
    if len(argv) == 4 and argv[1] == "gen":
        binary, outdir = argv[2], Path(argv[3])
        outdir.mkdir(parents=True, exist_ok=True)
        version = version_of(binary)
        cmds = commands(binary)
        (outdir / "iplock.1").write_text(page_main(binary, cmds, version))
        for cmd, summary in cmds:
            (outdir / f"iplock-{cmd}.1").write_text(page_command(binary, cmd, summary, version, cmds))
        (outdir / "iplock.ini.5").write_text(page_ini(version))
        return 0
    if len(argv) == 3 and argv[1] == "check":
        problems = check(argv[2])
        for p in problems:
            print(f"man check: {p}", file=sys.stderr)
        return 1 if problems else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
