#!/bin/sh
# fetch-kernel.sh: fetch (or reuse) the newest Debian bookworm 6.12 kernel
# (linux-image-6.12.N+deb12-amd64 from bookworm-security), its headers and
# kbuild, and from the matching linux-source-6.12 mbochs.c and the vkms
# driver's folder.
#
# Usage: tests/rig/fetch-kernel.sh
# Prints key=value lines on stdout (eval-able):
#   KVER     kernel release, e.g. 6.12.117+deb12-amd64
#   KDIR     headers tree for `make -C "$KDIR" M=... modules`
#   VMLINUZ  the kernel image to boot
#   MODDIR   lib/modules/$KVER of the extracted image (modules are .ko.xz)
#   MBOCHS_C the unmodified samples/vfio-mdev/mbochs.c of that kernel
#   VKMS_DIR the unmodified drivers/gpu/drm/vkms/ of that kernel (a tree
#            from before vkms was kept gets it added: linux-source is
#            downloaded again, about 150 MB)
#   KTREE    the whole extracted tree
#
# Environment:
#   CACHE            cache root (scripts/lib.sh); trees land in $CACHE/rig/k612-<KVER>
#   RIG_KVER         pin a kernel release instead of the newest one
#   RIG_OFFLINE=1    do not touch the network: use the newest complete tree
#   RIG_APT_MAX_AGE  refresh the private apt lists when older (seconds, default 86400)
#
# apt runs with a private state/cache dir under $CACHE/rig/apt but the host's
# own sources (which carry bookworm-security); nothing of the host's apt
# state is changed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../scripts/lib.sh"

rig=$CACHE/rig
aptdir=$rig/apt
mkdir -p "$rig"

# one fetcher at a time (other scripts call this one concurrently)
exec 9>"$rig/.fetch-kernel.lock"
flock 9 || die "cannot lock $rig/.fetch-kernel.lock"

