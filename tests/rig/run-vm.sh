#!/bin/sh
# run-vm.sh: boot the rig VM (Debian bookworm 6.12 kernel under TCG, busybox
# initramfs), run a test set in it and judge the result.
#
# Usage:
#   tests/rig/run-vm.sh [OPTIONS] NAME [--] CMD [ARGS...]   one case, named NAME
#   tests/rig/run-vm.sh [OPTIONS] --cases FILE NAME         cases from FILE
# CMD runs in the guest (PATH=/bin: busybox, rig-mdev, rig-chroot and the
# --bin programs). Argument words @MDEV@ and @MDEV:PARENT@ are replaced in
# the guest by the uuid of the first mdev / of the mdev on PARENT.
# A case passes on exit 0, is skipped on exit 77, fails otherwise. Every
# case after the first gets freshly recreated mdevs (same uuids).
#
# Options:
#   -b, --build DIR    build/results dir (default build/rig)
#   --ko FILE          extra kernel module, loaded at boot after its deps
#   --mbochs           build the stock mbochs.ko (build-mbochs.sh) and add it
#   --vkms             build the kernel's vkms.ko (vkms/build.sh), add it
#                      (after drm, drm_kms_helper, drm_shmem_helper) and load
#                      it with enable_cursor=1 enable_writeback=1
#   --bin FILE         static program, put at /bin/<basename>
#   --file SRC:DEST    any file into the initramfs
#   --no-vgem          leave vgem/drm out
#   --mdev SPEC        mdev to create: auto (default: one per parent,
#                      mbochs-small for mbochs), none, PARENT[:TYPE]; repeatable
#   --root             share the Debian trixie root (scripts/build-root.sh)
#                      read-only at /sysroot; use `rig-chroot CMD` in the guest
#   --sysroot DIR      the same with another root (e.g. a clean root with a
#                      package installed: tests/libvirt)
#   --mem SIZE         guest memory (default 1G)
#   --timeout SECS     whole-VM limit (default 180); cases get SECS-40
#   --append ARGS      more kernel arguments (e.g. mbochs.count=64)
#   --cases FILE       lines "CASE CMD ARGS..." split like sh words (quotes
#                      work; the host expands $VARS, so single-quote guest
#                      ones), # comments
#   --fwd HOST:GUEST   user-mode network (restricted: no way out) with the
#                      host's 127.0.0.1:HOST forwarded to the guest's TCP
#                      port GUEST; the guest is 10.0.2.15 on eth0 (virtio)
#   --smp N            virtual CPUs (default 1; more use multi-threaded TCG,
#                      one host thread each)
#   --allow-warn ERE   a kernel WARNING: line matching ERE is reported,
#                      not a failure (a known kernel splat a case provokes)
#   -v, --verbose      also copy the serial console to stderr
# Outputs in the build dir: NAME.log (serial console), NAME.dmesg (guest
# dmesg), NAME.results/ (shared writable at /results in the guest).
# Fails (exit 1) if a case failed, no RIG-RESULT line was seen, the guest
# did not finish, the timeout hit, or dmesg has a BUG:, Bad page state,
# soft lockup, WARNING:, Oops, general protection fault or Kernel panic.
# The last line printed is "rig: N passed, N failed, N skipped".
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../scripts/lib.sh"
repo=$(cd "$here/../.." && pwd)

bdir=$repo/build/rig
timeout=180
mkargs=
mdevs=
root=0
sysroot=
mem=1G
append=
cases=
fwd=
smp=1
allow_warn=
verbose=0
addmk() { mkargs="$mkargs$1
$2
"; }
while [ $# -gt 0 ]; do
    case $1 in
    -b|--build) bdir=$2; shift 2 ;;
    --ko|--bin|--file) [ $# -ge 2 ] || die "$1 needs an argument"; addmk "$1" "$2"; shift 2 ;;
    --mbochs)
        ko=$("$here/build-mbochs.sh" "$bdir") || die "build-mbochs.sh failed"
        addmk --ko "${ko#MBOCHS_KO=}"; shift ;;
    --vkms)
        ko=$("$here/vkms/build.sh" "$bdir") || die "vkms/build.sh failed"
        addmk --ko "${ko#VKMS_KO=}"
        append="$append vkms.enable_cursor=1 vkms.enable_writeback=1"; shift ;;
    --no-vgem) mkargs="$mkargs--no-vgem
