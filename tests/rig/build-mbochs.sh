#!/bin/sh
# build-mbochs.sh: build the unmodified samples/vfio-mdev/mbochs.c of the rig
# kernel as an out-of-tree module (cached).
#
# Usage: tests/rig/build-mbochs.sh [BUILD_DIR]     (default: build/rig)
# Prints MBOCHS_KO=<path> on stdout. The build log goes to BUILD_DIR/mbochs-build.log.
# Cache key: kernel release, mbochs.c and this script.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../scripts/lib.sh"
repo=$(cd "$here/../.." && pwd)
build_dir "$repo/build/rig" "$@"

kinfo=$("$here/fetch-kernel.sh") || die "fetch-kernel.sh failed"
eval "$kinfo"
[ -f "$MBOCHS_C" ] || die "no mbochs.c at $MBOCHS_C"

key=$(printf '%s\n' "$KVER" | hash_of - "$MBOCHS_C" "$here/build-mbochs.sh")
out=$CACHE/rig/mbochs-$key
if [ -f "$out/mbochs.ko" ]; then
    echo "MBOCHS_KO=$out/mbochs.ko"
    exit 0
fi

command -v make >/dev/null || die "make is missing (apt-get install make gcc)"
command -v x86_64-linux-gnu-gcc-12 >/dev/null || die "x86_64-linux-gnu-gcc-12 is missing (the rig kernel is built with gcc-12: apt-get install gcc-12)"
rm -rf --one-file-system "$out.tmp"
mkdir -p "$out.tmp"
cp "$MBOCHS_C" "$out.tmp/mbochs.c"
echo 'obj-m += mbochs.o' > "$out.tmp/Kbuild"
say "building mbochs.ko for $KVER"
# The host has no pahole: module BTF generation is switched off.
run_logged "building mbochs.ko" "$bdir/mbochs-build.log" "" \
    make -C "$KDIR" M="$out.tmp" -j2 CONFIG_DEBUG_INFO_BTF_MODULES= modules ||
    die "mbochs build failed, see $bdir/mbochs-build.log"
[ -f "$out.tmp/mbochs.ko" ] || die "no mbochs.ko after the build, see $bdir/mbochs-build.log"
rm -rf --one-file-system "$out"
mv "$out.tmp" "$out"
for old in "$CACHE"/rig/mbochs-*; do
    [ -d "$old" ] && [ "$old" != "$out" ] || continue
    rm -rf --one-file-system "$old"
done
echo "MBOCHS_KO=$out/mbochs.ko"
