#!/bin/sh
# build-root.sh: make (or reuse) the Debian trixie build root.
# Prints the root's path on stdout. Cache key: the package list and this
# script; a changed input gives a new root. Old roots are removed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

suite=trixie
key=$(hash_of "$here/root-packages.txt" "$here/build-root.sh")
root=$CACHE/root-$suite-$key

if [ -f "$root/.complete" ]; then
    echo "$root"
    exit 0
fi

[ "$(id -u)" = 0 ] || die "making the build root needs root (debootstrap, chroot): run make as root"
command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
mirror=$(debian_mirror) || die "no Debian mirror found in /etc/apt/sources.list.d/ or /etc/apt/sources.list"
mkdir -p "$CACHE"
for old in "$CACHE"/root-$suite-*; do
    [ -d "$old" ] && [ "$old" != "$root" ] || continue
    say "removing stale root $old"
    rm -rf --one-file-system "$old"
done
rm -rf --one-file-system "$root"

say "debootstrap $suite from $mirror into $root (about 1 minute)"
t0=$(date +%s)
run_logged "debootstrap $suite" "$CACHE/debootstrap.log" "about 1 minute" \
    debootstrap --variant=minbase "$suite" "$root" "$mirror" ||
    die "debootstrap failed, see $CACHE/debootstrap.log"

cat > "$root/etc/apt/sources.list" <<EOS
deb $mirror $suite main
deb-src $mirror $suite main
deb-src $mirror sid main
EOS
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
# the sid index may be expired on a snapshot mirror
echo 'Acquire::Check-Valid-Until "false";' > "$root/etc/apt/apt.conf.d/99no-valid-until"

pkgs=$(grep -v '^#' "$here/root-packages.txt" | tr '\n' ' ')
say "installing build dependencies (about 2 minutes)"
run_logged "installing build dependencies in the root" "$CACHE/root-apt.log" "about 2 minutes" \
    "$here/inroot.sh" "$root" sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $pkgs && apt-get clean" ||
    die "apt-get in the root failed, see $CACHE/root-apt.log"
mkdir -p "$root/ccache" "$root/src"
touch "$root/.complete"
say "root ready in $(( $(date +%s) - t0 )) s"
echo "$root"
