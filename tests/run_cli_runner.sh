#!/bin/sh
# run_cli_runner.sh - end-to-end tests of `effbench run`, `report` and `compare` on
# tests/data/tiny-suite.json. Sourced by tests/run.sh (uses its ok/bad/skp, $E, $tmp).
S=tests/data/tiny-suite.json
CELLS=6    # 2 measured models x (1 prefill + 2 decode batch sizes)

rows() { [ -f "$1" ] && "$T" csv-column "$1" key 2>/dev/null | grep -c '' || echo 0; }   # data rows, CSV-parsed
dupkeys() { "$T" csv-column "$1" key | sort | uniq -d | wc -l; }

if "$E" run "$S" -o "$tmp/r1" >"$tmp/out" 2>"$tmp/err"; then
  n=$(rows "$tmp/r1/results.csv")
  missing=""
  for f in results.csv machine.csv analytic.csv kv.csv cost.csv published.csv evals.csv accuracy.csv summary.md \
           accuracy_vs_compute.gp accuracy_vs_flops_per_token.gp roofline.gp decode_vs_batch.gp kv_vs_context.gp \
           training_cost.gp; do [ -s "$tmp/r1/$f" ] || missing="$missing $f"; done
  [ -e "$tmp/r1/skipped.csv" ] && missing="$missing (a skipped.csv with nothing skipped)"
  if command -v gnuplot >/dev/null; then
    for c in accuracy_vs_compute accuracy_vs_flops_per_token decode_vs_batch kv_vs_context training_cost roofline; do
      [ -s "$tmp/r1/$c.png" ] && [ -s "$tmp/r1/$c.svg" ] || missing="$missing $c.png/.svg"; done
  fi
  if [ "$n" -eq "$CELLS" ] && [ -z "$missing" ]; then ok "run: $CELLS cells, CSVs, summary and charts"
  else bad "run: $n rows (want $CELLS), missing:$missing"; fi
else bad "run tiny suite: $(cat "$tmp/err")"; fi

# provenance on every row, the quoted model name intact
if grep -q '"llama, ""tiny"""' "$tmp/r1/results.csv" && "$T" csv-column "$tmp/r1/results.csv" model | grep -qx 'llama, "tiny"'; then
  ok "run: names with commas and quotes survive in results.csv"; else bad "run: quoting in results.csv"; fi
hdr=$(head -n 1 "$tmp/r1/results.csv"); lack=""
for col in commit backend dtype threads device build_flags date; do echo "$hdr" | grep -q "$col" || lack="$lack $col"; done
empty=$("$T" csv-column "$tmp/r1/results.csv" commit | grep -c '^$')
if [ -z "$lack" ] && [ "$empty" -eq 0 ]; then ok "results.csv: provenance on every row"; else bad "provenance: lacks$lack, $empty rows without commit"; fi

"$E" run "$S" -o "$tmp/r1" >/dev/null 2>"$tmp/err"; rc=$?
if [ $rc -eq 1 ] && grep -q "exists: --resume" "$tmp/err"; then ok "run: refuses to overwrite results without --resume"; else bad "run over existing results: exit $rc $(cat "$tmp/err")"; fi
"$E" run "$S" -o "$tmp/r1" --resume >/dev/null 2>"$tmp/err"; rc=$?
ev=$("$T" csv-column "$tmp/r1/evals.csv" key | grep -c '')
"$E" run "$S" -o "$tmp/r1" --resume >/dev/null 2>&1
if [ $rc -eq 0 ] && [ "$(rows "$tmp/r1/results.csv")" -eq "$CELLS" ] && [ "$("$T" csv-column "$tmp/r1/evals.csv" key | grep -c '')" -eq "$ev" ]; then
  ok "run --resume on a finished run adds nothing (cells or evals)"; else bad "resume finished: exit $rc"; fi

