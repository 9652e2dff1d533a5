#!/usr/bin/env python3
# spice_gl_client.py [--events FILE] TARGET OUT.ppm [SECONDS]: a SPICE
# client built on spice-glib (the library spicy uses; python3-gi,
# gir1.2-spiceclientglib-2.0). TARGET is a unix socket (`-spice
# unix=on,addr=...`) or HOST:PORT (`-spice port=...`).
#   - With `gl=on` it answers every GL draw (as spicy does after
#     rendering), and after SECONDS (default 3) writes the scanout it was
#     given as a PPM (what spicy would render) and, next to it, OUT.cursor
#     with the cursor shape that arrived on the cursor channel ("WxH hot
#     X,Y" or "none"), OUT.scanout with what the scanout was ("WxH
#     FOURCC: mmap: ok" or the error of its mmap, "none" when none came)
#     and OUT.draws with the number of draws that came. Exit 1 when no
#     scanout came, it cannot be read, or no draw came (OUT.ppm is then
#     written all the same when the scanout could be read).
#   - --events FILE: a cursor-channel recorder for tests that change the
#     cursor while the client is connected. It asks for SPICE's server
#     mouse mode (in client mode spice-server passes a move on only when
#     it shows a hidden cursor: the client's own pointer is the position)
#     and writes one line per event, as it arrives:
#         open                      the cursor channel is open
#         mode server|client        the session's mouse mode
#         set W H HOTX HOTY RGBA    a shape; RGBA: its W*H*4 bytes in hex
#                                   as spice-glib hands them (R,G,B,A)
#         move X Y                  the pointer (the hotspot) moved there
#         hide | reset              the cursor was hidden / reset
#     It runs until SIGTERM or SECONDS (OUT.ppm may then be "-": no
#     picture) and exits 0 once the cursor channel was open.
import ctypes
import mmap
import os
import signal
import sys

import gi
gi.require_version('SpiceClientGLib', '2.0')
from gi.repository import GLib, GObject, SpiceClientGLib as Spice  # noqa: E402

XR24 = 0x34325258
AR24 = 0x34325241
XB24 = 0x34324258
AB24 = 0x34324241
# bytes of red, green, blue in a pixel in memory (DRM fourccs are little
# endian): QEMU's own texture exported (the 2D path on gl=on) is XB24
RGB_AT = {XR24: (2, 1, 0), AR24: (2, 1, 0), XB24: (0, 1, 2), AB24: (0, 1, 2)}
MOUSE_SERVER = 1            # SPICE_MOUSE_MODE_SERVER (spice-protocol)
MOUSE_NAMES = {1: 'server', 2: 'client'}

args = sys.argv[1:]
events = None
if args[:1] == ['--events']:
    events = open(args[1], 'w', buffering=1)
    args = args[2:]
target, out = args[0], args[1]
seconds = float(args[2]) if len(args) > 2 else 3.0
state = {'draws': 0, 'display': None, 'cursor': 'none', 'cursor_open': False}


# SPICE_GL_NOACK=1: a client that never acknowledges a draw (the console
# stays GL-blocked), for the test that QEMU survives it
NOACK = os.environ.get('SPICE_GL_NOACK') == '1'


def record(line):
    if events is not None:
        events.write(line + '\n')


def on_draw(channel, x, y, w, h):
    state['draws'] += 1
    state['display'] = channel
    if not NOACK:
        channel.gl_draw_done()


def cursor_bytes(channel, width, height, rgba):
    """The shape's pixels: the signal's pointer, else the channel's
    `cursor` property (the same data)."""
    size = width * height * 4
    if isinstance(rgba, int) and rgba:
        return ctypes.string_at(rgba, size)
    shape = channel.get_property('cursor')
    if shape is not None and isinstance(shape.data, int) and shape.data:
        return ctypes.string_at(shape.data, size)
    return b''


def on_cursor(channel, width, height, hot_x, hot_y, rgba):
    state['cursor'] = '%dx%d hot %d,%d' % (width, height, hot_x, hot_y)
    if events is not None:
        record('set %d %d %d %d %s' % (
            width, height, hot_x, hot_y,
            cursor_bytes(channel, width, height, rgba).hex()))


