#!/bin/sh
# setup-host.sh: make sure the Debian packages in scripts/host-packages.txt
# are installed. The make targets and .ci/run call it first; with
# everything present it only asks dpkg (a fraction of a second).
# As root it installs what is missing (apt-get update, then apt-get install
# --no-install-recommends; log in $CACHE/host-apt.log). As another user it
# prints the command to run and exits with status 1.
#
# Usage: scripts/setup-host.sh [--check]
#   --check  only report what is missing (exit 1 if anything is), even as root
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

check_only=0
case ${1:-} in
'') ;;
--check) check_only=1 ;;
*) die "usage: setup-host.sh [--check]" ;;
esac

command -v dpkg-query >/dev/null ||
    die "no dpkg-query: this is not a Debian system; install the equivalents of $here/host-packages.txt by hand"

pkgs=$(sed 's/#.*//' "$here/host-packages.txt" | tr -s ' \t\n' '\n' | grep . || true)
[ -n "$pkgs" ] || die "$here/host-packages.txt lists no packages"

# one dpkg-query for all of them; unknown packages only make it complain
# shellcheck disable=SC2086
installed=$(dpkg-query -W -f='${Package} ${Status}\n' $pkgs 2>/dev/null || true)
missing=$(printf '%s\n' "$pkgs" | awk -v installed="$installed" '
    BEGIN {
        n = split(installed, l, "\n")
        for (i = 1; i <= n; i++) {
            split(l[i], f, " ")
            if (l[i] ~ / installed$/) ok[f[1]] = 1
        }
    }
    !($1 in ok) { printf "%s%s", sep, $1; sep = " " }')
[ -n "$missing" ] || exit 0

install="install -y --no-install-recommends $missing"
if [ "$check_only" = 1 ]; then
    say "missing host packages: $missing"
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    say "missing host packages: $missing"
    say "install them with:"
    printf '\n    sudo apt-get update && sudo apt-get %s\n\n' "$install" >&2
    say "then run make again, as root (debootstrap, chroot and the test VM need it)"
    exit 1
fi

say "installing missing host packages: $missing"
log=$CACHE/host-apt.log
ulog=$CACHE/host-apt-update.log
export DEBIAN_FRONTEND=noninteractive
# wait for another apt (e.g. unattended-upgrades) rather than fail at once
lock="-o DPkg::Lock::Timeout=300"
# shellcheck disable=SC2086
run_logged "apt-get update" "$ulog" "" apt-get $lock -q update ||
    die "apt-get update failed, see $ulog"
# shellcheck disable=SC2086
run_logged "apt-get install" "$log" "about 1-3 minutes" \
    apt-get $lock -q $install ||
    die "installing the host packages failed, see $log"
say "host packages installed"
