#!/usr/bin/env bash
# Builds the native kernels (native/spark_dbn_native.c) into out/native/: spark_dbn_native.node and the
# OpenBLAS it links, libscipy_openblas.so from PyPI's scipy-openblas32 (pinned below; BSD-3-Clause;
# DYNAMIC_ARCH, so OpenBLAS picks its kernels for the CPU at run time, and it needs only glibc 2.27).
# The addon is built for baseline x86-64 (its hot loops cloned for AVX2 and AVX-512, chosen at load)
# and loads its OpenBLAS from its own directory: the two files run on any x86-64 Linux with
# glibc >= 2.28, whatever the build host's CPU. test/ts/portable.test.ts checks both.
#   --host DIR  the peer of scripts/bench rbm: the kernels as they were built before (the revision
#               below, -march=native, Debian's OpenMP OpenBLAS) into DIR.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
SCIPY_OPENBLAS=0.3.34.481.3
HOST_REV=129a31a

node_include() {
  local d
  d="$(dirname "$(dirname "$(command -v node)")")/include/node"
  [ -f "$d/node_api.h" ] || d=/usr/include/node
  [ -f "$d/node_api.h" ] || die "node_api.h not found (the Node headers); install Node >= 20.19 with its headers"
  echo "$d"
}
command -v gcc >/dev/null || die "gcc is needed for the native kernels (apt-get install build-essential)"

if [ "${1:-}" = --host ]; then
  dir="$2"; mkdir -p "$dir"
  inc=/usr/include/x86_64-linux-gnu/openblas-openmp lib=/usr/lib/x86_64-linux-gnu/openblas-openmp
  if [ ! -f "$inc/cblas.h" ]; then
    [ "$(id -u)" = 0 ] || die "the host-built peer needs libopenblas-openmp-dev (apt-get install libopenblas-openmp-dev)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-openmp-dev; } >/dev/null 2>&1 \
      || die "apt-get install libopenblas-openmp-dev failed"
  fi
  git -C "$ROOT" show "$HOST_REV:native/spark_dbn_native.c" > "$dir/spark_dbn_native.c" \
    || die "revision $HOST_REV is not in this clone's history"
  gcc -O3 -march=native -fopenmp -fno-math-errno -fno-trapping-math -fPIC -shared -Wno-unused-parameter \
    -DNODE_GYP_MODULE_NAME=spark_dbn_native -I"$(node_include)" -I"$inc" \
    "$dir/spark_dbn_native.c" -o "$dir/spark_dbn_native.node" -L"$lib" -Wl,-rpath,"$lib" -lopenblas -lm
  log "host-built native kernels ($HOST_REV): ${dir#$ROOT/}/spark_dbn_native.node"
  exit 0
fi

# scipy-openblas32 from PyPI, unpacked under out/deps (headers and the library).
deps="$ROOT/out/deps/scipy-openblas32-$SCIPY_OPENBLAS"
if [ ! -f "$deps/scipy_openblas32/lib/libscipy_openblas.so" ]; then
  log "fetching scipy-openblas32 $SCIPY_OPENBLAS (OpenBLAS, DYNAMIC_ARCH) from PyPI"
  pip=("$VENV/bin/pip"); [ -x "$VENV/bin/pip" ] || pip=(python3 -m pip)
  wheels="$VAR/deps"; mkdir -p "$wheels"
  "${pip[@]}" download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 -d "$wheels" "scipy-openblas32==$SCIPY_OPENBLAS" \
    || die "pip download scipy-openblas32==$SCIPY_OPENBLAS failed"
  rm -rf "$deps.tmp"; mkdir -p "$deps.tmp"
  python3 -m zipfile -e "$(ls "$wheels"/scipy_openblas32-"$SCIPY_OPENBLAS"-*.whl | head -n1)" "$deps.tmp" \
    || die "cannot unpack the scipy-openblas32 wheel"
  rm -rf "$deps"; mv "$deps.tmp" "$deps"
fi
out="$ROOT/out/native"
mkdir -p "$out"
cp "$deps/scipy_openblas32/lib/libscipy_openblas.so" "$out/libscipy_openblas.so"
cp "$deps"/scipy_openblas32-*.dist-info/licenses/LICENSE.txt "$out/LICENSE.scipy-openblas32.txt"
# No -ffast-math: NaN must propagate exactly as in the reference kernels. No -ffp-contract: every
# CPU's clone rounds alike. libgcc linked in, so nothing but glibc is needed.
gcc -O3 -march=x86-64 -mtune=generic -ffp-contract=off -fno-math-errno -fno-trapping-math -fPIC -shared -pthread \
  -Wall -Wextra -Wno-unused-parameter -Wno-psabi -DNODE_GYP_MODULE_NAME=spark_dbn_native \
  -I"$(node_include)" -I"$deps/scipy_openblas32/include" -Inative \
  native/spark_dbn_native.c -o "$out/spark_dbn_native.node.tmp" \
  -L"$out" -lscipy_openblas -Wl,-rpath,'$ORIGIN' -Wl,--as-needed -static-libgcc -lm
mv "$out/spark_dbn_native.node.tmp" "$out/spark_dbn_native.node"
node -e "const m = require('$out/spark_dbn_native.node'); if (typeof m.sgemm !== 'function') process.exit(1)" \
  || die "the native module was built but does not load (node -e \"require('$out/spark_dbn_native.node')\")"
log "native kernels: ${out#$ROOT/}/spark_dbn_native.node (OpenBLAS $(node -e "console.log(require('$out/spark_dbn_native.node').coreName())"))"
