#!/bin/sh
# bench/gate.sh: the gate benchmark of issue 4, against the same origin with the same load:
#   1. reverse proxy: iplock gate vs nginx as a plain reverse proxy (keep-alive both sides),
#      wrk with BENCH_CONC (50) connections, GET /1k, requests/s and p99;
#   2. forward-auth decisions per second and p99 at 50 concurrent clients;
#   3. the same decisions with 10,000 keys in the store (the benchmark key carrying a
#      5,000-entry allowlist) against a store holding that key alone.
# Floors (issue 4): gate >= 80% of nginx's throughput, decision p99 < 1 ms, no measurable
# slowdown with 10,000 keys. Prints a markdown table and writes bench/out/gate.md.
# Fair by construction: one nginx worker and `workers = 1` in the gate; access logs off on both
# reverse proxies (the forward-auth gates log, both of them, for the decision-time figure);
# upstream keep-alive on both sides. The host is shared, so every load runs BENCH_ROUNDS
# times, interleaved, and the best run counts; CPU time per request is printed beside it.
# Knobs: BENCH_SECS (8), BENCH_CONC (50), BENCH_WRK_THREADS (1), BENCH_ROUNDS (3),
# IPLOCK_BIN, NGINX, IPLOCK_BASE_BIN (an older build's gate beside it, same loads: before/after).
# Every daemon started here is stopped by its PID.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
IPLOCK=${IPLOCK_BIN:-$ROOT/build/iplock}
BASE_BIN=${IPLOCK_BASE_BIN:-}
NGINX=${NGINX:-/usr/sbin/nginx}
OUT=$ROOT/bench/out
RUN=$OUT/gate-run
SECS=${BENCH_SECS:-8}
CONC=${BENCH_CONC:-50}
WT=${BENCH_WRK_THREADS:-1}
ROUNDS=${BENCH_ROUNDS:-3}
PY=/usr/bin/python3

BENCH_NAME=bench/gate
. "$ROOT/bench/lib.sh"

need_tools "$IPLOCK" "$LG" "$ORIGIN" "$NGINX"
command -v wrk >/dev/null || { echo "bench/gate: wrk missing (make deps-bench)" >&2; exit 2; }
rm -rf "$RUN"
mkdir -p "$RUN/nginx/logs" "$RUN/nginx/tmp"

# CPU ticks of a process and its children (nginx's worker).
cpu_ticks() { tree_sum "$1" cpu; }
# CPU microseconds per request of PID over a run: ticks before, ticks after, "rps ..." line
cpu_per_req() {
	$PY -c 'import sys; t0, t1, rps, secs, hz = map(float, sys.argv[1:6]); n = rps * secs; print(f"{(t1 - t0) * 1e6 / hz / n:.1f}" if n else "0")' "$@"
}

# wrk summary -> "rps p99_ms" (p99 from --latency, converted to ms)
run_wrk() {
	url=$1; shift
	wrk -t"$WT" -c"$CONC" -d"${SECS}s" --latency "$@" "$url" > "$RUN/wrk.txt" 2>&1 || true
	$PY - "$RUN/wrk.txt" <<'PYEOF'
import re, sys
t = open(sys.argv[1]).read()
rps = re.search(r"Requests/sec:\s+([\d.]+)", t)
p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\b", t, re.M)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
# a failed request counts as a bad answer too (connection errors, timeouts)
bad = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
if not rps or not p99:
    sys.stderr.write(t); print("0 0 1"); sys.exit(0)
v = float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
print(f"{float(rps.group(1)):.0f} {v:.3f} {bad}")
PYEOF
}

# --- origin ---
start_origin -t 1
OP=$OPORT

