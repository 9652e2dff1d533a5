#!/usr/bin/env python3
# kms-test.py QEMU UUID OUTDIR: `-display kms` on vkms (the rig VM's
# virtual KMS device, loaded with its cursor plane and writeback connector)
# showing vgpusim. QEMU saves what vkms composed after each commit
# (x-writeback, through the writeback connector): the oracle, compared
# pixel for pixel with the frame the device shows, cursor included.
#
# Suites (each starts its own QEMU):
#   zero-copy  default profile: the dma-bufs imported (PRIME) and flipped;
#              the cursor on the cursor plane; a flip, a mode change, a
#              device reset; every import released; the CRTC as found
#              after QEMU quits
#   copy       a format vkms's primary plane does not take (XBGR8888): the
#              frame copied into a dumb buffer, exact, said once
#   centred    mode=1280x1024 with a 1024x768 guest: the frame centred by
#              the primary plane, zero-copy; the cursor plane at its
#              place in the frame
#   region     region planes (NVIDIA vGPU, mdpy): the copy path, exact
#   gvt        proxy dma-bufs (no mmap, no vmap): one clear message each
#              from kms and the device, QEMU runs on, nothing leaks
#   sigterm    QEMU killed with SIGTERM gives the CRTC back as well
# TAP output; exit 0 when every check passes.
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gui_images import expected_for, with_cursor  # noqa: E402
from vfio_display import (Image, Qemu, Tap, ctl as ctl_of,  # noqa: E402
                          known_state, kv, note, read_ppm, wait_for)

QEMU, UUID, OUTDIR = sys.argv[1:4]
SUITES = sys.argv[4:] or ['zero-copy', 'virtual', 'copy', 'centred',
                          'region', 'gvt', 'sigterm']
SYSFS = '/sys/bus/mdev/devices/%s' % UUID
WB = '/tmp/kms-writeback.ppm'
CURSOR_AT = (100, 80)
tap = Tap()


def ctl(name, value=None):
    return ctl_of(UUID, name, value)


def vkms_card():
    """/dev/dri/cardN of vkms, found by its device (vkms makes a platform
    device named vkms, with no driver bound)."""
    for name in sorted(os.listdir('/sys/class/drm')):
        if not re.fullmatch(r'card\d+', name):
            continue
        dev = os.path.realpath('/sys/class/drm/%s/device' % name)
        if os.path.basename(dev) == 'vkms':
            return '/dev/dri/' + name
    return None


def debugfs_state(card):
    """vkms's atomic state as debugfs prints it, without the lines that
    change by themselves (refcounts, who allocated a framebuffer) or that
    describe the last commit rather than the state (*_changed)."""
    if not os.path.isdir('/sys/kernel/debug/dri'):
        subprocess.call(['mount', '-t', 'debugfs', 'debugfs',
                         '/sys/kernel/debug'])
    minor = card.replace('/dev/dri/card', '')
    with open('/sys/kernel/debug/dri/%s/state' % minor) as f:
        lines = f.read().splitlines()
    keep = [ln for ln in lines
            if not re.search(r'refcount|allocated by|self_refresh|'
                             r'_changed=', ln)]
    return '\n'.join(keep)


def kms_stats(q):
    try:
        r = q.cmd('qom-get', path='/machine', property='x-kms-stats')
    except (OSError, RuntimeError):
        return {}
    if 'return' not in r:
        return {}
    return dict(kv.split('=', 1) for kv in r['return'].split())


def live_dmabufs():
    return int(kv(ctl('stats'))['live_dmabufs'])


def frame_now():
    return int(kv(ctl('state'))['frame'])


def writeback_until(q, want, after_commit=0, timeout=15.0):
    """The written-back picture once it equals @want (after the commit
    numbered @after_commit), or the last one seen."""
    last = [None]

    def got():
        st = kms_stats(q)
        if int(st.get('writeback_commit', 0)) <= after_commit:
            return None
        try:
            img = read_ppm(WB)
        except (OSError, AssertionError, ValueError, IndexError):
            return None
        last[0] = img
        return img if exact(img, want) is None else None
    return wait_for(got, timeout=timeout) or last[0]


