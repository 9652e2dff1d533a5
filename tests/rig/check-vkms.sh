#!/bin/sh
# check-vkms.sh: vkms in the rig VM. Builds vkms.ko (vkms/build.sh),
# vgpusim.ko (vgpusim/build.sh) and the static tests/rig/kms-rig-test.c,
# boots the VM once with `run-vm.sh --vkms` and a vgpusim mdev, and runs the
# cases of tests/rig/check-vkms.cases: the cards, `kms-rig-test info`,
# `state` at boot, `selftest` (a vgpusim dma-buf scanned out by vkms and
# read back through its writeback connector) and `state` at the end.
#
# Usage: tests/rig/check-vkms.sh [BUILD_DIR] [-- RUN-VM-OPTIONS...]
#   BUILD_DIR  default build/rig; logs land there (check-vkms.log,
#              check-vkms.dmesg)
# The last line is run-vm.sh's "rig: N passed, N failed, N skipped".
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../scripts/lib.sh"
repo=$(cd "$here/../.." && pwd)

build_dir "$repo/build/rig" "$@"
shift "$bdir_args"

command -v gcc >/dev/null || die "gcc is missing (apt-get install gcc libc6-dev)"
command -v pkg-config >/dev/null || die "pkg-config is missing (apt-get install pkg-config)"
cflags=$(pkg-config --cflags libdrm) || die "no libdrm (apt-get install libdrm-dev)"
# shellcheck disable=SC2086
gcc -O2 -Wall -Wextra -Werror -static $cflags -o "$bdir/kms-rig-test" \
    "$here/kms-rig-test.c" -ldrm ||
    die "cannot build $here/kms-rig-test.c statically (needs gcc, libc6-dev and libdrm-dev with libdrm.a)"

vars=$("$here/vgpusim/build.sh" "$bdir") || die "vgpusim/build.sh failed"
eval "$vars"

exec "$here/run-vm.sh" -b "$bdir" --vkms --ko "$VGPUSIM_KO" \
    --bin "$bdir/kms-rig-test" --mdev vgpusim "$@" \
    --cases "$here/check-vkms.cases" check-vkms
