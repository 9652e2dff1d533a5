/*
 * QEMU glue for the VFIO display dma-buf engine: a graphic console fed by
 * hw/vfio/display-dmabuf.c. Thin on purpose: the engine decides, this file
 * translates its events into console calls.
 *
 * - GL displays (egl-headless, gtk gl=on, spice gl=on) get the dma-bufs
 *   through dpy_gl_scanout_dmabuf / dpy_gl_cursor_dmabuf.
 * - Displays without GL (VNC, -display none, gtk and SPICE without GL,
 *   screendump) get one console surface per mode, a shadow that keeps its
 *   address across flips. Each flip, and each redraw at the display's
 *   rate, copies only the rows that differ from the read-only CPU mapping
 *   of the dma-buf (bracketed by DMA_BUF_IOCTL_SYNC) and reports only
 *   those rows as damage. A display never sees its surface replaced on a
 *   flip (VNC would drop its pending update and resend everything), and
 *   an idle or cursor-only screen costs no update at all.
 *   The cursor is a QEMUCursor built from the cursor plane.
 *
 * Ownership: the engine owns every dma-buf fd. Per buffer this file owns
 * one ConsoleBuf (in VFIODmabufBuffer.presenter_data): the QemuDmaBuf
 * wrapper (which borrows the engine's fd and is never closed here) or the
 * CPU mapping. Both go in the engine's release hook, after the console has
 * stopped using them. The shadow surface belongs to the console once
 * handed over with dpy_gfx_replace_surface(); this file keeps a borrowed
 * pointer (shadow) that is valid until it replaces the surface itself.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"

#include <linux/dma-buf.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/timer.h"
#include "qom/object.h"
#include "system/system.h"
#include "ui/console.h"
#include "ui/qemu-pixman.h"
#include "hw/vfio/display-dmabuf.h"
#include "pci.h"
#include "vfio-display.h"
#include "trace.h"

/* Bounds of the x-display-* properties (0 keeps the engine's default). */
#define VFIO_DMABUF_PROP_MAX_MS   10000
#define VFIO_DMABUF_PROP_MAX_KEEP 64

typedef struct ConsoleBuf {
    QemuDmaBuf *qbuf;           /* GL path; borrows the engine's fd */
    void *map;                  /* CPU path; MAP_FAILED if none */
    size_t map_len;
    uint32_t map_rows;          /* rows the mapping covers */
    bool map_failed;            /* tried and failed: not retried */
} ConsoleBuf;

struct VFIODmabufConsole {
    VFIOPCIDevice *vdev;
    VFIODisplayDmabuf *engine;
    QEMUTimer *timer;
    bool gl;                    /* the display has GL: pass dma-bufs */
    int devfd;                  /* borrowed from vdev; ops opaque */
    /* what the console shows right now (borrowed from the engine) */
    DisplaySurface *shadow;              /* CPU path; owned by the console */
    uint64_t shadow_copies;              /* copies into the shadow */
    uint64_t shadow_rows;                /* rows that differed and moved */
    uint64_t shadow_updates;             /* damage rectangles reported */
    const VFIODmabufBuffer *gl_scanout;  /* GL path: dpy_gl_scanout_dmabuf */
    const VFIODmabufBuffer *gl_cursor;   /* GL path: dpy_gl_cursor_dmabuf */
    bool cpu_cursor;                     /* CPU path: dpy_mouse_set on */
    bool map_warned;
};

static QemuConsole *con_of(VFIODmabufConsole *c)
{
    return c->vdev->dpy->con;
}

static ConsoleBuf *console_buf(const VFIODmabufBuffer *buf)
{
    VFIODmabufBuffer *b = (VFIODmabufBuffer *)buf;

    if (!b->presenter_data) {
        ConsoleBuf *cb = g_new0(ConsoleBuf, 1);

        cb->map = MAP_FAILED;
        b->presenter_data = cb;
    }
    return b->presenter_data;
}

