/*
 * DmabufScanout: shows a device's dma-buf frames on every display of a
 * QEMU console.
 *
 * A device whose scanout is a dma-buf (a vfio vGPU, and in the same way
 * virtio-gpu or vhost-user-gpu blob resources) only produces frames: a
 * primary buffer, a cursor buffer with its hotspot and position, and what
 * changed since the last frame. This module presents them:
 *   - GL displays that import dma-bufs get the buffers themselves
 *     (dpy_gl_scanout_dmabuf; the cursor as dpy_gl_cursor_dmabuf, or as a
 *     QEMUCursor for a display that shows cursor images itself);
 *   - every other display, and screendump, a shadow DisplaySurface filled
 *     from a CPU mapping: only the rows that changed are copied, every
 *     format of dmabuf_format_cpp() is converted, the cursor is a
 *     QEMUCursor.
 * The path is chosen from what the console's displays declare (GL, dma-buf
 * import, DisplayChangeListenerOps.dpy_gl_caps), once per mode and when
 * that set changes: never per buffer or per frame. A mode whose buffers
 * have no fd, only pixels their producer mapped (a vfio region plane,
 * DmabufPlane.pixels), always takes the shadow path. A buffer the chosen
 * path cannot show (a GL display that reads frames back is given a buffer
 * the CPU cannot map) moves the mode to the other path once.
 *
 * Ownership:
 *   - DmabufScanout belongs to the device that made it with
 *     dmabuf_scanout_new(); dmabuf_scanout_free() takes everything off the
 *     console. The console stays the device's.
 *   - DmabufScanoutBuffer belongs to this module; it borrows the device's
 *     DmabufPlane (its fds stay the device's) from dmabuf_scanout_buffer_new()
 *     until dmabuf_scanout_buffer_release(), which takes the buffer off
 *     every display, drops its imports (dpy_gl_release_dmabuf), unmaps it
 *     and frees it. Only after that may the device close the fds. Release
 *     every buffer before dmabuf_scanout_free().
 *   - The QemuDmaBuf given to GL displays is a buffer's own: it borrows the
 *     fds and is freed (never closed) in release, after the console's
 *     scanout no longer points at it.
 *   - The shadow DisplaySurface belongs to the console once given with
 *     dpy_gfx_replace_surface(); it never points into a dma-buf.
 *   - dmabuf_scanout_snapshot() returns a new pixman image: the caller's.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef UI_DMABUF_SCANOUT_H
#define UI_DMABUF_SCANOUT_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <pixman.h>
#include "ui/dmabuf-plane.h"

typedef struct QemuConsole QemuConsole;
typedef struct Error Error;

typedef struct DmabufScanout DmabufScanout;
typedef struct DmabufScanoutBuffer DmabufScanoutBuffer;

/* DmabufScanoutFrame.hot_x/hot_y: the device does not know the hotspot */
#define DMABUF_SCANOUT_HOT_UNKNOWN 0xffffffffu

/*
 * Largest frame screendump converts (x8r8g8b8 bytes): 8192x8192. A larger
 * mode (the engine accepts up to 16384x16384) is refused with an error.
 */
#define DMABUF_SCANOUT_SNAPSHOT_MAX_BYTES (256u << 20)

/* DmabufScanoutFrame.changed */
enum {
    /* another primary buffer or geometry (a flip, a mode change) */
    DMABUF_SCANOUT_PRIMARY_NEW = 1 << 0,
    /* the same primary buffer with new pixels (front-buffer rendering) */
    DMABUF_SCANOUT_PRIMARY_REDRAW = 1 << 1,
    /* another cursor image or hotspot */
    DMABUF_SCANOUT_CURSOR_NEW = 1 << 2,
    /* the cursor moved */
    DMABUF_SCANOUT_CURSOR_MOVED = 1 << 3,
};

/* What the device shows now, and what changed since its last frame. */
typedef struct DmabufScanoutFrame {
    DmabufScanoutBuffer *primary; /* NULL: the scanout is off */
    DmabufScanoutBuffer *cursor;  /* NULL: no cursor plane */
    int32_t cursor_x, cursor_y;   /* the cursor image's top-left */
    uint32_t hot_x, hot_y;        /* hotspot, or DMABUF_SCANOUT_HOT_UNKNOWN */
    uint32_t changed;             /* DMABUF_SCANOUT_* bits */
    uint32_t damage_y, damage_h;  /* rows known to have changed; h 0: any */
} DmabufScanoutFrame;

/* How GL displays get the frames (vfio-pci's x-display-gl) */
typedef enum DmabufScanoutGl {
    /* the dma-bufs, except to a display that reads each frame back */
    DMABUF_SCANOUT_GL_AUTO,
    /* the dma-bufs whenever the displays can import them */
    DMABUF_SCANOUT_GL_ON,
    /* never: a shadow surface for every display */
    DMABUF_SCANOUT_GL_OFF,
} DmabufScanoutGl;

/* The paths, for stats and tests */
typedef enum DmabufScanoutPath {
    DMABUF_SCANOUT_PATH_NONE,      /* nothing chosen yet */
    DMABUF_SCANOUT_PATH_CPU,       /* shadow surface, QEMUCursor */
    DMABUF_SCANOUT_PATH_GL,        /* dma-bufs, dma-buf cursor */
    DMABUF_SCANOUT_PATH_GL_CURSOR_IMAGE, /* dma-bufs, QEMUCursor */
} DmabufScanoutPath;

