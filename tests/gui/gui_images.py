# gui_images.py: what the GUI client tests need to judge a picture taken by
# a real display client: readers for the files the clients write (PPM from
# QEMU screendump, XWD from xwd, PNG from weston-screenshooter, BMP from
# gvnccapture), the simulated vGPU's frame and cursor as they should look
# (docs/vgpusim.md, "The built-in guest and the pixel encoding"; the
# cursor also as the RGBA shape a SPICE client gets), a search for the
# frame inside a larger screenshot, a pixel comparison, and QEMU's
# screendump (PPM or PNG) retried until it equals the frame (check-gui and
# check-qtest's screendump suites share it).
# Python 3 standard library only. Images follow tests/qtest/vfio_display.py:
# .w, .h, .rgb (3 bytes a pixel, row-major, top-down), .px(x, y).
import array
import os
import struct
import sys
import time
import zlib
from itertools import accumulate

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, '..', 'qtest'))
sys.path.insert(0, _HERE)
from vfio_display import Image, decode_frame, read_ppm  # noqa: E402,F401

BAND_H = 8          # rows 0-7: frame number, complement, gray
STRIP_H = 16        # last rows: black strip with the moving block
BLOCK_W = 16
CURSOR_W = CURSOR_H = 64

WHITE = b'\xff\xff\xff'
BLACK = b'\x00\x00\x00'
GRAY = b'\x80\x80\x80'
RED = b'\xff\x00\x00'
BARS = (WHITE, b'\xff\xff\x00', b'\x00\xff\xff', b'\x00\xff\x00',
        b'\xff\x00\xff', RED, b'\x00\x00\xff', BLACK)
# The band's gray as clients show it: exact, and RGB565 widened to 8 bits
# by bit replication (pixman, X servers at depth 16).
GRAYS = (GRAY, b'\x84\x82\x84')


# ---------------------------------------------------------------- helpers

def _shuffle(data, cpp, offsets):
    """Packed RGB from contiguous pixels of @cpp bytes; @offsets holds the
    byte index of red, green and blue inside one pixel."""
    if cpp == 3 and tuple(offsets) == (0, 1, 2):
        return bytes(data)
    n = len(data) // cpp
    out = bytearray(n * 3)
    for ch, off in enumerate(offsets):
        out[ch::3] = data[off::cpp][:n]
    return bytes(out)


def _rows(data, start, stride, row_bytes, h, bottom_up=False):
    """The @h rows of @row_bytes each, @stride apart from @start, joined
    top-down."""
    order = range(h - 1, -1, -1) if bottom_up else range(h)
    return b''.join(data[start + y * stride:start + y * stride + row_bytes]
                    for y in order)


def _mask_offset(mask, cpp, big_endian):
    """Byte index inside a pixel of the 8-bit channel @mask, or None when
    the channel is not one whole byte."""
    for i in range(cpp):
        if mask == 0xff << (8 * i):
            return cpp - 1 - i if big_endian else i
    return None


# ---------------------------------------------------------------- readers

def read_bmp(path):
    """24 or 32 bpp BMP (BI_RGB, or BI_BITFIELDS with byte masks), bottom-up
    or top-down."""
    with open(path, 'rb') as f:
        d = f.read()
    if d[:2] != b'BM':
        raise ValueError('%s: not a BMP' % path)
    off = struct.unpack_from('<I', d, 10)[0]
    w, h = struct.unpack_from('<ii', d, 18)
    bpp, comp = struct.unpack_from('<HI', d, 28)
    cpp = bpp // 8
    if cpp not in (3, 4) or comp not in (0, 3):
        raise ValueError('%s: %d bpp, compression %d unsupported'
                         % (path, bpp, comp))
    offsets = (2, 1, 0)
    if comp == 3:
        masks = struct.unpack_from('<III', d, 54)
        offsets = tuple(_mask_offset(m, cpp, False) for m in masks)
        if None in offsets:
            raise ValueError('%s: masks %s unsupported' % (path, masks))
    stride = (w * cpp + 3) & ~3
    data = _rows(d, off, stride, w * cpp, abs(h), bottom_up=h > 0)
    return Image(w, abs(h), _shuffle(data, cpp, offsets))


