#!/usr/bin/env python3
# bench.py QEMU UPSTREAM_QEMU UUID OUTDIR [SECONDS]: the benchmark's guest
# side (tests/bench/run-bench.sh runs it in the rig VM, docs/benchmarks.md).
#
# For every scenario (flip rate and mode, front-buffer rendering, cursor
# only, idle) and every display configuration it measures, on the same
# vgpusim device:
#   - flips seen / made and plane queries per second (vgpusim counts them),
#   - frames delivered to a VNC viewer in this VM (tests/qtest/rfbview.py
#     decodes the frame number from the pixels it receives and compares the
#     whole picture with that frame after each update), flip->viewer
#     latency p50/p99 (vgpusim's frame_times vs the viewer's
#     CLOCK_MONOTONIC),
#   - QEMU's CPU (utime+stime) minus that of the same QEMU and device with
#     display=off; idle rows also per 5 s window (the idle target's noise),
#   - bytes per second sent to the viewer and GET_GFX_DMABUF calls.
# Configurations: ours polling (x-display-event=off: the adaptive poll, as
# on every mainline driver, which has no display event; the targets are
# measured on it), ours pinned to upstream's policy (30 ms fixed polling;
# labelled so), ours with vgpusim's display event (v6 of GVT-g's proposal,
# never merged: an extra row), ours with egl-headless + VNC (its default
# CPU mapping, and x-display-gl=on: GL import and read-back; both polling),
# and unmodified upstream QEMU where it survives without a GPU (spice
# gl=on on vgem, no client). Prints one JSON line per row ("BENCH-ROW:
# {...}"). Standard library only.
import json
import os
import sys
import threading
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, '..', 'qtest'))
sys.path.insert(0, here)
from vfio_display import Qemu, ctl, known_state, kv, note  # noqa: E402
import rfbview  # noqa: E402

VNC_PORT = 5900
# an idle desktop is measured longer: its CPU is a few clock ticks (20 s:
# one tick is 0.05 %)
IDLE_SECONDS = 20
# the idle-CPU target (ours polling against upstream's policy, both above
# display=off) compares a few tenths of a per cent: those two rows and the
# display=off baseline (twice) run 60 s each, in 5 s windows, and
# report.py counts the target met only when the difference holds with
# twice the windows' standard error on each side (no escape margin)
IDLE_TARGET_SECONDS = 60
BASELINE_SECONDS = IDLE_TARGET_SECONDS
CPU_WINDOW = 5.0
HZ_TICK = os.sysconf('SC_CLK_TCK')

# The configurations' labels (report.py reads the same strings)
OURS = 'ours polling (x-display-event=off)'
PINNED = 'ours pinned to upstream policy (30 ms)'
EVENT = 'ours display event (vgpusim, v6 ABI)'
POLL = ',x-display-event=off'

# vgpusim profiles as extra rows, where they can run (issue 16). Each entry
# is a dict: 'label' (the rows' config), 'profile' (vgpusim's sysfs
# `profile` value, set before QEMU starts and set back to 'default'
# after), 'display' (QEMU's display arguments), 'device' (extra -device
# properties, e.g. POLL), 'controls' (more vgpusim settings, each
# (name, value, value to restore), e.g. ('modifier', 'x-tiled', 'linear'))
# and 'scenarios' (names of the scenarios in main()); see
# docs/benchmarks.md, "The profile rows". The gvt profile has no row: its
# proxy buffers can be neither mapped nor imported by the rig's llvmpipe
# (a GPU render node imports them); its report row says so.
VNC = ['-display', 'none', '-vnc', '127.0.0.1:0']
PROFILES = [
    # as NVIDIA vGPU and mdpy: a region plane per buffer, mapped by QEMU
    {'label': 'ours region profile (polling)', 'profile': 'region',
     'display': VNC, 'device': POLL,
     'scenarios': ('1024x768@60Hz', '1024x768@144Hz', 'idle 1024x768')},
]
GVT_NOT_RUN = ('gvt buffers are GEM proxies: no CPU map, and llvmpipe '
               'cannot import them (a GPU render node can)')


