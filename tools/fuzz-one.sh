#!/bin/sh
# make fuzz-run: one libFuzzer target for a few seconds on a copy of its seed corpus (so the tree
# stays clean), with its dictionary when it has one; its log's tail on failure.
set -e
f=$1; secs=$2; n=$(basename "$f")
rm -rf "build/fuzz/run/$n"; mkdir -p "build/fuzz/run/$n"; cp fuzz/corpus/"$n"/* "build/fuzz/run/$n/"
dict=""; [ -f "fuzz/$n.dict" ] && dict="-dict=fuzz/$n.dict"
if "$f" -max_total_time="$secs" $dict "build/fuzz/run/$n" > "build/fuzz/run/$n.log" 2>&1; then
	echo "== $n (${secs}s): $(tail -1 "build/fuzz/run/$n.log")"
else
	echo "== $n FAILED"; tail -40 "build/fuzz/run/$n.log"; exit 1
fi
