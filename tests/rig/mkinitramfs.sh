#!/bin/sh
# mkinitramfs.sh: build the rig initramfs: static busybox, /init
# (guest/init), the guest helpers, the kernel modules the rig needs
# (decompressed, in dependency order) and any extra modules and files.
#
# Usage: tests/rig/mkinitramfs.sh [-o OUT] [--no-vgem] [--ko FILE]...
#                                 [--bin FILE]... [--file SRC:DEST]...
#   -o OUT        output (default build/rig/initrd.cpio.gz); OUT.key holds
#                 the input hash: an unchanged input is not rebuilt
#   --no-vgem     leave out vgem and its drm dependencies
#   --ko FILE     extra module (e.g. mbochs.ko), loaded after its
#                 dependencies; those are taken from the rig kernel
#   --bin FILE    static program, installed as /bin/<basename>
#   --file S:D    any file S installed at D
# Prints INITRD=<path> on stdout.
#
# Modules always loaded: vfio vfio_iommu_type1 mdev, the 9p stack
# (netfs 9pnet 9pnet_virtio 9p), udmabuf when it is a module, vgem; their
# dependencies come from the modules' own depends= field.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../scripts/lib.sh"
repo=$(cd "$here/../.." && pwd)

out=$repo/build/rig/initrd.cpio.gz
vgem=1
extras=        # newline-separated "kind<TAB>src<TAB>dest"
tab=$(printf '\t')
add_extra() {
    [ -f "$2" ] || die "$1: no such file: $2"
    extras="$extras$1$tab$(cd "$(dirname "$2")" && pwd)/$(basename "$2")$tab$3
"
}
while [ $# -gt 0 ]; do
    case $1 in
    -o) [ $# -ge 2 ] || die "-o needs a path"; out=$2; shift 2 ;;
    --no-vgem) vgem=0; shift ;;
    --ko) [ $# -ge 2 ] || die "--ko needs a file"; add_extra ko "$2" ""; shift 2 ;;
    --bin) [ $# -ge 2 ] || die "--bin needs a file"; add_extra bin "$2" "/bin/$(basename "$2")"; shift 2 ;;
    --file)
        [ $# -ge 2 ] || die "--file needs SRC:DEST"
        case $2 in *:/*) ;; *) die "--file wants SRC:/ABSOLUTE/DEST, got $2" ;; esac
        add_extra file "${2%:*}" "${2##*:}"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
done

kinfo=$("$here/fetch-kernel.sh") || die "fetch-kernel.sh failed"
eval "$kinfo"
bb=$(command -v busybox || true)
[ -n "$bb" ] || die "busybox is missing (apt-get install busybox-static)"
LC_ALL=C readelf -l "$bb" 2>/dev/null | grep -q 'program interpreter' &&
    die "$bb is dynamically linked; install busybox-static"
command -v cpio >/dev/null || die "cpio is missing (apt-get install cpio)"

mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")

# input hash
manifest=$(mktemp)
trap 'rm -f "$manifest"' EXIT
{
    echo "kver=$KVER vgem=$vgem"
    sha256sum "$0" "$here"/guest/* "$bb" | cut -c1-64
    printf '%s' "$extras" | while IFS="$tab" read -r kind src dest; do
        [ -n "$kind" ] || continue
        echo "$kind $dest $(sha256sum < "$src" | cut -c1-64)"
    done
} > "$manifest"
key=$(hash_of "$manifest")
if [ -f "$out" ] && [ "$(cat "$out.key" 2>/dev/null)" = "$key" ]; then
    echo "INITRD=$out"
    exit 0
fi

st=$(mktemp -d "${out%/*}/.initrd.XXXXXX")
trap 'rm -f "$manifest"; rm -rf --one-file-system "$st"' EXIT
root=$st/root
mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys" "$root/tmp" "$root/run" \
    "$root/etc/rig/cases" "$root/lib/modules/rig" "$root/results" "$root/sysroot"

# busybox with one link per applet
cp "$bb" "$root/bin/busybox"
for a in $("$bb" --list); do
    [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"
done
cp "$here/guest/init" "$root/init"
cp "$here/guest/rig-mdev" "$here/guest/rig-chroot" "$root/bin/"
chmod 755 "$root/init" "$root/bin/rig-mdev" "$root/bin/rig-chroot"

# modinfo FIELD of a (possibly compressed) module
modfield() {
    case $1 in
    *.xz) xz -dc "$1" ;;
    *.zst) zstd -qdc "$1" ;;
    *.gz) gzip -dc "$1" ;;
    *) cat "$1" ;;
    esac | tr '\0' '\n' | LC_ALL=C sed -n "s/^$2=//p" | head -n 1
}

# name -> file index: extra modules first, then the kernel's
: > "$st/index"
printf '%s' "$extras" | while IFS="$tab" read -r kind src dest; do
    [ "$kind" = ko ] || continue
    n=$(modfield "$src" name)
    [ -n "$n" ] || die "$src has no name= in its .modinfo: not a kernel module?"
    vm=$(modfield "$src" vermagic)
    [ "${vm%% *}" = "$KVER" ] || die "$src was built for '${vm%% *}', the rig kernel is $KVER: rebuild it against KDIR=$KDIR"
    echo "$(echo "$n" | tr - _) $src" >> "$st/index"
done
find "$MODDIR/kernel" -name '*.ko*' |
    awk '{ n = $0; sub(/.*\//, "", n); sub(/\.ko.*/, "", n); gsub(/-/, "_", n); print n, $0 }' >> "$st/index"
