#!/bin/sh
# compare-llama.sh - effbench beside llama.cpp's llama-bench, on the same GGUF files,
# the same threads and the same tests; prints a markdown table. A benchmark, not a test:
# CI never runs it (minutes per file on a small CPU).
#
#   sh scripts/compare-llama.sh [TYPE...]     default types: bf16 f16 q8_0 q4_k
#
# What it does:
#   1. builds llama-bench once (scripts/llama-bench-build.sh: llama.cpp as vendored by
#      llama-cpp-python 0.3.36, CPU only, GGML_NATIVE=OFF: see the AMX trap there);
#   2. exports each shape (suites/configs/NAME.json cut to 4 layers, seeded random
#      weights) in each TYPE with `effbench export-gguf` into
#      ${EFFBENCH_CACHE:-$HOME/.cache/effbench}/gguf/ (kept: later runs reuse them), and
#      adds the real SmolLM2-135M-Instruct Q4_1 file as shipped (scripts/fetch-model.sh);
#   3. for every file and every test, runs llama-bench, then effbench bench, one after
#      the other (never at once: they would share the cores), each with REPS repetitions:
#        pp512      prefill of 512 tokens at depth 0   llama-bench -p 512 -n 0
#                                                      effbench -p 512 -n 1 -b 1 -d 0
#        tg32       32 decode steps, batch 1, depth 0  llama-bench -p 0 -n 32
#                                                      effbench -p 1 -n 32 -b 1 -d 0
#        tg32@d1024 the same after 1024 tokens          ... -d 1024 (both)
#      (effbench bench always times a prefill and a decode: the one the test does not
#      use is made as small as it goes, -p 1 or -n 1, and its row is not read);
#   4. prints shape | type | test | llama.cpp tok/s | effbench tok/s | ratio
#      (effbench / llama.cpp) | effbench's % of its roofline (the bound bench measures
#      in the same run: memory bandwidth for decode, GEMM rate for prefill) | decode's
#      % of the read-only bandwidth measured in the same run | llama.cpp's % of it (its
#      tokens/s times effbench's bytes per token, over that bandwidth).
# Block types (Q8_0, Q4_*, Q5_K, Q6_K), BF16 and F16 are measured with each of PRODUCTS:
# f32 (float32 activations, effbench's default) and low (llama.cpp's own arithmetic:
# block types' activations rounded to 8 bits and integer dot products, in int8 tiles for
# prefill; BF16 and F16 prefill's and BF16 decode's activations rounded to BF16 and
# VDPBF16PS, F16's remainders past BF16 in int8). effbench loads with its defaults
# (weights copied into huge pages), llama-bench with its own (file mapped). effbench's KV cache is KV
# (default bf16: the bytes of llama.cpp's default F16 cache).
# Both figures are medians of the repetitions (llama-bench's samples_ts, effbench's
# median time). Raw outputs stay in $CACHE/compare/ for inspection.
#
# Environment:
#   SHAPES="deepseek-v2-lite llama-3.1-8b"   suites/configs/*.json names ("" for none)
#   LAYERS=4  THREADS=2  REPS=3  SEED=1
#   SMOLLM=1                                  0: leave out the real SmolLM2 file
#   TESTS="pp512 tg32 tg32@d1024"             a subset, to be quick
#   ROUNDS=1                                  rounds per cell, llama.cpp and effbench
#                                             alternating; with more than one the table
#                                             gives the median of the rounds' ratios and
#                                             their range (the machine moves from one
#                                             minute to the next)
#   EFFBENCH=./effbench                       the binary to measure
#   PRODUCTS="f32 low"                        effbench's products for block types, BF16 and F16
#   KV=bf16                                   effbench's --kv-dtype
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${EFFBENCH_CACHE:-$HOME/.cache/effbench}
SHAPES=${SHAPES-deepseek-v2-lite llama-3.1-8b}
LAYERS=${LAYERS:-4}
THREADS=${THREADS:-2}
REPS=${REPS:-3}
SEED=${SEED:-1}
SMOLLM=${SMOLLM:-1}
TESTS=${TESTS:-pp512 tg32 tg32@d1024}
ROUNDS=${ROUNDS:-1}
EFFBENCH=${EFFBENCH:-$root/effbench}
PRODUCTS=${PRODUCTS:-f32 low}
KV=${KV:-bf16}
types=${*:-bf16 f16 q8_0 q4_k}

