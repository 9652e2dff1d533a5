#!/usr/bin/env python3
# display-test.py: QEMU display tests for `-device vfio-pci,display=on`,
# run inside the rig VM (tests/qtest/check-qtest.sh). A documented stand-in
# for libqtest, which cannot be linked out of tree: QEMU runs with
# `-accel qtest`; this driver speaks the qtest protocol (guest-visible
# PCI config, BAR reads/writes) and QMP (screendump, qom-get, system_reset),
# drives the simulated vGPU's sysfs controls, and checks screendump pixels
# against what the device shows (docs/vgpusim.md: pattern and encoding).
#
# Usage: display-test.py QEMU SUITE UUID OUTDIR [QEMU-ARGS...]
#   SUITE: vgpusim | vgpusim-egl | mbochs | compare | unplug |
#          realize-errors | ... (main())
# Prints TAP; exit 0 when all pass.
import os
import select
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'gui'))
import gui_images  # noqa: E402
import rfbview  # noqa: E402
from vfio_display import (Image, Qemu, Tap, bars_ok,  # noqa: E402
                          ctl as ctl_of, decode_frame, known_state, kv,
                          note, shot_until, wait_for)

QEMU, SUITE, UUID, OUTDIR = sys.argv[1:5]
tap = Tap()
EXTRA = sys.argv[5:]
SYSFS = '/sys/bus/mdev/devices/%s' % UUID


def ctl(name, value=None):
    return ctl_of(UUID, name, value)


def start_qemu(args):
    return Qemu(QEMU, args, OUTDIR)


# ---------------------------------------------------------------- suites

DEVICE_ARGS = ['-device',
               'vfio-pci,sysfsdev=%s,display=on,id=vgpu,addr=05.0' % SYSFS]


def hostile_flip(q, kind, name, msg):
    """A good frame shown, then fault `plane KIND` armed and the device
    flipped under it until the engine refused the plane. Returns (the good
    frame's number, the screendump after, its error, how many @msg lines
    the log had before)."""
    ctl('fault', 'plane none')
    ctl('step', 1)
    good = int(kv(ctl('state'))['frame'])
    shot_until(q, name + '-before-' + kind, lambda i: decode_frame(i) == good)
    before = q.output().count(msg)
    refused = int(q.stats().get('planes_refused', 0))
    ctl('fault', 'plane ' + kind)
    ctl('step', 1)                            # frame good+1, hostile plane
    wait_for(lambda: int(q.stats().get('planes_refused', 0)) > refused,
             timeout=3)
    time.sleep(0.3)
    img, err = q.screendump(name + '-hostile-' + kind)
    return good, img, err, before


def suite_vgpusim(display='none', path='cpu-shadow', dev_opts=''):
    """The whole display test on one display: `none` takes the CPU-mmap
    path (no GL), `egl-headless` with x-display-gl=on the GL dma-buf path
    (Mesa's software device here: there is no GPU)."""
    ctl('pause', 1)
    ctl('front_buffer', 0)
    ctl('cursor', 'off')
    ctl('format', 'XRGB8888')
    ctl('mode', '640x480')
    ctl('fault', 'clear')
    live0 = int(kv(ctl('stats'))['live_dmabufs'])

    q = start_qemu(['-display', display, '-device', DEVICE_ARGS[1] +
                    dev_opts, '-vnc', '127.0.0.1:0'] + EXTRA)
    if not tap(q.alive(), 'QEMU starts with display=on%s and -display %s'
               % (dev_opts, display), q.output()):
        q.quit()
        return

    # 1. a known pattern: frame 7 of the simulated guest
    ctl('step', 7)
    img, err = shot_until(q, 'pattern', lambda i: decode_frame(i) == 7)
    tap(img is not None, 'screendump of the vfio console works', err)
    if img is None:
        q.quit()
        return
    tap((img.w, img.h) == (640, 480), 'screendump is 640x480',
        '%dx%d' % (img.w, img.h))
    tap(decode_frame(img) == 7, 'frame number 7 decoded from the pixels',
        'decoded %r' % decode_frame(img))
    bad = bars_ok(img)
    tap(not bad, 'colour bars match the device', '\n'.join(bad))
    st = q.stats()
    tap(st.get('path') == path, 'the %s path is used' % path, str(st))

    # 2. page flips: the frame number advances
    ctl('step', 1)
    img, _ = shot_until(q, 'flip', lambda i: decode_frame(i) == 8)
    tap(img and decode_frame(img) == 8, 'page flip: frame 8 shown',
        img and 'decoded %r' % decode_frame(img))
    ctl('step', 5)
    img, _ = shot_until(q, 'flip2', lambda i: decode_frame(i) == 13)
    tap(img and decode_frame(img) == 13, 'five more flips: frame 13 shown')
    st = q.stats()
    tap(int(st.get('flips_seen', 0)) >= 2 and int(st.get('gets', 99)) <= 4,
        'flips seen, each buffer fetched once (3 buffers)', str(st))

    # 3. mode change (the simulated guest sets a new mode)
    ctl('mode', '800x600')
    img, _ = shot_until(q, 'mode', lambda i: (i.w, i.h) == (800, 600)
                        and decode_frame(i) is not None)
    tap(img and (img.w, img.h) == (800, 600) and not bars_ok(img),
        'mode change to 800x600 shown with the pattern',
        img and '%dx%d %s' % (img.w, img.h, bars_ok(img)))
    ctl('mode', '640x480')
    img, _ = shot_until(q, 'mode-back', lambda i: (i.w, i.h) == (640, 480))
    tap(img and (img.w, img.h) == (640, 480), 'mode back to 640x480')

    # 4. guest-visible programming through the BARs (what a guest driver does)
    dev = 5
    vid = q.cfg_read32(dev, 0)
    tap(vid == 0x00ff1b36, 'vfio-pci device visible in PCI config',
        '0x%08x' % vid)
    q.cfg_write32(dev, 0x10, 0xe0000000)      # BAR0: VRAM
    q.cfg_write32(dev, 0x18, 0xe8000000)      # BAR2: registers
    q.cfg_write32(dev, 0x04, 0x7)             # io, mem, master
    regs = 0xe8000000
    tap(int(q.qtest('readl 0x%x' % regs), 16) == 0x31534756,
        'BAR2 ID register reads VGS1 through the guest view')
    fb = 48 << 20                             # a free 1 MiB-aligned spot
    q.qtest('memset 0x%x %d 0x40' % (0xe0000000 + fb, 320 * 200 * 4))
    for off, val in ((0x14, 320), (0x18, 200), (0x1c, 0), (0x20, 0x34325258),
                     (0x24, 0), (0x28, 0), (0x2c, fb), (0x10, 1), (0x30, 1)):
        q.qtest('writel 0x%x 0x%x' % (regs + off, val))
    img, _ = shot_until(q, 'guest-mode', lambda i: (i.w, i.h) == (320, 200))
    ok = img is not None and (img.w, img.h) == (320, 200) and all(
        img.px(x, y) == (0x40, 0x40, 0x40)
        for x, y in ((0, 0), (160, 100), (319, 199)))
    tap(ok, 'guest programs 320x200 at a VRAM offset through BAR2: '
        'screendump shows the gray it wrote through BAR0',
        img and '%dx%d %s' % (img.w, img.h, img.px(160, 100)))
    ctl('mode', '640x480')
    ctl('step', 1)

    # 5. the cursor plane, composited by screendump at position - hotspot
    ctl('cursor', 'on')
    ctl('cursor_hot', '32 32')
    ctl('cursor_pos', '100 100')
    red = (255, 0, 0)

    def cursor_at(i, x, y):
        return i.w == 640 and i.px(x, y) == red
    img, _ = shot_until(q, 'cursor', lambda i: cursor_at(i, 132, 132))
    tap(img and cursor_at(img, 132, 132),
        'cursor drawn in the screendump (red cross at 132,132)',
        img and str(img.px(132, 132)))
    ctl('cursor_pos', '300 200')
    img, _ = shot_until(q, 'cursor-moved', lambda i: cursor_at(i, 332, 232))
    tap(img and cursor_at(img, 332, 232) and not cursor_at(img, 132, 132),
        'cursor moved to 300,200 (cross at 332,232; old place clean)',
        img and '%s %s' % (img.px(332, 232), img.px(132, 132)))
    st = q.stats()
    tap(int(st.get('cursor_moves', 0)) >= 1 and
        int(st.get('cursor_changes', 0)) == 1,
        'cursor moves without a new cursor image', str(st))
    ctl('cursor', 'off')

    # 6. a hostile plane: QEMU keeps running, the last good frame stays.
    # The device flips while each hostile plane is up (the fault first,
    # then the step): a plane wrongly accepted would show the new frame,
    # a refused one leaves the last good frame, whose buffer the device
    # does not redraw meanwhile (3 buffers, 2 steps per kind). The engine
    # warns once per kind of refusal (its check name) every
    # VFIO_DMABUF_WARN_INTERVAL_S: the six faults are four kinds.
    warn_interval_s = 10
    kinds = (('stride_short', 'bad stride'),
             ('size_short', 'buffer size too small or too large'),
             ('bad_fourcc', 'unknown fourcc'),
             ('zero_width', 'bad width/height'),
             ('huge_width', 'bad width/height'),
             ('overflow', 'bad width/height'))
    for _ in range(3):                        # all 3 buffers fetched
        ctl('step', 1)
        f = int(kv(ctl('state'))['frame'])
        shot_until(q, 'pre-hostile', lambda i: decode_frame(i) == f)
    st0 = q.stats()
    warned = {}                               # check name -> time warned
    for kind, check in kinds:
        good, img, err, before = hostile_flip(q, kind, 'dma-buf',
                                              'device reported a bad')
        tap(q.alive() and img is not None and decode_frame(img) == good,
            'hostile plane %s while the device flips: QEMU alive, last good '
            'frame %d kept (not %d)' % (kind, good, good + 1),
            err or (img and 'decoded %r' % decode_frame(img)))
        out = q.output()
        lines = [ln for ln in out.splitlines()
                 if 'device reported a bad' in ln][before:]
        now = time.monotonic()
        fresh = check not in warned or now - warned[check] > warn_interval_s
        if fresh:
            warned[check] = now
        tap(len(lines) == int(fresh) and all(check in ln for ln in lines),
            'hostile plane %s: %s warning "%s"' % (
                kind, 'one' if fresh else 'no new', check),
            '\n'.join(lines) or 'no warning')
    ctl('fault', 'plane none')
    st = q.stats()
    tap(int(st.get('planes_refused', 0)) >= int(st0.get('planes_refused', 0))
        + len(kinds) and st.get('gets') == st0.get('gets'),
        'hostile planes counted as refused, none fetched (gets %s -> %s)'
        % (st0.get('gets'), st.get('gets')), str(st))
    warn = q.output().count('device reported a bad')
    tap(warn == len(set(c for _, c in kinds)),
        'one warning per kind of refusal, not one per frame or fault: %d '
        'for 6 faults of 4 kinds' % warn, q.output()[-2000:])

    # 6b. the buffer on screen keeps its id but gets a new geometry: the
    # console lets go of the old one before it is closed, then shows the new
    ctl('step', 1)                          # the last id answered: on screen
    want = int(kv(ctl('state'))['frame'])
    shot_until(q, 'pre-reuse', lambda i: decode_frame(i) == want)
    geo0 = int(q.stats().get('geometry_changes', 0))
    ctl('fault', 'reuse_id')
    ctl('mode', '720x400')                  # a geometry not seen before
    img, _ = shot_until(q, 'reuse-id', lambda i: (i.w, i.h) == (720, 400)
                        and decode_frame(i) is not None)
    st = q.stats()
    tap(q.alive() and img is not None and (img.w, img.h) == (720, 400) and
        int(st.get('geometry_changes', 0)) == geo0 + 1,
        'same dmabuf_id, new geometry on screen: 720x400 shown, counted',
        '%s %s' % (img and (img.w, img.h), st))
    ctl('fault', 'clear')
    ctl('mode', '640x480')

    # 7. device reset: by the device (fault) and by the machine (system_reset)
    ctl('step', 3)
    ctl('fault', 'reset')
    img, _ = shot_until(q, 'device-reset', lambda i: decode_frame(i) == 0)
    tap(img and decode_frame(img) == 0, 'device reset mid-scanout: frame 0 shown')
    ctl('step', 4)
    shot_until(q, 'pre-reset', lambda i: decode_frame(i) == 4)
    r = q.cmd('system_reset')
    img, _ = shot_until(q, 'system-reset', lambda i: decode_frame(i) == 0)
    tap('return' in r and img and decode_frame(img) == 0,
        'system_reset resets the vGPU: frame 0 shown again')
    st = q.stats()
    tap(int(st.get('resets', 0)) >= 1, 'engine reset counted', str(st))

    # 8. a real VNC client reads the same pixels
    ctl('step', 2)
    img, _ = shot_until(q, 'vnc-ref', lambda i: decode_frame(i) == 2)
    vnc_check(img)

    tap(q.quit(), 'QEMU quits cleanly: exit 0 by itself after quit',
        '%s\n%s' % (q.status(), q.output()[-1500:]))
    # 9. EDID: QEMU writes a monitor with xres x yres into the device's EDID
    # region; the simulated vGPU applies its preferred mode at link up
    q = start_qemu(['-display', display, '-device',
                    'vfio-pci,sysfsdev=%s,display=on,id=vgpu,addr=05.0,'
                    'xres=1024,yres=768,x-display-refresh-max-ms=40' % SYSFS]
                   + EXTRA)
    edid = wait_for(lambda: 'preferred=1024x768' in ctl('edid') and ctl('edid'))
    tap(bool(edid) and 'applied=1' in ctl('edid'),
        'EDID from xres/yres reaches the device: preferred mode 1024x768',
        ctl('edid'))
    img, _ = shot_until(q, 'edid', lambda i: (i.w, i.h) == (1024, 768))
    tap(img is not None and (img.w, img.h) == (1024, 768),
        'the guest mode follows the EDID: screendump is 1024x768',
        img and '%dx%d' % (img.w, img.h))
    iv = wait_for(lambda: q.stats().get('interval_ms') == '40', timeout=5)
    tap(bool(iv), 'x-display-refresh-max-ms=40: the idle poll backs off to '
        '40 ms, not 100', str(q.stats()))
    def live():
        return int(kv(ctl('stats'))['live_dmabufs'])
    # while QEMU runs: every dma-buf the device exported is one QEMU holds
    st = q.stats()
    tap(live() - live0 == int(st.get('fds_open', -1)),
        'while QEMU runs: device live_dmabufs - %d = engine fds_open (%d)'
        % (live0, int(st.get('fds_open', -1))), 'live %d, %s' % (live(), st))
    q.quit()
    ctl('mode', '640x480')
    wait_for(lambda: live() == live0, timeout=5)
    tap(live() == live0,
        'no dma-buf leaked by QEMU (device live_dmabufs %d, before %d)'
        % (live(), live0))


