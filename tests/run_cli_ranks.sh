#!/bin/sh
# run_cli_ranks.sh - one model across ranks (mpirun, 2 and 4 processes on this machine):
# the split-model C tests (tests/test_ranks.c), the command's logits, generate and eval
# across ranks, a rank that cannot load its slice, and the usage errors. Sourced by
# tests/run.sh (uses its ok/bad/skp/tally, $E, $T, $G, $tmp).
# info's split figures (no ranks needed): v3-tiny on 2 GPUs, attention's all-reduce of
# 128 floats (512 B) per token, 2 (N-1)/N of it sent by each of the 2 GPUs: 1024 B per
# token per layer, 3 layers 3072 B, all GPUs together; the dense GQA cache per GPU halves
if [ -f "$G/deepseek/v3-tiny/config.json" ] && "$E" info --model "$G/deepseek/v3-tiny" --ranks 1,2 --format csv >"$tmp/i" 2>"$tmp/err" \
   && [ "$(sed -n 3p "$tmp/i" | cut -d, -f9)" = 3072 ] && "$E" info --model "$G/dense/llama-tiny" --ranks 1,2 --format csv >"$tmp/j" 2>>"$tmp/err" \
   && [ "$(sed -n 2p "$tmp/j" | cut -d, -f6)" = "$(( $(sed -n 3p "$tmp/j" | cut -d, -f6) * 2 ))" ]; then
  ok "ranks: info --ranks: attention all-reduce bytes per token by closed form, GQA cache per GPU halved on 2"
else bad "ranks: info --ranks: $(cat "$tmp/i" "$tmp/j" "$tmp/err")"; fi

if ! command -v mpirun >/dev/null 2>&1; then
  skp "ranks: mpirun not found (apt-get install openmpi-bin libopenmpi-dev, then rebuild)"
  return 0 2>/dev/null || exit 0
fi
# mpirun as root (CI) must be told that is intended; -q: no banners of its own
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
MPI="env ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 mpirun -q --oversubscribe"   # Open MPI keeps its allocations to the end

for n in 2 4; do
  out=$($MPI -np $n "$T" ranks 2>&1); rc=$?
  echo "$out" | sed "s/^\(ok   \|SKIP \|FAIL \) /\1 [$n ranks] /"
  tally "rank tests ($n ranks)" "$out" $rc
done

# the command across ranks: golden logits (prefill and --decode) and greedy tokens
for c in deepseek/v3-tiny dense/llama-tiny dense/mixtral-tiny; do
  d="$G/$c"
  if [ ! -f "$d/case.json" ]; then skp "ranks cli $c (no goldens)"; continue; fi
  set -- $("$T" case-tokens "$d")
  prompt=$1; shift; cont="$*"
  for n in 2 4; do
    for mode in "" --decode; do
      rm -f "$tmp/r.f32"
      if $MPI -np $n "$E" logits -t 1 --model "$d" --tokens "$prompt" $mode -o "$tmp/r.f32" >/dev/null 2>"$tmp/err"; then
        diff=$("$T" maxdiff "$tmp/r.f32" "$d/logits.f32")
        if awk "BEGIN{exit !($diff <= 1e-4)}" && grep -q "^effbench: $n ranks: --tp" "$tmp/err"; then
          ok "ranks cli: mpirun -np $n logits${mode:+ $mode} $c (max diff $diff, layout said)"
        else bad "ranks cli: -np $n logits${mode:+ $mode} $c: max diff $diff $(cat "$tmp/err")"; fi
      else bad "ranks cli: -np $n logits${mode:+ $mode} $c: $(cat "$tmp/err")"; fi
    done
    got=$($MPI -np $n "$E" generate -t 1 --model "$d" --tokens "$prompt" -n 8 2>"$tmp/err")
    if [ "$got" = "$cont" ]; then ok "ranks cli: mpirun -np $n generate $c"; else bad "ranks cli: -np $n generate $c: got '$got' want '$cont' $(cat "$tmp/err")"; fi
  done
done

# an eval gives the same table on 1, 2 and 4 ranks
M=tests/data/eval-model
"$E" eval -t 1 --model $M --dummy --dtype f32 --task tests/data/tasks/tiny-mc.json >"$tmp/ev1" 2>"$tmp/err"
for n in 2 4; do
  if $MPI -np $n "$E" eval -t 1 --model $M --dummy --dtype f32 --task tests/data/tasks/tiny-mc.json >"$tmp/evn" 2>"$tmp/err" \
     && [ -s "$tmp/ev1" ] && cmp -s "$tmp/ev1" "$tmp/evn"; then ok "ranks cli: eval on $n ranks prints the one-rank table"
  else bad "ranks cli: eval on $n ranks: $(diff "$tmp/ev1" "$tmp/evn" | head -4) $(cat "$tmp/err")"; fi
done

