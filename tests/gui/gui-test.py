#!/usr/bin/env python3
# gui-test.py QEMU UUID OUTDIR [ROW...]: `make check-gui`'s guest side
# (tests/gui/check-gui.sh runs it in the rig VM). For each row of the
# display matrix (docs/display-matrix.md) it starts QEMU with
# `-device vfio-pci,display=on` on the simulated vGPU and a real client
# from Debian (an X server, a Wayland compositor, SPICE and VNC clients),
# takes the client's own picture and compares it pixel by pixel with the
# frame the device shows, built from the vgpusim pattern
# (tests/gui/gui_images.py), not from another path's output:
#   - a known frame, pixel-exact;
#   - the cursor plane where the device put it;
#   - the next frame after a flip;
#   - screendump of the same console, pixel-exact with the cursor;
#   - GTK gl=on (X11 and Wayland): screendump PPM and PNG at 1366x768 and
#     1365x767 (rows of width * 3 bytes that are not a multiple of 4),
#     pixel-exact with the cursor composited;
#   - SPICE local (gl=on) and remote: a spice-glib client connected while
#     the cursor plane goes on, changes its hotspot and moves, in the
#     orders on-hot-pos, hot-pos-on and pos-on-hot: the shape on the
#     cursor channel (64x64, the device's pixels, hotspot 32,32) and each
#     move at the plane's position.
# Each row runs on vgpusim's default profile, and again on its `region`
# and `gvt` profiles (docs/vgpusim.md) as ROW-region and ROW-gvt:
#   - region (region planes, as mdpy and NVIDIA vGPU): the same pictures,
#     pixel-exact, on the CPU path; there is no cursor plane, so every
#     picture is the frame without a cursor while the device's cursor is
#     on; the flip, and the odd-width mode changes where the row has them;
#   - gvt (GEM proxy dma-bufs: no mmap, no vmap, no CPU access; the rig's
#     llvmpipe cannot import them either): the client connects and shows
#     no frame of the device (the placeholder), screendump is an error
#     that says why, QEMU's one message about it is said exactly once
#     after flips, QEMU runs on, no dma-buf is leaked, and the same
#     display shows the frame pixel-exact once the device's buffers can be
#     read again (profile back to default).
# ROW: x11 x11-gl wayland spice-local spicy spice-remote spice-remote-gl vnc
# egl-vnc egl-vnc-gl, each also with -region, and all but spicy with -gvt
# (default: all; check-gui.sh passes its ROW arguments, or GUI_ROWS).
# Prints TAP; exit 0 when all pass.
import glob
import os
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(here, '..', 'qtest'))
from vfio_display import (Qemu, Tap, ctl as ctl_of,  # noqa: E402
                          known_state, kv, note, wait_for)
from gui_images import (CURSOR_H, CURSOR_W, compare,  # noqa: E402
                        cursor_rgba, expected_for, expected_frame,
                        find_frame, read_image, save_ppm, screendump_until,
                        with_cursor)

QEMU, UUID, OUTDIR = sys.argv[1:4]
ONLY = set(sys.argv[4:])
SYSFS = '/sys/bus/mdev/devices/%s' % UUID
DEVICE = ['-device', 'vfio-pci,sysfsdev=%s,display=on,id=vgpu,addr=05.0'
          % SYSFS]
MODE = (640, 480)
CURSOR_AT = (200, 150)      # the cursor plane's top-left

# Checks known to fail, with why (TAP TODO: reported, not counted as
# failures). Keep this short and true: docs/display-matrix.md lists them.
KNOWN = {}
tap = Tap(KNOWN)


def ctl(name, value=None):
    return ctl_of(UUID, name, value)


def frame_now():
    return int(kv(ctl('state'))['frame'])


def mode_now():
    w, h = kv(ctl('state'))['mode'].split('x')
    return int(w), int(h)


# ---------------------------------------------------------------- servers