XWD_FIELDS = ('header_size file_version pixmap_format pixmap_depth '
              'pixmap_width pixmap_height xoffset byte_order bitmap_unit '
              'bitmap_bit_order bitmap_pad bits_per_pixel bytes_per_line '
              'visual_class red_mask green_mask blue_mask bits_per_rgb '
              'colormap_entries ncolors window_width window_height window_x '
              'window_y window_bdrwidth').split()
XWD_COLOR_SIZE = 12


def xwd_header(data):
    """The 25 header fields of an X Window Dump as a dict."""
    return dict(zip(XWD_FIELDS, struct.unpack_from('>25I', data, 0)))


def _widen(value, mask):
    """The channel @mask of pixel @value scaled to 0..255."""
    shift = (mask & -mask).bit_length() - 1
    top = mask >> shift
    return (((value & mask) >> shift) * 255 + top // 2) // top


def _xwd_16bpp(data, hd):
    """Packed RGB of 16 bpp pixels through a 65536-entry table."""
    pixels = array.array('H', data)
    if (sys.byteorder == 'big') != (hd['byte_order'] == 1):
        pixels.byteswap()
    masks = (hd['red_mask'], hd['green_mask'], hd['blue_mask'])
    table = [bytes(_widen(v, m) for m in masks) for v in range(1 << 16)]
    return b''.join(map(table.__getitem__, pixels))


def read_xwd(path):
    """X Window Dump (xwd -root): ZPixmap TrueColor/DirectColor, 24/32 bpp
    with byte-wide masks or 16 bpp, either byte order."""
    with open(path, 'rb') as f:
        d = f.read()
    hd = xwd_header(d)
    if hd['file_version'] != 7 or hd['pixmap_format'] != 2:
        raise ValueError('%s: not a version 7 ZPixmap XWD' % path)
    w, h, bpp = hd['pixmap_width'], hd['pixmap_height'], hd['bits_per_pixel']
    cpp = bpp // 8
    start = hd['header_size'] + hd['ncolors'] * XWD_COLOR_SIZE
    data = _rows(d, start, hd['bytes_per_line'], w * cpp, h)
    if len(data) != w * h * cpp:
        raise ValueError('%s: truncated' % path)
    if bpp == 16:
        return Image(w, h, _xwd_16bpp(data, hd))
    masks = (hd['red_mask'], hd['green_mask'], hd['blue_mask'])
    offsets = tuple(_mask_offset(m, cpp, hd['byte_order'] == 1)
                    for m in masks)
    if bpp not in (24, 32) or None in offsets:
        raise ValueError('%s: %d bpp with masks %s unsupported'
                         % (path, bpp, [hex(m) for m in masks]))
    return Image(w, h, _shuffle(data, cpp, offsets))


PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def _png_chunks(d):
    """(type, data) of each chunk up to IEND."""
    pos = len(PNG_MAGIC)
    while pos + 8 <= len(d):
        n, kind = struct.unpack_from('>I4s', d, pos)
        yield kind, d[pos + 8:pos + 8 + n]
        if kind == b'IEND':
            return
        pos += 12 + n


def _add_mod256(a, b):
    """Bytewise (a + b) & 0xff of two equal-length byte strings."""
    n = len(a)
    x, y = int.from_bytes(a, 'big'), int.from_bytes(b, 'big')
    low = int.from_bytes(b'\x7f' * n, 'big')
    high = int.from_bytes(b'\x80' * n, 'big')
    s = ((x & low) + (y & low)) ^ ((x ^ y) & high)
    return s.to_bytes(n, 'big')


def _unfilter_sub(raw, cpp):
    """Sub: a running sum per channel."""
    out = bytearray(len(raw))
    for ch in range(cpp):
        out[ch::cpp] = bytes(map((255).__and__, accumulate(raw[ch::cpp])))
    return out


def _unfilter_avg(raw, prior, cpp):
    """Average of the left and upper bytes."""
    out = bytearray(raw)
    for i in range(len(out)):
        a = out[i - cpp] if i >= cpp else 0
        out[i] = (out[i] + ((a + prior[i]) >> 1)) & 255
    return out


def _unfilter_paeth(raw, prior, cpp):
    """Paeth: the left, upper or upper-left byte, whichever is nearest to
    left + upper - upper-left."""
    out = bytearray(_add_mod256(raw[:cpp], prior[:cpp]) + raw[cpp:])
    for i in range(cpp, len(out)):
        a, b, c = out[i - cpp], prior[i], prior[i - cpp]
        pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - c - c)
        if pa <= pb and pa <= pc:
            pred = a
        elif pb <= pc:
            pred = b
        else:
            pred = c
        out[i] = (out[i] + pred) & 255
    return out


