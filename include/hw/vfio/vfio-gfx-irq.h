/*
 * The display event of a vfio graphics device: an eventfd that the device
 * signals when a plane changes (a flip, a cursor change), so that the host
 * queries the planes when something happened instead of polling for it.
 *
 * This is the ABI that GVT-g once proposed for its vblank/page-flip event
 * (an IRQ index typed by an IRQ-info capability); Linux never merged it,
 * so it is spelled out here, shared by the simulated vGPU
 * (tests/rig/vgpusim) and the QEMU glue (hw/vfio/display-dmabuf-console.c).
 * Every name is guarded: a kernel header that defines it wins.
 *
 * A device offers the event as one IRQ index at or beyond
 * VFIO_PCI_NUM_IRQS. VFIO_DEVICE_GET_IRQ_INFO on it, with argsz covering
 * struct vfio_gfx_irq_info, answers count 1, flags VFIO_IRQ_INFO_EVENTFD
 * | VFIO_IRQ_INFO_FLAG_CAPS, and at cap_offset (from the start of the
 * struct) a VFIO_IRQ_INFO_CAP_TYPE capability of type VFIO_IRQ_TYPE_GFX,
 * subtype VFIO_IRQ_SUBTYPE_GFX_DISPLAY_IRQ. The host arms it with
 * VFIO_DEVICE_SET_IRQS (DATA_EVENTFD | ACTION_TRIGGER, start 0, count 1)
 * and disarms it with fd -1 (or DATA_NONE, count 0).
 *
 * Plain C types only: included by a kernel module and by user space, after
 * <linux/vfio.h>.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VFIO_VFIO_GFX_IRQ_H
#define HW_VFIO_VFIO_GFX_IRQ_H

#ifndef VFIO_IRQ_INFO_FLAG_CAPS
#define VFIO_IRQ_INFO_FLAG_CAPS            (1 << 4) /* cap_offset is valid */
#endif

#ifndef VFIO_IRQ_INFO_CAP_TYPE
#define VFIO_IRQ_INFO_CAP_TYPE             3

struct vfio_irq_info_cap_type {
    struct vfio_info_cap_header header;
    __u32 type;
    __u32 subtype;
};
#endif

#ifndef VFIO_IRQ_TYPE_GFX
#define VFIO_IRQ_TYPE_GFX                  1
#define VFIO_IRQ_SUBTYPE_GFX_DISPLAY_IRQ   1
#endif

/* struct vfio_irq_info with the proposal's capability offset */
struct vfio_gfx_irq_info {
    __u32 argsz;
    __u32 flags;
    __u32 index;
    __u32 count;
    __u32 cap_offset;           /* from the start of this struct; 0: none */
    __u32 pad;
};

#endif /* HW_VFIO_VFIO_GFX_IRQ_H */
