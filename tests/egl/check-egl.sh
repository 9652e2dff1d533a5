#!/bin/sh
# check-egl.sh: the EGL layer's tests on Mesa's software renderer in the rig
# VM. Builds tests/egl/dmabuf-egl-test and egl-vfio-test inside the Debian
# trixie root (its gcc, meson, Mesa and libepoxy) and vgpusim.ko, boots the
# VM with that root shared and with an mbochs and a vgpusim mdev, and runs:
#   dmabuf-egl  udmabuf-backed pixel and refusal tests; vgem is loaded, so a
#               /dev/dri node exists that must not lure EGL into kms_swrast
#   egl-vfio    mbochs dma-bufs (read-only, odd sizes) refused; vgpusim
#               planes in four formats and its cursor drawn and checked
#
# Usage: tests/egl/check-egl.sh [BUILD_DIR] [-- RUN-VM-OPTIONS...]
#   BUILD_DIR  default build/egl: egl-build.log, egl.log (serial console
#              with the tests' TAP output), egl.dmesg, egl.results/
#              (dmabuf-egl-times.txt, and PPM shots of any pixel mismatch)
# EGL_GL_API=khr builds against libEGL + libGLESv2 instead of libepoxy.
# The meson build dir lives inside the root (the VM sees only the root).
# In the VM every skip is a failure (DMABUF_EGL_TEST_REQUIRE=1).
# Exit 0 when every test passed; the last line is
# "egl: N passed, N failed, N skipped" (TAP sub-tests of both programs).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../scripts/lib.sh"
repo=$(cd "$here/../.." && pwd)

build_dir "$repo/build/egl" "$@"
shift "$bdir_args"

root=$("$repo/scripts/build-root.sh") || die "scripts/build-root.sh failed"

# in-root paths: the tree is bound at $src, the build dir is per BUILD_DIR
src=/src/vfio-display-dmabuf
gl_api=${EGL_GL_API:-epoxy}
case $gl_api in epoxy|khr) ;; *) die "EGL_GL_API must be epoxy or khr" ;; esac
key=$(printf '%s' "$bdir:$gl_api" | sha256sum | cut -c1-12)
mdir=/src/egl-build-$key
blog=$bdir/egl-build.log

say "building the EGL tests in the trixie root (log $blog)"
: > "$blog"
setup="meson setup $mdir $src -Degl=enabled -Dgl_api=$gl_api"
[ -f "$root$mdir/build.ninja" ] && setup="true"
run_logged "building the EGL tests" "$blog" "" \
    env INROOT_BIND="$repo:$src" "$repo/scripts/inroot.sh" "$root" sh -c \
    "$setup && ninja -C $mdir tests/egl/dmabuf-egl-test tests/egl/egl-vfio-test" ||
    die "building the EGL tests in the root failed, see $blog"
if grep -q 'warning:' "$blog"; then
    grep 'warning:' "$blog" >&2
    die "the EGL tests have compiler warnings"
fi

vars=$("$repo/tests/rig/vgpusim/build.sh" "$bdir") || die "vgpusim/build.sh failed"
eval "$vars"

env="DMABUF_EGL_TEST_REQUIRE=1 MESA_SHADER_CACHE_DISABLE=true"
cat > "$bdir/egl.cases" <<EOC
dmabuf-egl rig-chroot env $env DMABUF_EGL_TEST_EXPECT_SOFTWARE=1 $mdir/tests/egl/dmabuf-egl-test --tap
egl-vfio rig-chroot env $env $mdir/tests/egl/egl-vfio-test --tap
EOC
rc=0
"$repo/tests/rig/run-vm.sh" -b "$bdir" --root --mbochs --ko "$VGPUSIM_KO" \
    --mdev mbochs:small --mdev vgpusim --timeout 480 "$@" \
    --cases "$bdir/egl.cases" egl || rc=$?

# the tests' TAP lines ("not ok /path - ..." has no number after an abort)
log=$bdir/egl.log
tap=$bdir/egl.tap
tr -d '\r' < "$log" | grep -E '^(not )?ok |^Bail out|^RIG-RESULT|^# dmabuf-egl-times|^# EGL context' > "$tap" || true
cat "$tap"
pass=$(grep -c '^ok ' "$tap" || true)
skip=$(grep -c '^ok .*# SKIP' "$tap" || true)
fail=$(grep -c '^not ok ' "$tap" || true)
pass=$((pass - skip))
if [ "$rc" != 0 ] && [ "$fail" = 0 ]; then
    fail=1 # a crash or a VM problem outside any sub-test
    say "the VM run failed outside the sub-tests, see $log"
fi
[ $((pass + fail + skip)) -gt 0 ] || { fail=1; say "no TAP results in $log"; }
[ -f "$bdir/egl.results/dmabuf-egl-times.txt" ] &&
    cp "$bdir/egl.results/dmabuf-egl-times.txt" "$bdir/"
echo "egl: $pass passed, $fail failed, $skip skipped"
[ "$rc" = 0 ] && [ "$fail" = 0 ]
