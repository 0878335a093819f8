#!/bin/sh
# make run: start `iplock proxy` on a built-in demo configuration (loopback only) and print
# the proxy URL. Egress addresses 127.0.0.2 and 127.0.0.3 need no setup on Linux.
set -eu
BIN=${1:-build/iplock}
DIR=build/demo
PORT=${IPLOCK_DEMO_PORT:-3128}
mkdir -p "$DIR"
PASS=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20)
HASH=$(printf '%s' "$PASS" | "$BIN" passwd demo --password-stdin 2>/dev/null | sed -n 's/^password_hash = //p')
cat > "$DIR/proxy.ini" <<CONF
# iplock demo configuration, made by 'make run' (see docs/config.md for every key)
[proxy]
listen = 127.0.0.1:$PORT
egress = 127.0.0.2 127.0.0.3
egress_policy = round-robin
# the demo lets you reach a test server on this machine; production configs leave it out
allow_destinations = 127.0.0.1/32
connect_ports = 443 80 8000-9000
http_ports = 80 8000-9000
access_log = -

[user demo]
password_hash = $HASH
CONF
cat <<MSG

  iplock proxy demo: listening on 127.0.0.1:$PORT, egress pool 127.0.0.2 127.0.0.3

  Proxy URL:   http://demo:$PASS@127.0.0.1:$PORT

  Try it (in another terminal):
    python3 -m http.server 8000 --bind 127.0.0.1 &      # a local origin
    curl -x http://demo:$PASS@127.0.0.1:$PORT http://127.0.0.1:8000/ -o /dev/null -w '%{http_code}\n'
    # the origin's log shows 127.0.0.2, then 127.0.0.3: the two egress addresses in turn
    curl -x http://demo+egress=2:$PASS@127.0.0.1:$PORT http://127.0.0.1:8000/   # pinned to 127.0.0.3
    curl -x http://demo:wrong@127.0.0.1:$PORT http://127.0.0.1:8000/            # 407
  Config: $DIR/proxy.ini    Stop: Ctrl-C

MSG
exec "$BIN" proxy -c "$DIR/proxy.ini"
