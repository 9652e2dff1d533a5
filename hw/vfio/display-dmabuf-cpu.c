/*
 * The CPU presenter of the vfio dma-buf console (display-dmabuf-present.h):
 * for displays without GL (VNC, -display none, gtk and SPICE without GL)
 * and screendump.
 *
 * One console surface per mode, a shadow that keeps its address across
 * flips. Each flip, and each redraw at the display's rate, compares the
 * buffer on screen with it row by row through a read-only mapping
 * (bracketed by DMA_BUF_IOCTL_SYNC), copies the rows that differ and
 * reports only those as damage. A display never sees its surface replaced
 * on a flip (VNC would drop its pending update and resend everything), and
 * an idle or cursor-only screen costs no update at all. The cursor plane
 * becomes a QEMUCursor (dpy_cursor_define) and dpy_mouse_set; the SPICE
 * presenter shares that (vfio_dmabuf_cursor_show), and every presenter
 * the screendump snapshot (vfio_dmabuf_snapshot).
 *
 * Ownership: per buffer, a CpuBuf (presenter_data) owns the read-only
 * mapping; .release unmaps it. The shadow surface belongs to the console
 * once given to dpy_gfx_replace_surface(); CpuState.shadow is a borrowed
 * pointer, valid until this file replaces the surface again. The shadow
 * never points into a dma-buf, so a buffer may close at any time.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"

#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/timer.h"
#include "ui/console.h"
#include "ui/qemu-pixman.h"
#include "pci.h"
#include "vfio-display.h"
#include "hw/vfio/display-dmabuf-present.h"
#include "trace.h"

/*
 * Differing rows closer than this are reported as one damage rectangle:
 * fewer rectangles for the display, a few unchanged rows sent at worst.
 */
#define SHADOW_DAMAGE_GAP 16
/*
 * A display that refreshed (gfx_update) within this long is watching: a
 * flip is copied at once. Otherwise (VNC without a client never refreshes)
 * the copy waits for the next refresh or screendump, and costs nothing
 * meanwhile. Longer than VNC's slowest refresh with a client (3 s).
 */
#define SHADOW_WATCH_MS 3500
/*
 * A refresh this soon after a copy skips its compare: while the guest
 * flips, every frame was just copied; only front-buffer rendering (no
 * flips) needs the refresh to look at the pixels.
 */
#define SHADOW_FRESH_MS 30

/* per primary buffer: its mapping, kept while the buffer is cached */
typedef struct CpuBuf {
    DmabufMapping map;
    bool failed;                /* mapping tried and failed: not retried */
} CpuBuf;

typedef struct CpuState {
    DisplaySurface *shadow;     /* borrowed from the console, see above */
    bool stale;                 /* a flip not copied yet (nobody watched) */
    int64_t pulled_ms;          /* last display refresh */
    int64_t copied_ms;          /* last shadow refresh */
    bool cursor_shown;          /* dpy_mouse_set(visible) is on */
    bool map_warned;
    uint64_t copies;            /* shadow refreshes */
    uint64_t rows;              /* rows that differed and were copied */
    uint64_t updates;           /* damage rectangles reported */
} CpuState;

static void *present_cpu_init(VFIODmabufConsole *c)
{
    CpuState *s = g_new0(CpuState, 1);

    s->pulled_ms = INT64_MIN / 2;
    s->copied_ms = INT64_MIN / 2;
    return s;
}

/*
 * The read-only mapping of @buf, or NULL when it cannot be read by the CPU
 * (tiled, or an exporter that refuses mmap: pristine mbochs), which is
 * reported once per console and not retried for this buffer.
 */
