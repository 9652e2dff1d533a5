#!/bin/sh
# coverage.sh OUTDIR: source coverage of what the fuzz corpus reaches.
# Builds the harnesses with clang's source-based coverage (no sanitizers)
# into OUTDIR/cov, replays OUTDIR/corpus/<harness> (left by run.sh) once,
# and prints llvm-cov's line/branch report for the engine and the plane
# helpers. Needs llvm-14 (llvm-cov-14, llvm-profdata-14) besides clang.
set -eu

out=${1:?usage: coverage.sh OUTDIR}
src=$(cd "$(dirname "$0")/../.." && pwd)
cov="$out/cov"
cc=${FUZZ_CC:-clang}
for t in llvm-profdata-14 llvm-cov-14; do
    command -v "$t" >/dev/null 2>&1 ||
        { echo "fuzz: $t not found: install llvm-14" >&2; exit 1; }
done
mkdir -p "$cov/gen"
python3 "$src/scripts/trace-shim.py" "$src/hw/vfio/trace-events" \
    "$cov/gen/trace.h"
# shellcheck disable=SC2046
set -- -std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer \
    -fprofile-instr-generate -fcoverage-mapping \
    -I"$src/include" -I"$src/tests/shim" -I"$src/tests/unit" -I"$cov/gen" \
    $(pkg-config --cflags glib-2.0)
for h in fuzz-check-plane fuzz-engine; do
    [ -d "$out/corpus/$h" ] ||
        { echo "fuzz: no corpus in $out/corpus/$h: run make fuzz first" >&2
          exit 1; }
    "$cc" "$@" "$src/tests/fuzz/$h.c" "$src/hw/vfio/display-dmabuf.c" \
        "$src/ui/dmabuf-plane.c" "$src/tests/shim/shim.c" \
        "$src/tests/unit/fake-gfx-plane.c" \
        $(pkg-config --libs glib-2.0) -o "$cov/$h"
    LLVM_PROFILE_FILE="$cov/$h.profraw" "$cov/$h" -runs=0 \
        "$out/corpus/$h" >"$cov/$h.log" 2>&1
    llvm-profdata-14 merge -o "$cov/$h.profdata" "$cov/$h.profraw"
    echo "# $h: corpus $(ls "$out/corpus/$h" | wc -l) inputs"
    llvm-cov-14 report "$cov/$h" -instr-profile="$cov/$h.profdata" \
        "$src/hw/vfio/display-dmabuf.c" "$src/ui/dmabuf-plane.c" |
        sed 's/^/# /'
done