def suite_region():
    """vgpusim's profile region: the display as region planes, as mdpy and
    (most likely) NVIDIA vGPU offer it (docs/vgpusim.md). The engine maps
    each display region once and ui/ copies the changed rows: screendump
    and a VNC client pixel-exact, every flip seen (another region), a new
    mode, hostile region planes refused with one warning each and the last
    frame kept, no cursor query, no fd leaked."""
    known_state(UUID)
    ctl('profile', 'region')
    try:
        region_checks()
    finally:
        ctl('fault', 'clear')
        ctl('profile', 'default')


def open_fds(q):
    """How many fds QEMU holds (/proc/PID/fd)."""
    try:
        return len(os.listdir('/proc/%d/fd' % q.proc.pid))
    except OSError:
        return -1


def region_checks():
    dev0 = kv(ctl('stats'))
    q = start_qemu(['-display', 'none', '-device', DEVICE_ARGS[1],
                    '-vnc', '127.0.0.1:0'] + EXTRA)
    if not tap(q.alive(), 'QEMU starts with a region-plane vGPU',
               q.output()):
        q.quit()
        return

    # 1. the pattern, on the CPU path (region planes have no dma-buf)
    ctl('step', 7)
    img, err = shot_until(q, 'region-pattern', lambda i: decode_frame(i) == 7)
    tap(img is not None and (img.w, img.h) == (640, 480) and
        not bars_ok(img), 'region plane: screendump 640x480, frame 7 and '
        'the colour bars exact', err or (img and '%dx%d %s' % (
            img.w, img.h, bars_ok(img))))
    st = q.stats()
    tap(st.get('planes') == 'region' and st.get('path') == 'cpu-shadow' and
        st.get('fds_open') == '0' and st.get('gets') == '0' and
        int(st.get('maps_open', 0)) >= 1,
        'region planes: the cpu-shadow path from a mapped region, no '
        'dma-buf', str(st))
    tap('display path cpu-shadow (the device\'s frames are a CPU mapping'
        in q.output(), 'the path is reported as the region plane\'s',
        q.output()[-1000:])
    fds0 = open_fds(q)

    # 2. flips: each names another region, seen; each region mapped once
    ctl('step', 1)
    img, _ = shot_until(q, 'region-flip', lambda i: decode_frame(i) == 8)
    tap(img is not None and decode_frame(img) == 8, 'flip: frame 8 shown')
    ctl('step', 5)
    img, _ = shot_until(q, 'region-flip2', lambda i: decode_frame(i) == 13)
    tap(img is not None and decode_frame(img) == 13,
        'five more flips: frame 13 shown')
    st = q.stats()
    dev = kv(ctl('stats'))
    maps = int(dev['region_mmaps']) - int(dev0['region_mmaps'])
    tap(int(st.get('flips_seen', 0)) >= 2 and
        int(st.get('region_maps', 99)) <= 3 and
        maps == int(st.get('region_maps', -1)),
        'flips seen (%s); 3 buffers, each display region mapped once (%d '
        'mmaps of the device)' % (st.get('flips_seen'), maps), str(st))
    tap(int(dev['queries_cursor']) == int(dev0['queries_cursor']),
        'no cursor plane query (mdpy answers any type with its framebuffer)',
        'cursor queries %s -> %s' % (dev0['queries_cursor'],
                                      dev['queries_cursor']))

    # 3. a new mode: another geometry, mapped anew; and back
    ctl('mode', '800x600')
    img, _ = shot_until(q, 'region-mode', lambda i: (i.w, i.h) == (800, 600)
                        and decode_frame(i) is not None)
    tap(img is not None and (img.w, img.h) == (800, 600) and
        not bars_ok(img), 'mode change to 800x600 shown with the pattern')
    ctl('mode', '640x480')
    img, _ = shot_until(q, 'region-mode-back',
                        lambda i: (i.w, i.h) == (640, 480))
    tap(img is not None and (img.w, img.h) == (640, 480),
        'mode back to 640x480')

    # 4. hostile region planes while the device flips (as suite_vgpusim:
    # a plane wrongly accepted shows the new frame, a refused one leaves
    # the last good frame, whose region the device does not redraw)
    kinds = (('region_short', 'plane outside its region', 'refused_plane'
              '_outside_its_region'),
             ('region_nommap', 'region not mappable',
              'refused_region_not_mappable'),
             ('stride_short', 'bad stride', 'refused_bad_stride'))
    for _ in range(3):
        ctl('step', 1)
        f = int(kv(ctl('state'))['frame'])
        shot_until(q, 'region-pre-hostile', lambda i: decode_frame(i) == f)
    maps0 = int(q.stats().get('region_maps', 0))
    for kind, check, counter in kinds:
        good, img, err, before = hostile_flip(
            q, kind, 'region', 'device reported a bad region plane')
        tap(q.alive() and img is not None and decode_frame(img) == good,
            'hostile region plane %s while the device flips: last good '
            'frame %d kept (not %d)' % (kind, good, good + 1),
            err or (img and 'decoded %r' % decode_frame(img)))
        lines = [ln for ln in q.output().splitlines()
                 if 'device reported a bad region plane' in ln][before:]
        st = q.stats()
        tap(len(lines) == 1 and check in lines[0] and
            int(st.get(counter, 0)) >= 1,
            'hostile region plane %s: one warning "%s", counted as %s'
            % (kind, check, counter), '\n'.join(lines) + '\n' + str(st))
    ctl('fault', 'plane none')
    st = q.stats()
    tap(int(st.get('region_maps', 0)) == maps0,
        'no hostile region was mapped (region_maps %d -> %s)'
        % (maps0, st.get('region_maps')), str(st))

    # 5. a real VNC client reads the same pixels
    ctl('step', 2)
    want = int(kv(ctl('state'))['frame'])
    img, _ = shot_until(q, 'region-vnc-ref',
                        lambda i: decode_frame(i) == want)
    vnc_check(img)

    # 6. fds: region mappings are no fds, QEMU holds as many as at start
    # (once the VNC client's socket is closed)
    wait_for(lambda: open_fds(q) == fds0, timeout=5)
    tap(open_fds(q) == fds0, 'no fd leaked: QEMU holds %d fds, as after the '
        'first frame (%d)' % (open_fds(q), fds0))
    dev = kv(ctl('stats'))
    tap(int(dev['live_dmabufs']) == int(dev0['live_dmabufs']),
        'the device exported no dma-buf', str(dev))
    tap(q.quit(), 'QEMU quits cleanly: exit 0 by itself after quit',
        '%s\n%s' % (q.status(), q.output()[-1500:]))


