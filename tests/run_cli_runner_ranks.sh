#!/bin/sh
# run_cli_runner_ranks.sh - `effbench run` across ranks (mpirun -np 2 on this machine):
# "ranks": "spread" deals the cells over the ranks and gives the one-rank run's cells;
# "ranks": "split" runs every cell on both ranks with the model split, the rows saying
# ranks and layout; --resume under mpirun re-runs only a deleted row; a results.csv of
# before the ranks columns resumes; a failure on rank 1 reaches rank 0; a bad "ranks".
# Sourced by tests/run.sh (uses its ok/bad/skp, $E, $T, $tmp). The suites live in
# tests/data for the relative paths, under dot-names, and are removed after.
if ! command -v mpirun >/dev/null 2>&1; then
  skp "runner ranks: mpirun not found (apt-get install openmpi-bin libopenmpi-dev, then rebuild)"
  return 0 2>/dev/null || exit 0
fi
# mpirun as root (CI) must be told that is intended; -q: no banners of its own. Under
# AddressSanitizer (make asan) the ranks do not check leaks: Open MPI keeps allocations
# to the end that are not ours (the one-rank runs below still check).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
MPI="env ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 mpirun -q --oversubscribe"
RR="$tmp/runner-ranks"; mkdir -p "$RR"

# two tiny dummy models (MLA + MoE, dense GQA), 3 cells each, one eval of token ids
MODELS='"models": [
    { "name": "moe", "config": "../../suites/configs/deepseek-v3.json", "measure": true, "dtype": "f32", MOE_LAYOUT
      "overrides": { "hidden_size": 64, "num_hidden_layers": 2, "first_k_dense_replace": 1, "num_attention_heads": 4,
                     "num_key_value_heads": 4, "q_lora_rank": 32, "kv_lora_rank": 32, "qk_nope_head_dim": 16,
                     "qk_rope_head_dim": 8, "v_head_dim": 16, "intermediate_size": 128, "moe_intermediate_size": 32,
                     "n_routed_experts": 8, "num_experts_per_tok": 2, "n_group": 2, "topk_group": 1, "vocab_size": 512 } },
    BIG
    { "name": "dense", "config": "../../suites/configs/llama-3.1-8b.json", "measure": true, "dtype": "f32",
      "overrides": { "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2,
                     "head_dim": 16, "intermediate_size": 128, "vocab_size": 1200 } } ],
  "workloads": [ { "name": "pp", "prefill": 16, "reps": 3, "warmup": 0 },
                 { "name": "tg", "depth": 8, "decode": 4, "batch": [1, 2], "reps": 3, "warmup": 0 } ],
  "evals": [ { "task": "tasks/ids-mc.jsonl" } ] }'
suite() {  # file, top-level fields, the moe model's layout fields, a model entry before "dense"
  echo "{ \"name\": \"ranks\", \"hardware\": \"../../suites/hardware.json\", \"stream_mib\": 8, $2" >"$1"
  echo "$MODELS" | sed -e "s|MOE_LAYOUT|$3|" -e "s|BIG|$4|" >>"$1"
}
BIGM='{ "name": "big", "config": "../../suites/configs/llama-3.1-8b.json", "measure": true },'
suite tests/data/.ranks-spread.json '' '' ''
suite tests/data/.ranks-split.json '"ranks": "split",' '"tp": 1, "ep": 2,' ''
suite tests/data/.ranks-fail.json '' '' "$BIGM"
suite tests/data/.ranks-splitfail.json '"ranks": "split",' '"ep": 3,' ''
suite tests/data/.ranks-bad.json '"ranks": "both",' '' ''

col() { "$T" csv-column "$1" "$2" 2>/dev/null; }
keys() { col "$1" key | sort; }
KEY='"dense|tg|cpu|tg4 b2 @ d8"'      # a cell of the second model: rank 1's under spread

# the reference: one rank
"$E" run -t 1 tests/data/.ranks-spread.json -o "$RR/one" >/dev/null 2>"$RR/err1" || bad "runner ranks: one-rank run: $(cat "$RR/err1")"

