#!/bin/sh
# fetch-qemu-source.sh ROOT: make sure Debian's qemu source package of
# version $QEMU_DEB_VERSION is in $CACHE/qemu-srcpkg (kept there: the
# mirror drops old versions). Prints the .dsc path.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$1
: "${QEMU_DEB_VERSION:=1:10.2.2+ds-1}"
ver_noepoch=${QEMU_DEB_VERSION#*:}
pkgdir=$CACHE/qemu-srcpkg
dsc=$pkgdir/qemu_$ver_noepoch.dsc
if [ -f "$dsc" ] && [ -f "$pkgdir/.complete-$ver_noepoch" ]; then
    echo "$dsc"
    exit 0
fi
mkdir -p "$pkgdir"
say "downloading Debian source package qemu=$QEMU_DEB_VERSION (deb-src trixie + sid)"
run_logged "downloading the QEMU source package" "$CACHE/qemu-source.log" "" \
    env INROOT_BIND="$pkgdir:/srcpkg" "$here/inroot.sh" "$root" sh -c \
    "apt-get update -q >/dev/null 2>&1; cd /srcpkg && apt-get source -q --download-only 'qemu=$QEMU_DEB_VERSION'" ||
    die "cannot download QEMU source package qemu=$QEMU_DEB_VERSION (not on the mirror any more?). See $CACHE/qemu-source.log; put qemu_$ver_noepoch.dsc and its tarballs into $pkgdir by hand, or use QEMU_SRC=/path/to/qemu-10.2"
[ -f "$dsc" ] || die "apt-get source did not produce $dsc"
touch "$pkgdir/.complete-$ver_noepoch"
echo "$dsc"
