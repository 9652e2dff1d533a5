#!/usr/bin/env python3
# test_gui_images.py: host-side self-test of gui_images.py. Builds vgpusim
# frames, puts them into synthetic screenshots, writes those in every
# format the GUI clients produce (written here by independent minimal
# writers), reads them back and checks the search and the comparison.
# Usage: python3 tests/gui/test_gui_images.py   (TAP; exit 0 when all pass)
import os
import random
import struct
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gui_images import (CURSOR_H, CURSOR_W, Image, compare,  # noqa: E402
                        crop, cursor_rgba, decode_frame, expected_for,
                        expected_frame, find_frame, read_bmp, read_image,
                        read_png, read_xwd, save_ppm, screendump_until,
                        with_cursor)
from vfio_display import Tap  # noqa: E402

tap = Tap()


# ---------------------------------------------------------------- pictures

def paste(dst, src, x0, y0):
    """A copy of @dst with @src's pixels at (x0, y0)."""
    rgb = bytearray(dst.rgb)
    for y in range(src.h):
        o = ((y0 + y) * dst.w + x0) * 3
        rgb[o:o + src.w * 3] = src.rgb[y * src.w * 3:(y + 1) * src.w * 3]
    return Image(dst.w, dst.h, bytes(rgb))


def desktop(w, h, seed=1):
    """A dark blue screen with a noisy panel on top and, as a decoy for
    find_frame, a frame band whose complement is wrong."""
    rnd = random.Random(seed)
    img = Image(w, h, b'\x00\x22\x44' * (w * h))
    noise = bytes(rnd.randrange(256) for _ in range(w * 3 * 12))
    img = paste(img, Image(w, 12, noise), 0, 0)
    fake = bytearray(expected_frame(w - 2, 24, 77).rgb)
    for y in range(8):
        o = y * (w - 2) * 3
        fake[o + 40 * 3:o + 41 * 3] = fake[o + 8 * 3:o + 9 * 3]
    return paste(img, Image(w - 2, 24, bytes(fake)), 1, 14)


def set_px(img, x, y, colour):
    rgb = bytearray(img.rgb)
    o = (y * img.w + x) * 3
    rgb[o:o + 3] = colour
    return Image(img.w, img.h, bytes(rgb))


def to_565(img):
    """@img as an RGB565 scanout widened back by bit replication."""
    def widen(v, bits):
        v >>= 8 - bits
        return (v << (8 - bits)) | (v >> (2 * bits - 8))
    table = {}
    out = bytearray()
    for i in range(0, len(img.rgb), 3):
        key = img.rgb[i:i + 3]
        if key not in table:
            table[key] = bytes((widen(key[0], 5), widen(key[1], 6),
                                widen(key[2], 5)))
        out += table[key]
    return Image(img.w, img.h, bytes(out))


# ---------------------------------------------------------------- writers

def write_bmp(img, path, bpp, top_down, bitfields=False):
    cpp = bpp // 8
    stride = (img.w * cpp + 3) & ~3
    rows = []
    for y in range(img.h):
        row = bytearray(stride)
        for x in range(img.w):
            r, g, b = img.px(x, y)
            row[x * cpp:x * cpp + 3] = bytes((b, g, r))
            if cpp == 4:
                row[x * cpp + 3] = 0xff
        rows.append(bytes(row))
    if not top_down:
        rows.reverse()
    masks = struct.pack('<III', 0xff0000, 0xff00, 0xff) if bitfields else b''
    off = 14 + 40 + len(masks)
    data = b''.join(rows)
    hdr = struct.pack('<2sIHHI', b'BM', off + len(data), 0, 0, off)
    dib = struct.pack('<IiiHHIIiiII', 40, img.w,
                      -img.h if top_down else img.h, 1, bpp,
                      3 if bitfields else 0, len(data), 2835, 2835, 0, 0)
    with open(path, 'wb') as f:
        f.write(hdr + dib + masks + data)