# spread over 2 ranks: the same cells, once each, on one rank each; rank 0 alone prints
if $MPI -np 2 "$E" run -t 1 tests/data/.ranks-spread.json -o "$RR/spread" >"$RR/out" 2>"$RR/err"; then
  n=$(col "$RR/spread/results.csv" key | grep -c '')
  if [ "$n" -eq 6 ] && [ "$(keys "$RR/spread/results.csv")" = "$(keys "$RR/one/results.csv")" ] \
     && [ "$(col "$RR/spread/results.csv" key | sort | uniq -d)" = "" ] \
     && [ "$(col "$RR/spread/results.csv" ranks | sort -u)" = 1 ] && [ "$(col "$RR/spread/results.csv" layout | sort -u)" = whole ] \
     && [ "$(keys "$RR/spread/evals.csv")" = "$(keys "$RR/one/evals.csv")" ] && [ "$(col "$RR/spread/machine.csv" measured_before | sort | tr '\n' ' ')" = "dense moe " ] \
     && [ ! -s "$RR/out" ] && [ "$(grep -c . "$RR/err")" = 1 ] && grep -q "^effbench: 6 of 6 cells in .*; 0 failed" "$RR/err"; then
    ok "runner ranks: spread over 2 ranks: the one-rank run's 6 cells and evals, once each (ranks 1, layout whole), one line from rank 0"
  else bad "runner ranks: spread: $n rows, keys $(keys "$RR/spread/results.csv" | tr '\n' ';') stdout $(cat "$RR/out") $(cat "$RR/err")"; fi
else bad "runner ranks: spread: $(cat "$RR/err")"; fi

# --resume under mpirun after deleting a row: only that cell runs again; the rest, evals included, stay as they were
if [ -f "$RR/spread/results.csv" ]; then
  grep -v "^$KEY," "$RR/spread/results.csv" >"$RR/kept.csv"; cp "$RR/kept.csv" "$RR/spread/results.csv"
  cp "$RR/spread/evals.csv" "$RR/evals-before.csv"
  if $MPI -np 2 "$E" run -t 1 tests/data/.ranks-spread.json -o "$RR/spread" --resume >/dev/null 2>"$RR/err" \
     && grep -q "resuming .*: 5 of 6 cells done, 1 to run" "$RR/err" && [ "$(col "$RR/spread/results.csv" key | grep -c '')" -eq 6 ] \
     && [ "$(keys "$RR/spread/results.csv")" = "$(keys "$RR/one/results.csv")" ] \
     && [ "$(head -n 6 "$RR/spread/results.csv")" = "$(cat "$RR/kept.csv")" ] && tail -n 1 "$RR/spread/results.csv" | grep -q "^$KEY," \
     && cmp -s "$RR/spread/evals.csv" "$RR/evals-before.csv"; then
    ok "runner ranks: --resume under mpirun re-runs only the deleted cell (the other rows and the evals unchanged)"
  else bad "runner ranks: resume: $(cat "$RR/err")"; fi
  if ls "$RR/spread" | grep -q '\.tmp\.'; then bad "runner ranks: temporary files left: $(ls "$RR/spread" | grep '\.tmp\.')"
  else ok "runner ranks: no temporary files left"; fi
fi

