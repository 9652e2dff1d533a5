# vfio_display.py: what the QEMU display tests and the demo share: a QEMU
# started with `-accel qtest` driven over the qtest protocol and QMP, the
# simulated vGPU's sysfs controls, screendump parsing and the vgpusim
# frame-number decoder (docs/vgpusim.md). Python 3 standard library only.
import collections
import json
import os
import socket
import subprocess
import time

FIRMWARE = ['-L', '/usr/share/seabios', '-L', '/usr/lib/ipxe/qemu',
            '-L', '/usr/share/qemu']


def note(msg):
    for line in str(msg).splitlines() or ['']:
        print('# ' + line, flush=True)


class Tap:
    """TAP lines and counts, shared by the test drivers. @known maps a
    check's name to why it is expected to fail: reported as TODO, not
    counted as a failure."""

    def __init__(self, known=None):
        self.n = self.failed = 0
        self.known = known or {}

    def __call__(self, ok, name, diag=None):
        self.n += 1
        todo = None if ok else self.known.get(name)
        self.failed += not ok and not todo
        print('%s %d - %s%s' % ('ok' if ok else 'not ok', self.n, name,
                                ' # TODO %s' % todo if todo else ''),
              flush=True)
        if diag and not ok:
            for line in str(diag).splitlines()[-30:]:
                print('#   ' + line, flush=True)
        return ok

    def done(self, what):
        """The plan line and a summary; the exit status."""
        print('1..%d' % self.n)
        print('# %s: %d of %d failed' % (what, self.failed, self.n))
        return 1 if self.failed else 0


# ---------------------------------------------------------------- device

def ctl(uuid, name, value=None):
    path = '/sys/bus/mdev/devices/%s/vgpusim/%s' % (uuid, name)
    if value is None:
        with open(path) as f:
            return f.read()
    with open(path, 'w') as f:
        f.write(str(value))


def known_state(uuid, flip_hz=60, mode='640x480'):
    """The simulated vGPU at a known start, as the test drivers expect it:
    no fault, EDID link up, plane on, 3 buffers, front-buffer rendering
    off, cursor off, linear XRGB8888 at @mode, paused at @flip_hz, no
    display event storm."""
    for name, value in (('pause', 1), ('storm', 0), ('fault', 'clear'),
                        ('edid_link', 'up'),
                        ('enable', 1), ('front_buffer', 0), ('cursor', 'off'),
                        ('modifier', 'linear'), ('format', 'XRGB8888'),
                        ('mode', mode), ('nbufs', 3), ('flip_hz', flip_hz)):
        ctl(uuid, name, value)


def kv(text):
    out = {}
    for line in text.splitlines():
        if '=' in line:
            k, v = line.split('=', 1)
            out[k.strip()] = v.strip()
    return out


# ---------------------------------------------------------------- QEMU

