#!/bin/sh
# Runs a command with IPLOCK_TEST_PG set to a throwaway PostgreSQL cluster, then stops it.
#   tools/with-pg.sh build/tests/test_store
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/iplock-pg-XXXXXX)
rmdir "$dir"
trap 'sh "$here/pg-throwaway.sh" stop "$dir"' EXIT INT TERM
IPLOCK_TEST_PG=$(sh "$here/pg-throwaway.sh" start "$dir")
export IPLOCK_TEST_PG
"$@"