tr '\0' '\n' < "$MODDIR/modules.builtin.modinfo" | LC_ALL=C sed -n 's/^\([^.=]*\)\..*/\1/p' |
    tr - _ | sort -u > "$st/builtin"
: > "$st/done"
: > "$st/order"

is_builtin() { grep -qx "$1" "$st/builtin"; }
find_mod() { awk -v m="$1" '$1 == m { print $2; exit }' "$st/index"; }

# resolve NAME...: append NAME and its dependencies, dependencies first
resolve() {
    for m in "$@"; do
        m=$(echo "$m" | tr - _)
        grep -qx "$m" "$st/done" && continue
        if is_builtin "$m"; then
            echo "$m" >> "$st/done"
            continue
        fi
        f=$(find_mod "$m")
        [ -n "$f" ] || { echo "module $m not found in $MODDIR" > "$st/error"; exit 1; }
        deps=$(modfield "$f" depends | tr , ' ')
        # shellcheck disable=SC2086
        ( resolve $deps ) || exit 1
        echo "$m" >> "$st/done"
        echo "$m $f" >> "$st/order"
    done
}

want="vfio vfio_iommu_type1 mdev netfs 9pnet 9pnet_virtio 9p"
if [ -n "$(find_mod udmabuf)" ]; then
    want="$want udmabuf"
elif ! is_builtin udmabuf; then
    say "note: the rig kernel has no udmabuf"
fi
[ $vgem = 1 ] && want="$want vgem"
# the NIC of run-vm.sh --fwd (harmless without one)
[ -n "$(find_mod virtio_net)" ] && want="$want virtio_net"
want="$want $(printf '%s' "$extras" | while IFS="$tab" read -r kind src dest; do
    [ "$kind" = ko ] && modfield "$src" name; done | tr '\n' ' ')"
# shellcheck disable=SC2086
( resolve $want ) || die "$(cat "$st/error" 2>/dev/null || echo "module resolution failed")"

: > "$root/etc/rig/modules"
while read -r m f; do
    case $f in
    *.xz) xz -dc "$f" ;;
    *.zst) zstd -qdc "$f" ;;
    *.gz) gzip -dc "$f" ;;
    *) cat "$f" ;;
    esac > "$root/lib/modules/rig/$m.ko" || die "cannot decompress $f"
    echo "$m $m.ko" >> "$root/etc/rig/modules"
done < "$st/order"

# extra files
printf '%s' "$extras" | while IFS="$tab" read -r kind src dest; do
    case $kind in
    bin)
        LC_ALL=C readelf -l "$src" 2>/dev/null | grep -q 'program interpreter' &&
            die "$src is dynamically linked: build it with -static, or run it from the root with rig-chroot (run-vm.sh --root)"
        ;;
    file|'') ;;
    *) continue ;;
    esac
    [ -n "$kind" ] || continue
    mkdir -p "$root$(dirname "$dest")"
    cp "$src" "$root$dest"
done

(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -6 > "$out.tmp" ||
    die "cpio/gzip failed"
mv "$out.tmp" "$out"
echo "$key" > "$out.key"
say "initramfs $(du -k "$out" | cut -f1) KiB, modules: $(cut -d' ' -f1 "$root/etc/rig/modules" | tr '\n' ' ')"
echo "INITRD=$out"