static const DmabufMapping *present_cpu_map(VFIODmabufConsole *c,
                                    const VFIODmabufBuffer *buf)
{
    CpuState *s = c->pstate;
    CpuBuf *cb = buf->presenter_data;
    int ret;

    if (!cb) {
        cb = g_new0(CpuBuf, 1);
        vfio_display_dmabuf_set_presenter_data(c->engine, buf, cb);
    }
    if (cb->map.data) {
        return &cb->map;
    }
    if (cb->failed) {
        return NULL;
    }
    ret = dmabuf_plane_map(&buf->plane, &cb->map);
    if (ret < 0) {
        cb->failed = true;
        trace_vfio_dmabuf_console_map_failed(buf->id, ret);
        if (!s->map_warned) {
            s->map_warned = true;
            if (buf->plane.modifier) {
                warn_report("vfio-display-dmabuf: a tiled dma-buf (modifier "
                            "0x%" PRIx64 ") needs a GL display",
                            buf->plane.modifier);
            } else {
                warn_report("vfio-display-dmabuf: cannot map the dma-buf for "
                            "a display without GL (%s); use a GL display",
                            g_strerror(-ret));
            }
        }
        return NULL;
    }
    return &cb->map;
}

static void present_cpu_release(VFIODmabufConsole *c, VFIODmabufBuffer *buf)
{
    CpuBuf *cb = buf->presenter_data;

    if (cb) {
        dmabuf_plane_unmap(&cb->map);
        g_free(cb);
        buf->presenter_data = NULL;
    }
}

/* drop the shadow: the console shows its placeholder */
static void shadow_drop(VFIODmabufConsole *c)
{
    CpuState *s = c->pstate;

    if (s->shadow) {
        dpy_gfx_replace_surface(c->con, NULL);
        s->shadow = NULL;
    }
}

/*
 * Copy the rows of @buf that differ from the shadow and report them as
 * damage. A new mode (size or format) gets a new shadow, copied and
 * damaged in full. Returns false when @buf cannot be read by the CPU (the
 * shadow stays as it is: the last good frame).
 */
static bool shadow_refresh(VFIODmabufConsole *c, const VFIODmabufBuffer *buf)
{
    CpuState *s = c->pstate;
    const DmabufPlane *p = &buf->plane;
    pixman_format_code_t fmt = qemu_drm_format_to_pixman(p->fourcc);
    const DmabufMapping *m = present_cpu_map(c, buf);
    uint32_t rows, row_bytes, y, band = UINT32_MAX, last = 0;
    const uint8_t *src;
    bool full = false;
    uint8_t *dst;
    int dst_stride;

    if (!m || !fmt || !m->rows) {
        return false;
    }
    src = m->data + p->offset[0];
    rows = m->rows;
    row_bytes = p->width * (PIXMAN_FORMAT_BPP(fmt) / 8);
    if (!s->shadow || surface_width(s->shadow) != p->width ||
        surface_height(s->shadow) != rows ||
        surface_format(s->shadow) != fmt) {
        pixman_image_t *img = pixman_image_create_bits(fmt, p->width, rows,
                                                       NULL, 0);

        if (!img) {
            return false;
        }
        s->shadow = qemu_create_displaysurface_pixman(img);
        pixman_image_unref(img); /* the surface holds its own reference */
        dpy_gfx_replace_surface(c->con, s->shadow);
        full = true;
    }
    dst = surface_data(s->shadow);
    dst_stride = surface_stride(s->shadow);

    dmabuf_plane_begin_read(p);
    for (y = 0; y < rows; y++) {
        const uint8_t *sr = src + (size_t)y * p->stride[0];
        uint8_t *dr = dst + (size_t)y * dst_stride;

        if (!full && memcmp(dr, sr, row_bytes) == 0) {
            continue;
        }
        memcpy(dr, sr, row_bytes);
        s->rows++;
        if (full) {
            continue;
        }
        if (band != UINT32_MAX && y - last > SHADOW_DAMAGE_GAP) {
            dpy_gfx_update(c->con, 0, band, p->width, last + 1 - band);
            s->updates++;
            band = UINT32_MAX;
        }
        if (band == UINT32_MAX) {
            band = y;
        }
        last = y;
    }
    dmabuf_plane_end_read(p);
    s->copies++;
    s->stale = false;
    s->copied_ms = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    if (full) {
        dpy_gfx_update_full(c->con);
        s->updates++;
    } else if (band != UINT32_MAX) {
        dpy_gfx_update(c->con, 0, band, p->width, last + 1 - band);
        s->updates++;
    }
    return true;
}

