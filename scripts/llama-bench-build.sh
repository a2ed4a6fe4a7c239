#!/bin/sh
# llama-bench-build.sh - builds llama.cpp's llama-bench (CPU only) once, outside the
# repository, so scripts/compare-llama.sh can measure llama.cpp on the same GGUF files
# as effbench.
#
#   sh scripts/llama-bench-build.sh        prints the binary's path on stdout
#
# Source: the PyPI source package llama-cpp-python 0.3.36, which vendors llama.cpp
# (vendor/llama.cpp). pip downloads it (`pip download --no-binary :all: --no-deps`),
# sha256sum checks it against the pinned SHA below, and it is extracted into
#   ${EFFBENCH_CACHE:-$HOME/.cache/effbench}/llama.cpp-0.3.36
# Only the llama-bench target is built: cmake Release, CPU backend only, no CURL or
# OpenSSL, no server, examples, tests or app. When the binary is already there it is
# not rebuilt (delete the directory to rebuild).
#
# The AMX trap: some of the VMs effbench runs on report AMX in /proc/cpuinfo while the
# hypervisor refuses AMX instructions, so a GGML_NATIVE=ON build (-march=native) dies with
# SIGILL in ggml's AMX kernels. This script builds with GGML_NATIVE=OFF and turns on by
# name only the x86 extensions /proc/cpuinfo lists among AVX, AVX2, FMA, F16C, BMI2,
# AVX512F, AVX512_VBMI, AVX512_VNNI, AVX512_BF16; never AMX.
#
# For tests or offline use:
#   EFFBENCH_LLAMA_TARBALL=FILE   use this llama_cpp_python-0.3.36.tar.gz instead of pip
#                                 (still checked against the pinned SHA-256)
#   EFFBENCH_CACHE=DIR            where the source and build go
#   JOBS=N                        parallel build jobs (default: nproc)
set -u

VER=0.3.36
SHA=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
cache=${EFFBENCH_CACHE:-$HOME/.cache/effbench}
dir=$cache/llama.cpp-$VER
src=$dir/llama_cpp_python-$VER/vendor/llama.cpp
build=$dir/build
bin=$build/bin/llama-bench

say() { echo "llama-bench-build: $*" >&2; }
die() { say "$*"; exit 1; }

if [ -x "$bin" ]; then say "llama-bench at $bin"; echo "$bin"; exit 0; fi

command -v cmake >/dev/null 2>&1 || die "cmake not found (apt-get install cmake)"
command -v c++ >/dev/null 2>&1 || die "no C++ compiler found (apt-get install g++)"
mkdir -p "$dir" || die "cannot create $dir"

# ---- source ---------------------------------------------------------------------------
if [ ! -f "$src/CMakeLists.txt" ]; then
    tgz=${EFFBENCH_LLAMA_TARBALL:-}
    if [ -z "$tgz" ]; then
        command -v pip >/dev/null 2>&1 || die "pip not found (apt-get install python3-pip)"
        say "downloading llama-cpp-python==$VER (source) from PyPI"
        pip download --no-binary :all: --no-deps --dest "$dir" "llama-cpp-python==$VER" \
            >"$dir/pip.log" 2>&1 || die "pip download failed, see $dir/pip.log"
        tgz=$dir/llama_cpp_python-$VER.tar.gz
    fi
    [ -f "$tgz" ] || die "no source package at $tgz"
    have=$(sha256sum "$tgz" | cut -d' ' -f1)
    [ "$have" = "$SHA" ] || die "$tgz: SHA-256 $have, expected $SHA"
    tar -xzf "$tgz" -C "$dir" || die "cannot extract $tgz into $dir"
    [ -f "$src/CMakeLists.txt" ] || die "$tgz has no vendor/llama.cpp"
fi

# ---- instruction sets: named, never native, never AMX ----------------------------------
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
has() { case " $flags " in *" $1 "*) echo ON ;; *) echo OFF ;; esac; }
isa="-DGGML_AVX=$(has avx) -DGGML_AVX2=$(has avx2) -DGGML_FMA=$(has fma)"
isa="$isa -DGGML_F16C=$(has f16c) -DGGML_BMI2=$(has bmi2) -DGGML_AVX512=$(has avx512f)"
isa="$isa -DGGML_AVX512_VBMI=$(has avx512vbmi) -DGGML_AVX512_VNNI=$(has avx512_vnni)"
isa="$isa -DGGML_AVX512_BF16=$(has avx512_bf16)"
isa="$isa -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
say "instruction sets: $isa"

# ---- build ------------------------------------------------------------------------------
t0=$(date +%s)
# shellcheck disable=SC2086
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF $isa \
    -DBUILD_SHARED_LIBS=OFF -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_TOOLS=ON \
    >"$dir/cmake.log" 2>&1 || die "cmake configure failed, see $dir/cmake.log"
cmake --build "$build" --target llama-bench -j "${JOBS:-$(nproc)}" \
    >"$dir/build.log" 2>&1 || die "build failed, see $dir/build.log"
[ -x "$bin" ] || die "build finished but $bin is missing, see $dir/build.log"
say "built in $(( $(date +%s) - t0 )) s; llama-bench at $bin"
echo "$bin"