# --- key stores: one with the benchmark key alone, one with 10,000 keys ---
mk_store() {
	db=$1; n=$2
	KEY=$("$IPLOCK" keys --db "$db" --json create --type secret --mode live --name bench \
		--allow 127.0.0.0/8 | $PY -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
	$PY - "$db" "$n" <<'PYEOF'
import hashlib, os, sqlite3, sys, time
db, n = sys.argv[1], int(sys.argv[2])
con = sqlite3.connect(db)
kid = con.execute("SELECT id FROM keys").fetchone()[0]
# a 5,000-entry allowlist on the benchmark key (127.0.0.0/8 is among them)
con.executemany("INSERT INTO allow (key_id, entry) VALUES (?, ?)",
                [(kid, f"10.{i // 256}.{i % 256}.0/24") for i in range(4999)])
g = con.execute("SELECT MAX(gen) FROM keys").fetchone()[0]
rows = []
for i in range(n - 1):
    h = hashlib.sha256(os.urandom(32)).hexdigest()
    rows.append((f"key_bench{i:011d}", h, "sk_live_****" + h[:4], "secret", "live", "", int(time.time()), g + 1 + i))
con.executemany("INSERT INTO keys (id, hash, masked, type, mode, name, created, gen) VALUES (?,?,?,?,?,?,?,?)", rows)
con.execute("UPDATE keys SET gen = (SELECT MAX(gen) + 1 FROM keys) WHERE id = ?", (kid,))
con.commit()
PYEOF
	echo "$KEY"
}
KEY1=$(mk_store "$RUN/one.db" 1)
KEY10K=$(mk_store "$RUN/many.db" 10000)
# the older build gets a store of its own making: a newer schema is refused by an older binary
[ -z "$BASE_BIN" ] || KEYB=$(IPLOCK=$BASE_BIN mk_store "$RUN/base.db" 10000)

start_gate() {
	name=$1; db=$2; mode=$3; port=$4; alog=${5:-off}
	cat > "$RUN/$name.ini" <<EOF2
[gate]
listen = 127.0.0.1:$port
db = $db
upstream = 127.0.0.1:$OP
mode = $mode
access_log = $alog
workers = 1
EOF2
	"${GATE_BIN:-$IPLOCK}" gate -c "$RUN/$name.ini" 2> "$RUN/$name.err" &
	eval "PID_$name=$!"
	DAEMONS="$DAEMONS $!"
	wait_listen "$port" "$!"
}

# --- nginx as a plain reverse proxy (one worker, like the gate's one loop) ---
NP=$(free_port)
user=""; [ "$(id -u)" = 0 ] && user="user root;"
cat > "$RUN/nginx/nginx.conf" <<EOF2
$user
worker_processes 1;
daemon off;
pid $RUN/nginx/nginx.pid;
error_log $RUN/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $RUN/nginx/tmp/body;
	proxy_temp_path $RUN/nginx/tmp/proxy;
	fastcgi_temp_path $RUN/nginx/tmp/fcgi;
	uwsgi_temp_path $RUN/nginx/tmp/uwsgi;
	scgi_temp_path $RUN/nginx/tmp/scgi;
	upstream origin { server 127.0.0.1:$OP; keepalive 64; }
	server {
		listen 127.0.0.1:$NP;
		location / {
			proxy_pass http://origin;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
}
EOF2
"$NGINX" -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf" 2> "$RUN/nginx.err" &
NGINX_PID=$!
DAEMONS="$DAEMONS $!"
wait_listen "$NP" "$NGINX_PID"

GP=$(free_port); start_gate proxy "$RUN/many.db" reverse-proxy "$GP"
if [ -n "$BASE_BIN" ]; then
	BP=$(free_port); GATE_BIN=$BASE_BIN start_gate base "$RUN/base.db" reverse-proxy "$BP"
fi
AP1=$(free_port); start_gate auth1 "$RUN/one.db" forward-auth "$AP1" "$RUN/auth1.log"
AP2=$(free_port); start_gate auth10k "$RUN/many.db" forward-auth "$AP2" "$RUN/auth10k.log"

AUTH="Authorization: Bearer $KEY10K"
# wrk counts only statuses >= 400 as bad: one request per load first must answer exactly 2xx.
PRE_BAD=0
precheck() { # precheck NAME URL [curl -H args]
	n=$1; u=$2; shift 2
	st=$(curl -s -o /dev/null -w '%{http_code}' "$@" "$u" || echo 000)
	case $st in 2??) ;; *) log "$n answered $st, not 2xx"; PRE_BAD=$((PRE_BAD + 1)) ;; esac
}
precheck nginx "http://127.0.0.1:$NP/1k"
precheck gate "http://127.0.0.1:$GP/1k" -H "$AUTH"
precheck auth1 "http://127.0.0.1:$AP1/_iplock/auth" -H "Authorization: Bearer $KEY1" \
	-H 'X-Original-URI: /v1/charges' -H 'X-Original-Method: GET'
