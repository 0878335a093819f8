#!/bin/sh
# bench/fwd.sh: CPU per forwarded GET and per CONNECT tunnel of `iplock proxy` beside HAProxy
# relaying the same bytes as TCP, with nginx as the origin (issue 10, "Benchmarks").
#
# Equal terms: one nginx worker serves /1k (1024 bytes, keep-alive) to every system; HAProxy
# (`nbthread 1`, TCP mode, splice-auto) and iplock (`workers = 1`, Basic auth on every request,
# one egress address, no access log) each bind their own egress address; the same loadgen
# loads run against each, interleaved, BENCH_ROUNDS times:
#   forward: BENCH_CONC keep-alive connections of GETs (iplock: absolute-form with
#            Proxy-Authorization on every request; HAProxy: origin-form, TCP relay);
#   tunnels: connect, CONNECT + Proxy-Authorization (HAProxy: none), GET /1k, close.
# CPU = the process's own utime+stime (/proc/PID/stat, all threads) over the load, divided by
# the completed operations: it does not depend on how much of the shared cores the process got.
# Printed: per system the median and the spread (min-max) over the rounds, and the ratios of
# the medians (iplock / HAProxy). IPLOCK_BASE_BIN adds a second iplock binary (an older build)
# run the same way, for before/after in one run.
# Knobs: BENCH_SECS (4), BENCH_ROUNDS (7), BENCH_CONC (50), IPLOCK_BIN, IPLOCK_BASE_BIN,
# BENCH_PERF=1 (perf record -g of iplock during its first forward load: bench/out/fwd/perf.data).
# Output: bench/out/fwd.md. Every daemon started here is stopped by its PID.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
IPLOCK=${IPLOCK_BIN:-$ROOT/build/iplock}
BASE=${IPLOCK_BASE_BIN:-}
NGINX=${NGINX:-/usr/sbin/nginx}
OUT=$ROOT/bench/out
RUN=$OUT/fwd
SECS=${BENCH_SECS:-4}
ROUNDS=${BENCH_ROUNDS:-7}
CONC=${BENCH_CONC:-50}
USER_NAME=bench
USER_PASS=bench-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')

BENCH_NAME=bench/fwd
. "$ROOT/bench/lib.sh"

need_tools "$LG" "$IPLOCK" "$NGINX"
command -v haproxy > /dev/null || { echo "bench/fwd: haproxy missing (make deps-bench)" >&2; exit 2; }
rm -rf "$RUN"
mkdir -p "$RUN/nginx/logs" "$RUN/nginx/tmp" "$RUN/nginx/html"

# --- nginx origin: one worker, /1k is 1024 bytes, keep-alive without a request limit ---
OPORT=$(free_port)
head -c 1024 /dev/zero | tr '\0' x > "$RUN/nginx/html/1k"
user=""; [ "$(id -u)" = 0 ] && user="user root;"
cat > "$RUN/nginx/nginx.conf" <<EOF
$user
worker_processes 1;
daemon off;
pid $RUN/nginx/nginx.pid;
error_log $RUN/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 100000000;
	keepalive_timeout 120s;
	client_body_temp_path $RUN/nginx/tmp/body;
	proxy_temp_path $RUN/nginx/tmp/proxy;
	fastcgi_temp_path $RUN/nginx/tmp/fcgi;
	uwsgi_temp_path $RUN/nginx/tmp/uwsgi;
	scgi_temp_path $RUN/nginx/tmp/scgi;
	default_type application/octet-stream;
	server {
		listen 127.0.0.1:$OPORT;
		root $RUN/nginx/html;
	}
}
EOF
"$NGINX" -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf" 2> "$RUN/nginx.err" &
DAEMONS="$DAEMONS $!"
wait_listen "$OPORT" "$!"

# --- the systems ---
HPORT=$(free_port)
cat > "$RUN/haproxy.cfg" <<EOF
global
    maxconn 6000
    nbthread 1
defaults
    mode tcp
    option splice-auto
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend fe
    bind 127.0.0.1:$HPORT
    default_backend be
backend be
    source 127.0.21.2
    server origin 127.0.0.1:$OPORT
EOF
haproxy -db -f "$RUN/haproxy.cfg" > "$RUN/haproxy.out" 2>&1 &
HPID=$!
DAEMONS="$DAEMONS $HPID"
wait_listen "$HPORT" "$HPID"

