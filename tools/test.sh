#!/usr/bin/env bash
# Install into .venv and run the whole suite: everything on JAX (the default backend),
# then the tests marked `backends` again on TensorFlow and on PyTorch.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
# --no-compile: pip byte-compiles every module it installs, most of TensorFlow, PyTorch
# and JAX never imported here (about 95 s of a 200 s install); Python compiles the ones
# the run imports as it first imports them, and keeps them for the next process (so
# bytecode must be written, whatever the environment says).
unset PYTHONDONTWRITEBYTECODE
.venv/bin/pip install -q --no-compile -e '.[test]'
# Debian's Chromium opens the Gemma Scope dashboards and the browser page in the tests;
# the page's runtime (LiteRT.js) and its driver (playwright-core) come from npm.
command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
command -v node >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; }
(cd mobile_export/web && npm ci --no-audit --no-fund --loglevel=error)
export TF_CPP_MIN_LOG_LEVEL=3
# TCMalloc keeps freed pages for reuse where glibc hands large blocks back to the system
# and faults them in again: exports run faster under it (docs/benchmarks.md, "Memory allocator").
tcmalloc=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
[ -e $tcmalloc ] || { apt-get update -qq && apt-get install -y -qq libtcmalloc-minimal4 >/dev/null; }
export LD_PRELOAD=$tcmalloc TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD=$((1 << 40))
status=0
KERAS_BACKEND=jax .venv/bin/python -m pytest -q -p no:cacheprovider --durations=25 tests || status=1
# TensorFlow's tests keep about one core busy: two workers (pytest-xdist, whole files
# each) fill both, 180 s instead of 350. PyTorch's already use both cores (its OpenMP
# threads): two workers oversubscribe them, 150 s instead of 90.
echo "== backend: tensorflow"
KERAS_BACKEND=tensorflow .venv/bin/python -m pytest -q -p no:cacheprovider --durations=25 -m backends \
    -n 2 --dist loadfile tests || status=1
echo "== backend: torch"
KERAS_BACKEND=torch .venv/bin/python -m pytest -q -p no:cacheprovider --durations=25 -m backends tests || status=1
exit $status
