#!/bin/sh
# run.sh - the whole test suite: the C tests (unit, golden, bad input), then the
# command-line tests below. Ends with "N passed, N failed[, N skipped]".
#   sh tests/run.sh TESTS_BINARY EFFBENCH_BINARY [EMULATED_CUDA_TESTS_BINARY]
T=${1:-./effbench-tests}
E=${2:-./effbench}
EMU=${3:-}      # the emulated CUDA tests binary, when given (its effbench beside it)
G=${EFFBENCH_GOLDEN:-../shared/golden}
tmp=$(mktemp -d /tmp/effbench-cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0; skip=0
ok()   { echo "ok    $1"; pass=$((pass + 1)); }
bad()  { echo "FAIL  $1"; fail=$((fail + 1)); }
skp()  { echo "SKIP  $1"; skip=$((skip + 1)); }

# adds a C test binary's closing tally ("N passed, N failed, N skipped") to ours
tally() {  # what, output, exit status
  line=$(echo "$2" | tail -n 1)
  p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1/p')
  f=$(echo "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\2/p')
  s=$(echo "$line" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\3/p')
  if [ -z "$p" ]; then echo "FAIL  $1 ended abnormally (exit $3)"; fail=$((fail + 1)); else
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s)); fi
  [ "$3" -ne 0 ] && [ "${f:-0}" = 0 ] && { echo "FAIL  $1 exit $3"; fail=$((fail + 1)); }
}

out=$("$T" 2>&1); rc=$?
echo "$out"
tally "C tests" "$out" $rc

# the GPU tests again on the CPU emulator of the CUDA execution model (tests/emu), when built
if [ -n "${3:-}" ]; then
  out=$("$3" cu 2>&1); rc=$?
  echo "$out" | sed 's/^\(ok   \|SKIP \|FAIL \) /\1 [emulated] /'
  tally "emulated CUDA tests" "$out" $rc
  # the command's GPU paths on the emulator: golden logits (prefill and --decode) and greedy tokens
  EE=$(dirname "$3")/effbench
  for c in deepseek/v3-tiny deepseek/v2-lite-tiny dense/qwen2-tiny dense/mixtral-tiny; do
    d="$G/$c"
    if [ ! -x "$EE" ] || [ ! -f "$d/case.json" ]; then skp "[emulated] cli --backend cuda $c (no emulated effbench or goldens)"; continue; fi
    set -- $("$T" case-tokens "$d")
    prompt=$1; shift; cont="$*"
    for mode in "" --decode; do
      if "$EE" logits --backend cuda --gpu-dtype f32 --model "$d" --tokens "$prompt" $mode -o "$tmp/l.f32" 2>"$tmp/err"; then
        diff=$("$T" maxdiff "$tmp/l.f32" "$d/logits.f32")
        if awk "BEGIN{exit !($diff <= 1e-4)}"; then ok "[emulated] cli logits --backend cuda${mode:+ $mode} $c (max diff $diff)"
        else bad "[emulated] cli logits --backend cuda${mode:+ $mode} $c: max diff $diff"; fi
      else bad "[emulated] cli logits --backend cuda${mode:+ $mode} $c: $(cat "$tmp/err")"; fi
    done
    got=$("$EE" generate --backend cuda --gpu-dtype f32 --model "$d" --tokens "$prompt" -n 8 2>"$tmp/err")
    if [ "$got" = "$cont" ]; then ok "[emulated] cli generate --backend cuda $c"; else bad "[emulated] cli generate --backend cuda $c: got '$got' want '$cont' $(cat "$tmp/err")"; fi
  done
fi


# golden cases through the command line: logits (prefill and --decode) and generate
for c in deepseek/v3-tiny deepseek/v2-lite-tiny dense/llama-tiny dense/mixtral-tiny; do
  d="$G/$c"
  if [ ! -f "$d/case.json" ]; then skp "cli $c (no goldens)"; continue; fi
  set -- $("$T" case-tokens "$d")
  prompt=$1; shift; cont="$*"
  for mode in "" --decode; do
    if "$E" logits --model "$d" --tokens "$prompt" $mode -o "$tmp/l.f32" 2>"$tmp/err"; then
      diff=$("$T" maxdiff "$tmp/l.f32" "$d/logits.f32")
      if awk "BEGIN{exit !($diff <= 1e-4)}"; then ok "cli logits $mode $c (max diff $diff)"; else bad "cli logits $mode $c: max diff $diff"; fi
    else bad "cli logits $mode $c: $(cat "$tmp/err")"; fi
  done
  got=$("$E" generate --model "$d" --tokens "$prompt" -n 8 2>"$tmp/err")
  if [ "$got" = "$cont" ]; then ok "cli generate $c"; else bad "cli generate $c: got '$got' want '$cont' $(cat "$tmp/err")"; fi
done

# errors: one line on stderr, exit 1 (bad input) or 2 (usage), never a crash
expect_err() {  # name, expected exit, expected text, command...
  name=$1; want=$2; text=$3; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
  lines=$(wc -l <"$tmp/err")
  if [ "$rc" -eq "$want" ] && [ "$lines" -eq 1 ] && grep -q -- "$text" "$tmp/err"; then ok "cli error: $name"
  else bad "cli error: $name (exit $rc, $lines lines: $(cat "$tmp/err"))"; fi
}
if [ -d "$G/deepseek/v3-tiny" ]; then
  expect_err "token outside vocab" 1 "outside the vocabulary" "$E" logits --model "$G/deepseek/v3-tiny" --tokens 1,999 -o "$tmp/x"
else skp "cli error: token outside vocab (no goldens)"; fi
expect_err "missing model dir" 1 "nonexistent" "$E" generate --model "$tmp/nonexistent" --tokens 1 -n 2
expect_err "bad token list" 2 "comma-separated" "$E" generate --model suites/configs/llama-3.1-8b.json --dummy --tokens 1,,x -n 2
expect_err "unknown option" 2 "unknown option" "$E" logits --frobnicate
expect_err "unknown command" 2 "unknown command" "$E" frobnicate
expect_err "unknown dtype" 2 "unknown dtype" "$E" bench --model suites/configs/llama-3.1-8b.json --dummy --dtype q4
if "$E" bench --model tests/data/eval-model --dummy --backend cuda -p 8 -b 1 -d 4 -n 2 -r 1 >"$tmp/b" 2>"$tmp/err"; then
  grep -q "backend cuda on " "$tmp/b" && ok "--backend cuda ran on the GPU" || bad "--backend cuda: succeeded without saying its GPU"
elif [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "no usable CUDA device: \|built without the CUDA backend" "$tmp/err"; then ok "--backend cuda: one line why not ($(cat "$tmp/err"))"
else bad "--backend cuda: $(cat "$tmp/err")"; fi
if ! "$E" bench --model tests/data/eval-model --dummy --backend cuda -p 8 -b 1 -d 4 -n 2 -r 1 >/dev/null 2>&1; then
  expect_err "profile without a GPU" 1 "no usable CUDA device\|built without" "$E" profile --model tests/data/eval-model --dummy --profile "$tmp/prof"
  expect_err "--profile on the CPU backend" 1 "need --backend cuda" "$E" bench --model tests/data/eval-model --dummy --profile "$tmp/prof"
  "$E" bench --model tests/data/eval-model --dummy --backend auto -p 8 -b 1 -d 4 -n 2 -r 1 --stream-mib 8 >"$tmp/b" 2>"$tmp/err" \
    && grep -q "backend cpu" "$tmp/b" && grep -q "backend auto: cpu" "$tmp/err" && ok "--backend auto falls back to the CPU, saying why" \
    || bad "--backend auto: $(cat "$tmp/err")"
fi
expect_err "dummy too big" 1 "available" env EFFBENCH_MEM_LIMIT=1000000 "$E" generate --model suites/configs/deepseek-v3.json --dummy --tokens 1 -n 1
[ -f "$tmp/x" ] && bad "a failed logits run left a file" || ok "failed logits run leaves no file"

# dummy model through the bench command (small: 1 layer, short lengths)
if "$E" bench --model tests/data/eval-model --dummy --dtype bf16 -p 16 -b 1,2 -d 8 -n 2 -r 1 --stream-mib 8 >"$tmp/b" 2>"$tmp/err" \
   && grep -q '^| pp16 ' "$tmp/b" && grep -q '^| tg2 b2 @ d8 ' "$tmp/b"; then ok "cli bench on a dummy model"
else bad "cli bench: $(cat "$tmp/err" "$tmp/b")"; fi

# the suite runner, report and compare; evals
. tests/run_cli_runner.sh
. tests/run_cli_evals.sh
. tests/run_cli_hostile.sh
# text in and out (tokenize, --prompt); the model fetch step; GGUF models through the command
for f in tests/run_cli_text.sh tests/run_cli_fetch.sh tests/run_cli_gguf.sh tests/run_cli_compare.sh tests/run_cli_ranks.sh tests/run_cli_runner_ranks.sh; do [ -f "$f" ] && . "$f"; done

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