# split: every cell on both ranks, the rows saying so (moe "tp": 1, "ep": 2; dense: the default)
if $MPI -np 2 "$E" run -t 1 tests/data/.ranks-split.json -o "$RR/split" >"$RR/out" 2>"$RR/err"; then
  lay=$(for c in model ranks layout; do col "$RR/split/results.csv" $c >"$RR/split.$c"; done; paste -d ' ' "$RR/split.model" "$RR/split.ranks" "$RR/split.layout" | sort -u | tr '\n' ';')
  if [ "$(keys "$RR/split/results.csv")" = "$(keys "$RR/one/results.csv")" ] && [ "$lay" = "dense 2 tp2 ep1;moe 2 tp1 ep2;" ] \
     && [ -z "$(col "$RR/split/results.csv" gflops | tr -d '\n')" ] && [ -z "$(col "$RR/split/results.csv" of_roofline | tr -d '\n')" ] \
     && [ "$(col "$RR/one/results.csv" gflops | grep -c .)" = 6 ] \
     && [ "$(col "$RR/split/evals.csv" value | tr '\n' ' ')" = "$(col "$RR/one/evals.csv" value | tr '\n' ' ')" ] \
     && [ "$(col "$RR/split/results.csv" comm_bytes_per_step | grep -c '^[1-9]')" = 6 ] \
     && [ "$(col "$RR/split/results.csv" comm_share | grep -c '^0\.')" = 6 ] && [ -z "$(col "$RR/one/results.csv" comm_share | tr -d '\n')" ] \
     && [ "$(col "$RR/split/comm.csv" key | sort -u | grep -c .)" = 6 ] && [ "$(col "$RR/split/comm.csv" rank | sort -u | tr '\n' ' ')" = "0 1 " ] \
     && col "$RR/split/comm.csv" kind | grep -q "^MoE dispatch$" && [ ! -f "$RR/one/comm.csv" ] \
     && grep -q "^effbench: model moe: 2 ranks: --tp 1 --ep 2" "$RR/err" && [ ! -s "$RR/out" ]; then
    ok "runner ranks: split over 2 ranks: the 6 cells with ranks 2 and their layouts ($lay), collective bytes and share, comm.csv per rank and kind, no FLOP or roofline figures, the one-rank evals"
  else bad "runner ranks: split: layouts '$lay' $(cat "$RR/err")"; fi
else bad "runner ranks: split: $(cat "$RR/err")"; fi

# rows measured on 2 ranks are not mixed with one rank's: a one-rank --resume of the split run is refused
if [ -f "$RR/split/results.csv" ]; then
  cp "$RR/split/results.csv" "$RR/split-before.csv"
  if "$E" run -t 1 tests/data/.ranks-split.json -o "$RR/split" --resume >/dev/null 2>"$RR/err"; then
    bad "runner ranks: a one-rank resume of a 2-rank run was accepted"
  elif [ "$(grep -c . "$RR/err")" = 1 ] && grep -q "measured on 2 ranks; this run measures on 1" "$RR/err" \
       && cmp -s "$RR/split/results.csv" "$RR/split-before.csv"; then
    ok "runner ranks: a one-rank --resume of rows measured on 2 ranks is refused in one line, the file unchanged"
  else bad "runner ranks: resume across rank counts: $(cat "$RR/err")"; fi
fi

# a results.csv of before the ranks, layout and communication columns resumes: its rows as one rank's
if [ -f "$RR/one/results.csv" ]; then
  sed -e '1s/,"ranks","layout","comm_bytes_per_step","comm_predicted_bytes","comm_share","kv_dtype",/,/' \
      -e '2,$s/,"1","whole","","","","[A-Z0-9_]*",/,/' \
      "$RR/one/results.csv" | grep -v "^$KEY," >"$RR/one/old.csv"
  mv "$RR/one/old.csv" "$RR/one/results.csv"
  if ! head -n 1 "$RR/one/results.csv" | grep -q '"ranks"' \
     && $MPI -np 2 "$E" run -t 1 tests/data/.ranks-spread.json -o "$RR/one" --resume >/dev/null 2>"$RR/err" \
     && grep -q "5 of 6 cells done, 1 to run" "$RR/err" && [ "$(keys "$RR/one/results.csv")" = "$(keys "$RR/split/results.csv")" ] \
     && [ "$(col "$RR/one/results.csv" ranks | sort -u)" = 1 ] && [ "$(col "$RR/one/results.csv" layout | sort -u)" = whole ]; then
    ok "runner ranks: a results.csv without the ranks columns resumes (its rows: ranks 1, layout whole)"
  else bad "runner ranks: old results.csv: $(head -c 300 "$RR/one/results.csv") $(cat "$RR/err")"; fi
fi

