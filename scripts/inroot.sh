#!/bin/sh
# inroot.sh ROOT CMD...: run CMD inside the chroot ROOT with /proc, /sys and
# /dev mounted; unmount what this call mounted on every exit path.
set -eu
. "$(dirname "$0")/lib.sh"
[ $# -ge 2 ] || die "usage: inroot.sh ROOT CMD..."
root=$1; shift
[ -d "$root/usr" ] || die "$root is not a root file system"
[ "$(id -u)" = 0 ] || die "running in the build root needs root (chroot, mounts): run make as root"

mounted=""
cleanup() {
    for m in $mounted; do
        umount -l "$m" 2>/dev/null || true
    done
}
trap cleanup EXIT INT TERM

mnt() { # mnt TARGET ARGS...
    t=$1; shift
    if ! mountpoint -q "$t"; then
        mount "$@" "$t"
        mounted="$t $mounted"
    fi
}
mnt "$root/proc" -t proc proc
mnt "$root/sys" --rbind /sys
mnt "$root/dev" --rbind /dev
mkdir -p "$root/run/shm"
[ -n "${INROOT_BIND:-}" ] && {
    # INROOT_BIND="host_dir:root_dir" binds one extra directory.
    src=${INROOT_BIND%%:*}; dst=$root${INROOT_BIND#*:}
    mkdir -p "$dst"
    mnt "$dst" --bind "$src"
}
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
rc=0
env -i HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    CCACHE_DIR=/ccache CCACHE_BASEDIR=/src CCACHE_NOHASHDIR=1 ${INROOT_ENV:-} \
    chroot "$root" "$@" || rc=$?
exit $rc