"; shift ;;
    --mdev) mdevs="$mdevs${mdevs:+,}$2"; shift 2 ;;
    --root) root=1; shift ;;
    --sysroot) [ -d "${2:-}/usr" ] || die "--sysroot: not a root: ${2:-}"; root=1; sysroot=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --append) append="$append $2"; shift 2 ;;
    --cases) [ -r "${2:-}" ] || die "--cases: no such file: ${2:-}"; cases=$2; shift 2 ;;
    --fwd)
        case ${2:-} in *[!0-9:]*|''|*:*:*) die "--fwd wants HOSTPORT:GUESTPORT" ;; esac
        fwd=$2; shift 2 ;;
    --allow-warn) allow_warn=$2; shift 2 ;;
    --smp)
        case ${2:-} in *[!0-9]*|''|0) die "--smp wants a number of CPUs" ;; esac
        smp=$2; shift 2 ;;
    -v|--verbose) verbose=1; shift ;;
    -h|--help) sed -n '2,41p' "$0"; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
    esac
done
[ $# -ge 1 ] || die "usage: run-vm.sh [OPTIONS] NAME [--] CMD [ARGS...] (see --help)"
name=$1
shift
[ "${1:-}" = -- ] && shift
case $name in *[!A-Za-z0-9._-]*|'') die "test set name '$name' must be [A-Za-z0-9._-]" ;; esac
if [ -n "$cases" ]; then
    [ $# -eq 0 ] || die "give either --cases FILE or a command, not both"
else
    [ $# -ge 1 ] || die "no command to run for $name"
fi
case $timeout in ''|*[!0-9]*) die "--timeout wants seconds, got $timeout" ;; esac
ctimeout=$((timeout - 40))
[ $ctimeout -ge 10 ] || ctimeout=10
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is missing (apt-get install qemu-system-x86)"

mkdir -p "$bdir"
bdir=$(cd "$bdir" && pwd)
log=$bdir/$name.log
dmesg=$bdir/$name.dmesg
res=$bdir/$name.results

kinfo=$("$here/fetch-kernel.sh") || die "fetch-kernel.sh failed"
eval "$kinfo"

# base initramfs (cached by input hash)
ifs_save=$IFS
IFS='
'
# shellcheck disable=SC2086
initrd=$("$here/mkinitramfs.sh" -o "$bdir/$name.base.cpio.gz" $mkargs) || die "mkinitramfs.sh failed"
IFS=$ifs_save
initrd=${initrd#INITRD=}

# the cases, as a second cpio appended to the first
st=$(mktemp -d "$bdir/.cases.XXXXXX")
trap 'rm -rf --one-file-system "$st"' EXIT
mkdir -p "$st/etc/rig/cases"
n=0
addcase() {    # NAME ARG...
    n=$((n + 1))
    f=$st/etc/rig/cases/$(printf '%03d' $n)
    for a in "$@"; do
        case $a in *'
'*) die "case $1: arguments cannot contain newlines" ;; esac
        printf '%s\n' "$a"
    done > "$f"
}
if [ -n "$cases" ]; then
    while read -r line; do
        case $line in ''|'#'*) continue ;; esac
        eval "set -- $line" || die "$cases: cannot parse: $line"
        addcase "$@"
        [ "$(wc -l < "$f")" -ge 2 ] || die "$cases: case '$line' has no command"
    done < "$cases"
    [ $n -gt 0 ] || die "$cases has no cases"
else
    addcase "$name" "$@"
fi
(cd "$st" && find etc | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip > "$st/cases.cpio.gz"
cat "$initrd" "$st/cases.cpio.gz" > "$bdir/$name.initrd"

rm -rf --one-file-system "$res"
mkdir -p "$res"
ninep=rigout:/results:rw
set -- -virtfs "local,path=$res,mount_tag=rigout,security_model=none,multidevs=remap"
if [ $root = 1 ]; then
    [ -n "$sysroot" ] || sysroot=$("$repo/scripts/build-root.sh") || die "scripts/build-root.sh failed"
    set -- "$@" -virtfs "local,path=$sysroot,mount_tag=rigroot,security_model=none,readonly=on,multidevs=remap"
    ninep="$ninep,rigroot:/sysroot:ro"
fi

if [ -n "$fwd" ]; then
    set -- "$@" -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${fwd%%:*}-:${fwd#*:}" \
        -device virtio-net-pci,netdev=n0
    append="$append rig.net=1"
fi

cmdline="console=ttyS0 quiet loglevel=4 panic=-1 softlockup_panic=1 mitigations=off"
cmdline="$cmdline rig.test=$name rig.mdev=${mdevs:-auto} rig.9p=$ninep rig.case_timeout=$ctimeout$append"

say "booting $KVER under TCG for '$name' (limit ${timeout} s, log $log)"
t0=$(date +%s.%N)
rc=0
if [ $verbose = 1 ]; then
    { timeout -k 5 "$timeout" qemu-system-x86_64 -accel tcg -m "$mem" -smp "$smp" \
        -nodefaults -nographic -no-reboot -serial stdio -monitor none \
        -kernel "$VMLINUZ" -initrd "$bdir/$name.initrd" -append "$cmdline" "$@" \
        < /dev/null 2>&1 || echo "RIG-HOST-EXIT: $?"; } | tee "$log" >&2
    rcl=$(sed -n 's/^RIG-HOST-EXIT: //p' "$log")
    rc=${rcl:-0}
else
    run_logged "VM '$name'" "$log" "limit ${timeout} s" \
        timeout -k 5 "$timeout" qemu-system-x86_64 -accel tcg -m "$mem" -smp "$smp" \
        -nodefaults -nographic -no-reboot -serial stdio -monitor none \
        -kernel "$VMLINUZ" -initrd "$bdir/$name.initrd" -append "$cmdline" "$@" ||
        rc=$?
fi
t1=$(date +%s.%N)
wall=$(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }")

# judge
clean=$st/log
tr -d '\r' < "$log" > "$clean"
awk '/^RIG-DMESG-END/ { p = 0 } p { print } /^RIG-DMESG-BEGIN/ { p = 1 }' "$clean" > "$dmesg"
npass=$(grep -c '^RIG-RESULT: PASS ' "$clean" || true)
nfail=$(grep -c '^RIG-RESULT: FAIL ' "$clean" || true)
nskip=$(grep -c '^RIG-RESULT: SKIP ' "$clean" || true)
problems=
grep '^RIG-RESULT: ' "$clean" | sed "s/^RIG-RESULT: /rig: $name: /" || true
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    problems="$problems; the VM hit the ${timeout} s limit"
elif [ "$rc" != 0 ]; then
    problems="$problems; qemu exited with status $rc"
fi
grep -q '^RIG-DONE: ' "$clean" || problems="$problems; the guest did not finish (no RIG-DONE line)"
[ $((npass + nfail + nskip)) -gt 0 ] || problems="$problems; no RIG-RESULT line"
scan=$dmesg
[ -s "$dmesg" ] || scan=$clean
bad=$(grep -E 'BUG:|Bad page state|soft lockup|WARNING:|Oops|general protection fault|Kernel panic' "$scan" || true)
if [ -n "$allow_warn" ] && [ -n "$bad" ]; then
    printf '%s\n' "$bad" | grep -E "WARNING:.*($allow_warn)" |
        sed "s/^/rig: $name: allowed (--allow-warn): /" || true
    bad=$(printf '%s\n' "$bad" | grep -vE "WARNING:.*($allow_warn)" || true)
fi
bad=$(printf '%s\n' "$bad" | head -n 5 | sed '/^$/d')
[ -z "$bad" ] || problems="$problems; kernel problems in the guest:
$bad"
if [ -n "$problems" ]; then
    nfail=$((nfail + 1))
    printf 'rig: %s: FAIL %s\n' "$name" "${problems#; }"
    say "see $log"
fi
echo "rig: $name: ${wall} s wall, log $log"
echo "rig: $npass passed, $nfail failed, $nskip skipped"
[ "$nfail" = 0 ]
