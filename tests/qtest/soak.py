#!/usr/bin/env python3
# soak.py: a long run of QEMU with `-device vfio-pci,display=on` on the
# simulated vGPU (docs/vgpusim.md) while faults and changes are injected at
# random, run inside the rig VM like display-test.py. vgpusim flips at
# 120 Hz until FLIPS flips were made (and every kind of injection was made
# at least once); QEMU shows it on `-display none -vnc`. Meanwhile:
#   - the main thread injects one random fault or change every ~0.3 s
#     (seeded; SOAK_SEED=N repeats a run) and samples /proc/PID every 1 s;
#   - a thread keeps a VNC client (rfbview.watch) connected;
#   - a thread takes a screendump every 1 s.
# What must hold: QEMU keeps running; vgpusim's live_dmabufs equals the
# engine's fds_open at every sample; QEMU's fd count and RSS stay flat;
# the last good frame is on screen at the end; dmesg stays clean.
#
# Usage: soak.py QEMU UUID OUTDIR FLIPS [QEMU-ARGS...]
# Prints TAP and, last, a summary line; exit 0 when all pass.
import os
import random
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'gui'))
import gui_images  # noqa: E402
import rfbview  # noqa: E402
from vfio_display import (Qemu, Tap, ctl as ctl_of,  # noqa: E402
                          decode_frame, known_state, kv, note, shot_until,
                          wait_for)

QEMU, UUID, OUTDIR, FLIPS = sys.argv[1], sys.argv[2], sys.argv[3], \
    int(sys.argv[4])
EXTRA = sys.argv[5:]
SYSFS = '/sys/bus/mdev/devices/%s' % UUID
tap = Tap()
VNC_PORT = 5900
FLIP_HZ = 120
INJECT_EVERY = 0.3
SAMPLE_EVERY = 1.0

MODES = ('640x480', '800x600', '1024x768')
FORMATS = ('XRGB8888', 'ARGB8888', 'XBGR8888', 'RGB565')
ERRORS = ('eagain', 'enomem', 'einval', 'get_eagain', 'get_enomem',
          'get_einval')
PLANES = ('stride_short', 'size_short', 'zero_width', 'zero_height',
          'huge_width', 'bad_fourcc', 'overflow', 'bad_hotspot')

# Flatness bounds. fds: the engine keeps at most VFIO_DMABUF_CACHE_KEEP (6)
# primary dma-bufs plus the cursor's; the first sample is taken once the 3
# flipping buffers are open, so 6 + 1 - 3 = 4 more fds at the end are
# legitimate; a leak of one fd per fault or per flip goes far past that.
FD_SLACK = 4
# RSS: the largest mode is 1024x768x4 = 3 MiB per surface. The CPU shadow,
# the VNC server's copy, the client's framebuffer, screendump surfaces and
# the allocator's arenas can each grow by a surface or two when the mode
# goes from 640x480 to 1024x768: about 20 MiB legitimately. 64 MiB is
# three times that, and is crossed by a leak of one 1024x768 buffer per
# ~20 faults, or of 7 KiB per flip over 10000 flips.
RSS_SLACK_MIB = 64




def ctl(name, value=None):
    return ctl_of(UUID, name, value)


def dev_stats():
    return kv(ctl('stats'))


def live():
    return int(dev_stats()['live_dmabufs'])


# ---------------------------------------------------------------- injections

def deck(rng):
    """One round of every injection, shuffled: (kind, writes, undo). The
    undo writes run before the next injection (a tiled modifier, the EDID
    link down); every injection starts from 'fault clear', so at most one
    fault is armed at a time."""
    acts = []
    for e in ERRORS:
        n = rng.randint(1, 4)
        acts.append(('fault ' + e, [('fault', '%s %d' % (e, n))], []))
    for k in PLANES:
        acts.append(('fault plane ' + k, [('fault', 'plane ' + k)], []))
    acts.append(('fault reuse_id + mode', [('fault', 'reuse_id'),
                                           ('mode', None)], []))
    acts.append(('fault reset', [('fault', 'reset')], []))
    for m in MODES:
        acts.append(('mode ' + m, [('mode', m)], []))
    for f in FORMATS:
        acts.append(('format ' + f, [('format', f)], []))
    acts.append(('modifier x-tiled', [('modifier', 'x-tiled')],
                 [('modifier', 'linear')]))
    for c in ('on', 'off', 'auto'):
        acts.append(('cursor ' + c, [('cursor', c)], []))
    acts.append(('edid_link down', [('edid_link', 'down')],
                 [('edid_link', 'up')]))
    rng.shuffle(acts)
    return acts