static QemuDmaBuf *gl_buf(const VFIODmabufBuffer *buf)
{
    ConsoleBuf *cb = console_buf(buf);
    const DmabufPlane *p = &buf->plane;

    if (!cb->qbuf) {
        cb->qbuf = qemu_dmabuf_new(p->width, p->height, p->offset, p->stride,
                                   0, 0, p->width, p->height, p->fourcc,
                                   p->modifier, p->fd, p->n_fds,
                                   false, false);
    }
    return cb->qbuf;
}

/*
 * Map a linear dma-buf for reading. Returns the mapping or NULL; a buffer
 * that cannot be mapped (pristine mbochs exports read-only fds that refuse
 * mmap) is reported once and not retried.
 */
static const uint8_t *cpu_map(VFIODmabufConsole *c, const VFIODmabufBuffer *buf)
{
    ConsoleBuf *cb = console_buf(buf);
    const DmabufPlane *p = &buf->plane;
    size_t len, page = qemu_real_host_page_size();

    if (cb->map != MAP_FAILED) {
        return cb->map;
    }
    if (cb->map_failed) {
        return NULL;
    }
    if (p->modifier != 0) {
        cb->map_failed = true;
        trace_vfio_dmabuf_console_map_failed(buf->id, -EINVAL);
        if (!c->map_warned) {
            warn_report("vfio-display-dmabuf: a tiled dma-buf (modifier "
                        "0x%" PRIx64 ") needs a GL display", p->modifier);
            c->map_warned = true;
        }
        return NULL;
    }
    len = (size_t)p->stride[0] * p->height;
    cb->map = mmap(NULL, len, PROT_READ, MAP_SHARED, p->fd[0], 0);
    if (cb->map == MAP_FAILED && errno == EINVAL && len > page) {
        /* some exporters only map whole pages of a non page-sized buffer */
        len &= ~(page - 1);
        cb->map = mmap(NULL, len, PROT_READ, MAP_SHARED, p->fd[0], 0);
    }
    if (cb->map == MAP_FAILED) {
        int err = errno;

        cb->map_failed = true;
        trace_vfio_dmabuf_console_map_failed(buf->id, -err);
        if (!c->map_warned) {
            warn_report("vfio-display-dmabuf: cannot map the dma-buf for a "
                        "display without GL (%s); use a GL display",
                        g_strerror(err));
            c->map_warned = true;
        }
        return NULL;
    }
    cb->map_len = len;
    cb->map_rows = len / p->stride[0];
    return cb->map;
}

/* engine release hook: the console lets go of @buf, then it is closed */
static void buf_release(void *opaque, VFIODmabufBuffer *buf)
{
    VFIODmabufConsole *c = opaque;
    ConsoleBuf *cb = buf->presenter_data;

    if (!cb) {
        return;
    }
    /* the console must not keep showing (or pointing at) this buffer */
    if (c->gl_scanout == buf) {
        dpy_gl_scanout_disable(con_of(c));
        c->gl_scanout = NULL;
    }
    if (c->gl_cursor == buf) {
        dpy_gl_cursor_dmabuf(con_of(c), NULL, false, 0, 0);
        c->gl_cursor = NULL;
    }
    if (cb->qbuf) {
        dpy_gl_release_dmabuf(con_of(c), cb->qbuf);
        qemu_dmabuf_free(cb->qbuf); /* does not close: the engine does */
    }
    if (cb->map != MAP_FAILED) {
        munmap(cb->map, cb->map_len);
    }
    g_free(cb);
    buf->presenter_data = NULL;
}

/* ------------------------------------------------------------------ */

/*
 * The pointer position for dpy_mouse_set: the plane's top-left plus the
 * hotspot, in 64 bits (the engine bounds both, so the result fits an int).
 */
static int pointer_coord(int32_t pos, uint32_t hot)
{
    int64_t v = pos;

    if (hot != VFIO_DMABUF_HOTSPOT_UNKNOWN) {
        v += hot;
    }
    return v;
}

