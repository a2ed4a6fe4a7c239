#!/bin/sh
# bench/gpu-check.sh - the GPU check, in one go on a machine with an NVIDIA GPU:
#   1. builds effbench with the CUDA backend (the Debian libraries come from
#      .gpu-bundle/debs, unpacked into a private root, when the machine lacks them;
#      scripts/gpu-bundle.sh makes the bundle);
#   2. runs every GPU test: each CUDA op against its CPU twin, the goldens through the
#      CUDA engine (F32 and BF16), every family against the CPU, graphs, CUPTI's Host API;
#      and, with Open MPI, one rank through NCCL (collectives, the split GPU step);
#   3. a profiled sweep (CUPTI tracing) of a DeepSeek-V2-Lite-shaped model (all 27
#      layers, dummy BF16) and a Llama-3.1-8B-shaped one: prefill 512 and 2048, decode at
#      batch 1, 8, 64, 256 after 1K, 8K and 32K of context (cells that do not fit in the
#      GPU's memory are skipped, saying so);
#   4. side by side on 8 layers: CUDA graphs on and off, and the two MLA attention
#      kernels; a 16384-token prefill on the V2-Lite shape (2 layers: 98304 expert rows,
#      past a grid's 65535 y-blocks); range-profiler counters per op (4 layers) for the
#      MLA decode at batch 64 after 4K and for a 2048-token prefill, after the tensor
#      counter's calibration on a profiled 8192^3 BF16 cuBLAS product;
#   5. a summary of the figures the goals name.
# Usage: sh bench/gpu-check.sh [OUT_DIR]    (default gpu-check; everything lands there)
# Time: aimed at 5 minutes on an H200, not yet timed there; each stage has a `timeout`.
set -u
OUT=${1:-gpu-check}
mkdir -p "$OUT"
T0=$(date +%s)
say() { printf '== [%3ds] %s\n' $(( $(date +%s) - T0 )) "$*"; }
fail=0

say "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader 2>&1 | tee "$OUT/gpu.txt"