printf '%s\n' "$USER_PASS" | "$IPLOCK" passwd "$USER_NAME" --password-stdin > "$RUN/passwd.out" 2> "$RUN/passwd.err"
start_iplock() { # start_iplock NAME BIN EGRESS -> sets IP_PID, IP_PORT
	IP_PORT=$(free_port)
	{
		cat <<EOF
[proxy]
listen = 127.0.0.1:$IP_PORT
egress = $3
workers = 1
allow_destinations = 127.0.0.1/32
connect_ports = $OPORT
http_ports = $OPORT
access_log = off

EOF
		sed -n '/^\[user /,/^$/p' "$RUN/passwd.out"
	} > "$RUN/$1.conf"
	"$2" proxy -c "$RUN/$1.conf" > /dev/null 2> "$RUN/$1.err" &
	IP_PID=$!
	DAEMONS="$DAEMONS $IP_PID"
	wait_listen "$IP_PORT" "$IP_PID"
}
start_iplock iplock "$IPLOCK" 127.0.22.2
NPID=$IP_PID; NPORT=$IP_PORT
SYSTEMS="haproxy iplock"
if [ -n "$BASE" ]; then
	[ -x "$BASE" ] || { log "$BASE missing"; exit 2; }
	start_iplock iplock-base "$BASE" 127.0.23.2
	BPID=$IP_PID; BPORT=$IP_PORT
	SYSTEMS="haproxy iplock iplock-base"
fi

O="-o 127.0.0.1:$OPORT"
AUTH="-a $USER_NAME:$USER_PASS"
args() { # proxy arguments of a system
	case $1 in
	haproxy) echo "--no-connect -x 127.0.0.1:$HPORT" ;;
	iplock) echo "-x 127.0.0.1:$NPORT $AUTH" ;;
	iplock-base) echo "-x 127.0.0.1:$BPORT $AUTH" ;;
	esac
}
pid_of() { case $1 in haproxy) echo "$HPID" ;; iplock) echo "$NPID" ;; iplock-base) echo "$BPID" ;; esac; }

# rows: system load round cpu_us_per_op rate ok err
: > "$RUN/rows"
measure() { # measure SYSTEM LOAD ROUND
	p=$(pid_of "$1")
	c0=$(proc_ticks "$p")
	# shellcheck disable=SC2046
	"$LG" "$2" $(args "$1") $O -c "$CONC" -d "$SECS" -S 16 > "$RUN/$1-$2-$3.out" 2> "$RUN/$1-$2-$3.err" || true
	c1=$(proc_ticks "$p")
	r=$(grep '^mode=' "$RUN/$1-$2-$3.out" | tail -1 || true)
	ok=$(field "$r" ok); er=$(field "$r" err)
	[ "${er:-0}" = 0 ] || log "$1 $2 round $3: $er errors ($(head -1 "$RUN/$1-$2-$3.err"))"
	awk -v s="$1" -v l="$2" -v rd="$3" -v a="$c0" -v b="$c1" -v hz="$HZ" -v ok="${ok:-0}" -v er="${er:-0}" \
	    -v rate="$(field "$r" rate)" 'BEGIN {
		c = (ok > 0) ? sprintf("%.2f", (b - a) * 1e6 / hz / ok) : "n/a"
		printf "%s %s %s %s %s %s %s\n", s, l, rd, c, rate, ok, er }' >> "$RUN/rows"
	tail -1 "$RUN/rows" >&2
}

log "warm-up"
for s in $SYSTEMS; do
	# shellcheck disable=SC2046
	"$LG" forward $(args "$s") $O -c "$CONC" -n 2000 -d 5 > /dev/null 2>&1 || true
	# shellcheck disable=SC2046
	"$LG" tunnels $(args "$s") $O -c "$CONC" -n 500 -d 5 -S 16 > /dev/null 2>&1 || true
done
if [ "${BENCH_PERF:-0}" = 1 ] && command -v perf > /dev/null; then
	log "perf record of iplock during a forward load"
	perf record -q -g -o "$RUN/perf.data" -p "$NPID" -- sleep "$SECS" > "$RUN/perf.out" 2>&1 &
	PERF=$!
	# shellcheck disable=SC2046
	"$LG" forward $(args iplock) $O -c "$CONC" -d "$SECS" > /dev/null 2>&1 || true
	wait "$PERF" || true
fi

START=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
round=1
while [ $round -le "$ROUNDS" ]; do
	# a different system goes first in each round, so none always runs in another's wake
	order=$(echo $SYSTEMS | tr ' ' '\n' | awk -v r="$round" '{ a[NR] = $0 } END { for (i = 0; i < NR; i++) print a[(i + r) % NR + 1] }')
	for load in forward tunnels; do
		for s in $order; do measure "$s" "$load" "$round"; done
	done
	round=$((round + 1))