/**
 * dmabuf_scanout_new:
 * @con: borrowed; the device's graphic console, which must outlive the
 *   returned object
 * @name: the device, in messages (copied)
 * @gl: how GL displays get the frames
 *
 * Returns: a new presenter for @con, showing nothing yet.
 */
DmabufScanout *dmabuf_scanout_new(QemuConsole *con, const char *name,
                                  DmabufScanoutGl gl);

/**
 * dmabuf_scanout_free:
 * @s: may be NULL
 *
 * Takes the frame and the cursor off @con and frees @s. Every buffer must
 * have been released (asserted). While a display blocks the console (a
 * SPICE client holds a draw) nothing can be taken off it; the console
 * must then have been closed first (graphic_console_close()), as a
 * device's finalize does.
 */
void dmabuf_scanout_free(DmabufScanout *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DmabufScanout, dmabuf_scanout_free)

/**
 * dmabuf_scanout_buffer_new:
 * @s: the presenter
 * @plane: borrowed until dmabuf_scanout_buffer_release(): the caller keeps
 *   it (and its fds) unchanged and open until then
 *
 * Returns: the buffer's handle for DmabufScanoutFrame. Imports and
 * mappings are made when a path first needs them.
 */
DmabufScanoutBuffer *dmabuf_scanout_buffer_new(DmabufScanout *s,
                                               const DmabufPlane *plane);

/**
 * dmabuf_scanout_buffer_release:
 * @s: the presenter
 * @b: may be NULL; freed
 *
 * Takes @b off every display (the console no longer points at it), drops
 * the displays' imports, unmaps and frees it. Afterwards the caller may
 * close the plane's fds. If @b was on screen, the display shows nothing
 * until the next frame.
 */
void dmabuf_scanout_buffer_release(DmabufScanout *s, DmabufScanoutBuffer *b);

/**
 * dmabuf_scanout_show:
 * @s: the presenter
 * @f: borrowed; the buffers in it must be live
 *
 * Shows @f on every display of the console. Never prints more than once
 * per condition; a buffer that cannot be shown leaves the last good frame.
 */
void dmabuf_scanout_show(DmabufScanout *s, const DmabufScanoutFrame *f);

/**
 * dmabuf_scanout_refresh:
 * @s: the presenter
 *
 * The display's refresh (GraphicHwOps.gfx_update): the primary buffer may
 * have new pixels that no plane query can tell about. Cheap when nothing
 * changed.
 */
void dmabuf_scanout_refresh(DmabufScanout *s);

/**
 * dmabuf_scanout_busy:
 *
 * Returns: true while a GL display still works on the last frame (a SPICE
 * client has not acknowledged its draw): the device may wait a little
 * before it shows the next one. Frames shown meanwhile are not lost: the
 * console is left alone until the display unblocks, then given the newest
 * frame, and screendump shows the newest frame at once.
 */
bool dmabuf_scanout_busy(DmabufScanout *s);

/**
 * dmabuf_scanout_reset:
 * @s: the presenter
 *
 * The device was reset: the frame and the cursor go off the displays. The
 * buffers stay valid until released.
 */
void dmabuf_scanout_reset(DmabufScanout *s);

/**
 * dmabuf_scanout_snapshot:
 * @s: the presenter
 * @errp: error object
 *
 * Returns: a new x8r8g8b8 image of the frame on screen with the cursor
 * composited at its place, as a user sees it (for screendump); or NULL
 * with @errp set: no frame, a buffer the CPU cannot read, a frame larger
 * than DMABUF_SCANOUT_SNAPSHOT_MAX_BYTES.
 */
pixman_image_t *dmabuf_scanout_snapshot(DmabufScanout *s, Error **errp);

/* The path in use now */
DmabufScanoutPath dmabuf_scanout_path(const DmabufScanout *s);
const char *dmabuf_scanout_path_name(DmabufScanoutPath p);

/* Counters, for the device's stats */
typedef struct DmabufScanoutStats {
    uint64_t path_changes;   /* choices that changed the path */
    uint64_t frames;         /* frames shown (primary new or redrawn) */
    uint64_t shadow_copies;  /* shadow refreshes */
    uint64_t shadow_rows;    /* rows that differed and were copied */
    uint64_t shadow_updates; /* damage rectangles reported */
    uint64_t map_failures;   /* buffers the CPU could not map */
    uint64_t not_shown;      /* frames no path could show */
    uint64_t cursor_defines; /* cursor images given to the displays */
    uint64_t buffers;        /* live DmabufScanoutBuffers */
} DmabufScanoutStats;

const DmabufScanoutStats *dmabuf_scanout_stats(const DmabufScanout *s);

/**
 * dmabuf_scanout_format_pixman:
 * @fourcc: a DRM_FORMAT_* code
 *
 * Returns: the pixman format with the same memory layout for each format
 * of dmabuf_format_cpp(), else 0.
 */
pixman_format_code_t dmabuf_scanout_format_pixman(uint32_t fourcc);

#endif /* UI_DMABUF_SCANOUT_H */