/*
 * The cursor plane as a QEMUCursor (ARGB8888; other cursor formats are not
 * shown), read through a mapping made for this one copy: a new cursor
 * image or hotspot is rare, and the buffer's presenter slot stays free
 * for the presenter (the GL presenters keep their QemuDmaBuf there).
 */
static void define_cursor(VFIODmabufConsole *c, const VFIODmabufBuffer *cur,
                          const VFIODmabufCursor *pos)
{
    const DmabufPlane *p = &cur->plane;
    DmabufMapping m;
    QEMUCursor *qc;
    uint32_t y;
    int ret;

    if (p->fourcc != qemu_pixman_to_drm_format(PIXMAN_a8r8g8b8)) {
        trace_vfio_dmabuf_console_cursor_skipped(cur->id, "not ARGB8888");
        return;
    }
    ret = dmabuf_plane_map(p, &m);
    if (ret < 0 || m.rows < p->height) {
        trace_vfio_dmabuf_console_cursor_skipped(cur->id, "cannot map");
        dmabuf_plane_unmap(&m);
        return;
    }
    qc = cursor_alloc(p->width, p->height);
    if (qc) {
        qc->hot_x = pos->hot_x == VFIO_DMABUF_HOTSPOT_UNKNOWN ? 0 : pos->hot_x;
        qc->hot_y = pos->hot_y == VFIO_DMABUF_HOTSPOT_UNKNOWN ? 0 : pos->hot_y;
        dmabuf_plane_begin_read(p);
        for (y = 0; y < p->height; y++) {
            memcpy(&qc->data[y * p->width],
                   m.data + p->offset[0] + (size_t)y * p->stride[0],
                   p->width * 4);
        }
        dmabuf_plane_end_read(p);
        dpy_cursor_define(c->con, qc);
        cursor_unref(qc);
    }
    dmabuf_plane_unmap(&m);
}

void vfio_dmabuf_cursor_show(VFIODmabufConsole *c, unsigned int ev,
                             bool *shown)
{
    const VFIODmabufBuffer *cur = vfio_display_dmabuf_cursor(c->engine);
    const VFIODmabufCursor *pos = vfio_display_dmabuf_cursor_pos(c->engine);

    if ((ev & VFIO_DMABUF_EV_CURSOR_NEW) && cur) {
        define_cursor(c, cur, pos);
    }
    if ((ev & VFIO_DMABUF_EV_CURSOR_GONE) && *shown) {
        vfio_dmabuf_cursor_hide(c, shown);
    }
    if (cur && (ev & (VFIO_DMABUF_EV_CURSOR_NEW |
                      VFIO_DMABUF_EV_CURSOR_MOVED))) {
        /* the image's top-left, as virtio-gpu passes it and spice expects */
        dpy_mouse_set(c->con, pos->x, pos->y, true);
        *shown = true;
    }
}

void vfio_dmabuf_cursor_hide(VFIODmabufConsole *c, bool *shown)
{
    if (*shown) {
        dpy_mouse_set(c->con, 0, 0, false);
        *shown = false;
    }
}

static void present_cpu_show(VFIODmabufConsole *c, unsigned int ev)
{
    CpuState *s = c->pstate;
    const VFIODmabufBuffer *pri = vfio_display_dmabuf_primary(c->engine);

    if ((ev & VFIO_DMABUF_EV_NEW_SCANOUT) && pri) {
        if (qemu_clock_get_ms(QEMU_CLOCK_REALTIME) - s->pulled_ms <=
            SHADOW_WATCH_MS) {
            shadow_refresh(c, pri);
        } else {
            s->stale = true;
        }
    }
    if (ev & VFIO_DMABUF_EV_SCANOUT_GONE) {
        shadow_drop(c);
        s->stale = false;
    }
    vfio_dmabuf_cursor_show(c, ev, &s->cursor_shown);
}

static void present_cpu_redraw(VFIODmabufConsole *c,
                               const VFIODmabufBuffer *pri)
{
    CpuState *s = c->pstate;
    int64_t now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);

    s->pulled_ms = now;
    if (s->stale || !s->shadow || now - s->copied_ms >= SHADOW_FRESH_MS) {
        shadow_refresh(c, pri); /* damage only where the pixels changed */
    }
}

