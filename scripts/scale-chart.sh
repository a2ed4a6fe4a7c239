#!/bin/sh
# scripts/scale-chart.sh [DIR] - what splitting a model over GPUs costs, two charts:
#   DIR/comm_bytes.csv, comm_bytes.png (.svg, .gp): bytes sent per token, all GPUs
#     together, against GPUs (1 to 64), predicted by `effbench info --ranks` for DeepSeek-V3
#     (default layout, and --tp 1: attention replicated, experts split), Mixtral-8x7B,
#     Llama-3.1-405B and Qwen2.5-72B (tensor parallel): MoE against dense at scale.
#   DIR/scaling.csv, scaling.png: tokens/s measured by `mpirun -np N effbench bench`
#     (N = 1, 2, 4 on this machine) on a dummy DeepSeek-V3 cut to 4 layers and shrunk
#     (hidden 1024), with the share of the step rank 0 spends in collectives.
# Needs ./effbench built with MPI, mpirun, and gnuplot for the PNGs (CSVs are written
# without it). As root, set OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1.
set -e
OUT=${1:-scale-chart}
EB=./effbench
mkdir -p "$OUT"
B="$OUT/comm_bytes.csv"
echo "model,gpus,tp,ep,weights_bytes_per_gpu,kv_bytes_per_token_per_gpu,sent_bytes_per_token,sent_bytes_per_token_per_gpu,attention,ffn,dispatch,combine,gather,lm_head" > "$B"
for m in deepseek-v3 mixtral-8x7b llama-3.1-405b qwen2.5-72b; do
    $EB info --model suites/configs/$m.json --ranks 1,2,4,8,16,32,64 --format csv 2>/dev/null | tail -n +2 | sed "s#^[^,]*,#$m,#" >> "$B"
done
$EB info --model suites/configs/deepseek-v3.json --ranks 1,2,4,8,16,32,64 --tp 1 --format csv 2>/dev/null | tail -n +2 \
    | sed "s#^[^,]*,#deepseek-v3 (tp1),#" >> "$B"

S="$OUT/scaling.csv"
CFG=$(mktemp /tmp/scale-cfg.XXXXXX.json)
trap 'rm -f "$CFG"' EXIT
sed -e 's/"hidden_size": *[0-9]*/"hidden_size": 1024/' -e 's/"num_hidden_layers": *[0-9]*/"num_hidden_layers": 4/' \
    -e 's/"first_k_dense_replace": *[0-9]*/"first_k_dense_replace": 1/' suites/configs/deepseek-v3.json > "$CFG"
echo "ranks,test,tokens_per_s,comm_share" > "$S"
for n in 1 2 4; do
    if [ $n = 1 ]; then run="$EB"; else run="mpirun -q --oversubscribe -np $n $EB"; fi
    $run bench --model "$CFG" --dummy --dtype bf16 -p 128 -b 1,16 -d 256 -n 8 -r 3 -t 1 --stream-mib 64 --format csv 2>/dev/null \
        | tail -n +2 | awk -F, -v n=$n '{ t = $1 == "prefill" ? "pp" $2 : "tg b" $3; print n "," t "," $7 "," $NF }' >> "$S"
done
command -v gnuplot >/dev/null || { echo "scale-chart: gnuplot not found; CSVs in $OUT" >&2; exit 0; }
cd "$OUT"
for term in "pngcairo size 900,560" "svg size 900,560"; do
    ext=$(echo "$term" | cut -c1-3 | sed 's/png/png/;s/svg/svg/')
    cat > comm_bytes.gp <<G
set terminal $term noenhanced font "sans,11"
set output 'comm_bytes.$ext'
set datafile separator ','
set key top left
set logscale x 2
set logscale y 10
set xlabel 'GPUs'
set ylabel 'bytes sent per token, all GPUs (float32 activations, predicted)'
set title 'Splitting a model: bytes sent per token (effbench info --ranks)'
plot for [m in "deepseek-v3 deepseek-v3@(tp1) mixtral-8x7b llama-3.1-405b qwen2.5-72b"] \
  '< sed "s/ (tp1)/@(tp1)/" comm_bytes.csv' using (strcol(1) eq m && \$2 > 1 ? \$2 : 1/0):7 with linespoints title m
G
    gnuplot comm_bytes.gp
    cat > scaling.gp <<G
set terminal $term noenhanced font "sans,11"
set output 'scaling.$ext'
set datafile separator ','
set key top right
set xlabel 'ranks (processes on this machine)'
set ylabel 'tokens/s'
set y2label 'share of the step in collectives'
set y2range [0:1]
set ytics nomirror
set y2tics
set xtics 1
set title 'Measured: one dummy DeepSeek-V3 (4 layers, hidden 1024) over MPI ranks'
plot for [t in "pp128 tg@b1 tg@b16"] '< sed "s/tg b/tg@b/" scaling.csv' using (strcol(2) eq t ? \$1 : 1/0):3 with linespoints title t.' tokens/s', \
     for [t in "pp128 tg@b1 tg@b16"] '< sed "s/tg b/tg@b/" scaling.csv' using (strcol(2) eq t ? \$1 : 1/0):4 axes x1y2 with points title t.' comm share'
G
    gnuplot scaling.gp
done
echo "scale-chart: $OUT/comm_bytes.csv, $OUT/scaling.csv and their charts" >&2
