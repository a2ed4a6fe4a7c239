#!/bin/sh
# run_cli_gguf.sh - GGUF models through the command: goldens written as GGUF (by the
# tests' converter) give the goldens' logits and greedy tokens from logits, generate and,
# on the CUDA emulator, --backend cuda; info and bench take a .gguf; broken files are one
# line and exit 1. Sourced by tests/run.sh (uses its ok/bad/skp/expect_err, $E, $T, $G, $tmp).
for c in deepseek/v3-tiny dense/llama-tiny dense/mixtral-tiny; do
  d="$G/$c"
  if [ ! -f "$d/case.json" ]; then skp "cli gguf $c (no goldens)"; continue; fi
  g="$tmp/$(basename "$c").gguf"
  if ! "$T" hf-to-gguf "$d" "$g" 2>"$tmp/err"; then bad "cli gguf $c: conversion: $(cat "$tmp/err")"; continue; fi
  set -- $("$T" case-tokens "$d")
  prompt=$1; shift; cont="$*"
  if "$E" logits --model "$g" --tokens "$prompt" -o "$tmp/l.f32" 2>"$tmp/err"; then
    diff=$("$T" maxdiff "$tmp/l.f32" "$d/logits.f32")
    if awk "BEGIN{exit !($diff <= 1e-4)}"; then ok "cli logits on GGUF $c (max diff $diff)"; else bad "cli logits on GGUF $c: max diff $diff"; fi
  else bad "cli logits on GGUF $c: $(cat "$tmp/err")"; fi
  got=$("$E" generate --model "$g" --tokens "$prompt" -n 8 2>"$tmp/err")
  if [ "$got" = "$cont" ]; then ok "cli generate on GGUF $c"; else bad "cli generate on GGUF $c: got '$got' want '$cont' $(cat "$tmp/err")"; fi
  a=$("$E" info --model "$g" --json 2>/dev/null | grep -o '"params_total": *[0-9.e+]*')
  b=$("$E" info --model "$d" --json 2>/dev/null | grep -o '"params_total": *[0-9.e+]*')
  if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "cli info on GGUF $c ($a)"; else bad "cli info on GGUF $c: '$a' vs '$b'"; fi
  EE=${EMU:+$(dirname "$EMU")/effbench}
  if [ -n "$EE" ] && [ -x "$EE" ]; then
    if "$EE" logits --backend cuda --gpu-dtype f32 --model "$g" --tokens "$prompt" -o "$tmp/l.f32" 2>"$tmp/err"; then
      diff=$("$T" maxdiff "$tmp/l.f32" "$d/logits.f32")
      if awk "BEGIN{exit !($diff <= 1e-4)}"; then ok "[emulated] cli logits --backend cuda on GGUF $c (max diff $diff)"; else bad "[emulated] cli logits --backend cuda on GGUF $c: max diff $diff"; fi
    else bad "[emulated] cli logits --backend cuda on GGUF $c: $(cat "$tmp/err")"; fi
  fi
done
g="$tmp/llama-tiny.gguf"
if [ -f "$g" ]; then
  if "$E" bench --model "$g" -p 8 -b 1 -d 4 -n 2 -r 1 --stream-mib 8 >"$tmp/b" 2>"$tmp/err" && grep -q '^| pp8 ' "$tmp/b" && grep -q 'GGUF' "$tmp/err"; then
    ok "cli bench on a GGUF model"; else bad "cli bench on GGUF: $(cat "$tmp/err" "$tmp/b")"; fi
  head -c 3000 "$g" > "$tmp/trunc.gguf"
  expect_err "truncated GGUF" 1 "trunc.gguf: .*past the end\|trunc.gguf: truncated" "$E" logits --model "$tmp/trunc.gguf" --tokens 1 -o "$tmp/x.f32"
  printf 'GGUF\004\000\000\000' > "$tmp/v4.gguf"
  expect_err "GGUF version 4" 1 "version 4 is not supported" "$E" generate --model "$tmp/v4.gguf" --tokens 1 -n 1
  printf 'not a model' > "$tmp/plain.bin"
  expect_err "neither a directory nor GGUF" 1 "neither a checkpoint directory nor a GGUF file" "$E" logits --model "$tmp/plain.bin" --tokens 1 -o "$tmp/x.f32"
  expect_err "--layers on a GGUF checkpoint" 1 "applies to dummy weights only" "$E" generate --model "$g" --layers 1 --tokens 1 -n 1
fi

# export-gguf: a dummy model written as GGUF and read back gives the same logits, bit
# for bit (the weights keep their stored type; layouts are undone exactly on load), for
# every family, in f32 and bf16, and q8_0 where it landed; a bad -o is one line, exit 1,
# and leaves no file.
for c in dense/llama-tiny dense/qwen2-tiny dense/mixtral-tiny deepseek/v3-tiny deepseek/v2-lite-tiny; do
  d="$G/$c"
  if [ ! -f "$d/config.json" ]; then skp "cli export-gguf $c (no goldens)"; continue; fi
  for dt in f32 bf16 q8_0; do
    [ "$dt" = q8_0 ] && [ "$c" != dense/llama-tiny ] && continue
    g="$tmp/export-$(basename "$c")-$dt.gguf"
    if ! "$E" export-gguf --model "$d" --dummy --dtype "$dt" --seed 7 -o "$g" 2>"$tmp/err"; then
      bad "cli export-gguf $c $dt: $(cat "$tmp/err")"; continue; fi
    "$E" logits --model "$d" --dummy --dtype "$dt" --seed 7 --tokens 1,2,3,4,5 -o "$tmp/la.f32" 2>/dev/null
    if "$E" logits --model "$g" --tokens 1,2,3,4,5 -o "$tmp/lb.f32" 2>"$tmp/err" && cmp -s "$tmp/la.f32" "$tmp/lb.f32"; then
      ok "cli export-gguf $c $dt: the same logits from the GGUF"
    else bad "cli export-gguf $c $dt: max diff $("$T" maxdiff "$tmp/la.f32" "$tmp/lb.f32" 2>&1) $(cat "$tmp/err")"; fi
    rm -f "$g"
  done
done
if [ -f "$G/dense/llama-tiny/config.json" ]; then
  mkdir -p "$tmp/ro"
  expect_err "export-gguf to a missing directory" 1 "nodir/x.gguf: cannot create" "$E" export-gguf --model "$G/dense/llama-tiny" --dummy -o "$tmp/nodir/x.gguf"
  expect_err "export-gguf without -o" 2 "-o OUT.gguf is required" "$E" export-gguf --model "$G/dense/llama-tiny" --dummy
  expect_err "export-gguf onto a directory" 1 "ro: cannot rename into place" "$E" export-gguf --model "$G/dense/llama-tiny" --dummy -o "$tmp/ro"
  if ls "$tmp" | grep -q '^ro\.tmp'; then bad "export-gguf left a partial file"; else ok "export-gguf leaves no partial file"; fi
fi
