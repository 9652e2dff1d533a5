#!/bin/sh
# build.sh: build vgpusim.ko against the rig kernel (W=1; any compiler
# warning fails the build) and the static selftest, in BUILD_DIR/vgpusim (a
# copy of the sources, so the tree stays clean). Unchanged inputs (kernel
# release, sources, this script) are not rebuilt.
#
# Usage: tests/rig/vgpusim/build.sh [BUILD_DIR]     (default build/rig)
# Prints VGPUSIM_KO=<path> and VGPUSIM_SELFTEST=<path> on stdout (eval-able).
# The module's build log is BUILD_DIR/vgpusim-build.log.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../../scripts/lib.sh"
rig=$(cd "$here/.." && pwd)
repo=$(cd "$rig/../.." && pwd)

build_dir "$repo/build/rig" "$@"
out=$bdir/vgpusim
mkdir -p "$out"

# one build at a time per build dir (check scripts may run side by side)
exec 8>"$out/.lock"
flock 8 || die "cannot lock $out/.lock"

kinfo=$("$rig/fetch-kernel.sh") || die "fetch-kernel.sh failed"
eval "$kinfo"

emit() {
    echo "VGPUSIM_KO=$out/vgpusim.ko"
    echo "VGPUSIM_SELFTEST=$out/selftest"
}

key=$(printf '%s\n' "$KVER" | hash_of - "$here/vgpusim.c" "$here/Kbuild" \
    "$here/selftest.c" "$repo/tests/shim/standard-headers/drm/drm_fourcc.h" \
    "$here/build.sh")
if [ -f "$out/vgpusim.ko" ] && [ -x "$out/selftest" ] &&
    [ "$(cat "$out/.key" 2>/dev/null)" = "$key" ]; then
    emit
    exit 0
fi

command -v make >/dev/null || die "make is missing (apt-get install make gcc)"
command -v x86_64-linux-gnu-gcc-12 >/dev/null ||
    die "x86_64-linux-gnu-gcc-12 is missing (the rig kernel is built with gcc-12: apt-get install gcc-12)"

rm -f "$out/.key"
# vgpusim.c and selftest.c carry their own copy of the display event's ABI
# (written from the series' text), not include/hw/vfio/vfio-gfx-irq.h
rm -f "$out/vfio-gfx-irq.h"
cp "$here/vgpusim.c" "$here/Kbuild" "$out/"
say "building vgpusim.ko for $KVER"
# The host has no pahole: module BTF generation is switched off.
run_logged "building vgpusim.ko" "$bdir/vgpusim-build.log" "" \
    make -C "$KDIR" M="$out" -j2 W=1 CONFIG_DEBUG_INFO_BTF_MODULES= modules ||
    die "vgpusim build failed, see $bdir/vgpusim-build.log"
if grep -q 'warning:' "$bdir/vgpusim-build.log"; then
    grep 'warning:' "$bdir/vgpusim-build.log" >&2
    die "vgpusim.c has compiler warnings"
fi

gcc -O2 -Wall -Wextra -Werror -static -I "$repo/tests/shim" -I "$repo/include" \
    -o "$out/selftest" "$here/selftest.c" ||
    die "cannot build $here/selftest.c statically (needs gcc, libc6-dev and libdrm-dev)"
echo "$key" > "$out/.key"
emit