def end(proc):
    """Stop a process we started: SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Server:
    """A display server (Xvfb, weston) run for one row; stopped at exit."""

    def __init__(self, argv, env, ready, log):
        self.log = open(log, 'w')
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while not ready() and time.time() < deadline:
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.ok = ready()

    def stop(self):
        end(self.proc)
        self.log.close()


def xvfb(num):
    env = dict(os.environ)
    sock = '/tmp/.X11-unix/X%d' % num
    return Server(['Xvfb', ':%d' % num, '-screen', '0', '1280x1024x24',
                   '-nolisten', 'tcp'], env, lambda: os.path.exists(sock),
                  os.path.join(OUTDIR, 'xvfb.log')), {'DISPLAY': ':%d' % num}


def weston(name):
    rt = tempfile.mkdtemp(prefix='xdg-')
    os.chmod(rt, 0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=rt)
    sock = os.path.join(rt, name)
    srv = Server(['weston', '--backend=headless', '--renderer=gl',
                  '--width=1280', '--height=1024', '--socket=' + name,
                  '--debug', '--idle-time=0'], env,
                 lambda: os.path.exists(sock),
                 os.path.join(OUTDIR, 'weston.log'))
    return srv, {'XDG_RUNTIME_DIR': rt, 'WAYLAND_DISPLAY': name,
                 'GDK_BACKEND': 'wayland'}


# ---------------------------------------------------------------- shots

def shot_xwd(env):
    path = os.path.join(OUTDIR, 'xwd.xwd')
    subprocess.run(['xwd', '-root', '-silent', '-out', path],
                   env=dict(os.environ, **env), check=True, timeout=60)
    return read_image(path)


def shot_weston(env):
    # weston 14 headless (gl renderer) answers the first capture after a
    # client's commit with its previous repaint: measured in the rig, the
    # first shot after the cursor came on missed it (1189 pixels), the
    # next three were exact. So the second capture is the picture.
    with tempfile.TemporaryDirectory(prefix='shot-') as d:
        for _ in range(2):
            for old in glob.glob(os.path.join(d, '*.png')):
                os.unlink(old)
            subprocess.run(['weston-screenshooter'],
                           env=dict(os.environ, **env), cwd=d, check=True,
                           timeout=60, capture_output=True)
        pngs = glob.glob(os.path.join(d, '*.png'))
        if not pngs:
            raise RuntimeError('weston-screenshooter wrote nothing')
        return read_image(pngs[0])


def shot_gvnc(port):
    path = os.path.join(OUTDIR, 'vnc.bmp')
    if os.path.exists(path):
        os.unlink(path)
    subprocess.run(['gvnccapture', '-q', '127.0.0.1:%d' % (port - 5900),
                    path], check=True, timeout=60, capture_output=True)
    return read_image(path)


def shot_spicy(port):
    path = os.path.join(OUTDIR, 'spice.ppm')
    if os.path.exists(path):
        os.unlink(path)
    subprocess.run(['spicy-screenshot', '-h', '127.0.0.1', '-p', str(port),
                    '-o', path], check=True, timeout=60, capture_output=True)
    return read_image(path)


def spice_draws():
    """Draws the last spice_gl_client.py run got (-1: it said nothing)."""
    try:
        with open(os.path.join(OUTDIR, 'spice-gl.ppm.draws')) as f:
            return int(f.read())
    except (OSError, ValueError):
        return -1


def spice_cursor():
    path = os.path.join(OUTDIR, 'spice-gl.ppm.cursor')
    with open(path) as f:
        return f.read().strip()


def shot_spice_gl(sock, need_draw=True):
    """The local SPICE GL client (spice-glib, the library spicy uses),
    answering every draw; its picture is the scanout it was given.
    need_draw false: the picture counts without a draw (spice_draws()
    says how many came)."""
    out = os.path.join(OUTDIR, 'spice-gl.ppm')
    for old in (out, out + '.draws'):
        if os.path.exists(old):
            os.unlink(old)
    r = subprocess.run([sys.executable,
                        os.path.join(here, 'spice_gl_client.py'), sock, out],
                       timeout=90, capture_output=True, text=True)
    if r.returncode and (need_draw or spice_draws() != 0 or
                         not os.path.exists(out)):
        raise RuntimeError('spice_gl_client.py: exit %d: %s' % (
            r.returncode, r.stderr.strip()[-500:]))
    return read_image(out)


def spice_gl_unreadable(sock):
    """gvt: what the local SPICE GL client got, and what it should get:
    the device's dma-buf (its geometry and format) that cannot be mapped
    (llvmpipe, like this client, reads a dma-buf through a mapping)."""
    said = os.path.join(OUTDIR, 'spice-gl.ppm.scanout')
    if os.path.exists(said):
        os.unlink(said)
    try:
        shot_spice_gl(sock)
    except (subprocess.SubprocessError, RuntimeError):
        pass                    # exit 1: it could not read the scanout
    try:
        with open(said) as f:
            got = f.read().strip()
    except OSError as e:
        got = 'no answer (%s)' % e
    return got, '%dx%d XR24: mmap: No such device' % MODE


class Spicy:
    """spicy (spice-gtk's GTK client) in a window on weston; its picture is
    weston's capture. Started at the first picture, once QEMU listens.
    Scaling off, so that the window shows the guest's frame 1:1. With
    spicy's default (scaling on) its display stayed black in the rig
    (docs/display-matrix.md)."""

    def __init__(self, sock, env):
        self.sock, self.env, self.proc, self.log = sock, env, None, None
        self.cfg = None             # its settings dir, removed in stop()

    def take(self):
        if self.proc is None:
            self.log = open(os.path.join(OUTDIR, 'spicy.log'), 'w')
            self.cfg = tempfile.TemporaryDirectory(prefix='spicy-')
            os.makedirs(os.path.join(self.cfg.name, 'spicy'))
            with open(os.path.join(self.cfg.name, 'spicy', 'settings'),
                      'w') as f:
                f.write('[general]\nscaling=false\nresize-guest=false\n')
            self.proc = subprocess.Popen(
                ['spicy', '--uri=spice+unix://' + self.sock],
                env=dict(os.environ, XDG_CONFIG_HOME=self.cfg.name,
                         **self.env), stdout=self.log,
                stderr=subprocess.STDOUT)
            time.sleep(5)
        if self.proc.poll() is not None:
            raise RuntimeError('spicy exited with %d' % self.proc.returncode)
        return shot_weston(self.env)

    def stop(self):
        if self.proc is not None:
            end(self.proc)
        if self.log is not None:
            self.log.close()
        if self.cfg is not None:
            self.cfg.cleanup()


# ---------------------------------------------------------------- checks

def check_picture(name, take, cursor, rgb565=False):
    """The client's picture equals the device's frame (and cursor)."""
    want_frame = frame_now()
    w, h = mode_now()
    want = expected_frame(w, h, want_frame)
    if cursor:
        want = with_cursor(want, *CURSOR_AT)
    last = None
    # One picture takes up to 25 s in the rig VM (two weston captures and
    # a PNG decoded under TCG): 20 s, but never fewer than three tries.
    deadline = time.time() + 20
    tries = 0
    while tries < 3 or time.time() < deadline:
        tries += 1
        try:
            shot = take()
        except (subprocess.SubprocessError, RuntimeError, OSError) as e:
            last = 'client failed: %s' % e
            time.sleep(1)
            continue
        # the last picture stays in OUTDIR, passed or not: what was judged
        save_ppm(shot, os.path.join(OUTDIR, name.replace(' ', '_') + '.ppm'))
        at = find_frame(shot, w, h)
        if at is None:
            last = 'frame %d (%dx%d) not found in the %dx%d picture' % (
                want_frame, w, h, shot.w, shot.h)
        else:
            n, first = compare(shot, want, at[0], at[1],
                               tolerance=8 if rgb565 else 0)
            if n == 0:
                return tap(True, '%s: frame %d%s pixel-exact at %d,%d' % (
                    name, want_frame, ' with the cursor' if cursor else '',
                    at[0], at[1]))
            last = '%d pixels differ, first: %s' % (n, first)
        time.sleep(1)
    return tap(False, '%s: frame %d%s pixel-exact' % (
        name, want_frame, ' with the cursor' if cursor else ''), last)


def check_screendump(q, name, cursor):
    w, h = mode_now()
    want = expected_frame(w, h, frame_now())
    if cursor:
        want = with_cursor(want, *CURSOR_AT)
    img, err = q.screendump(name.replace(' ', '_') + '-dump')
    if img is None:
        return tap(False, '%s: screendump' % name, err)
    n, first = compare(img, want) if (img.w, img.h) == (w, h) else \
        (-1, '%dx%d' % (img.w, img.h))
    return tap(n == 0, '%s: screendump pixel-exact%s' % (
        name, ' with the cursor' if cursor else ''), first)


def check_spice_draw(q, name):
    """A local GL client that connects while the frame does not change
    gets a draw (spicy renders the scanout it has at a draw)."""
    n = spice_draws()
    tap(n > 0, '%s: a client that connects to an unchanged frame gets a '
        'draw' % name, '%d draws' % n)


# ---------------------------------------------------------------- odd modes

# screendump at modes whose rows are width * 3 bytes, not a multiple of 4
# (upstream's ppm_save() wrote pixman's padded stride there), the cursor
# plane where it is composited: partly off the right edge, then off the
# bottom-left corner (a negative position)
DUMP_MODES = (('1366x768', (1330, 700)), ('1365x767', (-20, 730)))


def check_dump_modes(q, name, cursor=True):
    """screendump PPM and PNG of this console at DUMP_MODES, pixel-exact
    against the device's frame with the cursor composited (@cursor false:
    a device without a cursor plane, the region profile: the frame alone
    while the device's cursor is on). The EDID is not followed meanwhile:
    the display's window size must not change the mode under the test
    (the rows that follow get 640x480 back)."""
    ctl('edid_follow', 0)
    ctl('cursor_hot', '32 32')
    ctl('cursor', 'on')
    try:
        for mode, at in DUMP_MODES:
            ctl('mode', mode)
            ctl('cursor_pos', '%d %d' % at)
            ctl('step', 1)
            w, h = mode_now()
            want = expected_for('XRGB8888', w, h, frame_now())
            if cursor:
                want = with_cursor(want, *at)
            for image in ('ppm', 'png'):
                _, n, why = screendump_until(
                    q, '%s-dump-%s' % (name.replace(' ', '_'), mode), want,
                    image, timeout=15)
                tap(q.alive() and n == 0, '%s: screendump %s at %s, %s: '
                    'pixel-exact' % (name, image.upper(), mode,
                                     'the cursor at %d,%d' % at if cursor
                                     else 'no cursor plane'), why)
    finally:
        ctl('cursor', 'off')
        ctl('mode', '%dx%d' % MODE)
        ctl('edid_follow', 1)
        ctl('step', 1)


# ---------------------------------------------------------------- SPICE cursor

class CursorWatch:
    """spice-glib on SPICE's cursor channel while the cursor changes
    (spice_gl_client.py --events: every set, move and hide as it arrives,
    in server mouse mode), and what a client then shows: the shape and
    where its image's top-left is (the pointer minus the hotspot, as
    spice-gtk draws it)."""

    def __init__(self, target):
        self.path = os.path.join(OUTDIR, 'spice-cursor.events')
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.log = open(os.path.join(OUTDIR, 'spice-cursor.log'), 'w')
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(here, 'spice_gl_client.py'),
             '--events', self.path, target, '-', '900'],
            stdout=self.log, stderr=subprocess.STDOUT)

    def events(self):
        try:
            with open(self.path) as f:
                return [line.split() for line in f if line.endswith('\n')]
        except OSError:
            return []

    def state(self):
        """{'open', 'mode', 'shown', 'shape': (w, h, hot_x, hot_y, bytes),
        'pointer': (x, y), 'moves': [(x, y)...]} from the events so far."""
        st = {'open': False, 'mode': None, 'shown': False, 'shape': None,
              'pointer': None, 'moves': []}
        for ev in self.events():
            if ev[0] == 'open':
                st['open'] = True
            elif ev[0] == 'mode':
                st['mode'] = ev[1]
            elif ev[0] == 'set':
                st['shape'] = tuple(int(v) for v in ev[1:5]) + (
                    bytes.fromhex(ev[5]) if len(ev) > 5 else b'',)
                st['shown'] = True
            elif ev[0] == 'move':
                st['pointer'] = (int(ev[1]), int(ev[2]))
                st['moves'].append(st['pointer'])
                st['shown'] = True
            elif ev[0] == 'hide':
                st['shown'] = False
            elif ev[0] == 'reset':
                st['shape'], st['shown'] = None, False
        return st

    def wait(self, pred, timeout=10.0):
        deadline = time.time() + timeout
        while True:
            st = self.state()
            if pred(st) or time.time() >= deadline or \
                    self.proc.poll() is not None:
                return st
            time.sleep(0.2)

    def stop(self):
        end(self.proc)
        self.log.close()


CURSOR_IMAGE = cursor_rgba()
HOT_START = (8, 4)          # the hotspot before each order's 'hot' step
HOT = (32, 32)              # vgpusim's default, set by the 'hot' step
POS_START = (100, 80)
POS = (200, 150)            # set by the 'pos' step
MOVES = ((300, 220), (-20, 400), (590, 10))   # then each move of them
ORDERS = (('on', 'hot', 'pos'), ('hot', 'pos', 'on'), ('pos', 'on', 'hot'))


def shown_as(st):
    """What the client shows, in words: 'hidden', or the shape, hotspot,
    image top-left and whether its pixels are the device's."""
    if not st['shown'] or st['shape'] is None or st['pointer'] is None:
        return 'hidden'
    w, h, hx, hy, data = st['shape']
    bad = sum(data[o:o + 4] != CURSOR_IMAGE[o:o + 4]
              for o in range(0, len(CURSOR_IMAGE), 4)) \
        if len(data) == len(CURSOR_IMAGE) else -1
    return '%dx%d hot %d,%d at %d,%d, %s' % (
        w, h, hx, hy, st['pointer'][0] - hx, st['pointer'][1] - hy,
        'the device\'s pixels' if bad == 0 else
        '%d pixels differ from the device\'s' % bad if bad > 0 else
        '%d bytes of pixels' % len(data))


