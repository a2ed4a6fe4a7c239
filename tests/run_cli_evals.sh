#!/bin/sh
# run_cli_evals.sh - command-line tests of eval, eval-compare and kl. Sourced by
# tests/run.sh (uses its ok/bad/skp/expect_err, $E, $T, $G, $tmp).
M=tests/data/eval-model
if "$E" eval --model $M --dummy --task tests/data/tasks/tiny-mc.json --samples "$tmp/s1.jsonl" -o "$tmp/ev" >"$tmp/out" 2>"$tmp/err" \
   && [ "$(grep -c '' "$tmp/s1.jsonl")" -eq 6 ] && grep -q '| tiny-mc | acc_norm |' "$tmp/out" && grep -q 'characters' "$tmp/out" \
   && [ "$("$T" csv-column "$tmp/ev/evals.csv" metric | grep -c '')" -eq 3 ]; then ok "eval: text multiple choice through tokenizer.json, samples, evals.csv"
else bad "eval tiny-mc: $(cat "$tmp/err" "$tmp/out")"; fi
"$E" eval --model $M --dummy --seed 2 --task tests/data/tasks/tiny-mc.json --samples "$tmp/s2.jsonl" >/dev/null 2>&1
if "$E" eval-compare "$tmp/s1.jsonl" "$tmp/s2.jsonl" >"$tmp/out" 2>"$tmp/err" && grep -q 'McNemar' "$tmp/out" && grep -q '^| acc (6 items)' "$tmp/out"; then
  ok "eval-compare: McNemar and paired bootstrap"; else bad "eval-compare: $(cat "$tmp/err" "$tmp/out")"; fi
"$E" eval --model $M --dummy --task tests/data/tasks/tiny-ppl.jsonl --json >"$tmp/out" 2>"$tmp/err"
case "$(cat "$tmp/out")" in *'"token_perplexity"'*'"word_perplexity"'*'"bits_per_byte"'*) ok "eval: perplexity (token, word, bits per byte)";; *) bad "eval ppl: $(cat "$tmp/err" "$tmp/out")";; esac
"$E" eval --model $M --dummy --task tests/data/tasks/tiny-gen.jsonl --samples "$tmp/g.jsonl" >"$tmp/out" 2>"$tmp/err"
if grep -q 'exact_match' "$tmp/out" && [ "$(grep -c '"prediction"' "$tmp/g.jsonl")" -eq 2 ]; then ok "eval: generation until a stop string"; else bad "eval gen: $(cat "$tmp/err")"; fi
printf '{"context": "a", "choices": ["x", "y"], "answer": 0}\n\n{"context": "b", "choices": ["x", "y"], "answer": 2}\n' > tests/data/.bad-task.jsonl
expect_err "eval on a bad task file names the line" 1 "line 3: answer 2 is out of range" "$E" eval --model $M --dummy --task tests/data/.bad-task.jsonl
rm -f tests/data/.bad-task.jsonl
# lm-eval's rules through the command: the golden llama-tiny with the committed lm-eval tokenizer
L=tests/data/lmeval
if [ -f "$G/dense/llama-tiny/model.safetensors" ] && [ -f "$L/tasks/eb_mc_fs.json" ]; then
  mkdir -p "$tmp/lt"
  for f in config.json model.safetensors; do ln -sf "$(cd "$G/dense/llama-tiny" && pwd)/$f" "$tmp/lt/$f"; done
  cp "$L/models/llama-tiny/tokenizer.json" "$tmp/lt/"
  if "$E" eval --model "$tmp/lt" --task "$L/tasks/eb_mc_fs.json" --samples "$tmp/lt.jsonl" >"$tmp/out" 2>"$tmp/err" \
     && grep -q 'model length 512, BOS as the tokenizer adds it' "$tmp/err" && grep -q '^| eb_mc_fs | acc | [0-9.]* | [0-9.]* |' "$tmp/out" \
     && [ "$(grep -c '' "$tmp/lt.jsonl")" -eq 4 ]; then ok "eval: lm-eval's rules on llama-tiny (few-shot file, description, model length, BOS, mean_stderr)"
  else bad "eval lm-eval task: $(cat "$tmp/err" "$tmp/out")"; fi
  "$E" eval --model "$tmp/lt" --task "$L/tasks/eb_gen_until.json" --samples "$tmp/lg.jsonl" >"$tmp/out" 2>"$tmp/err"
  if grep -q '| exact_match |' "$tmp/out" && [ "$(grep -c '"prediction"' "$tmp/lg.jsonl")" -eq "$(grep -c '' "$L/tasks/eb_gen.jsonl")" ]; then
    ok "eval: generation with the task's until"; else bad "eval gen until: $(cat "$tmp/err")"; fi
else skp "eval on llama-tiny (no goldens or no tests/data/lmeval)"; fi
expect_err "text task without a tokenizer" 1 "tokenizer.json" "$E" eval --model suites/configs/llama-3.1-8b.json --dummy --layers 1 --task tests/data/tasks/tiny-mc.json
if [ -f "$G/deepseek/v3-tiny/case.json" ]; then
  set -- $("$T" case-tokens "$G/deepseek/v3-tiny")
  "$E" kl --model "$G/deepseek/v3-tiny" --tokens "$1" --ref "$G/deepseek/v3-tiny/logits.f32" >"$tmp/kl" 2>"$tmp/err"
  same=$(sed -n 's/.*"kl_mean": \([^,]*\),.*"same_top_rate": \([^,]*\),.*/\1 \2/p' "$tmp/kl")
  "$E" kl --model "$G/deepseek/v3-tiny/config.json" --dummy --dtype f32 --tokens "$1" --ref "$G/deepseek/v3-tiny/logits.f32" >"$tmp/kl2" 2>>"$tmp/err"
  diff=$(sed -n 's/.*"kl_mean": \([^,]*\),.*"same_top_rate": \([^,]*\),.*/\1 \2/p' "$tmp/kl2")
  if awk -v a="$same" -v b="$diff" 'BEGIN{split(a,x," "); split(b,y," "); exit !(x[1] < 1e-9 && x[2] == 1 && y[1] > 0.01 && y[2] < 1)}'; then
    ok "kl: the golden model against its own reference ~0, a dummy model far ($diff)"
  else bad "kl: same '$same' dummy '$diff' $(cat "$tmp/err")"; fi
else skp "kl (no goldens)"; fi
# the suite's evals (tiny suite run by run_cli_runner.sh in $tmp/r1)
if [ "$("$T" csv-column "$tmp/r1/evals.csv" key | sort -u | grep -c '')" -eq 3 ] && [ -s "$tmp/r1/accuracy_vs_flops_per_token.gp" ] \
   && grep -q '## Evals (measured here' "$tmp/r1/summary.md" && "$T" csv-column "$tmp/r1/evals.csv" train_flops | grep -q 'e+' \
   && grep -q ' 2$' "$tmp/r1/chart_accuracy.dat"; then ok "run: suite evals into evals.csv, summary and charts (training compute where tokens are given)"
else bad "run: suite evals missing"; fi
expect_err "eval --bos takes auto, on or off" 2 "--bos is auto, on or off" "$E" eval --model $M --dummy --task tests/data/tasks/tiny-mc.json --bos maybe
if "$E" eval --model $M --dummy --task tests/data/tasks/tiny-mc.json --bos off --max-length 64 >"$tmp/out" 2>"$tmp/err" && grep -q '| tiny-mc | acc |' "$tmp/out"; then
  ok "eval --bos off --max-length 64"; else bad "eval --bos off --max-length 64: $(cat "$tmp/err")"; fi
