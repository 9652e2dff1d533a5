#!/bin/sh
# apply-overlay.sh QEMU_TREE: put this project into a QEMU 10.2 source tree.
#   1. copies our new files (only when they differ, so mtimes stay),
#   2. applies patches/qemu-10.2/*.patch unless already applied,
#   3. appends our trace events to hw/vfio/trace-events (between markers).
# Idempotent; a user's own QEMU tree works the same as Debian's.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/lib.sh"
tree=${1:?usage: apply-overlay.sh QEMU_TREE}
[ -f "$tree/hw/vfio/display.c" ] || die "$tree is not a QEMU source tree (no hw/vfio/display.c)"
ver=$(cat "$tree/VERSION" 2>/dev/null || echo unknown)
case $ver in
10.2.*) ;;
*) die "QEMU $ver in $tree: this overlay is written for QEMU 10.2.x" ;;
esac

# Files that QEMU compiles from this repo (see docs/architecture.md).
files="
include/ui/dmabuf-plane.h
ui/dmabuf-plane.c
include/hw/vfio/display-dmabuf.h
include/hw/vfio/vfio-gfx-irq.h
hw/vfio/display-dmabuf.c
hw/vfio/display-dmabuf-console.c
include/ui/dmabuf-egl.h
include/ui/dmabuf-egl-int.h
ui/dmabuf-egl-device.c
ui/dmabuf-egl.c
include/ui/dmabuf-scanout.h
ui/dmabuf-scanout.c
ui/kms.c
"
# install SRC DEST: copy only when different, so that mtimes stay
install_file() {
    mkdir -p "$(dirname "$2")"
    cmp -s "$1" "$2" || cp "$1" "$2"
}
for f in $files; do
    install_file "$top/$f" "$tree/$f"
done
# the EGL layer compiles against epoxy inside QEMU
install_file "$top/include/ui/gl-api/epoxy/dmabuf-egl-gl.h" "$tree/include/ui/dmabuf-egl-gl.h"

# the patches applied so far, one "sha256 name" line each: later patches
# touch lines of earlier ones, so a reverse dry run cannot tell
applied=$tree/.vfio-display-dmabuf-patches
touch "$applied"
for p in "$top"/patches/qemu-10.2/*.patch; do
    [ -f "$p" ] || continue
    line="$(sha256sum < "$p" | cut -c1-64) $(basename "$p")"
    grep -qxF "$line" "$applied" && continue # already applied
    patch -d "$tree" -p1 --forward -s < "$p" ||
        die "patch $(basename "$p") does not apply to $tree (QEMU $ver); use a pristine 10.2 tree"
    echo "$line" >> "$applied"
done

# trace events: one block per directory between markers, replaced when
# ours changes
add_trace_events() { # add_trace_events DIR
    te=$tree/$1/trace-events
    begin="# >>> vfio-display-dmabuf overlay"
    end="# <<< vfio-display-dmabuf overlay"
    want=$(printf '%s\n' "$begin"; cat "$top/$1/trace-events"; printf '%s\n' "$end")
    have=$(sed -n "/^$begin/,/^$end/p" "$te")
    if [ "$want" != "$have" ]; then
        sed -i "/^$begin/,/^$end/d" "$te"
        printf '%s\n' "$want" >> "$te"
    fi
}
add_trace_events hw/vfio
add_trace_events ui
say "overlay applied to $tree (QEMU $ver)"
