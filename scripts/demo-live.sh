#!/bin/sh
# demo-live.sh [OUT_DIR]: `make demo-live`. Like `make demo`, but keeps the
# test VM and QEMU running and forwards QEMU's VNC display to this
# machine's loopback, port DEMO_LIVE_PORT (default 5905), for a viewer of
# your choice. Ctrl-C stops the VM and everything in it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
. "$here/lib.sh"
out=${1:-$repo/build/demo-live}
mkdir -p "$out"
out=$(cd "$out" && pwd)
bdir=$(cd "$out/.." && pwd)
port=${DEMO_LIVE_PORT:-5905}
case $port in *[!0-9]*|'') die "DEMO_LIVE_PORT must be a port number" ;; esac
if command -v ss >/dev/null && ss -ltn | awk '{print $4}' | grep -q ":$port\$"; then
    die "port $port is in use on this machine; choose another: make demo-live DEMO_LIVE_PORT=N"
fi

say "1/2 building (first run: several minutes; then seconds)"
vars=$("$repo/tests/qtest/prepare.sh" "$bdir") ||
    die "step 1/2 (building) failed; its log is named above"
eval "$vars"
say "2/2 booting the test VM with a vgpusim mdev; QEMU shows it on VNC"
# its own process group, so that one signal stops the VM and its helpers
setsid "$repo/tests/rig/run-vm.sh" -b "$out" --root --ko "$VGPUSIM_KO" \
    --mdev vgpusim --fwd "$port:5900" --timeout 86400 live -- sh -c \
    "rig-chroot python3 $DRIVERS/demo-live.py $QEMU_IN_ROOT \"\$RIG_MDEV_vgpusim\"" \
    > "$out/run-vm.out" 2>&1 &
vm=$!
stop() {
    trap - INT TERM EXIT
    # the whole session setsid made: run-vm.sh, and `timeout` with the VM
    # in the process group of their own that timeout makes
    if pgrep -s "$vm" >/dev/null 2>&1; then
        say "stopping the VM"
        pkill -TERM -s "$vm" 2>/dev/null || true
        i=0
        while pgrep -s "$vm" >/dev/null 2>&1 && [ $i -lt 20 ]; do sleep 0.5; i=$((i + 1)); done
        pkill -KILL -s "$vm" 2>/dev/null || true
    fi
    wait "$vm" 2>/dev/null || true
    say "stopped; nothing left running (log: $out/live.log)"
}
trap stop EXIT
trap 'exit 130' INT TERM HUP

t0=$(date +%s)
while ! grep -q 'DEMO-LIVE-READY' "$out/live.log" 2>/dev/null; do
    kill -0 "$vm" 2>/dev/null ||
        die "the VM stopped before QEMU was ready; see $out/live.log and $out/run-vm.out"
    [ $(( $(date +%s) - t0 )) -lt 300 ] || die "QEMU not ready after 300 s; see $out/live.log"
    sleep 1
done
# and the forwarded port answers with QEMU's VNC greeting
rfb_ready() {
    python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1', $port), 3); sys.exit(0 if s.recv(12).startswith(b'RFB') else 1)" 2>/dev/null
}
while ! rfb_ready; do
    kill -0 "$vm" 2>/dev/null || die "the VM stopped; see $out/live.log"
    [ $(( $(date +%s) - t0 )) -lt 300 ] || die "no VNC greeting on port $port after 300 s; see $out/live.log"
    sleep 1
done
cat <<EOM

    The guest display is live on VNC at 127.0.0.1:$port (VNC display :$((port - 5900))).
    Connect with one of:
        gvncviewer 127.0.0.1:$((port - 5900))
        remote-viewer vnc://127.0.0.1:$port
    (a 1024x768 test pattern flipping at 60 Hz; the frame number is in the
    top-left band). Press Ctrl-C here to stop the VM.

EOM
wait "$vm" || true