def read_bmp(path):
    with open(path, 'rb') as f:
        d = f.read()
    off = struct.unpack_from('<I', d, 10)[0]
    w, h = struct.unpack_from('<ii', d, 18)
    bpp = struct.unpack_from('<H', d, 28)[0]
    cpp = bpp // 8
    stride = (w * cpp + 3) & ~3
    rgb = bytearray()
    rows = range(h - 1, -1, -1) if h > 0 else range(-h)
    for y in rows:
        row = d[off + y * stride: off + y * stride + w * cpp]
        for x in range(w):
            b, g, r = row[x * cpp: x * cpp + 3]
            rgb += bytes((r, g, b))
    return Image(w, abs(h), bytes(rgb))


def vnc_check(ref):
    cap = '/usr/bin/gvnccapture'
    if not os.path.exists(cap):
        tap(True, 'VNC client check # SKIP gvnccapture not installed')
        return
    out = os.path.join(OUTDIR, 'vnc.bmp')
    p = subprocess.run([cap, '127.0.0.1:0', out], capture_output=True,
                       text=True, timeout=60)
    if p.returncode != 0 or not os.path.exists(out):
        tap(False, 'gvnccapture reads the display', p.stdout + p.stderr)
        return
    img = read_bmp(out)
    same = ref is not None and (img.w, img.h) == (ref.w, ref.h) and \
        img.rgb == ref.rgb
    diff = 0
    if ref is not None and (img.w, img.h) == (ref.w, ref.h):
        diff = sum(1 for i in range(0, len(img.rgb), 3)
                   if img.rgb[i:i + 3] != ref.rgb[i:i + 3])
    tap(same, 'VNC client (gvnccapture) pixels equal the screendump '
        '(%d of %d pixels differ)' % (diff, img.w * img.h),
        '%dx%d frame %r' % (img.w, img.h, decode_frame(img)))


def suite_mbochs():
    """Pristine mbochs: its dma-buf cannot be mmapped; QEMU must say so once
    and keep running (no GPU here to import it either). It has no display
    event: x-display-event=on is refused with a clear error."""
    q = start_qemu(['-display', 'none', '-device',
                    'vfio-pci,sysfsdev=%s,display=on,id=vgpu,addr=05.0,'
                    'x-display-event=on' % SYSFS] + EXTRA)
    time.sleep(1)
    tap(not q.alive() and 'offers no display event' in q.output(),
        'x-display-event=on on mbochs: QEMU refuses, saying why',
        q.output()[-800:])
    q.quit()
    q = start_qemu(['-display', 'none', '-device',
              'vfio-pci,sysfsdev=%s,display=on,id=vgpu,addr=05.0' % SYSFS] + EXTRA)
    if not tap(q.alive(), 'QEMU starts with pristine mbochs, display=on',
               q.output()):
        q.quit()
        return
    dev = 5
    tap(q.cfg_read32(dev, 0) == 0x11111234, 'mbochs visible in PCI config')
    q.cfg_write32(dev, 0x10, 0xe0000000)
    q.cfg_write32(dev, 0x18, 0xe1000000)
    q.cfg_write32(dev, 0x04, 0x7)
    q.qtest('memset 0xe0000000 %d 0x80' % (640 * 480 * 4))
    dispi = 0xe1000000 + 0x500
    for idx, val in ((4, 0), (1, 640), (2, 480), (3, 32), (6, 640), (7, 480),
                     (8, 0), (9, 0), (4, 1)):
        q.qtest('writew 0x%x 0x%x' % (dispi + 2 * idx, val))
    st = wait_for(lambda: int(q.stats().get('gets', 0)) >= 1 and q.stats())
    tap(st and int(st.get('query_transient', 0)) >= 1,
        'first query of the new mode: ENOMEM taken as transient', str(st))
    tap(st and int(st.get('gets', 0)) == 1, 'dma-buf fetched once', str(st))
    # nobody looks at -display none until a screendump: that reads it
    img, err = q.screendump('mbochs')
    tap(img is None and err and 'cannot be read by the CPU' in err,
        'screendump of the unreadable frame (read-only dma-buf, no GPU): an '
        'error that says why, not a picture', err or 'a picture came')
    q.screendump('mbochs-again')
    time.sleep(1.0)
    out = q.output()
    tap(q.alive() and out.count('cannot be read by the CPU') == 1,
        'unmappable dma-buf: one clear warning for two screendumps, QEMU '
        'keeps running', out)
    tap(q.quit(), 'QEMU quits cleanly: exit 0 by itself after quit',
        '%s\n%s' % (q.status(), q.output()[-1500:]))

    # the same with a GL display on the software renderer: importing the
    # read-only dma-buf would crash llvmpipe; the import guard refuses it
    q = start_qemu(['-display', 'egl-headless', '-device',
                    'vfio-pci,sysfsdev=%s,display=on,id=vgpu,addr=05.0,'
                    'x-display-gl=on' % SYSFS] + EXTRA)
    if not tap(q.alive(), 'QEMU starts with pristine mbochs and egl-headless',
               q.output()):
        q.quit()
        return
    q.cfg_write32(dev, 0x10, 0xe0000000)
    q.cfg_write32(dev, 0x18, 0xe1000000)
    q.cfg_write32(dev, 0x04, 0x7)
    for idx, val in ((4, 0), (1, 640), (2, 480), (3, 32), (6, 640), (7, 480),
                     (8, 0), (9, 0), (4, 1)):
        q.qtest('writew 0x%x 0x%x' % (dispi + 2 * idx, val))
    wait_for(lambda: int(q.stats().get('gets', 0)) >= 1, timeout=10)
    time.sleep(2.0)
    out = q.output()
    tap(q.alive() and out.count('cannot import the dma-buf') == 1,
        'egl-headless: the read-only dma-buf is refused before import, '
        'one warning, QEMU alive (no llvmpipe crash)', out[-1500:])
    tap(q.quit(), 'QEMU quits cleanly: exit 0 by itself after quit',
        '%s\n%s' % (q.status(), q.output()[-1500:]))


