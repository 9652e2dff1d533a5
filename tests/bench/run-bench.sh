#!/bin/sh
# run-bench.sh [BUILD_DIR]: `make bench`. Builds ours and unmodified Debian
# QEMU 10.2 (UPSTREAM=1 scripts/build-qemu.sh, as `make check-upstream`),
# boots the rig VM once with a vgpusim mdev and runs tests/bench/bench.py
# in it, then tests/bench/report.py turns the rows into the table, the
# targets (last line: "bench: N of M targets met") and the plots, in
# BUILD_DIR/bench, and exits non-zero when a target is missed: so does
# this script (and `make bench`). First, tests/bench/test_bench.py checks
# the judges on the host. BENCH_SECONDS (default 5) is each row's window. The VM
# has two virtual CPUs (multi-threaded TCG): the viewer does not share
# QEMU's CPU, as it would not on a real desktop.
# Not part of `make check`. See docs/benchmarks.md.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/scripts/lib.sh"
build_dir "$repo/build" "$@"
out=$bdir/bench
mkdir -p "$out"

python3 "$here/test_bench.py" > "$out/test-bench.log" 2>&1 || {
    tail -n 30 "$out/test-bench.log"; die "the bench's self-test failed"; }
vars=$("$repo/tests/qtest/prepare.sh" "$bdir") || die "building ours failed (see above)"
eval "$vars"
UPSTREAM=1 "$repo/scripts/build-qemu.sh" "$bdir/qemu-upstream" >&2 ||
    die "building upstream QEMU failed (see above)"
up=$(cat "$bdir/qemu-upstream/qemu-path-in-root")
secs=${BENCH_SECONDS:-5}

rm -rf "$out/bench.results"
say "running the benchmark in the rig VM (about 11 minutes)"
"$repo/tests/rig/run-vm.sh" -b "$out" --root --vkms --ko "$VGPUSIM_KO" \
    --mdev vgpusim --smp 2 --timeout 1500 bench -- sh -c \
    "ifconfig lo 127.0.0.1 up && rig-chroot python3 $DRIVERS/bench.py $QEMU_IN_ROOT $up \"\$RIG_MDEV_vgpusim\" /mnt $secs" ||
    die "the benchmark run failed; see $out/bench.log"
[ -f "$out/bench.results/bench.json" ] || die "no bench.json; see $out/bench.log"
cp "$out/bench.results/bench.json" "$out/bench.json"
python3 "$here/report.py" "$out/bench.json" "$out" ||
    die "a target was missed (above; the table is $out/bench.md)"
