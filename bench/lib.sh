# bench/lib.sh: the daemon plumbing every benchmark script shares, sourced (`. bench/lib.sh`)
# after the script sets ROOT and BENCH_NAME (its log prefix), under `set -eu`:
#   DAEMONS    PIDs of every daemon started here; stop_pid / stop_daemons / cleanup stop them
#              by PID only (with the helpers they forked), on exit and on INT/TERM;
#   need_tools every given program must be executable (exit 2 otherwise);
#   free_port  a free 127.0.0.1 port (loadgen's); wait_listen PORT [PID]: something listens
#              on 127.0.0.1:PORT (10 s at most; fails at once if PID died);
#   proc_ticks one process's utime+stime (all threads); tree_sum PID cpu|rss: a process and
#              all its descendants (workers, helpers; cpu adds the reaped ones' cutime+cstime);
#   field      the value of key=... in a loadgen result line;
#   start_origin [ARGS]  bench/origin on a free port: sets OPORT and OPID (one of DAEMONS),
#              its output in $RUN/origin.out.
# A script with more to undo on exit redefines cleanup() and calls stop_daemons from it.

LG=$ROOT/build/bench/loadgen
ORIGIN=$ROOT/build/bench/origin
HZ=$(getconf CLK_TCK)
PAGE_KB=$(($(getconf PAGESIZE) / 1024))
DAEMONS=""

log() { echo "$BENCH_NAME: $*" >&2; }

need_tools() {
	for _t in "$@"; do
		[ -x "$_t" ] || { log "$_t missing (make bench-tools; make)"; exit 2; }
	done
}

# PIDs of the processes below $1 (children, grandchildren: Dante's and Squid's helpers).
tree_pids() {
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '{
		pid = $1; s = $0; sub(/^.*\) /, "", s); split(s, f, " "); parent[pid] = f[2]
		c = $0; sub(/^[^(]*\(/, "", c); sub(/\) [^)]*$/, "", c); comm[pid] = c
	} END {
		for (p in parent) {
			q = parent[p]
			for (d = 0; d < 8 && q != root && q in parent; d++) q = parent[q]
			if (q == root && p != root) print p ":" comm[p]
		}
	}'
}
stop_pid() {
	[ -n "$1" ] || return 0
	_kids=$(tree_pids "$1")
	kill "$1" 2>/dev/null || return 0
	_i=0
	while kill -0 "$1" 2>/dev/null && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
	kill -9 "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	# Helpers that outlived their parent: the PIDs noted above, if they still run the same program.
	for _k in $_kids; do
		_p=${_k%%:*}
		[ "$(cat "/proc/$_p/comm" 2>/dev/null)" = "${_k#*:}" ] && kill -9 "$_p" 2>/dev/null || true
	done
}
stop_daemons() {
	for _d in $DAEMONS; do stop_pid "$_d"; done
	DAEMONS=""
}
cleanup() { stop_daemons; }
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

free_port() { "$LG" freeport; }

# Waits until something listens on 127.0.0.1:PORT (bounded: 10 s), fails if PID died.
wait_listen() {
	_hex=$(printf '%04X' "$1")
	_i=0
	while ! grep -q "0100007F:$_hex 00000000:0000 0A" /proc/net/tcp; do
		[ -z "${2:-}" ] || kill -0 "$2" 2>/dev/null || { log "process $2 exited before listening on $1"; return 1; }
		_i=$((_i + 1))
		[ $_i -lt 100 ] || { log "nothing listens on $1 after 10 s"; return 1; }
		sleep 0.1
	done
}

start_origin() {
	OPORT=$(free_port)
	"$ORIGIN" -l "127.0.0.1:$OPORT" "$@" > "$RUN/origin.out" 2>&1 &
	OPID=$!
	DAEMONS="$DAEMONS $OPID"
	wait_listen "$OPORT" "$OPID"
}

# Value of key=... in a loadgen result line.
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }

# utime+stime ticks of one process (all its threads)
proc_ticks() { awk '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' "/proc/$1/stat"; }

# Sum of a /proc/PID/stat figure over a process and all its descendants (workers, helpers):
# usage: tree_sum PID cpu|rss -> CPU ticks (utime+stime, all threads, plus cutime+cstime: the
# helpers that already exited and were reaped, e.g. Dante's) or RSS in KiB.
tree_sum() {
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" -v what="$2" -v pk="$PAGE_KB" '{
		pid = $1; s = $0; sub(/^.*\) /, "", s); split(s, f, " ");
		parent[pid] = f[2]; val[pid] = (what == "cpu") ? f[12] + f[13] + f[14] + f[15] : f[22] * pk
	} END {
		for (p in parent) {
			q = p
			for (d = 0; d < 8 && q != root && q in parent; d++) q = parent[q]
			if (q == root) t += val[p]
		}
		print t + 0
	}'
}