# display configurations compared between upstream and ours
CONFIGS = [
    ['-display', 'none'],
    ['-display', 'none', '-vnc', '127.0.0.1:1'],
    ['-display', 'egl-headless'],
    ['-display', 'egl-headless', '-vnc', '127.0.0.1:1'],
    ['-display', 'none', '-spice',
     'unix=on,addr=/tmp/vd-spice.sock,disable-ticketing=on,gl=on'],
]


def suite_compare():
    """Start the QEMU under test on vgpusim in each display configuration
    and record what a user gets: does it run, does screendump show the
    device's frame. Used for unmodified QEMU and ours alike
    (docs/upstream-comparison.md)."""
    ctl('pause', 1)
    ctl('cursor', 'off')
    ctl('mode', '640x480')
    for disp in CONFIGS:
        q = start_qemu(disp + ['-device', 'vfio-pci,sysfsdev=%s,display=on,'
                               'id=vgpu,addr=05.0' % SYSFS] + EXTRA)
        try:
            result = compare_one(q)
        except (OSError, RuntimeError) as e:
            time.sleep(0.5)
            result = 'dies after start (%s): %s' % (q.status(), e)
        tail = [ln for ln in q.output().strip().splitlines() if ln][-2:]
        if not q.alive() and tail:
            result += ' / ' + ' / '.join(tail)
        q.quit()
        note('COMPARE-RESULT: %s | %s' % (' '.join(disp), result))
        if '-upstream' not in QEMU:
            # ours must show the frame in every configuration (upstream's
            # results are recorded only: docs/upstream-comparison.md)
            tap(result.startswith('runs; screendump shows the frame'),
                '%s: %s' % (' '.join(disp), result[:150]))


def compare_one(q):
    if not q.alive():
        time.sleep(0.5)
        return 'refuses to start (%s)' % q.status()
    ctl('step', 3)
    want = int(kv(ctl('state'))['frame'])
    img, err = shot_until(q, 'compare', lambda i: decode_frame(i) == want,
                          timeout=4)
    if err:
        return 'runs; screendump: ' + err
    if img and decode_frame(img) == want:
        return 'runs; screendump shows the frame (%dx%d, frame %d)' % (
            img.w, img.h, want)
    if img:
        return 'runs; screendump has no device pixels (%dx%d)' % (img.w, img.h)
    return 'runs; no screendump'


# ---------------------------------------------------------------- unplug

# PIIX4 ACPI PCI hotplug registers (QEMU hw/acpi/pcihp.c, ACPI_PCIHP_ADDR
# 0xae00; libqos pci-pc.c ejects the same way): PCI_SEL_BASE selects the
# bus (bsel 0 = the root bus), PCI_EJ_BASE ejects the slots whose bits are
# written. It is what the guest's ACPI _EJ0 method does.
PCIHP_SEL = 0xae10
PCIHP_EJ = 0xae08
SLOT = 5                                  # addr=05.0


class VncClient(threading.Thread):
    """A VNC viewer asking for updates back to back until stopped. It
    records what it got and how it ended (the test only needs QEMU alive:
    the server may close the connection or send a new desktop size)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.updates = 0
        self.error = None

    def run(self):
        try:
            v = rfbview.Viewer('127.0.0.1', 5900)
            v.request(incremental=False)
            while not self.stop.is_set():
                if not select.select([v.s], [], [], 0.2)[0]:
                    continue
                if v.read_message() is not None:
                    self.updates += 1
                    v.request()
            v.close()
        except Exception as e:  # noqa: BLE001 recorded, not raised
            self.error = repr(e)


def deleted(events):
    return any(e['event'] == 'DEVICE_DELETED' and
               (e.get('data', {}).get('device') == 'vgpu' or
                e.get('data', {}).get('path', '').endswith('/vgpu'))
               for e in events)


def wait_unplugged(q, timeout=10.0):
    """Until DEVICE_DELETED for vgpu arrived or vgpu left
    /machine/peripheral: (event seen, gone from the tree)."""
    deadline = time.time() + timeout
    while True:
        r = q.cmd('qom-list', path='/machine/peripheral')
        gone = 'vgpu' not in [p['name'] for p in r.get('return', [])]
        if deleted(q.events) or gone or time.time() > deadline:
            return deleted(q.events), gone
        time.sleep(0.1)


def suite_unplug():
    """device_del of the vfio-pci display while it scans out and a VNC
    client watches, on the CPU path and the GL path; the test plays the
    guest's part of the ACPI eject. Then device_add brings it back."""
    for display, path in (('none', 'cpu-shadow'),
                          ('egl-headless', 'gl-dmabuf')):
        try:
            unplug_once(display, path)
        except (OSError, RuntimeError) as e:
            tap(False, '-display %s: QEMU answers through unplug and replug'
                % display, str(e))


def unplug_once(display, path):
    known_state(UUID)
    live0 = int(kv(ctl('stats'))['live_dmabufs'])

    def live():
        return int(kv(ctl('stats'))['live_dmabufs'])

    # egl-headless: x-display-gl=on, the GL path (else the CPU maps)
    gl = ',x-display-gl=on' if path == 'gl-dmabuf' else ''
    q = start_qemu(['-display', display, '-vnc', '127.0.0.1:0',
                    '-device', DEVICE_ARGS[1] + gl] + EXTRA)
    if not tap(q.alive(), 'QEMU starts with -display %s -vnc' % display,
               q.output()):
        q.quit()
        return
    try:
        unplug_replug(q, display, path, live0, live)
    except (OSError, RuntimeError) as e:
        tap(False, '-display %s: QEMU answers through unplug and replug'
            % display, '%s (QEMU %s)\n%s' % (e, q.status(), q.output()[-1500:]))
    finally:
        q.quit()
        ctl('pause', 1)


def unplug_replug(q, display, path, live0, live):
    pre = '-display %s: ' % display
    ctl('step', 1)
    img, err = shot_until(q, 'unplug-before',
                          lambda i: decode_frame(i) is not None)
    tap(img is not None and decode_frame(img) is not None,
        pre + 'frames shown before the unplug', err)
    st = q.stats()
    tap(st.get('path') == path, pre + 'the %s path is used' % path, str(st))
    ctl('pause', 0)                  # 60 Hz: it scans out while unplugged
    vnc = VncClient()
    vnc.start()
    wait_for(lambda: vnc.updates >= 2 or vnc.error, timeout=20)
    tap(vnc.updates >= 1, pre + 'a VNC client is connected and gets updates',
        vnc.error)

    # the unplug: QMP asks, the "guest" ejects the slot
    r = q.cmd('device_del', id='vgpu')
    tap('return' in r, pre + 'device_del id=vgpu accepted', str(r))
    q.qtest('outl 0x%x 0x0' % PCIHP_SEL)
    q.qtest('outl 0x%x 0x%x' % (PCIHP_EJ, 1 << SLOT))
    event, gone = wait_unplugged(q)
    tap(gone, pre + 'the device is gone from /machine/peripheral '
        '(DEVICE_DELETED %s)' % ('seen' if event else 'not seen yet'))
    tap(q.alive(), pre + 'QEMU alive after the unplug', q.output()[-2000:])
    # Mesa's llvmpipe keeps the storage of the texture it sampled last
    # until its context draws again: on the GL path one buffer may stay
    # until then (checked exact after the replug below)
    held = 1 if path == 'gl-dmabuf' else 0
    ok = wait_for(lambda: live() - live0 <= held, timeout=5)
    tap(ok, pre + 'every dma-buf released while QEMU runs: device '
        'live_dmabufs %d, before QEMU %d%s' % (
            live(), live0, ' (llvmpipe may hold its last texture)'
            if held else ''))

    # the console went away: no console, or the placeholder, but an answer
    img, err = q.screendump('unplugged')
    tap(q.alive() and (err is not None or decode_frame(img) is None),
        pre + 'screendump after the unplug answers: %s'
        % (('error "%s"' % err) if err else
           'placeholder %dx%d' % (img.w, img.h)),
        img and 'frame %r still shown' % decode_frame(img))
    time.sleep(1.0)                         # the VNC server sees the change
    tap(q.alive(), pre + 'QEMU alive with the VNC client after the unplug '
        '(client: %d updates, %s)' % (vnc.updates,
                                      vnc.error or 'still connected'))
    vnc.stop.set()
    vnc.join(5)

    # the replug: the same device again, frames again
    extra = {'x-display-gl': 'on'} if path == 'gl-dmabuf' else {}
    r = q.cmd('device_add', driver='vfio-pci', sysfsdev=SYSFS,
              display='on', id='vgpu', addr='05.0', **extra)
    tap('return' in r, pre + 'device_add brings vgpu back', str(r))
    st = wait_for(lambda: q.stats(), timeout=10)
    tap(bool(st), pre + 'engine stats readable after device_add', str(st))
    img, err = shot_until(q, 'replug', lambda i: decode_frame(i) is not None,
                          timeout=10)
    first = img and decode_frame(img)
    img, err = shot_until(q, 'replug-2', lambda i: first is not None and
                          (decode_frame(i) or -1) > first, timeout=10)
    tap(first is not None and img is not None and
        (decode_frame(img) or -1) > first,
        pre + 'after device_add the frame number advances (%r -> %r)'
        % (first, img and decode_frame(img)), err)
    tap(q.alive(), pre + 'QEMU alive after unplug and replug',
        q.output()[-2000:])
    ctl('pause', 1)
    ok = wait_for(lambda: live() - live0 ==
                  int(q.stats().get('fds_open', -1)), timeout=3)
    tap(ok, pre + 'after the replug, device live_dmabufs - %d = engine '
        'fds_open (%s): nothing from before the unplug is held'
        % (live0, q.stats().get('fds_open')), 'live %d' % live())