def want_shown(hot, pos):
    return '%dx%d hot %d,%d at %d,%d, the device\'s pixels' % (
        CURSOR_W, CURSOR_H, hot[0], hot[1], pos[0], pos[1])


def check_spice_cursor(q, name, target):
    """SPICE's cursor channel, remote and local, with a client connected
    while the cursor changes: for each order of the three changes (plane
    on, hotspot HOT_START -> HOT, position POS_START -> POS), after each
    change the client shows what the device has (hidden while the plane is
    off; else its 64x64 image, pixel for pixel, the hotspot and the
    plane's position); then each of MOVES arrives as a move to that
    position. Server mouse mode: in client mode spice-server passes a move
    on only when it shows a hidden cursor (the client's pointer is the
    position)."""
    ctl('cursor', 'off')
    ctl('cursor_hot', '%d %d' % HOT_START)
    ctl('cursor_pos', '%d %d' % POS_START)
    watch = CursorWatch(target)
    try:
        st = watch.wait(lambda s: s['open'] and s['mode'] == 'server', 60)
        if not tap(st['open'] and st['mode'] == 'server',
                   '%s: spice-glib on the cursor channel, server mouse mode'
                   % name, 'mode %s, client %s' % (st['mode'],
                                                   watch.proc.poll())):
            return
        for order in ORDERS:
            what = '%s: cursor %s' % (name, ' -> '.join(order))
            ctl('cursor', 'off')
            ctl('cursor_hot', '%d %d' % HOT_START)
            ctl('cursor_pos', '%d %d' % POS_START)
            on, hot, pos = False, HOT_START, POS_START
            watch.wait(lambda s: shown_as(s) == 'hidden')
            for step in order:
                if step == 'on':
                    ctl('cursor', 'on')
                    on = True
                elif step == 'hot':
                    ctl('cursor_hot', '%d %d' % HOT)
                    hot = HOT
                else:
                    ctl('cursor_pos', '%d %d' % POS)
                    pos = POS
                want = want_shown(hot, pos) if on else 'hidden'
                st = watch.wait(lambda s: shown_as(s) == want)
                tap(shown_as(st) == want, '%s: after %s: %s' % (
                    what, step, want), 'the client shows ' + shown_as(st))
            for at in MOVES:
                n = len(watch.state()['moves'])
                ctl('cursor_pos', '%d %d' % at)
                pointer = (at[0] + HOT[0], at[1] + HOT[1])
                st = watch.wait(lambda s: pointer in s['moves'][n:])
                tap(pointer in st['moves'][n:] and
                    shown_as(st) == want_shown(HOT, at),
                    '%s: the move to %d,%d arrives (pointer %d,%d)' % (
                        what, at[0], at[1], pointer[0], pointer[1]),
                    'moves since: %s; the client shows %s' % (
                        st['moves'][n:], shown_as(st)))
    finally:
        watch.stop()
        ctl('cursor', 'off')
        ctl('cursor_hot', '%d %d' % HOT)
        tap(q.alive(), '%s: QEMU alive after the cursor changes' % name,
            q.status())


