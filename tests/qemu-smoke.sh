#!/bin/sh
# qemu-smoke.sh QEMU: checks that the overlay QEMU is the one we mean to
# ship: QEMU 10.2.x with our version tag, vfio-pci's display property, the
# engine's trace events, and that display=on without a device fails with a
# clear error instead of crashing. TAP output.
set -u
q=${1:?usage: qemu-smoke.sh QEMU}
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && printf '#   %s\n' "$2"; }
check() { # check NAME COMMAND...: "ok" when COMMAND succeeds
    name=$1; shift
    if out=$("$@" 2>&1); then ok "$name"; else notok "$name" "$(printf '%s' "$out" | tail -n 3)"; fi
}

ver=$("$q" --version | head -n 1)
echo "# $ver"
case $ver in
*"version 10.2."*"vfio-display-dmabuf-"*) ok "QEMU 10.2.x with the overlay's version tag" ;;
*) notok "QEMU 10.2.x with the overlay's version tag" "$ver" ;;
esac
check "vfio-pci has the display property" sh -c "'$q' -device vfio-pci,help | grep -q 'display=<OnOffAuto>'"
for p in x-display-refresh-min-ms x-display-refresh-max-ms x-display-cache-keep; do
    check "vfio-pci has the $p property" sh -c "'$q' -device vfio-pci,help | grep -q '$p=<uint32>'"
done
for ev in vfio_display_dmabuf_scanout vfio_display_dmabuf_refused vfio_display_dmabuf_get vfio_display_dmabuf_console_init; do
    check "trace event $ev is built in" sh -c "'$q' -trace help | grep -qx '$ev'"
done
check "display=on with a missing device fails cleanly" sh -c \
    "out=\$('$q' -machine q35 -accel qtest -display none -nodefaults \
        -device vfio-pci,sysfsdev=/sys/bus/mdev/devices/no-such-mdev,display=on 2>&1); \
     rc=\$?; echo \"\$out\"; [ \$rc -eq 1 ] && echo \"\$out\" | grep -q 'no-such-mdev'"
check "qtest accel runs the machine" sh -c \
    "printf 'readl 0xfee00030\n' | timeout 10 '$q' -machine q35 -accel qtest -qtest stdio -display none -nodefaults > qtest.out 2>&1; grep -q '^OK 0x' qtest.out; rc=\$?; rm -f qtest.out; exit \$rc"
echo "1..$n"
if [ $fail -ne 0 ]; then
    echo "# qemu-smoke: $fail of $n failed"
    exit 1
fi
echo "# qemu-smoke: all $n passed"