# vgpusim's display event values (v6 of GVT-g's proposal, kvmgt's)
V6_PRI, V6_CUR = 1 << 56, 1 << 48
# the query ceiling of docs/security.md: ticks at least
# x-display-refresh-min-ms (4) apart, at most 2 queries (both planes) each
CEILING_TICKS_PER_S = 1000 / 4
CEILING_QUERIES_PER_S = 2 * CEILING_TICKS_PER_S


# the poll interval while the guest flips at 60 Hz: half its period
POLL_WHILE_FLIPPING_NS = 1000000000 // 60 // 2


def short_frames(t0_ns, t1_ns, under_ns):
    """How many frames flipped in [t0_ns, t1_ns] (CLOCK_MONOTONIC, this
    VM's) stayed on screen less than @under_ns, and of how many timed,
    from vgpusim's frame_times (when each frame became visible)."""
    gaps = rfbview.frame_gaps('%s/vgpusim/frame_times' % SYSFS,
                              t0_ns, t1_ns)
    return sum(g < under_ns for g in gaps), len(gaps)


def suite_event():
    """The display event as v6 of GVT-g's proposal has it
    (include/hw/vfio/vfio-gfx-irq.h), which vgpusim offers: found at
    cap_offset 20 with its CAP_DISPLAY values, armed by default, one signal
    per vblank, every flip seen with only the primary queried between the
    slow safety polls; disarmed with DATA_NONE, count 0 (vgpusim refuses
    fd -1 as kvmgt does); x-display-event=off polls as before."""
    def device_stat(name):
        return int(kv(ctl('stats'))[name])

    for opt, armed in (('', True), (',x-display-event=off', False)):
        known_state(UUID, flip_hz=60)
        q = start_qemu(['-display', 'none', '-vnc', '127.0.0.1:0',
                        '-device', DEVICE_ARGS[1] + opt] + EXTRA)
        pre = 'display=on%s: ' % opt
        if not tap(q.alive(), pre + 'QEMU starts', q.output()):
            q.quit()
            continue
        st = q.stats()
        tap(st.get('display_event') == ('1' if armed else '0') and
            device_stat('display_armed') == int(armed),
            pre + 'display event %s' % ('armed' if armed else 'not used'),
            str(st))
        if armed:
            tap(int(st.get('display_event_pri_val', '0'), 16) == V6_PRI and
                int(st.get('display_event_cur_val', '0'), 16) == V6_CUR,
                pre + 'v6 layout: CAP_TYPE found at cap_offset 20, '
                'CAP_DISPLAY values primary 1<<56, cursor 1<<48 read',
                str(st))
        # the counters start with nothing pending (a flip made before
        # reset_stats and seen or replaced after it would count)
        wait_for(lambda: kv(ctl('stats'))['flip_pending'] == '0',
                 timeout=2)
        ctl('reset_stats', 1)
        st0 = q.stats()
        t0 = time.monotonic()
        t0_ns = time.monotonic_ns()
        ctl('pause', 0)
        time.sleep(3)
        ctl('pause', 1)
        dt = time.monotonic() - t0
        t1_ns = time.monotonic_ns()
        # a frame in flight when paused, and the last flip's query, may
        # still be on their way
        time.sleep(0.1)
        wait_for(lambda: kv(ctl('stats'))['flip_pending'] == '0',
                 timeout=2)
        dev = kv(ctl('stats'))
        made, seen = int(dev['flips_made']), int(dev['flips_seen'])
        if armed:
            tap(made > 0 and seen >= made and dev['flip_pending'] == '0',
                pre + '60 Hz for 3 s: every flip seen (%d seen, %d made, '
                '%s missed)' % (seen, made, dev['flips_missed']), str(dev))
        else:
            # a poll sees a frame that stays on screen for one poll
            # interval (half the flip period while flipping); a late
            # vblank timer in a loaded VM can show a frame for less, and
            # only those may be missed
            short, timed = short_frames(t0_ns, t1_ns,
                                        POLL_WHILE_FLIPPING_NS)
            tap(made > 0 and seen + short >= made and
                dev['flip_pending'] == '0',
                pre + '60 Hz for 3 s: every flip seen but those on screen '
                'less than the %.1f ms poll (%d seen, %d made, %s missed, '
                '%d of %d timed on screen that briefly)' % (
                    POLL_WHILE_FLIPPING_NS / 1e6, seen, made,
                    dev['flips_missed'], short, timed), str(dev))
        dev = kv(ctl('stats'))
        events = int(dev['display_events'])
        if armed:
            st = q.stats()
            reads = int(st['display_events']) - int(st0['display_events'])
            tap(events == made and int(dev['display_events_primary']) ==
                made and int(dev['display_events_cursor']) == 0 and
                0 < reads <= events,
                pre + 'one signal per vblank with a flip (%d for %d flips, '
                'primary value each), QEMU read %d' % (events, made, reads))
            pri = int(st['display_event_primary']) - \
                int(st0['display_event_primary'])
            both = int(st['display_event_both']) - \
                int(st0['display_event_both'])
            cur = int(st['display_event_cursor']) - \
                int(st0['display_event_cursor'])
            # one signal read alone is "primary only"; two read together
            # (QEMU late by a frame) are 2<<56, which names both
            tap(cur == 0 and pri > 0 and pri + both == reads,
                pre + 'counter reads: %d "primary only" (1<<56), %d both '
                '(signals added up), %d cursor only' % (pri, both, cur),
                str(st))
            # the primary per read; the cursor only at the safety poll
            # and for the reads that named both
            polls = 2 + dt * 1000 / 250
            tap(int(dev['queries_primary']) <= reads + polls and
                int(dev['queries_cursor']) <= polls + both,
                pre + '%s primary queries for %d reads, %s cursor queries '
                'in %.1f s: the cursor only at the 250 ms safety poll'
                % (dev['queries_primary'], reads, dev['queries_cursor'], dt))
            # a device reset disarms and arms again: DATA_NONE, count 0
            q.cmd('system_reset')
            ok = wait_for(lambda: int(kv(ctl('stats'))['display_arms']) >= 1,
                          timeout=5)
            dev = kv(ctl('stats'))
            tap(ok and int(dev['display_disarms']) >= 1 and
                int(dev['display_disarm_refused']) == 0 and
                dev['display_armed'] == '1' and
                q.stats().get('display_event') == '1',
                pre + 'system_reset: disarmed with DATA_NONE, count 0 (no '
                'fd -1, which vgpusim refuses as kvmgt does), armed again',
                str(dev))
        else:
            tap(events == 0, pre + 'no display events signalled (%d)'
                % events)
        tap(q.quit(), pre + 'QEMU quits cleanly: exit 0 by itself after quit',
            '%s\n%s' % (q.status(), q.output()[-1500:]))


def suite_storm():
    """vgpusim's storm control signals the display event 10 000 times a
    second (both planes' values each time): QEMU's queries per second stay
    under the ceiling of docs/security.md, its wake-ups are bounded too,
    and the last frame, flipped inside the storm, is shown although the
    safety poll is set to 10 s (it came in a held window and was queried
    at the window's end)."""
    known_state(UUID, flip_hz=60)
    ctl('storm', 0)
    q = start_qemu(['-display', 'none', '-vnc', '127.0.0.1:0',
                    '-device', DEVICE_ARGS[1] +
                    ',x-display-refresh-max-ms=10000'] + EXTRA)
    if not tap(q.alive() and q.stats().get('display_event') == '1',
               'QEMU starts, display event armed', q.output()):
        q.quit()
        return
    try:
        ctl('reset_stats', 1)
        st0 = q.stats()
        t0 = time.monotonic()
        ctl('storm', 10000)
        ctl('pause', 0)
        time.sleep(3)
        ctl('pause', 1)
        ctl('step', 1)          # the final frame, inside the storm
        ctl('storm', 0)
        dt = time.monotonic() - t0
        dev = kv(ctl('stats'))
        st = q.stats()
    finally:
        ctl('storm', 0)
    frame = int(kv(ctl('state'))['frame'])
    signals = int(dev['storm_signals'])
    queries = int(dev['queries'])
    ticks = int(st['ticks']) - int(st0['ticks'])
    reads = int(st['display_events']) - int(st0['display_events'])
    held = int(st['display_events_held']) - int(st0['display_events_held'])
    note('storm: %.1f s, %d signals (%.0f/s), %d queries (%.0f/s), %d ticks '
         '(%.0f/s), %d counter reads (%.0f/s), %d held, flips %s made %s '
         'seen' % (dt, signals, signals / dt, queries, queries / dt, ticks,
                   ticks / dt, reads, reads / dt, held, dev['flips_made'],
                   dev['flips_seen']))
    tap(signals / dt >= 8000,
        'the device signalled %.0f times a second' % (signals / dt))
    tap(queries <= CEILING_QUERIES_PER_S * dt + 4,
        '%.0f queries/s under the storm: at most the ceiling, %d/s'
        % (queries / dt, CEILING_QUERIES_PER_S))
    tap(ticks <= CEILING_TICKS_PER_S * dt + 2 and
        reads <= 2 * CEILING_TICKS_PER_S * dt + 4 and held > 0,
        '%.0f ticks/s, %.0f wake-ups/s reading the counter (at most 2 a '
        'window), %d reads held to a window\'s end'
        % (ticks / dt, reads / dt, held))
    img, err = shot_until(q, 'storm-final',
                          lambda i: decode_frame(i) == frame, timeout=2)
    got = decode_frame(img) if img else None
    tap(got == frame, 'the final frame %d shown within 2 s of the storm '
        '(the safety poll is 10 s): the event held in its window was '
        'queried at its end' % frame, err or 'frame %s shown' % got)
    tap(int(dev['flips_seen']) >= int(dev['flips_made']) - 1,
        'flips under the storm: %s of %s seen' % (dev['flips_seen'],
                                                 dev['flips_made']))
    tap(q.quit(), 'QEMU quits cleanly: exit 0 by itself after quit',
        '%s\n%s' % (q.status(), q.output()[-1500:]))