def device_known_state(profile='default'):
    known_state(UUID, mode='%dx%d' % MODE)
    ctl('profile', profile)


def cursor_on():
    ctl('cursor_hot', '32 32')
    ctl('cursor_pos', '%d %d' % CURSOR_AT)
    ctl('cursor', 'on')


def run_row(name, qemu_args, env, take, path, cursor_check=True,
            cursor_apart=None, device=DEVICE, more=None, profile='default'):
    """One matrix row: QEMU on the display, the client's picture.
    cursor_check: the client's picture shows the cursor plane;
    cursor_apart: a function that says what the client got on its own
    cursor channel (SPICE), the picture must then show no cursor;
    device: the -device arguments (default DEVICE);
    more: more checks of this row, more(q, name), after the flip;
    profile: vgpusim's profile; under 'region' the device has no cursor
    plane: with its cursor on, every picture is the frame alone and a
    SPICE client gets no cursor on its channel."""
    note('row: %s' % name)
    failed_before = tap.failed
    region = profile == 'region'
    device_known_state(profile)
    q = Qemu(QEMU, qemu_args + device, OUTDIR, env=env)
    if not tap(q.alive(), '%s: QEMU starts' % name, q.output()):
        q.quit()
        return
    time.sleep(2)               # the displays come up; vfio resets the device
    ctl('step', 5)
    st = q.stats()
    tap(st.get('path') == path, '%s: display path %s' % (name, path),
        'got %s' % st.get('path'))
    if region:
        tap(st.get('planes') == 'region', '%s: region planes' % name,
            'planes=%s' % st.get('planes'))
    check_picture(name, take, False)
    check_screendump(q, name, False)
    if cursor_check or cursor_apart:
        cursor_on()
        check_picture(name, take, cursor_check and not region)
        check_screendump(q, name, not region)
        if cursor_apart:
            got = cursor_apart()
            want = 'none' if region else '64x64 hot 32,32'
            tap(got == want, '%s: %s' % (
                name, 'no cursor on the cursor channel (no cursor plane)'
                if region else 'the cursor plane on the cursor channel, '
                'not in the frame'), got)
        ctl('cursor', 'off')
    ctl('step', 1)              # a flip: the next frame
    check_picture(name + ' after a flip', take, False)
    if more:
        more(q, name)
    tap(q.alive(), '%s: QEMU still runs' % name, q.status())
    if tap.failed > failed_before and q.alive():
        note('%s: the engine\'s counters: %s' % (name, q.stats()))
    q.quit()
    if tap.failed > failed_before:
        note('%s: QEMU said:\n%s' % (name, q.output()[-3000:]))
    tap('eglCreateImageKHR failed' not in q.output(),
        '%s: no import error' % name, q.output())