def _unfilter(kind, raw, prior, cpp):
    """One scanline with PNG filter @kind undone."""
    if kind == 0:
        return raw
    if kind == 1:
        return _unfilter_sub(raw, cpp)
    if kind == 2:
        return _add_mod256(raw, prior)
    if kind == 3:
        return _unfilter_avg(raw, prior, cpp)
    if kind == 4:
        return _unfilter_paeth(raw, prior, cpp)
    raise ValueError('PNG filter type %d' % kind)


def read_png(path):
    """8-bit RGB or RGBA PNG, not interlaced; alpha is dropped."""
    with open(path, 'rb') as f:
        d = f.read()
    if d[:8] != PNG_MAGIC:
        raise ValueError('%s: not a PNG' % path)
    chunks = list(_png_chunks(d))
    w, h, depth, ctype, _, _, lace = struct.unpack('>IIBBBBB', chunks[0][1])
    if depth != 8 or ctype not in (2, 6) or lace:
        raise ValueError('%s: depth %d, colour type %d, interlace %d '
                         'unsupported' % (path, depth, ctype, lace))
    cpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b''.join(c for k, c in chunks if k == b'IDAT'))
    stride = w * cpp
    prior = bytes(stride)
    rows = []
    for y in range(h):
        o = y * (stride + 1)
        prior = _unfilter(raw[o], raw[o + 1:o + 1 + stride], prior, cpp)
        rows.append(bytes(prior))
    return Image(w, h, _shuffle(b''.join(rows), cpp, (0, 1, 2)))


def read_image(path):
    """Any of the above, chosen by the file's magic bytes."""
    with open(path, 'rb') as f:
        head = f.read(8)
    if head[:2] == b'P6':
        return read_ppm(path)
    if head[:2] == b'BM':
        return read_bmp(path)
    if head == PNG_MAGIC:
        return read_png(path)
    if len(head) == 8 and struct.unpack('>II', head)[1] == 7:
        return read_xwd(path)
    raise ValueError('%s: unknown image format %r' % (path, head))


def save_ppm(img, path):
    """Write @img as a binary PPM (P6)."""
    with open(path, 'wb') as f:
        f.write(b'P6\n%d %d\n255\n' % (img.w, img.h))
        f.write(bytes(img.rgb))


def crop(img, x0, y0, w, h):
    """The w x h part of @img at (x0, y0) (must lie inside)."""
    stride = img.w * 3
    return Image(w, h, _rows(img.rgb, y0 * stride + x0 * 3, stride, w * 3, h))


# ---------------------------------------------------------------- the frame

def _band_row(w, frame):
    """One of rows 0-7: frame number and complement MSB first, then gray."""
    bits = [(frame >> (31 - i)) & 1 for i in range(32)]
    bits += [b ^ 1 for b in bits]
    return b''.join(WHITE if b else BLACK for b in bits) + GRAY * (w - 64)


