#!/bin/sh
# run_cli_hostile.sh - names built to attack each output, deeply nested and enormous
# JSON, and kill-and-resume rounds. Sourced by tests/run.sh ($E, $T, $tmp, ok/bad).
S=tests/data/tiny-suite.json

# --- no code from data: names that attack gnuplot, spreadsheets and Markdown --------
h="$tmp/hostile"; mkdir -p "$h"
pw="$tmp/pwned"; rm -f "$pw"*
sed -e "s|\"name\": \"tiny\"|\"name\": \"hostile\"|" \
    -e "s|\"name\": \"ds-tiny\"|\"name\": \"x\\\\\" ; system(\\\\\"touch $pw-1\\\\\") ; \\\\\"\`touch $pw-2\`\"|" \
    -e "s|\"name\": \"llama, \\\\\"tiny\\\\\"\"|\"name\": \"=HYPERLINK(\\\\\"http://x\\\\\";\\\\\"y\\\\\") \| col <b>x</b>\\\\n# head\"|" \
    -e "s|\"models\": \[\"llama, \\\\\"tiny\\\\\"\"\]|\"models\": [\"=HYPERLINK(\\\\\"http://x\\\\\";\\\\\"y\\\\\") \| col <b>x</b>\\\\n# head\"]|" \
    -e "s|\"label\": \"V3 reported\"|\"label\": \"@SUM(A1) \`touch $pw-3\`\"|" \
    -e "s|\"tasks/|\"$PWD/tests/data/tasks/|g" -e "s|\"tokenizers/|\"$PWD/tests/data/tokenizers/|g" \
    -e "s|\"\.\./\.\./|\"$PWD/|g" "$S" > "$h/suite.json"
if "$E" run "$h/suite.json" -o "$h/out" >/dev/null 2>"$tmp/err"; then
  if ls "$pw"* >/dev/null 2>&1; then bad "hostile names: a command from a name ran ($(ls "$pw"*))"
  else ok "hostile names: gnuplot system() and backquotes in names run nothing"; fi
  if "$T" csv-column "$h/out/results.csv" model | grep -q "^'=HYPERLINK" && ! "$T" csv-column "$h/out/results.csv" model | grep -q "^=HYPERLINK" \
     && "$T" csv-column "$h/out/cost.csv" label | grep -q "^'@SUM"; then ok "hostile names: formula-looking CSV cells are neutralised"
  else bad "CSV cells not neutralised"; fi
  # every summary table row keeps its column count (escaped pipes, no raw newlines)
  bad_rows=$(awk -F'|' '/^\| .* \|$/ { gsub(/\\\|/, ""); n = NF; if (hdr && n != cols) print; } /^\|---/ { hdr = 1; cols = NF } /^$/ { hdr = 0 }' "$h/out/summary.md" | wc -l)
  if [ "$bad_rows" -eq 0 ] && ! grep -q '<b>' "$h/out/summary.md" && ! grep -q '^# head' "$h/out/summary.md"; then ok "hostile names: summary.md tables keep their shape, markup escaped"
  else bad "hostile names: $bad_rows broken summary rows"; fi
  if command -v gnuplot >/dev/null && [ -s "$h/out/roofline.png" ] && [ -s "$h/out/accuracy_vs_flops_per_token.png" ]; then ok "hostile names: charts still render"
  elif command -v gnuplot >/dev/null; then bad "hostile names: charts missing"; fi
else bad "hostile suite: $(cat "$tmp/err")"; fi

# --- deeply nested and enormous JSON -------------------------------------------------
mkdir -p "$tmp/nest"
awk 'BEGIN { printf "{\"model_type\": "; for (i = 0; i < 100000; i++) printf "["; printf "1"; for (i = 0; i < 100000; i++) printf "]"; print "}" }' > "$tmp/nest/config.json"
expect_err "config nested 100000 deep" 1 "config.json: malformed JSON" "$E" info --model "$tmp/nest"
awk 'BEGIN { printf "{\"pad\": \""; for (i = 0; i < 17 * 1024 * 1024 / 64; i++) printf "%064d", 0; print "\"}" }' > "$tmp/nest/config.json"
expect_err "config of 17 MB" 1 "more than the" "$E" info --model "$tmp/nest"
awk 'BEGIN { printf "{\"name\": \"n\", \"models\": "; for (i = 0; i < 50000; i++) printf "["; for (i = 0; i < 50000; i++) printf "]"; print "}" }' > "$tmp/nest/suite.json"
expect_err "suite nested 50000 deep" 1 "suite.json: malformed JSON" "$E" run "$tmp/nest/suite.json" -o "$tmp/nest/out"

# --- kill-and-resume rounds ----------------------------------------------------------
# A reference run, then ROUNDS runs each killed (SIGKILL, or SIGINT every third round)
# at a random moment and resumed; after each round results.csv must parse, hold no key
# twice and no partial row; at the end every cell once, with the same deterministic
# figures (FLOPs and bytes per step, cache and weight bytes) as the reference.
ROUNDS=${KILL_ROUNDS:-12}
ref="$tmp/r1/results.csv"       # the uninterrupted run of run_cli_runner.sh
d="$tmp/kill"; rm -rf "$d"; survived=0; broken=""
seed=$(date +%s)
for i in $(seq 1 "$ROUNDS"); do
  delay=$(awk -v s="$seed" -v i="$i" 'BEGIN { srand(s + i); printf "%.2f", rand() * 2.5 }')
  sig=KILL; [ $((i % 3)) -eq 0 ] && sig=INT
  "$E" run "$S" -o "$d" --resume >/dev/null 2>&1 & pid=$!
  sleep "$delay"; kill -$sig $pid 2>/dev/null; wait $pid 2>/dev/null
  if [ -f "$d/results.csv" ]; then
    "$T" csv-column "$d/results.csv" key > "$tmp/keys" 2>"$tmp/kerr" || broken="$broken round$i:unparsable"
    [ "$(sort "$tmp/keys" | uniq -d | wc -l)" -eq 0 ] || broken="$broken round$i:duplicate"
    [ "$("$T" csv-column "$d/results.csv" status | grep -cv '^ok$')" -eq 0 ] || broken="$broken round$i:partial"
  fi
  survived=$((survived + 1))
done
"$E" run "$S" -o "$d" --resume >/dev/null 2>"$tmp/err"; rc=$?
n=$("$T" csv-column "$d/results.csv" key | sort -u | grep -c '')
same=1
for col in flops_per_step bytes_per_step kv_bytes weight_bytes params; do
  a=$("$T" csv-column "$ref" $col | sort | tr '\n' ' ')
  b=$("$T" csv-column "$d/results.csv" $col | sort | tr '\n' ' ')
  [ "$a" = "$b" ] || { same=0; broken="$broken $col-differs"; }
done
if [ $rc -eq 0 ] && [ "$n" -eq 6 ] && [ -z "$broken" ] && [ $same -eq 1 ]; then
  ok "kill-and-resume: $survived rounds of SIGKILL/SIGINT at random points, then every cell once, figures as uninterrupted"
else bad "kill-and-resume: exit $rc, $n cells, problems:$broken"; fi