say() { echo "compare-llama: $*" >&2; }
die() { say "$*"; exit 1; }

[ -x "$EFFBENCH" ] || die "no effbench at $EFFBENCH (run make)"
case $ROUNDS in ''|*[!0-9]*|0) die "ROUNDS must be a whole number of 1 or more, not '$ROUNDS'" ;; esac
command -v python3 >/dev/null 2>&1 || die "python3 not found (it reads the two programs' JSON/CSV)"
LB=$(sh "$root/scripts/llama-bench-build.sh") || die "llama-bench could not be built"
out=$cache/compare/$(date +%Y%m%d-%H%M%S)
mkdir -p "$cache/gguf" "$out" || die "cannot create $out"

# ---- the files ------------------------------------------------------------------------
files=""          # lines "shape|type|path"
for s in $SHAPES; do
    cfg=$root/suites/configs/$s.json
    [ -f "$cfg" ] || die "no shape $cfg"
    for t in $types; do
        g=$cache/gguf/$s-${LAYERS}L-$t-seed$SEED.gguf
        if [ ! -f "$g" ]; then
            say "exporting $s ($LAYERS layers) as $t"
            "$EFFBENCH" export-gguf --model "$cfg" --dummy --dtype "$t" --layers "$LAYERS" --seed "$SEED" -o "$g" \
                || die "export of $s as $t failed"
        fi
        files="$files$s-${LAYERS}L|$t|$g
"
    done
done
if [ "$SMOLLM" = 1 ]; then
    sm=$(sh "$root/scripts/fetch-model.sh" 2>&1 | sed -n 's/^fetch-model: model at //p')
    if [ -n "$sm" ] && [ -f "$sm" ]; then files="${files}SmolLM2-135M|Q4_1 (as shipped)|$sm
"
    else say "SmolLM2 not available (sh scripts/fetch-model.sh): left out"; fi
fi

# ---- the runs: llama-bench, then effbench, per file and test ---------------------------
results=$out/results.tsv  # shape, type, test, llama tok/s, effbench tok/s, effbench % roofline
: >"$results"
n=0
echo "$files" | while IFS='|' read -r shape type path; do
    [ -n "$path" ] || continue
    for test in $TESTS; do
      round=1
      while [ "$round" -le "$ROUNDS" ]; do
        round=$((round + 1))
        n=$((n + 1))
        case $test in
            pp512)      lb="-p 512 -n 0 -d 0";   eb="-p 512 -n 1 -b 1 -d 0" ;;
            tg32)       lb="-p 0 -n 32 -d 0";    eb="-p 1 -n 32 -b 1 -d 0" ;;
            tg32@d1024) lb="-p 0 -n 32 -d 1024"; eb="-p 1 -n 32 -b 1 -d 1024" ;;
            *) die "unknown test $test (pp512, tg32, tg32@d1024)" ;;
        esac
        base=$out/$n
        t0=$(date +%s)
        # shellcheck disable=SC2086
        "$LB" -m "$path" -t "$THREADS" -r "$REPS" $lb -o json >"$base.llama.json" 2>"$base.llama.err" \
            || say "llama-bench failed on $path $test: $(tail -n 1 "$base.llama.err")"
        t1=$(date +%s)
        say "$shape $type $test: llama-bench $((t1 - t0)) s"
        case $type in f32|F32) modes=f32 ;; *) modes=$PRODUCTS ;; esac
        for pm in $modes; do
        # shellcheck disable=SC2086
        "$EFFBENCH" bench --model "$path" -t "$THREADS" -r "$REPS" $eb --products "$pm" --kv-dtype "$KV" --format csv \
            >"$base.$pm.effbench.csv" 2>"$base.$pm.effbench.err" \
            || say "effbench failed on $path $test: $(tail -n 1 "$base.$pm.effbench.err")"
        t2=$(date +%s)
        say "$shape $type $test: effbench ($pm products) $((t2 - t1)) s"
        label=$type
        [ "$modes" = f32 ] || label="$type, $pm products"
        python3 - "$base" "$shape" "$label" "$test" "$base.$pm.effbench.csv" >>"$results" <<'EOF'