# SIGINT and SIGKILL part-way, then --resume: every cell exactly once, no partial row
for sig in INT KILL; do
  d="$tmp/r-$sig"
  "$E" run "$S" -o "$d" >/dev/null 2>"$tmp/err-$sig" & pid=$!
  i=0; while [ "$(rows "$d/results.csv")" -lt 2 ] && [ $i -lt 600 ] && kill -0 $pid 2>/dev/null; do sleep 0.02; i=$((i+1)); done
  kill -$sig $pid 2>/dev/null; wait $pid; rc=$?
  kept=$(rows "$d/results.csv")
  if [ "$sig" = INT ]; then
    if [ $rc -eq 130 ] && grep -q "interrupted: .* holds $kept of $CELLS cells" "$tmp/err-$sig"; then ok "SIGINT stops cleanly and says what was kept ($kept of $CELLS)"
    elif [ $rc -eq 0 ]; then skp "SIGINT arrived after the run finished"
    else bad "SIGINT: exit $rc: $(cat "$tmp/err-$sig")"; fi
  fi
  "$E" run "$S" -o "$d" --resume >/dev/null 2>"$tmp/err"; rc=$?
  n=$(rows "$d/results.csv"); dup=$(dupkeys "$d/results.csv")
  if [ $rc -eq 0 ] && [ "$n" -eq "$CELLS" ] && [ "$dup" -eq 0 ]; then ok "SIG$sig after $kept cells, then --resume: $CELLS cells, none twice"
  else bad "SIG$sig then resume: exit $rc, $n rows, $dup duplicated keys: $(cat "$tmp/err")"; fi
  ls "$d" | grep -q '\.tmp\.' && bad "a temporary file is left after SIG$sig and --resume" || true
done

# report and compare
cp "$tmp/r1/summary.md" "$tmp/summary-run.md"
rm -f "$tmp/r1/summary.md" "$tmp/r1/roofline.gp"
if "$E" report "$tmp/r1" 2>"$tmp/err" && [ -s "$tmp/r1/roofline.gp" ] && cmp -s "$tmp/r1/summary.md" "$tmp/summary-run.md"; then
  ok "report re-renders summary (the same as the run's) and charts"
else bad "report: $(cat "$tmp/err")"; fi

