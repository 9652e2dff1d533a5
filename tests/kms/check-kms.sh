#!/bin/sh
# check-kms.sh [BUILD_DIR]: `-display kms` in the rig VM on vkms (built
# from Debian's linux-source-6.12, loaded with its cursor plane and
# writeback connector), showing vgpusim: tests/kms/kms-test.py
# (docs/display-kms.md). The last line is the test's summary,
# "# kms: N of M failed".
#
# KMS_SUITES="zero-copy copy" runs only those suites.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/scripts/lib.sh"
build_dir "$repo/build" "$@"

vars=$("$repo/tests/qtest/prepare.sh" "$bdir") ||
    die "prepare.sh failed (building QEMU or vgpusim); its log is named above"
eval "$vars"
root=$(cat "$bdir/qemu${SANITIZE:+-asan}/root-path")
cp_if() { cmp -s "$1" "$2" || cp "$1" "$2"; }
cp_if "$here/kms-test.py" "$root$DRIVERS/kms-test.py"
qemu=${KMS_QEMU_IN_ROOT:-$QEMU_IN_ROOT}

kdir=$bdir/kms
mkdir -p "$kdir"
cat > "$kdir/cases" <<EOC
kms sh -c 'rig-chroot python3 $DRIVERS/kms-test.py $qemu "\$RIG_MDEV_vgpusim" /mnt/kms ${KMS_SUITES:-}'
EOC
rc=0
# The gvt suite imports a dma-buf whose exporter refuses vmap (a GVT-g
# proxy) into vkms: the kernel's dma_buf_vmap() warns once (WARN_ON_ONCE),
# then the commit fails and QEMU copies; the splat is the kernel's.
"$repo/tests/rig/run-vm.sh" -b "$kdir" --root --vkms --ko "$VGPUSIM_KO" \
    --mdev vgpusim --timeout "${KMS_TIMEOUT:-600}" --cases "$kdir/cases" \
    --allow-warn 'at drivers/dma-buf/dma-buf\.c:[0-9]+ dma_buf_vmap' \
    kms || rc=$?
# the failed checks and what they noted, so a CI log names them
awk '/^not ok /{n=12} n&&n--{print "kms: " $0}' "$kdir/kms.log" | head -n 120
grep -ah '^# kms: ' "$kdir/kms.log" | tail -n 1 || true
exit "$rc"
