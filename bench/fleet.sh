#!/bin/sh
# bench/fleet.sh: the proxy with its user from the store (`users_db`, usage counted per user
# and egress address and flushed every second) beside the same proxy with the user in the INI
# file, in one run (issue 13, "Must show"): CPU per tunnel, per forwarded GET and per GiB of bulk
# download through one tunnel (BENCH_BULK_N x 256 MiB), measured from
# /proc like bench/run.sh. Rounds are interleaved (shared machine) and the best figure of each
# side is kept. Writes bench/out/fleet.md.
#
# Knobs: BENCH_SECS (5) per load, BENCH_ROUNDS (3), BENCH_CONC (20), BENCH_STORE (sqlite |
# a postgresql:// or key=value target), IPLOCK_BIN (build/iplock).
# Every process started here is stopped by its PID.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
IPLOCK=${IPLOCK_BIN:-$ROOT/build/iplock}
OUT=$ROOT/bench/out
RUN=$OUT/fleet
SECS=${BENCH_SECS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
CONC=${BENCH_CONC:-20}
BULK_N=${BENCH_BULK_N:-8}
BULK_BYTES=268435456
STORE=${BENCH_STORE:-sqlite}

BENCH_NAME=bench-fleet
. "$ROOT/bench/lib.sh"

need_tools "$LG" "$ORIGIN" "$IPLOCK"
rm -rf "$RUN"
mkdir -p "$RUN"

start_origin

# One password for both sides: the INI side gets the hash of the store user's password.
DB=$STORE
[ "$STORE" = sqlite ] && DB=$RUN/users.db
URL=$("$IPLOCK" users --db "$DB" add bench)
PASS=$(printf '%s' "$URL" | sed 's|^http://bench:\([^@]*\)@.*|\1|')
printf '%s\n' "$PASS" | "$IPLOCK" passwd benchini --password-stdin > "$RUN/passwd.out" 2>/dev/null

conf() {   # $1 = ini|store, $2 = port
	cat <<EOF
[proxy]
listen = 127.0.0.1:$2
egress = 127.0.0.2 127.0.0.3
allow_destinations = 127.0.0.1/32
connect_ports = 443 $OPORT
http_ports = 80 $OPORT
access_log = off
EOF
	if [ "$1" = store ]; then
		printf 'users_db = %s\nnode_name = bench\n' "$DB"
	else
		sed -n '/^\[user /,/^$/p' "$RUN/passwd.out"
	fi
}

measure() {   # name pid loadgen-args...
	name=$1; pid=$2; shift 2
	c0=$(proc_ticks "$pid")
	"$LG" "$@" > "$RUN/$name.out" 2> "$RUN/$name.err" || true
	c1=$(proc_ticks "$pid")
	res=$(grep '^mode=' "$RUN/$name.out" | tail -1 || true)
	ok=$(field "$res" ok)
	echo "$name ok=${ok:-0} err=$(field "$res" err) rate=$(field "$res" rate) mbps=$(field "$res" mbps) cpu_ticks=$((c1 - c0))" >> "$RUN/measures"
}

for r in $(seq 1 "$ROUNDS"); do
	for side in ini store; do
		port=$(free_port)
		conf "$side" "$port" > "$RUN/$side.conf"
		"$IPLOCK" proxy -c "$RUN/$side.conf" > /dev/null 2> "$RUN/$side-$r.stderr" &
		pid=$!
		DAEMONS="$DAEMONS $pid"
		wait_listen "$port" "$pid"
		user=bench; [ "$side" = ini ] && user=benchini
		X="-x 127.0.0.1:$port -a $user:$PASS -o 127.0.0.1:$OPORT"
		"$LG" tunnels $X -c "$CONC" -n 400 -d 5 > /dev/null 2>&1 || true   # warm-up, PBKDF2 per worker
		measure "$side-tunnels-$r" "$pid" tunnels $X -c "$CONC" -d "$SECS"
		measure "$side-forward-$r" "$pid" forward $X -c "$CONC" -d "$SECS"
		measure "$side-bulk-$r" "$pid" bulk $X -n "$BULK_N" -b "$BULK_BYTES"
		stop_pid "$pid"
		DAEMONS=$(echo "$DAEMONS" | sed "s/ $pid\b//")
	done
done

# Usage the store counted for the store side (all rounds, warm-ups included).
USAGE=$("$IPLOCK" users --db "$DB" --json usage bench)

awk -v hz="$HZ" -v gib_per_ok="$(awk "BEGIN { print $BULK_BYTES / 1073741824 }")" -v secs="$SECS" -v rounds="$ROUNDS" -v conc="$CONC" -v store="$STORE" -v usage="$USAGE" '
function median(a, n,    i, j, t) {
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
	split($1, n, "-"); side = n[1]; load = n[2]; r = n[3]
	for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	if (v["ok"] > 0) {
		# tunnels, forward: µs per operation; bulk: CPU seconds per GiB
		us = load == "bulk" ? v["cpu_ticks"] / hz / (v["ok"] * gib_per_ok) : v["cpu_ticks"] / hz * 1e6 / v["ok"]
		k = side "," load
		per[k "," r] = us
		if (!(k in best) || us < best[k]) best[k] = us
		rt_ = load == "bulk" ? v["mbps"] : v["rate"]      # bulk: MB/s through the tunnel
		if (!(k in rate) || rt_ + 0 > rate[k] + 0) rate[k] = rt_
	}
}
END {
	printf "## iplock proxy: users from the store vs the INI file (bench/fleet.sh)\n\n"
	printf "Store: %s. %d interleaved rounds (INI, then store, in each), %d clients, %d s per load, on a shared 2-core machine.\n", store, rounds, conc, secs
	printf "tunnels = connect, CONNECT, GET 1 KiB, close; forward = keep-alive absolute-form GETs of 1 KiB. CPU = the proxy'"'"'s utime+stime (all threads: workers, feed, flush).\n"
	printf "Rates and CPU columns: best round of each side. The verdict uses the median over rounds of the paired ratio store / INI (same round, back to back), which cancels most of the other jobs'"'"' load.\n\n"
	printf "| users | tunnels/s | CPU µs/tunnel | fwd GET/s | CPU µs/GET | bulk MB/s | CPU s/GiB |\n|---|---:|---:|---:|---:|---:|---:|\n"
	split("ini store", sides, " ")
	for (s = 1; s <= 2; s++) {
		sd = sides[s]
		printf "| %s | %.1f | %.1f | %.1f | %.2f | %s | %.3f |\n", sd == "ini" ? "INI [user]" : "users_db + usage counting", rate[sd ",tunnels"], best[sd ",tunnels"], rate[sd ",forward"], best[sd ",forward"], rate[sd ",bulk"], best[sd ",bulk"]
	}
	nt = nf = nb = 0
	for (r = 1; r <= rounds; r++) {
		if (("store,tunnels," r) in per && ("ini,tunnels," r) in per) rt[++nt] = per["store,tunnels," r] / per["ini,tunnels," r]
		if (("store,forward," r) in per && ("ini,forward," r) in per) rf[++nf] = per["store,forward," r] / per["ini,forward," r]
		if (("store,bulk," r) in per && ("ini,bulk," r) in per) rb[++nb] = per["store,bulk," r] / per["ini,bulk," r]
	}
	printf "\nPer-round ratios store / INI, CPU per tunnel:"
	for (i = 1; i <= nt; i++) printf " %.3f", rt[i]
	printf "; per forwarded GET:"
	for (i = 1; i <= nf; i++) printf " %.3f", rf[i]
	printf "; per GiB of bulk:"
	for (i = 1; i <= nb; i++) printf " %.3f", rb[i]
	t = median(rt, nt); f = median(rf, nf); b = median(rb, nb)
	printf "\n\nCPU per tunnel, store / INI (median): %.3f (%+.1f%%; goal <= +5%%) **%s**\n", t, (t - 1) * 100, t <= 1.05 ? "PASS" : "FAIL"
	printf "CPU per forwarded GET, store / INI (median): %.3f (%+.1f%%)\n", f, (f - 1) * 100
	printf "CPU per GiB of bulk, store / INI (median): %.3f (%+.1f%%)\n", b, (b - 1) * 100
	printf "\nUsage the store counted for the store side (every round, warm-ups included): `%s`\n", usage
}' "$RUN/measures" > "$OUT/fleet.md"
cat "$OUT/fleet.md"
