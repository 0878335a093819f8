#!/bin/sh
# Install the Debian packages named as arguments that are missing (only when root).
missing=""
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
  exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q $missing >/tmp/iplock-apt.log 2>&1 || {
  apt-get update -q >/tmp/iplock-apt.log 2>&1 && apt-get install -y -q $missing >>/tmp/iplock-apt.log 2>&1
} || { echo "apt-get install failed, see /tmp/iplock-apt.log" >&2; exit 1; }
