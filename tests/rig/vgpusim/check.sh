#!/bin/sh
# check.sh: build vgpusim.ko against the rig kernel and the static selftest
# (build.sh), boot the rig VM, create a vgpusim mdev and run
# `selftest <uuid>` in it.
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

build_dir "$repo/build/rig" "$@"
shift "$bdir_args"

vars=$("$here/build.sh" "$bdir") || die "build.sh failed"
eval "$vars"
echo "VGPUSIM_KO=$VGPUSIM_KO"

exec "$rig/run-vm.sh" -b "$bdir" --ko "$VGPUSIM_KO" --bin "$VGPUSIM_SELFTEST" \
    --mdev vgpusim "$@" vgpusim -- selftest @MDEV:vgpusim@