def exact(img, want):
    """None when @img equals @want, else what differs."""
    if img is None:
        return 'no writeback picture'
    if (img.w, img.h) != (want.w, want.h):
        return 'size %dx%d, want %dx%d' % (img.w, img.h, want.w, want.h)
    bad = 0
    first = None
    for i in range(0, len(want.rgb), 3):
        if img.rgb[i:i + 3] != want.rgb[i:i + 3]:
            bad += 1
            if first is None:
                p = i // 3
                first = '(%d,%d) %s != %s' % (
                    p % want.w, p // want.w, tuple(img.rgb[i:i + 3]),
                    tuple(want.rgb[i:i + 3]))
    return None if not bad else '%d pixels differ, first %s' % (bad, first)


def start(card, dev_opts='', display_opts=None):
    """QEMU showing the vGPU on vkms's writeback connector, saving each
    composed frame: vkms 6.12 cannot put its Virtual connector and its
    writeback connector on one CRTC (no clone), so the writeback connector
    is the output; the CRTC, planes and composition are the same."""
    if os.path.exists(WB):
        os.unlink(WB)
    if display_opts is None:
        display_opts = ',connector=Writeback-1,x-writeback=' + WB
    return Qemu(QEMU, ['-trace', 'enable=kms_*',
                       '-trace', 'enable=vfio_display_dmabuf_cursor*',
                       '-display', 'kms,device=%s%s' % (card, display_opts),
                       '-device', 'vfio-pci,sysfsdev=%s,display=on,id=vgpu,'
                       'addr=05.0%s' % (SYSFS, dev_opts)], OUTDIR)


def is_trace(line):
    """A line of the log trace backend (-trace enable=kms_*): "kms_event
    ..." (with -msg timestamp=on, "PID@SECONDS:kms_event ...")."""
    return re.match(r'(\d+@[\d.]+:)?(kms|vfio_display_dmabuf)_[a-z_]+ ',
                    line) is not None


def messages(q):
    """What QEMU said (its output without the trace events)."""
    return '\n'.join(ln for ln in q.output().splitlines()
                     if not is_trace(ln))


def qemu_log(q):
    """For a failed check: QEMU's messages and its last kms_* events."""
    out = q.output().splitlines()
    return '\n'.join([ln for ln in out if not is_trace(ln)] +
                     [ln for ln in out if is_trace(ln)][-40:])


def save(img, name):
    if img is not None:
        from gui_images import save_ppm
        save_ppm(img, os.path.join(OUTDIR, name + '.ppm'))


def check_output(q, name, want, commits, what, extra=True):
    """Waits for the written-back picture after commit @commits to equal
    @want; one check named @name: @what (and @extra must hold)."""
    img = writeback_until(q, want, after_commit=commits)
    save(img, name)
    why = exact(img, want)
    if not q.alive():
        why = 'QEMU is gone (%s):\n%s' % (q.status(), qemu_log(q))
    tap(why is None and extra, '%s: %s' % (name, what))
    if why:
        note(why)
        note('x-kms-stats: ' + ' '.join('%s=%s' % kv_ for kv_ in
                                        sorted(kms_stats(q).items())))
        note(qemu_log(q))
        note('engine: %s' % q.stats())
    return img


def show_and_check(q, name, w, h, fmt='XRGB8888', cursor=True,
                   at=CURSOR_AT):
    """Steps the device one frame; checks the writeback picture."""
    commits = int(kms_stats(q).get('commits', 0))
    ctl('step', 1)
    f = frame_now()
    want = expected_for(fmt, w, h, f)
    if cursor:
        want = with_cursor(want, *at)
    return check_output(q, name, want, commits,
                        'the output shows frame %d pixel for pixel%s'
                        % (f, ' with the cursor at %d,%d' % at
                           if cursor else ''))


def cursor_on():
    ctl('cursor_hot', '32 32')
    ctl('cursor_pos', '%d %d' % CURSOR_AT)  # the plane's top-left
    ctl('cursor', 'on')


def hold(card):
    """An fd on the card, kept while QEMU quits: with it open QEMU's
    close is not the last one, so the kernel's fbdev emulation does not put
    its console back by itself, and the state after is QEMU's restore."""
    return os.open(card, os.O_RDWR)


def quit_and_check(q, card, before, live0, name):
    fd = hold(card)
    ok = q.quit()
    tap(ok, '%s: QEMU quits by itself with status 0' % name)
    tap(wait_for(lambda: live_dmabufs() == live0, timeout=5),
        '%s: after QEMU quit the device has no dma-buf of it left (%d, '
        'was %d)' % (name, live_dmabufs(), live0))
    state_restored(q, card, fd, before, name)