# ---------------------------------------------------------------- gvt

# What QEMU says when nothing can show a GVT-g proxy dma-buf (tests/qtest/
# gvt-test.py checks the same on VNC and egl-headless): the CPU path's
# message (ui/dmabuf-scanout.c), and the EGL import guard's on a software
# renderer (ui/dmabuf-egl.c), each said once.
MSG_CPU = ('the frame cannot be read by the CPU (mmap: No such device) and '
           'no display of this console imports dma-bufs')
MSG_CPU_GL = ('the frame cannot be read by the CPU (mmap: No such device) '
              'and the GL display of this console cannot import dma-bufs')
MSG_SOFTWARE = ('a read-only shared mmap of it fails (No such device), so '
                'the software renderer cannot read it')
# QEMU's placeholder surface (ui/console.c): gray text on black
BLACK = b'\x00\x00\x00'
PLACEHOLDER = {BLACK, b'\xaa\xaa\xaa'}


def live_dmabufs():
    return int(kv(ctl('stats'))['live_dmabufs'])


def colours(img, limit=16):
    """The distinct colours of @img, up to @limit of them."""
    seen = set()
    for o in range(0, len(img.rgb), 3):
        seen.add(bytes(img.rgb[o:o + 3]))
        if len(seen) >= limit:
            break
    return seen