def expected_frame(w, h, frame):
    """The vgpusim primary plane for frame number @frame at w x h (w, h >=
    64), as XRGB8888 shows it."""
    frame &= 0xffffffff
    bars = b''.join(BARS[i] * (w * (i + 1) // 8 - w * i // 8)
                    for i in range(8))
    bx = frame * 4 % (w - BLOCK_W + 1)
    strip = BLACK * bx + WHITE * BLOCK_W + BLACK * (w - bx - BLOCK_W)
    rgb = (_band_row(w, frame) * BAND_H + bars * (h - BAND_H - STRIP_H) +
           strip * STRIP_H)
    return Image(w, h, rgb)


def expected_for(fmt, w, h, frame):
    """The vgpusim frame in format @fmt as an 8-bit RGB picture shows it:
    exact for every format but RGB565/BGR565, whose gray widens by bit
    replication."""
    img = expected_frame(w, h, frame)
    if fmt in ('RGB565', 'BGR565'):
        img = Image(w, h, img.rgb.replace(GRAY, GRAYS[1]))
    return img


def _cursor_pixels():
    """(x, y, rgb) of the opaque pixels of vgs_draw_cursor()'s image."""
    out = []
    for y in range(CURSOR_H):
        for x in range(CURSOR_W):
            d2 = (x - 32) ** 2 + (y - 32) ** 2
            if 22 * 22 <= d2 < 26 * 26:
                out.append((x, y, WHITE))
            elif 26 * 26 <= d2 < 29 * 29:
                out.append((x, y, BLACK))
            elif (x == 32 or y == 32) and d2 < 22 * 22:
                out.append((x, y, RED))
    return out


CURSOR_PIXELS = _cursor_pixels()


def cursor_rgba():
    """vgs_draw_cursor()'s 64x64 image as R, G, B, A bytes (transparent
    pixels all 0), as spice-glib hands a cursor shape to its client: SPICE
    carries alpha cursors as ARGB8888 words (B, G, R, A in memory, QEMU's
    QEMUCursor), and spice-glib's set_cursor() swaps bytes 0 and 2."""
    data = bytearray(CURSOR_W * CURSOR_H * 4)
    for x, y, colour in CURSOR_PIXELS:
        o = (y * CURSOR_W + x) * 4
        data[o:o + 4] = colour + b'\xff'
    return bytes(data)


def with_cursor(img, cx, cy):
    """A copy of @img with the 64x64 cursor image's top-left at (cx, cy),
    clipped at the edges (its alpha is 0 or 255 only)."""
    rgb = bytearray(img.rgb)
    for x, y, colour in CURSOR_PIXELS:
        px, py = cx + x, cy + y
        if 0 <= px < img.w and 0 <= py < img.h:
            o = (py * img.w + px) * 3
            rgb[o:o + 3] = colour
    return Image(img.w, img.h, bytes(rgb))


# ---------------------------------------------------------------- search

def _bits_at(rgb, o):
    """The frame number from the 64 pixels at byte offset @o, or None when
    they are not all black/white or the complement does not match."""
    v = 0
    for i in range(o, o + 64 * 3, 3):
        r, g, b = rgb[i], rgb[i + 1], rgb[i + 2]
        if r >= 0xc0 and g >= 0xc0 and b >= 0xc0:
            v = v << 1 | 1
        elif r < 0x40 and g < 0x40 and b < 0x40:
            v <<= 1
        else:
            return None
    return v >> 32 if (v >> 32) ^ (v & 0xffffffff) == 0xffffffff else None


def _band_at(shot, x0, y0, w):
    """Rows y0..y0+7 of the frame at x0 are the same band row."""
    stride = shot.w * 3
    o = y0 * stride + x0 * 3
    row = shot.rgb[o:o + w * 3]
    return all(shot.rgb[o + k * stride:o + k * stride + w * 3] == row
               for k in range(1, BAND_H))


def _candidates(shot, y, w, gray):
    """x where row @y has a black or white pixel at x + 63 followed by
    (w - 64) pixels of @gray."""
    row = y * shot.w * 3
    start, end = row + 63 * 3, row + shot.w * 3
    for edge in (WHITE, BLACK):
        needle = edge + gray * (w - 64)
        pos = shot.rgb.find(needle, start, end)
        while pos >= 0:
            if (pos - row) % 3 == 0:
                yield (pos - row) // 3 - 63
            pos = shot.rgb.find(needle, pos + 1, end)


def find_frame(shot, w, h, grays=GRAYS):
    """(x0, y0) of the top-left of a w x h vgpusim frame inside @shot, the
    topmost one found, or None. The frame is recognised by its band (rows
    0-7): 64 black/white pixels carrying a frame number and its complement,
    then a run of gray (any of @grays) to the frame's right edge, on 8
    identical rows. A frame wider than @w also matches: compare() tells.
    Fast on big pictures: candidates come from bytes.find() of the run."""
    for y in range(shot.h - h + 1):
        for gray in grays:
            for x in _candidates(shot, y, w, gray):
                if (x + w <= shot.w and
                        _bits_at(shot.rgb, (y * shot.w + x) * 3) is not None
                        and _band_at(shot, x, y, w)):
                    return x, y
    return None


# ---------------------------------------------------------------- compare

def _row_diffs(got, want, tolerance):
    """Pixel indexes where two packed RGB rows differ by more than
    @tolerance in some channel."""
    bad = [i for i, (a, b) in enumerate(zip(got, want))
           if abs(a - b) > tolerance]
    return sorted({i // 3 for i in bad})


def compare(shot, expected, x0=0, y0=0, tolerance=0):
    """Compare @expected with the same-sized part of @shot at (x0, y0),
    allowing @tolerance per channel. Returns (number of differing pixels,
    description of the first one); ('' when there is none). A part that
    does not fit inside @shot counts as all different."""
    w, h = expected.w, expected.h
    if x0 < 0 or y0 < 0 or x0 + w > shot.w or y0 + h > shot.h:
        return w * h, '%dx%d at %d,%d does not fit in %dx%d' % (
            w, h, x0, y0, shot.w, shot.h)
    stride, n, first = shot.w * 3, 0, ''
    for y in range(h):
        o = (y0 + y) * stride + x0 * 3
        got = shot.rgb[o:o + w * 3]
        want = expected.rgb[y * w * 3:(y + 1) * w * 3]
        if got == want:
            continue
        xs = _row_diffs(got, want, tolerance)
        if xs and not first:
            x = xs[0]
            first = 'pixel %d,%d (picture %d,%d): #%02x%02x%02x, want ' \
                '#%02x%02x%02x' % ((x, y, x0 + x, y0 + y) +
                                   shot.px(x0 + x, y0 + y) + expected.px(x, y))
        n += len(xs)
    return n, first


# ---------------------------------------------------------------- screendump

def screendump_until(q, name, want, image='ppm', timeout=8.0):
    """screendumps of QEMU @q (tests/qtest/vfio_display.Qemu) in format
    @image ('ppm' or 'png') until one equals @want pixel for pixel, or
    @timeout seconds: the device is polled, a change shows a little later.
    Returns (picture or None, differing pixels (-1: none or another size),
    what was wrong)."""
    deadline = time.time() + timeout
    while True:
        got, err = q.screendump(name, image)
        img = read_png(got) if image == 'png' and got else got
        if img is None:
            n, why = -1, err
        elif (img.w, img.h) != (want.w, want.h):
            n, why = -1, '%dx%d, want %dx%d' % (img.w, img.h, want.w, want.h)
        else:
            n, first = compare(img, want)
            why = '%d pixels differ; %s' % (n, first)
        if n == 0 or time.time() >= deadline:
            return img, n, why
        time.sleep(0.2)