# report needs only the CSV files: a run of a copy of the tiny suite, then the suite, its
# configs, hardware, published and task files removed, summary.md and every chart file
# deleted, and report run from another directory: the same summary, scripts and data
E_ABS=$(cd "$(dirname "$E")" && pwd)/$(basename "$E")
iso="$tmp/iso"; mkdir -p "$iso/configs"
cp suites/configs/deepseek-v3.json suites/configs/llama-3.1-8b.json "$iso/configs/"
cp suites/hardware.json suites/published.json "$iso/"
cp -r tests/data/tasks tests/data/tokenizers "$iso/"
sed -e 's|"\.\./\.\./suites/|"|g' "$S" > "$iso/suite.json"
if "$E" run "$iso/suite.json" -o "$iso/out" >/dev/null 2>"$tmp/err"; then
  mv "$iso/out" "$tmp/iso-out"; rm -rf "$iso"
  mkdir -p "$tmp/iso-ref"; cp "$tmp/iso-out"/summary.md "$tmp/iso-out"/*.gp "$tmp/iso-out"/chart_*.dat "$tmp/iso-ref/"
  rm -f "$tmp/iso-out"/summary.md "$tmp/iso-out"/*.gp "$tmp/iso-out"/*.png "$tmp/iso-out"/*.svg "$tmp/iso-out"/chart_*.dat
  if (cd / && "$E_ABS" report "$tmp/iso-out") 2>"$tmp/err"; then
    differ=""
    for f in "$tmp/iso-ref"/*; do cmp -s "$f" "$tmp/iso-out/${f##*/}" || differ="$differ ${f##*/}"; done
    pngs=$(ls "$tmp/iso-out"/*.png 2>/dev/null | wc -l)
    command -v gnuplot >/dev/null || pngs=6
    if [ -z "$differ" ] && [ "$pngs" -eq 6 ] && [ "$(ls "$tmp/iso-ref" | wc -l)" -ge 14 ]; then
      ok "report from the CSV files alone (suite, configs and data removed): the same summary, scripts and data, 6 charts"
    else bad "report without the suite: differs:$differ; $pngs charts"; fi
  else bad "report without the suite: $(cat "$tmp/err")"; fi
else bad "run of the copied tiny suite: $(cat "$tmp/err")"; fi
rm -rf "$tmp/iso-out" "$tmp/iso-ref"

# an optional model whose checkpoint is missing: one line on stderr naming it, its path
# and the suite's hint; every other cell, eval and cost row there; summary.md says why
O=tests/data/optional-suite.json
"$E" run "$O" -o "$tmp/opt" >"$tmp/out" 2>"$tmp/err"; rc=$?
line='effbench: model "absent-gguf" skipped: tests/data/models/absent.Q4_1.gguf not found (scripts/fetch-model.sh fetches it)'
if [ $rc -eq 0 ] && [ "$(grep -c 'absent' "$tmp/err")" -eq 1 ] && grep -qxF "$line" "$tmp/err" \
   && [ "$("$T" csv-column "$tmp/opt/results.csv" key)" = "tiny|pp|cpu|pp16" ] \
   && [ "$("$T" csv-column "$tmp/opt/evals.csv" model | sort -u)" = tiny ] \
   && [ "$("$T" csv-column "$tmp/opt/analytic.csv" model)" = tiny ] \
   && [ "$("$T" csv-column "$tmp/opt/cost.csv" label)" = "tiny at 40%" ] \
   && [ "$("$T" csv-column "$tmp/opt/skipped.csv" model)" = absent-gguf ] \
   && grep -q '^## Skipped models' "$tmp/opt/summary.md" \
   && grep -qF '| absent-gguf | tests/data/models/absent.Q4\_1.gguf |' "$tmp/opt/summary.md"; then
  ok "run: an optional model with a missing checkpoint is skipped with one line; the other cells, evals and cost rows are there"
else bad "optional model: exit $rc: $(cat "$tmp/err")"; fi
sed 's/"optional": true, //' "$O" > tests/data/.required-suite.json
expect_err "a missing checkpoint without \"optional\" is refused before anything runs" 1 \
  'required-suite.json: models\[0\].checkpoint: tests/data/models/absent.Q4_1.gguf: no such file' \
  "$E" run tests/data/.required-suite.json -o "$tmp/req"
rm -f tests/data/.required-suite.json
[ -e "$tmp/req/results.csv" ] && bad "a refused suite left results" || true
if "$E" compare "$tmp/r1/results.csv" "$tmp/r-INT/results.csv" >"$tmp/cmp" 2>"$tmp/err" && grep -q "| tokens_per_s |" "$tmp/cmp" \
   && grep -q "$CELLS cells in common" "$tmp/err"; then ok "compare: ratios for the $CELLS shared cells"
else bad "compare: $(cat "$tmp/err" "$tmp/cmp")"; fi

# bad suites and outputs: one line, before any measuring
printf '{"name": "x", "hardware": "../../suites/hardware.json", "models": [{"name": "m", "config": "../../suites/configs/llama-3.1-8b.json"}], "workloads": [{"name": "w", "decode": 4, "batch": [1, 0]}]}' > tests/data/.bad-suite.json
expect_err "suite with a bad value names its path" 1 "workloads\[0\].batch" "$E" run tests/data/.bad-suite.json -o "$tmp/bad"
rm -f tests/data/.bad-suite.json
expect_err "unwritable output directory" 1 "not writable\|cannot create" "$E" run "$S" -o /proc/effbench-out
expect_err "missing suite" 1 "cannot open" "$E" run "$tmp/nonexistent.json"
expect_err "cost without an MFU or GPU-hours" 2 "exactly one" "$E" cost --model suites/configs/deepseek-v3.json --tokens 1e12 --gpu H800
out=$("$E" cost --model suites/configs/deepseek-v3.json --tokens 14.8e12 --gpu H800 --gpu-hours 2.788e6 --price 2 --json)
case "$out" in *'"cost_usd": 5.576e+06'*) ok "cost: DeepSeek-V3 2.788M H800 GPU-hours -> \$5.576M";; *) bad "cost json: $out";; esac
out=$("$E" info --model suites/configs/deepseek-v3.json --json)
case "$out" in *'"params_total": 671026419200'*'"params_active": 37552297472'*'"kv_bytes_per_token": 70272'*) ok "info: DeepSeek-V3 671.0B / 37.5B / 70,272 B";; *) bad "info json: $out";; esac
out=$("$E" info --model suites/configs/llama-3.1-405b.json --json)
case "$out" in *'"params_total": 405853388800'*'"kv_bytes_per_token": 516096'*) ok "info: Llama-3.1-405B 405.9B / 516,096 B";; *) bad "info json: $out";; esac
