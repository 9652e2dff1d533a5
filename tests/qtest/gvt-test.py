#!/usr/bin/env python3
# gvt-test.py QEMU UUID OUTDIR: QEMU on vgpusim's `gvt` profile, which is
# as strict as GVT-g (docs/vgpusim.md): its dma-bufs cannot be mmapped,
# vmapped or CPU-accessed (GEM proxies), tiled modifiers are real Intel
# tiling, the formats are fb_decoder's (C8 and packed YUV included). The
# rig has no GPU, so nothing can import such a buffer here (llvmpipe reads
# dma-bufs through mmap): what is checked is what a user sees when nothing
# can show the frame, on each kind of display, and that nothing leaks:
#   - VNC alone: one message naming the device and what to change, QEMU
#     alive, the frame not shown (counted), no dma-buf or fd leaked;
#   - egl-headless (x-display-gl=auto): the CPU cannot map, the mode moves
#     to the GL path, the software renderer refuses the import with one
#     message instead of crashing (llvmpipe dereferences NULL when its mmap
#     fails: shared notes, egl-software-import.md);
#   - an X-tiled scanout on VNC: the message says "tiled";
#   - a C8 (8-bit indexed) scanout: the engine's message about the palette;
#   - packed YUV (YUYV, UYVY) in the default profile, where the buffer maps:
#     screendump shows the frame converted (BT.601), close to the RGB
#     pattern vgpusim converted from.
# Prints TAP; exit 0 when all pass. Run by tests/qtest/check-qtest.sh.
import os
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from vfio_display import (Qemu, Tap, ctl as ctl_of, known_state,  # noqa: E402
                          kv, wait_for)
import gui_images  # noqa: E402

QEMU, UUID, OUTDIR = sys.argv[1:4]
SYSFS = '/sys/bus/mdev/devices/%s' % UUID
DEVICE = ['-device', 'vfio-pci,sysfsdev=%s,display=on,id=vgpu,addr=05.0'
          % SYSFS]
tap = Tap()


def ctl(name, value=None):
    return ctl_of(UUID, name, value)


def live():
    return int(kv(ctl('stats'))['live_dmabufs'])


def open_fds(q):
    return len(os.listdir('/proc/%d/fd' % q.proc.pid))


def gvt_state(fmt='XRGB8888', modifier='linear'):
    known_state(UUID)
    ctl('profile', 'gvt')
    ctl('modifier', modifier)
    ctl('format', fmt)


def run(name, display, flips, want_msg, fmt='XRGB8888', modifier='linear',
        path=None, refused=False):
    """QEMU with @display on the gvt profile; @flips flips; the log holds
    @want_msg exactly once; QEMU alive, quits by itself; no dma-buf left."""
    gvt_state(fmt, modifier)
    live0 = live()
    q = Qemu(QEMU, display + DEVICE, OUTDIR)
    if not tap(q.alive(), '%s: QEMU starts' % name, q.output()):
        q.quit()
        return
    for _ in range(flips):
        ctl('step', 1)
        time.sleep(0.2)
    st = q.stats()
    if path:
        wait_for(lambda: q.stats().get('path') == path, timeout=5)
        st = q.stats()
        tap(st.get('path') == path, '%s: the display path is %s' % (name, path),
            st.get('path'))
    out = q.output()
    tap(q.alive() and out.count(want_msg) == 1,
        '%s: QEMU alive after %d flips; "%s" said once (%d times)'
        % (name, flips, want_msg, out.count(want_msg)), out[-2500:])
    if refused:
        tap(int(st.get('planes_refused', 0)) > 0 and
            int(st.get('frames_shown', -1)) == 0,
            '%s: the engine refuses the plane (planes_refused %s), nothing '
            'reaches the display (frames_shown %s)' % (
                name, st.get('planes_refused'), st.get('frames_shown')))
    elif path is None:
        tap(int(st.get('frames_shown', -1)) == 0 and
            int(st.get('not_shown', 0)) > 0,
            '%s: no frame shown, each counted as not shown (frames_shown %s,'
            ' not_shown %s, map_failures %s)' % (
                name, st.get('frames_shown'), st.get('not_shown'),
                st.get('map_failures')))
    else:
        tap(int(st.get('frames_shown', 0)) > 0 and
            int(st.get('map_failures', 0)) >= 1,
            '%s: the CPU map failed once, then the frames went to the GL '
            'display (frames_shown %s, map_failures %s)' % (
                name, st.get('frames_shown'), st.get('map_failures')))
    tap(int(st.get('fds_open', -1)) == live() - live0,
        '%s: engine fds_open %s = device live_dmabufs %d' % (
            name, st.get('fds_open'), live() - live0))
    ok = q.quit()
    tap(ok, '%s: QEMU quits by itself, status 0' % name, q.status())
    tap(wait_for(lambda: live() == live0, timeout=5),
        '%s: after quit the device\'s live dma-bufs are back to %d (%d)'
        % (name, live0, live()))