def state_restored(q, card, fd, before, name):
    """vkms's state equals @before while the test still holds @fd (so it
    is QEMU's restore, not fbdev's at the last close); then lets go."""
    after = debugfs_state(card)
    os.close(fd)
    tap(after == before and 'cannot restore' not in messages(q),
        '%s: QEMU gave vkms\'s CRTC, planes and connectors back as found '
        '(another client holds the card: no fbdev restore)' % name)
    if after != before:
        import difflib
        note('\n'.join(difflib.unified_diff(before.splitlines(),
                                            after.splitlines(), 'before',
                                            'after', lineterm='')))


def begin(card, name, display_opts=None, **controls):
    """vgpusim at a known 1024x768 state with @controls (profile, format)
    and its cursor on at CURSOR_AT, vkms's state and the device's live
    dma-bufs noted, QEMU started: (q, before, live0), or None when QEMU
    did not start (a failed check)."""
    known_state(UUID, mode='1024x768')
    for k, v in controls.items():
        ctl(k, v)
    cursor_on()
    before = debugfs_state(card)
    live0 = live_dmabufs()
    q = start(card, display_opts=display_opts)
    if not tap(q.alive(), '%s: QEMU starts (-display kms on %s)'
               % (name, card)):
        note(q.output())
        return None
    return q, before, live0


# ---------------------------------------------------------------- suites

def suite_zero_copy(card):
    started = begin(card, 'zero-copy')
    if not started:
        return
    q, before, live0 = started
    show_and_check(q, 'zero-copy-first', 1024, 768)
    copies0 = kms_stats(q).get('copies')  # the placeholder before it
    for i in range(3):
        show_and_check(q, 'zero-copy-flip-%d' % i, 1024, 768)
    st = kms_stats(q)
    tap(st.get('path') == 'zero-copy' and st.get('copies') == copies0 and
        int(st.get('imports', 0)) >= 3,
        'zero-copy: the dma-bufs are imported, no frame copied (path %s, '
        'imports %s, copies %s then %s)' % (st.get('path'), st.get('imports'),
                                            copies0, st.get('copies')))
    held = int(q.stats().get('fds_open', -1))
    tap(0 < int(st.get('live_imports', 99)) <= held ==
        live_dmabufs() - live0,
        'zero-copy: every import is of a buffer QEMU holds, and QEMU holds '
        'what the device has live (%s imported, %d held, %d live)'
        % (st.get('live_imports'), held, live_dmabufs() - live0))
    # a mode change: a new mode on the connector
    ctl('mode', '800x600')
    show_and_check(q, 'zero-copy-800x600', 800, 600)
    st = kms_stats(q)
    tap(st.get('mode') == '800x600' and int(st.get('modesets', 0)) >= 2,
        'zero-copy: the guest\'s 800x600 becomes the output\'s mode (mode '
        '%s, %s modesets)' % (st.get('mode'), st.get('modesets')))
    # an awkward mode: 1366 wide (a stride vkms does not round), the cursor
    # partly off the right and bottom edges (the plane clipped by vkms)
    ctl('mode', '1366x768')
    ctl('cursor_pos', '1330 740')
    show_and_check(q, 'zero-copy-1366x768', 1366, 768, at=(1330, 740))
    tap(kms_stats(q).get('mode') == '1366x768',
        'zero-copy: 1366x768 becomes the output\'s mode')
    ctl('cursor_pos', '%d %d' % CURSOR_AT)
    # the device resets (the machine's reset resets the vGPU)
    q.cmd('system_reset')
    time.sleep(0.5)
    known_state(UUID, mode='1024x768')
    cursor_on()
    show_and_check(q, 'zero-copy-after-reset', 1024, 768)
    # 60 Hz for 2 s: every flip reaches the output or is dropped for a
    # newer one
    ctl('flip_hz', 60)
    ctl('pause', 0)
    time.sleep(2)
    ctl('pause', 1)
    time.sleep(0.3)
    st = kms_stats(q)
    note('after 2 s at 60 Hz: ' + ' '.join('%s=%s' % kv_ for kv_ in
                                           sorted(st.items())))
    tap(int(st.get('commit_failures', -1)) == 0 and
        messages(q).count('kms:') == 1,
        'zero-copy: no commit failed and kms said only its start line')
    quit_and_check(q, card, before, live0, 'zero-copy')