def suite_idle_input():
    """Polling (x-display-event=off): an idle desktop backs off to the
    1 s poll (about one primary query a second), and the user's input
    (QMP input-send-event, as VNC, SPICE or GTK send it) brings the poll
    back to the active rate: a frame the guest draws 30 ms after a
    keystroke is seen within 250 ms, not up to a second later."""
    known_state(UUID)
    q = start_qemu(['-display', 'none', '-vnc', '127.0.0.1:0',
                    '-device', DEVICE_ARGS[1] + ',x-display-event=off']
                   + EXTRA)
    if not tap(q.alive() and q.stats().get('display_event') == '0',
               'QEMU starts, polling', q.output()):
        q.quit()
        return

    def idle():
        return q.stats().get('interval_ms') == '1000'
    tap(wait_for(idle, timeout=10),
        'idle: the poll backs off to 1000 ms', str(q.stats()))
    dev0, t0 = kv(ctl('stats')), time.monotonic()
    time.sleep(5)
    dev, dt = kv(ctl('stats')), time.monotonic() - t0
    pq = int(dev['queries_primary']) - int(dev0['queries_primary'])
    tap(pq <= dt + 1, 'idle: %d primary queries in %.1f s (the 1 s poll)'
        % (pq, dt))
    lat = []
    wakes0 = int(q.stats().get('input_wakes', 0))
    for i in range(5):
        wait_for(idle, timeout=10)
        time.sleep(0.1 + 0.17 * i)     # another phase of the idle poll
        for down in (True, False):
            q.cmd('input-send-event', events=[
                {'type': 'key', 'data': {'down': down, 'key': {
                    'type': 'qcode', 'data': 'a'}}}])
        time.sleep(0.03)               # the guest answers the keystroke
        seen0 = int(q.stats()['flips_seen'])
        t0 = time.monotonic()
        ctl('step', 1)
        wait_for(lambda: int(q.stats()['flips_seen']) > seen0, timeout=3,
                 interval=0.005)
        lat.append(1000 * (time.monotonic() - t0))
    wakes = int(q.stats().get('input_wakes', 0)) - wakes0
    note('frame after a keystroke seen after (ms): %s' %
         ', '.join('%.0f' % x for x in lat))
    tap(max(lat) < 250 and wakes >= 5,
        'input: a frame drawn 30 ms after a keystroke is seen within 250 ms '
        'in 5 of 5 tries (the idle poll is 1 s; worst %.0f ms; %d input '
        'wakes)' % (max(lat), wakes))
    # a pointer that moves (relative motion, as VNC and GTK send it), not a
    # key: three tries at other phases of the idle poll
    plat = []
    for i in range(3):
        wait_for(idle, timeout=10)
        time.sleep(0.15 + 0.25 * i)
        q.cmd('input-send-event', events=[
            {'type': 'rel', 'data': {'axis': 'x', 'value': 7}},
            {'type': 'rel', 'data': {'axis': 'y', 'value': -3}}])
        time.sleep(0.03)
        seen0 = int(q.stats()['flips_seen'])
        t0 = time.monotonic()
        ctl('step', 1)
        wait_for(lambda: int(q.stats()['flips_seen']) > seen0, timeout=3,
                 interval=0.005)
        plat.append(1000 * (time.monotonic() - t0))
    tap(max(plat) < 250,
        'input: a frame drawn 30 ms after a pointer move is seen within '
        '250 ms in 3 of 3 tries (worst %.0f ms)' % max(plat))
    tap(q.quit(), 'QEMU quits cleanly: exit 0 by itself after quit',
        '%s\n%s' % (q.status(), q.output()[-1500:]))
    # the display event armed: the device says when; input changes nothing
    known_state(UUID)
    q = start_qemu(['-display', 'none', '-vnc', '127.0.0.1:0'] +
                   DEVICE_ARGS + EXTRA)
    if not tap(q.alive() and q.stats().get('display_event') == '1',
               'QEMU starts, display event armed', q.output()):
        q.quit()
        return
    time.sleep(1)
    for _ in range(20):
        q.cmd('input-send-event', events=[
            {'type': 'key', 'data': {'down': True, 'key': {
                'type': 'qcode', 'data': 'a'}}}])
    st = q.stats()
    tap(st.get('input_wakes') == '0' and st.get('interval_ms') == '1000',
        'event-driven: 20 keystrokes wake nothing (input_wakes %s, the '
        'safety poll stays %s ms)' % (st.get('input_wakes'),
                                     st.get('interval_ms')))
    tap(q.quit(), 'QEMU quits cleanly: exit 0 by itself after quit',
        '%s\n%s' % (q.status(), q.output()[-1500:]))


def suite_egl_auto():
    """egl-headless with the default x-display-gl=auto: a linear buffer is
    mapped by the CPU (no GL import and read-back per frame); a buffer the
    CPU cannot map (tiled) hands the mode to the GL path once, and the
    choice then stands for that mode (never per buffer); a new mode chooses
    again. The frame stays right and nothing leaks."""
    known_state(UUID)
    q = start_qemu(['-display', 'egl-headless'] + DEVICE_ARGS + EXTRA)
    if not tap(q.alive(), 'QEMU starts with egl-headless', q.output()):
        q.quit()
        return
    def exact(name, frame, mode=(640, 480)):
        """screendumps until one equals the device's frame pixel for pixel:
        (differing pixels, -1 for none or another size; what was wrong)"""
        want = gui_images.expected_for('XRGB8888', mode[0], mode[1], frame)
        _, n, why = gui_images.screendump_until(q, name, want)
        return n, why

    ctl('step', 3)
    n, why = exact('auto-linear', 3)
    tap(n == 0 and q.stats().get('path') == 'cpu-shadow',
        'linear frame 3: screendump pixel-exact, the CPU maps it '
        '(cpu-shadow)', '%s; path %s' % (why, q.stats().get('path')))
    # the refusal is said when the mode moves to GL: count from here
    before = q.output().count('modifier')
    ctl('modifier', 'x-tiled')
    ctl('step', 1)
    tap(wait_for(lambda: q.stats().get('path') == 'gl-dmabuf', timeout=5),
        'a tiled frame: the GL path (gl-dmabuf)', q.stats().get('path'))
    # vgpusim lays x-tiled pixels out in Intel's X tiling
    # (docs/vgpusim.md): an importer that takes the modifier shows frame 4
    # exactly; one that cannot (llvmpipe lists LINEAR only) must say so,
    # once, naming the modifier: the import guard refuses it
    # (docs/dmabuf-egl.md) instead of showing garbage
    n, why = exact('auto-tiled', 4)
    said = q.output().count('modifier') - before
    name = ('the tiled frame 4 on the GL path: screendump pixel-exact, or '
            'one message naming the modifier the display cannot import')
    tap(n == 0 or said == 1, name, '%s; %d messages' % (why, said))
    ctl('modifier', 'linear')
    ctl('step', 1)
    n, why = exact('auto-back', 5)
    tap(n == 0 and q.stats().get('path') == 'gl-dmabuf',
        'linear again in the same mode: frame 5 pixel-exact, the GL path '
        'stays (chosen once per mode, not per buffer)',
        '%s; path %s' % (why, q.stats().get('path')))
    ctl('mode', '800x600')
    ctl('step', 1)
    n, why = exact('auto-mode', 6, (800, 600))
    tap(n == 0 and q.stats().get('path') == 'cpu-shadow',
        'a new mode (800x600, linear): frame 6 pixel-exact, chosen again, '
        'the CPU path', '%s; path %s' % (why, q.stats().get('path')))
    st = q.stats()
    live = int(kv(ctl('stats'))['live_dmabufs'])
    tap(int(st.get('fds_open', -1)) == live,
        'engine fds_open %s = device live_dmabufs %d after two switches'
        % (st.get('fds_open'), live))
    out = q.output()
    tap(q.alive() and out.count('display path') == 2,
        'QEMU alive; one info line per path taken (cpu, gl)', out[-1500:])
    q.quit()


