#!/bin/sh
# run_cli_compare.sh - a measured score beside the published one for the same model and
# benchmark: comparison.csv and summary.md's table. Sourced by tests/run.sh (uses its
# ok/bad, $E, $T, $tmp). The suite and its published file live in tests/data for the
# relative paths, under dot-names, and are removed after.
cat > tests/data/.compare-published.json <<'J'
{ "scores": [ { "model": "llama-cmp", "benchmark": "Tiny-MC", "metric": "acc", "shots": 0, "value": 42.5, "source": "test figure" },
              { "model": "llama-cmp", "benchmark": "MMLU", "metric": "EM", "shots": 5, "value": 40.0, "source": "not this task" } ] }
J
cat > tests/data/.compare-suite.json <<'J'
{ "name": "compare", "hardware": "../../suites/hardware.json", "published": ".compare-published.json", "stream_mib": 8,
  "models": [ { "name": "llama-cmp", "config": "../../suites/configs/llama-3.1-8b.json", "measure": true, "dtype": "f32",
                "tokenizer": "tokenizers/gpt2-style/tokenizer.json",
                "overrides": { "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2,
                               "head_dim": 16, "intermediate_size": 128, "vocab_size": 1200 } } ],
  "workloads": [ { "name": "pp", "prefill": 8, "reps": 3, "warmup": 0 } ],
  "evals": [ { "task": "tasks/tiny-mc.json" } ] }
J
if "$E" run tests/data/.compare-suite.json -o "$tmp/vspub" >"$tmp/out" 2>"$tmp/err"; then
  acc=$("$T" csv-column "$tmp/vspub/evals.csv" value | head -n 1)
  rows=$("$T" csv-column "$tmp/vspub/comparison.csv" published_benchmark | tr '\n' ' ')
  diff=$("$T" csv-column "$tmp/vspub/comparison.csv" difference_pct | head -n 1)
  want=$(awk "BEGIN{printf \"%.6g\", 100 * $acc - 42.5}")
  if [ "$rows" = "Tiny-MC " ] && [ "$diff" = "$want" ] && grep -q '^## Measured beside published' "$tmp/vspub/summary.md" \
     && grep -q '| llama-cmp | tiny-mc | acc ' "$tmp/vspub/summary.md"; then
    ok "comparison.csv: the measured acc beside the published Tiny-MC score (difference $diff points), summary table"
  else bad "comparison: rows '$rows' diff '$diff' want '$want' $(cat "$tmp/err")"; fi
else bad "comparison run: $(cat "$tmp/err")"; fi
rm -f tests/data/.compare-published.json tests/data/.compare-suite.json
