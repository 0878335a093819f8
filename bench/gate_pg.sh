#!/bin/sh
# Gate start-up on PostgreSQL with N keys (default 1,000,000): time from exec until the
# listener opens (the whole store is loaded first) and resident memory per key.
#   sh bench/gate_pg.sh [N]
set -eu
N=${1:-1000000}
BIN=${IPLOCK_BIN:-build/iplock}
here=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d /tmp/iplock-pgbench-XXXXXX)
rmdir "$dir"
work=$(mktemp -d /tmp/iplock-pgbench-w-XXXXXX)
gpid=""
cleanup() { [ -n "$gpid" ] && kill "$gpid" 2>/dev/null; sh "$here/tools/pg-throwaway.sh" stop "$dir"; rm -rf "$work"; }
trap cleanup EXIT INT TERM
base=$(sh "$here/tools/pg-throwaway.sh" start "$dir")
psql -X -q "$base" -c "CREATE DATABASE bench"
db="$base dbname=bench"
"$BIN" keys --db "$db" list >/dev/null        # creates the schema
start_gate() {
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	printf '[gate]\nlisten = 127.0.0.1:%s\nmode = forward-auth\ndb = %s\naccess_log = off\n' "$port" "$db" > "$work/g.ini"
	t0=$(date +%s.%N)
	"$BIN" gate -c "$work/g.ini" 2>"$work/g.err" &
	gpid=$!
	/usr/bin/python3 -c 'import socket, sys, time
while True:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close(); break
    except OSError:
        time.sleep(0.02)' "$port"
	t1=$(date +%s.%N)
	rss=$(awk '/VmRSS/ {print $2}' /proc/$gpid/status)
	kill $gpid; wait $gpid 2>/dev/null || true; gpid=""
	echo "$t0 $t1 $rss"
}
set -- $(start_gate); rss0=$3
t=$(date +%s)
# N secret keys, half with a one-entry allowlist, straight into the tables
psql -X -q "$db" <<SQL
BEGIN;
INSERT INTO keys (id, hash, masked, type, mode, name, created, gen)
  SELECT 'key_' || lpad(g::text, 16, '0'), encode(sha256(('sk_test_bench' || g)::bytea), 'hex'),
         'sk_test_****' || right(g::text, 4), 'secret', 'test', '', $t, g
  FROM generate_series(1, $N) g;
INSERT INTO allow (key_id, entry) SELECT 'key_' || lpad(g::text, 16, '0'), '10.0.0.0/8'
  FROM generate_series(1, $N, 2) g;
UPDATE iplock_version SET v = $N;
COMMIT;
SQL
set -- $(start_gate)
echo "gate on PostgreSQL, $N keys: start-up $(awk "BEGIN { printf \"%.1f\", $2 - $1 }") s (whole store loaded), RSS $(( $3 / 1024 )) MiB, $(( ($3 - rss0) * 1024 / N )) bytes per key (RSS $(( rss0 / 1024 )) MiB with no keys)"
