#!/usr/bin/env python3
# libvirt-test.py UUID OUTDIR [CASE...]: `make check-libvirt`'s guest side
# (tests/libvirt/check-libvirt.sh runs it in the rig VM, inside a clean
# Debian trixie root with libvirt and our package installed). It starts
# Debian's libvirtd as root (the test-only qemu.conf is written by
# check-libvirt.sh into that root's copy) and, per case, a transient domain
# whose <emulator> is the package's binary, with the simulated vGPU as
#   <hostdev mode='subsystem' type='mdev' model='vfio-pci' display='on'>
# and the case's graphics. Each case checks what a libvirt user sees:
#   - `virsh screenshot`: the device's frame, pixel for pixel (with the
#     cursor plane where the device put it);
#   - the client `virsh domdisplay` names: gvnccapture for VNC,
#     remote-viewer on weston (its screenshot) for SPICE;
#   - a flip: the next frame in the next screenshot;
#   - our counters through `virsh qemu-monitor-command` (qom-get
#     x-display-dmabuf-stats);
#   - after `virsh destroy`: the device's live dma-bufs back to what they
#     were, and the mdev free (the next case's domain starts on it).
# CASE: vnc spice spice-gl vnc-egl ramfb (default: all). Prints TAP; exit 0 when
# all pass.
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from vfio_display import Tap, ctl as ctl_of, known_state, kv, note  # noqa: E402
from gui_images import (compare, expected_frame, find_frame,  # noqa: E402
                        read_image, save_ppm, with_cursor)

UUID, OUTDIR = sys.argv[1:3]
ONLY = set(sys.argv[3:])
EMULATOR = '/usr/bin/qemu-system-x86_64-vfio-dmabuf'
URI = 'qemu:///system'
MODE = (640, 480)
CURSOR_AT = (200, 150)
tap = Tap()


def ctl(name, value=None):
    return ctl_of(UUID, name, value)


def frame_now():
    return int(kv(ctl('state'))['frame'])


def live_dmabufs():
    return int(kv(ctl('stats'))['live_dmabufs'])


def run(argv, timeout=120, check=False, env=None, cwd=None):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, **(env or {})), cwd=cwd)
    if check and r.returncode != 0:
        raise RuntimeError('%s: status %d: %s' % (' '.join(argv),
                                                 r.returncode, r.stderr))
    return r


def virsh(*args, timeout=120):
    return run(['virsh', '-c', URI] + list(args), timeout=timeout)


# ---------------------------------------------------------------- libvirt

def writable(path):
    """A writable copy of @path over itself (the root is shared read-only):
    what libvirtd writes goes to the guest's /tmp."""
    copy = tempfile.mkdtemp(prefix='rw-', dir='/tmp')
    shutil.copytree(path, copy, symlinks=True, dirs_exist_ok=True)
    subprocess.run(['mount', '--bind', copy, path], check=True)


def start_daemon():
    """libvirtd as root, without systemd: --daemon would detach; run in
    the foreground instead, its log in OUTDIR. Returns the process."""
    for d in ('/etc/libvirt', '/var/lib/libvirt', '/var/cache/libvirt',
              '/var/log/libvirt'):
        if os.path.isdir(d):
            writable(d)
    os.makedirs('/run/libvirt', exist_ok=True)
    log = open(os.path.join(OUTDIR, 'libvirtd.log'), 'w')
    proc = subprocess.Popen(['libvirtd', '--verbose'], stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        if virsh('version', timeout=30).returncode == 0:
            return proc
        time.sleep(1)
    raise RuntimeError('libvirtd did not answer (status %s), see %s'
                       % (proc.poll(), log.name))


# ---------------------------------------------------------------- domains

def domain_xml(name, graphics, ramfb=False):
    return """<domain type='qemu'>
  <name>%(name)s</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>%(emu)s</emulator>
    <hostdev mode='subsystem' type='mdev' model='vfio-pci' display='on'%(ramfb)s>
      <source><address uuid='%(uuid)s'/></source>
    </hostdev>
    %(graphics)s
    <video><model type='none'/></video>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
""" % {'name': name, 'emu': EMULATOR, 'uuid': UUID, 'graphics': graphics,
       'ramfb': " ramfb='on'" if ramfb else ''}


CASES = (
    # name, graphics, ramfb, client, the path ui/ takes (x-display-gl=auto:
    # displays that read back, egl-headless and VNC, get the CPU shadow)
    ('vnc', "<graphics type='vnc' port='5901' listen='127.0.0.1'/>",
     False, 'vnc', 'cpu-shadow'),
    ('spice', "<graphics type='spice' port='5902' autoport='no' "
     "listen='127.0.0.1'/>", False, 'spice', 'cpu-shadow'),
    # local SPICE with GL (a unix socket libvirt hands to virt-viewer):
    # libvirt refuses a second GL display next to it ("multiple OpenGL
    # displays are not supported by QEMU"), so egl-headless goes with VNC
    ('spice-gl', "<graphics type='spice'><listen type='none'/>"
     "<gl enable='yes'/></graphics>", False, 'attach', 'gl-dmabuf'),
    ('vnc-egl', "<graphics type='vnc' port='5903' listen='127.0.0.1'/>\n"
     "    <graphics type='egl-headless'/>", False, 'vnc', 'cpu-shadow'),
    ('ramfb', "<graphics type='vnc' port='5904' listen='127.0.0.1'/>",
     True, 'vnc', 'cpu-shadow'),
)


def want_image(cursor=True, mode=MODE, at=CURSOR_AT):
    img = expected_frame(mode[0], mode[1], frame_now())
    return with_cursor(img, *at) if cursor else img


# the commonest laptop panel: rows of 1366 * 3 bytes are not a multiple of
# 4 (upstream's PPM writer sheared them), the cursor partly off the right
ODD_MODE, ODD_CURSOR_AT = (1366, 768), (1330, 700)


def judge(shot, want):
    """Differing pixels of @want inside @shot (found by its band) and why."""
    at = find_frame(shot, want.w, want.h)
    if at is None:
        return -1, 'frame not found in the %dx%d picture' % (shot.w, shot.h)
    return compare(shot, want, at[0], at[1])


def until(name, take, want, timeout=20):
    """Pictures from @take() until one equals @want; the last is kept in
    OUTDIR. Returns (differing pixels, why)."""
    deadline, n, why = time.time() + timeout, -1, 'no picture'
    while True:
        try:
            shot = take()
        except (subprocess.SubprocessError, RuntimeError, OSError) as e:
            shot, n, why = None, -1, str(e)
        if shot is not None:
            save_ppm(shot, os.path.join(OUTDIR, name + '.ppm'))
            n, why = judge(shot, want)
            if n == 0:
                return 0, ''
        if time.time() > deadline:
            return n, why
        time.sleep(1)


def screenshot(dom):
    path = os.path.join(OUTDIR, '%s-virsh-screenshot' % dom)
    if os.path.exists(path):
        os.unlink(path)
    r = virsh('screenshot', dom, path, '--screen', '0')
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip())
    return read_image(path)


