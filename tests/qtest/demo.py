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
#     poll (x-display-refresh-min-ms=30,x-display-refresh-max-ms=30),
#     labelled as such (unmodified upstream QEMU shows no pixels without a
#     GPU: docs/upstream-comparison.md).
# Each run records what a VNC viewer receives (tests/qtest/rfbview.py: it
# decodes the frame number from the pixels of every update; a snapshot of
# its screen every 100 ms) and what `screendump` returns (every 100 ms,
# with the cursor composited), and takes one still with gtk-vnc's
# gvnccapture, a real client. Writes demo.json with the figures.
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vfio_display import Qemu, ctl, decode_frame, kv, note  # noqa: E402
import rfbview  # noqa: E402

HZ = 60
MODE = '800x600'
SNAP_S = 0.1

RUNS = [
    ('ours', 'ours (default policy)', ''),
    ('upstream', 'upstream policy: our binary pinned to a fixed 30 ms poll',
     ',x-display-refresh-min-ms=30,x-display-refresh-max-ms=30'),
]


def screendumps(q, outdir, tag, seconds, found):
    """Every SNAP_S: a PPM screendump; records the decoded frame numbers."""
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        t = time.monotonic()
        img, err = q.screendump('dump-%s-%03d' % (tag, i))
        if err:
            found.append(('error', err))
            return
        found.append(decode_frame(img))
        i += 1
        time.sleep(max(0.0, SNAP_S - (time.monotonic() - t)))


def run(qemu, uuid, outdir, tag, label, extra, seconds):
    q = Qemu(qemu, ['-display', 'none', '-vnc', '127.0.0.1:0', '-device',
                    'vfio-pci,sysfsdev=/sys/bus/mdev/devices/%s,display=on,'
                    'id=vgpu,addr=05.0%s' % (uuid, extra)], outdir)
    if not q.alive():
        note('%s: QEMU did not start:\n%s' % (label, q.output()))
        return None
    time.sleep(1.0)
    dumps = []
    snaps = {'next': 0.0, 'n': 0}

    def on_frame(screen, frame):
        now = time.monotonic()
        if now >= snaps['next']:
            screen.save_ppm(os.path.join(outdir, 'view-%s-%03d.ppm'
                                         % (tag, snaps['n'])))
            snaps['n'] += 1
            snaps['next'] = now + SNAP_S

    ctl(uuid, 'reset_stats', 1)
    th = threading.Thread(target=screendumps,
                          args=(q, outdir, tag, seconds, dumps))
    th.start()
    view, _ = rfbview.watch('127.0.0.1', 5900, seconds, on_frame)
    th.join()
    dev = kv(ctl(uuid, 'stats'))
    st = q.stats()
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
    errors = [d for d in dumps if isinstance(d, tuple)]
    frames = [d for d in dumps if not isinstance(d, tuple)]
    res = {
        'tag': tag, 'label': label, 'seconds': round(view['seconds'], 2),
        'flips_made': int(dev.get('flips_made', 0)),
        'flips_seen_by_qemu': int(dev.get('flips_seen', 0)),
        'frames_at_viewer': view['frames'],
        'viewer_updates': view['updates'],
        'viewer_incomplete_updates': view['incomplete'],
        'viewer_kib_per_s': round(view['bytes_per_s'] / 1024, 1),
        'screendumps': len(frames),
        'screendump_frames_distinct': len(set(f for f in frames
                                              if f is not None)),
        'screendump_errors': [e[1] for e in errors],
        'plane_queries': int(dev.get('queries', 0)),
        'gets': int(st.get('gets', 0)),
        'viewer_snapshots': snaps['n'],
        'gvnccapture': os.path.basename(still) if still else None,
    }
    note('%s: %d flips made, %d seen by QEMU, %d whole frames at the VNC '
         'viewer (%d updates, %d incomplete), %d screendumps'
         % (label, res['flips_made'], res['flips_seen_by_qemu'],
            res['frames_at_viewer'], res['viewer_updates'],
            res['viewer_incomplete_updates'], res['screendumps']))
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
    ok = ours['frames_at_viewer'] >= 2 and \
        ours['screendump_frames_distinct'] >= 2 and \
        not ours['screendump_errors']
    note('frames advance at the viewer and in screendumps: %s'
         % ('yes' if ok else 'NO'))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
