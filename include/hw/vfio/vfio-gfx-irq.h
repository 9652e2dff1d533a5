/*
 * The display event of a vfio graphics device: an eventfd that the device
 * signals at a vblank in which a plane changed (a flip, a cursor change),
 * so that the host queries the planes when something happened instead of
 * polling for it.
 *
 * This is the ABI of the last version of the GVT-g series "Deliver vGPU
 * display vblank/refresh event to userspace" (v6, Tina Zhang, 24 Sep 2019,
 * kvm list, Message-IDs 20190924064143.9282-2..-5-tina.zhang@intel.com:
 * "vfio: Define device specific irq type capability", "vfio: Introduce
 * vGPU display irq type", and kvmgt's implementation). Linux never merged
 * it, so it is spelled out here for the QEMU glue
 * (hw/vfio/display-dmabuf-console.c) and the engine's parser
 * (hw/vfio/display-dmabuf.c). The simulated vGPU (tests/rig/vgpusim) and
 * its selftest write their own copies from the series' text, so that a
 * mistake here is not shared by the device that tests it.
 * Every name is guarded: a kernel header that defines it wins.
 *
 * What v6 says, and what a device carrying it answers:
 * - The event is one IRQ index at or beyond VFIO_PCI_NUM_IRQS (5: "IRQ
 *   indexes >=5 use device specific cap to define content").
 * - VFIO_DEVICE_GET_IRQ_INFO on it: struct vfio_irq_info grows by
 *   __u32 cap_offset only (20 bytes in all, struct vfio_gfx_irq_info
 *   below); flags VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE |
 *   VFIO_IRQ_INFO_FLAG_CAPS, count 1. The capabilities follow the struct:
 *   cap_offset = sizeof(struct vfio_irq_info) = 20, first a
 *   VFIO_IRQ_INFO_CAP_TYPE (1) of type VFIO_IRQ_TYPE_GFX (1), subtype
 *   VFIO_IRQ_SUBTYPE_GFX_DISPLAY_IRQ (1), then (optional) a
 *   VFIO_IRQ_INFO_CAP_DISPLAY (2) at offset 36, whose __u64 fields are
 *   therefore not 8-byte aligned in the buffer. With an argsz too small
 *   for the chain, kvmgt answers the argsz it needs (60) and copies back
 *   only argsz, flags, index and count.
 * - VFIO_IRQ_INFO_CAP_DISPLAY gives the values the device adds to the
 *   eventfd's counter: pri_event_val for a primary plane update,
 *   cur_event_val for a cursor plane update (kvmgt: 1 << 56 and 1 << 48).
 *   One vblank adds their sum when both changed. Unread signals add up:
 *   the counter is a sum, "counter_value > (cur_event_val + pri_event_val)"
 *   when user space was late, which v6 leaves to user space to read "as
 *   all plane updated case or single plane updated case depending on the
 *   value". Without the capability, every signal means "query both".
 * - Armed with VFIO_DEVICE_SET_IRQS, DATA_EVENTFD | ACTION_TRIGGER, start 0,
 *   count 1, one eventfd. Disarmed with DATA_NONE | ACTION_TRIGGER, count
 *   0. kvmgt hands the fd of DATA_EVENTFD to eventfd_ctx_fdget(), so fd -1
 *   fails with EBADF and the eventfd stays armed until the device is
 *   closed. ACTION_MASK / ACTION_UNMASK with DATA_NONE stop and resume the
 *   signals.
 *
 * Plain C types only: included by user space after <linux/vfio.h>.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VFIO_VFIO_GFX_IRQ_H
#define HW_VFIO_VFIO_GFX_IRQ_H

#ifndef VFIO_IRQ_INFO_FLAG_CAPS
#define VFIO_IRQ_INFO_FLAG_CAPS            (1 << 4) /* cap_offset is valid */
#endif

#ifndef VFIO_IRQ_INFO_CAP_TYPE
#define VFIO_IRQ_INFO_CAP_TYPE             1

struct vfio_irq_info_cap_type {
    struct vfio_info_cap_header header; /* id VFIO_IRQ_INFO_CAP_TYPE, v1 */
    __u32 type;
    __u32 subtype;
};
#endif

#ifndef VFIO_IRQ_TYPE_GFX
#define VFIO_IRQ_TYPE_GFX                  1
#endif
#ifndef VFIO_IRQ_SUBTYPE_GFX_DISPLAY_IRQ
#define VFIO_IRQ_SUBTYPE_GFX_DISPLAY_IRQ   1
#endif

#ifndef VFIO_IRQ_INFO_CAP_DISPLAY
#define VFIO_IRQ_INFO_CAP_DISPLAY          2

struct vfio_irq_info_cap_display_plane_events {
    struct vfio_info_cap_header header; /* id VFIO_IRQ_INFO_CAP_DISPLAY, v1 */
    __u64 cur_event_val;                /* added per cursor plane update */
    __u64 pri_event_val;                /* added per primary plane update */
};
#endif

/*
 * struct vfio_irq_info as v6 extends it. <linux/vfio.h> already defines
 * struct vfio_irq_info without cap_offset (16 bytes), so v6's layout has
 * a name of its own here: 20 bytes, no padding.
 */
struct vfio_gfx_irq_info {
    __u32 argsz;
    __u32 flags;
    __u32 index;
    __u32 count;
    __u32 cap_offset;           /* from the start of this struct; 0: none */
};

#endif /* HW_VFIO_VFIO_GFX_IRQ_H */
