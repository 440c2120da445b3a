#!/usr/bin/env bash
# Evicts the given files from the page cache (POSIX_FADV_DONTNEED), so a benchmark starts cold
# and its page-cache use is charged to its own memory cgroup rather than to whoever read the
# file first. Affects only these files, not the rest of the machine's cache.
# Usage: scripts/drop-file-cache.sh FILE...
set -euo pipefail
python3 - "$@" <<'PY'
import os, sys
for path in sys.argv[1:]:
    fd = os.open(path, os.O_RDONLY)
    os.fdatasync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
PY