# ---- 1. build -------------------------------------------------------------------------
cat >/tmp/effbench-probe.c <<'EOF'
#include <cjson/cJSON.h>
#include <csv.h>
#include <cblas.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>
int main(void) { return 0; }
EOF
if ! cc $(pkg-config --cflags openblas 2>/dev/null) /tmp/effbench-probe.c -o /tmp/effbench-probe \
        -lcjson -lcsv -lopenblas -lpcre2-8 -lutf8proc >/dev/null 2>&1; then
    if [ -d .gpu-bundle/debs ]; then
        R=/tmp/effbench-root
        mkdir -p "$R"
        for f in .gpu-bundle/debs/*.deb; do dpkg -x "$f" "$R"; done
        L="$R/usr/lib/x86_64-linux-gnu"
        export CPATH="$R/usr/include:$R/usr/include/x86_64-linux-gnu/openblas-pthread${CPATH:+:$CPATH}"
        export LIBRARY_PATH="$L:$L/openblas-pthread${LIBRARY_PATH:+:$LIBRARY_PATH}"
        export LD_LIBRARY_PATH="$L:$L/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        say "libraries from .gpu-bundle/debs, unpacked in $R"
    else
        say "the build libraries are missing and there is no .gpu-bundle (run scripts/gpu-bundle.sh where apt works)"
        exit 1
    fi
fi
[ -d .gpu-bundle/golden ] && [ ! -d "${EFFBENCH_GOLDEN:-../shared/golden}" ] && export EFFBENCH_GOLDEN=$PWD/.gpu-bundle/golden
# the toolkit nvcc belongs to (the Makefile's default is /usr/local/cuda)
command -v nvcc >/dev/null 2>&1 && export CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$(command -v nvcc)")")}
say "build"
if ! make -j"$(nproc)" effbench effbench-tests >"$OUT/build.log" 2>&1; then tail -30 "$OUT/build.log"; exit 1; fi
grep -E "nvcc found|CPU only|mpicc" "$OUT/build.log"

# ---- 2. the GPU tests -------------------------------------------------------------------
say "GPU tests (CUDA ops vs CPU twins, goldens through CUDA, engine, graphs, CUPTI host)"
timeout 150 ./effbench-tests cu >"$OUT/tests.log" 2>&1
rc=$?
cat "$OUT/tests.log"
[ $rc -eq 0 ] || fail=1

# one rank through NCCL (built when mpicc and nccl.h are found): the NCCL group's
# collectives on device buffers and the split-GPU-step tests, N = 1
if command -v mpirun >/dev/null 2>&1 && grep -q "NCCL and MPI found" "$OUT/build.log"; then
    say "NCCL, one rank (mpirun -np 1): collectives on device buffers, GPU step tests"
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 120 mpirun -q -np 1 ./effbench-tests ranks "ranks: GPU" \
        >"$OUT/nccl.log" 2>&1
    r=$?
    cat "$OUT/nccl.log"
    [ $r -eq 0 ] || fail=1
else
    say "NCCL stage skipped: this build has no MPI or no nccl.h (apt-get install libopenmpi-dev openmpi-bin)"
fi

# ---- 3. the profiled sweep ----------------------------------------------------------------
sweep() {   # name config
    say "sweep $1 (profiled)"
    timeout 240 ./effbench bench --model "$2" --dummy --dtype bf16 --backend cuda -p 512,2048 -b 1,8,64,256 \
        -d 1024,8192,32768 -n 8 -r 3 --format csv --profile "$OUT/$1" >"$OUT/$1.csv" 2>"$OUT/$1.err"
    r=$?
    grep -v '^effbench: profiled' "$OUT/$1.err" | tail -20
    [ $r -eq 0 ] || { say "sweep $1 exited $r"; fail=1; }
}
sweep v2lite suites/configs/deepseek-v2-lite.json
sweep llama8b suites/configs/llama-3.1-8b.json

# side by side, on 8 of V2-Lite's layers: CUDA graphs on and off (batch-1 decode), and
# the MLA attention kernels, tensor cores and CUDA cores (batch 64 after 4K)
say "CUDA graphs on/off (b1 @ d1024) and MLA kernels (b64 @ d4096), V2-Lite shape, 8 layers"
for v in graphs-on graphs-off wmma-on wmma-off; do
    case $v in
        graphs-on)  set -- -b 1 -d 1024 -n 32 ;;
        graphs-off) set -- -b 1 -d 1024 -n 32 --no-graphs ;;
        wmma-*)     set -- -b 64 -d 4096 -n 8 ;;
    esac
    env $( [ $v = wmma-off ] && echo EFFBENCH_NO_WMMA=1 ) timeout 120 ./effbench bench --model suites/configs/deepseek-v2-lite.json \
        --dummy --dtype bf16 --layers 8 --backend cuda -p 1 -r 5 --format csv "$@" >"$OUT/$v.csv" 2>>"$OUT/side.err" || fail=1
done

# a prefill of 16384 tokens: tokens x top-k = 98304 expert rows (V3 crosses 65535 at
# 8192 tokens, V2-Lite at 10923): the row kernels stride past a grid's y limit
say "prefill 16384 tokens, V2-Lite shape, 2 layers (grid y-limit)"
timeout 120 ./effbench bench --model suites/configs/deepseek-v2-lite.json --dummy --dtype bf16 --layers 2 --backend cuda \
    -p 16384 -b 1 -d 0 -n 1 -r 2 --format csv >"$OUT/pp16384.csv" 2>"$OUT/pp16384.err"
[ $? -eq 0 ] || { tail -5 "$OUT/pp16384.err"; say "the 16384-token prefill FAILED"; fail=1; }

# ---- 4. counters per op --------------------------------------------------------------------
say "range profiler: tensor counter calibration (8192^3 BF16), V2-Lite b64 @ d4096 decode, pp2048"
timeout 150 ./effbench bench --model suites/configs/deepseek-v2-lite.json --dummy --dtype bf16 --layers 4 --backend cuda -p 2048 \
    -b 64 -d 4096 -n 4 -r 1 --format csv --metrics roofline --profile "$OUT/metrics" >"$OUT/metrics.csv" 2>"$OUT/metrics.err"
[ $? -eq 0 ] || { tail -5 "$OUT/metrics.err"; say "range profiler failed (counters may be unavailable on this machine)"; }

# ---- 5. summary -----------------------------------------------------------------------------
col() {     # file column-name: prints that column of a CSV without quoted commas in it
    awk -F, -v c="$2" 'NR==1{for(i=1;i<=NF;i++) if($i==c) k=i; next} k{print $k}' "$1"
}
say "summary"
grep -h "GPU limits" "$OUT"/*.err | head -2
# the best 8192^3 cuBLAS rate against the dense BF16 peak of suites/hardware.json's H200
grep -h "GPU limits" "$OUT"/*.err | sed -n 's/.*cuBLAS \([0-9.]*\)\/\([0-9.]*\) TFLOP.*/\1 \2/p' |
    awk '{for (i = 1; i <= 2; i++) if ($i > b) b = $i} END {if (b) printf "-- cuBLAS BF16 8192^3: %.1f TFLOP/s = %.1f%% of 989.4 (H200 dense BF16, datasheet)\n", b, 100 * b / 989.4}'
