#!/usr/bin/env bash
# The README's main command: installs what is needed, builds, and generates text with the
# embedded default model. Extra arguments go to `moe run` (e.g. -p "Once upon a time" -n 64).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh release
model=build/release/models/default.gguf
if [[ $# -eq 0 ]]; then
  set -- -p "In the beginning" -n 64
fi
exec build/release/src/cli/moe run -m "$model" "$@"