static void show_gl(VFIODmabufConsole *c, unsigned int ev)
{
    QemuConsole *con = con_of(c);
    const VFIODmabufBuffer *pri = vfio_display_dmabuf_primary(c->engine);
    const VFIODmabufBuffer *cur = vfio_display_dmabuf_cursor(c->engine);
    const VFIODmabufCursor *pos = vfio_display_dmabuf_cursor_pos(c->engine);

    if ((ev & VFIO_DMABUF_EV_SCANOUT_GONE) && c->gl_scanout) {
        dpy_gl_scanout_disable(con);
        c->gl_scanout = NULL;
    }
    if ((ev & VFIO_DMABUF_EV_NEW_SCANOUT) && pri) {
        /*
         * An off-screen GL display (egl-headless) reads frames back into
         * the console surface: give it the frame's size first.
         */
        qemu_console_resize(con, pri->plane.width, pri->plane.height);
        dpy_gl_scanout_dmabuf(con, gl_buf(pri));
        c->gl_scanout = pri;
    }
    if ((ev & VFIO_DMABUF_EV_CURSOR_GONE) && c->gl_cursor) {
        dpy_gl_cursor_dmabuf(con, NULL, false, 0, 0);
        c->gl_cursor = NULL;
    }
    if ((ev & VFIO_DMABUF_EV_CURSOR_NEW) && cur) {
        bool have_hot = pos->hot_x != VFIO_DMABUF_HOTSPOT_UNKNOWN &&
                        pos->hot_y != VFIO_DMABUF_HOTSPOT_UNKNOWN;

        dpy_gl_cursor_dmabuf(con, gl_buf(cur), have_hot,
                             have_hot ? pos->hot_x : 0,
                             have_hot ? pos->hot_y : 0);
        c->gl_cursor = cur;
    }
    if (cur && (ev & (VFIO_DMABUF_EV_CURSOR_NEW |
                      VFIO_DMABUF_EV_CURSOR_MOVED))) {
        /* the GL displays take the plane's top-left, clamped on screen */
        dpy_gl_cursor_position(con, MAX(pos->x, 0), MAX(pos->y, 0));
    }
    /* a flip or a cursor change now; same-buffer redraws in gfx_update */
    if (pri && (ev & (VFIO_DMABUF_EV_NEW_SCANOUT | VFIO_DMABUF_EV_CURSOR_NEW |
                      VFIO_DMABUF_EV_CURSOR_MOVED |
                      VFIO_DMABUF_EV_CURSOR_GONE))) {
        dpy_gl_update(con, 0, 0, pri->plane.width, pri->plane.height);
    }
}

static void define_cursor(VFIODmabufConsole *c, const VFIODmabufBuffer *cur,
                          const VFIODmabufCursor *pos)
{
    const DmabufPlane *p = &cur->plane;
    const uint8_t *src = cpu_map(c, cur);
    struct dma_buf_sync sync;
    QEMUCursor *qc;
    uint32_t y;

    /* QEMUCursor holds ARGB8888; other cursor formats are not shown */
    if (!src || p->fourcc != qemu_pixman_to_drm_format(PIXMAN_a8r8g8b8) ||
        console_buf(cur)->map_rows < p->height) {
        return;
    }
    qc = cursor_alloc(p->width, p->height);
    if (!qc) {
        return;
    }
    qc->hot_x = pos->hot_x == VFIO_DMABUF_HOTSPOT_UNKNOWN ? 0 : pos->hot_x;
    qc->hot_y = pos->hot_y == VFIO_DMABUF_HOTSPOT_UNKNOWN ? 0 : pos->hot_y;
    sync.flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ;
    ioctl(p->fd[0], DMA_BUF_IOCTL_SYNC, &sync); /* best effort */
    for (y = 0; y < p->height; y++) {
        memcpy(&qc->data[y * p->width], src + (size_t)y * p->stride[0],
               p->width * 4);
    }
    sync.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ;
    ioctl(p->fd[0], DMA_BUF_IOCTL_SYNC, &sync);
    dpy_cursor_define(con_of(c), qc);
    cursor_unref(qc);
}

/*
 * Rows closer than this are reported as one damage rectangle: fewer
 * rectangles for the display, a few unchanged rows sent at worst.
 */
#define SHADOW_DAMAGE_GAP 16

