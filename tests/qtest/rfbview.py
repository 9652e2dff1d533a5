#!/usr/bin/env python3
# rfbview.py: a minimal VNC viewer that measures what a user would see of
# the simulated vGPU (docs/vgpusim.md): RFB 3.8, no authentication, raw
# encoding, 32 bpp. It asks for updates back to back, applies each
# FramebufferUpdate to its own copy of the screen and, after every whole
# update message, decodes the frame number from the pixels and checks that
# the whole picture is that frame: every pixel of every row equals
# tests/gui/gui_images.py's expected_frame() for the number it decodes
# (FrameCheck). Used by the benchmark (tests/bench/bench.py). Standard
# library only.
#
#   rfbview.py HOST PORT SECONDS [FRAME_TIMES_PATH]  -> one JSON line
import json
import os
import select
import socket
import struct
import sys
import time
import zlib

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
# in the repository the GUI helpers sit in tests/gui; in the rig VM's
# driver directory (tests/qtest/prepare.sh) next to this file
sys.path.insert(0, os.path.join(_HERE, '..', 'gui'))
from vfio_display import decode_frame  # noqa: E402
from gui_images import (BAND_H, CURSOR_PIXELS, STRIP_H,  # noqa: E402
                        Image, compare, crop, expected_frame, with_cursor)

ENC_RAW = 0
ENC_DESKTOP_SIZE = -223
# incomplete pictures described in full (each costs a whole-picture compare)
EXAMPLES = 3
# pictures that failed the fast check, kept to be judged after the window
# (a whole-picture compare and the cursor search take seconds under TCG:
# done during the window they would stall the viewer)
DEFER_MAX = 16
# where vgpusim's cursor image has opaque pixels, relative to its top-left
CUR_X0 = min(x for x, _, _ in CURSOR_PIXELS)
CUR_X1 = max(x for x, _, _ in CURSOR_PIXELS)
CUR_Y0 = min(y for _, y, _ in CURSOR_PIXELS)
CUR_Y1 = max(y for _, y, _ in CURSOR_PIXELS)
CUR_OPAQUE = frozenset((x, y) for x, y, _ in CURSOR_PIXELS)


class Screen:
    """The viewer's copy of the screen, 32 bpp B,G,R,X; Image-like px()."""

    def __init__(self, w, h):
        self.w, self.h = w, h
        self.fb = bytearray(w * h * 4)
        # 1 for each row changed since FrameCheck last found it equal to
        # the colour bars' row (the only rows that are the same in every
        # frame); the X byte of each pixel is kept 0 (_raw)
        self.unchecked = bytearray(b'\x01' * h)

    def px(self, x, y):
        o = (y * self.w + x) * 4
        b, g, r = self.fb[o], self.fb[o + 1], self.fb[o + 2]
        return (r, g, b)

    def save_png(self, path, fb=None):
        """What the viewer shows (or @fb, a copy of it), as an RGB PNG."""
        fb = self.fb if fb is None else fb
        rgb = bytearray(self.w * self.h * 3)
        rgb[0::3] = fb[2::4]
        rgb[1::3] = fb[1::4]
        rgb[2::3] = fb[0::4]
        stride = self.w * 3
        raw = b''.join(b'\x00' + bytes(rgb[y * stride:(y + 1) * stride])
                       for y in range(self.h))

        def chunk(kind, data):
            c = kind + data
            return (struct.pack('>I', len(data)) + c +
                    struct.pack('>I', zlib.crc32(c) & 0xffffffff))
        with open(path, 'wb') as f:
            f.write(b'\x89PNG\r\n\x1a\n')
            f.write(chunk(b'IHDR', struct.pack('>IIBBBBB', self.w, self.h,
                                               8, 2, 0, 0, 0)))
            f.write(chunk(b'IDAT', zlib.compress(raw, 1)))
            f.write(chunk(b'IEND', b''))

    def image(self):
        """The screen as a gui_images/vfio_display Image (packed RGB)."""
        rgb = bytearray(self.w * self.h * 3)
        rgb[0::3] = self.fb[2::4]
        rgb[1::3] = self.fb[1::4]
        rgb[2::3] = self.fb[0::4]
        return Image(self.w, self.h, bytes(rgb))

    def save_ppm(self, path):
        """What the viewer shows, as a binary PPM."""
        with open(path, 'wb') as f:
            f.write(b'P6 %d %d 255\n' % (self.w, self.h))
            f.write(self.image().rgb)