done

{
	echo "## iplock proxy: CPU per forwarded GET and per tunnel beside HAProxy's TCP relay ($START)"
	echo
	echo "$(nproc) cores ($(uname -r)), shared with other jobs; load average start $LOAD0, end $(cut -d' ' -f1-3 /proc/loadavg)."
	echo "Origin: nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///'), one worker, /1k = 1024 bytes, keep-alive. HAProxy $(haproxy -v | sed -n '1s/^HAProxy version \([^ ]*\).*/\1/p') \`nbthread 1\`, TCP mode, splice-auto."
	echo "iplock \`workers = 1\`, Basic auth checked on every request (forward) and every CONNECT, one egress address, no access log."
	echo "Loads: $CONC clients, ${SECS} s each, $ROUNDS interleaved rounds. forward = keep-alive GETs (iplock: absolute-form + Proxy-Authorization;"
	echo "HAProxy: the GET relayed as TCP); tunnels = connect, CONNECT (HAProxy: none), GET /1k, close."
	echo "CPU µs/op = the process's utime+stime over the load / completed operations; median of the rounds, spread = min-max."
	echo
	echo "| system | load | CPU µs/op median | spread | ops/s median | errors |"
	echo "|---|---|---:|---|---:|---:|"
	awk '
	function med(list,   n, a, i, j, t) {
		n = split(list, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	function lo(list,   n, a, i, m) { n = split(list, a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] + 0 < m + 0) m = a[i]; return m }
	function hi(list,   n, a, i, m) { n = split(list, a, " "); m = a[1]; for (i = 2; i <= n; i++) if (a[i] + 0 > m + 0) m = a[i]; return m }
	$4 != "n/a" { k = $1 " " $2; if (!(k in cpu)) order[++n] = k; cpu[k] = cpu[k] " " $4; rate[k] = rate[k] " " $5; err[k] += $7 }
	END {
		for (i = 1; i <= n; i++) {
			k = order[i]; split(k, p, " ")
			printf "| %s | %s | %.1f | %.1f-%.1f | %.0f | %d |\n", p[1], p[2], med(cpu[k]), lo(cpu[k]), hi(cpu[k]), med(rate[k]), err[k]
			m[k] = med(cpu[k])
		}
		print ""
		floor["forward"] = 1.1; floor["tunnels"] = 1.0
		for (l in floor) {
			h = m["haproxy " l]; ip = m["iplock " l]; b = m["iplock-base " l]
			if (h > 0 && ip > 0)
				printf "- %s: iplock / HAProxy CPU per op %.2fx (%.1f vs %.1f µs; target <= %.1fx) **%s**\n", l == "forward" ? "forwarded GET" : "CONNECT tunnel", ip / h, ip, h, floor[l], ip / h <= floor[l] ? "PASS" : "FAIL"
			if (h > 0 && b > 0)
				printf "- %s: iplock-base / HAProxy %.2fx; iplock / iplock-base %.2fx (%.1f vs %.1f µs)\n", l == "forward" ? "forwarded GET" : "CONNECT tunnel", b / h, ip / b, ip, b
		}
	}' "$RUN/rows"
	# the same ratios paired per round (both measured within a minute of each other)
	awk '
	{ c[$1 " " $2 " " $3] = $4; if ($3 > nr) nr = $3 }
	function show(name, a, l,   n, v, i, j, t, r) {
		n = 0
		for (r = 1; r <= nr; r++)
			if (c[a " " l " " r] > 0 && c["haproxy " l " " r] > 0) v[++n] = c[a " " l " " r] / c["haproxy " l " " r]
		if (!n) return
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
		printf "- %s / HAProxy, paired per round: median %.2fx, spread %.2f-%.2fx over %d rounds\n", name, n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2, v[1], v[n], n
	}
	END {
		show("iplock forwarded GET", "iplock", "forward"); show("iplock CONNECT tunnel", "iplock", "tunnels")
		show("iplock-base forwarded GET", "iplock-base", "forward"); show("iplock-base CONNECT tunnel", "iplock-base", "tunnels")
	}' "$RUN/rows"
	echo
	echo "Raw rows (system load round cpu_us ops/s ok err): bench/out/fwd/rows."
} > "$OUT/fwd.md"
cat "$OUT/fwd.md"
