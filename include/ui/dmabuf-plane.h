/*
 * DmabufPlane: a plain description of one dma-buf scanout buffer.
 *
 * This header is the only thing the VFIO side (hw/vfio/display-dmabuf.c)
 * and the EGL side (ui/dmabuf-egl-device.c, ui/dmabuf-egl.c) share. It
 * knows nothing of VFIO, EGL or QEMU consoles. Formats are DRM fourccs:
 * name them with the DRM_FORMAT_* macros of
 * "standard-headers/drm/drm_fourcc.h" (QEMU's copy of the kernel header;
 * tests/shim has one for the standalone build).
 *
 * Ownership: a DmabufPlane owns the fds in @fd[0 .. n_fds-1] that are >= 0.
 * dmabuf_plane_finish() closes them and sets them to -1. A function that
 * takes a "const DmabufPlane *" borrows it and never closes its fds; a
 * second holder must dmabuf_plane_dup() it.
 *
 * A plane may instead have no fd and pixels the CPU reads through a
 * mapping its producer owns (@pixels: a vfio region plane, mapped by the
 * device's side): n_fds is 0, only the CPU can read it (no GL import),
 * and @pixels stays valid as long as the producer keeps the plane, like
 * its fds would.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef UI_DMABUF_PLANE_H
#define UI_DMABUF_PLANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A VFIO dma-buf is single-planar; keep room for multi-planar formats. */
#define DMABUF_MAX_FDS 4

typedef struct DmabufPlane {
    uint32_t fourcc;          /* DRM_FORMAT_* code */
    uint64_t modifier;        /* DRM_FORMAT_MOD_*; 0 is LINEAR */
    uint32_t width;           /* pixels */
    uint32_t height;          /* pixels */
    uint64_t size;            /* bytes the producer says the buffer holds */
    uint32_t n_fds;           /* valid entries in the arrays below */
    uint32_t offset[DMABUF_MAX_FDS]; /* bytes from the start of fd[i] */
    uint32_t stride[DMABUF_MAX_FDS]; /* bytes per row */
    int fd[DMABUF_MAX_FDS];   /* owned; -1 when absent */
    /*
     * With n_fds 0: the pixels, borrowed from the producer's mapping
     * (offset[0] counts from here), @pixels_len bytes readable; NULL for
     * a dma-buf.
     */
    const uint8_t *pixels;
    size_t pixels_len;
} DmabufPlane;

/**
 * dmabuf_plane_init:
 * @p: storage to initialise
 *
 * Makes @p an empty plane that owns nothing (every fd -1).
 */
void dmabuf_plane_init(DmabufPlane *p);

/**
 * dmabuf_plane_finish:
 * @p: plane, may be NULL
 *
 * Closes every fd >= 0 that @p owns and sets it to -1; n_fds becomes 0.
 * A second call does nothing.
 */
void dmabuf_plane_finish(DmabufPlane *p);

/**
 * dmabuf_plane_dup:
 * @dst: storage for the copy; any content is overwritten, not closed
 * @src: borrowed
 *
 * Copies @src with each fd duplicated by F_DUPFD_CLOEXEC. The caller owns
 * the new fds. Returns: true, or false with errno set and nothing owned
 * by @dst (fds dup'ed so far are closed again).
 */
bool dmabuf_plane_dup(DmabufPlane *dst, const DmabufPlane *src);

/**
 * dmabuf_format_cpp:
 * @fourcc: a DRM_FORMAT_* code
 *
 * Returns: bytes per pixel of a packed single-plane format this project
 * supports (RGB, and packed YUV 4:2:2 at 2 bytes a pixel), or 0 for any
 * other (unknown or unsupported) code.
 */
unsigned int dmabuf_format_cpp(uint32_t fourcc);

/**
 * dmabuf_format_is_yuv422:
 * @fourcc: a DRM_FORMAT_* code
 *
 * Returns: whether @fourcc is packed YUV 4:2:2 (YUYV, YVYU, UYVY, VYUY):
 * two pixels share four bytes, so the width must be even.
 */
bool dmabuf_format_is_yuv422(uint32_t fourcc);

/**
 * dmabuf_format_name:
 * @fourcc: a DRM_FORMAT_* code
 * @buf: at least 5 bytes
 *
 * Returns: @buf holding the four printable characters of @fourcc ('?' for
 * unprintable bytes), for messages.
 */
const char *dmabuf_format_name(uint32_t fourcc, char buf[5]);

/*
 * A read-only CPU mapping of a linear single-planar DmabufPlane. Owned by
 * whoever called dmabuf_plane_map() on it; dmabuf_plane_unmap() releases
 * it. It borrows nothing: the mapping stays valid after the plane's fd is
 * closed, but must be unmapped before the holder forgets it.
 */
typedef struct DmabufMapping {
    const uint8_t *data;      /* NULL: not mapped */
    size_t len;               /* bytes mapped from offset 0 of fd[0] */
    uint32_t rows;            /* rows whose pixels lie inside the mapping */
    bool borrowed;            /* the plane's @pixels: nothing to unmap */
} DmabufMapping;

/**
 * dmabuf_plane_map:
 * @p: borrowed; fd[0] is mapped
 * @m: filled on success, zeroed on failure
 *
 * Maps @p read-only (MAP_SHARED, as dma-buf exporters require): offset +
 * stride * (height - 1) + width * cpp bytes, DRM's minimum (the last row
 * need not be padded to the stride). An exporter that maps only whole
 * pages of a buffer whose size is not a page multiple gets the whole
 * pages: m->rows then says how many rows' pixels are readable (may be
 * fewer than p->height). A plane with @pixels is not mapped again: @m
 * borrows them (m->borrowed), and m->rows counts the rows inside
 * pixels_len.
 * Returns: 0, -EINVAL for a tiled (modifier != LINEAR) or empty plane, or
 * the -errno of mmap.
 */
int dmabuf_plane_map(const DmabufPlane *p, DmabufMapping *m);

/** dmabuf_plane_unmap: releases @m (may be unmapped); @m becomes empty. */
void dmabuf_plane_unmap(DmabufMapping *m);

/**
 * dmabuf_plane_begin_read / dmabuf_plane_end_read:
 * @p: borrowed
 *
 * Bracket CPU reads of a mapping of @p with DMA_BUF_IOCTL_SYNC (READ), so
 * that an exporter with caches or a GPU still writing can make the pixels
 * coherent. Best effort: an exporter without sync support is read anyway.
 */
void dmabuf_plane_begin_read(const DmabufPlane *p);
void dmabuf_plane_end_read(const DmabufPlane *p);

#endif /* UI_DMABUF_PLANE_H */