import csv, json, statistics, sys
base, shape, typ, test, ecsv = sys.argv[1:6]
lt = et = roof = rd = ""
try:
    runs = json.load(open(base + ".llama.json"))
    if runs:
        lt = "%.2f" % statistics.median(runs[0]["samples_ts"])
except Exception:
    pass
try:
    want = "prefill" if test.startswith("pp") else "decode"
    for row in csv.DictReader(open(ecsv)):
        if row["test"] == want:
            et = "%.2f" % float(row["tokens_per_s"])
            roof = "%.1f" % (100 * float(row["of_roofline"]))
            if want == "decode":
                rd = "%.1f" % (100 * float(row["of_read_bw"]))
except Exception:
    pass
print("\t".join([shape, typ, test, lt, et, roof, rd]))
EOF
        t1=$(date +%s)
        done
      done
    done
done

# ---- the table -------------------------------------------------------------------------
python3 - "$results" "$THREADS" "$REPS" "$KV" "$ROUNDS" <<'EOF'
import statistics, sys
path, threads, reps, kv, rounds = sys.argv[1:6]
cells = {}                       # (shape, type, test) -> each round's (llama, effbench, roofline %, read %)
for line in open(path):
    s, t, test, lt, et, roof, rd = line.rstrip("\n").split("\t")
    cells.setdefault((s, t, test), []).append((lt, et, roof, rd))
def med(v):
    return statistics.median(v) if v else None
def fmt(v, f, missing="-"):
    return f % v if v is not None else missing
print("| shape | type | test | llama.cpp tok/s | effbench tok/s | effbench / llama.cpp | effbench % of roofline "
      "| % of read-only BW | llama.cpp's % of it |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|")
for (s, t, test), rs in cells.items():
    ok = [(float(lt), float(et), rd) for lt, et, _, rd in rs if lt and et and float(lt) > 0 and float(et) > 0]
    ratios = [e / l for l, e, _ in ok]
    ratio = fmt(med(ratios), "%.2f")
    if len(ratios) > 1:
        ratio += " (%.2f-%.2f)" % (min(ratios), max(ratios))
    print("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        s, t, test, fmt(med([float(r[0]) for r in rs if r[0]]), "%.2f", "failed"),
        fmt(med([float(r[1]) for r in rs if r[1]]), "%.2f", "failed"), ratio,
        fmt(med([float(r[2]) for r in rs if r[2]]), "%.1f"), fmt(med([float(r[3]) for r in rs if r[3]]), "%.1f"),
        fmt(med([float(rd) * l / e for l, e, rd in ok if rd]), "%.1f")))
print()
print("%s threads, median of %s repetitions each%s; llama.cpp: llama-bench (llama-cpp-python 0.3.36's "
      "llama.cpp, CPU; its default F16 KV cache); effbench: bench, KV cache %s. llama.cpp's %% of the "
      "read-only bandwidth: its tokens/s times the bytes effbench reads per token (the same weights, and a "
      "cache of the same size), over the read-only bandwidth effbench measured; a decode ratio of r needs "
      "effbench at r times that share." % (threads, reps, "" if rounds == "1" else
      ", %s rounds alternating (tokens/s and shares: medians of the rounds; the ratio: the median of the "
      "rounds' ratios, and their range)" % rounds, kv))
EOF
say "raw outputs in $out"