precheck auth10k "http://127.0.0.1:$AP2/_iplock/auth" -H "$AUTH" \
	-H 'X-Original-URI: /v1/charges' -H 'X-Original-Method: GET'
log "warm-up"
SECS_SAVE=$SECS; SECS=1
run_wrk "http://127.0.0.1:$NP/1k" > /dev/null
run_wrk "http://127.0.0.1:$GP/1k" -H "$AUTH" > /dev/null
SECS=$SECS_SAVE

# The host is shared: every load runs ROUNDS times, interleaved, and the best run counts.
# Each run appends "rps p99 non2xx cpu_us_per_req" to $RUN/res.<load>.
measure() { # measure LOAD PID URL [wrk args]
	load=$1; pid=$2; url=$3; shift 3
	t0=$(cpu_ticks "$pid")
	r=$(run_wrk "$url" "$@")
	t1=$(cpu_ticks "$pid")
	echo "$r $(cpu_per_req "$t0" "$t1" "${r%% *}" "$SECS" "$HZ")" >> "$RUN/res.$load"
}
best() { # best "rps p99 bad cpu" of a load: highest rps, lowest p99 and CPU of any run; bad = all runs' sum
	$PY - "$RUN/res.$1" <<'PYEOF'
import sys
rows = [l.split() for l in open(sys.argv[1]) if len(l.split()) == 4]
bad = sum(int(x[2]) for x in rows)
a = [x for x in rows if float(x[0]) > 0]
if not a:
    print("0 0 1 0"); sys.exit(0)
b = max(a, key=lambda x: float(x[0]))
print(b[0], min((x[1] for x in a), key=float), bad, min((x[3] for x in a), key=float))
PYEOF
}
A1_AUTH="Authorization: Bearer $KEY1"
round=1
while [ $round -le "$ROUNDS" ]; do
	log "round $round/$ROUNDS: nginx reverse proxy"
	measure nginx "$NGINX_PID" "http://127.0.0.1:$NP/1k"
	log "round $round/$ROUNDS: gate reverse proxy (10,000 keys)"
	measure gate "$PID_proxy" "http://127.0.0.1:$GP/1k" -H "$AUTH"
	if [ -n "$BASE_BIN" ]; then
		log "round $round/$ROUNDS: base gate reverse proxy (10,000 keys)"
		measure base "$PID_base" "http://127.0.0.1:$BP/1k" -H "Authorization: Bearer $KEYB"
	fi
	# alternate which store goes first, so neither always runs in the other's wake
	for which in $([ $((round % 2)) = 1 ] && echo "F T" || echo "T F"); do
		if [ $which = F ]; then
			log "round $round/$ROUNDS: forward-auth, 1 key"
			measure auth1 "$PID_auth1" "http://127.0.0.1:$AP1/_iplock/auth" -H "$A1_AUTH" \
				-H 'X-Original-URI: /v1/charges' -H 'X-Original-Method: GET'
		else
			log "round $round/$ROUNDS: forward-auth, 10,000 keys"
			measure auth10k "$PID_auth10k" "http://127.0.0.1:$AP2/_iplock/auth" -H "$AUTH" \
				-H 'X-Original-URI: /v1/charges' -H 'X-Original-Method: GET'
		fi
	done
	round=$((round + 1))
done
set -- $(best nginx); N_RPS=$1; N_P99=$2; N_BAD=$3; N_CPU=$4
set -- $(best gate); G_RPS=$1; G_P99=$2; G_BAD=$3; G_CPU=$4
set -- $(best auth1); A1_RPS=$1; A1_P99=$2; A1_BAD=$3; A1_CPU=$4
set -- $(best auth10k); A2_RPS=$1; A2_P99=$2; A2_BAD=$3; A2_CPU=$4
# the gate's own time per decision: head parsed -> answer written, from its access log
DEC_P99=$($PY - "$RUN/auth10k.log" <<'PYEOF'
import json, sys
d = sorted(json.loads(l)["duration_us"] for l in open(sys.argv[1]) if l.strip())
print(f"{d[int(len(d) * 0.99)] / 1000:.3f} {d[len(d) // 2] / 1000:.3f} {len(d)}" if d else "0 0 0")
PYEOF
)

