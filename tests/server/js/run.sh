#!/usr/bin/env bash
# Runs the JavaScript client tests of `moe serve` (node:test). The npm packages are installed
# into the build tree from package-lock.json (npm ci) once per lock file; the sources stay clean.
# Usage: run.sh <moe binary> <work dir> <test file ...>    (work dir: under the build directory)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
moe="$1"; work="$2"; shift 2
mkdir -p "$work"
if ! cmp -s "$here/package-lock.json" "$work/package-lock.json" || [[ ! -d "$work/node_modules" ]]; then
  cp "$here/package.json" "$here/package-lock.json" "$work/"
  (cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
fi
cp "$here"/*.mjs "$work/"
export MOE_CLI="$moe"
export MOE_MODEL="$here/../../../models/kjv-moe-q8_0.gguf"
export MOE_ARTIFACT_DIR="$work/artifacts"
cd "$work"
exec node --test --test-reporter=spec "$@"
