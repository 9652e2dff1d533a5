#!/bin/sh
# check-deb.sh DEB: the package as a user gets it. In a fresh copy of a
# clean Debian trixie root (scripts/clean-root.sh; never the build root):
#   apt-get install ./DEB          dependencies resolved from Debian alone
#   --version                      our tag
#   -device vfio-pci,help          our properties
#   -display help                  gtk, spice-app, egl-headless built in
#   -machine none with -vnc, qom   starts, the firmware search path is Debian's
#   Debian's qemu-system-x86 next to it: both installed, both run
#   dpkg --purge                   every file of ours gone, Debian's QEMU still runs
# Prints one "ok"/"not ok" line per check and "deb: N passed, M failed";
# logs in LOGDIR (the package's folder by default).
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
SCRIPTS=$repo/scripts
. "$repo/scripts/lib.sh"
deb=${1:?usage: check-deb.sh DEB [LOGDIR]}
logdir=${2:-$(dirname "$deb")}
[ -f "$deb" ] || die "$deb: no such package (make deb)"
pkg=qemu-system-x86-vfio-dmabuf
bin=/usr/bin/qemu-system-x86_64-vfio-dmabuf
ours=$(sed -n "s/^ *version: '\\(.*\\)',/\\1/p" "$repo/meson.build")

base=$("$repo/scripts/clean-root.sh")
root=$(mktemp -d /tmp/check-deb.XXXXXX)
trap 'rm -rf --one-file-system "$root"' EXIT INT TERM
copy_root "$base" "$root"
log=$logdir/check-deb.log
: > "$log"
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
nok() { fail=$((fail + 1)); echo "not ok - $*"; }
inr() { "$SCRIPTS/inroot.sh" "$root" "$@"; }
check() { # check NAME CMD...: CMD's status decides
    what=$1; shift
    if "$@" >> "$log" 2>&1; then ok "$what"; else nok "$what (log $log)"; fi
}

cp "$deb" "$root/tmp/"
name=${deb##*/}
# as a user installs it: with its Recommends (EGL and Mesa for gl=on)
APT_RECOMMENDS=1
check "apt-get install ./$name in a clean trixie root" \
    apt_in_root "$root" "$logdir/check-deb-apt.log" install "/tmp/$name"
v=$(inr $bin --version 2>&1 | head -n 1 || true)
case $v in
    *"(vfio-display-dmabuf-$ours)"*) ok "--version: $v" ;;
    *) nok "--version says '$v', not (vfio-display-dmabuf-$ours)" ;;
esac
props=$(inr $bin -device vfio-pci,help 2>&1 || true)
missing=""
for p in x-display-refresh-min-ms x-display-refresh-max-ms x-display-cache-keep \
         x-display-gl x-display-event display; do
    printf '%s\n' "$props" | grep -q "^ *$p=" || missing="$missing $p"
done
if [ -z "$missing" ]; then ok "-device vfio-pci,help lists our properties"
else nok "-device vfio-pci,help lacks:$missing"; fi
disp=$(inr $bin -display help 2>&1 || true)
missing=""
for d in gtk egl-headless spice-app none; do
    printf '%s\n' "$disp" | grep -qx "$d" || missing="$missing $d"
done
if [ -z "$missing" ]; then ok "-display help: gtk, egl-headless, spice-app built in"
else nok "-display help lacks:$missing"; fi
# a machine with a VNC display starts with Debian's firmware (seabios) and
# keymaps, with no -L: the package's paths are right
check "a pc machine with -vnc starts and quits (firmware and keymaps found)" \
    inr sh -c "printf '%s\n' '{\"execute\":\"qmp_capabilities\"}' \
        '{\"execute\":\"query-vnc\"}' '{\"execute\":\"quit\"}' |
        timeout 60 $bin -machine pc -accel tcg -m 32 -nodefaults \
        -vnc 127.0.0.1:77 -k de -S -qmp stdio | tee /tmp/qmp.out |
        grep -q '\"service\": \"5977\"'"
check "man page installed" test -s "$root/usr/share/man/man1/qemu-system-x86_64-vfio-dmabuf.1.gz"
APT_RECOMMENDS=0
check "Debian's qemu-system-x86 installs next to it" \
    apt_in_root "$root" "$logdir/check-deb-apt2.log" install qemu-system-x86
dv=$(inr qemu-system-x86_64 --version 2>&1 | head -n 1 || true)
case $dv in
    *Debian*) ok "both installed: Debian's says '$dv'" ;;
    *) nok "Debian's qemu-system-x86_64 says '$dv'" ;;
esac
inr dpkg -L $pkg > "$logdir/check-deb.files"
check "dpkg --purge $pkg" inr dpkg --purge $pkg
left=""
while read -r f; do
    [ -f "$root$f" ] && left="$left $f"
done < "$logdir/check-deb.files"
if [ -z "$left" ]; then ok "no file of the package left after purge ($(wc -l < "$logdir/check-deb.files") paths)"
else nok "left after purge:$left"; fi
check "Debian's qemu-system-x86_64 still runs" inr qemu-system-x86_64 --version
echo "deb: $pass passed, $fail failed"
[ "$fail" = 0 ]
