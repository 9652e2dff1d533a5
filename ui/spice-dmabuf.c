/*
 * The SPICE presenter of the vfio dma-buf console
 * (include/hw/vfio/display-dmabuf-present.h), for `-spice gl=on` with a
 * local client.
 *
 * - The primary plane goes to spice-server as a GL scanout without a
 *   copy: dpy_gl_scanout_dmabuf stores our QemuDmaBuf, and the next
 *   dpy_gl_update makes spice-display.c hand spice_qxl_gl_scanout() a dup
 *   of the engine's fd (qemu_dmabuf_dup_fds). spice-server owns that dup
 *   and closes it when the next scanout replaces it; the engine keeps and
 *   closes the original.
 * - The cursor plane goes on SPICE's cursor channel as a cursor image
 *   (dpy_cursor_define, position with dpy_mouse_set), never through
 *   dpy_gl_cursor_dmabuf: that would make QEMU blend it into a copy of
 *   every frame, and the client would get a pointer baked into the picture.
 * - spice-server 0.15.2 passes no modifier with a scanout: a tiled buffer
 *   would be shown as linear garbage, so it is not forwarded (the last
 *   good frame stays; one warning).
 * - While a client has not answered the last draw (gl-draw-done), the
 *   console is blocked and spice-server would drop any scanout: the poll
 *   waits (busy), and a buffer released meanwhile is left to spice-server,
 *   which holds its own dup.
 * - A remote client (-spice port=N,gl=on) with spice-server < 0.15.3 gets
 *   no GL console at all (patches/qemu-10.2/0006): this presenter is not
 *   used, the CPU presenter's 2D path is.
 *
 * Ownership: per buffer, the QemuDmaBuf of display-dmabuf-gl.c
 * (vfio_dmabuf_gl_buf, freed by vfio_dmabuf_gl_buf_free in .release).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"

#include "qemu/error-report.h"
#include "ui/console.h"
#include "hw/vfio/display-dmabuf-present.h"

typedef struct SpiceState {
    const VFIODmabufBuffer *scanout; /* borrowed from the engine */
    bool cursor_shown;
    bool tiled_warned;
} SpiceState;

static void *present_spice_init(VFIODmabufConsole *c)
{
    return g_new0(SpiceState, 1);
}

static void present_spice_finish(VFIODmabufConsole *c)
{
    SpiceState *s = c->pstate;

    vfio_dmabuf_cursor_hide(c, &s->cursor_shown);
}

static void present_spice_release(VFIODmabufConsole *c, VFIODmabufBuffer *buf)
{
    SpiceState *s = c->pstate;

    if (s->scanout == buf) {
        /* blocked: spice-server would drop the disable; it holds a dup */
        if (!qemu_console_is_gl_blocked(c->con)) {
            dpy_gl_scanout_disable(c->con);
        }
        s->scanout = NULL;
    }
    vfio_dmabuf_gl_buf_free(c, buf);
}

static void present_spice_show(VFIODmabufConsole *c, unsigned int ev)
{
    SpiceState *s = c->pstate;
    const VFIODmabufBuffer *pri = vfio_display_dmabuf_primary(c->engine);

    if ((ev & VFIO_DMABUF_EV_SCANOUT_GONE) && s->scanout) {
        dpy_gl_scanout_disable(c->con);
        s->scanout = NULL;
    }
    if ((ev & VFIO_DMABUF_EV_NEW_SCANOUT) && pri) {
        if (pri->plane.modifier) {
            if (!s->tiled_warned) {
                warn_report("vfio-display-dmabuf: spice-server cannot pass "
                            "the modifier of a tiled dma-buf (0x%" PRIx64
                            ") to its client; such frames are not shown",
                            pri->plane.modifier);
                s->tiled_warned = true;
            }
        } else {
            qemu_console_resize(c->con, pri->plane.width, pri->plane.height);
            dpy_gl_scanout_dmabuf(c->con, vfio_dmabuf_gl_buf(c, pri));
            s->scanout = pri;
            dpy_gl_update(c->con, 0, 0, pri->plane.width, pri->plane.height);
        }
    }
    vfio_dmabuf_cursor_show(c, ev, &s->cursor_shown);
}

static void present_spice_redraw(VFIODmabufConsole *c,
                                 const VFIODmabufBuffer *pri)
{
    SpiceState *s = c->pstate;

    /* front-buffer rendering: the same buffer may hold new pixels */
    if (s->scanout == pri && !qemu_console_is_gl_blocked(c->con)) {
        dpy_gl_update(c->con, 0, 0, pri->plane.width, pri->plane.height);
    }
}

static void present_spice_reset(VFIODmabufConsole *c)
{
    SpiceState *s = c->pstate;

    vfio_dmabuf_cursor_hide(c, &s->cursor_shown);
}

static bool present_spice_busy(VFIODmabufConsole *c)
{
    return qemu_console_is_gl_blocked(c->con);
}

const VFIODmabufPresenter vfio_dmabuf_present_spice = {
    .name = "spice-gl",
    .init = present_spice_init,
    .finish = present_spice_finish,
    .show = present_spice_show,
    .redraw = present_spice_redraw,
    .release = present_spice_release,
    .reset = present_spice_reset,
    .busy = present_spice_busy,
};
