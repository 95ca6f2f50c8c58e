#!/usr/bin/env bash
# Builds the native kernels (native/spark_dbn_native.c) against Debian's
# OpenBLAS, OpenMP build, into out/native/spark_dbn_native.node: BLAS and our
# element-wise loops then share one thread pool. Installs libopenblas-openmp-dev
# when missing and allowed (root); otherwise says what is needed and exits 0:
# the engine then falls back to its TypeScript kernels, with a log line.
# Built with -march=native for the machine that runs it (setup runs on each).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
out="$ROOT/out/native/spark_dbn_native.node"
inc=/usr/include/x86_64-linux-gnu/openblas-openmp
lib=/usr/lib/x86_64-linux-gnu/openblas-openmp
if [ ! -f "$inc/cblas.h" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing libopenblas-openmp-dev (OpenBLAS for the native kernels)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-openmp-dev; } >/dev/null 2>&1 \
      || log "warning: apt-get install libopenblas-openmp-dev failed"
  fi
fi
if [ ! -f "$inc/cblas.h" ]; then
  log "warning: OpenBLAS headers not found ($inc/cblas.h); install libopenblas-openmp-dev for the native fast path." \
      "Using the TypeScript kernels."
  rm -f "$out"
  exit 0
fi
if ! command -v gcc >/dev/null; then
  log "warning: no gcc; install build-essential for the native fast path. Using the TypeScript kernels."
  rm -f "$out"
  exit 0
fi
node_inc="$(dirname "$(dirname "$(command -v node)")")/include/node"
[ -f "$node_inc/node_api.h" ] || node_inc=/usr/include/node
[ -f "$node_inc/node_api.h" ] || { log "warning: node_api.h not found; using the TypeScript kernels"; rm -f "$out"; exit 0; }
mkdir -p "$(dirname "$out")"
# No -ffast-math: NaN must propagate exactly as in the reference kernels.
gcc -O3 -march=native -fopenmp -fno-math-errno -fno-trapping-math -fPIC -shared -Wall -Wextra -Wno-unused-parameter \
  -DNODE_GYP_MODULE_NAME=spark_dbn_native -I"$node_inc" -I"$inc" \
  native/spark_dbn_native.c -o "$out.tmp" -L"$lib" -Wl,-rpath,"$lib" -lopenblas -lm
mv "$out.tmp" "$out"
node -e "const m = require('$out'); if (typeof m.sgemm !== 'function') process.exit(1)" \
  || { log "warning: the native module does not load; using the TypeScript kernels"; rm -f "$out"; }
log "native kernels: ${out#$ROOT/}"