def on_mouse_mode(main, *_):
    mode = main.get_property('mouse-mode')
    record('mode %s' % MOUSE_NAMES.get(mode, mode))
    if mode != MOUSE_SERVER:
        main.request_mouse_mode(MOUSE_SERVER)


def on_channel(session, channel):
    if isinstance(channel, Spice.DisplayChannel):
        GObject.Object.connect(channel, 'gl-draw', on_draw)
        state['display'] = channel
        channel.connect()
    elif isinstance(channel, Spice.CursorChannel):
        GObject.Object.connect(channel, 'cursor-set', on_cursor)
        GObject.Object.connect(channel, 'cursor-move',
                               lambda c, x, y: record('move %d %d' % (x, y)))
        GObject.Object.connect(channel, 'cursor-hide',
                               lambda c: record('hide'))
        GObject.Object.connect(channel, 'cursor-reset',
                               lambda c: record('reset'))
        GObject.Object.connect(channel, 'channel-event', on_cursor_event)
        channel.connect()
    elif isinstance(channel, Spice.MainChannel) and events is not None:
        GObject.Object.connect(channel, 'main-mouse-update', on_mouse_mode)


def on_cursor_event(channel, event):
    if event == Spice.ChannelEvent.OPENED:
        state['cursor_open'] = True
        record('open')


def scanout_said(what):
    with open(out + '.scanout', 'w') as f:
        f.write(what + '\n')


def save(channel):
    sc = channel.get_gl_scanout()
    if sc is None or sc.fd < 0:
        scanout_said('none')
        return False
    said = '%dx%d %s: mmap: ' % (sc.width, sc.height,
                                 sc.format.to_bytes(4, 'little').decode(
                                     'ascii', 'replace'))
    size = sc.stride * sc.height
    try:
        m = mmap.mmap(sc.fd, (size + 4095) & ~4095, mmap.MAP_SHARED,
                      mmap.PROT_READ)
    except OSError as e:
        scanout_said(said + e.strerror)
        return False
    scanout_said(said + 'ok')
    if sc.format not in RGB_AT:
        sys.stderr.write('scanout format 0x%x\n' % sc.format)
        m.close()
        return False
    r, g, b = RGB_AT[sc.format]
    rgb = bytearray(sc.width * sc.height * 3)
    for y in range(sc.height):
        row = m[y * sc.stride:y * sc.stride + sc.width * 4]
        o = y * sc.width * 3
        rgb[o:o + sc.width * 3:3] = row[r::4]
        rgb[o + 1:o + sc.width * 3:3] = row[g::4]
        rgb[o + 2:o + sc.width * 3:3] = row[b::4]
    m.close()
    with open(out, 'wb') as f:
        f.write(b'P6 %d %d 255\n' % (sc.width, sc.height))
        f.write(rgb)
    return True


def main():
    session = Spice.Session()
    host, _, port = target.rpartition(':')
    if '/' not in target and host and port.isdigit():
        session.set_property('host', host)
        session.set_property('port', port)
    else:
        session.set_property('unix-path', target)
    GObject.Object.connect(session, 'channel-new', on_channel)
    if not session.connect():
        sys.stderr.write('cannot connect to %s\n' % target)
        return 1
    loop = GLib.MainLoop()
    GLib.timeout_add(int(seconds * 1000), loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    loop.run()
    if events is not None:
        session.disconnect()
        return 0 if state['cursor_open'] else 1
    ok = state['display'] is not None and save(state['display'])
    with open(out + '.cursor', 'w') as f:
        f.write(state['cursor'] + '\n')
    with open(out + '.draws', 'w') as f:
        f.write('%d\n' % state['draws'])
    sys.stderr.write('draws answered: %d, cursor: %s\n'
                     % (state['draws'], state['cursor']))
    session.disconnect()
    return 0 if ok and state['draws'] else 1


if __name__ == '__main__':
    sys.exit(main())