def check_no_frame(name, take, shows):
    """gvt: the client connects and shows no frame of the device (none can
    be read): no vgpusim frame anywhere in its picture; when the picture
    is the console alone (VNC, SPICE clients), @shows says what it is:
    'placeholder' (QEMU's, gray text on black) or 'black' (egl-headless's
    read-back of nothing), not garbage; None: a window among others (GTK),
    only no frame."""
    w, h = mode_now()
    want = {'placeholder': PLACEHOLDER, 'black': {BLACK}}.get(shows)
    what = {'placeholder': 'QEMU\'s placeholder (gray text on black)',
            'black': 'black'}.get(shows, 'no frame of the device')
    why = None
    for _ in range(3):
        try:
            shot = take()
        except (subprocess.SubprocessError, RuntimeError, OSError) as e:
            why = 'client failed: %s' % e
            time.sleep(1)
            continue
        save_ppm(shot, os.path.join(OUTDIR, name.replace(' ', '_') + '.ppm'))
        at = find_frame(shot, w, h)
        got = colours(shot) if want else None
        if at is None and got == want:
            return tap(True, '%s: the client connects and shows %s' % (
                name, what))
        why = 'a frame at %s' % (at,) if at else 'colours %s' % sorted(
            c.hex() for c in got)
        time.sleep(1)
    return tap(False, '%s: the client connects and shows %s' % (name, what),
               why)


