#!/usr/bin/env python3
# make-corpus.py: writes the seed corpus of the fuzz harnesses into
# tests/fuzz/corpus/<harness>/ (committed; rerun after changing an input
# format). Each seed is a small, readable scenario in the harness's format
# (see the comments at the top of fuzz-engine.c and fuzz-check-plane.c).
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(harness, name, data):
    d = os.path.join(HERE, 'corpus', harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(bytes(data))


# ---- fuzz-check-plane: mode, fourcc index, struct vfio_device_gfx_plane_info
XR24 = 0x34325258
AR24 = 0x34325241


def plane(ptype, fourcc, w, h, stride, size, dmabuf_id, x=0, y=0, hx=0, hy=0,
          mod=0):
    return struct.pack('<IIIIQIIIIIIIII', 64, 2, ptype, fourcc, mod, w, h,
                       stride, size, x, y, hx, hy, dmabuf_id)


def check_plane(name, mode, data):
    write('fuzz-check-plane', name, bytes([mode, 0]) + data)


check_plane('primary-640x480', 0, plane(1, XR24, 640, 480, 2560, 1228800, 1))
check_plane('primary-max', 0, plane(1, XR24, 16384, 16384, 65536, 1 << 30, 7))
check_plane('primary-stride-short', 0, plane(1, XR24, 640, 480, 2556,
                                             1228800, 1))
check_plane('cursor-64', 1, plane(2, AR24, 64, 64, 256, 16384, 9, 10, 20,
                                  3, 4))
check_plane('cursor-hot-unknown', 1, plane(2, AR24, 64, 64, 256, 16384, 9,
                                           0xfffffff0, 5, 0xffffffff,
                                           0xffffffff))
check_plane('empty', 0, plane(1, 0, 0, 0, 0, 0, 0))
check_plane('wrap-32bit', 0, plane(1, XR24, 16384, 16384, 0x10000, 0x10000,
                                   1))

# ---- fuzz-engine: config byte, then steps (op byte, arguments)
TICK, GET_FAIL, RESET, REVOKE, RENEW = 0, 12, 13, 14, 15


def valid(pid, geo):            # primary: valid plane
    return [1 | ((pid - 1) << 3), geo]


def cursor(pid, geo, hot=0, x=0, y=0):
    return [1 | ((pid - 1) << 3), geo, hot, x & 0xff, y & 0xff]


EMPTY = [0]
SAME = [6]


def error(idx):                 # EAGAIN ENOMEM EINTR EBUSY ENODEV EIO ...
    return [5, idx]


def tick(pri, cur, dt=0):
    return [TICK] + pri + cur + [dt]


def engine(name, config, steps):
    data = [config]
    for s in steps:
        data += s
    write('fuzz-engine', name, data)


engine('flips-and-cursor', 6, [
    tick(valid(1, 0), cursor(4, 0, 0, 1, 1)),
    tick(valid(2, 0), cursor(4, 0, 0, 2, 1)),
    tick(valid(3, 0), cursor(4, 0, 0xff, 3, 1)),
    tick(valid(1, 0), SAME),
    tick(SAME, EMPTY, 255),
])
engine('geometry-change', 6, [
    tick(valid(1, 0), EMPTY),
    tick(valid(1, 1), EMPTY),
    [GET_FAIL | (0 << 4), 0],
    tick(valid(1, 2), EMPTY),
    tick(SAME, SAME),
])
engine('errors', 6, [
    tick(error(1), EMPTY),
    tick(valid(2, 0), error(5)),
    tick(error(4), cursor(2, 0)),
    [GET_FAIL | (2 << 4), 2],
    tick(valid(5, 3), cursor(6, 1)),
    tick(SAME, SAME, 230),
])
engine('reset-revoke-renew', 2, [
    tick(valid(1, 0), cursor(2, 0)),
    [REVOKE],
    tick(SAME, SAME),
    [RESET],
    tick(valid(1, 0), cursor(2, 0)),
    [REVOKE | (1 << 4)],
    [RENEW],
    tick(valid(3, 4), cursor(3, 0)),
])
engine('small-bound', 1, [
    tick(valid(n, 0), cursor(6, 0)) for n in range(1, 6)
] + [tick(EMPTY, EMPTY)])

# ---- fuzz-scanout: config byte, then steps (op byte, arguments); see the
# top of fuzz-scanout.c. Buffers take the first free slot (0..7).
S_NEW, S_RELEASE, S_SHOW, S_REFRESH, S_RESET, S_SNAPSHOT = 0, 2, 3, 7, 9, 10
S_DISPLAYS, S_CLOCK, S_RENEW = 11, 12, 15
FMT = {'XR24': 0, 'AR24': 1, 'XB24': 2, 'AB24': 3, 'RX24': 4, 'BX24': 5,
       'RA24': 6, 'BA24': 7, 'XR30': 8, 'AR30': 9, 'XB30': 10, 'RG24': 11,
       'BG24': 12, 'RG16': 13, 'BG16': 14, 'NV12': 15, 'ZERO': 16}
LINEAR, X_TILED, Y_TILED = 0, 3, 4
FULL, SHORT, PAGE, TINY = 3, 0, 1, 2
PRI_NEW, PRI_REDRAW, CUR_NEW, CUR_MOVED = 1, 2, 4, 8
NONE = 0x80
READS_BACK, CURSOR_IMAGE, LINEAR_ONLY = 1, 2, 4


def s_config(gl='auto', has_gl=False, has_dmabuf=False, caps=0):
    return [{'auto': 0, 'on': 1, 'off': 2}[gl] | (has_gl << 2) |
            (has_dmabuf << 3) | (caps << 4)]


def s_new(fmt, w, h, pad=0, off=0, mod=LINEAR, size=FULL, short_by=0):
    # stride = w * cpp + pad (-8 .. 64); off: 0..3 bytes, or (off | 0x80) * 4
    return [S_NEW, FMT[fmt]] + list(struct.pack('<HH', w - 1, h - 1)) + \
        [pad + 8, off, size | (mod << 4), short_by]


def s_pos(v):                   # a small position 0..63
    return [(v << 2) | 3]


def s_hot(v=None):              # a small hotspot, or unknown
    return [0] if v is None else [(v << 2) | 2]


def s_show(pri, cur, changed, x=0, y=0, hx=None, hy=None):
    return [S_SHOW, pri, cur, changed] + s_pos(x) + s_pos(y) + s_hot(hx) + \
        s_hot(hy)


def s_release(slot):
    return [S_RELEASE | (slot << 4)]


def s_block(on):
    return [S_DISPLAYS, 0x80 | on]


def s_displays(has_gl, has_dmabuf, caps=0):
    return [S_DISPLAYS, has_gl | (has_dmabuf << 1) | (caps << 2)]


def scanout(name, config, steps):
    data = list(config)
    for s in steps:
        data += s
    write('fuzz-scanout', name, data)


scanout('cpu-flips-cursor', s_config(), [
    s_new('XR24', 300, 200), s_new('XR24', 300, 200), s_new('AR24', 64, 64),
    s_show(0, 2, PRI_NEW | CUR_NEW, 10, 20, 3, 4), [S_REFRESH],
    [S_CLOCK], s_show(1, 2, PRI_NEW | CUR_MOVED, 30, 40, 3, 4),
    [S_SNAPSHOT], s_release(0), s_show(1, NONE, 0), [S_REFRESH],
    [S_CLOCK | 0x80 | (2 << 4)], [S_REFRESH], [S_SNAPSHOT],
])
scanout('gl-blocked-release', s_config('auto', True, True,
                                       CURSOR_IMAGE | LINEAR_ONLY), [
    s_new('XR24', 256, 128), s_new('AR24', 64, 64),
    s_show(0, 1, PRI_NEW | CUR_NEW, 5, 5, None, None),
    s_block(1), s_release(0), s_release(1), [S_RESET],
    s_new('XB24', 200, 100), s_show(0, NONE, PRI_NEW), [S_SNAPSHOT],
    [S_REFRESH], s_block(0), [S_REFRESH], [S_SNAPSHOT],
])
scanout('gl-cursor-dmabuf', s_config('on', True, True), [
    s_new('XR24', 128, 128), s_new('AR24', 64, 64),
    s_show(0, 1, PRI_NEW | CUR_NEW, 1, 2, 3, 4),
    s_show(0, 1, CUR_MOVED, 10, 20, 3, 4),
    s_show(0, 1, CUR_NEW, 10, 20, None, None), s_show(0, NONE, 0),
    s_release(1), [S_REFRESH], [S_RENEW],
])
scanout('reads-back-alternate', s_config('auto', True, True, READS_BACK), [
    s_new('XR24', 160, 120), s_new('XR24', 160, 120, mod=X_TILED),
] + [x for i in range(8) for x in ([S_REFRESH], [S_CLOCK],
                                   s_show(i % 2, NONE, PRI_NEW))] + [
    s_new('XR24', 161, 120), s_show(2, NONE, PRI_NEW), [S_SNAPSHOT],
])
scanout('formats-odd-strides', s_config('off'), [
    x for f in ('RG24', 'BG24', 'RG16', 'XR30', 'BX24', 'NV12')
    for x in (s_new(f, 131, 17, pad=1, off=3), s_show(0, NONE, PRI_NEW),
              [S_REFRESH], [S_SNAPSHOT], s_release(0))
])
scanout('short-buffers', s_config(), [
    s_new('XR24', 100, 100, size=SHORT, short_by=100),
    s_new('XR24', 100, 100, size=PAGE), s_new('RG16', 300, 300, size=TINY,
                                             short_by=7),
    s_show(0, 1, PRI_NEW | CUR_NEW), [S_REFRESH], [S_SNAPSHOT],
    s_show(2, NONE, PRI_NEW), [S_REFRESH], [S_SNAPSHOT],
    s_show(1, 0, PRI_REDRAW | CUR_NEW), [S_SNAPSHOT],
])
scanout('displays-toggle', s_config('auto', True, True), [
    s_new('XR24', 64, 48), s_new('AR24', 32, 32),
    s_show(0, 1, PRI_NEW | CUR_NEW),
    s_displays(0, 0), [S_REFRESH], s_displays(1, 1, CURSOR_IMAGE),
    [S_REFRESH], s_displays(1, 0), [S_REFRESH], s_displays(1, 1),
    [S_REFRESH], [S_RESET], [S_REFRESH], [S_RENEW],
])


# ---- fuzz-irq-info: a VFIO_DEVICE_GET_IRQ_INFO answer (v6 of GVT-g's
# display event proposal: 20-byte struct, CAP_TYPE at 20, CAP_DISPLAY at 36)
def irq_info(cap_offset=20, flags=0x13, count=1, type_next=36,
             disp=True):
    d = struct.pack('<IIIII', 256, flags, 5, count, cap_offset)
    d += struct.pack('<HHIII', 1, 1, type_next, 1, 1)
    if disp:
        d += struct.pack('<HHIQQ', 2, 1, 0, 1 << 48, 1 << 56)
    return d


write('fuzz-irq-info', 'v6-kvmgt', irq_info())
write('fuzz-irq-info', 'v6-no-display-cap', irq_info(type_next=0,
                                                      disp=False))
write('fuzz-irq-info', 'loop', irq_info(type_next=20))
write('fuzz-irq-info', 'old-24-byte-layout',
      struct.pack('<IIIIII', 256, 0x11, 5, 1, 24, 0) +
      struct.pack('<HHIII', 3, 1, 0, 1, 1))
