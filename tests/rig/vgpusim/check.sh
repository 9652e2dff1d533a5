#!/bin/sh
# check.sh: build vgpusim.ko against the rig kernel and the static selftest,
# boot the rig VM, create a vgpusim mdev and run `selftest <uuid>` in it.
#
# Usage: tests/rig/vgpusim/check.sh [BUILD_DIR] [-- RUN-VM-OPTIONS...]
#   BUILD_DIR  default build/rig; the module is built in BUILD_DIR/vgpusim
#              (a copy of the sources, so the tree stays clean), logs land
#              in BUILD_DIR (vgpusim-build.log, vgpusim.log, vgpusim.dmesg)
# Prints VGPUSIM_KO=<path> once built; the last line is run-vm.sh's
# "rig: N passed, N failed, N skipped".
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../../scripts/lib.sh"
rig=$(cd "$here/.." && pwd)
repo=$(cd "$rig/../.." && pwd)

bdir=$repo/build/rig
if [ $# -gt 0 ] && [ "$1" != -- ]; then
    bdir=$1
    shift
fi
[ "${1:-}" = -- ] && shift
mkdir -p "$bdir"
bdir=$(cd "$bdir" && pwd)

kinfo=$("$rig/fetch-kernel.sh") || die "fetch-kernel.sh failed"
eval "$kinfo"
command -v make >/dev/null || die "make is missing (apt-get install make gcc)"
command -v x86_64-linux-gnu-gcc-12 >/dev/null ||
    die "x86_64-linux-gnu-gcc-12 is missing (the rig kernel is built with gcc-12: apt-get install gcc-12)"

out=$bdir/vgpusim
mkdir -p "$out"
cp "$here/vgpusim.c" "$here/Kbuild" "$out/"
say "building vgpusim.ko for $KVER"
# The host has no pahole: module BTF generation is switched off.
make -C "$KDIR" M="$out" -j2 W=1 CONFIG_DEBUG_INFO_BTF_MODULES= modules \
    > "$bdir/vgpusim-build.log" 2>&1 || die "vgpusim build failed, see $bdir/vgpusim-build.log"
if grep -q 'warning:' "$bdir/vgpusim-build.log"; then
    grep 'warning:' "$bdir/vgpusim-build.log" >&2
    die "vgpusim.c has compiler warnings"
fi
echo "VGPUSIM_KO=$out/vgpusim.ko"

gcc -O2 -Wall -Wextra -Werror -static -o "$out/selftest" "$here/selftest.c" ||
    die "cannot build $here/selftest.c statically (needs gcc and libc6-dev)"

exec "$rig/run-vm.sh" -b "$bdir" --ko "$out/vgpusim.ko" --bin "$out/selftest" \
    --mdev vgpusim "$@" vgpusim -- selftest @MDEV:vgpusim@
