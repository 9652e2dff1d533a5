#!/bin/sh
# check-layering.sh: ui/ presents frames for any device and never knows
# one. Fails (and names the lines) when a file under ui/ or include/ui/
# includes a hw/ header, or when ui/meson.build or the patches compile a
# ui/ file only for a device (CONFIG_VFIO*).
set -eu
cd "$(dirname "$0")/.."
bad=0
if find ui include/ui -name '*.[ch]' -print0 | xargs -0 grep -nE \
        '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]hw/'; then
    echo "check-layering: FAIL: a ui/ file includes a hw/ header (above)"
    bad=1
fi
# a ui/ file compiled under a device's config symbol is a device's file
if grep -nE "^\+.*CONFIG_VFIO.*files\(" patches/qemu-10.2/*.patch |
        grep -E "ui/|'[a-z-]+\.c'" | grep -vE "display(-dmabuf)?(-console)?\.c" |
        grep -E "spice|ui"; then
    echo "check-layering: FAIL: a ui/ source compiled under CONFIG_VFIO* (above)"
    bad=1
fi
n=$(find ui include/ui -name '*.[ch]' | wc -l)
[ "$bad" -eq 0 ] && echo "check-layering: ok: $n ui/ files, none includes hw/"
exit "$bad"