def vnc_shot(display):
    # vnc://127.0.0.1:N -> gvnccapture 127.0.0.1:N
    hostdisp = display.split('://', 1)[1].rstrip('/')
    path = os.path.join(OUTDIR, 'gvnccapture.bmp')
    if os.path.exists(path):
        os.unlink(path)
    run(['gvnccapture', '-q', hostdisp, path], timeout=60, check=True)
    return read_image(path)


class Weston:
    """weston headless (pixman renderer) with one client on it; the
    picture is weston-screenshooter's (the second capture: the first can
    be the previous repaint, tests/gui/gui-test.py measured it)."""

    def __init__(self):
        self.rt = tempfile.mkdtemp(prefix='xdg-', dir='/tmp')
        os.chmod(self.rt, 0o700)
        self.env = {'XDG_RUNTIME_DIR': self.rt, 'WAYLAND_DISPLAY': 'lv',
                    'GDK_BACKEND': 'wayland'}
        self.log = open(os.path.join(OUTDIR, 'weston.log'), 'w')
        self.procs = [subprocess.Popen(
            ['weston', '--backend=headless', '--renderer=pixman',
             '--width=1024', '--height=768', '--socket=lv', '--debug',
             '--idle-time=0'], env=dict(os.environ, **self.env),
            stdout=self.log, stderr=subprocess.STDOUT)]
        deadline = time.time() + 30
        while not os.path.exists(os.path.join(self.rt, 'lv')):
            if time.time() > deadline or self.procs[0].poll() is not None:
                raise RuntimeError('weston did not start (weston.log)')
            time.sleep(0.2)

    def client(self, argv):
        self.procs.append(subprocess.Popen(
            argv, env=dict(os.environ, **self.env), stdout=self.log,
            stderr=subprocess.STDOUT))

    def shot(self):
        d = tempfile.mkdtemp(prefix='shot-', dir='/tmp')
        for _ in range(2):
            for f in os.listdir(d):
                os.unlink(os.path.join(d, f))
            run(['weston-screenshooter'], env=self.env, timeout=60,
                check=True, cwd=d)
        pngs = [f for f in os.listdir(d) if f.endswith('.png')]
        if not pngs:
            raise RuntimeError('weston-screenshooter wrote nothing')
        return read_image(os.path.join(d, pngs[0]))

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        self.log.close()


def stats(dom):
    """The engine's counters through libvirt (qom-get on the hostdev,
    which libvirt names hostdev0): a dict, and the raw answer."""
    cmd = json.dumps({'execute': 'qom-get', 'arguments': {
        'path': '/machine/peripheral/hostdev0',
        'property': 'x-display-dmabuf-stats'}})
    r = virsh('qemu-monitor-command', dom, cmd)
    if r.returncode != 0:
        return {}, r.stderr.strip()
    ret = json.loads(r.stdout).get('return', '')
    return dict(w.split('=', 1) for w in ret.split() if '=' in w), ret


