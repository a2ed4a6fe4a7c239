#!/bin/sh
# deps.sh - makes sure the Debian packages effbench builds with are installed (Open MPI
# too: it is optional to build, but the tests run models across ranks with mpirun).
# As root it installs what is missing with apt-get; otherwise it prints the exact
# command and fails, so `make run` and `make test` never half-build.
set -e
# extra package names may be given as arguments (make fuzz-smoke adds clang's)
pkgs="build-essential pkg-config libcjson-dev libcsv-dev libopenblas-dev libpcre2-dev libutf8proc-dev gnuplot-nox libopenmpi-dev openmpi-bin $*"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    echo "deps: installing$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends $missing >&2
else
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: run: sudo apt-get install -y$missing" >&2
    exit 1
fi
