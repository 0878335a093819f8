#!/bin/sh
# make test: the black-box suite against the plain and the ASan+UBSan binaries side by side
# (each run is mostly waiting on sockets and timers, so two fit on two cores). Each run's whole
# output goes to its log; its summary is printed, and a failing run's log is printed whole.
# $2, when given, runs once the plain run is done (the fuzz build and the package test, while the
# slower ASan run goes on); its test-package: lines are printed, and all of it when it fails.
MAKE=${1:-make}
AFTER_PLAIN=${2:-}
mkdir -p build
$MAKE --no-print-directory e2e > build/e2e-plain.log 2>&1 &
plain=$!
$MAKE --no-print-directory SANITIZE=1 e2e > build/e2e-asan.log 2>&1 &
asan=$!
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
wait $asan; rc_asan=$?
for run in plain asan; do
	eval rc=\$rc_$run
	if [ "$rc" -ne 0 ]; then
		echo "== e2e ($run) FAILED: build/e2e-$run.log"
		cat build/e2e-$run.log
	else
		echo "== e2e ($run): $(tail -1 build/e2e-$run.log)"
	fi
done
[ $rc_plain -eq 0 ] && [ $rc_asan -eq 0 ] && [ $rc_after -eq 0 ]
