#!/bin/bash
# bench/scan.sh: `iplock scan` against ripgrep on a generated 1 GiB corpus, one core each; then
# a gzip of the first SCAN_BENCH_ARC_MIB of it read as an archive (`iplock scan X.gz`, libarchive)
# against `zcat X.gz | iplock scan -`, both pinned to the same one core (same CPU budget).
# ripgrep runs the equivalent regular expression (RE below: the same key formats and boundaries).
# Floors: iplock faster than ripgrep and at least 1 GB/s; archive at least 0.8x the zcat pipe;
# both tools must report exactly the planted keys (offset and length, from gen_corpus's list).
# Env: IPLOCK_BIN (default build/iplock), SCAN_BENCH_MIB (default 1024), SCAN_BENCH_RUNS (3),
# SCAN_BENCH_ARC_MIB (default 256).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${IPLOCK_BIN:-build/iplock}
MIB=${SCAN_BENCH_MIB:-1024}
ARC_MIB=${SCAN_BENCH_ARC_MIB:-256}
RUNS=${SCAN_BENCH_RUNS:-3}
OUT=bench/out
CORPUS=$OUT/scan-corpus-${MIB}m.txt
# The same keys as iplock finds (the corpus has no placeholders, so none to exclude);
# ASCII word boundaries stand in for GitHub's [0-9A-Za-z] boundaries on this corpus.
RE='(?-u:\b)(?:(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{10,247}|sk_org_(?:(?:live|test)_)?[0-9A-Za-z]{10,247}|whsec_[0-9A-Za-z]{32,247})(?-u:\b)'

command -v rg >/dev/null || { echo "bench/scan.sh: ripgrep (rg) missing: apt-get install ripgrep" >&2; exit 2; }
[ -x "$BIN" ] || { echo "bench/scan.sh: $BIN missing: run make" >&2; exit 2; }
mkdir -p "$OUT"
PLANTED=$CORPUS.planted
if [ ! -s "$CORPUS" ] || [ ! -s "$PLANTED" ]; then
	cc -O2 -o "$OUT/gen_corpus" bench/gen_corpus.c
	t0=$(date +%s.%N)
	"$OUT/gen_corpus" "$MIB" "$PLANTED" > "$CORPUS.tmp" 2> "$CORPUS.keys"
	mv "$CORPUS.tmp" "$CORPUS"
	printf 'generated %s (%s MiB, %s keys) in %.1f s\n' "$CORPUS" "$MIB" "$(cat "$CORPUS.keys")" \
		"$(echo "$(date +%s.%N) - $t0" | bc)"
fi
bytes=$(stat -c %s "$CORPUS")
cat "$CORPUS" > /dev/null # into the page cache: both tools read from memory

# best of RUNS wall-clock seconds of a command; its stdout goes to $OUT/last.out
best() {
	local b="" t0 t1 dt
	for _ in $(seq "$RUNS"); do
		t0=$(date +%s%N)
		"$@" > "$OUT/last.out" || [ $? -eq 1 ]
		t1=$(date +%s%N)
		dt=$(( t1 - t0 ))
		if [ -z "$b" ] || [ "$dt" -lt "$b" ]; then b=$dt; fi
	done
	echo "$b"
}

ns_ip=$(best taskset -c 0 "$BIN" scan -q --format jsonl "$CORPUS")
n_ip=$(wc -l < "$OUT/last.out")
# "offset length" of every finding, sorted, against the planted list
sed -n 's/.*"offset":\([0-9]*\),"length":\([0-9]*\).*/\1 \2/p' "$OUT/last.out" | sort > "$OUT/found-iplock"
ns_rg=$(best taskset -c 0 rg --count-matches -a -e "$RE" "$CORPUS")
n_rg=$(cat "$OUT/last.out")
# the same regex once more, untimed, for the positions (-b: byte offset of each match)
rg -a -o -b --no-line-number -e "$RE" "$CORPUS" | awk '{ i = index($0, ":"); print substr($0, 1, i - 1), length($0) - i }' |
	sort > "$OUT/found-rg" || true
sort "$PLANTED" > "$OUT/planted-sorted"
miss_ip=$(comm -23 "$OUT/planted-sorted" "$OUT/found-iplock" | wc -l)
extra_ip=$(comm -13 "$OUT/planted-sorted" "$OUT/found-iplock" | wc -l)
miss_rg=$(comm -23 "$OUT/planted-sorted" "$OUT/found-rg" | wc -l)
extra_rg=$(comm -13 "$OUT/planted-sorted" "$OUT/found-rg" | wc -l)
n_planted=$(wc -l < "$PLANTED")

