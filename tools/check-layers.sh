#!/bin/sh
# The layers of src/, enforced: a file may include its own folder and lower layers only,
# and no product includes another product's header (docs/design.md draws the layers); files
# include no cycle (x.c + x.h are one unit, each cycle printed as a/x -> b/y -> a/x); each
# folder's first file says what the folder owns and may include; a file over 800 lines says why.
#   0 core   1 net   2 http   3 store   4 products (proxy gate scan tunnel verify webhook ...)   5 cli
cd "$(dirname "$0")/.." || exit 2
rank() {
	case $1 in
	core) echo 0 ;; net) echo 1 ;; http) echo 2 ;; store) echo 3 ;; cli) echo 5 ;; main.c) echo 6 ;; *) echo 4 ;;
	esac
}
bad=0
for f in $(find src -name '*.[ch]' | sort); do
	rel=${f#src/}
	own=${rel%%/*}
	r_own=$(rank "$own")
	for inc in $(sed -n 's/^#include "\([a-z_]*\)\/.*/\1/p' "$f" | sort -u); do
		[ "$inc" = "$own" ] && continue
		r_inc=$(rank "$inc")
		if [ "$r_inc" -ge "$r_own" ]; then
			echo "layers: $f includes $inc/ (layer $r_inc, not below $own's $r_own)" >&2
			bad=1
		fi
	done
done

# No include cycle between files: x.c and x.h are one unit "dir/x"; dir/x -> d2/y when either
# file includes "d2/y.h"; a header without a .c that says "defined in z.c" belongs to dir/z.
# A depth-first walk reports each back edge as one cycle.
cycles=$(awk '
	BEGIN { for (i = 1; i < ARGC; i++) { u = ARGV[i]; sub(/^src\//, "", u); sub(/\.[ch]$/, "", u); unit[u] = 1 } }
	FNR == 1 { me = FILENAME; sub(/^src\//, "", me); sub(/\.[ch]$/, "", me) }
	# a header with no .c of its own that says "defined in NAME.c" near its top joins that unit
	FNR <= 8 && FILENAME ~ /\.h$/ && match($0, /defined in [a-z_0-9]+\.c/) {
		a = substr($0, RSTART + 11, RLENGTH - 13); d = me; sub(/\/[^\/]*$/, "", d); alias[me] = d "/" a
	}
	/^[ \t]*#[ \t]*include[ \t]*"/ {
		t = $0; sub(/^[^"]*"/, "", t); sub(/\.h".*/, "", t)
		if (t != me) edge[me " " t] = 1
	}
	END {
		for (e in edge) {
			split(e, p, " ")
			if (!(p[2] in unit)) continue
			if (p[1] in alias) p[1] = alias[p[1]]
			if (p[2] in alias) p[2] = alias[p[2]]
			if (p[1] != p[2]) print p[1] " " p[2]
		}
	}
' $(find src -name '*.[ch]' | LC_ALL=C sort) | LC_ALL=C sort | awk '
	function walk(u,   i, v, k, path) {
		color[u] = 1; stack[++sp] = u; at[u] = sp
		for (i = 1; i <= n[u]; i++) {
			v = adj[u, i]
			if (color[v] == 1) {
				path = stack[at[v]]
				for (k = at[v] + 1; k <= sp; k++) path = path " -> " stack[k]
				print "layers: include cycle: " path " -> " v
			} else if (!color[v]) walk(v)
		}
		sp--; color[u] = 2
	}
	{ if (!($1 in n)) { order[++nn] = $1; n[$1] = 0 } adj[$1, ++n[$1]] = $2 }
	END { for (j = 1; j <= nn; j++) if (!color[order[j]]) walk(order[j]) }
')
if [ -n "$cycles" ]; then
	echo "$cycles" >&2
	bad=1
fi

# Each folder of src/ says what it owns: the opening comment of its first .c/.h file (by name,
# C order) holds the words "owns" and "may include" (docs/design.md, "Folders and layers").
for d in $(find src -mindepth 1 -type d | LC_ALL=C sort); do
	first=$(find "$d" -maxdepth 1 -type f -name '*.[ch]' | LC_ALL=C sort | head -1)
	[ -n "$first" ] || continue   # no C here (src/console/ui: the UI's files)
	opening=$(awk 'NR == 1 && !/^\/\*/ { exit } { print } /\*\// { exit }' "$first" | tr 'A-Z\n' 'a-z ')
	case $opening in
	*owns*"may include"* | *"may include"*owns*) ;;
	*)
		echo "layers: $first: its opening comment must say what ${d#src/}/ owns and what it may include" >&2
		bad=1 ;;
	esac
done

# A long file says why it is long: over 800 lines, one of its first 3 lines says "(~N lines: why)".
for f in $(find src -type f | LC_ALL=C sort); do
	n=$(wc -l < "$f")
	[ "$n" -gt 800 ] || continue
	if ! head -3 "$f" | grep -Eqi '[0-9][0-9,]* lines'; then
		echo "layers: $f: $n lines and no \"(~N lines: why)\" note in its first 3 lines" >&2
		bad=1
	fi
done

[ $bad = 0 ] && echo "layers: ok"
exit $bad