def _bgr0(rgb):
    """Packed RGB as the viewer's 32 bpp pixels (B, G, R, 0)."""
    out = bytearray(len(rgb) // 3 * 4)
    out[0::4] = rgb[2::3]
    out[1::4] = rgb[1::3]
    out[2::4] = rgb[0::3]
    return bytes(out)


class FrameCheck:
    """Is a Screen one whole vgpusim frame? The frame number is decoded
    from the band (decode_frame); then every row of the picture must equal
    that frame's row in gui_images.expected_frame(): the band (rows 0-7)
    and the strip with the moving block (the last 16 rows) at every check,
    and each row between (the colour bars, the same in every frame) when
    it changed since it was last found equal. So the whole picture is
    compared with the frame it decodes, at the cost of the rows received
    (a bar row that an update did not touch still holds what was
    compared). A bottom strip, a bar or a band row left from another frame
    or mode makes the update incomplete."""

    def __init__(self, w, h):
        self.w, self.h = w, h
        self.frame = None
        self.top = self.bar = self.bottom = b''
        self.examples = []
        self.with_cursor = 0
        self.deferred = []
        self.unjudged = 0

    def _expect(self, frame):
        if frame == self.frame:
            return
        # expected_frame(w, h) is the band, (h - 24) rows of the same bar
        # row and the strip: one bar row gives the rest of any height
        small = expected_frame(self.w, BAND_H + 1 + STRIP_H, frame)
        px, s = _bgr0(small.rgb), self.w * 4
        self.top = px[:BAND_H * s]
        self.bar = px[BAND_H * s:(BAND_H + 1) * s]
        self.bottom = px[(BAND_H + 1) * s:]
        self.frame = frame

    def _whole(self, sc):
        s, h, fb = self.w * 4, self.h, sc.fb
        if fb[:BAND_H * s] != self.top or fb[(h - STRIP_H) * s:] != self.bottom:
            return False
        y = sc.unchecked.find(1, BAND_H, h - STRIP_H)
        while y >= 0:
            if fb[y * s:(y + 1) * s] != self.bar:
                return False
            sc.unchecked[y] = 0
            y = sc.unchecked.find(1, y + 1, h - STRIP_H)
        return True

    def check(self, sc, t=None, defer=False):
        """(frame, True) when @sc holds exactly one whole frame, else
        (frame or None, False). A frame with vgpusim's cursor image over
        it at one place is whole too (egl-headless blends the cursor plane
        into what VNC gets; counted in .with_cursor). The first EXAMPLES
        failures are described in .examples (a whole-picture
        gui_images.compare()). With @defer, only the fast row compare runs
        now: a picture it rejects is kept (at most DEFER_MAX, with @t) and
        judged fully by settle(); until then it counts as incomplete."""
        f = decode_frame(sc)
        if f is not None and self.w >= 64 and \
                self.h >= BAND_H + STRIP_H + 1:
            self._expect(f)
            if self._whole(sc):
                return f, True
        if defer:
            if len(self.deferred) < DEFER_MAX:
                snap = Screen.__new__(Screen)
                snap.w, snap.h, snap.fb = sc.w, sc.h, bytes(sc.fb)
                self.deferred.append((t, f, snap))
            else:
                self.unjudged += 1
            return f, False
        return f, self._judge(sc, f)

    def _judge(self, sc, f):
        """The slow part of check(): the cursor search, else an example."""
        if f is not None and self.w >= 64 and \
                self.h >= BAND_H + STRIP_H + 1 and self._cursor_over(sc, f):
            self.with_cursor += 1
            return True
        self._example(sc, f)
        return False

    def settle(self):
        """Judges the pictures check(defer=True) kept: [(t, frame)] of those
        that were whole after all (the frame with the cursor over it)."""
        whole = [(t, f) for t, f, snap in self.deferred if self._judge(snap, f)]
        self.deferred = []
        return whole

    def _cursor_over(self, sc, f):
        """Every pixel that differs from frame @f lies where the cursor
        image at one position (cx, cy) puts it, and equals it."""
        img, want = sc.image(), expected_frame(sc.w, sc.h, f)
        s = sc.w * 3
        rows = [y for y in range(sc.h)
                if img.rgb[y * s:(y + 1) * s] != want.rgb[y * s:(y + 1) * s]]
        if not rows or rows[-1] - rows[0] > CUR_Y1 - CUR_Y0:
            return False
        x0, x1 = sc.w, -1
        for y in rows:
            a, b = img.rgb[y * s:(y + 1) * s], want.rgb[y * s:(y + 1) * s]
            x0 = min(x0, _first_diff(a, b) // 3)
            x1 = max(x1, (s - 1 - _first_diff(a[::-1], b[::-1])) // 3)
        if x1 - x0 > CUR_X1 - CUR_X0:
            return False
        y0, y1 = rows[0], rows[-1]
        # the differing pixels (at most the cursor's box): a position is
        # tried in full only if the cursor is opaque at all of them
        diff = [(x, y) for y in rows for x in range(x0, x1 + 1)
                if img.rgb[y * s + 3 * x:y * s + 3 * x + 3] !=
                want.rgb[y * s + 3 * x:y * s + 3 * x + 3]]
        for cy in range(y1 - CUR_Y1, y0 - CUR_Y0 + 1):
            for cx in range(x1 - CUR_X1, x0 - CUR_X0 + 1):
                if any((x - cx, y - cy) not in CUR_OPAQUE for x, y in diff):
                    continue
                # the part of the picture the cursor at cx, cy can cover
                bx, by = max(cx, 0), max(cy, 0)
                bw = min(cx + 64, sc.w) - bx
                bh = min(cy + 64, sc.h) - by
                part = with_cursor(crop(want, bx, by, bw, bh), cx - bx,
                                   cy - by)
                if compare(img, part, bx, by)[0] == 0:
                    return True
        return False

    def _example(self, sc, f):
        if len(self.examples) >= EXAMPLES:
            return
        if f is None:
            self.examples.append('no frame number in the band')
            return
        n, first = compare(sc.image(), expected_frame(sc.w, sc.h, f))
        self.examples.append('frame %d: %d pixels differ; %s' % (f, n, first))


def _first_diff(a, b):
    """Index of the first byte where @a and @b (same length) differ, found
    by halving (slice compares, no Python loop over bytes)."""
    lo, hi = 0, len(a)
    while lo < hi:
        mid = (lo + hi) // 2
        if a[lo:mid + 1] == b[lo:mid + 1]:
            lo = mid + 1
        else:
            hi = mid
    return lo


def complete_frame(img):
    """(frame, True) when the Screen @img holds one whole frame, else
    (frame or None, False): a whole-picture compare, for one-off use."""
    return FrameCheck(img.w, img.h).check(img)


class Viewer:
    def __init__(self, host, port, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.create_connection((host, port), timeout=10)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.bytes = 0
        ver = self._recv(12)
        if not ver.startswith(b'RFB 003.'):
            raise RuntimeError('not an RFB server: %r' % ver)
        self.s.sendall(b'RFB 003.008\n')
        n = self._recv(1)[0]
        if n == 0:
            raise RuntimeError('server refused: %r' % self._reason())
        types = self._recv(n)
        if 1 not in types:
            raise RuntimeError('server wants authentication %r' % list(types))
        self.s.sendall(b'\x01')
        if struct.unpack('>I', self._recv(4))[0] != 0:
            raise RuntimeError('security failed: %r' % self._reason())
        self.s.sendall(b'\x01')  # shared
        w, h = struct.unpack('>HH', self._recv(4))
        self._recv(16)
        self._recv(struct.unpack('>I', self._recv(4))[0])
        self.screen = Screen(w, h)
        self.early_request = False
        # 32 bpp, depth 24, little endian, true colour, r<<16 g<<8 b
        self.s.sendall(struct.pack('>BxxxBBBBHHHBBBxxx', 0, 32, 24, 0, 1,
                                   255, 255, 255, 16, 8, 0))
        self.s.sendall(struct.pack('>BxHii', 2, 2, ENC_RAW, ENC_DESKTOP_SIZE))

    def _reason(self):
        return self._recv(struct.unpack('>I', self._recv(4))[0])

    def _recv(self, n):
        buf = bytearray()
        while len(buf) < n:
            d = self.s.recv(n - len(buf))
            if not d:
                raise RuntimeError('connection closed')
            buf += d
        self.bytes += n
        return bytes(buf)

    def _recv_into(self, view):
        got = 0
        while got < len(view):
            n = self.s.recv_into(view[got:])
            if not n:
                raise RuntimeError('connection closed')
            got += n
        self.bytes += got

    def request(self, incremental=True):
        sc = self.screen
        self.s.sendall(struct.pack('>BBHHHH', 3, int(incremental), 0, 0,
                                   sc.w, sc.h))

    def read_message(self):
        """Reads one server message; returns the rectangles of an update
        (list of (x, y, w, h)) or None for other messages."""
        t = self._recv(1)[0]
        if t == 0:
            n = struct.unpack('>xH', self._recv(3))[0]
            if self.early_request:
                # ask for the next update before reading this one's pixels:
                # the server encodes it while we read (as real clients do)
                self.request()
            rects = []
            for _ in range(n):
                x, y, w, h, enc = struct.unpack('>HHHHi', self._recv(12))
                if enc == ENC_DESKTOP_SIZE:
                    self.screen = Screen(w, h)
                    continue
                if enc != ENC_RAW:
                    raise RuntimeError('unexpected encoding %d' % enc)
                self._raw(x, y, w, h)
                rects.append((x, y, w, h))
            return rects
        if t == 1:
            _, n = struct.unpack('>xHH', self._recv(5))
            self._recv(6 * n)
        elif t == 3:
            self._recv(struct.unpack('>xxxI', self._recv(7))[0])
        elif t != 2:
            raise RuntimeError('unexpected server message %d' % t)
        return None

    def _raw(self, x, y, w, h):
        sc = self.screen
        if x + w > sc.w or y + h > sc.h:
            raise RuntimeError('rectangle %d,%d %dx%d outside %dx%d'
                               % (x, y, w, h, sc.w, sc.h))
        fb = memoryview(sc.fb)
        row = w * 4
        sc.unchecked[y:y + h] = b'\x01' * h
        if x == 0 and w == sc.w:
            self._recv_into(fb[y * row:(y + h) * row])
            # the padding byte is whatever the server's surface holds
            fb[y * row + 3:(y + h) * row:4] = bytes(w * h)
            return
        tmp = bytearray(row * h)
        self._recv_into(memoryview(tmp))
        tmp[3::4] = bytes(w * h)
        for i in range(h):
            o = ((y + i) * sc.w + x) * 4
            fb[o:o + row] = tmp[i * row:(i + 1) * row]

    def close(self):
        self.s.close()


def watch(host, port, seconds, on_frame=None, at_end=None):
    """Requests updates back to back for @seconds. Returns the figures and
    the list of (monotonic ns, frame) for each new complete frame seen.
    bytes_per_s counts what came after the first (full) picture. @at_end
    is called when the window ends, before the pictures that the fast
    check rejected are judged in full (the caller's counters stop there);
    @on_frame is not called for those found whole then."""
    v = Viewer(host, port)
    v.request(incremental=False)
    updates = complete = incomplete = rects_total = 0
    arrivals = []
    last = None
    checks = [FrameCheck(v.screen.w, v.screen.h)]
    start = time.monotonic()
    start_bytes = None          # counted from the end of the first update
    while True:
        left = seconds - (time.monotonic() - start)
        if left <= 0:
            break
        # an idle screen sends nothing: wait for data at most until the end
        if not select.select([v.s], [], [], left)[0]:
            continue
        rects = v.read_message()
        if rects is None:
            continue
        now = time.monotonic_ns()
        if not v.early_request:
            v.request()
            v.early_request = True  # from now on, while reading each update
        if start_bytes is None:
            start_bytes = v.bytes   # the first, full, picture is not counted
        updates += 1
        rects_total += len(rects)
        check = checks[-1]
        if (check.w, check.h) != (v.screen.w, v.screen.h):
            check = FrameCheck(v.screen.w, v.screen.h)  # a new desktop size
            checks.append(check)
        f, ok = check.check(v.screen, now, defer=True)
        if not ok:
            incomplete += 1
            continue
        complete += 1
        if f != last:
            arrivals.append((now, f))
            last = f
            if on_frame:
                on_frame(v.screen, f)
    elapsed = time.monotonic() - start
    sent = v.bytes - (start_bytes or v.bytes)
    v.close()
    if at_end:
        at_end()
    seen = {f for _, f in arrivals}
    for check in checks:
        for t, f in check.settle():
            incomplete -= 1
            complete += 1
            if f not in seen:
                arrivals.append((t, f))
                seen.add(f)
    arrivals.sort()
    res = {
        'updates': updates, 'complete': complete, 'incomplete': incomplete,
        'rects': rects_total, 'frames': len(arrivals),
        'bytes_per_s': sent / elapsed,
        'seconds': elapsed, 'width': v.screen.w, 'height': v.screen.h,
        'incomplete_examples': sum((c.examples for c in checks),
                                   [])[:EXAMPLES],
        'complete_with_cursor': sum(c.with_cursor for c in checks),
        'incomplete_not_searched': sum(c.unjudged for c in checks),
    }
    return res, arrivals


def frame_times(path):
    """vgpusim's frame_times attribute: {frame: monotonic ns}."""
    with open(path, 'rb') as f:
        data = f.read()
    out = {}
    for frame, ns in struct.iter_unpack('<QQ', data):
        if ns:
            out[frame] = ns
    return out


def frame_gaps(path, t0_ns, t1_ns):
    """How long each frame that became visible in [t0_ns, t1_ns]
    (CLOCK_MONOTONIC) stayed on screen, in ns, from vgpusim's frame_times
    at @path: one gap per frame whose successor is also in the window."""
    times = frame_times(path)
    fs = sorted(f for f, t in times.items() if t0_ns <= t <= t1_ns)
    return [times[b] - times[a] for a, b in zip(fs, fs[1:]) if b == a + 1]


def main():
    host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    res, arrivals = watch(host, port, seconds)
    if len(sys.argv) > 4:
        times = frame_times(sys.argv[4])
        lat = sorted((t - times[f]) / 1e6 for t, f in arrivals if f in times)
        if lat:
            res['latency_p50_ms'] = lat[len(lat) // 2]
            res['latency_p99_ms'] = lat[min(len(lat) - 1, len(lat) * 99 // 100)]
    res['first_frame'] = arrivals[0][1] if arrivals else None
    res['last_frame'] = arrivals[-1][1] if arrivals else None
    print(json.dumps(res))
    return 0


if __name__ == '__main__':
    sys.exit(main())