def run_gvt_row(name, qemu_args, env, take, path, msg, shows='placeholder',
                device=DEVICE, client_sees=None, dump_black=False):
    """One matrix row on vgpusim's gvt profile, from QEMU's start: the
    client's picture is the placeholder (no frame of the device: none can
    be mapped, and llvmpipe imports by mapping); screendump an error that
    says why; after flips @msg in QEMU's output exactly once (None: QEMU
    says nothing, the client cannot read what it is given); QEMU alive;
    the engine's fds are the device's live dma-bufs; then the device's
    buffers become readable (profile default) and the same display shows
    the frame pixel-exact; QEMU quits by itself, every dma-buf released.
    client_sees: a function that says what the client got (SPICE's GL
    scanout), checked instead of a picture; dump_black: screendump is the
    black picture the display read back (egl-headless), not an error."""
    note('row: %s' % name)
    failed_before = tap.failed
    device_known_state('gvt')
    live0 = live_dmabufs()
    q = Qemu(QEMU, qemu_args + device, OUTDIR, env=env)
    if not tap(q.alive(), '%s: QEMU starts' % name, q.output()):
        q.quit()
        return
    time.sleep(2)
    ctl('step', 5)
    time.sleep(1)
    st = q.stats()
    tap(st.get('path') == path, '%s: display path %s' % (name, path),
        'got %s' % st.get('path'))
    if client_sees:
        got, want = client_sees()
        tap(got == want, '%s: the client gets the device\'s dma-buf and '
            'cannot read it: %s' % (name, want), 'got: %s' % got)
    else:
        check_no_frame(name, take, shows)
    img, err = q.screendump(name.replace(' ', '_') + '-dump')
    if dump_black:
        # egl-headless reads back what it shows (patch 0005 takes that
        # picture when the device's snapshot fails): VNC's black
        tap(img is not None and (img.w, img.h) == MODE and
            colours(img) == {BLACK}, '%s: screendump is the black picture '
            'the display shows' % name, err if img is None else
            '%dx%d, colours %s' % (img.w, img.h,
                                   sorted(c.hex() for c in colours(img))))
    else:
        tap(img is None and 'the frame cannot be read by the CPU (mmap: '
            'No such device)' in (err or ''), '%s: screendump is an error '
            'that says why' % name, err if img is None else
            'a %dx%d picture' % (img.w, img.h))
    for _ in range(5):
        ctl('step', 1)
        time.sleep(0.2)
    out = q.output()
    said = out.count(msg) if msg else 0
    if msg:
        tap(said == 1, '%s: QEMU says "%s" once (%d times)' % (name, msg,
                                                               said),
            out[-2500:])
    else:
        tap('cannot be read' not in out and 'cannot read it' not in out,
            '%s: QEMU says nothing (the client gets the dma-buf)' % name,
            out[-2500:])
    st = q.stats()
    if path == 'cpu-shadow':
        # the CPU cannot map it: nothing reaches the display
        shown = int(st.get('frames_shown', -1)) == 0 and \
            int(st.get('not_shown', 0)) > 0
        what = 'no frame shown, each counted as not shown'
    else:
        # handed to the GL display, whose import refuses it
        shown = int(st.get('frames_shown', 0)) > 0
        what = 'the frames handed to the GL display'
    tap(q.alive() and shown and
        int(st.get('fds_open', -1)) == live_dmabufs() - live0,
        '%s: QEMU runs, %s, engine fds_open = the device\'s live '
        'dma-bufs' % (name, what),
        'status %s, frames_shown %s, not_shown %s, fds_open %s, '
        'live_dmabufs %d' % (q.status(), st.get('frames_shown'),
                             st.get('not_shown'), st.get('fds_open'),
                             live_dmabufs() - live0))
    # the same display, once the device's buffers can be read
    ctl('profile', 'default')
    ctl('step', 1)
    check_picture(name + ', then the default profile', take, False)
    tap(q.output().count(msg) == said if msg else True,
        '%s: nothing more said' % name, q.output()[-1500:])
    if tap.failed > failed_before and q.alive():
        note('%s: the engine\'s counters: %s' % (name, q.stats()))
    ok = q.quit()
    tap(ok, '%s: QEMU quits by itself, status 0' % name, q.status())
    tap(wait_for(lambda: live_dmabufs() == live0, timeout=5),
        '%s: after quit the device\'s live dma-bufs are back to %d (%d)'
        % (name, live0, live_dmabufs()))
    if tap.failed > failed_before:
        note('%s: QEMU said:\n%s' % (name, q.output()[-3000:]))


