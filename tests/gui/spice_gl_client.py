#!/usr/bin/env python3
# spice_gl_client.py SOCKET OUT.ppm [SECONDS]: a local SPICE GL client
# built on spice-glib (the library spicy uses; python3-gi,
# gir1.2-spiceclientglib-2.0). It connects to `-spice unix=on,gl=on`,
# answers every GL draw (as spicy does after rendering), and after SECONDS
# (default 3) writes the scanout it was given as a PPM (what spicy would
# render) and, next to it, OUT.cursor with the cursor shape that arrived on
# the cursor channel ("WxH hot X,Y" or "none"). Exit 1 when no scanout came.
import mmap
import os
import struct
import sys

import gi
gi.require_version('SpiceClientGLib', '2.0')
from gi.repository import GLib, GObject, SpiceClientGLib as Spice  # noqa: E402

XR24 = 0x34325258
AR24 = 0x34325241

sock, out = sys.argv[1], sys.argv[2]
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
state = {'draws': 0, 'display': None, 'cursor': 'none'}


# SPICE_GL_NOACK=1: a client that never acknowledges a draw (the console
# stays GL-blocked), for the test that QEMU survives it
NOACK = os.environ.get('SPICE_GL_NOACK') == '1'


def on_draw(channel, x, y, w, h):
    state['draws'] += 1
    state['display'] = channel
    if not NOACK:
        channel.gl_draw_done()


def on_cursor(channel, width, height, hot_x, hot_y, rgba):
    state['cursor'] = '%dx%d hot %d,%d' % (width, height, hot_x, hot_y)


def on_channel(session, channel):
    if isinstance(channel, Spice.DisplayChannel):
        GObject.Object.connect(channel, 'gl-draw', on_draw)
        state['display'] = channel
        channel.connect()
    elif isinstance(channel, Spice.CursorChannel):
        GObject.Object.connect(channel, 'cursor-set', on_cursor)
        channel.connect()


def save(channel):
    sc = channel.get_gl_scanout()
    if sc is None or sc.fd < 0:
        return False
    if sc.format not in (XR24, AR24):
        sys.stderr.write('scanout format 0x%x\n' % sc.format)
        return False
    size = sc.stride * sc.height
    m = mmap.mmap(sc.fd, (size + 4095) & ~4095, mmap.MAP_SHARED,
                  mmap.PROT_READ)
    rgb = bytearray(sc.width * sc.height * 3)
    for y in range(sc.height):
        row = m[y * sc.stride:y * sc.stride + sc.width * 4]
        o = y * sc.width * 3
        rgb[o:o + sc.width * 3:3] = row[2::4]
        rgb[o + 1:o + sc.width * 3:3] = row[1::4]
        rgb[o + 2:o + sc.width * 3:3] = row[0::4]
    m.close()
    with open(out, 'wb') as f:
        f.write(b'P6 %d %d 255\n' % (sc.width, sc.height))
        f.write(rgb)
    return True


def main():
    session = Spice.Session()
    session.set_property('unix-path', sock)
    GObject.Object.connect(session, 'channel-new', on_channel)
    if not session.connect():
        sys.stderr.write('cannot connect to %s\n' % sock)
        return 1
    loop = GLib.MainLoop()
    GLib.timeout_add(int(seconds * 1000), loop.quit)
    loop.run()
    ok = state['display'] is not None and save(state['display'])
    with open(out + '.cursor', 'w') as f:
        f.write(state['cursor'] + '\n')
    sys.stderr.write('draws answered: %d, cursor: %s\n'
                     % (state['draws'], state['cursor']))
    session.disconnect()
    return 0 if ok and state['draws'] else 1


if __name__ == '__main__':
    sys.exit(main())
