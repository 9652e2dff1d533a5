#!/bin/sh
# check-rig.sh: the whole rig check. Fetches the kernel, builds mbochs.ko,
# vgpusim.ko, the static smoke and selftest programs and engine-rig-test,
# boots the VM once with an mbochs and a vgpusim mdev and runs the cases of
# tests/rig/check-rig.cases in it: the smoke test, vgpusim's selftest and
# the engine against both devices.
#
# Usage: tests/rig/check-rig.sh [BUILD_DIR] [-- RUN-VM-OPTIONS...]
#   BUILD_DIR  default build/rig; logs land there (check-rig.log,
#              check-rig.dmesg); engine-rig-test is built with meson in
#              BUILD_DIR/meson (log: engine-rig-test-build.log)
# Extra run-vm.sh options (e.g. --root, -v) may follow a "--".
# The last line is run-vm.sh's "rig: N passed, N failed, N skipped"; each
# engine-rig-test sub-case counts as one.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../scripts/lib.sh"
repo=$(cd "$here/../.." && pwd)

build_dir "$repo/build/rig" "$@"
shift "$bdir_args"

"$here/fetch-kernel.sh" > "$bdir/kernel.env" || die "fetch-kernel.sh failed"
command -v gcc >/dev/null || die "gcc is missing (apt-get install gcc libc6-dev)"
gcc -O2 -Wall -Wextra -Werror -static -o "$bdir/smoke" "$here/smoke.c" ||
    die "cannot build $here/smoke.c statically (see above; needs gcc and libc6-dev)"

vars=$("$here/vgpusim/build.sh" "$bdir") || die "vgpusim/build.sh failed"
eval "$vars"

# engine-rig-test: the engine's own meson build, in a build dir of its own
if ! command -v meson >/dev/null || ! command -v ninja >/dev/null; then
    die "meson and ninja are missing (apt-get install meson ninja-build)"
fi
mlog=$bdir/engine-rig-test-build.log
: > "$mlog"
if [ ! -f "$bdir/meson/build.ninja" ]; then
    meson setup "$bdir/meson" "$repo" >> "$mlog" 2>&1 ||
        die "meson setup failed, see $mlog"
fi
ninja -C "$bdir/meson" tests/rig/engine-rig-test >> "$mlog" 2>&1 ||
    die "cannot build engine-rig-test (static: needs libglib2.0-dev, libpcre2-dev and libc6-dev), see $mlog"

exec "$here/run-vm.sh" -b "$bdir" --mbochs --ko "$VGPUSIM_KO" \
    --bin "$bdir/smoke" --bin "$VGPUSIM_SELFTEST" \
    --bin "$bdir/meson/tests/rig/engine-rig-test" \
    --mdev mbochs:small --mdev vgpusim "$@" \
    --cases "$here/check-rig.cases" check-rig