/* drop the shadow: the console shows its placeholder */
static void shadow_drop(VFIODmabufConsole *c)
{
    if (c->shadow) {
        dpy_gfx_replace_surface(con_of(c), NULL);
        c->shadow = NULL;
    }
}

/*
 * Copy the rows of @buf that differ from the shadow and report them as
 * damage. A new mode (size or format) gets a new shadow, copied and
 * damaged in full. Returns false when @buf cannot be read by the CPU (the
 * shadow is left as it is: the last good frame stays).
 */
static bool shadow_refresh(VFIODmabufConsole *c, const VFIODmabufBuffer *buf)
{
    const DmabufPlane *p = &buf->plane;
    pixman_format_code_t fmt = qemu_drm_format_to_pixman(p->fourcc);
    const uint8_t *src = cpu_map(c, buf);
    uint32_t rows, row_bytes, y, band = UINT32_MAX, last = 0;
    struct dma_buf_sync sync;
    bool full = false;
    uint8_t *dst;
    int dst_stride;

    if (!src || !fmt) {
        return false;
    }
    rows = MIN(p->height, console_buf(buf)->map_rows);
    row_bytes = p->width * (PIXMAN_FORMAT_BPP(fmt) / 8);
    if (!c->shadow || surface_width(c->shadow) != p->width ||
        surface_height(c->shadow) != rows ||
        surface_format(c->shadow) != fmt) {
        pixman_image_t *img = pixman_image_create_bits(fmt, p->width, rows,
                                                       NULL, 0);

        if (!img) {
            return false;
        }
        c->shadow = qemu_create_displaysurface_pixman(img);
        pixman_image_unref(img);  /* the surface holds its own reference */
        dpy_gfx_replace_surface(con_of(c), c->shadow);
        full = true;
    }
    dst = surface_data(c->shadow);
    dst_stride = surface_stride(c->shadow);

    sync.flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ;
    ioctl(p->fd[0], DMA_BUF_IOCTL_SYNC, &sync); /* best effort */
    for (y = 0; y < rows; y++) {
        const uint8_t *s = src + (size_t)y * p->stride[0];
        uint8_t *d = dst + (size_t)y * dst_stride;

        if (!full && memcmp(d, s, row_bytes) == 0) {
            continue;
        }
        memcpy(d, s, row_bytes);
        c->shadow_rows++;
        if (full) {
            continue;
        }
        if (band != UINT32_MAX && y - last > SHADOW_DAMAGE_GAP) {
            dpy_gfx_update(con_of(c), 0, band, p->width, last + 1 - band);
            c->shadow_updates++;
            band = UINT32_MAX;
        }
        if (band == UINT32_MAX) {
            band = y;
        }
        last = y;
    }
    sync.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ;
    ioctl(p->fd[0], DMA_BUF_IOCTL_SYNC, &sync);
    c->shadow_copies++;
    if (full) {
        dpy_gfx_update_full(con_of(c));
        c->shadow_updates++;
    } else if (band != UINT32_MAX) {
        dpy_gfx_update(con_of(c), 0, band, p->width, last + 1 - band);
        c->shadow_updates++;
    }
    return true;
}

static void show_cpu(VFIODmabufConsole *c, unsigned int ev)
{
    QemuConsole *con = con_of(c);
    const VFIODmabufBuffer *pri = vfio_display_dmabuf_primary(c->engine);
    const VFIODmabufBuffer *cur = vfio_display_dmabuf_cursor(c->engine);
    const VFIODmabufCursor *pos = vfio_display_dmabuf_cursor_pos(c->engine);

    if ((ev & VFIO_DMABUF_EV_NEW_SCANOUT) && pri) {
        shadow_refresh(c, pri);
    }
    if (ev & VFIO_DMABUF_EV_SCANOUT_GONE) {
        shadow_drop(c);
    }
    if ((ev & VFIO_DMABUF_EV_CURSOR_NEW) && cur) {
        define_cursor(c, cur, pos);
    }
    if ((ev & VFIO_DMABUF_EV_CURSOR_GONE) && c->cpu_cursor) {
        dpy_mouse_set(con, 0, 0, false);
        c->cpu_cursor = false;
    }
    if (cur && (ev & (VFIO_DMABUF_EV_CURSOR_NEW |
                      VFIO_DMABUF_EV_CURSOR_MOVED))) {
        /* the console wants the pointer (hotspot) position */
        dpy_mouse_set(con, pointer_coord(pos->x, pos->hot_x),
                      pointer_coord(pos->y, pos->hot_y), true);
        c->cpu_cursor = true;
    }
}