def suite_alternate():
    """A guest that alternates linear and tiled buffers every frame for
    10 s under egl-headless (x-display-gl=auto): the presenter's choice
    does not change after the first tiled buffer, the device is asked for
    each buffer once (GETs = distinct buffers), and the log stays bounded."""
    known_state(UUID, flip_hz=60)
    ctl('nbufs', 2)
    try:
        ctl('modifier', 'alternate')
    except OSError as e:
        tap(False, 'vgpusim has modifier=alternate', str(e))
        return
    q = start_qemu(['-display', 'egl-headless', '-vnc', '127.0.0.1:0'] +
                   DEVICE_ARGS + EXTRA)
    if not tap(q.alive(), 'QEMU starts with egl-headless', q.output()):
        q.quit()
        return
    # one frame: buffer 1, x-tiled (a second step in the same write would
    # replace it within microseconds, before the vblank's signal is read)
    ctl('step', 1)
    # the first tiled buffer has moved the mode to the GL path (once)
    tap(wait_for(lambda: q.stats().get('path') == 'gl-dmabuf', timeout=10),
        'the first tiled buffer: the GL path', str(q.stats()))
    st0 = q.stats()
    ctl('reset_stats', 1)
    ctl('pause', 0)
    time.sleep(10)
    ctl('pause', 1)
    time.sleep(0.5)
    st = q.stats()
    dev = kv(ctl('stats'))
    flips = int(st.get('flips_seen', 0)) - int(st0.get('flips_seen', 0))
    made = int(dev.get('flips_made', 0))
    # the GL path imports and reads back every frame on llvmpipe under TCG:
    # the VM's guest flips slower than 60 Hz; what counts is that QEMU
    # follows it
    # (measured here: 49 of 600: llvmpipe imports and reads back each frame)
    tap(made >= 20 and flips >= 20,
        '10 s of alternating buffers: QEMU kept up on the GL path, %d of the '
        'device\'s %d flips seen' % (flips, made), '%s %s' % (st, dev))
    tap(st.get('path_changes') == st0.get('path_changes') and
        int(st.get('path_changes', 99)) <= 2,
        'the path stays %s while buffers alternate (path_changes %s, '
        'then %s)' % (st.get('path'), st0.get('path_changes'),
                      st.get('path_changes')), str(st))
    tap(int(st.get('gets', 99)) == 2,
        'the device was asked for each of the 2 buffers once (gets %s)'
        % st.get('gets'), str(st))
    tap(int(st.get('fds_open', -1)) == int(dev.get('live_dmabufs', -2)),
        'engine fds_open = device live_dmabufs', '%s %s' % (st, dev))
    out = q.output()
    lines = len(out.splitlines())
    tap(q.alive() and out.count('display path') <= 2 and lines <= 10,
        'QEMU alive, %d lines of output, %d path lines'
        % (lines, out.count('display path')), out[-1500:])
    q.quit()
    ctl('modifier', 'linear')


ALL_FORMATS = ('XRGB8888', 'ARGB8888', 'XBGR8888', 'ABGR8888', 'RGBX8888',
               'BGRX8888', 'RGBA8888', 'BGRA8888', 'XRGB2101010',
               'ARGB2101010', 'XBGR2101010', 'RGB888', 'BGR888', 'RGB565',
               'BGR565')


SCREENDUMP_CONSOLES = {
    'cpu': ['-display', 'none'],
    'egl-auto': ['-display', 'egl-headless'],
    'egl-gl': ['-display', 'egl-headless'],
    'spice-gl': ['-display', 'none', '-spice',
                 'unix=on,addr=/tmp/qtest-spice.sock,disable-ticketing=on,'
                 'gl=on'],
}


def suite_screendump(console):
    """screendump (PPM and PNG) of one console kind, as a new user tries
    it: 1366x768 (the commonest laptop panel: width * 3 is not a multiple
    of 4), other widths that are not multiples of 4, every format vgpusim
    draws, a stride wider than the row: pixel-exact against the frame the
    device shows. A hostile stride (not a multiple of the pixel size): a
    clear error, QEMU alive, the last good frame kept."""
    known_state(UUID)
    opts = ',x-display-gl=on' if console == 'egl-gl' else ''
    q = start_qemu(SCREENDUMP_CONSOLES[console] +
                   ['-device', DEVICE_ARGS[1] + opts] + EXTRA)
    if not tap(q.alive(), '%s: QEMU starts' % console, q.output()):
        q.quit()
        return

    def check(fmt, mode, what, image='ppm', cursor=None):
        ctl('step', 1)
        frame = int(kv(ctl('state'))['frame'])
        w, h = (int(v) for v in mode.split('x'))
        want = gui_images.expected_for(fmt, w, h, frame)
        if cursor:
            want = gui_images.with_cursor(want, *cursor)
        _, n, why = gui_images.screendump_until(
            q, '%s-%s-%s' % (console, fmt, mode), want, image)
        tap(q.alive() and n == 0,
            '%s: screendump %s of %s at %s%s: pixel-exact' %
            (console, image.upper(), fmt, mode, what), why)

    ctl('mode', '1366x768')
    check('XRGB8888', '1366x768', '', 'png')
    for fmt in ALL_FORMATS:
        try:
            ctl('format', fmt)
        except OSError as e:
            tap(False, '%s: vgpusim draws %s' % (console, fmt), str(e))
            continue
        ctl('mode', '1366x768')
        check(fmt, '1366x768', '')
    for fmt, mode in (('RGB888', '1365x767'), ('BGR888', '1023x601'),
                      ('XRGB8888', '1365x767'), ('RGB565', '1023x601')):
        ctl('format', fmt)
        ctl('mode', mode)
        check(fmt, mode, ' (odd width)')
    ctl('format', 'XRGB8888')
    ctl('mode', '1366x768')
    ctl('stride', str(1366 * 4 + 192))
    check('XRGB8888', '1366x768', ', stride %d' % (1366 * 4 + 192))
    ctl('format', 'RGB888')
    ctl('mode', '1365x767')
    ctl('stride', str(4098))
    check('RGB888', '1365x767', ', stride 4098 (padded, not a multiple '
          'of 4)')
    # the cursor plane where a user puts it last: half off the bottom-left
    # corner (a negative position), and at the right edge of an odd width
    ctl('cursor', 'on')
    ctl('cursor_hot', '32 32')
    for fmt, mode, at in (('XRGB8888', '1366x768', (-20, 730)),
                          ('RGB888', '1365x767', (1340, 5))):
        ctl('format', fmt)
        ctl('mode', mode)
        ctl('cursor_pos', '%d %d' % at)
        check(fmt, mode, ', cursor at %d,%d (partly off the frame)' % at,
              cursor=at)
    ctl('cursor', 'off')

    # hostile: a stride that puts rows off the pixels' alignment
    ctl('format', 'XRGB8888')
    ctl('mode', '1366x768')
    ctl('step', 1)
    good = int(kv(ctl('state'))['frame'])
    shot_until(q, 'pre-hostile-stride', lambda i: decode_frame(i) == good)
    refused0 = int(q.stats().get('planes_refused', 0))
    try:
        ctl('fault', 'plane stride_unaligned')
    except OSError as e:
        tap(False, '%s: vgpusim has fault plane stride_unaligned' % console,
            str(e))
    else:
        time.sleep(0.5)
        img, err = q.screendump('%s-hostile-stride' % console)
        st = q.stats()
        out = q.output()
        tap(q.alive() and img is not None and decode_frame(img) == good and
            int(st.get('planes_refused', 0)) > refused0 and
            out.count('bad stride') == 1,
            '%s: stride not a multiple of the pixel size: refused with one '
            'warning, QEMU alive, last good frame %d kept' % (console, good),
            err or '%s %s' % (st, out[-800:]))
        ctl('fault', 'clear')
    tap(q.quit(), '%s: QEMU quits cleanly: exit 0 by itself after quit'
        % console, '%s\n%s' % (q.status(), q.output()[-1500:]))


