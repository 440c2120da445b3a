#!/usr/bin/env bash
# The README's test command: installs what is needed, builds, and runs the whole default test
# suite (labelled long tests are excluded; run them with `ctest -L long`).
# Usage: scripts/test.sh [preset]   (release by default; asan-ubsan for sanitizers)
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
bash scripts/build.sh "$preset"
ctest --preset "$preset" -LE long -j "$(nproc)"
