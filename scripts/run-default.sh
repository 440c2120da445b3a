#!/usr/bin/env bash
# The README's main command: installs what is needed, builds, and generates text with the
# embedded default model (models/kjv-moe-q8_0.gguf, trained by `moe train`; docs/DEFAULT_MODEL.md).
# Extra arguments go to `moe run` (e.g. -p "In the beginning" -n 64 --temp 0).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh release moe
model=models/kjv-moe-q8_0.gguf
if [[ $# -eq 0 ]]; then
  set -- -p "And God said" -n 96 --temp 0.7 --seed 1
fi
exec build/release/src/cli/moe run -m "$model" "$@"
