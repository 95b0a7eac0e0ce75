#!/bin/sh
# Installs the Debian packages libdisrnn needs to build, test and run its examples, or, when it
# cannot (not root, no apt-get), prints the exact command to run and fails.
# Usage: .ci/install-deps.sh [build|test|all]   (default: all)
set -eu
what=${1:-all}
build_pkgs="build-essential pkg-config libopenblas-dev liblapacke-dev"
test_pkgs="libcmocka-dev doxygen g++ cmake python3 valgrind"
extra_pkgs="gnuplot-nox"
case "$what" in
  build) want="$build_pkgs $extra_pkgs" ;;
  test)  want="$build_pkgs $test_pkgs" ;;
  *)     want="$build_pkgs $test_pkgs $extra_pkgs" ;;
esac
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
cmd="apt-get update && apt-get install -y --no-install-recommends$missing"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "libdisrnn needs these Debian/Ubuntu packages:$missing" >&2
  echo "This is not a Debian-like system: install their equivalents, then run make again." >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "libdisrnn needs these packages:$missing" >&2
  echo "Run:  sudo sh -c '$cmd'" >&2
  exit 1
fi
echo "Installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update >/dev/null
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $missing >/dev/null