def write_xwd(img, path, msb, bpp=32):
    """xwd -root as Xvfb writes it: TrueColor, 256 colormap entries, and
    padding at the end of each line."""
    cpp = bpp // 8
    if bpp == 16:
        masks = (0xf800, 0x07e0, 0x001f)
    else:
        masks = (0xff0000, 0xff00, 0xff)
    order = 'big' if msb else 'little'
    pad = 4 + (-img.w * cpp) % 4
    line = img.w * cpp + pad
    name = b'xwdump\0'
    fields = (100 + len(name), 7, 2, 24 if bpp != 16 else 16, img.w, img.h,
              0, int(msb), 32, int(msb), 32, bpp, line, 4) + masks + (
              8, 256, 256, img.w, img.h, 0, 0, 0)
    colors = b''.join(struct.pack('>IHHHBB', i, i * 257, i * 257, i * 257,
                                  7, 0) for i in range(256))
    rows = []
    for y in range(img.h):
        row = bytearray()
        for x in range(img.w):
            r, g, b = img.px(x, y)
            if bpp == 16:
                v = (r >> 3) << 11 | (g >> 2) << 5 | b >> 3
            else:
                v = r << 16 | g << 8 | b | (0xff000000 if bpp == 32 else 0)
            row += v.to_bytes(cpp, order)
        rows.append(bytes(row) + b'\xaa' * pad)
    with open(path, 'wb') as f:
        f.write(struct.pack('>25I', *fields) + name + colors + b''.join(rows))


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def png_filter(kind, row, prior, cpp):
    """Scanline @row filtered with PNG filter @kind (the encoder side)."""
    out = bytearray(len(row))
    for i, v in enumerate(row):
        a = row[i - cpp] if i >= cpp else 0
        c = prior[i - cpp] if i >= cpp else 0
        pred = (0, a, prior[i], (a + prior[i]) // 2,
                paeth(a, prior[i], c))[kind]
        out[i] = (v - pred) & 255
    return bytes(out)


def png_chunk(kind, data):
    return (struct.pack('>I', len(data)) + kind + data +
            struct.pack('>I', zlib.crc32(kind + data)))


def write_png(img, path, alpha, filters):
    """RGB or RGBA PNG; row y uses filter filters[y % len(filters)]."""
    cpp = 4 if alpha else 3
    prior = bytes(img.w * cpp)
    raw = bytearray()
    for y in range(img.h):
        rgb = img.rgb[y * img.w * 3:(y + 1) * img.w * 3]
        if alpha:
            row = bytearray(img.w * 4)
            for ch in range(3):
                row[ch::4] = rgb[ch::3]
            row[3::4] = bytes(x % 256 for x in range(img.w))
            row = bytes(row)
        else:
            row = rgb
        kind = filters[y % len(filters)]
        raw += bytes((kind,)) + png_filter(kind, row, prior, cpp)
        prior = row
    ihdr = struct.pack('>IIBBBBB', img.w, img.h, 8, 6 if alpha else 2, 0, 0,
                       0)
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + png_chunk(b'IHDR', ihdr) +
                png_chunk(b'IDAT', zlib.compress(bytes(raw))) +
                png_chunk(b'IEND', b''))


# ---------------------------------------------------------------- checks