static void poll_tick(void *opaque)
{
    VFIODmabufConsole *c = opaque;
    int64_t now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    unsigned int ev;

    if (c->gl && qemu_console_is_gl_blocked(con_of(c))) {
        /* the display still works on the last frame (spice gl): wait */
        timer_mod(c->timer, now + VFIO_DMABUF_REFRESH_MIN_MS);
        return;
    }
    ev = vfio_display_dmabuf_update(c->engine, now);
    if (c->gl) {
        show_gl(c, ev);
    } else {
        show_cpu(c, ev);
    }
    timer_mod(c->timer, now + vfio_display_dmabuf_next_interval_ms(c->engine));
}

/*
 * UI refresh, at the display's rate. The engine polls on its own timer and
 * shows flips at once; here the buffer on screen is redrawn, because a
 * guest may draw into it without flipping (front-buffer rendering) and no
 * plane query can tell. Before the first scanout: ramfb.
 */
static void console_gfx_update(void *opaque)
{
    VFIOPCIDevice *vdev = opaque;
    VFIODisplay *dpy = vdev->dpy;
    VFIODmabufConsole *c = dpy->dmabuf;
    const VFIODmabufBuffer *pri = vfio_display_dmabuf_primary(c->engine);

    if (!pri) {
        if (dpy->ramfb) {
            ramfb_display_update(dpy->con, dpy->ramfb);
        }
        return;
    }
    if (c->gl_scanout == pri && !qemu_console_is_gl_blocked(dpy->con)) {
        dpy_gl_update(dpy->con, 0, 0, pri->plane.width, pri->plane.height);
    } else if (!c->gl && c->shadow) {
        shadow_refresh(c, pri); /* damage only where the pixels changed */
    }
}

static int console_get_flags(void *opaque)
{
    VFIOPCIDevice *vdev = opaque;

    return vdev->dpy->dmabuf->gl ? GRAPHIC_FLAGS_GL : GRAPHIC_FLAGS_NONE;
}

static const GraphicHwOps console_ops = {
    .get_flags = console_get_flags,
    .gfx_update = console_gfx_update,
    .ui_info = vfio_display_edid_ui_info,
};

static char *stats_str(VFIODmabufConsole *c)
{
    const VFIODisplayDmabufStats *s = vfio_display_dmabuf_stats(c->engine);

    return g_strdup_printf(
        "path=%s ticks=%" PRIu64 " queries=%" PRIu64
        " query_transient=%" PRIu64 " query_errors=%" PRIu64
        " planes_empty=%" PRIu64 " planes_refused=%" PRIu64
        " gets=%" PRIu64 " get_errors=%" PRIu64 " cache_hits=%" PRIu64
        " cache_misses=%" PRIu64 " geometry_changes=%" PRIu64
        " evictions=%" PRIu64 " flips_seen=%" PRIu64
        " frames_reported=%" PRIu64 " cursor_changes=%" PRIu64
        " cursor_moves=%" PRIu64 " resets=%" PRIu64 " fds_open=%" PRIu64
        " cached=%u interval_ms=%u shadow_copies=%" PRIu64
        " shadow_rows=%" PRIu64 " shadow_updates=%" PRIu64,
        c->gl ? "gl-dmabuf" : "cpu-shadow", s->ticks, s->queries,
        s->query_transient, s->query_errors, s->planes_empty,
        s->planes_refused, s->gets, s->get_errors, s->cache_hits,
        s->cache_misses, s->geometry_changes, s->evictions, s->flips_seen,
        s->frames_reported, s->cursor_changes, s->cursor_moves, s->resets,
        s->fds_open, vfio_display_dmabuf_cached(c->engine),
        vfio_display_dmabuf_next_interval_ms(c->engine), c->shadow_copies,
        c->shadow_rows, c->shadow_updates);
}