$PY - "$N_BAD" "$PRE_BAD" "$N_RPS" "$N_P99" "$G_RPS" "$G_P99" "$G_BAD" "$A1_RPS" "$A1_P99" "$A1_BAD" "$A2_RPS" "$A2_P99" "$A2_BAD" "$CONC" "$SECS" $DEC_P99 "$(uptime | sed 's/.*load average: //')" "$N_CPU" "$G_CPU" "$A1_CPU" "$A2_CPU" "$ROUNDS" > "$OUT/gate.md" <<'PYEOF'
import sys
n_bad, pre_bad = int(sys.argv[1]), int(sys.argv[2])
del sys.argv[1:3]
(n_rps, n_p99, g_rps, g_p99, g_bad, a1_rps, a1_p99, a1_bad, a2_rps, a2_p99, a2_bad, conc,
 secs, dec_p99, dec_p50, dec_n, load, n_cpu, g_cpu, a1_cpu, a2_cpu, rounds) = sys.argv[1:]
f = float
ratio = f(g_rps) / f(n_rps) if f(n_rps) else 0
slow = f(a2_rps) / f(a1_rps) if f(a1_rps) else 0
ok = lambda b: "PASS" if b else "FAIL"
print(f"## iplock gate benchmark ({conc} connections, {secs} s per load, best of {rounds}, wrk, loopback)\n")
print("| load | req/s | p99 ms | non-2xx | CPU us/req |")
print("|---|---:|---:|---:|---:|")
print(f"| nginx reverse proxy -> origin /1k | {n_rps} | {n_p99} | {n_bad} | {n_cpu} |")
print(f"| iplock gate reverse proxy -> origin /1k (10,000 keys) | {g_rps} | {g_p99} | {g_bad} | {g_cpu} |")
print(f"| gate forward-auth, 1 key in store | {a1_rps} | {a1_p99} | {a1_bad} | {a1_cpu} |")
print(f"| gate forward-auth, 10,000 keys, 5,000-entry allowlist | {a2_rps} | {a2_p99} | {a2_bad} | {a2_cpu} |")
print()
allbad = n_bad + int(g_bad) + int(a1_bad) + int(a2_bad) + pre_bad
print(f"- answers other than 2xx (all runs; wrk errors and a curl check of each load): {allbad} (floor 0): {ok(allbad == 0)}")
print(f"- gate / nginx throughput: {ratio:.2f} (floor 0.80): {ok(ratio >= 0.8 and n_bad == 0 and int(g_bad) == 0)}")
cr = f(n_cpu) / f(g_cpu) if f(g_cpu) else 0
print(f"- CPU per proxied request (less noisy on a shared host): nginx {n_cpu} us, gate {g_cpu} us; nginx/gate {cr:.2f}")
print(f"- decision time in the gate (10,000 keys, {dec_n} decisions, access log): p50 {dec_p50} ms, p99 {dec_p99} ms (floor < 1 ms): {ok(f(dec_p99) < 1 and int(a2_bad) == 0)}")
print(f"- forward-auth p99 seen by wrk at {conc} concurrent (includes queueing and wrk itself): {a2_p99} ms")
print(f"- 10,000 keys / 1 key decisions per second: {slow:.2f} (no measurable slowdown: >= 0.90): {ok(slow >= 0.9 and int(a1_bad) == 0 and int(a2_bad) == 0)}")
ac = f(a1_cpu) / f(a2_cpu) if f(a2_cpu) else 0
print(f"- CPU per decision: 1 key {a1_cpu} us, 10,000 keys {a2_cpu} us; 1 key / 10,000 keys {ac:.2f}")
print(f"- host load average during the run: {load} (2 shared cores: figures are noisy)")
PYEOF
if [ -n "$BASE_BIN" ]; then
	set -- $(best base)
	{
		echo
		echo "Before / after (same run): base gate ${IPLOCK_BASE_DESC:-$BASE_BIN} reverse proxy $1 req/s, CPU $4 us/req, non-2xx $3;"
		echo "this gate $G_RPS req/s, CPU $G_CPU us/req. CPU after/before: $($PY -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}x' if float(sys.argv[2]) else 'n/a')" "$G_CPU" "$4"); nginx/gate CPU before $($PY -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}' if float(sys.argv[2]) else 'n/a')" "$N_CPU" "$4"), after $($PY -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}' if float(sys.argv[2]) else 'n/a')" "$N_CPU" "$G_CPU")."
	} >> "$OUT/gate.md"
fi
cat "$OUT/gate.md"
# the exit status says whether every floor held
! grep -q FAIL "$OUT/gate.md"