for m in v2lite llama8b; do
    [ -s "$OUT/$m.csv" ] || continue
    echo "-- $m: test, tokens/s, ms/step, of roofline"
    awk -F, 'NR>1{printf "   %-8s p%-5s b%-4s d%-6s %10.1f tok/s %9.3f ms  %5.1f%%\n", $1, $2, $3, $4, $7, $8, 100*$19}' "$OUT/$m.csv"
    [ -s "$OUT/$m/overhead.csv" ] && echo "   tracing overhead per cell (%, against tracing off, CUPTI attached): $(col "$OUT/$m/overhead.csv" tracing_overhead_pct | tr '\n' ' ')"
    [ -s "$OUT/$m/overhead.csv" ] && echo "   activity records dropped per cell: $(col "$OUT/$m/overhead.csv" dropped_records | tr '\n' ' ')"
done
row3() { awk -F, 'NR==3{print $8}' "$1" 2>/dev/null; }
echo "-- CUDA graphs, b1 @ d1024 decode (8 layers): $(row3 "$OUT/graphs-on.csv") ms/step with, $(row3 "$OUT/graphs-off.csv") ms without"
echo "-- MLA attention, b64 @ d4096 decode (8 layers): $(row3 "$OUT/wmma-on.csv") ms/step tensor cores, $(row3 "$OUT/wmma-off.csv") ms CUDA cores"
echo "-- prefill 16384 tokens (V2-Lite shape, 2 layers): $(awk -F, 'NR==2{print $8 " ms, " $7 " tok/s"}' "$OUT/pp16384.csv" 2>/dev/null)"
echo "-- tensor counter calibration: $(grep -h 'tensor counter calibration' "$OUT/metrics.err" 2>/dev/null | sed 's/^effbench: tensor counter calibration: //')"
if [ -s "$OUT/metrics/metrics.csv" ]; then
    echo "   metrics.csv: FLOPs per counted tensor op $(col "$OUT/metrics/metrics.csv" tensor_flops_per_op | sort -u | tr '\n' ' ')(measured $(col "$OUT/metrics/metrics.csv" tensor_factor_measured | sort -u | tr '\n' ' '))"
    echo "   ops marked incomplete (ranges short): $(awk -F, 'NR==1{for(i=1;i<=NF;i++) h[$i]=i; next} $h["complete"]==0{n++} END{print n+0}' "$OUT/metrics/metrics.csv")"
fi
if [ -s "$OUT/metrics/metrics.csv" ]; then
    echo "-- range profiler, per op: achieved GB/s, TFLOP/s; of measured read BW, of measured cuBLAS; of datasheet HBM, BF16"
    awk -F, 'NR==1{for(i=1;i<=NF;i++) h[$i]=i; next} {printf "   %-16s %-14s %7.0f GB/s %7.1f TFLOP/s %5.1f%% %5.1f%% %5.1f%% %5.1f%%\n", $h["cell"], $h["op"], $h["achieved_gbs"], $h["achieved_tflops"], 100*$h["of_read_bw"], 100*$h["of_gemm_peak"], 100*$h["of_datasheet_hbm"], 100*$h["of_datasheet_bf16"]}' "$OUT/metrics/metrics.csv"
fi
echo "-- goals: MLA decode attention >= 80% of HBM BW (metrics: attention, tg4 b64 @ d4096, of read BW);"
echo "   cuBLAS >= 70% of BF16 peak (GPU limits line: 8192^3 rate against 989 TFLOP/s dense BF16);"
echo "   batch-1 decode of V2-Lite >= 70% of its roofline (v2lite, b1 rows); tracing overhead < 5%."
say "done ($( [ $fail -eq 0 ] && echo "all stages passed" || echo "a stage FAILED" )); files in $OUT"
exit $fail
