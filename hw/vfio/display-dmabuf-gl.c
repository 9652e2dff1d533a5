/*
 * The GL presenter of the vfio dma-buf console (display-dmabuf-present.h):
 * for displays that import dma-bufs (egl-headless, gtk gl=on). The buffers
 * themselves go to the display: dpy_gl_scanout_dmabuf for the primary
 * plane, dpy_gl_cursor_dmabuf + dpy_gl_cursor_position for the cursor, no
 * copy.
 *
 * Ownership: per buffer, a QemuDmaBuf wrapper (presenter_data) that
 * borrows the engine's fd: .release takes the buffer off the console,
 * tells the display to drop its import (dpy_gl_release_dmabuf) and frees
 * the wrapper with qemu_dmabuf_free(), which does not close the fd; the
 * engine closes it afterwards.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"

#include "ui/console.h"
#include "pci.h"
#include "vfio-display.h"
#include "hw/vfio/display-dmabuf-present.h"

typedef struct GlState {
    /* what the console shows right now (borrowed from the engine) */
    const VFIODmabufBuffer *scanout;
    const VFIODmabufBuffer *cursor;
} GlState;

static void *present_gl_init(VFIODmabufConsole *c)
{
    return g_new0(GlState, 1);
}

QemuDmaBuf *vfio_dmabuf_gl_buf(VFIODmabufConsole *c,
                               const VFIODmabufBuffer *buf)
{
    const DmabufPlane *p = &buf->plane;
    QemuDmaBuf *qbuf = buf->presenter_data;

    if (!qbuf) {
        qbuf = qemu_dmabuf_new(p->width, p->height, p->offset, p->stride,
                               0, 0, p->width, p->height, p->fourcc,
                               p->modifier, p->fd, p->n_fds, false, false);
        vfio_display_dmabuf_set_presenter_data(c->engine, buf, qbuf);
    }
    return qbuf;
}

void vfio_dmabuf_gl_buf_free(VFIODmabufConsole *c, VFIODmabufBuffer *buf)
{
    QemuDmaBuf *qbuf = buf->presenter_data;

    if (qbuf) {
        dpy_gl_release_dmabuf(c->con, qbuf);
        qemu_dmabuf_free(qbuf); /* does not close: the engine does */
        buf->presenter_data = NULL;
    }
}

static void present_gl_release(VFIODmabufConsole *c, VFIODmabufBuffer *buf)
{
    GlState *s = c->pstate;

    /* the console must not keep showing (or pointing at) this buffer */
    if (s->scanout == buf) {
        dpy_gl_scanout_disable(c->con);
        s->scanout = NULL;
    }
    if (s->cursor == buf) {
        dpy_gl_cursor_dmabuf(c->con, NULL, false, 0, 0);
        s->cursor = NULL;
    }
    vfio_dmabuf_gl_buf_free(c, buf);
}

static void present_gl_show(VFIODmabufConsole *c, unsigned int ev)
{
    GlState *s = c->pstate;
    const VFIODmabufBuffer *pri = vfio_display_dmabuf_primary(c->engine);
    const VFIODmabufBuffer *cur = vfio_display_dmabuf_cursor(c->engine);
    const VFIODmabufCursor *pos = vfio_display_dmabuf_cursor_pos(c->engine);

    if ((ev & VFIO_DMABUF_EV_SCANOUT_GONE) && s->scanout) {
        dpy_gl_scanout_disable(c->con);
        s->scanout = NULL;
    }
    if ((ev & VFIO_DMABUF_EV_NEW_SCANOUT) && pri) {
        /*
         * An off-screen GL display (egl-headless) reads frames back into
         * the console surface: give it the frame's size first.
         */
        qemu_console_resize(c->con, pri->plane.width, pri->plane.height);
        dpy_gl_scanout_dmabuf(c->con, vfio_dmabuf_gl_buf(c, pri));
        s->scanout = pri;
    }
    if ((ev & VFIO_DMABUF_EV_CURSOR_GONE) && s->cursor) {
        dpy_gl_cursor_dmabuf(c->con, NULL, false, 0, 0);
        s->cursor = NULL;
    }
    if ((ev & VFIO_DMABUF_EV_CURSOR_NEW) && cur) {
        bool have_hot = pos->hot_x != VFIO_DMABUF_HOTSPOT_UNKNOWN &&
                        pos->hot_y != VFIO_DMABUF_HOTSPOT_UNKNOWN;

        dpy_gl_cursor_dmabuf(c->con, vfio_dmabuf_gl_buf(c, cur), have_hot,
                             have_hot ? pos->hot_x : 0,
                             have_hot ? pos->hot_y : 0);
        s->cursor = cur;
    }
    if (cur && (ev & (VFIO_DMABUF_EV_CURSOR_NEW |
                      VFIO_DMABUF_EV_CURSOR_MOVED))) {
        /* the GL displays take the plane's top-left, clamped on screen */
        dpy_gl_cursor_position(c->con, MAX(pos->x, 0), MAX(pos->y, 0));
    }
    /* a flip or a cursor change now; same-buffer redraws in .redraw */
    if (pri && (ev & (VFIO_DMABUF_EV_NEW_SCANOUT | VFIO_DMABUF_EV_CURSOR_NEW |
                      VFIO_DMABUF_EV_CURSOR_MOVED |
                      VFIO_DMABUF_EV_CURSOR_GONE))) {
        dpy_gl_update(c->con, 0, 0, pri->plane.width, pri->plane.height);
    }
}

static void present_gl_redraw(VFIODmabufConsole *c,
                              const VFIODmabufBuffer *pri)
{
    GlState *s = c->pstate;

    if (s->scanout == pri && !qemu_console_is_gl_blocked(c->con)) {
        dpy_gl_update(c->con, 0, 0, pri->plane.width, pri->plane.height);
    }
}

static bool present_gl_busy(VFIODmabufConsole *c)
{
    return qemu_console_is_gl_blocked(c->con);
}

const VFIODmabufPresenter vfio_dmabuf_present_gl = {
    .name = "gl-dmabuf",
    .init = present_gl_init,
    .show = present_gl_show,
    .redraw = present_gl_redraw,
    .release = present_gl_release,
    .busy = present_gl_busy,
};