def other_mode(rng):
    """A mode other than the live one: a new geometry for reuse_id."""
    cur = kv(ctl('state')).get('mode', '')
    return rng.choice([m for m in MODES if m != cur])


class Injector:
    def __init__(self, rng):
        self.rng = rng
        self.round = []
        self.undo = []
        self.count = 0
        self.kinds = set()
        self.all_kinds = {a[0] for a in deck(random.Random(0))}
        self.refused = []           # sysfs writes the device refused

    def write(self, name, value):
        try:
            ctl(name, value)
        except OSError as e:
            self.refused.append('%s <- %r: %s' % (name, value, e))

    def settle(self):
        """Undo what the last injection left (tiled modifier, link down)."""
        for name, value in self.undo:
            self.write(name, value)
        self.undo = []

    def inject(self):
        if not self.round:
            self.round = deck(self.rng)
        label, writes, undo = self.round.pop()
        self.settle()
        self.write('fault', 'clear')
        for name, value in writes:
            self.write(name, value if value is not None
                       else other_mode(self.rng))
        self.undo = undo
        self.count += 1
        self.kinds.add(label)
        return label

    def all_done(self):
        return self.kinds >= self.all_kinds


# ---------------------------------------------------------------- threads

class VncLoop(threading.Thread):
    """rfbview.watch back to back: a client stays connected; when it errors
    it connects again, and that is counted."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.seen = threading.Event()   # a first complete frame arrived
        self.reconnects = 0
        self.frames = 0
        self.errors = []

    def run(self):
        while not self.stop.is_set():
            try:
                res, _ = rfbview.watch('127.0.0.1', VNC_PORT, 5.0,
                                       lambda s, f: self.seen.set())
                self.frames += res['frames']
            except Exception as e:  # noqa: BLE001 any error: reconnect
                self.reconnects += 1
                if len(self.errors) < 5:
                    self.errors.append(repr(e))
                self.stop.wait(0.5)


class Shooter(threading.Thread):
    """A screendump every second. Errors are counted: a refused plane may
    leave the placeholder, but QEMU must answer (QMP closed = dead)."""

    def __init__(self, q, lock):
        super().__init__(daemon=True)
        self.q, self.lock = q, lock
        self.stop = threading.Event()
        self.shots = self.errors = self.decoded = 0
        self.died = None

    def run(self):
        while not self.stop.wait(1.0):
            try:
                with self.lock:
                    img, err = self.q.screendump('soak-%d' % (self.shots % 2))
            except (OSError, RuntimeError) as e:
                self.died = str(e)
                return
            self.shots += 1
            if err:
                self.errors += 1
            elif decode_frame(img) is not None:
                self.decoded += 1


# ---------------------------------------------------------------- sampling

def proc_sample(pid):
    fds = len(os.listdir('/proc/%d/fd' % pid))
    rss = 0
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                rss = int(line.split()[1]) * 1024
    return fds, rss


def fds_match(q, lock, base):
    """live_dmabufs - base against the engine's fds_open. Both move while
    the device flips: read them twice around each other, accept any pair
    that agrees. Returns (ok, what was read)."""
    with lock:
        l1 = live() - base
        s1 = int(q.stats().get('fds_open', -1))
        l2 = live() - base
        s2 = int(q.stats().get('fds_open', -1))
    ok = any(a == b for a in (l1, l2) for b in (s1, s2))
    return ok, 'live-base %d/%d, fds_open %d/%d' % (l1, l2, s1, s2)


def dmesg_lines():
    try:
        p = subprocess.run(['dmesg'], capture_output=True, text=True,
                           timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout.splitlines() if p.returncode == 0 else None


# ---------------------------------------------------------------- the soak

def prepare_device():
    """A known start (also the power-on state, which 'fault reset' brings
    back): 640x480 XRGB8888 linear, 3 buffers, paused, cursor off."""
    known_state(UUID, FLIP_HZ)


def restore_device():
    """What the other cases on this instance expect (docs/vgpusim.md
    power-on state, but 640x480)."""
    for name, value in (('fault', 'clear'), ('edid_link', 'up'),
                        ('enable', 1), ('cursor', 'off'),
                        ('modifier', 'linear'), ('format', 'XRGB8888'),
                        ('mode', '640x480'), ('flip_hz', 60), ('pause', 1)):
        try:
            ctl(name, value)
        except OSError as e:
            note('restoring %s: %s' % (name, e))


def soak():
    seed = int(os.environ.get('SOAK_SEED', time.time_ns() % 1000000007))
    note('seed %d (SOAK_SEED=%d repeats this run)' % (seed, seed))
    rng = random.Random(seed)
    prepare_device()
    live0 = live()
    dmesg0 = dmesg_lines()

    q = Qemu(QEMU, ['-display', 'none', '-vnc', '127.0.0.1:0', '-device',
                    'vfio-pci,sysfsdev=%s,display=on,id=vgpu,addr=05.0'
                    % SYSFS] + EXTRA, OUTDIR)
    if not tap(q.alive(), 'QEMU starts with display=on, -display none -vnc',
               q.output()):
        q.quit()
        return None
    ctl('step', 1)
    want = int(kv(ctl('state'))['frame'])
    img, err = shot_until(q, 'soak-start', lambda i: decode_frame(i) == want,
                          timeout=10)
    tap(img is not None and decode_frame(img) == want,
        'first frame %d shown' % want, err or (img and decode_frame(img)))

    lock = threading.Lock()        # QMP is one conversation: one at a time
    vnc = VncLoop()
    vnc.start()
    flips0 = int(dev_stats()['flips_made'])
    ctl('pause', 0)
    tap(vnc.seen.wait(20), 'a VNC client is connected and sees frames',
        '\n'.join(vnc.errors))
    # the first sample once the 3 flipping buffers are open (FD_SLACK)
    with lock:
        wait_for(lambda: int(q.stats().get('fds_open', 0)) >= 3, timeout=5)
    shooter = Shooter(q, lock)
    shooter.start()

    inj = Injector(rng)
    fds, rss = [], []
    samples = mismatches = 0
    mism_diag = []
    died = None
    flips = 0
    # 120 Hz nominal; TCG may drop ticks: give it 5 times as long + a minute
    deadline = time.monotonic() + FLIPS / FLIP_HZ * 5 + 60
    next_sample = time.monotonic()
    while time.monotonic() < deadline:
        if not q.alive() or shooter.died:
            died = '%s %s' % (q.status(), shooter.died or '')
            break
        now = time.monotonic()
        if now >= next_sample:
            next_sample = now + SAMPLE_EVERY
            try:
                f, r = proc_sample(q.proc.pid)
                ok, what = fds_match(q, lock, live0)
            except (OSError, RuntimeError) as e:
                died = '%s: %s' % (q.status(), e)
                break
            fds.append(f)
            rss.append(r)
            samples += 1
            if not ok:
                mismatches += 1
                if len(mism_diag) < 10:
                    mism_diag.append('sample %d: %s' % (samples, what))
        flips = int(dev_stats()['flips_made']) - flips0
        if flips >= FLIPS and inj.all_done():
            break
        inj.inject()
        time.sleep(max(0.0, INJECT_EVERY - (time.monotonic() - now)))
    flips = int(dev_stats()['flips_made']) - flips0

    vnc.stop.set()
    shooter.stop.set()
    vnc.join(15)
    shooter.join(10)
    tap(died is None and q.alive(), 'QEMU alive the whole run', died or
        q.output()[-2000:])
    tap(flips >= FLIPS, '%d flips made (wanted %d)' % (flips, FLIPS))
    tap(inj.all_done(), 'every kind of injection made (%d of %d)'
        % (len(inj.kinds), len(inj.all_kinds)),
        'missing: %s' % sorted(inj.all_kinds - inj.kinds))
    tap(not inj.refused, 'every control write accepted by the device',
        '\n'.join(inj.refused[:10]))
    tap(samples >= 2 and mismatches == 0,
        'live_dmabufs - %d == fds_open at every sample (%d samples)'
        % (live0, samples), '\n'.join(mism_diag))
    note('screendumps: %d, %d errors, %d with a frame; VNC: %d frames, '
         '%d reconnects %s' % (shooter.shots, shooter.errors,
                               shooter.decoded, vnc.frames, vnc.reconnects,
                               ' '.join(vnc.errors)))

    if not q.alive():
        q.quit()
        restore_device()
        return summary(flips, inj.count, fds, rss, vnc.reconnects)

    # the end: quiet device, no fault, then exact accounting
    inj.settle()
    ctl('fault', 'clear')
    ctl('pause', 1)
    time.sleep(2.0)
    with lock:
        st = q.stats()
    lv = live() - live0
    tap(lv == int(st.get('fds_open', -1)),
        'paused, no fault: live_dmabufs - %d (%d) == fds_open exactly'
        % (live0, lv), str(st))
    # the last good frame on screen, pixel for pixel (the cursor, which
    # screendump composites, off first)
    ctl('cursor', 'off')
    state = kv(ctl('state'))
    want = int(state['frame'])
    w, h = (int(v) for v in state['mode'].split('x'))
    with lock:
        img, n, why = gui_images.screendump_until(
            q, 'soak-final', gui_images.expected_for(state['format'], w, h,
                                                     want))
    tap(n == 0, 'the last good frame %d (%s %s) on screen at the end: '
        'screendump pixel-exact' % (want, state['mode'], state['format']),
        '%s; decoded %r' % (why, img and decode_frame(img)))
    f, r = proc_sample(q.proc.pid)
    fds.append(f)
    rss.append(r)
    tap(fds[-1] - fds[0] <= FD_SLACK, 'fd count flat: first %d, last %d '
        '(<= +%d), max %d' % (fds[0], fds[-1], FD_SLACK, max(fds)))
    mib = 1 << 20
    tap(max(rss) <= rss[0] + RSS_SLACK_MIB * mib,
        'RSS flat: max %.1f MiB <= first %.1f + %d MiB'
        % (max(rss) / mib, rss[0] / mib, RSS_SLACK_MIB))
    warn = q.output().count('device reported a bad')
    note('QEMU warnings about bad planes: %d' % warn)

    tap(q.quit(), 'QEMU quits cleanly: exit 0 by itself after quit',
        '%s\n%s' % (q.status(), q.output()[-1500:]))
    restore_device()
    dmesg1 = dmesg_lines()
    if dmesg0 is None or dmesg1 is None:
        tap(True, 'dmesg clean # SKIP dmesg not readable')
    else:
        new = dmesg1[len(dmesg0):]
        bad = [ln for ln in new if any(w in ln for w in (
            'BUG', 'WARNING', 'Oops', 'refcount_t', 'use-after-free',
            'KASAN', 'general protection'))]
        tap(not bad, 'dmesg clean (%d new lines)' % len(new),
            '\n'.join(bad[:20]))
    return summary(flips, inj.count, fds, rss, vnc.reconnects)


def summary(flips, faults, fds, rss, reconnects):
    mib = 1 << 20
    if not fds:
        fds, rss = [0], [0]
    return ('soak: %d flips, %d faults injected, fds first/last/max %d/%d/%d, '
            'RSS MiB first/last/max %d/%d/%d, VNC reconnects %d'
            % (flips, faults, fds[0], fds[-1], max(fds),
               round(rss[0] / mib), round(rss[-1] / mib),
               round(max(rss) / mib), reconnects))


def main():
    os.makedirs(OUTDIR, exist_ok=True)
    line = soak()
    status = tap.done('soak tests')
    print('# ' + (line or 'soak: QEMU did not start'))
    return status


if __name__ == '__main__':
    sys.exit(main())
