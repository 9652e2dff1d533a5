# Shared helpers for the build scripts. Source it; POSIX sh.
# shellcheck shell=sh

die() { printf '%s: error: %s\n' "${0##*/}" "$*" >&2; exit 1; }
say() { printf '[%s] %s\n' "${0##*/}" "$*" >&2; }

: "${CACHE:=${XDG_CACHE_HOME:-$HOME/.cache}/vfio-display-dmabuf}"
export CACHE

# debian_mirror [security]: the Debian mirror URI from this machine's own
# apt sources (deb822 *.sources or one-line *.list). Never hard-coded.
debian_mirror() {
    want=${1:-main}
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v want="$want" '
            BEGIN { RS = ""; FS = "\n" }
            {
                uri = ""; suites = ""; en = 1
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/)    { uri = $i; sub(/^URIs:[ \t]*/, "", uri); sub(/[ \t].*/, "", uri) }
                    if ($i ~ /^Suites:/)  { suites = $i }
                    if ($i ~ /^Enabled:[ \t]*no/) { en = 0 }
                }
                if (!en || uri == "") next
                sec = (suites ~ /-security/)
                if ((want == "security") == sec) { print uri; exit }
            }' "$f"
    done | head -n 1 | grep . && return 0
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk -v want="$want" '$1 == "deb" {
                sec = ($3 ~ /-security/)
                if ((want == "security") == sec && $2 ~ /debian/) { print $2; exit }
            }' "$f"
    done | head -n 1 | grep . && return 0
    return 1
}

# build_dir DEFAULT [ARGS...]: for scripts whose arguments are
# "[BUILD_DIR] [-- MORE...]". Sets bdir to BUILD_DIR (DEFAULT when it is
# absent or empty), created and made absolute, and bdir_args to how many of
# ARGS come before MORE, for the caller to shift:
#     build_dir "$repo/build/rig" "$@"; shift "$bdir_args"
build_dir() {
    bdir=$1
    shift
    bdir_args=0
    if [ $# -gt 0 ] && [ "$1" != -- ]; then
        [ -n "$1" ] && bdir=$1
        shift
        bdir_args=1
    fi
    if [ "${1:-}" = -- ]; then
        bdir_args=$((bdir_args + 1))
    fi
    mkdir -p "$bdir" || die "cannot create $bdir"
    bdir=$(cd "$bdir" && pwd)
}

# hash_of FILE...: a short content hash of the given files/strings.
hash_of() {
    cat "$@" | sha256sum | cut -c1-16
}
