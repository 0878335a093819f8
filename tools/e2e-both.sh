#!/bin/sh
# make test: the black-box suite against the plain binary and against the ASan+UBSan binary,
# each split in two shards, all four side by side. The runs are mostly waiting on sockets,
# timers and child processes (a whole suite keeps about one core busy), so four fit on two
# cores. Shards: the test files by size, dealt in turn.
# $2, when given, runs beside them from the start (the fuzz build and the package test); its
# test-package: lines are printed, and all of its output when it fails.
# Each run's whole output goes to its log; its summary is printed, a failing run's log whole.
MAKE=${1:-make}
BESIDE=${2:-}
mkdir -p build
shard1="" shard2="" i=0
for f in $(ls -S tests/e2e/test_*.py); do
	if [ $((i % 2)) -eq 0 ]; then shard1="$shard1 $f"; else shard2="$shard2 $f"; fi
	i=$((i + 1))
done
$MAKE --no-print-directory e2e E2E="$shard2" > build/e2e-plain1.log 2>&1 &
plain1=$!
$MAKE --no-print-directory e2e E2E="$shard1" > build/e2e-plain2.log 2>&1 &
plain2=$!
$MAKE --no-print-directory SANITIZE=1 e2e E2E="$shard1" > build/e2e-asan1.log 2>&1 &
asan1=$!
$MAKE --no-print-directory SANITIZE=1 e2e E2E="$shard2" > build/e2e-asan2.log 2>&1 &
asan2=$!
rc_beside=0
if [ -n "$BESIDE" ]; then
	if sh -c "$BESIDE" > build/e2e-beside.log 2>&1; then
		grep -E "^test-package:" build/e2e-beside.log || true
	else
		rc_beside=$?
		cat build/e2e-beside.log
	fi
fi
rc=0
for run in plain1 plain2 asan1 asan2; do
	eval pid=\$$run
	if wait "$pid"; then
		echo "== e2e ($run): $(tail -1 build/e2e-$run.log)"
	else
		rc=1
		echo "== e2e ($run) FAILED: build/e2e-$run.log"
		cat build/e2e-$run.log
	fi
done
[ $rc -eq 0 ] && [ $rc_beside -eq 0 ]
