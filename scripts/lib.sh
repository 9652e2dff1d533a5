# Shared helpers for the build scripts. Source it; POSIX sh.
# shellcheck shell=sh

die() { printf '%s: error: %s\n' "${0##*/}" "$*" >&2; exit 1; }
say() { printf '[%s] %s\n' "${0##*/}" "$*" >&2; }

: "${CACHE:=${XDG_CACHE_HOME:-$HOME/.cache}/vfio-display-dmabuf}"
export CACHE
# this folder (a script elsewhere sets SCRIPTS before sourcing lib.sh)
: "${SCRIPTS:=$(cd "$(dirname "$0")" && pwd)}"

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

# duration SECONDS: 1m40s, or 40s under a minute.
duration() {
    if [ "$1" -ge 60 ]; then
        printf '%dm%02ds' $(($1 / 60)) $(($1 % 60))
    else
        printf '%ds' "$1"
    fi
}

# progress_of LOG: what the end of LOG says about progress: ninja's last
# [N/M], or the rig VM's current case; nothing when it says neither.
progress_of() {
    tail -n 200 "$1" 2>/dev/null | tr -d '\r' | awk '
        /^\[[0-9]+\/[0-9]+\] / { p = $1 }
        /^RIG-CASE-BEGIN: / { c = $2; sub(/:$/, "", c); p = "case " c }
        END { if (p != "") print p }'
}

# run_logged WHAT LOG ESTIMATE CMD...: run CMD with stdout and stderr into
# LOG (truncated). Every 10 s a line on stderr:
#   [build-qemu.sh] building QEMU: 1m40s elapsed, [812/1830] (cold build
#   takes about 5 min; log: ...)
# ESTIMATE is free text ("" for none). On failure prints the last 20 lines
# of LOG and its path; returns CMD's status. Nothing goes to stdout. Use it
# as `run_logged ... || die "..."`: set -e does not apply inside.
run_logged() {
    rl_what=$1 rl_log=$2 rl_est=$3
    shift 3
    mkdir -p "$(dirname "$rl_log")" || return 1
    rl_t0=$(date +%s)
    # the ticker: a background subshell, killed when CMD ends; it takes its
    # sleep along (which would otherwise hold inherited descriptors, such as
    # a caller's flock, for up to 10 s). It also stops when this shell is
    # gone: async lists ignore SIGINT, so Ctrl-C alone would not stop it.
    (
        rl_sp=
        trap 'kill "$rl_sp" 2>/dev/null; exit 0' TERM
        while :; do
            sleep 10 >/dev/null 2>&1 &
            rl_sp=$!
            wait "$rl_sp" || exit 0
            kill -0 $$ 2>/dev/null || exit 0
            rl_p=$(progress_of "$rl_log")
            say "$rl_what: $(duration $(( $(date +%s) - rl_t0 ))) elapsed${rl_p:+, $rl_p} (${rl_est:+$rl_est; }log: $rl_log)"
        done
    ) &
    rl_tick=$!
    rl_rc=0
    "$@" > "$rl_log" 2>&1 </dev/null || rl_rc=$?
    kill "$rl_tick" 2>/dev/null || true
    wait "$rl_tick" 2>/dev/null || true
    if [ "$rl_rc" -ne 0 ]; then
        say "$rl_what failed (status $rl_rc) after $(duration $(( $(date +%s) - rl_t0 ))); last 20 lines of $rl_log:"
        tail -n 20 "$rl_log" | sed 's/^/    /' >&2
    fi
    return "$rl_rc"
}

# copy_root FROM TO: a copy of a root file system (hard links are kept,
# nothing mounted inside FROM is crossed).
copy_root() {
    mkdir -p "$2" && cp -a --one-file-system "$1/." "$2/"
}

# apt_in_root ROOT LOG apt-get-ARGS...: apt-get -y in ROOT (no
# questions; no recommends unless APT_RECOMMENDS=1, as a user's apt-get
# install has them), output into LOG, with the debs kept in
# $CACHE/apt-archives for every root (a second install downloads nothing).
apt_in_root() {
    ar_root=$1 ar_log=$2
    shift 2
    ar_rec=--no-install-recommends
    [ "${APT_RECOMMENDS:-0}" = 1 ] && ar_rec=--install-recommends
    mkdir -p "$CACHE/apt-archives/partial"
    INROOT_BIND="$CACHE/apt-archives:/var/cache/apt/archives" \
    INROOT_ENV="DEBIAN_FRONTEND=noninteractive" \
        run_logged "apt-get $1 in ${ar_root##*/}" "$ar_log" "" \
        "$SCRIPTS/inroot.sh" "$ar_root" \
        apt-get -y -q -o APT::Keep-Downloaded-Packages=true \
        "$ar_rec" "$@"
}
