#!/usr/bin/env bash
# Runs a command inside a fresh cgroup v1 memory group limited to SIZE bytes (needs root), then
# prints the group's peak usage and how often it hit the limit. Used by docs/BENCHMARKS.md to
# measure models larger than memory.
# Usage: scripts/with-memory-limit.sh SIZE_BYTES command [args...]
set -euo pipefail
limit="$1"
shift
group="/sys/fs/cgroup/memory/moe-limit-$$"
mkdir "$group"
trap 'rmdir "$group" 2>/dev/null || true' EXIT
echo "$limit" >"$group/memory.limit_in_bytes"
set +e
# The child joins the group before exec, so everything the command maps is charged to it.
bash -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' _ "$group" "$@"
status=$?
set -e
echo "with-memory-limit: limit $limit, peak usage $(cat "$group/memory.max_usage_in_bytes"), limit hits $(cat "$group/memory.failcnt")" >&2
exit "$status"
