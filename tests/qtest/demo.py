#!/usr/bin/env python3
# demo.py QEMU UUID OUTDIR: the main job's guest side (scripts/demo.sh runs
# it in the rig VM). The simulated vGPU animates frames at 30 Hz with a
# cursor moving on its own; QEMU with the overlay shows it with
# `-device vfio-pci,display=on`; this takes PNG screenshots through
# `screendump` and writes a stats report. Standard library only.
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vfio_display import Qemu, ctl, decode_frame, kv, note  # noqa: E402

SHOTS = 6
GAP_S = 0.5


def main():
    qemu, uuid, outdir = sys.argv[1:4]
    os.makedirs(outdir, exist_ok=True)
    note('vGPU %s: 800x600 XRGB8888, 30 Hz page flips, cursor moving' % uuid)
    ctl(uuid, 'mode', '800x600')
    ctl(uuid, 'format', 'XRGB8888')
    ctl(uuid, 'flip_hz', 30)
    ctl(uuid, 'cursor', 'auto')
    ctl(uuid, 'pause', 0)
    ctl(uuid, 'reset_stats', 1)
    q = Qemu(qemu, ['-display', 'none', '-vnc', '127.0.0.1:0', '-device',
                    'vfio-pci,sysfsdev=/sys/bus/mdev/devices/%s,display=on,'
                    'id=vgpu,addr=05.0' % uuid], outdir)
    if not q.alive():
        print(q.output())
        return 1
    t0 = time.time()
    time.sleep(1.0)
    frames = []
    for i in range(1, SHOTS + 1):
        img, err = q.screendump('shot-%d' % i, 'ppm')
        path, err2 = q.screendump('shot-%d' % i, 'png')
        if err or err2:
            note('screendump failed: %s' % (err or err2))
            q.quit()
            return 1
        os.unlink(os.path.join(outdir, 'shot-%d.ppm' % i))
        frames.append(decode_frame(img))
        note('screenshot %d/%d: %s (%dx%d, guest frame %s)'
             % (i, SHOTS, os.path.basename(path), img.w, img.h, frames[-1]))
        time.sleep(GAP_S)
    elapsed = time.time() - t0
    st = q.stats()
    dev = kv(ctl(uuid, 'stats'))
    q.quit()
    report = [
        'vfio-display-dmabuf demo: QEMU %s' % qemu,
        'display path: %s (no GPU here: the console maps the dma-buf)' % st.get('path'),
        'run time: %.1f s, %d screenshots, guest frames shown: %s'
        % (elapsed, SHOTS, ' '.join(str(f) for f in frames)),
        '',
        'QEMU (engine counters, x-display-dmabuf-stats):',
        '  frames reported:  %s' % st.get('frames_reported'),
        '  flips seen:       %s' % st.get('flips_seen'),
        '  imports (GETs):   %s' % st.get('gets'),
        '  cache hits:       %s   misses: %s   evictions: %s'
        % (st.get('cache_hits'), st.get('cache_misses'), st.get('evictions')),
        '  cursor changes:   %s   moves: %s'
        % (st.get('cursor_changes'), st.get('cursor_moves')),
        '  plane queries:    %s   poll interval now: %s ms'
        % (st.get('queries'), st.get('interval_ms')),
        '',
        'device (vgpusim, the neutral referee):',
        '  flips made: %s  seen by the host: %s  missed: %s'
        % (dev.get('flips_made'), dev.get('flips_seen'), dev.get('flips_missed')),
        '  flip-to-first-query latency: p50 %s us, p99 %s us'
        % (dev.get('latency_p50_us'), dev.get('latency_p99_us')),
        '  dma-bufs exported: %s  live now: %s'
        % (dev.get('exports'), dev.get('live_dmabufs')),
    ]
    with open(os.path.join(outdir, 'report.txt'), 'w') as f:
        f.write('\n'.join(report) + '\n')
    for line in report:
        note(line)
    ok = len(set(f for f in frames if f is not None)) >= 2
    note('frames advance between screenshots: %s' % ('yes' if ok else 'NO'))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
