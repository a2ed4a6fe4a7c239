#!/bin/sh
# run_cli_text.sh - text in and out on the command line: tokenize (text to ids and
# back), generate --prompt (text out, the end-of-sequence stop), logits and kl --prompt,
# on the eval test model (tests/data/eval-model: the gpt2-style tokenizer.json, dummy
# weights), on GGUF tokenizers written here byte by byte, and on the real SmolLM2 GGUF
# when it is at models/ or $EFFBENCH_SMOLLM2. Sourced by tests/run.sh (uses its
# ok/bad/skp/expect_err, $E, $T, $tmp).
M=tests/data/eval-model
L3=tests/data/tokenizers/llama3-style       # a tokenizer.json directory: tokenize needs no weights
D="$M --dummy"

# --- tokenize ------------------------------------------------------------------------
# the tokenizers library's ids of this line (tests/data/tokenizers/gpt2-style/ref.jsonl, line 1)
want=483,779,72,429,277,294,773,275,78,87,220,73,340,357,566,269,298,64,89,88,309,78,70,13
got=$("$E" tokenize --model $M --text "The quick brown fox jumps over the lazy dog." 2>"$tmp/err")
[ "$got" = "$want" ] && ok "tokenize: the tokenizers library's ids, comma-separated" || bad "tokenize: got '$got' $(cat "$tmp/err")"
txt=$("$E" tokenize --model $M --decode "$want" 2>"$tmp/err")
[ "$txt" = "The quick brown fox jumps over the lazy dog." ] && ok "tokenize --decode: ids back to the text" || bad "tokenize --decode: '$txt' $(cat "$tmp/err")"
got=$("$E" tokenize --model $M/config.json --text "The quick brown fox jumps over the lazy dog." 2>&1)
[ "$got" = "$want" ] && ok "tokenize: the tokenizer.json beside a config.json" || bad "tokenize beside config.json: '$got'"
# a file with newlines, tabs, runs of spaces, CJK and emoji comes back byte for byte (plus a newline)
printf 'line one\n\tindented  two   spaces\n\xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x99\x82 caf\xc3\xa9 3.14159\n\n  end' >"$tmp/text.txt"
if ids=$("$E" tokenize --model $M --file "$tmp/text.txt" 2>"$tmp/err") && "$E" tokenize --model $M --decode "$ids" >"$tmp/back.txt" 2>>"$tmp/err" \
   && { cat "$tmp/text.txt"; echo; } | cmp -s - "$tmp/back.txt"; then ok "tokenize --file, then --decode: the same bytes"
else bad "tokenize --file round trip: $(cat "$tmp/err")"; fi
# the template: Llama-3's BOS unless --no-special; --no-special decoding leaves it out
a=$("$E" tokenize --model $L3 --text "hi there" 2>&1); b=$("$E" tokenize --model $L3 --text "hi there" --no-special 2>&1)
[ "$a" = "0,$b" ] && ok "tokenize: the BOS template, and --no-special without it ($a)" || bad "tokenize BOS: '$a' vs '$b'"
a=$("$E" tokenize --model $L3 --decode "$a" 2>&1); b=$("$E" tokenize --model $L3 --decode "0,$b" --no-special 2>&1)
[ "$a" = "<|begin_of_text|>hi there" ] && [ "$b" = "hi there" ] && ok "tokenize --decode: special tokens kept, or left out with --no-special" \
  || bad "tokenize --decode special: '$a' / '$b'"
a=$("$E" tokenize --model $L3 --text "x<|begin_of_text|>y" --no-special 2>&1)
case "$a" in *,0,*) ok "tokenize: a special token inside the text is matched ($a)";; *) bad "tokenize: special token in text: '$a'";; esac

