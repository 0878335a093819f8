#!/bin/sh
# A throwaway PostgreSQL cluster for tests, from Debian's postgresql package.
#   tools/pg-throwaway.sh start DIR   initdb + pg_ctl start in DIR (as an unprivileged user when
#                                     run as root); prints the libpq connection string
#   tools/pg-throwaway.sh stop DIR    stops it and removes DIR
# The server listens only on a unix socket in DIR (no TCP port, nothing outside DIR).
set -eu
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "$0: no PostgreSQL server binaries (apt-get install postgresql)" >&2; exit 1; }
user=$(id -un)
as() { if [ "$(id -u)" = 0 ]; then su -s /bin/sh nobody -c "$*"; else sh -c "$*"; fi; }
case "$cmd" in
start)
	mkdir -p "$dir"
	[ "$(id -u)" = 0 ] && { chown nobody "$dir"; user=nobody; }
	as "'$bin/initdb' -D '$dir/data' -U iplock -A trust --no-sync -E UTF8 >'$dir/initdb.log' 2>&1" ||
		{ cat "$dir/initdb.log" >&2; exit 1; }
	as "'$bin/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w -t 30 \
		-o \"-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=off \
		   -c synchronous_commit=off -c full_page_writes=off -c max_connections=200\" start \
		>/dev/null" || { cat "$dir/server.log" >&2; exit 1; }
	echo "host=$dir user=iplock dbname=postgres"
	;;
stop)
	[ -d "$dir/data" ] && as "'$bin/pg_ctl' -D '$dir/data' -m immediate -w stop >/dev/null 2>&1" || true
	rm -rf "$dir"
	;;
*)
	echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