def cpu_ticks(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def cpu_ns(pid):
    """CPU time of all of @pid's live threads in ns (the scheduler's own
    count, /proc/PID/task/*/schedstat), or None when the kernel has no
    schedstat. Finer than the ticks of /proc/PID/stat for 5 s windows."""
    total = 0
    try:
        for t in os.listdir('/proc/%d/task' % pid):
            try:
                with open('/proc/%d/task/%s/schedstat' % (pid, t)) as f:
                    total += int(f.read().split()[0])
            except (OSError, IndexError, ValueError):
                pass
    except OSError:
        return None
    return total or None


def cpu_windows(pid, seconds):
    """Sleeps @seconds; returns the CPU %% of @pid in each CPU_WINDOW
    (schedstat, else ticks)."""
    out = []
    n = max(1, int(round(seconds / CPU_WINDOW)))
    for _ in range(n):
        a, ta, t0 = cpu_ns(pid), cpu_ticks(pid), time.monotonic()
        time.sleep(seconds / n)
        b, tb, t1 = cpu_ns(pid), cpu_ticks(pid), time.monotonic()
        if a is not None and b is not None:
            out.append(round(100.0 * (b - a) / 1e9 / (t1 - t0), 3))
        else:
            out.append(round(100.0 * (tb - ta) / HZ_TICK / (t1 - t0), 3))
    return out


def device_args(uuid, extra=''):
    return ['-device', 'vfio-pci,sysfsdev=/sys/bus/mdev/devices/%s,'
            'display=on,id=vgpu,addr=05.0%s' % (uuid, extra)]


class Scenario:
    def __init__(self, name, mode, hz, kind='flip', seconds=None):
        self.name, self.mode, self.hz, self.kind = name, mode, hz, kind
        self.seconds = seconds  # None: the run's window

    def setup(self, uuid):
        ctl(uuid, 'pause', 1)
        ctl(uuid, 'mode', self.mode)
        ctl(uuid, 'front_buffer', int(self.kind == 'front'))
        ctl(uuid, 'flip_hz', max(1, self.hz))
        ctl(uuid, 'cursor', 'auto' if self.kind in ('flip', 'front') else 'on')
        if self.kind in ('flip', 'front'):
            ctl(uuid, 'pause', 0)

    def mover(self, uuid, stop):
        """cursor-only: move the cursor plane at 30 Hz, primary paused."""
        if self.kind != 'cursor':
            return None
        w, h = (int(v) for v in self.mode.split('x'))

        def run():
            i = 0
            while not stop.is_set():
                ctl(uuid, 'cursor_pos', '%d %d' % (w // 4 + (i * 7) % (w // 2),
                                                   h // 2))
                i += 1
                time.sleep(1 / 30)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t


def measure(q, uuid, sc, seconds, viewer, idle_target=False):
    """One row: the scenario on a running QEMU, with or without a viewer.
    @idle_target: the idle row the idle-CPU target reads (longer, and in
    windows)."""
    seconds = sc.seconds or seconds
    if idle_target and sc.kind == 'idle' and not viewer:
        seconds = IDLE_TARGET_SECONDS
    sc.setup(uuid)
    time.sleep(1.0)  # settle: new mode imported, policy adapted
    stop = threading.Event()
    mover = sc.mover(uuid, stop)
    eng0 = q.stats()
    ctl(uuid, 'reset_stats', 1)
    c0, t0 = cpu_ticks(q.proc.pid), time.monotonic()
    t0_ns = time.monotonic_ns()
    view = windows = None
    end = {}

    def at_end():
        """The window's end: QEMU's CPU and both sides' counters (the
        viewer judges the pictures it set aside after this)."""
        end['c'], end['t'] = cpu_ticks(q.proc.pid), time.monotonic()
        end['dev'], end['eng'] = kv(ctl(uuid, 'stats')), q.stats()

    if viewer:
        path = '/sys/bus/mdev/devices/%s/vgpusim/frame_times' % uuid
        try:
            view, arrivals = rfbview.watch('127.0.0.1', VNC_PORT, seconds,
                                           at_end=at_end)
            times = rfbview.frame_times(path)
            lat = sorted((t - times[f]) / 1e6 for t, f in arrivals
                         if f in times and t >= times[f])
            view['latency_p50_ms'] = lat[len(lat) // 2] if lat else None
            view['latency_p99_ms'] = (lat[min(len(lat) - 1,
                                              len(lat) * 99 // 100)]
                                      if lat else None)
        except (OSError, RuntimeError) as e:
            view = {'error': str(e)}
    elif sc.kind == 'idle':
        windows = cpu_windows(q.proc.pid, seconds)
    else:
        time.sleep(seconds)
    if 'c' not in end:
        at_end()
    c1, t1, dev, eng1 = end['c'], end['t'], end['dev'], end['eng']
    stop.set()
    if mover:
        mover.join()
    el = t1 - t0
    made = int(dev.get('flips_made', 0))
    drawn = int(dev.get('frames_drawn', 0))
    row = {
        'scenario': sc.name, 'seconds': round(el, 2),
        'flips_made': made, 'frames_drawn': drawn,
        'flips_seen': int(dev.get('flips_seen', 0)),
        'queries_per_s': round(int(dev.get('queries', 0)) / el, 1),
        'query_latency_p50_us': int(dev.get('latency_p50_us', 0)),
        'query_latency_p99_us': int(dev.get('latency_p99_us', 0)),
        'cpu_pct': round(100.0 * (c1 - c0) / HZ_TICK / el, 1),
        'gets': int(eng1.get('gets', 0)) - int(eng0.get('gets', 0)),
        'exports': int(dev.get('exports', 0)),
        'display_events': int(dev.get('display_events', 0)),
        'display_armed': int(dev.get('display_armed', 0)),
        # the VM's timing: vblank timers > 1 ms late, flips held to the
        # next vblank (their tick ran > 1/4 period late), the latest tick
        'vblank_timer_late': int(dev.get('vblank_timer_late', 0)),
        'flips_deferred': int(dev.get('flips_deferred', 0)),
        'flip_late_max_us': int(dev.get('flip_late_max_us', 0)),
    }
    if windows is not None:
        row['cpu_windows_pct'] = windows
    if sc.kind == 'flip':
        row.update(short_frames(uuid, t0_ns, t0_ns + int(el * 1e9)))
    if view is not None:
        row['viewer'] = view
    return row


# the fastest poll (VFIO_DMABUF_REFRESH_MIN_MS): a frame on screen for
# less than this can fall between two polls
MIN_POLL_NS = 4000000


def short_frames(uuid, t0_ns, t1_ns):
    """How long each frame flipped in [t0_ns, t1_ns] stayed on screen, from
    vgpusim's frame_times (CLOCK_MONOTONIC, the flip): the frames shown
    for less than the fastest poll, which no poll is sure to see (a
    diagnostic beside flips seen, not a target)."""
    try:
        gaps = rfbview.frame_gaps('/sys/bus/mdev/devices/%s/vgpusim/'
                                  'frame_times' % uuid, t0_ns, t1_ns)
    except OSError:
        return {}
    return {'frames_timed': len(gaps),
            'frames_under_min_poll': sum(g < MIN_POLL_NS for g in gaps)}


def kms_stats(q):
    r = q.cmd('qom-get', path='/machine', property='x-kms-stats')
    return dict(kv_.split('=', 1) for kv_ in r.get('return', '').split())


def writeback_watch(path, stop, seen):
    """Reads the frame number (row 2's band) of each picture QEMU writes
    back (x-writeback), appending (CLOCK_MONOTONIC ns, frame) when it
    changes: which frames reached the output, and when."""
    last = None
    while not stop.is_set():
        try:
            with open(path, 'rb') as f:
                head = f.read(32)
                parts = head.split(b'\n', 3)
                w = int(parts[1].split()[0])
                f.seek(len(b'\n'.join(parts[:3])) + 1 + 2 * w * 3)
                band = f.read(64 * 3)
            v = c = 0
            for i in range(32):
                v = (v << 1) | (band[i * 3 + 1] > 128)
                c = (c << 1) | (band[(32 + i) * 3 + 1] > 128)
            frame = v if v ^ c == 0xffffffff else -1
        except (OSError, ValueError, IndexError):
            frame = None
        if frame is not None and frame != last:
            seen.append((time.monotonic_ns(), frame))
            last = frame
        time.sleep(0.002)


def measure_kms(q, uuid, sc, seconds, wb):
    """One -display kms row: the device's flips, what kms committed and the
    page-flip events; with @wb (the writeback file) also which frames
    reached the output and the flip -> output latency."""
    sc.setup(uuid)
    time.sleep(1.0)
    k0 = kms_stats(q)
    ctl(uuid, 'reset_stats', 1)
    c0, t0 = cpu_ticks(q.proc.pid), time.monotonic()
    stop, seen = threading.Event(), []
    th = None
    if wb:
        th = threading.Thread(target=writeback_watch, args=(wb, stop, seen),
                              daemon=True)
        th.start()
    time.sleep(seconds)
    c1, t1 = cpu_ticks(q.proc.pid), time.monotonic()
    dev, k1 = kv(ctl(uuid, 'stats')), kms_stats(q)
    stop.set()
    if th:
        th.join()
    el = t1 - t0

    def d(key):
        return int(k1.get(key, 0)) - int(k0.get(key, 0))
    row = {
        'scenario': sc.name, 'seconds': round(el, 2),
        'flips_made': int(dev.get('flips_made', 0)),
        'frames_drawn': int(dev.get('frames_drawn', 0)),
        'flips_seen': int(dev.get('flips_seen', 0)),
        'queries_per_s': round(int(dev.get('queries', 0)) / el, 1),
        'cpu_pct': round(100.0 * (c1 - c0) / HZ_TICK / el, 1),
        'kms': {'commits': d('commits'), 'flips_shown': d('flips_shown'),
                'flips_dropped': d('flips_dropped'), 'copies': d('copies'),
                'path': k1.get('path'), 'connector': k1.get('connector')},
    }
    if wb:
        times = rfbview.frame_times('/sys/bus/mdev/devices/%s/vgpusim/'
                                    'frame_times' % uuid)
        frames = [f for _, f in seen if f is not None and f >= 0]
        lat = sorted((t - times[f]) / 1e6 for t, f in seen
                     if f in times and t >= times[f])
        row['kms'].update({
            'frames_at_output': len(set(frames)),
            'torn_at_output': len([f for _, f in seen if f == -1]),
            'latency_p50_ms': lat[len(lat) // 2] if lat else None,
            'latency_p99_ms': (lat[min(len(lat) - 1, len(lat) * 99 // 100)]
                               if lat else None),
        })
    return row


def run_kms(label, qemu, card, uuid, outdir, scenarios, seconds, wb):
    """-display kms on vkms's @card: on its Virtual connector, or with @wb
    on its writeback connector, saving each composed frame there."""
    opts = 'kms,device=%s' % card
    if wb:
        opts += ',connector=Writeback-1,x-writeback=' + wb
    q = Qemu(qemu, ['-display', opts] + device_args(uuid, POLL), outdir)
    rows = []
    for sc in scenarios:
        if not q.alive():
            rows.append({'config': label, 'scenario': sc.name,
                         'did_not_run': 'QEMU %s: %s' % (
                             q.status(), q.output()[-300:])})
            continue
        r = measure_kms(q, uuid, sc, seconds, wb)
        r['config'] = label
        note('BENCH-ROW: ' + json.dumps(r))
        rows.append(r)
    q.quit()
    return rows


def vkms_card():
    for name in sorted(os.listdir('/sys/class/drm')):
        dev = os.path.realpath('/sys/class/drm/%s/device' % name)
        if name.startswith('card') and '-' not in name and \
                os.path.basename(dev) == 'vkms':
            return '/dev/dri/' + name
    return None


def run_qemu(label, qemu, args, outdir, uuid, scenarios, seconds, viewer,
             idle_target=False):
    rows = []
    q = Qemu(qemu, args, outdir)
    if not q.alive():
        note('%s: QEMU did not start (%s): %s' % (label, q.status(),
                                                   q.output()[-400:]))
        why = [ln for ln in q.output().strip().splitlines()
               if 'error' in ln.lower() or 'fail' in ln.lower()][-1:]
        if q.status() == 'running':
            what = 'QEMU started but did not answer qtest/QMP within 30 s'
        else:
            what = 'QEMU %s at start' % q.status()
        for sc, _ in scenarios:
            rows.append({'config': label, 'scenario': sc.name,
                         'did_not_run': what + ((': ' + why[0]) if why
                                                else '')})
        q.quit()
        return rows
    # every scenario without a viewer first: a viewer makes the display
    # "watched" for a few seconds after it leaves (the CPU presenter then
    # copies each flip at once), which would leak into the next row
    for v in ([False, True] if viewer else [False]):
        for sc, with_viewer in scenarios:
            if v and not with_viewer:
                continue
            if not q.alive():
                rows.append({'config': label, 'scenario': sc.name,
                             'did_not_run': 'QEMU died: %s' % q.status()})
                continue
            try:
                r = measure(q, uuid, sc, seconds, v, idle_target)
            except (OSError, RuntimeError) as e:
                time.sleep(0.5)
                r = {'scenario': sc.name, 'did_not_run': 'QEMU %s during the '
                     'run (%s)' % (q.status(), e)}
            r['config'] = label + (' + VNC viewer' if v else '')
            note('BENCH-ROW: ' + json.dumps(r))
            rows.append(r)
    q.quit()
    return rows


def baseline_cpu(qemu, uuid, outdir, seconds):
    """CPU %% of a QEMU with the same options and the same vfio device, but
    display=off, in CPU_WINDOW windows: what is left above it is what the
    display costs. [] when it did not start."""
    q = Qemu(qemu, ['-display', 'none', '-vnc', '127.0.0.1:0', '-device',
                    'vfio-pci,sysfsdev=/sys/bus/mdev/devices/%s,display=off,'
                    'id=vgpu,addr=05.0' % uuid], outdir)
    if not q.alive():
        q.quit()
        return []
    time.sleep(1)
    w = cpu_windows(q.proc.pid, seconds)
    q.quit()
    return w


def mdev_add(uuid):
    """Another vgpusim instance beside @uuid's (same parent and type): its
    UUID, or None."""
    import uuid as uuidmod
    dev = os.path.realpath('/sys/bus/mdev/devices/%s' % uuid)
    mtype = os.path.basename(os.path.realpath(dev + '/mdev_type'))
    new = str(uuidmod.uuid4())
    try:
        with open('%s/mdev_supported_types/%s/create'
                  % (os.path.dirname(dev), mtype), 'w') as f:
            f.write(new)
    except OSError as e:
        note('cannot create a second vgpusim instance: %s' % e)
        return None
    return new


def mdev_remove(uuid):
    try:
        with open('/sys/bus/mdev/devices/%s/remove' % uuid, 'w') as f:
            f.write('1')
    except OSError:
        pass


def idle_side_by_side(qemu, uuid, outdir):
    """The idle-CPU target's measurement: display=off, ours polling and
    ours pinned to upstream's 30 ms, three QEMUs idle at the same time,
    each with its own vgpusim instance at 1024x768, -display none -vnc, no
    viewer; their CPU read in the same 5 s windows. Whatever else the VM
    or the host does in a window (the drift that made runs of the same
    QEMU differ by six standard errors) falls on all three: the target is
    judged on each window's differences. {} when it could not run."""
    uuids = [uuid] + [mdev_add(uuid) for _ in range(2)]
    qs = {}
    try:
        if None in uuids:
            return {}
        for i, (name, dev) in enumerate((
                ('off', ',display=off'),
                ('ours', ',display=on' + POLL),
                ('pinned', ',display=on,x-display-refresh-min-ms=30,'
                 'x-display-refresh-max-ms=30' + POLL))):
            known_state(uuids[i], mode='1024x768')
            ctl(uuids[i], 'pause', 1)
            qs[name] = Qemu(qemu, ['-display', 'none', '-vnc',
                                   '127.0.0.1:%d' % (i + 1), '-device',
                                   'vfio-pci,sysfsdev=/sys/bus/mdev/devices/'
                                   '%s,id=vgpu,addr=05.0%s' % (uuids[i], dev)],
                           outdir, tag='-idle-%s' % name)
            if not qs[name].alive():
                note('idle side by side: %s did not start:\n%s'
                     % (name, qs[name].output()))
                return {}
        time.sleep(10)   # ours backs off to its idle poll (about 4 s)
        n = max(1, int(round(IDLE_TARGET_SECONDS / CPU_WINDOW)))
        out = {k: [] for k in qs}
        q0 = [int(kv(ctl(u, 'stats'))['queries']) for u in uuids]
        t0 = time.monotonic()
        for _ in range(n):
            a = {k: cpu_ns(q.proc.pid) for k, q in qs.items()}
            ta = time.monotonic()
            time.sleep(CPU_WINDOW)
            b = {k: cpu_ns(q.proc.pid) for k, q in qs.items()}
            tb = time.monotonic()
            for k in qs:
                out[k].append(round(100.0 * (b[k] - a[k]) / 1e9 /
                                    (tb - ta), 3))
        dt = time.monotonic() - t0
        q1 = [int(kv(ctl(u, 'stats'))['queries']) for u in uuids]
        res = {'windows_pct': out,
               'queries_per_s': {k: round((q1[i] - q0[i]) / dt, 1)
                                 for i, k in enumerate(('off', 'ours',
                                                        'pinned'))},
               'window_s': CPU_WINDOW}
        note('BENCH-IDLE: ' + json.dumps(res))
        return res
    finally:
        for q in qs.values():
            q.quit()
        for u in uuids[1:]:
            if u:
                mdev_remove(u)


def mean(xs):
    return sum(xs) / len(xs) if xs else 0.0


def main():
    qemu, upstream, uuid, outdir = sys.argv[1:5]
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 5.0
    os.makedirs(outdir, exist_ok=True)
    flips = [Scenario('%s@%dHz' % (m, hz), m, hz)
             for m in ('1024x768', '1920x1080') for hz in (30, 60, 120, 144)]
    extra = [Scenario('front-buffer 1024x768@60Hz', '1024x768', 60, 'front'),
             Scenario('cursor only 1024x768', '1024x768', 0, 'cursor'),
             Scenario('idle 1024x768', '1024x768', 0, 'idle',
                      seconds=IDLE_SECONDS)]
    allsc = [(s, True) for s in flips + extra]
    byname = {s.name: s for s in flips + extra}
    # the baseline twice, first and last: how much two runs of the same
    # QEMU differ is part of the noise of every CPU figure
    base1 = baseline_cpu(qemu, uuid, outdir, BASELINE_SECONDS)
    note('BENCH-BASELINE: %.2f %s' % (mean(base1), base1))
    idle = idle_side_by_side(qemu, uuid, outdir)
    vnc = VNC
    rows = []
    # the targets: our adaptive poll, as on every device without the
    # display event (all mainline drivers)
    rows += run_qemu(OURS, qemu, vnc + device_args(uuid, POLL), outdir,
                     uuid, allsc, seconds, True, idle_target=True)
    rows += run_qemu(PINNED, qemu,
                     vnc + device_args(uuid, ',x-display-refresh-min-ms=30,'
                                       'x-display-refresh-max-ms=30' + POLL),
                     outdir, uuid, allsc, seconds, True, idle_target=True)
    # vgpusim's display event (v6 of GVT-g's proposal, which no mainline
    # driver has): the flip rates the targets name, the viewer at 60 Hz and
    # idle (the 250 ms safety poll)
    evsc = [(s, s.name in ('1024x768@60Hz', 'idle 1024x768'))
            for s in flips + extra
            if s.name.endswith(('@60Hz', '@144Hz')) and s.kind == 'flip'
            or s.name == 'idle 1024x768']
    rows += run_qemu(EVENT, qemu, vnc + device_args(uuid), outdir, uuid,
                     evsc, seconds, True)
    sixty = [(s, True) for s in flips + extra
             if s.name in ('1024x768@60Hz', 'idle 1024x768')]
    egl = ['-display', 'egl-headless', '-vnc', '127.0.0.1:0']
    # the default (x-display-gl=auto): the CPU maps the linear buffers
    rows += run_qemu('ours egl-headless', qemu,
                     egl + device_args(uuid, POLL),
                     outdir, uuid, sixty, seconds, True)
    # the GL import and read-back per frame (upstream's way of showing it)
    rows += run_qemu('ours egl-headless x-display-gl=on', qemu,
                     egl + device_args(uuid, ',x-display-gl=on' + POLL),
                     outdir, uuid, sixty, seconds, True)
    for pr in PROFILES:
        ctl(uuid, 'profile', pr['profile'])
        for name, value, _ in pr.get('controls', ()):
            ctl(uuid, name, value)
        try:
            rows += run_qemu(pr['label'], qemu,
                             pr['display'] + device_args(uuid, pr['device']),
                             outdir, uuid,
                             [(byname[n], True) for n in pr['scenarios']],
                             seconds, True)
        finally:
            for name, _, restore in pr.get('controls', ()):
                ctl(uuid, name, restore)
            ctl(uuid, 'profile', 'default')
    rows.append({'config': 'ours gvt profile', 'scenario': '*',
                 'did_not_run': GVT_NOT_RUN})
    card = vkms_card()
    kms60 = [byname['1024x768@60Hz']]
    if card:
        # the output a monitor would be: commits and page-flip events
        rows += run_kms('ours -display kms (vkms Virtual-1)', qemu, card,
                        uuid, outdir, kms60, seconds, None)
        # the writeback connector as the output: which frames vkms
        # composed, and when (x-writeback costs QEMU a 3 MB copy a frame)
        rows += run_kms('ours -display kms (vkms writeback)', qemu, card,
                        uuid, outdir, kms60, seconds, '/tmp/bench-wb.ppm')
    else:
        rows.append({'config': 'ours -display kms', 'scenario': '*',
                     'did_not_run': 'no vkms in this VM'})
    if os.path.exists('/dev/dri'):
        rows += run_qemu('upstream 10.2.2 spice gl=on (vgem, no client)',
                         upstream,
                         ['-display', 'none', '-spice',
                          'unix=on,addr=/tmp/bench-spice.sock,'
                          'disable-ticketing=on,gl=on,'
                          'rendernode=/dev/dri/renderD128']
                         + device_args(uuid), outdir, uuid,
                         [(s, False) for s, _ in sixty], seconds, False)
    else:
        rows.append({'config': 'upstream 10.2.2', 'scenario': '*',
                     'did_not_run': 'no /dev/dri: upstream needs a render '
                     'node for any display=on configuration'})
    base2 = baseline_cpu(qemu, uuid, outdir, BASELINE_SECONDS)
    note('BENCH-BASELINE: %.2f %s' % (mean(base2), base2))
    runs = [mean(b) for b in (base1, base2) if b]
    with open(os.path.join(outdir, 'bench.json'), 'w') as f:
        json.dump({'baseline_cpu_pct': mean(runs),
                   'baseline_runs_pct': runs,
                   'baseline_windows_pct': base1 + base2,
                   'idle_side_by_side': idle,
                   'seconds': seconds, 'rows': rows}, f, indent=1)
    note('BENCH-DONE: %d rows' % len(rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())
