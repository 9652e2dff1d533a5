#!/bin/sh
# demo.sh [OUT_DIR]: the main job on a machine with no vGPU. Builds what is
# missing (build root, QEMU with the overlay, kernel, vgpusim), boots the
# rig VM, runs QEMU with `-device vfio-pci,display=on -vnc` on the
# simulated vGPU (60 Hz page flips, a moving cursor) with our policy and
# pinned to upstream's, and leaves in OUT_DIR (default build/demo):
# index.html, animations of what a VNC viewer and screendump showed, a
# still, a gtk-vnc capture and demo.json (tests/qtest/demo.py,
# scripts/demo-report.py).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib.sh"
out=${1:-$repo/build/demo}
mkdir -p "$out"
out=$(cd "$out" && pwd)
bdir=$(cd "$out/.." && pwd)

say "1/3 building (first run: about 7 minutes; then seconds)"
vars=$("$repo/tests/qtest/prepare.sh" "$bdir") ||
    die "step 1/3 (building) failed; its log is named above"
eval "$vars"
say "2/3 booting the test VM (Debian 6.12 kernel under TCG) with a vgpusim mdev"
rm -rf "$out/vm.results"
"$repo/tests/rig/run-vm.sh" -b "$out" --root --ko "$VGPUSIM_KO" \
    --mdev vgpusim --timeout 300 vm -- sh -c \
    "ifconfig lo 127.0.0.1 up && rig-chroot python3 $DRIVERS/demo.py $QEMU_IN_ROOT \"\$RIG_MDEV_vgpusim\" /mnt" ||
    die "step 2/3 (the demo in the test VM) failed; see $out/vm.log"
say "3/3 results"
rm -f "$out"/*.gif "$out"/*.png "$out"/index.html "$out"/demo.json
mv "$out"/vm.results/* "$out/" 2>/dev/null || true
python3 "$here/demo-report.py" "$out" ||
    die "step 3/3 (the report) failed"