def suite_copy(card):
    started = begin(card, 'copy', format='XBGR8888')
    if not started:
        return
    q, before, live0 = started
    show_and_check(q, 'copy-xbgr', 1024, 768)
    show_and_check(q, 'copy-xbgr-flip', 1024, 768)
    st = kms_stats(q)
    msg = 'does not take format XB24'
    tap(st.get('path') == 'copy' and int(st.get('copies', 0)) >= 2,
        'copy: XBGR8888, which vkms\'s primary plane lacks, is copied '
        '(path %s, copies %s)' % (st.get('path'), st.get('copies')))
    for i in range(20):
        ctl('step', 1)
        time.sleep(0.05)
    show_and_check(q, 'copy-xbgr-after-20', 1024, 768)
    # a cursor move: the cursor plane moves, the frame is not copied again
    st = kms_stats(q)
    copies1, commits = st.get('copies'), int(st.get('commits', 0))
    ctl('cursor_pos', '300 200')
    want = with_cursor(expected_for('XRGB8888', 1024, 768, frame_now()),
                       300, 200)
    writeback_until(q, want, after_commit=commits)  # then the count
    st = kms_stats(q)
    check_output(q, 'copy-cursor-moved', want, commits,
                 'a cursor move shows the cursor at 300,200 pixel for pixel '
                 'without copying the frame again (copies %s then %s)'
                 % (copies1, st.get('copies')),
                 st.get('copies') == copies1)
    ctl('cursor_pos', '%d %d' % CURSOR_AT)
    tap(int(st.get('dumb_buffers', 99)) <= 4,
        'copy: %s copies reuse the same dumb buffers (%s live: two copies, '
        'the cursor, the writeback)' % (st.get('copies'),
                                        st.get('dumb_buffers')))
    tap(messages(q).count(msg) == 1,
        'copy: the reason is said once: "%s" (%d times)'
        % (msg, messages(q).count(msg)))
    # back to a format the plane takes: imported again on the new mode
    ctl('format', 'XRGB8888')
    ctl('mode', '800x600')
    show_and_check(q, 'copy-back-to-xrgb', 800, 600)
    show_and_check(q, 'copy-back-to-xrgb-flip', 800, 600)
    st = kms_stats(q)
    tap(st.get('path') == 'zero-copy',
        'copy: a new mode in a format the plane takes goes zero-copy again '
        '(path %s)' % st.get('path'))
    quit_and_check(q, card, before, live0, 'copy')


def suite_region(card):
    try:
        started = begin(card, 'region', profile='region')
        if not started:
            return
        q, before, live0 = started
        # a region plane has no cursor plane: the frame alone
        show_and_check(q, 'region', 1024, 768, cursor=False)
        show_and_check(q, 'region-flip', 1024, 768, cursor=False)
        st = kms_stats(q)
        tap(st.get('path') == 'copy' and int(st.get('imports', -1)) == 0,
            'region: region planes are copied (path %s, imports %s)'
            % (st.get('path'), st.get('imports')))
        quit_and_check(q, card, before, live0, 'region')
    finally:
        ctl('profile', 'default')


def suite_gvt(card):
    try:
        started = begin(card, 'gvt', profile='gvt')
        if not started:
            return
        q, before, live0 = started
        for i in range(4):
            ctl('step', 1)
            time.sleep(0.5)
        # under load the device's and kms's messages can come later
        wait_for(lambda: 'cannot be read by the CPU' in messages(q) and
                 'kms: %s cannot scan out' % card in messages(q), timeout=10)
        out = messages(q)
        note(out)
        kms_msg = out.count('kms: ')
        dev_msg = out.count('cannot be read by the CPU')
        tap(q.alive() and dev_msg == 1,
            'gvt: proxy dma-bufs: QEMU runs on and the device says once '
            'that the frame cannot be read by the CPU (%d times)' % dev_msg)
        tap(kms_msg == 2 and out.count('kms: %s cannot scan out' % card) == 1,
            'gvt: kms says once why it cannot scan them out (%d kms lines, '
            'its start line included)' % kms_msg)
        quit_and_check(q, card, before, live0, 'gvt')
    finally:
        ctl('profile', 'default')


