#!/bin/sh
# make test: the black-box suite against the plain binary and, side by side, against the
# ASan+UBSan binary split in two shards (each run is mostly waiting on sockets, timers and
# child processes, so three fit on two cores; ASan makes each test about twice as slow, so its
# half-suites end about when the plain run does). Shards: the test files by size, dealt in turn.
# Each run's whole output goes to its log; its summary is printed, a failing run's log whole.
# $2, when given, runs once the plain run is done (the fuzz build and the package test, while
# the ASan shards go on); its test-package: lines are printed, and all of it when it fails.
MAKE=${1:-make}
AFTER_PLAIN=${2:-}
mkdir -p build
shard1="" shard2="" i=0
for f in $(ls -S tests/e2e/test_*.py); do
	if [ $((i % 2)) -eq 0 ]; then shard1="$shard1 $f"; else shard2="$shard2 $f"; fi
	i=$((i + 1))
done
$MAKE --no-print-directory e2e > build/e2e-plain.log 2>&1 &
plain=$!
$MAKE --no-print-directory SANITIZE=1 e2e E2E="$shard1" > build/e2e-asan1.log 2>&1 &
asan1=$!
$MAKE --no-print-directory SANITIZE=1 e2e E2E="$shard2" > build/e2e-asan2.log 2>&1 &
asan2=$!
wait $plain; rc_plain=$?
rc_after=0
if [ -n "$AFTER_PLAIN" ]; then
	if sh -c "$AFTER_PLAIN" > build/e2e-after.log 2>&1; then
		grep -E "^test-package:" build/e2e-after.log || true
	else
		rc_after=$?
		cat build/e2e-after.log
	fi
fi
wait $asan1; rc_asan1=$?
wait $asan2; rc_asan2=$?
for run in plain asan1 asan2; do
	eval rc=\$rc_$run
	if [ "$rc" -ne 0 ]; then
		echo "== e2e ($run) FAILED: build/e2e-$run.log"
		cat build/e2e-$run.log
	else
		echo "== e2e ($run): $(tail -1 build/e2e-$run.log)"
	fi
done
[ $rc_plain -eq 0 ] && [ $rc_asan1 -eq 0 ] && [ $rc_asan2 -eq 0 ] && [ $rc_after -eq 0 ]
