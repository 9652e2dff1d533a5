/*
 * Stand-in for QEMU's "ui/console.h" (with what it takes from
 * "ui/surface.h" and "ui/dmabuf.h"): the console API that ui/ modules
 * written against QEMU use, with QEMU 10.2's prototypes (plus the
 * DPY_GL_* capabilities of this project's patch 0005). Standalone, the
 * functions are implemented by the unit tests' fake console
 * (tests/unit/fake-console.c), which records every call and the state a
 * QEMU console would hold. Only what those modules and their tests use.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef SHIM_UI_CONSOLE_H
#define SHIM_UI_CONSOLE_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <pixman.h>

typedef struct QemuConsole QemuConsole;

/* ---- ui/surface.h */

#define QEMU_ALLOCATED_FLAG     0x01
#define QEMU_PLACEHOLDER_FLAG   0x02

typedef struct DisplaySurface {
    pixman_image_t *image;
    uint8_t flags;
} DisplaySurface;

/* a surface over @image (which it references); the console frees it */
DisplaySurface *qemu_create_displaysurface_pixman(pixman_image_t *image);

static inline int surface_stride(DisplaySurface *s)
{
    return pixman_image_get_stride(s->image);
}

static inline void *surface_data(DisplaySurface *s)
{
    return pixman_image_get_data(s->image);
}

static inline int surface_width(DisplaySurface *s)
{
    return pixman_image_get_width(s->image);
}

static inline int surface_height(DisplaySurface *s)
{
    return pixman_image_get_height(s->image);
}

/* ---- ui/dmabuf.h */

typedef struct QemuDmaBuf QemuDmaBuf;

QemuDmaBuf *qemu_dmabuf_new(uint32_t width, uint32_t height,
                            const uint32_t *offset, const uint32_t *stride,
                            uint32_t x, uint32_t y,
                            uint32_t backing_width, uint32_t backing_height,
                            uint32_t fourcc, uint64_t modifier,
                            const int32_t *dmabuf_fd, uint32_t num_planes,
                            bool allow_fences, bool y0_top);
void qemu_dmabuf_free(QemuDmaBuf *dmabuf);
/* closes the fds it holds (>= 0) and sets them to -1 */
void qemu_dmabuf_close(QemuDmaBuf *dmabuf);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(QemuDmaBuf, qemu_dmabuf_free);

const int *qemu_dmabuf_get_fds(QemuDmaBuf *dmabuf, int *nfds);
uint32_t qemu_dmabuf_get_width(QemuDmaBuf *dmabuf);
uint32_t qemu_dmabuf_get_height(QemuDmaBuf *dmabuf);
const uint32_t *qemu_dmabuf_get_offsets(QemuDmaBuf *dmabuf, int *noffsets);
const uint32_t *qemu_dmabuf_get_strides(QemuDmaBuf *dmabuf, int *nstrides);
uint32_t qemu_dmabuf_get_num_planes(QemuDmaBuf *dmabuf);
uint32_t qemu_dmabuf_get_fourcc(QemuDmaBuf *dmabuf);
uint64_t qemu_dmabuf_get_modifier(QemuDmaBuf *dmabuf);
uint32_t qemu_dmabuf_get_x(QemuDmaBuf *dmabuf);
uint32_t qemu_dmabuf_get_y(QemuDmaBuf *dmabuf);
uint32_t qemu_dmabuf_get_backing_width(QemuDmaBuf *dmabuf);
uint32_t qemu_dmabuf_get_backing_height(QemuDmaBuf *dmabuf);
bool qemu_dmabuf_get_y0_top(QemuDmaBuf *dmabuf);
bool qemu_dmabuf_get_allow_fences(QemuDmaBuf *dmabuf);

/* ---- ui/console.h */

/* cursor data format is 32bit ARGB (0xAARRGGBB) */
typedef struct QEMUCursor {
    uint16_t            width, height;
    int                 hot_x, hot_y;
    int                 refcount;
    uint32_t            data[];
} QEMUCursor;

/* NULL above 512x512, as QEMU's */
QEMUCursor *cursor_alloc(uint16_t width, uint16_t height);
QEMUCursor *cursor_ref(QEMUCursor *c);
void cursor_unref(QEMUCursor *c);

/*
 * DisplayChangeListenerOps.dpy_gl_caps (patch 0005): what a GL display
 * does with a dma-buf scanout
 */
/* reads every frame back into the console's surface (egl-headless) */
#define DPY_GL_READS_BACK   (1u << 0)
/* shows dpy_cursor_define images itself (a cursor channel: spice) */
#define DPY_GL_CURSOR_IMAGE (1u << 1)
/* cannot pass a modifier on: only linear dma-bufs show right (spice) */
#define DPY_GL_LINEAR_ONLY  (1u << 2)
/* takes dma-buf scanouts to display planes without a GL context (kms) */
#define DPY_GL_NO_CONTEXT   (1u << 3)

void dpy_gfx_update(QemuConsole *con, int x, int y, int w, int h);
void dpy_gfx_update_full(QemuConsole *con);
void dpy_gfx_replace_surface(QemuConsole *con,
                             DisplaySurface *surface);
void dpy_mouse_set(QemuConsole *con, int x, int y, bool on);
void dpy_cursor_define(QemuConsole *con, QEMUCursor *cursor);

void dpy_gl_scanout_disable(QemuConsole *con);
void dpy_gl_scanout_dmabuf(QemuConsole *con,
                           QemuDmaBuf *dmabuf);
void dpy_gl_cursor_dmabuf(QemuConsole *con, QemuDmaBuf *dmabuf,
                          bool have_hot, uint32_t hot_x, uint32_t hot_y);
void dpy_gl_cursor_position(QemuConsole *con,
                            uint32_t pos_x, uint32_t pos_y);
void dpy_gl_release_dmabuf(QemuConsole *con,
                           QemuDmaBuf *dmabuf);
void dpy_gl_update(QemuConsole *con,
                   uint32_t x, uint32_t y, uint32_t w, uint32_t h);

bool console_has_gl(QemuConsole *con);
bool dpy_gl_has_dmabuf(QemuConsole *con);
uint32_t qemu_console_gl_caps(QemuConsole *con);

bool qemu_console_is_gl_blocked(QemuConsole *con);
void qemu_console_resize(QemuConsole *con, int width, int height);

#endif /* SHIM_UI_CONSOLE_H */
