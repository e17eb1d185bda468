#!/usr/bin/env bash
# `npm run bench` after the build: 5,000 SSE streams need ~10,000 descriptors in the edge and
# 5,000 in the bench itself, so raise the soft limit as far as the hard limit allows.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec node dist/bench/main.js "$@"