emit() {
    t=$1
    kv=${t##*/k612-}
    kd=$t/usr/src/linux-headers-$kv
    [ -f "$t/.complete" ] || die "internal: $t is not complete"
    echo "KVER=$kv"
    echo "KDIR=$kd"
    echo "VMLINUZ=$t/boot/vmlinuz-$kv"
    echo "MODDIR=$t/lib/modules/$kv"
    echo "MBOCHS_C=$t/mbochs/mbochs.c"
    echo "VKMS_DIR=$t/vkms"
    echo "KTREE=$t"
}

# src_extract DEB DEST: from the linux-source-6.12 package DEB, put
# samples/vfio-mdev/mbochs.c into DEST/mbochs/ and drivers/gpu/drm/vkms/
# into DEST/vkms/ (DEST/vkms/.complete when done); nothing else of the
# source is kept. Messages go to stdout (for run_logged's log).
src_extract() {
    src=$2/.src
    rm -rf --one-file-system "$src" "$2/vkms" && mkdir -p "$src" "$2/mbochs" || return 1
    dpkg -x "$1" "$src" || { echo "dpkg -x $1 failed"; return 1; }
    tarball=$(ls "$src"/usr/src/linux-source-6.12.tar.* 2>/dev/null | head -n 1)
    [ -n "$tarball" ] || { echo "no linux-source tarball inside $1"; return 1; }
    tar -xaf "$tarball" -C "$src" linux-source-6.12/samples/vfio-mdev/mbochs.c \
        linux-source-6.12/drivers/gpu/drm/vkms/ ||
        { echo "mbochs.c or drivers/gpu/drm/vkms/ not found in $tarball"; return 1; }
    [ -f "$src/linux-source-6.12/drivers/gpu/drm/vkms/Makefile" ] ||
        { echo "no drivers/gpu/drm/vkms/Makefile in $tarball"; return 1; }
    mv "$src/linux-source-6.12/samples/vfio-mdev/mbochs.c" "$2/mbochs/mbochs.c" &&
        mv "$src/linux-source-6.12/drivers/gpu/drm/vkms" "$2/vkms" &&
        touch "$2/vkms/.complete" &&
        rm -rf --one-file-system "$src"
}

newest_cached() {
    for t in "$rig"/k612-*; do
        [ -f "$t/.complete" ] && echo "${t##*/k612-}"
    done | sort -V | tail -n 1
}

if [ "${RIG_OFFLINE:-0}" = 1 ]; then
    kv=${RIG_KVER:-$(newest_cached)}
    [ -n "$kv" ] || die "RIG_OFFLINE=1 but no complete kernel tree in $rig"
    [ -f "$rig/k612-$kv/.complete" ] || die "RIG_OFFLINE=1 but $rig/k612-$kv is not there"
    emit "$rig/k612-$kv"
    exit 0
fi

# private apt config: host sources, private lists and archives
mkdir -p "$aptdir/lists/partial" "$aptdir/archives/partial" "$aptdir/debs"
cat > "$aptdir/apt.conf" <<EOF
Dir::State::lists "$aptdir/lists/";
Dir::Cache "$aptdir/";
Dir::Cache::archives "$aptdir/archives/";
Dir::Cache::pkgcache "$aptdir/pkgcache.bin";
Dir::Cache::srcpkgcache "$aptdir/srcpkgcache.bin";
Dir::Etc::sourcelist "/etc/apt/sources.list";
Dir::Etc::sourceparts "/etc/apt/sources.list.d";
APT::Sandbox::User "root";
EOF
APT_CONFIG=$aptdir/apt.conf
export APT_CONFIG

grep -rqs -- '-security' /etc/apt/sources.list /etc/apt/sources.list.d/ ||
    die "the host's apt sources have no bookworm-security suite (needed for the 6.12 kernel)"

stamp=$aptdir/lists/.updated
max_age=${RIG_APT_MAX_AGE:-86400}
now=$(date +%s)
age=$max_age
[ -f "$stamp" ] && age=$(( now - $(stat -c %Y "$stamp") ))
if [ -z "${RIG_KVER:-}" ] || ! [ -f "$stamp" ]; then
    if [ "$age" -ge "$max_age" ]; then
        say "apt-get update (private lists in $aptdir)"
        if run_logged "apt-get update" "$aptdir/update.log" "" apt-get -q update; then
            touch "$stamp"
        else
            kv=$(newest_cached)
            [ -n "$kv" ] || die "apt-get update failed (see $aptdir/update.log) and nothing is cached"
            say "warning: apt-get update failed (see $aptdir/update.log); using cached $kv"
            emit "$rig/k612-${RIG_KVER:-$kv}"
            exit 0
        fi
    fi
fi

newest=$aptdir/lists/.newest
if [ -n "${RIG_KVER:-}" ]; then
    kv=$RIG_KVER
elif [ -s "$newest" ] && [ -n "$(find "$newest" -newer "$stamp" 2>/dev/null)" ]; then
    kv=$(cat "$newest")
else
    kv=$(apt-cache pkgnames linux-image-6.12. |
         sed -n 's/^linux-image-\(6\.12\.[0-9]*+deb12-amd64\)$/\1/p' | sort -V | tail -n 1)
    [ -n "$kv" ] || die "no linux-image-6.12.*+deb12-amd64 in the apt lists (is bookworm-security enabled?)"
    echo "$kv" > "$newest"
fi
tree=$rig/k612-$kv
if [ -f "$tree/.complete" ] && [ -f "$tree/vkms/.complete" ]; then
    emit "$tree"
    exit 0
fi

base=${kv%-amd64}            # 6.12.117+deb12
ver=$(apt-cache show --no-all-versions "linux-image-$kv" 2>/dev/null | sed -n 's/^Version: //p' | head -n 1)
[ -n "$ver" ] || die "apt-cache knows no linux-image-$kv"
debs=$aptdir/debs

# a tree from before vkms was kept: add the sources (mbochs.c is unchanged,
# the same package gives it again)
if [ -f "$tree/.complete" ]; then
    say "adding drivers/gpu/drm/vkms/ to $tree: downloading linux-source-6.12 $ver (about 150 MB)"
    rm -f "$debs"/*.deb
    # shellcheck disable=SC2016
    run_logged "downloading linux-source-6.12" "$aptdir/download.log" "about 150 MB" \
        sh -c 'cd "$1" && shift && exec apt-get -q download "$@"' sh "$debs" "linux-source-6.12=$ver" ||
        die "apt-get download failed, see $aptdir/download.log"
    run_logged "extracting vkms" "$rig/extract.log" "" \
        src_extract "$(ls "$debs"/linux-source-6.12_*.deb)" "$tree" ||
        die "extracting linux-source failed, see $rig/extract.log"
    rm -f "$debs"/*.deb
    emit "$tree"
    exit 0
fi
pkgs="linux-image-$kv linux-headers-$kv linux-headers-$base-common linux-kbuild-$base linux-source-6.12=$ver"

say "downloading kernel $kv ($ver): about 280 MB"
t0=$(date +%s)
rm -f "$debs"/*.deb
# shellcheck disable=SC2086,SC2016
run_logged "downloading kernel $kv" "$aptdir/download.log" "about 280 MB" \
    sh -c 'cd "$1" && shift && exec apt-get -q download "$@"' sh "$debs" $pkgs ||
    die "apt-get download failed, see $aptdir/download.log"

# extract: the packages into $tree.tmp, mbochs.c and vkms/ from the source
# tarball
# (its messages go to the log run_logged shows on failure)
extract() {
    rm -rf --one-file-system "$tree" "$tree.tmp" && mkdir -p "$tree.tmp" || return 1
    for d in "$debs"/linux-image-*.deb "$debs"/linux-headers-*.deb "$debs"/linux-kbuild-*.deb; do
        [ -f "$d" ] || { echo "missing download: $d"; return 1; }
        dpkg -x "$d" "$tree.tmp" || { echo "dpkg -x $d failed"; return 1; }
    done
    # mbochs.c and vkms/ only: never keep the rest of the source around
    src_extract "$(ls "$debs"/linux-source-6.12_*.deb)" "$tree.tmp"
}
say "extracting into $tree"
run_logged "extracting kernel $kv" "$rig/extract.log" "" extract ||
    die "extracting the kernel packages failed, see $rig/extract.log"

# The headers Makefile includes the -common tree by absolute /usr/src path;
# point it into the extracted copy.
hmk=$tree.tmp/usr/src/linux-headers-$kv/Makefile
[ -f "$hmk" ] || die "no $hmk in linux-headers-$kv"
grep -q '^include /usr/src/' "$hmk" || die "unexpected $hmk: no 'include /usr/src/' line to fix"
sed -i "s#^include /usr/src/#include $tree/usr/src/#" "$hmk"
[ -f "$tree.tmp/boot/vmlinuz-$kv" ] || die "no boot/vmlinuz-$kv in linux-image-$kv"
[ -d "$tree.tmp/lib/modules/$kv/kernel" ] || die "no lib/modules/$kv in linux-image-$kv"

mv "$tree.tmp" "$tree"
touch "$tree/.complete"
rm -f "$debs"/*.deb
for old in "$rig"/k612-*; do
    [ -d "$old" ] && [ "$old" != "$tree" ] || continue
    say "removing old kernel tree $old"
    rm -rf --one-file-system "$old"
done
say "kernel $kv ready in $(( $(date +%s) - t0 )) s"
emit "$tree"
