#!/usr/bin/env python3
# demo-live.py QEMU UUID: `make demo-live`'s guest side. The simulated vGPU
# flips 1024x768 frames at 60 Hz with its cursor moving; QEMU with the
# overlay shows it with `-device vfio-pci,display=on` on VNC display :0,
# listening on all addresses of the VM (the host forwards a loopback port
# to it: scripts/demo-live.sh). Runs until QEMU or the VM is stopped.
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vfio_display import Qemu, ctl, note  # noqa: E402


def main():
    qemu, uuid = sys.argv[1:3]
    ctl(uuid, 'mode', '1024x768')
    ctl(uuid, 'flip_hz', 60)
    ctl(uuid, 'cursor', 'auto')
    ctl(uuid, 'pause', 0)
    q = Qemu(qemu, ['-display', 'none', '-vnc', '0.0.0.0:0', '-device',
                    'vfio-pci,sysfsdev=/sys/bus/mdev/devices/%s,display=on,'
                    'id=vgpu,addr=05.0' % uuid], '/tmp')
    if not q.alive():
        print(q.output())
        return 1
    note('DEMO-LIVE-READY')
    while q.alive():
        time.sleep(5)
        st = q.stats()
        note('live: flips seen %s, plane queries %s, poll interval %s ms'
             % (st.get('flips_seen'), st.get('queries'),
                st.get('interval_ms')))
    note('QEMU ended: %s' % q.status())
    return 1


if __name__ == '__main__':
    sys.exit(main())