def suite_virtual(card):
    """The Virtual connector (what a monitor would be): no writeback, so
    the planes' state in debugfs and the counters are the oracle."""
    started = begin(card, 'virtual', display_opts='')
    if not started:
        return
    q, before, live0 = started
    ctl('flip_hz', 60)
    ctl('pause', 0)
    time.sleep(2)
    ctl('pause', 1)
    time.sleep(0.3)
    st = kms_stats(q)
    note(' '.join('%s=%s' % kv_ for kv_ in sorted(st.items())))
    commits = int(st.get('commits', 0))
    shown = int(st.get('flips_shown', 0))
    tap(st.get('connector') == 'Virtual-1' and st.get('path') ==
        'zero-copy' and commits >= 10 and shown >= commits - 1 and
        int(st.get('commit_failures', -1)) == 0,
        'virtual: 60 Hz flips committed zero-copy and each one shown '
        '(%d commits, %d page-flip events, %s failed)'
        % (commits, shown, st.get('commit_failures')))
    state = debugfs_state(card)
    f = frame_now()
    planes = re.findall(r'plane\[\d+\]: ([^\n]*)\n\tcrtc=crtc-0\n\tfb=(\d+)',
                        state)
    note(state)
    if not tap(len([p for p in planes if p[1] != '0']) == 2,
               'virtual: debugfs shows the primary and the cursor plane on '
               'the CRTC (%s), frame %d' % (planes, f)):
        note(qemu_log(q))
        note('engine: %s' % q.stats())
        note('device: %s' % ctl('state'))
    quit_and_check(q, card, before, live0, 'virtual')


def suite_centred(card):
    """mode=1280x1024 with a 1024x768 guest: the frame centred by the
    primary plane (vkms's can position it: zero-copy), the cursor plane at
    the cursor's place in the frame."""
    started = begin(card, 'centred', display_opts=',connector=Writeback-1,'
                    'mode=1280x1024,x-writeback=' + WB)
    if not started:
        return
    q, before, live0 = started
    commits = int(kms_stats(q).get('commits', 0))
    ctl('step', 1)
    f = frame_now()
    frame = with_cursor(expected_for('XRGB8888', 1024, 768, f), *CURSOR_AT)
    rgb = bytearray(b'\0\0\0' * (1280 * 1024))
    for y in range(768):
        o = ((128 + y) * 1280 + 128) * 3
        rgb[o:o + 1024 * 3] = frame.rgb[y * 1024 * 3:(y + 1) * 1024 * 3]
    want = Image(1280, 1024, bytes(rgb))
    check_output(q, 'centred', want, commits,
                 'frame %d centred in 1280x1024 with the cursor at '
                 '128+%d,128+%d, pixel for pixel' % ((f,) + CURSOR_AT))
    st = kms_stats(q)
    tap(st.get('mode') == '1280x1024' and st.get('path') == 'zero-copy' and
        'kms: %s cannot' % card not in messages(q),
        'centred: the user\'s mode, the frame placed by the plane, no copy '
        '(mode %s, path %s)' % (st.get('mode'), st.get('path')))
    quit_and_check(q, card, before, live0, 'centred')


def suite_sigterm(card):
    started = begin(card, 'sigterm')
    if not started:
        return
    q, before, live0 = started
    show_and_check(q, 'sigterm-before', 1024, 768)
    fd = hold(card)
    q.proc.send_signal(signal.SIGTERM)
    try:
        q.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        q.proc.kill()
        q.proc.wait()
    tap(q.proc.returncode == 0, 'sigterm: QEMU exits by itself on SIGTERM '
        '(status %s)' % q.proc.returncode)
    tap(wait_for(lambda: live_dmabufs() == live0, timeout=5),
        'sigterm: no dma-buf of it left on the device')
    state_restored(q, card, fd, before, 'sigterm')


def main():
    os.makedirs(OUTDIR, exist_ok=True)
    card = vkms_card()
    if not card:
        print('1..0 # SKIP no vkms card in this VM (run-vm.sh --vkms)')
        return 77
    note('vkms is %s' % card)
    for s in SUITES:
        globals()['suite_' + s.replace('-', '_')](card)
    return tap.done('kms')


if __name__ == '__main__':
    sys.exit(main())
