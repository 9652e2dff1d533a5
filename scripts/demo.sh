#!/bin/sh
# demo.sh [OUT_DIR]: the main job on a machine with no vGPU. Builds what is
# missing (build root, QEMU with the overlay, kernel, vgpusim), boots the
# rig VM, runs QEMU with `-device vfio-pci,display=on` on the simulated
# vGPU (30 Hz page flips, a moving cursor), and leaves PNG screenshots and
# a stats report in OUT_DIR (default build/demo).
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
    --mdev vgpusim --timeout 240 vm -- sh -c \
    "ifconfig lo 127.0.0.1 up && rig-chroot python3 $DRIVERS/demo.py $QEMU_IN_ROOT \"\$RIG_MDEV_vgpusim\" /mnt" ||
    die "step 2/3 (the demo in the test VM) failed; see $out/vm.log"
say "3/3 results"
grep '^# ' "$out/vm.log" | sed 's/^# /    /'
for f in "$out"/vm.results/*.png "$out"/vm.results/report.txt; do
    [ -f "$f" ] && mv "$f" "$out/"
done
echo
echo "demo: screenshots and report in $out:"
ls "$out"/*.png "$out/report.txt" | sed 's/^/    /'
