#!/usr/bin/env bash
# For each type: quantizes SOURCE with `moe quantize` and with llama.cpp's llama-quantize (built
# elsewhere; pass its path in LLAMA_QUANTIZE), reports whether the two files are byte-identical
# and compares their per-tensor RMSE against the source (bench/quant_rmse_compare.sh).
# Usage: LLAMA_QUANTIZE=/path/to/llama-quantize bench/quant_quality.sh SOURCE.gguf OUTDIR [TYPE...]
# Types default to every type both tools write; `--pure` is passed to both so every quantizable
# tensor gets the named type (set PURE= to use the mixtures' rules instead).
set -euo pipefail
here=$(dirname "$0")
moe="${MOE:-$here/../build/release/src/cli/moe}"
llq="${LLAMA_QUANTIZE:?set LLAMA_QUANTIZE to the llama-quantize binary}"
pure="${PURE---pure}"
src="$1" out="$2"
shift 2
types=("$@")
((${#types[@]})) || types=(q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k iq4_nl iq4_xs)
mkdir -p "$out"
threads="${THREADS:-2}"
printf "%-8s %-10s %s\n" type identical "per-tensor RMSE, moe quantize vs llama-quantize"
for t in "${types[@]}"; do
  m="$out/$t-moe.gguf" l="$out/$t-llq.gguf"
  "$moe" quantize $pure -q -t "$threads" "$src" "$m" "$t"
  # llama-quantize takes an ftype name (Q4_K = Q4_K_M, as for moe) and the thread count last.
  "$llq" $pure "$src" "$l" "${t^^}" "$threads" >"$out/$t-llq.log" 2>&1
  same=no
  cmp -s "$m" "$l" && same=yes
  verdict=$(MOE="$moe" bash "$here/quant_rmse_compare.sh" "$src" "$m" "$l" | tail -1) || true
  printf "%-8s %-10s %s\n" "$t" "$same" "${verdict:2}"
  rm -f "$m" "$l"
done