def run_case(name, graphics, ramfb, client, path):
    dom = 'vgpu-' + name
    known_state(UUID, mode='%dx%d' % MODE)
    # a viewer's window size must not change the mode under the test
    ctl('edid_follow', 0)
    ctl('cursor_hot', '0 0')
    ctl('cursor_pos', '%d %d' % CURSOR_AT)
    ctl('cursor', 'on')
    live0 = live_dmabufs()
    xml = os.path.join(OUTDIR, dom + '.xml')
    with open(xml, 'w') as f:
        f.write(domain_xml(dom, graphics, ramfb))
    r = virsh('create', xml, timeout=240)
    if not tap(r.returncode == 0, '%s: virsh create (emulator %s)'
               % (name, EMULATOR), r.stderr):
        log = '/var/log/libvirt/qemu/%s.log' % dom
        if os.path.exists(log):
            with open(log) as f:
                note(f.read()[-3000:])
        return
    weston = None
    try:
        n, why = until(dom + '-screenshot', lambda: screenshot(dom),
                       want_image(), timeout=60)
        tap(n == 0, '%s: virsh screenshot: frame %d with the cursor, '
            'pixel-exact' % (name, frame_now()), why)
        disp = virsh('domdisplay', dom).stdout.strip()
        note('%s: domdisplay %s' % (name, disp or '(none)'))
        if client == 'vnc':
            take = lambda: vnc_shot(disp)  # noqa: E731
            what = 'gvnccapture of %s' % disp
        elif client == 'spice':
            weston = Weston()
            weston.client(['remote-viewer', '--auto-resize=never', disp])
            take = weston.shot
            what = 'remote-viewer (%s) on weston' % disp
        else:
            # virt-viewer gets the socket from libvirt (virDomainOpenGraphics)
            weston = Weston()
            weston.client(['virt-viewer', '-c', URI, '--attach',
                           '--auto-resize=never', dom])
            take = weston.shot
            what = 'virt-viewer --attach on weston'
        if take is not None:
            # the cursor is the client's own (VNC's cursor pseudo-encoding,
            # SPICE's cursor channel): not in the frame it shows
            n, why = until(dom + '-client', take, want_image(cursor=False),
                           timeout=90)
            tap(n == 0, '%s: %s: frame %d pixel-exact (the cursor on the '
                'client\'s own channel)' % (name, what, frame_now()), why)
        ctl('step', 1)
        n, why = until(dom + '-flip', lambda: screenshot(dom), want_image(),
                       timeout=30)
        tap(n == 0, '%s: after a flip, virsh screenshot shows frame %d'
            % (name, frame_now()), why)
        ctl('mode', '%dx%d' % ODD_MODE)
        ctl('cursor_pos', '%d %d' % ODD_CURSOR_AT)
        ctl('step', 1)
        n, why = until(dom + '-1366x768', lambda: screenshot(dom),
                       want_image(mode=ODD_MODE, at=ODD_CURSOR_AT),
                       timeout=30)
        tap(n == 0, '%s: a new mode 1366x768, the cursor partly off the '
            'right edge: virsh screenshot of frame %d pixel-exact'
            % (name, frame_now()), why)
        st, raw = stats(dom)
        tap(st.get('path', '').startswith(path) and
            int(st.get('frames_shown', 0)) >= 2 and
            int(st.get('flips_seen', 0)) >= 1,
            '%s: virsh qemu-monitor-command qom-get x-display-dmabuf-stats: '
            'path %s, frames_shown %s, flips_seen %s' % (
                name, st.get('path'), st.get('frames_shown'),
                st.get('flips_seen')), raw)
    finally:
        if weston is not None:
            weston.stop()
        r = virsh('destroy', dom, timeout=120)
        tap(r.returncode == 0, '%s: virsh destroy' % name, r.stderr)
        # QEMU's command line as libvirt wrote it, and its messages
        log = '/var/log/libvirt/qemu/%s.log' % dom
        if os.path.exists(log):
            shutil.copy(log, os.path.join(OUTDIR, dom + '.qemu.log'))
    deadline = time.time() + 20
    while live_dmabufs() != live0 and time.time() < deadline:
        time.sleep(0.5)
    tap(live_dmabufs() == live0, '%s: after destroy the device\'s live '
        'dma-bufs are back to %d (%d)' % (name, live0, live_dmabufs()))
    ctl('cursor', 'off')


def main():
    os.makedirs(OUTDIR, exist_ok=True)
    daemon = start_daemon()
    ver = [line for line in virsh('version').stdout.splitlines()
           if line.startswith('Using library')]
    tap(bool(ver), 'libvirtd answers (%s)' % ' '.join(ver))
    try:
        for case in CASES:
            if not ONLY or case[0] in ONLY:
                run_case(*case)
    finally:
        ctl('edid_follow', 1)
        daemon.terminate()
        try:
            daemon.wait(timeout=20)
        except subprocess.TimeoutExpired:
            daemon.kill()
    return tap.done('libvirt')


if __name__ == '__main__':
    sys.exit(main())