def check_pattern():
    f = expected_frame(320, 200, 12345)
    tap(decode_frame(f) == 12345, 'decode_frame(expected_frame(12345))',
        decode_frame(f))
    for n in (0, 1, 0xffffffff, 0x80000000):
        tap(decode_frame(expected_frame(64, 64, n)) == n,
            'frame number 0x%x round-trips at 64x64' % n)
    bars = [f.px(320 * i // 8 + 20, 100) for i in range(8)]
    tap(bars == [(255, 255, 255), (255, 255, 0), (0, 255, 255), (0, 255, 0),
                 (255, 0, 255), (255, 0, 0), (0, 0, 255), (0, 0, 0)],
        'eight colour bars in order', bars)
    tap(f.px(64, 0) == f.px(319, 7) == (128, 128, 128) and
        f.px(20, 8) == (255, 255, 255), 'gray band right of pixel 64')
    bx = 12345 * 4 % (320 - 15)
    tap(f.px(bx, 184) == f.px(bx + 15, 199) == (255, 255, 255) and
        f.px(bx - 1, 190) == f.px(bx + 16, 190) == (0, 0, 0) and
        f.px(0, 183) == (255, 255, 255), 'moving block at x=%d' % bx)
    tap(len(f.rgb) == 320 * 200 * 3 and isinstance(f.rgb, bytes),
        'frame is 320x200 packed RGB bytes')


def check_cursor():
    base = expected_frame(320, 200, 5)
    cx, cy = 100, 60
    img = with_cursor(base, cx, cy)
    tap(img.px(cx + 32, cy + 37) == (255, 0, 0), 'cursor: red cross')
    tap(img.px(cx + 32, cy + 32 + 23) == (255, 255, 255) and
        img.px(cx + 32 - 24, cy + 32) == (255, 255, 255), 'cursor: white ring')
    tap(img.px(cx + 32, cy + 32 + 27) == (0, 0, 0), 'cursor: black rim')
    tap(img.px(cx, cy) == base.px(cx, cy) and
        img.px(cx + 40, cy + 40) == base.px(cx + 40, cy + 40),
        'cursor: transparent elsewhere')
    tap(base.rgb == expected_frame(320, 200, 5).rgb, 'input left unchanged')
    edge = with_cursor(base, -32, 200 - CURSOR_H + 24)
    tap(edge.px(0, 160 + 37) == (255, 0, 0) and len(edge.rgb) ==
        len(base.rgb), 'cursor clipped at the edges')
    tap(CURSOR_W == CURSOR_H == 64, 'cursor is 64x64')
    # the RGBA shape (SPICE's cursor channel) is the image with_cursor draws
    rgba = cursor_rgba()
    drawn = with_cursor(Image(CURSOR_W, CURSOR_H,
                              b'\x12\x34\x56' * (CURSOR_W * CURSOR_H)), 0, 0)
    same = all(
        (rgba[i * 4 + 3] == 255 and drawn.rgb[i * 3:i * 3 + 3] ==
         rgba[i * 4:i * 4 + 3]) or
        (rgba[i * 4:i * 4 + 4] == bytes(4) and
         drawn.rgb[i * 3:i * 3 + 3] == b'\x12\x34\x56')
        for i in range(CURSOR_W * CURSOR_H))
    o = (37 * CURSOR_W + 32) * 4
    tap(len(rgba) == CURSOR_W * CURSOR_H * 4 and same and
        rgba[o:o + 4] == b'\xff\x00\x00\xff',
        'cursor_rgba: the image with_cursor draws, R,G,B,A, transparent 0')


class FakeQemu:
    """Answers screendump like vfio_display.Qemu: the pictures of @shots
    in turn (an Image, or an error string), the last one repeated; PNGs
    are written to @tmp and their path returned."""

    def __init__(self, tmp, shots):
        self.tmp, self.shots, self.calls = tmp, list(shots), 0

    def screendump(self, name, fmt='ppm'):
        shot = self.shots[min(self.calls, len(self.shots) - 1)]
        self.calls += 1
        if isinstance(shot, str):
            return None, shot
        if fmt == 'ppm':
            return shot, None
        path = os.path.join(self.tmp, name + '.png')
        write_png(shot, path, False, (0, 1, 2, 3, 4))
        return path, None


def check_screendump_until(tmp):
    want = with_cursor(expected_for('XRGB8888', 101, 67, 9), 60, 30)
    old = expected_frame(101, 67, 8)
    for fmt in ('ppm', 'png'):
        q = FakeQemu(tmp, [old, want])
        img, n, why = screendump_until(q, 'x', want, fmt, timeout=5)
        tap(n == 0 and q.calls == 2 and img.rgb == want.rgb,
            'screendump_until %s: the second picture is exact' % fmt,
            '%d %d %s' % (n, q.calls, why))
    q = FakeQemu(tmp, [old])
    _, n, why = screendump_until(q, 'x', want, timeout=0.3)
    tap(n > 0 and 'pixels differ; pixel 31,0' in why,
        'screendump_until: a wrong picture, after the timeout', why)
    q = FakeQemu(tmp, [expected_frame(100, 67, 9)])
    _, n, why = screendump_until(q, 'x', want, timeout=0)
    tap(n == -1 and why == '100x67, want 101x67', 'screendump_until: '
        'another size', why)
    q = FakeQemu(tmp, ['no surface'])
    img, n, why = screendump_until(q, 'x', want, 'png', timeout=0)
    tap(img is None and n == -1 and why == 'no surface',
        'screendump_until: QEMU\'s error', why)
    gray565 = expected_for('RGB565', 101, 67, 9)
    tap(gray565.px(70, 0) == (0x84, 0x82, 0x84) and
        expected_for('BGR888', 101, 67, 9).rgb ==
        expected_frame(101, 67, 9).rgb,
        'expected_for: 565 gray widened, other formats exact')


def check_files(tmp):
    frame = with_cursor(expected_frame(200, 120, 0xdeadbeef), 150, 90)
    shot = paste(desktop(320, 240), frame, 37, 23)
    cases = [('ppm', lambda p: save_ppm(shot, p), None)]
    for bpp in (24, 32):
        for top in (False, True):
            cases.append(('bmp%d%s' % (bpp, '-topdown' if top else ''),
                          lambda p, b=bpp, t=top: write_bmp(shot, p, b, t),
                          read_bmp))
    cases.append(('bmp32-bitfields',
                  lambda p: write_bmp(shot, p, 32, False, True), read_bmp))
    for msb in (False, True):
        cases.append(('xwd32-%s' % ('msb' if msb else 'lsb'),
                      lambda p, m=msb: write_xwd(shot, p, m), read_xwd))
    cases.append(('xwd24-lsb', lambda p: write_xwd(shot, p, False, 24),
                  read_xwd))
    for alpha in (False, True):
        for kind in range(5):
            cases.append(('png-%s-filter%d' % ('rgba' if alpha else 'rgb',
                                               kind),
                          lambda p, a=alpha, k=kind: write_png(shot, p, a,
                                                               [k]),
                          read_png))
        cases.append(('png-%s-mixed' % ('rgba' if alpha else 'rgb'),
                      lambda p, a=alpha: write_png(shot, p, a,
                                                   [4, 0, 3, 1, 2]),
                      read_png))
    for name, write, reader in cases:
        path = os.path.join(tmp, name)
        write(path)
        img = read_image(path)
        ok = (img.w, img.h) == (shot.w, shot.h) and img.rgb == shot.rgb
        if ok and reader is not None:
            ok = reader(path).rgb == shot.rgb
        at = find_frame(img, 200, 120)
        n, first = compare(img, frame, *at) if at else (-1, 'not found')
        tap(ok and at == (37, 23) and n == 0,
            '%s: read back, frame found at 37,23, 0 pixels differ' % name,
            '%dx%d at %r: %d %s' % (img.w, img.h, at, n, first))


def check_565(tmp):
    frame = expected_frame(160, 100, 4242)
    shot = paste(desktop(300, 200, 2), to_565(frame), 120, 70)
    path = os.path.join(tmp, 'xwd16')
    write_xwd(shot, path, False, 16)
    img = read_image(path)
    tap(img.px(120 + 64, 70) == (0x84, 0x82, 0x84),
        'xwd16: RGB565 gray widens to #848284', img.px(184, 70))
    at = find_frame(img, 160, 100)
    tap(at == (120, 70), 'RGB565 frame found at 120,70', at)
    n8, _ = compare(img, frame, 120, 70, tolerance=8)
    n0, first = compare(img, frame, 120, 70)
    tap(n8 == 0 and n0 == (160 - 64) * 8, 'tolerance 8 absorbs RGB565 gray; '
        'exact compare counts %d pixels' % n0, first)
    tap(decode_frame(crop(img, 120, 70, 160, 100)) == 4242,
        'decode_frame of the cropped frame')


def check_compare():
    frame = expected_frame(128, 96, 99)
    shot = paste(desktop(256, 160), frame, 64, 40)
    tap(compare(shot, frame, 64, 40) == (0, ''), 'identical: (0, \'\')')
    one = set_px(shot, 64 + 100, 40 + 50, (1, 2, 3))
    n, first = compare(one, frame, 64, 40)
    tap(n == 1 and 'pixel 100,50' in first and '#010203' in first,
        'one pixel changed: 1 difference described', '%d %s' % (n, first))
    near = set_px(shot, 64 + 10, 40 + 10, (247, 255, 250))
    tap(compare(near, frame, 64, 40, tolerance=8)[0] == 0 and
        compare(near, frame, 64, 40, tolerance=7)[0] == 1,
        'per-channel tolerance is inclusive')
    tap(compare(shot, frame, 200, 100)[0] == 128 * 96,
        'a region outside the picture counts as all different')
    tap(find_frame(desktop(256, 160), 128, 96) is None,
        'no frame: find_frame gives None (decoys ignored)')
    tap(find_frame(shot, 140, 96) is None and
        find_frame(shot, 128, 130) is None, 'wrong size: not found')


def check_speed():
    frame = with_cursor(expected_frame(1280, 720, 31337), 400, 300)
    shot = paste(desktop(1920, 1080), frame, 311, 187)
    gray = Image(1920, 1080, b'\x80' * (1920 * 1080 * 3))
    t0 = time.time()
    at = find_frame(shot, 1280, 720)
    t1 = time.time()
    n, first = compare(shot, frame, *at) if at else (-1, 'not found')
    t2 = time.time()
    none = find_frame(gray, 1280, 720)
    t3 = time.time()
    tap(at == (311, 187) and n == 0 and none is None and t3 - t0 < 5,
        '1920x1080: find %.2fs, compare %.2fs, all-gray miss %.2fs'
        % (t1 - t0, t2 - t1, t3 - t2), '%r %d %s' % (at, n, first))
    noisy = Image(1920, 1080, bytes(b ^ 1 for b in shot.rgb))
    t0 = time.time()
    n, _ = compare(noisy, frame, 311, 187, tolerance=1)
    m, _ = compare(noisy, frame, 311, 187)
    t1 = time.time()
    tap(n == 0 and m == 1280 * 720 and t1 - t0 < 10,
        '1280x720 all rows off by one: both compares %.2fs' % (t1 - t0))


def check_png_speed(tmp):
    shot = paste(desktop(1920, 1080), expected_frame(1280, 720, 7), 100, 100)
    path = os.path.join(tmp, 'big.png')
    write_png(shot, path, False, [1, 2, 0, 4, 3])
    t0 = time.time()
    img = read_image(path)
    t1 = time.time()
    tap(img.rgb == shot.rgb and t1 - t0 < 10,
        '1920x1080 PNG, all filters: read in %.2fs' % (t1 - t0))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        check_pattern()
        check_cursor()
        check_files(tmp)
        check_565(tmp)
        check_compare()
        check_screendump_until(tmp)
        check_speed()
        check_png_speed(tmp)
    return tap.done('gui_images')


if __name__ == '__main__':
    sys.exit(main())
