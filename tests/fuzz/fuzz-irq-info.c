/*
 * libFuzzer harness: vfio_display_dmabuf_parse_irq_info() on a device's
 * VFIO_DEVICE_GET_IRQ_INFO answer made of the input bytes, then
 * vfio_display_dmabuf_event_planes() on counter values.
 *
 * The answer lives in a buffer of exactly the input's size (ASan: no byte
 * past it is read), the walk must end (libFuzzer's timeout), and the
 * verdicts agree with what v6 of GVT-g's proposal says, written out again
 * here from its text rather than taken from the code (offsets and ids as
 * numbers):
 * - a display event has EVENTFD (bit 0) and FLAG_CAPS (bit 4) set, count 1,
 *   and is at least the 20-byte struct;
 * - values, when used, are non-zero and differ;
 * - one vblank's signal names its plane: exactly the primary's value names
 *   the primary, exactly the cursor's value the cursor, their sum (without
 *   wrapping) both; 0 names nothing, anything else at least one plane,
 *   both without values.
 * A violation abort()s, so libFuzzer reports it as a crash.
 *
 * Input: the answer, byte for byte (argsz is whatever the input says; the
 * length trusted is the input's); the last 8 bytes are also a counter value.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include "hw/vfio/display-dmabuf.h"
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    VFIODmabufEventInfo ev;
    uint32_t flags = 0, count = 0;
    uint64_t v = 0;
    unsigned int planes;
    bool is;

    memcpy(buf, data, size);
    is = vfio_display_dmabuf_parse_irq_info(buf, size, &ev);
    if (size >= 16) {
        memcpy(&flags, data + 4, 4);
        memcpy(&count, data + 12, 4);
    }
    if (is) {
        FUZZ_CHECK(size >= 20);
        FUZZ_CHECK((flags & 1) && (flags & (1 << 4)) && count == 1);
    } else {
        FUZZ_CHECK(!ev.has_values);
    }
    if (ev.has_values) {
        FUZZ_CHECK(ev.pri_val && ev.cur_val && ev.pri_val != ev.cur_val);
        FUZZ_CHECK(vfio_display_dmabuf_event_planes(&ev, ev.pri_val) ==
                   VFIO_DMABUF_QUERY_PRIMARY);
        FUZZ_CHECK(vfio_display_dmabuf_event_planes(&ev, ev.cur_val) ==
                   VFIO_DMABUF_QUERY_CURSOR);
        if (ev.pri_val + ev.cur_val > ev.pri_val) {
            FUZZ_CHECK(vfio_display_dmabuf_event_planes(
                           &ev, ev.pri_val + ev.cur_val) ==
                       VFIO_DMABUF_QUERY_BOTH);
        }
    }
    if (size >= 8) {
        memcpy(&v, data + size - 8, 8);
    }
    planes = vfio_display_dmabuf_event_planes(&ev, v);
    FUZZ_CHECK(!planes == !v);
    FUZZ_CHECK(!(planes & ~VFIO_DMABUF_QUERY_BOTH));
    FUZZ_CHECK(ev.has_values || !v || planes == VFIO_DMABUF_QUERY_BOTH);
    free(buf);
    return 0;
}