def main():
    os.makedirs(OUTDIR, exist_ok=True)
    rows = []

    def row(name, fn):
        if not ONLY or name in ONLY:
            rows.append((name, fn))

    def titled(name, profile):
        return name if profile == 'default' else '%s, %s' % (name, profile)

    def gvt_or(profile, name, args, env, take, path, gvt_path, gvt_msg,
               **kw):
        """The row on @profile: run_gvt_row under gvt, else run_row."""
        if profile == 'gvt':
            run_gvt_row(titled(name, profile), args, env, take, gvt_path,
                        gvt_msg, shows=kw.pop('shows', 'placeholder'),
                        device=kw.get('device', DEVICE),
                        client_sees=kw.get('client_sees'),
                        dump_black=kw.pop('dump_black', False))
        else:
            kw.pop('shows', None)
            kw.pop('client_sees', None)
            kw.pop('dump_black', None)
            if profile == 'region':
                path = 'cpu-shadow'     # a region plane has no dma-buf
            run_row(titled(name, profile), args, env, take, path,
                    profile=profile, **kw)

    def x11(gl, profile):
        srv, env = xvfb(1)
        if not tap(srv.ok, 'Xvfb starts'):
            return
        try:
            more = None
            if gl:
                more = lambda q, name: check_dump_modes(   # noqa: E731
                    q, name, cursor=profile != 'region')
            gvt_or(profile, 'gtk%s on X11' % (',gl=on' if gl else ''),
                   ['-display', 'gtk,zoom-to-fit=off%s' %
                    (',gl=on' if gl else '')], env,
                   lambda: shot_xwd(env), 'cpu-shadow', 'cpu-shadow',
                   MSG_CPU_GL if gl else MSG_CPU, shows=None,
                   cursor_check=False, more=more)
        finally:
            srv.stop()

    def wayland(profile):
        srv, env = weston('wl-qemu')
        if not tap(srv.ok, 'weston starts'):
            return
        try:
            gvt_or(profile, 'gtk,gl=on on Wayland',
                   ['-display', 'gtk,gl=on,zoom-to-fit=off'], env,
                   lambda: shot_weston(env), 'gl-dmabuf', 'gl-dmabuf',
                   MSG_SOFTWARE, shows=None,
                   more=lambda q, name: check_dump_modes(
                       q, name, cursor=profile != 'region'))
        finally:
            srv.stop()

    def spice_local(profile):
        sock = '/tmp/gui-spice.sock'
        gvt_or(profile, 'spice gl=on local',
               ['-display', 'none', '-spice',
                'unix=on,addr=%s,disable-ticketing=on,gl=on' % sock], {},
               lambda: shot_spice_gl(sock, need_draw=profile != 'region'),
               'gl-dmabuf-cursor-image', 'gl-dmabuf-cursor-image', None,
               client_sees=lambda: spice_gl_unreadable(sock),
               cursor_check=False, cursor_apart=spice_cursor,
               more=check_spice_draw if profile == 'region' else
               lambda q, name: check_spice_cursor(q, name, sock))

    def spice_spicy(profile):
        # the same local GL session as spice_local, in the real GTK client:
        # spicy imports the dma-buf itself (EGL on Wayland) and draws it
        srv, env = weston('wl-spicy')
        if not tap(srv.ok, 'weston starts'):
            return
        sock = '/tmp/gui-spicy.sock'
        spicy = Spicy(sock, env)
        try:
            run_row(titled('spice gl=on local in spicy on Wayland', profile),
                    ['-display', 'none', '-spice',
                     'unix=on,addr=%s,disable-ticketing=on,gl=on' % sock], {},
                    spicy.take, 'cpu-shadow' if profile == 'region' else
                    'gl-dmabuf-cursor-image', cursor_check=False,
                    profile=profile)
        finally:
            spicy.stop()
            srv.stop()

    def spice_remote(gl, profile):
        gvt_or(profile, 'spice remote%s' % (' gl=on' if gl else ''),
               ['-display', 'none', '-spice',
                'port=5930,addr=127.0.0.1,disable-ticketing=on%s'
                % (',gl=on' if gl else '')], {},
               lambda: shot_spicy(5930), 'cpu-shadow', 'cpu-shadow', MSG_CPU,
               cursor_check=False,
               more=None if gl or profile == 'region' else
               lambda q, name: check_spice_cursor(q, name,
                                                  '127.0.0.1:5930'))

    def vnc(display, path, profile, dev_opts='', gvt_path='cpu-shadow',
            gvt_msg=MSG_CPU):
        gvt_or(profile, '%s + VNC%s' % (display, ' (%s)' % dev_opts.lstrip(',')
                                         if dev_opts else ''),
               ['-display', display, '-vnc', '127.0.0.1:0'], {},
               lambda: shot_gvnc(5900), path, gvt_path, gvt_msg,
               cursor_check=False, dump_black=display == 'egl-headless',
               shows='black' if display == 'egl-headless' else 'placeholder',
               device=['-device', DEVICE[1] + dev_opts])

    for profile in ('default', 'region', 'gvt'):
        sfx = '' if profile == 'default' else '-' + profile
        row('x11' + sfx, lambda p=profile: x11(False, p))
        row('x11-gl' + sfx, lambda p=profile: x11(True, p))
        row('wayland' + sfx, lambda p=profile: wayland(p))
        row('spice-local' + sfx, lambda p=profile: spice_local(p))
        if profile != 'gvt':
            # spicy's EGL import on llvmpipe maps the dma-buf, and Mesa
            # dereferences NULL when that mmap fails: the client would die,
            # which says nothing about QEMU (the spice-glib row above shows
            # what a client is given)
            row('spicy' + sfx, lambda p=profile: spice_spicy(p))
        row('spice-remote' + sfx, lambda p=profile: spice_remote(False, p))
        row('spice-remote-gl' + sfx, lambda p=profile: spice_remote(True, p))
        row('vnc' + sfx, lambda p=profile: vnc('none', 'cpu-shadow', p))
        # egl-headless maps linear buffers with the CPU (x-display-gl=auto):
        # a proxy it cannot map moves the mode to its GL import, which the
        # software renderer refuses; x-display-gl=on keeps its GL import
        # and read-back
        row('egl-vnc' + sfx, lambda p=profile: vnc(
            'egl-headless', 'cpu-shadow', p, gvt_path='gl-dmabuf',
            gvt_msg=MSG_SOFTWARE))
        row('egl-vnc-gl' + sfx, lambda p=profile: vnc(
            'egl-headless', 'gl-dmabuf', p, ',x-display-gl=on',
            gvt_path='gl-dmabuf', gvt_msg=MSG_SOFTWARE))
    for name, fn in rows:
        fn()
    device_known_state()
    return tap.done('gui')


if __name__ == '__main__':
    sys.exit(main())
