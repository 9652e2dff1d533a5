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
