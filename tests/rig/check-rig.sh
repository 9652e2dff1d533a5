#!/bin/sh
# check-rig.sh: the whole rig smoke check: fetch the kernel, build mbochs.ko
# and the static smoke program, build the initramfs, boot the VM, create an
# mbochs mdev and run `smoke <uuid>` in it.
#
# Usage: tests/rig/check-rig.sh [BUILD_DIR] [-- RUN-VM-OPTIONS...]
#   BUILD_DIR  default build/rig; logs land there (smoke.log, smoke.dmesg)
# Extra run-vm.sh options (e.g. --root, -v) may follow a "--".
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../scripts/lib.sh"
repo=$(cd "$here/../.." && pwd)

bdir=$repo/build/rig
if [ $# -gt 0 ] && [ "$1" != -- ]; then
    bdir=$1
    shift
fi
[ "${1:-}" = -- ] && shift
mkdir -p "$bdir"

"$here/fetch-kernel.sh" > "$bdir/kernel.env" || die "fetch-kernel.sh failed"
command -v gcc >/dev/null || die "gcc is missing (apt-get install gcc libc6-dev)"
gcc -O2 -Wall -Wextra -Werror -static -o "$bdir/smoke" "$here/smoke.c" ||
    die "cannot build $here/smoke.c statically (see above; needs gcc and libc6-dev)"

exec "$here/run-vm.sh" -b "$bdir" --mbochs --mdev mbochs:small --bin "$bdir/smoke" "$@" \
    smoke -- smoke @MDEV:mbochs@
