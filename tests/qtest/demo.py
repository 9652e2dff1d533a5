#!/usr/bin/env python3
# demo.py QEMU UUID OUTDIR [SECONDS]: the main job's guest side
# (scripts/demo.sh runs it in the rig VM; the host turns the frames into
# animations and build/demo/index.html).
#
# The simulated vGPU flips 800x600 frames at 60 Hz with a cursor moving on
# its own. QEMU with the overlay shows it with `-device
# vfio-pci,display=on -vnc`, twice, the same seconds each:
#   - ours: the default refresh policy;
#   - "upstream policy": the same binary pinned to upstream's fixed 30 ms
#     poll (x-display-refresh-min-ms=30,x-display-refresh-max-ms=30,
#     x-display-event=off: vgpusim's display event is not used),
#     labelled as such (unmodified upstream QEMU shows no pixels without a
#     GPU: docs/upstream-comparison.md).
# Each run first measures what a VNC viewer receives (tests/qtest/rfbview.py
# decodes the frame number from the pixels of every update), with nothing
# else loading the VM; then captures, for the animations, a snapshot of the
# viewer's screen and a `screendump` (cursor composited) every 100 ms, and
# one still with gtk-vnc's gvnccapture, a real client. Writes demo.json.
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vfio_display import Qemu, ctl, kv, note  # noqa: E402
import rfbview  # noqa: E402

HZ = 60
MODE = '800x600'
SNAP_S = 0.1
CAPTURE_S = 3.0

RUNS = [
    ('ours', 'ours (default policy)', ''),
    ('upstream', 'upstream policy: our binary pinned to a fixed 30 ms poll',
     ',x-display-refresh-min-ms=30,x-display-refresh-max-ms=30,'
     'x-display-event=off'),
]


def screendumps(q, seconds, found):
    """Every SNAP_S: a PNG screendump (QEMU encodes it); records its path."""
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        t = time.monotonic()
        path, err = q.screendump('dump-%03d' % i, 'png')
        found.append(err or path)
        i += 1
        time.sleep(max(0.0, SNAP_S - (time.monotonic() - t)))


def run(qemu, uuid, outdir, tag, label, extra, seconds):
    """Measure (a viewer alone, nothing else loads the VM), then capture
    (viewer snapshots and screendumps, for the animations)."""
    work = tempfile.mkdtemp(prefix='demo-')  # tmpfs: no 9p while capturing
    q = Qemu(qemu, ['-display', 'none', '-vnc', '127.0.0.1:0', '-device',
                    'vfio-pci,sysfsdev=/sys/bus/mdev/devices/%s,display=on,'
                    'id=vgpu,addr=05.0%s' % (uuid, extra)], work)
    if not q.alive():
        note('%s: QEMU did not start:\n%s' % (label, q.output()))
        return None
    time.sleep(1.0)
    ctl(uuid, 'reset_stats', 1)
    view, _ = rfbview.watch('127.0.0.1', 5900, seconds)
    dev = kv(ctl(uuid, 'stats'))
    st = q.stats()

    # capture: snapshots in memory, screendumps in tmpfs; written after
    dumps, snaps = [], []
    nxt = [0.0]

    def on_frame(screen, frame):
        now = time.monotonic()
        if now >= nxt[0]:
            snaps.append((screen, bytes(screen.fb)))
            nxt[0] = now + SNAP_S
    th = threading.Thread(target=screendumps, args=(q, CAPTURE_S, dumps))
    th.start()
    rfbview.watch('127.0.0.1', 5900, CAPTURE_S, on_frame)
    th.join()
    still = None
    if tag == 'ours' and os.path.exists('/usr/bin/gvnccapture'):
        still = os.path.join(outdir, 'gvnccapture.bmp')
        p = subprocess.run(['/usr/bin/gvnccapture', '-q', '127.0.0.1:0',
                            still], capture_output=True, text=True,
                           timeout=60)
        if p.returncode != 0:
            note('gvnccapture failed: %s' % (p.stdout + p.stderr))
            still = None
    q.quit()
    for i, (screen, fb) in enumerate(snaps):
        screen.save_png(os.path.join(outdir, 'view-%s-%03d.png' % (tag, i)),
                        fb)
    errors = [d for d in dumps if not d.endswith('.png')]
    shots = [d for d in dumps if d.endswith('.png')]
    for i, path in enumerate(shots):
        shutil.copy(path, os.path.join(outdir, 'dump-%s-%03d.png' % (tag, i)))
    shutil.rmtree(work)
    res = {
        'tag': tag, 'label': label, 'seconds': round(view['seconds'], 2),
        'flips_made': int(dev.get('flips_made', 0)),
        'flips_seen_by_qemu': int(dev.get('flips_seen', 0)),
        'frames_at_viewer': view['frames'],
        'viewer_updates': view['updates'],
        'viewer_incomplete_updates': view['incomplete'],
        'viewer_kib_per_s': round(view['bytes_per_s'] / 1024, 1),
        'screendumps': len(shots),
        'screendump_errors': errors,
        'plane_queries': int(dev.get('queries', 0)),
        'gets': int(st.get('gets', 0)),
        'viewer_snapshots': len(snaps),
        'gvnccapture': os.path.basename(still) if still else None,
    }
    note('%s: %d flips made, %d seen by QEMU, %d whole frames at the VNC '
         'viewer (%d updates, %d incomplete)'
         % (label, res['flips_made'], res['flips_seen_by_qemu'],
            res['frames_at_viewer'], res['viewer_updates'],
            res['viewer_incomplete_updates']))
    return res


def main():
    qemu, uuid, outdir = sys.argv[1:4]
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 4.0
    os.makedirs(outdir, exist_ok=True)
    note('vGPU %s: %s XRGB8888, %d Hz page flips, cursor moving'
         % (uuid, MODE, HZ))
    ctl(uuid, 'mode', MODE)
    ctl(uuid, 'format', 'XRGB8888')
    ctl(uuid, 'flip_hz', HZ)
    ctl(uuid, 'cursor', 'auto')
    ctl(uuid, 'pause', 0)
    results = []
    for tag, label, extra in RUNS:
        r = run(qemu, uuid, outdir, tag, label, extra, seconds)
        if r is None:
            return 1
        results.append(r)
    with open(os.path.join(outdir, 'demo.json'), 'w') as f:
        json.dump({'mode': MODE, 'hz': HZ, 'runs': results}, f, indent=1)
    ours = results[0]
    ok = ours['frames_at_viewer'] >= 2 and ours['screendumps'] >= 2 and \
        not ours['screendump_errors']
    note('frames advance at the viewer, screendumps answer: %s'
         % ('yes' if ok else 'NO'))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
