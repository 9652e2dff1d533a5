#!/bin/sh
# build.sh: build the kernel's virtual KMS driver, vkms, for the rig kernel
# as an out-of-tree module (cached). Debian's 6.12 config leaves
# CONFIG_DRM_VKMS unset, so drivers/gpu/drm/vkms/ of the matching
# linux-source-6.12 (fetch-kernel.sh keeps it) is built with its
# Makefile's obj-$(CONFIG_DRM_VKMS) set to obj-m, and one fix:
# writeback-composer-count.patch (a writeback job's cleanup no longer
# switches the composer off under a newer job; the patch says why).
#
# Usage: tests/rig/vkms/build.sh [BUILD_DIR]     (default: build/rig)
# Prints VKMS_KO=<path> on stdout. The build log goes to
# BUILD_DIR/vkms-build.log. Cache: $CACHE/rig/vkms-<key>, the key being the
# kernel release, the vkms sources and this script; a changed input gives a
# new build and the old one is removed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../../scripts/lib.sh"
rig=$(cd "$here/.." && pwd)
repo=$(cd "$rig/../.." && pwd)
build_dir "$repo/build/rig" "$@"

kinfo=$("$rig/fetch-kernel.sh") || die "fetch-kernel.sh failed"
eval "$kinfo"
[ -f "${VKMS_DIR:-}/.complete" ] ||
    die "no vkms sources at ${VKMS_DIR:-?} (with RIG_OFFLINE=1, run fetch-kernel.sh once online)"

# one builder at a time (check scripts may run side by side)
exec 8>"$CACHE/rig/.vkms-build.lock"
flock 8 || die "cannot lock $CACHE/rig/.vkms-build.lock"

key=$( { printf '%s\n' "$KVER"; cd "$VKMS_DIR" && find . -type f ! -name .complete |
    LC_ALL=C sort | xargs sha256sum; } | hash_of - "$here/build.sh" \
    "$here/writeback-composer-count.patch")
out=$CACHE/rig/vkms-$key
if [ -f "$out/vkms.ko" ]; then
    echo "VKMS_KO=$out/vkms.ko"
    exit 0
fi

command -v make >/dev/null || die "make is missing (apt-get install make gcc)"
command -v x86_64-linux-gnu-gcc-12 >/dev/null ||
    die "x86_64-linux-gnu-gcc-12 is missing (the rig kernel is built with gcc-12: apt-get install gcc-12)"
rm -rf --one-file-system "$out.tmp"
mkdir -p "$out.tmp"
(cd "$VKMS_DIR" && cp ./*.c ./*.h Makefile "$out.tmp/") || die "cannot copy $VKMS_DIR"
grep -q '^obj-$(CONFIG_DRM_VKMS) += vkms.o$' "$out.tmp/Makefile" ||
    die "unexpected $VKMS_DIR/Makefile: no 'obj-\$(CONFIG_DRM_VKMS) += vkms.o' line"
sed -i 's/^obj-$(CONFIG_DRM_VKMS) += vkms.o$/obj-m += vkms.o/' "$out.tmp/Makefile"
command -v patch >/dev/null || die "patch is missing (apt-get install patch)"
patch -s -p1 -d "$out.tmp" < "$here/writeback-composer-count.patch" ||
    die "writeback-composer-count.patch does not apply to $VKMS_DIR"
say "building vkms.ko for $KVER"
# The host has no pahole: module BTF generation is switched off.
run_logged "building vkms.ko" "$bdir/vkms-build.log" "" \
    make -C "$KDIR" M="$out.tmp" -j2 CONFIG_DEBUG_INFO_BTF_MODULES= modules ||
    die "vkms build failed, see $bdir/vkms-build.log"
[ -f "$out.tmp/vkms.ko" ] || die "no vkms.ko after the build, see $bdir/vkms-build.log"
# what mkinitramfs.sh will load first; a change here means a change of
# the rig kernel's DRM helpers
deps=$(modinfo -F depends "$out.tmp/vkms.ko" 2>/dev/null ||
    tr '\0' '\n' < "$out.tmp/vkms.ko" | sed -n 's/^depends=//p')
for d in drm drm_kms_helper drm_shmem_helper; do
    case ",$deps," in *",$d,"*) ;; *) die "vkms.ko does not depend on $d (depends=$deps): check the module list in docs/test-vm.md" ;; esac
done
rm -rf --one-file-system "$out"
mv "$out.tmp" "$out"
for old in "$CACHE"/rig/vkms-*; do
    [ -d "$old" ] && [ "$old" != "$out" ] || continue
    rm -rf --one-file-system "$old"
done
echo "VKMS_KO=$out/vkms.ko"
