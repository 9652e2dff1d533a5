#!/bin/sh
# run.sh OUTDIR SECONDS [HARNESS...]: builds the libFuzzer harnesses with
# clang (-fsanitize=fuzzer,address,undefined) into OUTDIR, then runs each
# for SECONDS on one core, starting from the committed seed corpus
# (tests/fuzz/corpus/<harness>, copied to OUTDIR/corpus/<harness>, which
# grows from run to run). Prints one line per harness:
#   fuzz: <harness>: N execs, C crashes
# and exits non-zero if any crashed; the crashing input stays in OUTDIR
# (crash-*, leak-*, timeout-*, oom-*) and the log in OUTDIR/<harness>.log.
# Inputs are capped (-max_len) at what a harness reads: a plane for
# fuzz-check-plane, about 60 steps for fuzz-engine and fuzz-scanout.
# Environment: FUZZ_CC (default clang, else clang-14), FUZZ_ARGS (extra
# libFuzzer flags, after ours).
set -eu

out=${1:?usage: run.sh OUTDIR SECONDS [HARNESS...]}
secs=${2:?usage: run.sh OUTDIR SECONDS [HARNESS...]}
shift 2
harnesses=${*:-fuzz-check-plane fuzz-engine fuzz-scanout fuzz-irq-info}
src=$(cd "$(dirname "$0")/../.." && pwd)
pkgs="clang-14 libclang-rt-14-dev"
cc=${FUZZ_CC:-}
if [ -z "$cc" ]; then
    for c in clang clang-14; do
        if command -v "$c" >/dev/null 2>&1; then
            cc=$c
            break
        fi
    done
fi
if [ -z "$cc" ] || ! command -v "$cc" >/dev/null 2>&1; then
    echo "fuzz: clang not found: install $pkgs (apt-get install -y $pkgs;" \
         "they are in scripts/host-packages.txt)" >&2
    exit 1
fi
mkdir -p "$out/gen" "$out/obj"

# libFuzzer is in compiler-rt, packaged apart from clang
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\n'\
'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)'\
'{ return d && n ? 0 : 0; }\n' >"$out/gen/probe.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined "$out/gen/probe.c" \
        -o "$out/gen/probe" 2>"$out/gen/probe.log"; then
    cat "$out/gen/probe.log" >&2
    echo "fuzz: $cc cannot link libFuzzer: install $pkgs" \
         "(scripts/host-packages.txt)" >&2
    exit 1
fi

python3 "$src/scripts/trace-shim.py" "$src/hw/vfio/trace-events" \
    "$out/gen/trace.h"
glib_cflags=$(pkg-config --cflags glib-2.0)
glib_libs=$(pkg-config --libs glib-2.0)
# the meson build's warnings, as errors
cflags="-std=gnu11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer
 -Wall -Wextra -Werror -Wmissing-prototypes -Wstrict-prototypes -Wshadow
 -Wformat=2 -Wvla -Wpointer-arith -Wundef -Wno-unused-parameter
 -Wno-missing-field-initializers -Wno-format-nonliteral
 -fsanitize=address,undefined -fno-sanitize-recover=undefined
 -I$src/include -I$src/tests/shim -I$src/tests/unit -I$out/gen $glib_cflags"

objs=""
for f in hw/vfio/display-dmabuf.c ui/dmabuf-plane.c tests/shim/shim.c \
         tests/unit/fake-gfx-plane.c; do
    o="$out/obj/$(basename "$f" .c).o"
    # shellcheck disable=SC2086
    "$cc" $cflags -fsanitize=fuzzer-no-link -c "$src/$f" -o "$o"
    objs="$objs $o"
done

# fuzz-scanout: ui/dmabuf-scanout.c (with ui/'s trace.h, found first) and
# the fake console (tests/shim/ui/console.h), with pixman; the fake's
# memfds map like dma-bufs through --wrap=mmap,--wrap=mmap64
scanout_objs=""
scanout_cflags=""
scanout_libs=""
case " $harnesses " in
*" fuzz-scanout "*)
    if ! pkg-config --exists pixman-1; then
        echo "fuzz: pixman-1 not found: install libpixman-1-dev" \
             "(scripts/host-packages.txt)" >&2
        exit 1
    fi
    scanout_cflags=$(pkg-config --cflags pixman-1)
    mkdir -p "$out/gen/ui"
    python3 "$src/scripts/trace-shim.py" "$src/ui/trace-events" \
        "$out/gen/ui/trace.h"
    for f in ui/dmabuf-scanout.c tests/unit/fake-console.c; do
        o="$out/obj/$(basename "$f" .c).o"
        # shellcheck disable=SC2086
        "$cc" -I"$out/gen/ui" $cflags $scanout_cflags \
            -fsanitize=fuzzer-no-link -c "$src/$f" -o "$o"
        scanout_objs="$scanout_objs $o"
    done
    scanout_libs="$(pkg-config --libs pixman-1) -Wl,--wrap=mmap,--wrap=mmap64"
    ;;
esac

# inputs libFuzzer kept because they crashed, leaked, hung or ran out
artefacts() {
    ls "$out" | grep -cE '^(crash|leak|timeout|oom)-' || true
}

rc=0
for h in $harnesses; do
    log="$out/$h.log"
    corpus="$out/corpus/$h"

    extra_cflags=""
    extra_objs=""
    extra_libs=""
    if [ "$h" = fuzz-scanout ]; then
        extra_cflags=$scanout_cflags
        extra_objs=$scanout_objs
        extra_libs=$scanout_libs
    fi
    # shellcheck disable=SC2086
    "$cc" $cflags $extra_cflags -fsanitize=fuzzer "$src/tests/fuzz/$h.c" \
        $objs $extra_objs $glib_libs $extra_libs -o "$out/$h"
    mkdir -p "$corpus"
    cp "$src/tests/fuzz/corpus/$h/"* "$corpus/" 2>/dev/null || true
    before=$(artefacts)
    case $h in
    fuzz-check-plane) max_len=80 ;;
    fuzz-irq-info) max_len=160 ;;
    fuzz-scanout) max_len=512 ;;
    *) max_len=256 ;;
    esac
    hrc=0
    t0=$(date +%s)
    # shellcheck disable=SC2086
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$out/$h" -max_total_time="$secs" -max_len="$max_len" \
        -print_final_stats=1 \
        -artifact_prefix="$out/" ${FUZZ_ARGS:-} "$corpus" \
        >"$log" 2>&1 || hrc=$?
    took=$(($(date +%s) - t0))
    after=$(artefacts)
    crashes=$((after - before))
    if [ "$hrc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        crashes=1 # died without an artefact: still a failure
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ -z "$execs" ]; then
        execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -1)
    fi
    cov=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 |
          sed 's/.*\(cov: [0-9]*\) \(ft: [0-9]*\) \(corp: [^ ]*\).*/\1 \2 \3/')
    echo "fuzz: $h: ${execs:-0} execs, $crashes crashes"
    echo "# $h: $took s, ${cov:-no coverage line}, log $log"
    if [ "$crashes" -ne 0 ]; then
        grep -E 'invariant violated|ERROR: |runtime error|Test unit written' \
            "$log" | head -5 | sed 's/^/# /'
        rc=1
    fi
done
exit "$rc"