# a model rank 1 cannot load (spread): rank 0 says it, naming rank 1, and counts its cells failed
EFFBENCH_MEM_LIMIT=200000000 $MPI -np 2 "$E" run -t 1 tests/data/.ranks-fail.json -o "$RR/fail" >/dev/null 2>"$RR/err"; rc=$?
if [ $rc -ne 0 ] && grep -q '^effbench: rank 1: model big: .*dummy BF16 weights need .* (its cells are skipped)$' "$RR/err" \
   && grep -q "^effbench: 6 of 9 cells in .*; 3 failed" "$RR/err" && [ "$(col "$RR/fail/results.csv" key | grep -c '')" -eq 6 ]; then
  ok "runner ranks: a model rank 1 cannot load: its cells counted failed, said by rank 0 naming rank 1, the others' rows kept"
else bad "runner ranks: failure on rank 1: exit $rc $(cat "$RR/err")"; fi

# split with a layout the ranks cannot make: said once, the model's cells skipped, the other model measured
$MPI -np 2 "$E" run -t 1 tests/data/.ranks-splitfail.json -o "$RR/splitfail" >/dev/null 2>"$RR/err"; rc=$?
if [ $rc -ne 0 ] && [ "$(grep -c '^effbench: model moe: .*(its cells are skipped)$' "$RR/err")" = 1 ] \
   && [ "$(col "$RR/splitfail/results.csv" model | sort -u)" = dense ]; then
  ok "runner ranks: split with a layout that cannot be made: one line, that model's cells skipped, the other's rows"
else bad "runner ranks: split layout failure: exit $rc $(cat "$RR/err")"; fi

# split, a checkpoint whose NaN only rank 1's slice holds (expert 7 of 8): rank 0 says rank 1's line once
if [ -f "$G/deepseek/v3-tiny/case.json" ]; then
  mkdir -p "$RR/nan" && cp "$G/deepseek/v3-tiny/config.json" "$G/deepseek/v3-tiny/model.safetensors" "$RR/nan/"
  "$T" nan-tensor "$RR/nan" model.layers.1.mlp.experts.7.down_proj.weight
  cat >tests/data/.ranks-nan.json <<J
{ "name": "nan", "hardware": "../../suites/hardware.json", "stream_mib": 8, "ranks": "split",
  "models": [ { "name": "v3-nan", "checkpoint": "$RR/nan", "measure": true } ],
  "workloads": [ { "name": "pp", "prefill": 8, "reps": 3, "warmup": 0 } ] }
J
  $MPI -np 2 "$E" run -t 1 tests/data/.ranks-nan.json -o "$RR/nanrun" >/dev/null 2>"$RR/err"; rc=$?
  if [ $rc -ne 0 ] && [ "$(grep -c . "$RR/err")" = 2 ] \
     && grep -q '^effbench: model v3-nan: rank 1 of 2: .*experts.7.down_proj.weight.* NaN.*(its cells are skipped)$' "$RR/err" \
     && grep -q "^effbench: 0 of 1 cells in .*; 1 failed" "$RR/err"; then
    ok "runner ranks: split, a slice only rank 1 holds cannot load: rank 0 says rank 1's reason once, the cell counted failed"
  else bad "runner ranks: split NaN slice: exit $rc $(cat "$RR/err")"; fi
  rm -f tests/data/.ranks-nan.json
else skp "runner ranks: split NaN slice (no goldens)"; fi

# "ranks" takes spread or split
if "$E" run tests/data/.ranks-bad.json -o "$RR/bad" >/dev/null 2>"$RR/err"; then bad "runner ranks: \"ranks\": \"both\" accepted"
elif [ "$(grep -c . "$RR/err")" = 1 ] && grep -q 'ranks: expected "spread" .* or "split"' "$RR/err" && [ ! -e "$RR/bad" ]; then
  ok "runner ranks: a \"ranks\" other than spread or split is refused in one line"
else bad "runner ranks: bad \"ranks\": $(cat "$RR/err")"; fi

rm -f tests/data/.ranks-spread.json tests/data/.ranks-split.json tests/data/.ranks-fail.json tests/data/.ranks-splitfail.json \
      tests/data/.ranks-bad.json