class Qemu:
    def __init__(self, qemu, args, outdir, env=None, tag=''):
        # @tag: a run directory of its own, for QEMUs that run side by side
        run = '/tmp/vd-%d%s' % (os.getpid(), tag)
        self.outdir = outdir
        os.makedirs(run, exist_ok=True)
        self.qtest_path = run + '/qtest.sock'
        self.qmp_path = run + '/qmp.sock'
        for p in (self.qtest_path, self.qmp_path):
            if os.path.exists(p):
                os.unlink(p)
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(self.qtest_path)
        lsock.listen(1)
        self.log_path = run + '/qemu.log'
        self.log = open(self.log_path, 'w')
        cmd = [qemu] + FIRMWARE + [
            '-machine', 'pc', '-accel', 'qtest', '-m', '64M', '-nodefaults',
            '-qtest', 'unix:' + self.qtest_path,
            '-qmp', 'unix:%s,server=on,wait=off' % self.qmp_path,
        ] + args
        note('starting: ' + ' '.join(cmd))
        self.proc = subprocess.Popen(cmd, stdout=self.log,
                                     stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **(env or {})))
        lsock.settimeout(30)
        try:
            self.qt, _ = lsock.accept()
        except socket.timeout:
            self.qt = None
        lsock.close()
        if self.qt is None:
            return
        self.qt_buf = b''
        # the last QMP events seen, oldest first (bounded: a soak runs
        # for hours of QMP commands)
        self.events = collections.deque(maxlen=256)
        deadline = time.time() + 30
        while not os.path.exists(self.qmp_path) and time.time() < deadline:
            time.sleep(0.05)
        try:
            self.qmp = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.qmp.connect(self.qmp_path)
            self.qmp_file = self.qmp.makefile('rwb')
            self._qmp_read()  # greeting
            self.cmd('qmp_capabilities')
        except (OSError, RuntimeError):
            self.qt = None  # QEMU went away while starting

    def alive(self):
        return self.qt is not None and self.proc.poll() is None

    def status(self):
        """How QEMU ended: 'running', 'exit N', 'killed by signal N', or
        'killed by the test after quit' (it did not exit by itself)."""
        rc = self.proc.poll()
        if rc is None:
            return 'running'
        if getattr(self, 'killed', False):
            return 'killed by the test after quit (no exit in 20 s)'
        return 'killed by signal %d' % -rc if rc < 0 else 'exit %d' % rc

    def output(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    # qtest protocol
    def qtest(self, line):
        self.qt.sendall((line + '\n').encode())
        while True:
            while b'\n' not in self.qt_buf:
                data = self.qt.recv(65536)
                if not data:
                    raise RuntimeError('qtest connection closed')
                self.qt_buf += data
            resp, self.qt_buf = self.qt_buf.split(b'\n', 1)
            resp = resp.decode()
            if resp.startswith('IRQ'):
                continue
            if not resp.startswith('OK'):
                raise RuntimeError('qtest %r -> %r' % (line, resp))
            return resp[3:]

    def cfg_addr(self, dev, reg):
        return 0x80000000 | (dev << 11) | reg

    def cfg_write32(self, dev, reg, val):
        self.qtest('outl 0xcf8 0x%x' % self.cfg_addr(dev, reg))
        self.qtest('outl 0xcfc 0x%x' % val)

    def cfg_read32(self, dev, reg):
        self.qtest('outl 0xcf8 0x%x' % self.cfg_addr(dev, reg))
        return int(self.qtest('inl 0xcfc'), 16)

    # QMP
    def _qmp_read(self):
        while True:
            line = self.qmp_file.readline()
            if not line:
                raise RuntimeError('QMP connection closed')
            msg = json.loads(line)
            if 'event' in msg:
                self.events.append(msg)  # for who waits for one
                continue
            return msg

    def cmd(self, name, **args):
        req = {'execute': name}
        if args:
            req['arguments'] = args
        self.qmp_file.write((json.dumps(req) + '\n').encode())
        self.qmp_file.flush()
        return self._qmp_read()

    def stats(self):
        r = self.cmd('qom-get', path='/machine/peripheral/vgpu',
                     property='x-display-dmabuf-stats')
        if 'return' not in r:
            return {}
        return dict(kv.split('=', 1) for kv in r['return'].split())

    def screendump(self, name, fmt='ppm'):
        path = os.path.join(self.outdir, '%s.%s' % (name, fmt))
        r = self.cmd('screendump', filename=path, format=fmt)
        if 'error' in r:
            return None, r['error'].get('desc', str(r))
        return (read_ppm(path) if fmt == 'ppm' else path), None

    def quit(self):
        """QMP quit, then wait up to 20 s; kill it if it is still there.
        Returns True only if QEMU exited by itself with status 0 (not
        killed, not crashed, not already gone with an error)."""
        if self.qt is None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            return False
        try:
            self.cmd('quit')
        except (RuntimeError, OSError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.killed = True
            return False
        return self.proc.returncode == 0


def read_ppm(path):
    with open(path, 'rb') as f:
        data = f.read()
    parts = data.split(maxsplit=4)
    assert parts[0] == b'P6', 'not a P6 PPM'
    w, h = int(parts[1]), int(parts[2])
    pix = parts[4][:w * h * 3]
    return Image(w, h, pix)


class Image:
    def __init__(self, w, h, rgb):
        self.w, self.h, self.rgb = w, h, rgb

    def px(self, x, y):
        o = (y * self.w + x) * 3
        return tuple(self.rgb[o:o + 3])


def decode_frame(img):
    """Frame number encoded in row 0 (docs/vgpusim.md), or None if torn."""
    if img.w < 64:
        return None
    v = c = 0
    for x in range(32):
        v = (v << 1) | (img.px(x, 2)[1] > 128)
        c = (c << 1) | (img.px(32 + x, 2)[1] > 128)
    return v if v ^ c == 0xffffffff else None


BARS = [(255, 255, 255), (255, 255, 0), (0, 255, 255), (0, 255, 0),
        (255, 0, 255), (255, 0, 0), (0, 0, 255), (0, 0, 0)]


def bars_ok(img, skip=()):
    """Each of the 8 colour bars at its place (skipping points in @skip)."""
    bad = []
    y = img.h // 2
    for i, want in enumerate(BARS):
        x = img.w * i // 8 + img.w // 16
        if (x, y) in skip:
            continue
        got = img.px(x, y)
        if any(abs(a - b) > 8 for a, b in zip(got, want)):
            bad.append('bar %d at %d,%d: %s != %s' % (i, x, y, got, want))
    return bad


def wait_for(pred, timeout=5.0, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return pred()


def shot_until(q, name, pred, timeout=5.0):
    """Screendumps until pred(img) holds (the engine polls on its own)."""
    deadline = time.time() + timeout
    img = err = None
    while time.time() < deadline:
        img, err = q.screendump(name)
        if img and pred(img):
            return img, None
        time.sleep(0.1)
    return img, err