def yuv(fmt):
    """Packed YUV in the default profile (the buffer maps): screendump
    shows vgpusim's frame converted back to RGB, within the loss of 4:2:2
    (a pixel pair shares its chroma) and of 8-bit YCbCr."""
    ctl('profile', 'default')
    known_state(UUID)
    ctl('format', fmt)
    q = Qemu(QEMU, ['-display', 'none', '-vnc', '127.0.0.1:0'] + DEVICE,
             OUTDIR)
    if not tap(q.alive(), '%s: QEMU starts' % fmt, q.output()):
        q.quit()
        return
    ctl('step', 2)
    want = gui_images.expected_frame(640, 480, int(kv(ctl('state'))['frame']))
    deadline, bad, why = time.time() + 10, -1, 'no screendump'
    while time.time() < deadline:
        img, err = q.screendump('yuv-%s' % fmt)
        if img is None or (img.w, img.h) != (want.w, want.h):
            why = err or '%dx%d' % (img.w, img.h)
            time.sleep(0.5)
            continue
        bad, why = 0, ''
        for y in range(want.h):
            for x in range(0, want.w, 2):
                o = (y * want.w + x) * 3
                pair = want.rgb[o:o + 6]
                if pair[:3] != pair[3:]:
                    continue    # chroma shared by two colours: not judged
                for i in range(6):
                    if abs(img.rgb[o + i] - pair[i]) > 3:
                        bad += 1
                        if not why:
                            why = 'pixel %d,%d: %s, want %s' % (
                                x + i // 3, y, tuple(img.rgb[o:o + 6]),
                                tuple(pair))
                        break
        if bad == 0:
            break
        time.sleep(0.5)
    tap(bad == 0 and q.stats().get('path') == 'cpu-shadow',
        '%s: screendump is the frame within 3 per channel (pairs of one '
        'colour), converted on the CPU (%s)' % (fmt, q.stats().get('path')),
        why)
    tap(q.quit(), '%s: QEMU quits by itself, status 0' % fmt, q.status())


def main():
    os.makedirs(OUTDIR, exist_ok=True)
    vnc = ['-display', 'none', '-vnc', '127.0.0.1:0']
    try:
        run('gvt vnc', vnc, 5, 'the frame cannot be read by the CPU')
        run('gvt egl-headless', ['-display', 'egl-headless', '-vnc',
                                 '127.0.0.1:0'], 5,
            'so the software renderer cannot read it', path='gl-dmabuf')
        run('gvt x-tiled vnc', vnc, 5, 'a tiled dma-buf', modifier='x-tiled')
        run('gvt C8 vnc', vnc, 5, 'the vfio display ABI carries no palette',
            fmt='C8', refused=True)
        yuv('YUYV')
        yuv('UYVY')
    finally:
        ctl('profile', 'default')
        known_state(UUID)
    return tap.done('gvt')


if __name__ == '__main__':
    sys.exit(main())
