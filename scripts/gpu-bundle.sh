#!/bin/sh
# gpu-bundle.sh - prepares .gpu-bundle/ (git-ignored) for a GPU machine that cannot
# reach a package registry: the Debian packages effbench links against (unpacked
# there by bench/gpu-check.sh into a private root, never into /) and a copy of the
# golden references, which live outside the repository. Run it here, then carry
# .gpu-bundle with the working tree.
set -e
out=.gpu-bundle
rm -rf "$out"
mkdir -p "$out/debs"
pkgs="libcjson1 libcjson-dev libcsv3 libcsv-dev libopenblas0 libopenblas0-pthread libopenblas-pthread-dev libopenblas-dev
      libgfortran5 libpcre2-8-0 libpcre2-dev libutf8proc2 libutf8proc-dev"
(cd "$out/debs" && apt-get download $pkgs >/dev/null)
golden=${EFFBENCH_GOLDEN:-../shared/golden}
if [ -d "$golden" ]; then cp -r "$golden" "$out/golden"; fi
du -sh "$out" >&2
