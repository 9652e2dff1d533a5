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

# hash_of FILE...: a short content hash of the given files/strings.
hash_of() {
    cat "$@" | sha256sum | cut -c1-16
}
