#!/usr/bin/env python3
# demo-report.py OUT_DIR: turns what tests/qtest/demo.py left in OUT_DIR
# (demo.json, PPM frames) into the demo's report: animated GIFs (ImageMagick),
# a PNG still, index.html, and a summary on stdout. Run by scripts/demo.sh.
import glob
import html
import json
import os
import shutil
import subprocess
import sys


def animate(out, pattern, name):
    frames = sorted(glob.glob(os.path.join(out, pattern)))
    if not frames:
        return None
    dest = os.path.join(out, name)
    subprocess.run(['convert', '-delay', '10', '-loop', '0'] + frames +
                   ['-layers', 'Optimize', dest], check=True)
    return name


def main():
    out = sys.argv[1]
    if not shutil.which('convert'):
        sys.exit('demo-report.py: ImageMagick is missing (apt-get install imagemagick)')
    data = json.load(open(os.path.join(out, 'demo.json')))
    rows = []
    for r in data['runs']:
        tag = r['tag']
        r['viewer_gif'] = animate(out, 'view-%s-*.png' % tag,
                                  'viewer-%s.gif' % tag)
        r['dump_gif'] = animate(out, 'dump-%s-*.png' % tag,
                                'screendump-%s.gif' % tag)
        rows.append(r)
    first = sorted(glob.glob(os.path.join(out, 'dump-ours-*.png')))
    if first:
        shutil.copy(first[len(first) // 2], os.path.join(out, 'still.png'))
    gvnc = os.path.join(out, 'gvnccapture.bmp')
    if os.path.exists(gvnc):
        subprocess.run(['convert', gvnc, os.path.join(out, 'gvnccapture.png')],
                       check=True)
        os.unlink(gvnc)
    for f in glob.glob(os.path.join(out, 'view-*.png')) + \
            glob.glob(os.path.join(out, 'dump-*.png')):
        os.unlink(f)  # in the animations now

    def pct(a, b):
        return '%.0f %%' % (100.0 * a / b) if b else '-'

    e = html.escape
    body = ['<!doctype html><meta charset="utf-8">',
            '<title>vfio-display-dmabuf demo</title>',
            '<style>body{font-family:sans-serif;max-width:1700px;margin:1em}'
            'td,th{border:1px solid #999;padding:4px 8px}table{border-collapse:'
            'collapse}img{max-width:800px;border:1px solid #444}</style>',
            '<h1>vfio-display-dmabuf: a simulated vGPU in QEMU</h1>',
            '<p>vgpusim (our simulated mdev vGPU, in a Debian 6.12 VM under TCG) '
            'flips %s frames at %d Hz, each with its frame number in the top-left '
            'band, and moves its cursor plane by itself. QEMU with the overlay '
            'shows it with <code>-device vfio-pci,display=on -vnc</code>. The same '
            'seconds are run twice: with our refresh policy, and with the same '
            'binary pinned to upstream QEMU\'s fixed 30 ms poll (unmodified '
            'upstream shows no pixels without a GPU).</p>' % (e(data['mode']),
                                                              data['hz']),
            '<table><tr><th></th>%s</tr>' % ''.join(
                '<th>%s</th>' % e(r['label']) for r in rows)]

    def line(name, fn):
        body.append('<tr><td>%s</td>%s</tr>' % (e(name), ''.join(
            '<td>%s</td>' % fn(r) for r in rows)))

    line('flips made by the guest', lambda r: r['flips_made'])
    line('flips seen by QEMU', lambda r: '%d (%s)' % (
        r['flips_seen_by_qemu'], pct(r['flips_seen_by_qemu'], r['flips_made'])))
    line('whole frames shown by the VNC viewer', lambda r: '%d (%s)' % (
        r['frames_at_viewer'], pct(r['frames_at_viewer'], r['flips_made'])))
    line('viewer updates that left a torn or partial frame',
         lambda r: '%d of %d' % (r['viewer_incomplete_updates'],
                                 r['viewer_updates']))
    line('sent to the viewer', lambda r: '%.0f KiB/s' % r['viewer_kib_per_s'])
    line('plane queries', lambda r: r['plane_queries'])
    line('dma-buf imports (GET_GFX_DMABUF)', lambda r: r['gets'])
    line('screendumps taken for the animation', lambda r: r['screendumps'])
    line('what the VNC viewer showed (a snapshot every 100 ms; not measured)',
         lambda r: (
        '<img src="%s">' % r['viewer_gif']) if r['viewer_gif'] else '-')
    line('screendump every 100 ms (cursor composited; not measured)',
         lambda r: (
        '<img src="%s">' % r['dump_gif']) if r['dump_gif'] else '-')
    body.append('</table>')
    body.append('<p>The VNC animation is taken by tests/qtest/rfbview.py, a '
                'minimal RFB client that decodes every update; QEMU\'s VNC server '
                'leaves the pointer to the client (no cursor in the picture). '
                'The screendump animation shows the guest\'s cursor plane.</p>')
    if os.path.exists(os.path.join(out, 'gvnccapture.png')):
        body.append('<h2>A still through a real VNC client (gtk-vnc '
                    '<code>gvnccapture</code>)</h2><img src="gvnccapture.png">')
    with open(os.path.join(out, 'index.html'), 'w') as f:
        f.write('\n'.join(body) + '\n')
    for r in rows:
        print('demo: %-58s flips %4d  seen by QEMU %s  whole frames at the '
              'viewer %s' % (r['label'], r['flips_made'],
                             pct(r['flips_seen_by_qemu'], r['flips_made']),
                             pct(r['frames_at_viewer'], r['flips_made'])))
    print('demo: report %s' % os.path.join(out, 'index.html'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
