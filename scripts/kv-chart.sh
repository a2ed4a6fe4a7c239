#!/bin/sh
# scripts/kv-chart.sh [DIR] - KV cache bytes per token against the KL divergence each
# cache type costs: DIR/kv_kl.csv and the chart DIR/kv_kl.png (.svg, .gp) (default DIR:
# kv-chart). Needs ./effbench built (make), python3 to read the text and the golden's
# tokens, and gnuplot for the chart (the CSV is written without it).
#
# Points:
#   SmolLM2-135M (GQA; models/SmolLM2-135M-Instruct.Q4_1.gguf, sh scripts/fetch-model.sh):
#     f32, bf16, fp8 caches; KL of each against the f32 cache's logits over the first
#     2000 characters of suites/tasks/austen-pp.jsonl (about 450 tokens).
#   DeepSeek-V2-Lite's shape (suites/configs/deepseek-v2-lite.json): the absorbed latent
#     cache [c | k_pe] (Dc + Dr per layer) and what the same model caches as plain MHA
#     (the naive path: H*(Dn+Dr) + H*Dv per layer), each in f32, bf16, fp8. Bytes from
#     the config by the closed form tests/test_kv.c checks against the allocation; KL
#     measured on the v2-lite-tiny golden (prompt + continuation) as its stand-in, against
#     the absorbed f32 cache's logits (the naive f32 path is the same math: KL ~ 0).
set -e
OUT=${1:-kv-chart}
EB=./effbench
mkdir -p "$OUT"
CSV="$OUT/kv_kl.csv"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
echo "model,cache,kv_bytes_per_token,kl_mean,kl_p99,same_top_rate" > "$CSV"

field() {   # field NAME JSON-LINE
    printf '%s\n' "$2" | sed -n "s/.*\"$1\": \"*\([^,\"}]*\).*/\1/p"
}

# ---- SmolLM2 (GQA) ------------------------------------------------------------------------
SM=models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ -f "$SM" ]; then
    python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["text"][:2000])' \
        suites/tasks/austen-pp.jsonl > "$TMP/text.txt"
    "$EB" logits --model "$SM" --file "$TMP/text.txt" -o "$TMP/sm_ref.f32" >/dev/null 2>&1
    for kd in f32 bf16 fp8; do
        j=$("$EB" kl --model "$SM" --file "$TMP/text.txt" --ref "$TMP/sm_ref.f32" --kv-dtype $kd)
        echo "SmolLM2-135M GQA,$kd,$(field kv_bytes_per_token "$j"),$(field kl_mean "$j"),$(field kl_p99 "$j"),$(field same_top_rate "$j")" >> "$CSV"
        echo "SmolLM2-135M $kd: $j"
    done
else
    echo "kv-chart: $SM missing (sh scripts/fetch-model.sh): SmolLM2 points left out" >&2
fi

# ---- DeepSeek-V2-Lite's shape: latent cache vs plain MHA ---------------------------------------
CFG=suites/configs/deepseek-v2-lite.json
num() { sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p" "$CFG" | head -1; }
L=$(num num_hidden_layers); H=$(num num_attention_heads); DC=$(num kv_lora_rank)
DN=$(num qk_nope_head_dim); DR=$(num qk_rope_head_dim); DV=$(num v_head_dim)
LAT=$((DC + DR)); MHA=$((H * (DN + DR) + H * DV))
bytes() {   # bytes TYPE ROW: per token, all layers (codes, and fp8's scale per 128)
    case $1 in
        f32) echo $((4 * $2 * L)) ;;
        bf16) echo $((2 * $2 * L)) ;;
        fp8) echo $((($2 + 4 * (($2 + 127) / 128)) * L)) ;;
    esac
}
G=../shared/golden/deepseek/v2-lite-tiny
[ -n "$EFFBENCH_GOLDEN" ] && G="$EFFBENCH_GOLDEN/deepseek/v2-lite-tiny"
if [ -d "$G" ]; then
    TOK=$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(",".join(map(str, c["prompt"] + c["continuation"]["tokens"])))' "$G/case.json")
    "$EB" logits --model "$G" --tokens "$TOK" -o "$TMP/ds_ref.f32" >/dev/null 2>&1
    for path in latent mha; do
        for kd in f32 bf16 fp8; do
            if [ $path = latent ]; then row=$LAT; nv=""; name="DeepSeek-V2-Lite MLA latent"
            else row=$MHA; nv="--naive-mla"; name="DeepSeek-V2-Lite as MHA"; fi
            j=$("$EB" kl --model "$G" --tokens "$TOK" --ref "$TMP/ds_ref.f32" --kv-dtype $kd $nv)
            echo "$name,$kd,$(bytes $kd $row),$(field kl_mean "$j"),$(field kl_p99 "$j"),$(field same_top_rate "$j")" >> "$CSV"
            echo "$name $kd ($(bytes $kd $row) bytes/token at full size; KL on v2-lite-tiny): $j"
        done
    done
else
    echo "kv-chart: golden $G missing: DeepSeek points left out" >&2
fi

# ---- chart ---------------------------------------------------------------------------------
cat > "$OUT/kv_kl.gp" <<'EOF'
# kv_kl.gp - written by scripts/kv-chart.sh; re-run with: gnuplot kv_kl.gp
set datafile separator ","
set key top right box opaque
set logscale xy
set xlabel "KV cache bytes per token (all layers)"
set ylabel "mean next-token KL vs the f32 cache (nats; 0 drawn at 1e-9)"
set title "KV bytes per token against KL: MLA's latent cache vs a cheaper element type"
set grid
fl0(k) = k > 1e-9 ? k : 1e-9
body = "plot 'kv_kl.csv' every ::1 using (strcol(1) eq 'SmolLM2-135M GQA' ? $3 : 1/0):(fl0($4)) with linespoints pt 7 ps 1.4 title 'SmolLM2-135M (GQA)', \
  '' every ::1 using (strcol(1) eq 'DeepSeek-V2-Lite MLA latent' ? $3 : 1/0):(fl0($4)) with linespoints pt 5 ps 1.4 title 'DeepSeek-V2-Lite, MLA latent', \
  '' every ::1 using (strcol(1) eq 'DeepSeek-V2-Lite as MHA' ? $3 : 1/0):(fl0($4)) with linespoints pt 9 ps 1.4 title 'DeepSeek-V2-Lite as plain MHA', \
  '' every ::1 using 3:(fl0($4)):2 with labels offset 0,1 notitle"
set terminal pngcairo size 900,560 noenhanced font "sans,11"
set output 'kv_kl.png'
eval body
set terminal svg size 900,560 noenhanced font "sans,11"
set output 'kv_kl.svg'
eval body
unset output
EOF
if command -v gnuplot >/dev/null 2>&1; then
    (cd "$OUT" && gnuplot kv_kl.gp) && echo "kv-chart: $OUT/kv_kl.png, $OUT/kv_kl.svg"
else
    echo "kv-chart: gnuplot not found: $CSV and $OUT/kv_kl.gp written, no chart" >&2
fi
echo "kv-chart: $CSV"