static char *stats_get(Object *obj, Error **errp)
{
    VFIOPCIDevice *vdev = VFIO_PCI_DEVICE(obj);
    VFIODmabufConsole *c = vdev->dpy ? vdev->dpy->dmabuf : NULL;

    if (!c) {
        error_setg(errp, "no dma-buf display");
        return NULL;
    }
    return stats_str(c);
}

bool vfio_dmabuf_console_init(VFIOPCIDevice *vdev, Error **errp)
{
    VFIODisplayDmabufConfig cfg;
    VFIODmabufConsole *c;
    VFIODisplay *dpy;

    /* the device's x-display-* properties; 0 keeps the engine's default */
    if (vdev->display_refresh_min_ms > VFIO_DMABUF_PROP_MAX_MS ||
        vdev->display_refresh_max_ms > VFIO_DMABUF_PROP_MAX_MS ||
        vdev->display_cache_keep > VFIO_DMABUF_PROP_MAX_KEEP) {
        error_setg(errp, "vfio-display-dmabuf: x-display-refresh-*-ms must "
                   "be at most %u, x-display-cache-keep at most %u",
                   VFIO_DMABUF_PROP_MAX_MS, VFIO_DMABUF_PROP_MAX_KEEP);
        return false;
    }
    vfio_display_dmabuf_config_default(&cfg);
    if (vdev->display_refresh_min_ms) {
        cfg.refresh_min_ms = vdev->display_refresh_min_ms;
    }
    if (vdev->display_refresh_max_ms) {
        cfg.refresh_max_ms = vdev->display_refresh_max_ms;
    }
    if (vdev->display_cache_keep) {
        cfg.cache_keep = vdev->display_cache_keep;
    }

    vdev->dpy = dpy = g_new0(VFIODisplay, 1);
    dpy->dmabuf = c = g_new0(VFIODmabufConsole, 1);
    c->vdev = vdev;
    c->devfd = vdev->vbasedev.fd;
    c->gl = display_opengl;
    c->engine = vfio_display_dmabuf_new(vfio_display_dmabuf_ioctl_ops(),
                                        &c->devfd, &cfg);
    vfio_display_dmabuf_set_release(c->engine, buf_release, c);
    dpy->con = graphic_console_init(DEVICE(vdev), 0, &console_ops, vdev);
    trace_vfio_dmabuf_console_init(vdev->vbasedev.name, c->gl);

    if (!object_property_find(OBJECT(vdev), "x-display-dmabuf-stats")) {
        object_property_add_str(OBJECT(vdev), "x-display-dmabuf-stats",
                                stats_get, NULL);
    }
    if (vdev->enable_ramfb) {
        dpy->ramfb = ramfb_setup(vdev->use_legacy_x86_rom, errp);
        if (!dpy->ramfb) {
            return false;
        }
    }
    if (!vfio_display_edid_init(vdev, errp)) {
        return false;
    }
    c->timer = timer_new_ms(QEMU_CLOCK_REALTIME, poll_tick, c);
    timer_mod(c->timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME));
    return true;
}

void vfio_dmabuf_console_reset(VFIODisplay *dpy)
{
    VFIODmabufConsole *c = dpy ? dpy->dmabuf : NULL;

    if (!c) {
        return;
    }
    if (c->cpu_cursor) {
        dpy_mouse_set(dpy->con, 0, 0, false);
        c->cpu_cursor = false;
    }
    /* the release hook takes every buffer off the console, then closes */
    vfio_display_dmabuf_reset(c->engine);
    shadow_drop(c);
    dpy_gfx_update_full(dpy->con);
}

void vfio_dmabuf_console_finalize(VFIODisplay *dpy)
{
    VFIODmabufConsole *c = dpy->dmabuf;

    if (!c) {
        return;
    }
    if (c->timer) {
        timer_free(c->timer);
    }
    vfio_display_dmabuf_free(c->engine);
    g_free(c);
    dpy->dmabuf = NULL;
}
