#!/bin/sh
# clean-root.sh [PACKAGE...]: a Debian trixie root as a user's machine has
# it (debootstrap minbase, apt sources from this machine's mirror, apt
# lists fetched), never the build root. Prints its path. With packages,
# prints a root derived from the clean one with them installed (cached,
# keyed by the list), e.g. lintian for `make deb` or libvirt for
# check-libvirt. Callers that install into a root work on a copy
# (copy_root in lib.sh), so the cached ones stay as made.
#
# Cached in $CACHE/clean-trixie-<key>[-<pkgkey>]; downloaded debs are kept
# in $CACHE/apt-archives and shared by every root (apt_in_root in lib.sh).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

suite=trixie
key=$(hash_of "$here/clean-root.sh")
base=$CACHE/clean-$suite-$key

[ "$(id -u)" = 0 ] || die "making a clean root needs root (debootstrap, chroot): run make as root"
if ! [ -f "$base/.complete" ]; then
    command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
    mirror=$(debian_mirror) || die "no Debian mirror found in /etc/apt/sources.list.d/ or /etc/apt/sources.list"
    for old in "$CACHE"/clean-$suite-*; do
        [ -d "$old" ] && [ "${old#"$base"}" = "$old" ] || continue
        say "removing stale clean root $old"
        rm -rf --one-file-system "$old"
    done
    rm -rf --one-file-system "$base"
    mkdir -p "$CACHE"
    say "debootstrap $suite (minbase) from $mirror into $base"
    run_logged "debootstrap of the clean $suite root" "$CACHE/clean-debootstrap.log" "about 1 minute" \
        debootstrap --variant=minbase "$suite" "$base" "$mirror" ||
        die "debootstrap failed, see $CACHE/clean-debootstrap.log"
    echo "deb $mirror $suite main" > "$base/etc/apt/sources.list"
    # no daemons started by package scripts inside a chroot
    printf '#!/bin/sh\nexit 101\n' > "$base/usr/sbin/policy-rc.d"
    chmod +x "$base/usr/sbin/policy-rc.d"
    apt_in_root "$base" "$CACHE/clean-apt.log" update ||
        die "apt-get update in the clean root failed, see $CACHE/clean-apt.log"
    touch "$base/.complete"
fi
[ $# -gt 0 ] || { echo "$base"; exit 0; }

pkgkey=$(printf '%s\n' "$@" | sort | hash_of -)
derived=$base-$pkgkey
if ! [ -f "$derived/.complete" ]; then
    rm -rf --one-file-system "$derived"
    copy_root "$base" "$derived"
    say "installing $* into a copy of the clean root"
    apt_in_root "$derived" "$CACHE/clean-apt.log" install "$@" ||
        die "apt-get install $* failed, see $CACHE/clean-apt.log"
    touch "$derived/.complete"
fi
echo "$derived"