static void present_cpu_reset(VFIODmabufConsole *c)
{
    CpuState *s = c->pstate;

    vfio_dmabuf_cursor_hide(c, &s->cursor_shown);
    shadow_drop(c);
}

/*
 * The frame on screen as a user sees it, for screendump of a dma-buf
 * scanout (GraphicHwOps.snapshot): the primary plane read through a
 * mapping made for this one copy, converted to x8r8g8b8, with the cursor
 * plane composited at its place. A buffer the CPU cannot read is an error
 * that says why, never a black image.
 */
pixman_image_t *vfio_dmabuf_snapshot(VFIODmabufConsole *c, Error **errp)
{
    const VFIODmabufBuffer *pri = vfio_display_dmabuf_primary(c->engine);
    const VFIODmabufBuffer *cur = vfio_display_dmabuf_cursor(c->engine);
    const VFIODmabufCursor *pos = vfio_display_dmabuf_cursor_pos(c->engine);
    pixman_image_t *img, *src;
    pixman_format_code_t fmt;
    DmabufMapping m;
    int ret;

    if (!pri) {
        error_setg(errp, "the device shows no frame");
        return NULL;
    }
    fmt = qemu_drm_format_to_pixman(pri->plane.fourcc);
    ret = dmabuf_plane_map(&pri->plane, &m);
    if (ret < 0 || !fmt) {
        error_setg(errp, "the frame cannot be read by the CPU (%s)",
                   pri->plane.modifier ? "a tiled dma-buf" :
                   !fmt ? "unknown format" : g_strerror(-ret));
        dmabuf_plane_unmap(&m);
        return NULL;
    }
    img = pixman_image_create_bits(PIXMAN_x8r8g8b8, pri->plane.width,
                                   pri->plane.height, NULL, 0);
    src = pixman_image_create_bits(fmt, pri->plane.width, m.rows,
                                   (uint32_t *)(m.data + pri->plane.offset[0]),
                                   pri->plane.stride[0]);
    dmabuf_plane_begin_read(&pri->plane);
    pixman_image_composite(PIXMAN_OP_SRC, src, NULL, img, 0, 0, 0, 0, 0, 0,
                           pri->plane.width, m.rows);
    dmabuf_plane_end_read(&pri->plane);
    pixman_image_unref(src);
    dmabuf_plane_unmap(&m);

    if (cur && cur->plane.fourcc == qemu_pixman_to_drm_format(PIXMAN_a8r8g8b8)
        && dmabuf_plane_map(&cur->plane, &m) == 0) {
        /* DRM cursor planes are premultiplied, as pixman blends */
        src = pixman_image_create_bits(PIXMAN_a8r8g8b8, cur->plane.width,
                                       m.rows,
                                       (uint32_t *)(m.data +
                                                    cur->plane.offset[0]),
                                       cur->plane.stride[0]);
        dmabuf_plane_begin_read(&cur->plane);
        pixman_image_composite(PIXMAN_OP_OVER, src, NULL, img, 0, 0, 0, 0,
                               pos->x, pos->y, cur->plane.width, m.rows);
        dmabuf_plane_end_read(&cur->plane);
        pixman_image_unref(src);
        dmabuf_plane_unmap(&m);
    }
    return img;
}

static void present_cpu_stats(VFIODmabufConsole *c, GString *out)
{
    CpuState *s = c->pstate;

    g_string_append_printf(out, " shadow_copies=%" PRIu64 " shadow_rows=%"
                           PRIu64 " shadow_updates=%" PRIu64,
                           s->copies, s->rows, s->updates);
}

const VFIODmabufPresenter vfio_dmabuf_present_cpu = {
    .name = "cpu-shadow",
    .init = present_cpu_init,
    .show = present_cpu_show,
    .redraw = present_cpu_redraw,
    .release = present_cpu_release,
    .reset = present_cpu_reset,
    .stats = present_cpu_stats,
};