mbs() { echo "scale=0; $bytes * 1000 / $1" | bc; } # MB/s (10^6 bytes) from ns
ip=$(mbs "$ns_ip")
rgs=$(mbs "$ns_rg")
ratio=$(echo "scale=2; $ns_rg / $ns_ip" | bc)
printf '%-22s %10s %10s %10s\n' "scan ($((bytes >> 20)) MiB, 1 core)" "seconds" "MB/s" "findings"
printf '%-22s %10.3f %10s %10s\n' "iplock scan" "$(echo "scale=3; $ns_ip/1000000000" | bc)" "$ip" "$n_ip"
rgv=$(rg --version | sed -n '1s/^ripgrep \([^ ]*\).*/\1/p')
printf '%-22s %10.3f %10s %10s\n' "ripgrep $rgv (equivalent regex)" \
	"$(echo "scale=3; $ns_rg/1000000000" | bc)" "$rgs" "$n_rg"
printf 'iplock/ripgrep speed ratio: %sx\n' "$ratio"
printf 'planted keys: %s; iplock: %s missed, %s not planted; ripgrep (equivalent regex): %s missed, %s not planted\n' \
	"$n_planted" "$miss_ip" "$extra_ip" "$miss_rg" "$extra_rg"

# archives: the same bytes decompressed by libarchive inside iplock, or by zcat into a pipe
GZ=$OUT/scan-corpus-${MIB}m-head${ARC_MIB}m.txt.gz
if [ ! -s "$GZ" ]; then
	head -c $((ARC_MIB << 20)) "$CORPUS" | gzip -6 > "$GZ.tmp" && mv "$GZ.tmp" "$GZ"
fi
cat "$GZ" > /dev/null
ns_arc=$(best taskset -c 0 "$BIN" scan -q --format jsonl "$GZ")
n_arc=$(wc -l < "$OUT/last.out")
ns_zc=$(best taskset -c 0 sh -c 'zcat "$1" | "$2" scan -q --format jsonl -' sh "$GZ" "$BIN")
n_zc=$(wc -l < "$OUT/last.out")
abytes=$((ARC_MIB << 20))
amb() { echo "scale=0; $abytes * 1000 / $1" | bc; }
aratio=$(echo "scale=2; $ns_zc / $ns_arc" | bc)
printf '%-22s %10s %10s %10s\n' "gzip ($ARC_MIB MiB out, 1 core)" "seconds" "MB/s out" "findings"
printf '%-22s %10.3f %10s %10s\n' "iplock scan X.gz" "$(echo "scale=3; $ns_arc/1000000000" | bc)" \
	"$(amb "$ns_arc")" "$n_arc"
printf '%-22s %10.3f %10s %10s\n' "zcat X.gz | scan -" "$(echo "scale=3; $ns_zc/1000000000" | bc)" \
	"$(amb "$ns_zc")" "$n_zc"
printf 'archive / zcat-pipe speed ratio: %sx\n' "$aratio"

fail=0
[ "$n_ip" = "$n_rg" ] || { echo "FAIL: finding counts differ ($n_ip vs $n_rg)"; fail=1; }
[ "$miss_ip" = 0 ] && [ "$extra_ip" = 0 ] || { echo "FAIL: iplock findings are not the planted keys"; fail=1; }
[ "$miss_rg" = 0 ] && [ "$extra_rg" = 0 ] || { echo "FAIL: ripgrep findings are not the planted keys"; fail=1; }
[ "$ns_ip" -lt "$ns_rg" ] || { echo "FAIL: not faster than ripgrep"; fail=1; }
[ "$ip" -ge 1000 ] || { echo "FAIL: below 1 GB/s on one core"; fail=1; }
[ "$n_arc" = "$n_zc" ] || { echo "FAIL: archive finding counts differ ($n_arc vs $n_zc)"; fail=1; }
[ "$(echo "$aratio >= 0.8" | bc)" = 1 ] || { echo "FAIL: archive below 0.8x of zcat | scan -"; fail=1; }
[ $fail -eq 0 ] && echo "scan floors met: faster than ripgrep (equivalent regex), >= 1 GB/s, archive >= 0.8x zcat pipe, findings = planted keys"
exit $fail
