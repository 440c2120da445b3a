#!/usr/bin/env bash
# Per-tensor round-trip RMSE of two quantized files against the same source, side by side:
# typically `moe quantize`'s output and llama-quantize's. Uses `moe quant-error` (our GGUF reader
# and dequantizers) for both, so the two files are measured the same way.
# Usage: bench/quant_rmse_compare.sh SOURCE.gguf MOE_OUTPUT.gguf OTHER_OUTPUT.gguf
# Prints one line per converted tensor (name, both types, both RMSEs, verdict) and a summary
# with the quadratic mean of RMSE / RMS(source) for each file; exits 1 if any tensor of MOE_OUTPUT has a
# larger RMSE than OTHER_OUTPUT's (or the tensor types differ).
set -euo pipefail
moe="${MOE:-$(dirname "$0")/../build/release/src/cli/moe}"
src="$1" ours="$2" theirs="$3"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$moe" quant-error "$src" "$ours" >"$tmp/ours.txt"
"$moe" quant-error "$src" "$theirs" >"$tmp/theirs.txt"
awk '
  FNR == 1 || /^#/ { next }
  FILENAME == ARGV[1] { type[$1] = $3; rmse[$1] = $4; rel[$1] = $5; next }
  {
    n++
    rel_ours += rel[$1] * rel[$1]; rel_theirs += $5 * $5
    if (!($1 in rmse)) { printf "%-36s missing from the first file\n", $1; bad++; next }
    verdict = "equal"
    if (type[$1] != $3) { verdict = "TYPES DIFFER"; bad++ }
    else if (rmse[$1] + 0 > $4 + 0) { verdict = "WORSE"; bad++ }
    else if (rmse[$1] + 0 < $4 + 0) { verdict = "better" }
    printf "%-36s %-7s %-7s %.6e %.6e %s\n", $1, type[$1], $3, rmse[$1], $4, verdict
  }
  END {
    printf "# %d tensors compared, %d worse or mismatched; mean relative rmse %.4e vs %.4e\n", n, bad,
           sqrt(rel_ours / n), sqrt(rel_theirs / n)
    exit bad > 0
  }
' "$tmp/ours.txt" "$tmp/theirs.txt"
