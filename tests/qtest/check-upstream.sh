#!/bin/sh
# check-upstream.sh [BUILD_DIR]: the reference run. Builds unmodified
# Debian QEMU 10.2 the same way as ours (UPSTREAM=1 scripts/build-qemu.sh),
# then, in one VM boot, starts both on a vgpusim mdev in each display
# configuration of display-test.py's `compare` suite and prints what each
# does (COMPARE-RESULT lines). Not part of `make check`: its output is
# recorded in docs/upstream-comparison.md.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/scripts/lib.sh"
build_dir "$repo/build" "$@"

vars=$("$here/prepare.sh" "$bdir") ||
    die "prepare.sh failed (building QEMU or vgpusim); its log is named above"
eval "$vars"
UPSTREAM=1 "$repo/scripts/build-qemu.sh" "$bdir/qemu-upstream" >&2 ||
    die "building unmodified QEMU failed; its log is named above"
up=$(cat "$bdir/qemu-upstream/qemu-path-in-root")
py="rig-chroot python3 $DRIVERS/display-test.py"
cases=$bdir/upstream/cases
mkdir -p "$bdir/upstream"
cat > "$cases" <<EOC
upstream sh -c 'ifconfig lo 127.0.0.1 up && $py $up compare "\$RIG_MDEV_vgpusim" /mnt/upstream'
ours sh -c 'ifconfig lo 127.0.0.1 up && $py $QEMU_IN_ROOT compare "\$RIG_MDEV_vgpusim" /mnt/ours'
EOC
# twice: with vgem loaded (a /dev/dri render node exists) and without
for vgem in vgem no-vgem; do
    opt=""
    [ $vgem = no-vgem ] && opt=--no-vgem
    # shellcheck disable=SC2086
    "$repo/tests/rig/run-vm.sh" -b "$bdir/upstream" --root --ko "$VGPUSIM_KO" $opt \
        --mdev vgpusim --timeout 400 --cases "$cases" "compare-$vgem" || true
    echo "=== $vgem"
    grep -E 'RIG-CASE-BEGIN|COMPARE-RESULT' "$bdir/upstream/compare-$vgem.log" |
        sed 's/^RIG-CASE-BEGIN: \([a-z]*\):.*/== \1/; s/^# COMPARE-RESULT: /  /'
done
