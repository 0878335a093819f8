#!/bin/sh
# The layers of src/, enforced: a file may include its own folder and lower layers only,
# and no product includes another product's header (docs/design.md draws the layers).
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
[ $bad = 0 ] && echo "layers: ok"
exit $bad
