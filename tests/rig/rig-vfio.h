/*
 * What the programs that run in the rig VM share (tests/rig/engine-rig-test,
 * tests/egl/egl-vfio-test): opening a VFIO mdev, programming pristine
 * mbochs's bochs dispi registers, vgpusim's sysfs controls and decoding the
 * frame number vgpusim draws into its pixels (docs/vgpusim.md).
 *
 * Ownership: a RigVfio owns its three fds; rig_vfio_close() closes them.
 * Nothing else here keeps an fd or an allocation past its return, except
 * the strings the callers are told to g_free().
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TESTS_RIG_RIG_VFIO_H
#define TESTS_RIG_RIG_VFIO_H

#include <stdbool.h>
#include <stdint.h>
#include "qapi/error.h"

/* mbochs: bochs dispi registers, 16 bit, at BAR2 + 0x500 + 2 * index */
#define DISPI_BASE              0x500
#define DISPI_XRES              1
#define DISPI_YRES              2
#define DISPI_BPP               3
#define DISPI_ENABLE            4
#define DISPI_VIRT_WIDTH        6
#define DISPI_VIRT_HEIGHT       7
#define DISPI_X_OFFSET          8
#define DISPI_Y_OFFSET          9
#define DISPI_ENABLED           0x01
#define DISPI_LFB_ENABLED       0x40

/* An open mdev. Each fd is owned, -1 when closed. */
typedef struct RigVfio {
    int container;              /* /dev/vfio/vfio */
    int group;                  /* /dev/vfio/<iommu group> */
    int device;                 /* the mdev's device fd */
} RigVfio;

/**
 * rig_vfio_open:
 * @v: storage; any content is overwritten, not closed
 * @uuid: the mdev, /sys/bus/mdev/devices/@uuid
 * @errp: error object
 *
 * Opens a container, the mdev's IOMMU group and the device, with a type1v2
 * IOMMU. Returns: true with the three fds owned by @v, or false with
 * @errp set and every fd of @v -1 (what was opened is closed again).
 */
bool rig_vfio_open(RigVfio *v, const char *uuid, Error **errp);

/**
 * rig_vfio_close:
 * @v: from rig_vfio_open(), or with every fd -1
 *
 * Closes every fd >= 0 of @v and sets it to -1. A second call does nothing.
 */
void rig_vfio_close(RigVfio *v);

/**
 * rig_vfio_region:
 * @v: open device, borrowed
 * @index: VFIO region index, e.g. VFIO_PCI_BAR2_REGION_INDEX
 * @off: set to the region's offset in the device fd
 * @size: set to the region's size in bytes
 * @errp: error object
 *
 * Returns: true, or false with @errp set and @off, @size untouched.
 */
bool rig_vfio_region(RigVfio *v, unsigned int index, uint64_t *off,
                     uint64_t *size, Error **errp);

/**
 * rig_dispi_write:
 * @v: open mbochs device, borrowed
 * @bar2_off: BAR2's offset from rig_vfio_region()
 * @index: DISPI_* register
 * @val: value
 *
 * Returns: 0, or -errno (-EIO for a short write).
 */
int rig_dispi_write(RigVfio *v, uint64_t bar2_off, unsigned int index,
                    uint16_t val);

/**
 * rig_mbochs_set_mode:
 * @v: open mbochs device, borrowed
 * @bar2_off: BAR2's offset from rig_vfio_region()
 * @w: width in pixels, also the virtual width
 * @h: height in pixels
 * @virt_h: virtual height (>= @h for page flips)
 * @y_off: first scanned-out line of the virtual screen
 *
 * A 32 bpp mode set the way a bochs driver does it: off, geometry, on.
 * Returns: 0, or -errno of the first register write that failed.
 */
int rig_mbochs_set_mode(RigVfio *v, uint64_t bar2_off, uint16_t w,
                        uint16_t h, uint16_t virt_h, uint16_t y_off);

/**
 * rig_vgs_write:
 * @uuid: a vgpusim mdev
 * @attr: a control in its vgpusim/ sysfs directory
 * @val: text to write
 *
 * Returns: 0, or -errno (-EIO for a short write).
 */
int rig_vgs_write(const char *uuid, const char *attr, const char *val);

/**
 * rig_vgs_read:
 * @uuid: a vgpusim mdev
 * @attr: a file in its vgpusim/ sysfs directory
 * @text: set to the file's text, which the caller must g_free(); NULL on
 * error
 *
 * Returns: 0, or -errno.
 */
int rig_vgs_read(const char *uuid, const char *attr, char **text);

/**
 * rig_kv:
 * @text: "key=value" lines, as vgpusim's state and stats files; may be NULL
 * @key: the key
 *
 * Returns: the value of @key's line as a number, or -1 if there is none.
 */
int64_t rig_kv(const char *text, const char *key);

/**
 * rig_vgs_frame:
 * @row: borrowed; the first pixel of one of rows 0-7 of a vgpusim frame
 * @fourcc: the pixel format of @row: RGB565, XRGB8888, ARGB8888, XBGR8888
 * or ABGR8888 (vgpusim's formats and a GL readback's)
 *
 * Decodes the frame number of docs/vgpusim.md from the first 64 pixels of
 * @row. Returns: the frame number, or -1 if the check bits do not match
 * (a torn read) or @fourcc is none of those formats.
 */
int64_t rig_vgs_frame(const uint8_t *row, uint32_t fourcc);

#endif /* TESTS_RIG_RIG_VFIO_H */
