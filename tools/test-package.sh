#!/bin/sh
# make test: the Debian package end to end (issue 15). Builds it clean (make deb, in a directory
# of its own), installs it on this machine, checks what a user gets (iplock --version from
# /usr/bin with this tree's commit, the man pages, systemd-analyze verify on every unit, the
# user, the conffiles, units neither enabled nor started, the installed config readable by the
# service user), then purges it and checks the machine is as it was. Runs only as root on a
# machine without iplock installed; two checkouts running it at once take turns (flock).
set -u
cd "$(dirname "$0")/.." || exit 1
start=$(date +%s)
say() { echo "test-package: $*"; }
fail() { say "FAIL: $*"; rc=1; }
rc=0

if [ "$(id -u)" != 0 ] || ! command -v dpkg >/dev/null; then
	say "SKIP: needs root and dpkg"; exit 0
fi
exec 9>/tmp/iplock-test-package.lock
flock -w 1200 9 || { say "FAIL: lock /tmp/iplock-test-package.lock not free after 20 min"; exit 1; }
if dpkg-query -W -f='${Status}' iplock 2>/dev/null | grep -qv not-installed || [ -e /usr/bin/iplock ] ||
   [ -e /etc/iplock ] || getent passwd iplock >/dev/null; then
	say "SKIP: iplock is installed here already (package, /usr/bin/iplock, /etc/iplock or user): not touching it"
	exit 0
fi

work=$(mktemp -d /tmp/iplock-deb.XXXXXX)
cleanup() {
	# the package was not here before (checked above): whatever state it is in, it goes
	if dpkg-query -W iplock >/dev/null 2>&1; then dpkg --purge iplock >/dev/null 2>&1; fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

commit=$(make -s --no-print-directory -f Makefile print-commit 2>/dev/null)
if ! make --no-print-directory deb DEBDIR="$work" DEB_OPTS=noautodbgsym >"$work.log" 2>&1; then
	cat "$work.log"; rm -f "$work.log"; say "FAIL: make deb"; exit 1
fi
rm -f "$work.log"
built=$(date +%s)
deb=$(ls "$work"/iplock_*.deb)
dpkg -i "$deb" >"$work/install.log" 2>&1 || { cat "$work/install.log"; say "FAIL: dpkg -i"; exit 1; }

v=$(/usr/bin/iplock --version)
case $v in "iplock "*" (commit $commit)") ;; *) fail "/usr/bin/iplock --version: '$v', want commit $commit";; esac
for page in iplock iplock-proxy iplock-gate iplock-keys iplock.ini; do
	man -w "$page" >/dev/null 2>&1 || fail "man -w $page finds nothing"
done
for cmd in $(/usr/bin/iplock --help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z0-9-]*\) .*/\1/p'); do
	man -w "iplock-$cmd" >/dev/null 2>&1 || fail "man -w iplock-$cmd finds nothing"
done
units=""
# /lib and /usr/lib are one directory on a merged-/usr system: each unit once
for n in $(ls /lib/systemd/system/iplock-*.service /usr/lib/systemd/system/iplock-*.service 2>/dev/null |
	   xargs -n1 basename | sort -u); do
	case $n in *@.service) n=${n%@.service}@db.service;; esac
	units="$units $n"
	out=$(systemd-analyze verify "$n" 2>&1) || fail "systemd-analyze verify $n: $out"
	[ -z "$out" ] || fail "systemd-analyze verify $n says: $out"
	ls /etc/systemd/system/*.wants/"$n" >/dev/null 2>&1 && fail "$n is enabled"
done
for want in iplock-proxy.service iplock-gate.service iplock-console.service iplock-tunnel@db.service; do
	case " $units " in *" $want "*) ;; *) fail "no unit $want";; esac
done
getent passwd iplock >/dev/null || fail "no system user iplock"
dpkg-query -W -f='${Conffiles}\n' iplock | grep -q '/etc/iplock/proxy.ini' || fail "/etc/iplock/proxy.ini is not a conffile"
runuser -u iplock -- /usr/bin/iplock gate -c /etc/iplock/gate.ini --check >/dev/null 2>"$work/check.log" ||
	fail "the service user cannot read the installed gate.ini: $(cat "$work/check.log")"
[ -f /etc/logrotate.d/iplock ] || fail "no /etc/logrotate.d/iplock"

dpkg --purge iplock >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "dpkg --purge"; }
for p in /usr/bin/iplock /etc/iplock /etc/logrotate.d/iplock /var/lib/iplock /usr/share/man/man1/iplock-proxy.1.gz \
	 /lib/systemd/system/iplock-proxy.service; do
	[ -e "$p" ] && fail "$p left after purge"
done
getent passwd iplock >/dev/null && fail "user iplock left after purge"
dpkg-query -W -f='${Status}' iplock 2>/dev/null | grep -qv not-installed && fail "package still known to dpkg"
end=$(date +%s)
[ $rc = 0 ] && say "ok: built in $((built - start)) s, installed, checked and purged in $((end - built)) s"
exit $rc
