#!/bin/sh
# prepare.sh BUILD_DIR: what QEMU-in-the-VM runs (check-qtest, demo) need:
# the overlay QEMU (scripts/build-qemu.sh), vgpusim.ko, and the Python
# drivers copied into the build root, which the VM shares at /sysroot.
# Prints eval-able QEMU_IN_ROOT=, VGPUSIM_KO=, DRIVERS= (paths in the root).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/scripts/lib.sh"
bdir=${1:?usage: prepare.sh BUILD_DIR}
mkdir -p "$bdir"

# SANITIZE=1: the ASan+UBSan build (scripts/build-qemu.sh)
qout=$bdir/qemu${SANITIZE:+-asan}
"$repo/scripts/build-qemu.sh" "$qout" >&2 || die "QEMU build failed"
root=$(cat "$qout/root-path")
vars=$("$repo/tests/rig/vgpusim/build.sh" "$bdir/rig") ||
    die "vgpusim/build.sh failed; its log is named above"
eval "$vars"

drivers=/opt/vfio-display-dmabuf
mkdir -p "$root$drivers"
for f in "$here/vfio_display.py" "$here/display-test.py" "$here/demo.py" \
    "$here/demo-live.py" "$here/rfbview.py" "$here/soak.py" \
    "$repo/tests/bench/bench.py" \
    "$repo/tests/gui/gui-test.py" "$repo/tests/gui/gui_images.py" \
    "$repo/tests/gui/spice_gl_client.py" "$here/gvt-test.py"; do
    dest=$root$drivers/$(basename "$f")
    cmp -s "$f" "$dest" || cp "$f" "$dest"
done
echo "QEMU_IN_ROOT=$(cat "$qout/qemu-path-in-root")"
echo "VGPUSIM_KO=$VGPUSIM_KO"
echo "DRIVERS=$drivers"