# --- GGUF tokenizers, written here byte by byte (little-endian GGUF version 3) --------
le() { n=$1; i=0; while [ $i -lt $2 ]; do printf "\\$(printf %03o $((n % 256)))"; n=$((n / 256)); i=$((i + 1)); done; }
gstr() { le ${#1} 8; printf '%s' "$1"; }                         # ASCII strings only
kv_str() { gstr "$1"; le 8 4; gstr "$2"; }
kv_strs() { k=$1; shift; gstr "$k"; le 9 4; le 8 4; le $# 8; for s in "$@"; do gstr "$s"; done; }
tok_gguf() {  # FILE MODEL PRE: tokens a, b, ab and the merge "a b"
  { printf GGUF; le 3 4; le 0 8; le 4 8
    kv_str tokenizer.ggml.model "$2"; kv_str tokenizer.ggml.pre "$3"
    kv_strs tokenizer.ggml.tokens a b ab; kv_strs tokenizer.ggml.merges "a b"; } >"$1"
}
tok_gguf "$tmp/tok.gguf" gpt2 gpt-2
got=$("$E" tokenize --model "$tmp/tok.gguf" --text abba 2>"$tmp/err")
[ "$got" = "2,1,0" ] && ok "tokenize: a .gguf file's own tokenizer (merge applied)" || bad "tokenize gguf: '$got' $(cat "$tmp/err")"
tok_gguf "$tmp/frob.gguf" gpt2 frobnicate
expect_err "GGUF with an unknown pre-tokenizer" 1 "frob.gguf: tokenizer.ggml.pre \"frobnicate\" is not supported" \
  "$E" tokenize --model "$tmp/frob.gguf" --text hi
tok_gguf "$tmp/spm.gguf" llama default
expect_err "GGUF with a SentencePiece tokenizer" 1 "spm.gguf: tokenizer.ggml.model \"llama\" (SentencePiece) is not supported" \
  "$E" generate --model "$tmp/spm.gguf" --prompt hi -n 2

# --- usage and errors: one line, exit 1 (input) or 2 (usage) --------------------------
expect_err "prompt for a model without a tokenizer" 1 "llama-3.1-8b.json: no tokenizer (suites/configs/tokenizer.json" \
  "$E" generate --model suites/configs/llama-3.1-8b.json --dummy --layers 1 --prompt hi -n 2
expect_err "tokenize without text" 2 "give one of" "$E" tokenize --model $M
expect_err "both --tokens and --prompt" 2 "give one of" "$E" generate --model $D --tokens 1 --prompt hi -n 2
expect_err "tokenize --decode of a bad list" 2 "comma-separated" "$E" tokenize --model $M --decode 1,x
expect_err "tokenize --decode of an unknown id" 1 "token id 99999 is not in the vocabulary" "$E" tokenize --model $M --decode 1,99999
expect_err "--file that is not there" 1 "nonexistent.txt" "$E" tokenize --model $M --file "$tmp/nonexistent.txt"
printf 'bad \377 utf8' >"$tmp/bad.txt"
expect_err "--file that is not UTF-8" 1 "bad.txt: text is not valid UTF-8" "$E" logits --model $D --file "$tmp/bad.txt" -o "$tmp/x.f32"
expect_err "a prompt of no tokens" 1 "encodes to no tokens" "$E" generate --model $D --prompt "" -n 2

# --- generate, logits and kl on text (eval model, dummy weights) ---------------------
P="The quick brown fox"
ids=$("$E" tokenize --model $M --text "$P" 2>&1)
a=$("$E" generate --model $D --tokens "$ids" -n 6 2>&1); b=$("$E" generate --model $D --prompt "$P" -n 6 --ids --ignore-eos 2>&1)
[ -n "$a" ] && [ "$a" = "$b" ] && ok "generate --prompt --ids = generate --tokens of tokenize's ids" || bad "generate --prompt --ids: '$a' vs '$b'"
txt=$("$E" generate --model $D --prompt "$P" -n 6 --ignore-eos 2>"$tmp/err")
dec=$("$E" tokenize --model $M --decode "$(echo "$a" | tr ' ' ',')" 2>&1)
[ -n "$txt" ] && [ "$txt" = "$dec" ] && ok "generate --prompt: the continuation as text ('$txt')" || bad "generate text: '$txt' vs '$dec' $(cat "$tmp/err")"
if "$E" logits --model $D --prompt "$P" -o "$tmp/lp.f32" 2>"$tmp/err" && "$E" logits --model $D --tokens "$ids" -o "$tmp/lt.f32" 2>>"$tmp/err" \
   && cmp -s "$tmp/lp.f32" "$tmp/lt.f32"; then ok "logits --prompt = logits --tokens of the same ids"
else bad "logits --prompt: $(cat "$tmp/err")"; fi
"$E" kl --model $D --prompt "$P" --ref "$tmp/lp.f32" >"$tmp/kl" 2>"$tmp/err"
grep -q '"kl_mean": 0,' "$tmp/kl" && grep -q '"same_top_rate": 1,' "$tmp/kl" && ok "kl --prompt against its own logits: 0" || bad "kl --prompt: $(cat "$tmp/kl" "$tmp/err")"
# the end-of-sequence stop: the same model with eos_token_id set to the second token generated
set -- $a
mkdir -p "$tmp/eos-model"; cp $M/tokenizer.json "$tmp/eos-model/"
sed "s/\"eos_token_id\": 1,/\"eos_token_id\": $2,/" $M/config.json >"$tmp/eos-model/config.json"
s=$("$E" generate --model "$tmp/eos-model" --dummy --prompt "$P" -n 6 --ids 2>&1)
i=$("$E" generate --model "$tmp/eos-model" --dummy --prompt "$P" -n 6 --ids --ignore-eos 2>&1)
t=$("$E" generate --model "$tmp/eos-model" --dummy --prompt "$P" -n 6 2>&1)
[ "$i" = "$a" ] && [ "$s" = "$1" ] && [ "$1" != "$2" ] && [ "$t" = "$("$E" tokenize --model $M --decode "$1")" ] \
  && ok "generate stops before the first end-of-sequence token ($s | $2), --ignore-eos goes on" \
  || bad "generate eos stop: '$s' / '$i' / '$t' (eos $2)"

# --- the real SmolLM2 GGUF ------------------------------------------------------------
S=${EFFBENCH_SMOLLM2:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
if [ ! -f "$S" ]; then skp "text on SmolLM2 ($S not found: sh scripts/fetch-model.sh)"
else
  # the tokenizers library's ids (tests/data/tokenizers/smollm2/ref.jsonl, line 1)
  got=$("$E" tokenize --model "$S" --text "Hello, world! How are you today?" 2>&1)
  [ "$got" = "19556,28,905,17,1073,359,346,1834,47" ] && ok "tokenize SmolLM2 GGUF: the tokenizers library's ids" || bad "tokenize SmolLM2: '$got'"
  got=$("$E" tokenize --model "$S" --text "<|im_start|>user" 2>&1)
  [ "$got" = "1,4093" ] && ok "tokenize SmolLM2 GGUF: <|im_start|> is one token, no BOS added" || bad "tokenize SmolLM2 special: '$got'"
  Q=$(printf '<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n.'); Q=${Q%.}
  if ! s=$("$E" generate --model "$S" --prompt "$Q" -n 40 --ids 2>"$tmp/err"); then
    skp "generate on SmolLM2 (the model does not load from GGUF here: $(head -c 160 "$tmp/err"))"
  else
    txt=$("$E" generate --model "$S" --prompt "$Q" -n 40 2>"$tmp/err")
    i=$("$E" generate --model "$S" --prompt "$Q" -n 40 --ids --ignore-eos 2>>"$tmp/err")
    n=$(echo "$s" | wc -w)
    # stopped early, right where the continuation without the stop has <|im_end|> (id 2)
    if [ "$n" -lt 40 ] && [ "$n" -gt 0 ] && [ "$(echo "$i" | cut -d' ' -f1-$n)" = "$s" ] && [ "$(echo "$i" | cut -d' ' -f$((n + 1)))" = 2 ]; then
      ok "generate SmolLM2 GGUF: stops at <|im_end|> after $n tokens; --ignore-eos goes on"
    else bad "generate SmolLM2 eos: '$s' / '$i' $(cat "$tmp/err")"; fi
    dec=$("$E" tokenize --model "$S" --decode "$(echo "$s" | tr ' ' ',')" 2>&1)
    [ -n "$txt" ] && [ "$txt" = "$dec" ] && ok "generate SmolLM2 GGUF --prompt: '$txt'" || bad "generate SmolLM2 text: '$txt' vs '$dec'"
    if "$E" eval --model "$S" --task tests/data/tasks/tiny-mc.json --json >"$tmp/out" 2>"$tmp/err" && grep -q '"acc"' "$tmp/out"; then
      ok "eval on a GGUF model: text items through its own tokenizer"
    else bad "eval SmolLM2: $(cat "$tmp/err")"; fi
  fi
fi