def suite_spice_noack():
    """SPICE gl=on with a local client that never acknowledges a draw (the
    console stays GL-blocked), then system_reset, then a new mode: QEMU
    stays alive (under ASan in check-qtest-asan: no use of a freed
    QemuDmaBuf) and screendump shows the new frame."""
    known_state(UUID)
    sock = '/tmp/qtest-noack.sock'
    q = start_qemu(['-display', 'none', '-spice',
                    'unix=on,addr=%s,disable-ticketing=on,gl=on' % sock] +
                   DEVICE_ARGS + EXTRA)
    if not tap(q.alive(), 'QEMU starts with -spice gl=on', q.output()):
        q.quit()
        return
    ctl('step', 1)
    here = os.path.dirname(os.path.abspath(__file__))
    client = subprocess.Popen(
        [sys.executable, os.path.join(here, 'spice_gl_client.py'), sock,
         os.path.join(OUTDIR, 'noack.ppm'), '30'],
        env=dict(os.environ, SPICE_GL_NOACK='1'),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(4)                   # connected, the first draw unanswered
        ctl('step', 3)                  # flips while blocked
        time.sleep(1)
        st = q.stats()
        tap(q.alive() and client.poll() is None,
            'client connected and not acknowledging; QEMU alive', str(st))
        try:
            r = q.cmd('system_reset')
        except OSError as e:
            r = {'error': str(e)}
        time.sleep(0.5)
        if not tap('return' in r and q.alive(), 'system_reset while '
                   'blocked: QEMU alive', '%s\n%s' % (r, q.output()[-3000:])):
            return
        ctl('mode', '800x600')
        ctl('step', 1)
        want = int(kv(ctl('state'))['frame'])
        img, err = shot_until(q, 'noack-after', lambda i: (i.w, i.h) ==
                              (800, 600) and decode_frame(i) == want,
                              timeout=10)
        tap(q.alive() and img is not None and decode_frame(img) == want,
            'a new mode after the reset: screendump shows frame %d at '
            '800x600 while the client still holds its draw' % want,
            err or (img and '%dx%d frame %r' % (img.w, img.h,
                                                decode_frame(img))))
        ctl('mode', '640x480')
        ctl('step', 1)
        time.sleep(1)
        tap(q.alive(), 'another resize while blocked: QEMU alive',
            q.output()[-1500:])
    finally:
        client.kill()
        client.wait()
    tap(q.quit(), 'QEMU quits cleanly: exit 0 by itself after quit',
        '%s\n%s' % (q.status(), q.output()[-1500:]))


# ---------------------------------------------------------------- realize

def qemu_fds(q):
    """QEMU's open file descriptors (/proc/PID/fd): {fd: what it is}."""
    d = '/proc/%d/fd' % q.proc.pid
    out = {}
    try:
        for fd in os.listdir(d):
            try:
                out[fd] = os.readlink(os.path.join(d, fd))
            except OSError:
                pass
    except OSError:
        pass
    return out


# QEMU never frees a graphic console: graphic_console_close() leaves it,
# with its placeholder surface (a memfd named "displaysurface"), for the
# next graphic_console_init() to reuse. The first console QEMU ever makes
# is one such fd for the life of the process, by QEMU's design (the same
# after an unplug), and never more than one: a closed console is reused.
CONSOLE_SURFACE = '/memfd:displaysurface'


# vfio-pci realize errors reached with device_add, in the order realize
# meets them: (what, device properties, the error's words, mdev); 'mbochs'
# is the stock sample (no display event), the others vgpusim.
REALIZE_ERRORS = [
    ('a bound of the console (before it builds anything)',
     {'x-display-refresh-min-ms': 20000}, 'must be at most', 'vgpusim'),
    ('x-display-event=on on a device without one (inside the console\'s '
     'init, after the engine, console, EDID and timer)',
     {'x-display-event': 'on'}, 'offers no display event', 'mbochs'),
    ('xres/yres on a device without EDID (after the probe)',
     {'xres': 1024, 'yres': 768}, 'need edid support', 'vgpusim'),
    ('enable-migration=on on a device without migration (after the probe, '
     'the last step)',
     {'enable-migration': 'on'}, 'migration', 'vgpusim'),
]


def suite_realize_errors():
    """Every vfio-pci realize error after the display probe, through
    device_add into one QEMU: the QMP error comes back, QEMU stays alive,
    its fds and the device's live dma-bufs are back where they were, the
    device's query counter stops (no poll left behind), and the device
    can be added again. Then the errors only the command line reaches
    (vfio-pci-nohotplug's ramfb): the display is torn down (trace) before
    QEMU exits with the error."""
    known_state(UUID)
    ctl('pause', 0)                # the device flips: a poll would fetch
    mbochs = os.environ.get('MBOCHS_UUID', '')
    sysfs = {'vgpusim': SYSFS,
             'mbochs': mbochs and '/sys/bus/mdev/devices/%s' % mbochs}

    def dev(name):
        return int(kv(ctl('stats'))[name])

    q = start_qemu(['-display', 'none'] + EXTRA)
    if not tap(q.alive(), 'QEMU starts without the device', q.output()):
        q.quit()
        return
    try:
        time.sleep(0.5)
        fds0, live0 = qemu_fds(q), dev('live_dmabufs')
        for what, props, words, mdev in REALIZE_ERRORS:
            if not sysfs[mdev]:
                tap(True, '%s # SKIP no %s mdev' % (what, mdev))
                continue
            if 'xres' in props:
                ctl('edid_region', 0)
            try:
                r = q.cmd('device_add', driver='vfio-pci',
                          sysfsdev=sysfs[mdev], display='on', id='vgpu',
                          addr='05.0', **props)
            finally:
                ctl('edid_region', 1)
            err = r.get('error', {}).get('desc', '')
            tap(q.alive() and words.lower() in err.lower(),
                '%s: device_add fails with "%s", QEMU alive' % (what, err),
                '%s\n%s' % (r, q.output()[-1500:]))
            time.sleep(0.5)        # a poll left behind would have ticked
            q0 = dev('queries')
            time.sleep(1.0)
            q1 = dev('queries')
            fds, live = qemu_fds(q), dev('live_dmabufs')
            new = {fd: t for fd, t in fds.items() if fds0.get(fd) != t}
            console = [fd for fd, t in new.items()
                       if t.startswith(CONSOLE_SURFACE)]
            extra = sorted('%s -> %s' % (fd, t) for fd, t in new.items()
                           if fd not in console)
            gone = sorted(set(fds0) - set(fds))
            tap(q.alive() and not extra and not gone and len(console) <= 1
                and live == live0 and q1 == q0,
                '%s: QEMU fds as before (%d, and %d console surface QEMU '
                'keeps for reuse), device live_dmabufs %d (before %d), device '
                'queries %d -> %d in 1 s' % (
                    what, len(fds0), len(console), live, live0, q0, q1),
                'new fds: %s; gone: %s' % (extra, gone))
        # the device was let go: it can be added again, and shows frames
        r = q.cmd('device_add', driver='vfio-pci', sysfsdev=SYSFS,
                  display='on', id='vgpu', addr='05.0')
        tap('return' in r and bool(wait_for(lambda: q.stats(), timeout=10)),
            'after the errors the same device is added and its display runs',
            '%s\n%s' % (r, q.output()[-1500:]))
    finally:
        ok = q.quit()
        ctl('pause', 1)
    tap(ok, 'QEMU quits cleanly: exit 0 by itself after quit', q.status())

    # vfio-pci-nohotplug (ramfb) only on the command line: QEMU exits with
    # the error; the display is torn down first (its teardown traced)
    trace = ['-trace', 'vfio_display_dmabuf_console_init',
             '-trace', 'vfio_display_dmabuf_console_finalize']
    for what, opts, extra, words in (
            ('x-ramfb-migrate=on without migration (after the probe)',
             ',ramfb=on,x-ramfb-migrate=on,enable-migration=off', [],
             'x-ramfb-migrate requires enable-migration'),
            ('ramfb=on without fw_cfg DMA (inside the console\'s init)',
             ',ramfb=on', ['-global', 'fw_cfg_io.dma_enabled=off'],
             'requires fw_cfg with DMA')):
        q = start_qemu(['-display', 'none', '-device',
                        'vfio-pci-nohotplug,sysfsdev=%s,display=on,id=vgpu,'
                        'addr=05.0%s' % (SYSFS, opts)] + extra + trace + EXTRA)
        try:
            q.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        out = q.output()
        lines = [ln for ln in out.splitlines()
                 if 'vfio_display_dmabuf_console_' in ln]
        tap(q.status() == 'exit 1' and words in out and
            any('_init' in ln for ln in lines) and
            '_finalize' in (lines[-1] if lines else ''),
            '%s: QEMU exits 1 with "%s", the display torn down first'
            % (what, words), '%s\n%s' % (q.status(), out[-1500:]))
        q.quit()


def main():
    os.makedirs(OUTDIR, exist_ok=True)
    {'vgpusim': suite_vgpusim,
     'vgpusim-egl': lambda: suite_vgpusim('egl-headless', 'gl-dmabuf',
                                          ',x-display-gl=on'),
     'egl-auto': suite_egl_auto,
     'alternate': suite_alternate,
     'spice-noack': suite_spice_noack,
     'screendump-cpu': lambda: suite_screendump('cpu'),
     'screendump-egl-auto': lambda: suite_screendump('egl-auto'),
     'screendump-egl-gl': lambda: suite_screendump('egl-gl'),
     'screendump-spice-gl': lambda: suite_screendump('spice-gl'),
     'event': suite_event,
     'storm': suite_storm,
     'idle-input': suite_idle_input,
     'mbochs': suite_mbochs,
     'compare': suite_compare,
     'unplug': suite_unplug,
     'realize-errors': suite_realize_errors,
     'region': suite_region}[SUITE]()
    return tap.done(SUITE)


if __name__ == '__main__':
    sys.exit(main())