# a rank that cannot load its slice (a NaN in an expert only rank 1 holds) stops the run
# with one line naming the rank, and no file
if [ -f "$G/deepseek/v3-tiny/case.json" ]; then
  mkdir -p "$tmp/nan" && cp "$G/deepseek/v3-tiny/config.json" "$G/deepseek/v3-tiny/model.safetensors" "$tmp/nan/"
  "$T" nan-tensor "$tmp/nan" model.layers.1.mlp.experts.7.down_proj.weight
  rm -f "$tmp/r.f32"
  if timeout 120 $MPI -np 2 "$E" logits -t 1 --model "$tmp/nan" --tokens 1,2,3 -o "$tmp/r.f32" >/dev/null 2>"$tmp/err"; then
    bad "ranks cli: a NaN in rank 1's slice was not refused"
  elif [ "$(grep -c . "$tmp/err")" = 1 ] && grep -q '^effbench: rank 1 of 2: .*experts.7.down_proj.weight.* NaN' "$tmp/err" && [ ! -f "$tmp/r.f32" ]; then
    ok "ranks cli: a rank that cannot load its slice: one line naming it, exit non-zero, no file"
  else bad "ranks cli: NaN slice: $(cat "$tmp/err")"; fi
fi

# usage: --tp without ranks; a one-rank command under mpirun
if "$E" logits --model "$G/deepseek/v3-tiny" --tokens 1,2 --tp 2 -o "$tmp/x" 2>"$tmp/err"; then bad "--tp 2 on one rank accepted"
elif grep -q 'mpirun -np 2' "$tmp/err"; then ok "ranks cli: --tp 2 without ranks says how to start them"
else bad "--tp 2 on one rank: $(cat "$tmp/err")"; fi
if $MPI -np 2 "$E" info --model "$G/deepseek/v3-tiny" >/dev/null 2>"$tmp/err"; then bad "info under mpirun -np 2 accepted"
elif [ "$(grep -c . "$tmp/err")" = 1 ] && grep -q 'runs on one rank' "$tmp/err"; then ok "ranks cli: a one-rank command under mpirun says so once"
else bad "info under mpirun: $(cat "$tmp/err")"; fi

# bench across ranks: each test's step with its collectives counted beside the prediction
if [ -f "$G/deepseek/v3-tiny/config.json" ] && $MPI -np 2 "$E" bench -t 1 --model "$G/deepseek/v3-tiny" -p 16 -b 2 -d 8 -n 2 -r 1 \
     --stream-mib 8 >"$tmp/b" 2>"$tmp/err" && grep -q '^Communication of one step of each test, 2 ranks' "$tmp/b" \
     && grep -q '^| pp16 | attention all-reduce | 49152 | 49152 | 1.000 |' "$tmp/b" && grep -q '^| b2 @ d8 | MoE gather |' "$tmp/b"; then
  ok "ranks cli: bench on 2 ranks reports each step's collective bytes beside the prediction"
else bad "ranks cli: bench on 2 ranks: $(tail -5 "$tmp/b") $(cat "$tmp/err")"; fi

# GPU ranks on the CUDA emulator: several emulated GPUs whose NCCL calls travel over MPI
# (tests/emu/nccl): the split GPU step's tests, and the command's logits and generate
if [ -n "${EMU:-}" ] && [ -x "$EMU" ]; then
  EE=$(dirname "$EMU")/effbench
  for n in 2 4; do
    out=$($MPI -np $n "$EMU" ranks "ranks: GPU" 2>&1); rc=$?
    echo "$out" | sed "s/^\(ok   \|SKIP \|FAIL \) /\1 [emulated, $n ranks] /"
    tally "emulated GPU rank tests ($n ranks)" "$out" $rc
  done
  d="$G/deepseek/v3-tiny"
  if [ -x "$EE" ] && [ -f "$d/case.json" ]; then
    set -- $("$T" case-tokens "$d")
    prompt=$1; shift; cont="$*"
    rm -f "$tmp/ge.f32"
    if $MPI -np 2 "$EE" logits --backend cuda --gpu-dtype f32 -t 1 --model "$d" --tokens "$prompt" -o "$tmp/ge.f32" >/dev/null 2>"$tmp/err"; then
      diff=$("$T" maxdiff "$tmp/ge.f32" "$d/logits.f32")
      if awk "BEGIN{exit !($diff <= 1e-4)}"; then ok "[emulated] ranks cli: mpirun -np 2 logits --backend cuda v3-tiny (max diff $diff)"
      else bad "[emulated] ranks cli: logits --backend cuda: max diff $diff"; fi
    else bad "[emulated] ranks cli: logits --backend cuda: $(cat "$tmp/err")"; fi
    got=$($MPI -np 2 "$EE" generate --backend cuda --gpu-dtype f32 -t 1 --model "$d" --tokens "$prompt" -n 8 2>"$tmp/err")
    if [ "$got" = "$cont" ]; then ok "[emulated] ranks cli: mpirun -np 2 generate --backend cuda v3-tiny"
    else bad "[emulated] ranks cli: generate --backend cuda: got '$got' want '$cont' $(cat "$tmp/err")"; fi
  fi
fi
