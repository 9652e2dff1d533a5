#!/bin/sh
# build-deb.sh OUTDIR QEMU_OUTDIR: the overlay QEMU as a Debian trixie package,
#   OUTDIR/qemu-system-x86-vfio-dmabuf_<qemu version>+vfiodmabuf<ours>_amd64.deb
# with /usr/bin/qemu-system-x86_64-vfio-dmabuf (next to Debian's
# qemu-system-x86, never replacing it), its man page, changelog and
# copyright. The binary is the one `make qemu` builds into QEMU_OUTDIR (build-qemu.sh:
# Debian's paths, display modules built in), stripped; Depends are computed
# by dpkg-shlibdeps in the build root, firmware and keymaps come from
# Debian's seabios, ipxe-qemu and qemu-system-data. lintian runs on the
# result in a clean trixie root (scripts/clean-root.sh); its output is
# OUTDIR/lintian.txt, and any error or warning not explained in
# docs/packaging.md fails the build. Prints the package's path on stdout.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/lib.sh"
out=${1:?usage: build-deb.sh OUTDIR QEMU_OUTDIR}
qout=${2:?usage: build-deb.sh OUTDIR QEMU_OUTDIR (from build-qemu.sh)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
pkg=qemu-system-x86-vfio-dmabuf
bin=qemu-system-x86_64-vfio-dmabuf
: "${QEMU_DEB_VERSION:=1:10.2.2+ds-1}"

root=$(cat "$qout/root-path")
qbin=$root$(cat "$qout/qemu-path-in-root")
[ -x "$qbin" ] || die "no QEMU built in $qout (scripts/build-qemu.sh $qout)"
tree=${qbin%/*/*}
ours=$(sed -n "s/^ *version: '\\(.*\\)',/\\1/p" "$top/meson.build")
debver=${QEMU_DEB_VERSION#*:}
version=$debver+vfiodmabuf$ours
qemuver=${debver%%+*}
deb=$out/${pkg}_${version}_amd64.deb

# the staging tree, made inside the build root (dpkg-dev and binutils)
work=$root/tmp/deb-$$
trap 'rm -rf "$work"' EXIT INT TERM
stage=$work/stage
doc=$stage/usr/share/doc/$pkg
mkdir -p "$stage/DEBIAN" "$stage/usr/bin" "$stage/usr/share/man/man1" "$doc" \
    "$work/debian"
install -m 0755 "$qbin" "$stage/usr/bin/$bin"
subst() {
    sed -e "s/@VERSION@/$version/g" -e "s/@QEMU@/$qemuver/g" \
        -e "s/@DEBVERSION@/$QEMU_DEB_VERSION/g" -e "s/@OURS@/$ours/g" "$@"
}
subst "$top/packaging/deb/$bin.1" | gzip -9n > "$stage/usr/share/man/man1/$bin.1.gz"
subst "$top/packaging/deb/changelog" | gzip -9n > "$doc/changelog.Debian.gz"
# Debian's qemu copyright (every upstream file), then the overlay's files
{ cat "$tree/debian/copyright"; echo; cat "$top/packaging/deb/copyright-overlay"; } \
    > "$doc/copyright"
# the source stanza dpkg-shlibdeps wants, nothing else
printf 'Source: %s\n\nPackage: %s\nArchitecture: amd64\n' "$pkg" "$pkg" \
    > "$work/debian/control"
chmod -R u=rwX,go=rX "$stage"

w=/tmp/deb-$$
"$here/inroot.sh" "$root" sh -ec "
    cd $w
    strip --remove-section=.comment --remove-section=.note \
        --strip-unneeded stage/usr/bin/$bin
    dpkg-shlibdeps -O stage/usr/bin/$bin > shlibs
" > "$out/dpkg-shlibdeps.log" 2>&1 ||
    { cat "$out/dpkg-shlibdeps.log" >&2; die "strip or dpkg-shlibdeps failed"; }
shlibs=$(sed -n 's/^shlibs:Depends=//p' "$work/shlibs")
[ -n "$shlibs" ] || die "dpkg-shlibdeps computed no dependencies ($out/dpkg-shlibdeps.log)"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
subst "$top/packaging/deb/control.in" |
    sed -e "s/@SIZE@/$size/" -e "s/@SHLIBS@/$shlibs/" > "$stage/DEBIAN/control"
(cd "$stage" && find usr -type f | sort | xargs md5sum) > "$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"
rm -f "$out"/"${pkg}"_*.deb
"$here/inroot.sh" "$root" dpkg-deb --root-owner-group -Zxz --build "$w/stage" \
    "$w/pkg.deb" > "$out/dpkg-deb.log" 2>&1 ||
    { cat "$out/dpkg-deb.log" >&2; die "dpkg-deb failed"; }
mv "$work/pkg.deb" "$deb"

# lintian in a clean root with lintian (cached); known tags are explained
# in docs/packaging.md, anything else fails
lroot=$("$here/clean-root.sh" lintian)
cp "$deb" "$lroot/tmp/$pkg.deb"
rc=0
"$here/inroot.sh" "$lroot" lintian --no-cfg --display-info --tag-display-limit 0 \
    "/tmp/$pkg.deb" > "$out/lintian.txt" 2>&1 || rc=$?
rm -f "$lroot/tmp/$pkg.deb"
say "lintian (status $rc), $out/lintian.txt:"
sed 's/^/    /' "$out/lintian.txt" >&2
unexplained=""
for tag in $(sed -n 's/^[EW]: [^ ]*: \([^ ]*\).*/\1/p' "$out/lintian.txt" | sort -u); do
    grep -q "^| \`$tag\` |" "$top/docs/packaging.md" || unexplained="$unexplained $tag"
done
[ -z "$unexplained" ] || die "lintian errors or warnings not explained in docs/packaging.md:$unexplained"
say "package: $deb ($(du -k "$deb" | cut -f1) KiB, installed $size KiB)"
echo "$deb"
