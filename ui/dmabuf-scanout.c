/*
 * DmabufScanout: a device's dma-buf frames on every display of a console
 * (include/ui/dmabuf-scanout.h has the API and who owns what).
 *
 * Two paths:
 *   - cpu: one shadow DisplaySurface (x8r8g8b8) per mode that keeps its
 *     address across flips. Each new frame, and each display refresh, is
 *     compared with it row by row through a read-only mapping (bracketed
 *     by DMA_BUF_IOCTL_SYNC); only the rows that differ are copied
 *     (converted when the format is not x8r8g8b8's layout) and reported as
 *     damage. VNC never has its surface switched under it on a flip, and an
 *     idle or cursor-only screen costs no update. The cursor becomes a
 *     QEMUCursor (dpy_cursor_define + dpy_mouse_set at the image's
 *     top-left).
 *   - gl: the dma-bufs themselves (dpy_gl_scanout_dmabuf, dpy_gl_update),
 *     the cursor as dpy_gl_cursor_dmabuf, or as a QEMUCursor when a display
 *     shows cursor images itself (DPY_GL_CURSOR_IMAGE: SPICE's cursor
 *     channel; a dma-buf cursor would be blended into a copy of every frame
 *     there).
 * The path follows the displays' declared capabilities, re-chosen only
 * when those or the mode (size, format) change, and once within a mode
 * when the cpu path meets a buffer it cannot map while a GL display could
 * import it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"

#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/timer.h"
#include "ui/console.h"
#include "standard-headers/drm/drm_fourcc.h"
#include "ui/dmabuf-plane.h"
#include "ui/dmabuf-scanout.h"
#include "trace.h"

/*
 * Differing rows closer than this are reported as one damage rectangle:
 * fewer rectangles for the display, a few unchanged rows sent at worst.
 */
#define SHADOW_DAMAGE_GAP 16
/*
 * A display that refreshed within this long is watching: a new frame is
 * copied at once. Otherwise (VNC without a client never refreshes) the copy
 * waits for the next refresh or screendump. Longer than VNC's slowest
 * refresh with a client (3 s).
 */
#define SHADOW_WATCH_MS 3500
/*
 * A refresh this soon after a copy skips its compare: while the guest
 * flips, every frame was just copied; only front-buffer rendering (no
 * flips) needs the refresh to look at the pixels.
 */
#define SHADOW_FRESH_MS 30

/*
 * One row of a source format converted to a 32-bit destination format.
 * The source row is copied into an aligned buffer first: pixman wants
 * 4-byte aligned strides, a device's stride (RGB888 at an odd width) need
 * not be. When source and destination share a layout, no copy is made.
 */
typedef struct RowConv {
    uint32_t fourcc;           /* the source's DRM format */
    bool yuv;                  /* packed YUV 4:2:2, converted by yuv_row() */
    pixman_format_code_t src_fmt, dst_fmt;
    uint32_t width;
    size_t src_bytes;          /* bytes of one source row */
    bool same;                 /* same layout: the source row is used as is */
    uint32_t *src_buf;         /* aligned copy of one source row */
    uint32_t *dst_buf;         /* one converted row */
    pixman_image_t *src_img;   /* over src_buf */
    pixman_image_t *dst_img;   /* over dst_buf */
} RowConv;

struct DmabufScanoutBuffer {
    DmabufScanout *owner;
    const DmabufPlane *plane;  /* borrowed from the device */
    QemuDmaBuf *qbuf;          /* given to GL displays; borrows the fds */
    DmabufMapping map;         /* the cpu path's read-only mapping */
    int map_err;               /* < 0: mapping failed, not retried */
};

struct DmabufScanout {
    QemuConsole *con;          /* borrowed */
    char *name;
    DmabufScanoutGl gl;
    DmabufScanoutPath path;
    bool path_reported[DMABUF_SCANOUT_PATH_GL_CURSOR_IMAGE + 1];

    /* what the path was chosen for */
    uint32_t displays;         /* displays_signature() */
    bool have_mode;
    uint32_t mode_w, mode_h, mode_fourcc;
    bool mode_cpu_failed;      /* the cpu path could not map in this mode */
    bool mode_cpu_only;        /* the frames have no fd (region planes) */

    /* the device's frame (borrowed buffers) */
    DmabufScanoutFrame frame;

    /* what the console shows */
    DmabufScanoutBuffer *gl_scanout; /* the console's scanout.dmabuf */
    DmabufScanoutBuffer *gl_cursor;  /* given with dpy_gl_cursor_dmabuf */
    DmabufScanoutBuffer *cursor_defined; /* its image as a QEMUCursor */
    uint32_t cursor_hot_x, cursor_hot_y; /* ... with this hotspot */
    bool cursor_shown;         /* dpy_mouse_set(on) */
    /*
     * gl path while a display is GL-blocked (a SPICE client has not
     * acknowledged its draw): the console is not touched; what is owed is
     * given when it unblocks (flush_gl)
     */
    bool gl_scanout_owed;      /* the frame's primary is not scanned out */
    /*
     * The console's scanout while the display is GL-blocked and the buffer
     * it showed was released or taken off: spice-server aborts on any
     * scanout change while its client holds a draw, so the console is
     * pointed at this copy (our own dup of the fds) until it unblocks.
     */
    QemuDmaBuf *retired;
    bool gl_update_owed;       /* a dpy_gl_update is owed */
    /* the tiled primary a DPY_GL_LINEAR_ONLY display was not given */
    DmabufScanoutBuffer *gl_refused;
    DisplaySurface *shadow;    /* borrowed from the console */
    RowConv shadow_conv;
    bool stale;                /* a frame not copied yet */
    int64_t pulled_ms;         /* last display refresh */
    int64_t copied_ms;         /* last shadow copy */

    /* each condition said once */
    bool warned_map, warned_format, warned_linear_only;

    DmabufScanoutStats stats;
};

static const struct {
    uint32_t fourcc;
    pixman_format_code_t pixman;
} formats[] = {
    { DRM_FORMAT_XRGB8888, PIXMAN_x8r8g8b8 },
    { DRM_FORMAT_ARGB8888, PIXMAN_a8r8g8b8 },
    { DRM_FORMAT_XBGR8888, PIXMAN_x8b8g8r8 },
    { DRM_FORMAT_ABGR8888, PIXMAN_a8b8g8r8 },
    { DRM_FORMAT_RGBX8888, PIXMAN_r8g8b8x8 },
    { DRM_FORMAT_BGRX8888, PIXMAN_b8g8r8x8 },
    { DRM_FORMAT_RGBA8888, PIXMAN_r8g8b8a8 },
    { DRM_FORMAT_BGRA8888, PIXMAN_b8g8r8a8 },
    { DRM_FORMAT_XRGB2101010, PIXMAN_x2r10g10b10 },
    { DRM_FORMAT_ARGB2101010, PIXMAN_a2r10g10b10 },
    { DRM_FORMAT_XBGR2101010, PIXMAN_x2b10g10r10 },
    { DRM_FORMAT_RGB888, PIXMAN_r8g8b8 },
    { DRM_FORMAT_BGR888, PIXMAN_b8g8r8 },
    { DRM_FORMAT_RGB565, PIXMAN_r5g6b5 },
    { DRM_FORMAT_BGR565, PIXMAN_b5g6r5 },
    /*
     * packed YUV 4:2:2: pixman's yuy2 only gives the size of a pixel (16
     * bits); the rows are converted by yuv_row(), whatever the byte order
     */
    { DRM_FORMAT_YUYV, PIXMAN_yuy2 },
    { DRM_FORMAT_YVYU, PIXMAN_yuy2 },
    { DRM_FORMAT_UYVY, PIXMAN_yuy2 },
    { DRM_FORMAT_VYUY, PIXMAN_yuy2 },
};

pixman_format_code_t dmabuf_scanout_format_pixman(uint32_t fourcc)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(formats); i++) {
        if (formats[i].fourcc == fourcc) {
            return formats[i].pixman;
        }
    }
    return 0;
}

const char *dmabuf_scanout_path_name(DmabufScanoutPath p)
{
    switch (p) {
    case DMABUF_SCANOUT_PATH_CPU:
        return "cpu-shadow";
    case DMABUF_SCANOUT_PATH_GL:
        return "gl-dmabuf";
    case DMABUF_SCANOUT_PATH_GL_CURSOR_IMAGE:
        return "gl-dmabuf-cursor-image";
    default:
        return "none";
    }
}

/* ------------------------------------------------------------------ */
/* row conversion */

/* x8r8g8b8 and a8r8g8b8 share their layout; alpha is ignored on screen */
static bool same_layout(pixman_format_code_t a, pixman_format_code_t b)
{
    if (a == b) {
        return true;
    }
    return (a == PIXMAN_x8r8g8b8 || a == PIXMAN_a8r8g8b8) &&
           b == PIXMAN_x8r8g8b8;
}

static void rowconv_finish(RowConv *rc)
{
    if (rc->src_img) {
        pixman_image_unref(rc->src_img);
    }
    if (rc->dst_img) {
        pixman_image_unref(rc->dst_img);
    }
    g_free(rc->src_buf);
    g_free(rc->dst_buf);
    memset(rc, 0, sizeof(*rc));
}

static uint8_t clamp_u8(int v)
{
    return v < 0 ? 0 : v > 255 ? 255 : v;
}

/*
 * One row of packed YUV 4:2:2 (@fourcc: YUYV, YVYU, UYVY or VYUY; @width
 * even) to x8r8g8b8: BT.601, limited range (Y 16-235, Cb/Cr 16-240), as
 * GVT-g's guests scan out video overlays and consoles; 8-bit fixed point:
 *   R = (298 (Y - 16) + 409 (V - 128) + 128) >> 8
 *   G = (298 (Y - 16) - 100 (U - 128) - 208 (V - 128) + 128) >> 8
 *   B = (298 (Y - 16) + 516 (U - 128) + 128) >> 8
 * each clamped to 0-255.
 */
static void yuv_row(uint32_t fourcc, const uint8_t *src, uint32_t *dst,
                    uint32_t width)
{
    /* byte offsets of Y0, U, Y1, V in each four-byte pair */
    unsigned int y0, u, y1, v;
    uint32_t x;

    switch (fourcc) {
    case DRM_FORMAT_YVYU:
        y0 = 0, v = 1, y1 = 2, u = 3;
        break;
    case DRM_FORMAT_UYVY:
        u = 0, y0 = 1, v = 2, y1 = 3;
        break;
    case DRM_FORMAT_VYUY:
        v = 0, y0 = 1, u = 2, y1 = 3;
        break;
    default: /* DRM_FORMAT_YUYV */
        y0 = 0, u = 1, y1 = 2, v = 3;
        break;
    }
    for (x = 0; x < width; x += 2, src += 4) {
        int d = src[u] - 128, e = src[v] - 128;
        int ys[2] = { 298 * (src[y0] - 16), 298 * (src[y1] - 16) };
        unsigned int i;

        for (i = 0; i < 2 && x + i < width; i++) {
            uint32_t r = clamp_u8((ys[i] + 409 * e + 128) >> 8);
            uint32_t g = clamp_u8((ys[i] - 100 * d - 208 * e + 128) >> 8);
            uint32_t b = clamp_u8((ys[i] + 516 * d + 128) >> 8);

            dst[x + i] = 0xff000000u | r << 16 | g << 8 | b;
        }
    }
}

/*
 * Converting rows of DRM format @fourcc to @dst (32 bpp). false: no CPU
 * conversion for it (an unknown format).
 */
static bool rowconv_init(RowConv *rc, uint32_t fourcc,
                         pixman_format_code_t dst, uint32_t width)
{
    pixman_format_code_t src = dmabuf_scanout_format_pixman(fourcc);
    size_t src_stride, dst_stride;

    memset(rc, 0, sizeof(*rc));
    if (!src || !width) {
        return false;
    }
    rc->fourcc = fourcc;
    rc->yuv = dmabuf_format_is_yuv422(fourcc);
    rc->dst_fmt = dst;
    rc->width = width;
    rc->src_bytes = (size_t)width * (PIXMAN_FORMAT_BPP(src) / 8);
    if (rc->yuv) {
        /* yuv_row() makes x8r8g8b8 in src_buf; pixman goes on from there */
        src = PIXMAN_x8r8g8b8;
    }
    rc->src_fmt = src;
    rc->same = same_layout(src, dst);
    if (rc->same && !rc->yuv) {
        return true;
    }
    src_stride = rc->yuv ? (size_t)width * 4 : ROUND_UP(rc->src_bytes, 4);
    dst_stride = (size_t)width * 4;
    rc->src_buf = g_malloc0(src_stride);
    rc->dst_buf = g_malloc0(dst_stride);
    rc->src_img = pixman_image_create_bits(src, width, 1, rc->src_buf,
                                           src_stride);
    rc->dst_img = pixman_image_create_bits(dst, width, 1, rc->dst_buf,
                                           dst_stride);
    if (!rc->src_img || !rc->dst_img) {
        rowconv_finish(rc);
        return false;
    }
    return true;
}

/* @src: one source row (any alignment); returns width * 4 bytes */
static const uint8_t *rowconv_run(RowConv *rc, const uint8_t *src)
{
    if (rc->same && !rc->yuv) {
        return src;
    }
    if (rc->yuv) {
        yuv_row(rc->fourcc, src, rc->src_buf, rc->width);
        if (rc->same) {
            return (const uint8_t *)rc->src_buf;
        }
    } else {
        memcpy(rc->src_buf, src, rc->src_bytes);
    }
    pixman_image_composite(PIXMAN_OP_SRC, rc->src_img, NULL, rc->dst_img,
                           0, 0, 0, 0, 0, 0, rc->width, 1);
    return (const uint8_t *)rc->dst_buf;
}

/* ------------------------------------------------------------------ */
/* buffers */

DmabufScanoutBuffer *dmabuf_scanout_buffer_new(DmabufScanout *s,
                                               const DmabufPlane *plane)
{
    DmabufScanoutBuffer *b = g_new0(DmabufScanoutBuffer, 1);

    b->owner = s;
    b->plane = plane;
    s->stats.buffers++;
    return b;
}

/* the QemuDmaBuf of @b for GL displays (made on first use) */
static QemuDmaBuf *buffer_qbuf(DmabufScanoutBuffer *b)
{
    const DmabufPlane *p = b->plane;

    if (!b->qbuf) {
        b->qbuf = qemu_dmabuf_new(p->width, p->height, p->offset, p->stride,
                                  0, 0, p->width, p->height, p->fourcc,
                                  p->modifier, p->fd, p->n_fds, false, false);
    }
    return b->qbuf;
}

/*
 * The read-only mapping of @b, or NULL when the CPU cannot read it (tiled;
 * an exporter that refuses mmap: GVT-g's proxies, pristine mbochs). A
 * failure is not retried for this buffer.
 */
static const DmabufMapping *buffer_map(DmabufScanoutBuffer *b)
{
    int ret;

    if (b->map.data) {
        return &b->map;
    }
    if (b->map_err < 0) {
        return NULL;
    }
    ret = dmabuf_plane_map(b->plane, &b->map);
    if (ret < 0) {
        b->map_err = ret;
        b->owner->stats.map_failures++;
        trace_dmabuf_scanout_map_failed(b->owner->name, b->plane->fourcc,
                                        b->plane->modifier, ret);
        return NULL;
    }
    if (b->map.rows < b->plane->height) {
        trace_dmabuf_scanout_map_short(b->owner->name, b->map.rows,
                                       b->plane->height);
    }
    return &b->map;
}

/*
 * Rows of @p that lie wholly inside its mapping @m: a device's last row
 * need not be padded to the stride (DRM's minimum size), a short buffer
 * has fewer. 0: none.
 */
static uint32_t mapped_rows(const DmabufPlane *p, const DmabufMapping *m,
                            pixman_format_code_t fmt)
{
    size_t row_bytes = (size_t)p->width * (PIXMAN_FORMAT_BPP(fmt) / 8);
    size_t first_end = (size_t)p->offset[0] + row_bytes;

    if (m->len < first_end || p->stride[0] < row_bytes) {
        return 0; /* rows overlap: no geometry a device may give */
    }
    return MIN(MIN(m->rows, p->height),
               (m->len - first_end) / p->stride[0] + 1);
}

/*
 * @b's rows converted to @dst_fmt (32 bpp) into @img, from its top; the
 * number of rows read in *@rows_read. false, with @errp set, when the CPU
 * cannot read @b.
 */
static bool read_rows(DmabufScanoutBuffer *b, pixman_format_code_t dst_fmt,
                      pixman_image_t *img, uint32_t *rows_read,
                      Error **errp)
{
    const DmabufPlane *p = b->plane;
    pixman_format_code_t fmt = dmabuf_scanout_format_pixman(p->fourcc);
    uint8_t *dst = (uint8_t *)pixman_image_get_data(img);
    int dst_stride = pixman_image_get_stride(img);
    const DmabufMapping *m;
    RowConv conv;
    uint32_t rows, y;
    char name[5];

    if (!fmt || !rowconv_init(&conv, p->fourcc, dst_fmt, p->width)) {
        error_setg(errp, "the frame's format %s cannot be converted",
                   dmabuf_format_name(p->fourcc, name));
        return false;
    }
    m = buffer_map(b);
    rows = m ? mapped_rows(p, m, fmt) : 0;
    if (!m) {
        error_setg(errp, "the frame cannot be read by the CPU (%s%s)",
                   p->modifier != DRM_FORMAT_MOD_LINEAR ? "a tiled dma-buf" :
                   "mmap: ", p->modifier != DRM_FORMAT_MOD_LINEAR ? "" :
                   g_strerror(-b->map_err));
    } else if (!rows) {
        error_setg(errp, "the frame's buffer is shorter than its geometry");
    } else {
        dmabuf_plane_begin_read(p);
        for (y = 0; y < rows; y++) {
            memcpy(dst + (size_t)y * dst_stride,
                   rowconv_run(&conv, m->data + p->offset[0] +
                               (size_t)y * p->stride[0]),
                   (size_t)p->width * 4);
        }
        dmabuf_plane_end_read(p);
    }
    rowconv_finish(&conv);
    *rows_read = rows;
    return rows > 0;
}

static void cursor_hide(DmabufScanout *s)
{
    if (s->cursor_shown) {
        dpy_mouse_set(s->con, 0, 0, false);
        s->cursor_shown = false;
    }
    s->cursor_defined = NULL;
}

static void retired_free(DmabufScanout *s)
{
    if (s->retired) {
        dpy_gl_release_dmabuf(s->con, s->retired);
        qemu_dmabuf_close(s->retired); /* our dups */
        qemu_dmabuf_free(s->retired);
        s->retired = NULL;
    }
}

/*
 * The console keeps showing @b's frame through a QemuDmaBuf of our own
 * (dup'ed fds), so that @b's can be freed and its fds closed by the device
 * while nothing may touch spice-server. A pointer swap only: for SPICE,
 * dpy_gl_scanout_dmabuf stores the buffer until the next draw.
 */
static void retire(DmabufScanout *s, DmabufScanoutBuffer *b)
{
    const DmabufPlane *p = b->plane;
    DmabufPlane dup;

    /* a copy exists only while nothing is scanned out (gl_scanout_off) */
    assert(!s->retired);
    if (!dmabuf_plane_dup(&dup, p)) {
        /*
         * Out of fds: the copy gets none (-1), so a display that reads it
         * later gets no fd instead of one the device has closed.
         */
        trace_dmabuf_scanout_retire_failed(s->name, errno);
        dmabuf_plane_init(&dup);
        dup.n_fds = p->n_fds;
    }
    s->retired = qemu_dmabuf_new(p->width, p->height, p->offset, p->stride,
                                 0, 0, p->width, p->height, p->fourcc,
                                 p->modifier, dup.fd, dup.n_fds, false,
                                 false);
    dpy_gl_scanout_dmabuf(s->con, s->retired);
    trace_dmabuf_scanout_retired(s->name);
}

static void gl_scanout_off(DmabufScanout *s)
{
    if (qemu_console_is_gl_blocked(s->con)) {
        /*
         * spice-server aborts on a scanout change while its client holds
         * a draw (red-qxl.cpp: gl_draw_cookie), and the console must never
         * point at a freed QemuDmaBuf: retire, disable once unblocked.
         */
        if (s->gl_scanout && s->gl_scanout->qbuf) {
            retire(s, s->gl_scanout);
        }
        s->gl_scanout = NULL;
        return;
    }
    if (s->gl_scanout || s->retired) {
        dpy_gl_scanout_disable(s->con);
        s->gl_scanout = NULL;
    }
    retired_free(s);
}

static void gl_cursor_off(DmabufScanout *s)
{
    if (s->gl_cursor) {
        dpy_gl_cursor_dmabuf(s->con, NULL, false, 0, 0);
        s->gl_cursor = NULL;
    }
}

void dmabuf_scanout_buffer_release(DmabufScanout *s, DmabufScanoutBuffer *b)
{
    if (!b) {
        return;
    }
    assert(b->owner == s);
    if (s->gl_scanout == b) {
        gl_scanout_off(s);
    }
    if (s->gl_cursor == b) {
        gl_cursor_off(s);
    }
    if (s->cursor_defined == b) {
        s->cursor_defined = NULL; /* the QEMUCursor is a copy: it stays */
    }
    if (s->frame.primary == b) {
        s->frame.primary = NULL;
    }
    if (s->gl_refused == b) {
        s->gl_refused = NULL;
    }
    if (s->frame.cursor == b) {
        s->frame.cursor = NULL;
    }
    if (b->qbuf) {
        dpy_gl_release_dmabuf(s->con, b->qbuf);
        qemu_dmabuf_free(b->qbuf); /* does not close: the device does */
    }
    dmabuf_plane_unmap(&b->map);
    s->stats.buffers--;
    g_free(b);
}

/* ------------------------------------------------------------------ */
/* the cpu path */

static void shadow_drop(DmabufScanout *s)
{
    if (s->shadow) {
        dpy_gfx_replace_surface(s->con, NULL); /* the placeholder */
        s->shadow = NULL;
        rowconv_finish(&s->shadow_conv);
    }
    s->stale = false;
}

static void damage(DmabufScanout *s, uint32_t y, uint32_t h)
{
    dpy_gfx_update(s->con, 0, y, surface_width(s->shadow), h);
    s->stats.shadow_updates++;
}

/*
 * Copies the rows of @b that differ from the shadow (only rows in
 * [@from, @to) are looked at) and reports them as damage. A new mode gets a
 * new shadow, copied and damaged in full. Returns false when the CPU
 * cannot read @b (the shadow keeps the last good frame).
 */
static bool shadow_refresh(DmabufScanout *s, DmabufScanoutBuffer *b,
                           uint32_t from, uint32_t to)
{
    const DmabufPlane *p = b->plane;
    pixman_format_code_t fmt = dmabuf_scanout_format_pixman(p->fourcc);
    const DmabufMapping *m;
    uint32_t rows, y, band = UINT32_MAX, last = 0;
    size_t row_bytes;
    bool full = false;
    uint8_t *dst;
    int dst_stride;

    if (!fmt) {
        if (!s->warned_format) {
            char name[5];

            warn_report("%s: the frame's format %s has no CPU conversion; "
                        "it is not shown without a GL display", s->name,
                        dmabuf_format_name(p->fourcc, name));
            s->warned_format = true;
        }
        return false;
    }
    m = buffer_map(b);
    if (!m) {
        return false;
    }
    rows = mapped_rows(p, m, fmt);
    if (!rows) {
        trace_dmabuf_scanout_map_short(s->name, rows, p->height);
        return false;
    }
    if (!s->shadow || surface_width(s->shadow) != (int)p->width ||
        surface_height(s->shadow) != (int)rows ||
        s->shadow_conv.fourcc != p->fourcc) {
        pixman_image_t *img = pixman_image_create_bits(PIXMAN_x8r8g8b8,
                                                       p->width, rows,
                                                       NULL, 0);
        RowConv conv;

        if (!img) {
            return false;
        }
        if (!rowconv_init(&conv, p->fourcc, PIXMAN_x8r8g8b8, p->width)) {
            pixman_image_unref(img);
            return false;
        }
        rowconv_finish(&s->shadow_conv);
        s->shadow_conv = conv;
        s->shadow = qemu_create_displaysurface_pixman(img);
        pixman_image_unref(img); /* the surface holds its own reference */
        dpy_gfx_replace_surface(s->con, s->shadow);
        full = true;
        trace_dmabuf_scanout_shadow_new(s->name, p->width, rows, p->fourcc);
    }
    dst = surface_data(s->shadow);
    dst_stride = surface_stride(s->shadow);
    row_bytes = (size_t)p->width * 4;
    if (full) {
        from = 0;
        to = rows;
    }
    to = MIN(to, rows);

    dmabuf_plane_begin_read(p);
    for (y = from; y < to; y++) {
        const uint8_t *src = rowconv_run(&s->shadow_conv, m->data +
                                         p->offset[0] +
                                         (size_t)y * p->stride[0]);
        uint8_t *dr = dst + (size_t)y * dst_stride;

        if (!full && memcmp(dr, src, row_bytes) == 0) {
            continue;
        }
        memcpy(dr, src, row_bytes);
        s->stats.shadow_rows++;
        if (full) {
            continue;
        }
        if (band != UINT32_MAX && y - last > SHADOW_DAMAGE_GAP) {
            damage(s, band, last + 1 - band);
            band = UINT32_MAX;
        }
        if (band == UINT32_MAX) {
            band = y;
        }
        last = y;
    }
    dmabuf_plane_end_read(p);
    s->stats.shadow_copies++;
    s->stale = false;
    s->copied_ms = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    if (full) {
        dpy_gfx_update_full(s->con);
        s->stats.shadow_updates++;
    } else if (band != UINT32_MAX) {
        damage(s, band, last + 1 - band);
    }
    return true;
}

/*
 * The cursor plane as a QEMUCursor (converted to ARGB from any format of
 * the table), read through the buffer's mapping. A cursor the CPU cannot
 * read is not shown (traced).
 */
static void cursor_define(DmabufScanout *s, DmabufScanoutBuffer *b,
                          uint32_t hot_x, uint32_t hot_y)
{
    const DmabufPlane *p = b->plane;
    pixman_image_t *img;
    QEMUCursor *qc;
    uint32_t rows = 0;

    if (p->width > UINT16_MAX || p->height > UINT16_MAX) {
        return; /* the engine bounds cursors at 512 */
    }
    qc = cursor_alloc(p->width, p->height);
    if (!qc) {
        return;
    }
    /* the QEMUCursor's pixels, written in place */
    img = pixman_image_create_bits(PIXMAN_a8r8g8b8, p->width, p->height,
                                   qc->data, p->width * 4);
    if (!img || !read_rows(b, PIXMAN_a8r8g8b8, img, &rows, NULL) ||
        rows < p->height) {
        trace_dmabuf_scanout_cursor_skipped(s->name, "cannot read");
    } else {
        qc->hot_x = hot_x == DMABUF_SCANOUT_HOT_UNKNOWN ? 0 : hot_x;
        qc->hot_y = hot_y == DMABUF_SCANOUT_HOT_UNKNOWN ? 0 : hot_y;
        dpy_cursor_define(s->con, qc);
        s->cursor_defined = b;
        s->cursor_hot_x = hot_x;
        s->cursor_hot_y = hot_y;
        s->stats.cursor_defines++;
    }
    if (img) {
        pixman_image_unref(img);
    }
    cursor_unref(qc);
}

/* the frame's cursor as a QEMUCursor + pointer position */
static void cursor_image_show(DmabufScanout *s, uint32_t changed)
{
    const DmabufScanoutFrame *f = &s->frame;

    if (!f->cursor) {
        cursor_hide(s);
        return;
    }
    if ((changed & DMABUF_SCANOUT_CURSOR_NEW) || s->cursor_defined !=
        f->cursor || s->cursor_hot_x != f->hot_x ||
        s->cursor_hot_y != f->hot_y) {
        cursor_define(s, f->cursor, f->hot_x, f->hot_y);
    }
    if (s->cursor_defined == f->cursor &&
        (!s->cursor_shown || (changed & (DMABUF_SCANOUT_CURSOR_NEW |
                                         DMABUF_SCANOUT_CURSOR_MOVED)))) {
        /* the image's top-left, as virtio-gpu passes it and spice expects */
        dpy_mouse_set(s->con, f->cursor_x, f->cursor_y, true);
        s->cursor_shown = true;
    }
}

static bool shadow_watched(DmabufScanout *s)
{
    return qemu_clock_get_ms(QEMU_CLOCK_REALTIME) - s->pulled_ms <=
           SHADOW_WATCH_MS;
}

/* ------------------------------------------------------------------ */
/* choosing the path */

/* what the console's displays declare; a change re-chooses the path */
#define DISPLAYS_GL         (1u << 31)  /* GL, or displays needing none */
#define DISPLAYS_GL_DMABUF  (1u << 30)  /* ... and all of them import */
#define DISPLAYS_CAPS       0xffffu     /* their DPY_GL_* capabilities */

static uint32_t displays_signature(DmabufScanout *s)
{
    uint32_t sig = 0;

    if (console_has_gl(s->con) ||
        (qemu_console_gl_caps(s->con) & DPY_GL_NO_CONTEXT)) {
        sig |= DISPLAYS_GL;
        if (dpy_gl_has_dmabuf(s->con)) {
            sig |= DISPLAYS_GL_DMABUF;
        }
        sig |= qemu_console_gl_caps(s->con) & DISPLAYS_CAPS;
    }
    return sig;
}

static DmabufScanoutPath choose(DmabufScanout *s)
{
    uint32_t caps = s->displays & DISPLAYS_CAPS;

    if (s->mode_cpu_only) {
        return DMABUF_SCANOUT_PATH_CPU; /* nothing a GL display imports */
    }
    if (s->gl == DMABUF_SCANOUT_GL_OFF || !(s->displays & DISPLAYS_GL) ||
        !(s->displays & DISPLAYS_GL_DMABUF)) {
        return DMABUF_SCANOUT_PATH_CPU;
    }
    /*
     * A display that reads every frame back into the console's surface
     * (egl-headless, for VNC and screendump) would import, blit and read
     * back each frame: a buffer the CPU can map goes to the surface
     * directly. One it cannot map moves the mode to the GL path.
     */
    if ((caps & DPY_GL_READS_BACK) && s->gl == DMABUF_SCANOUT_GL_AUTO &&
        !s->mode_cpu_failed) {
        return DMABUF_SCANOUT_PATH_CPU;
    }
    /*
     * Packed YUV: QEMU's GL displays sample a GL_TEXTURE_2D, which EGL
     * gives only for RGB dma-bufs on most drivers (YUV is external-only,
     * and would show black): converted on the CPU while it can map the
     * buffer; one it cannot map moves the mode to GL, where the display
     * tries its own import.
     */
    if (dmabuf_format_is_yuv422(s->mode_fourcc) &&
        s->gl == DMABUF_SCANOUT_GL_AUTO && !s->mode_cpu_failed) {
        return DMABUF_SCANOUT_PATH_CPU;
    }
    if (caps & DPY_GL_CURSOR_IMAGE) {
        return DMABUF_SCANOUT_PATH_GL_CURSOR_IMAGE;
    }
    return DMABUF_SCANOUT_PATH_GL;
}

static void report_path(DmabufScanout *s)
{
    const char *why;

    trace_dmabuf_scanout_path(s->name, dmabuf_scanout_path_name(s->path),
                              s->displays, s->mode_w, s->mode_h);
    if (s->path_reported[s->path]) {
        return; /* one info line per path and console */
    }
    s->path_reported[s->path] = true;
    switch (s->path) {
    case DMABUF_SCANOUT_PATH_GL:
        why = "the display imports the dma-bufs, no copy";
        break;
    case DMABUF_SCANOUT_PATH_GL_CURSOR_IMAGE:
        why = "the display gets the dma-bufs, no copy; the cursor as an "
              "image on its own cursor channel";
        break;
    default:
        if (s->mode_cpu_only) {
            why = "the device's frames are a CPU mapping (a region plane): "
                  "the changed rows of each frame are copied";
        } else if (s->gl == DMABUF_SCANOUT_GL_OFF) {
            why = "x-display-gl=off: the changed rows of each frame are "
                  "copied";
        } else if (s->displays & DPY_GL_READS_BACK) {
            why = "the display would read every frame back: the CPU maps "
                  "the dma-bufs and copies the changed rows of each frame";
        } else if (s->displays & DPY_GL_NO_CONTEXT) {
            why = "the display cannot scan out these dma-bufs: the changed "
                  "rows of each frame are copied";
        } else if (s->displays & DISPLAYS_GL) {
            why = "the GL display cannot import dma-bufs: the changed rows "
                  "of each frame are copied";
        } else {
            why = "a display without GL: the changed rows of each frame "
                  "are copied";
        }
        break;
    }
    info_report("%s: display path %s (%s)", s->name,
                dmabuf_scanout_path_name(s->path), why);
}

/* takes what the old path put on the console off it */
static void path_takedown(DmabufScanout *s)
{
    gl_scanout_off(s);
    gl_cursor_off(s);
    cursor_hide(s);
    shadow_drop(s);
}

static void set_path(DmabufScanout *s, DmabufScanoutPath p)
{
    if (s->path == p) {
        return;
    }
    path_takedown(s);
    s->gl_scanout_owed = false;
    s->gl_update_owed = false;
    s->path = p;
    s->stats.path_changes++;
    report_path(s);
}

/* ------------------------------------------------------------------ */
/* showing a frame */

static void show_gl(DmabufScanout *s, uint32_t changed)
{
    const DmabufScanoutFrame *f = &s->frame;
    DmabufScanoutBuffer *pri = f->primary;
    bool update = false;

    if (!pri) {
        gl_scanout_off(s);
        s->gl_scanout_owed = false;
    } else if ((changed & DMABUF_SCANOUT_PRIMARY_NEW) ||
               s->gl_scanout != pri || s->gl_scanout_owed) {
        if (qemu_console_is_gl_blocked(s->con)) {
            /*
             * A resize or a scanout would reach spice-server while its
             * client still holds the last draw: given when it unblocks.
             * The frame (s->frame) is what screendump shows meanwhile.
             */
            s->gl_scanout_owed = true;
        } else if (pri->plane->modifier != DRM_FORMAT_MOD_LINEAR &&
                   (s->displays & DPY_GL_LINEAR_ONLY)) {
            /* it would be shown as linear garbage: keep the last frame */
            if (s->gl_refused != pri ||
                (changed & DMABUF_SCANOUT_PRIMARY_NEW)) {
                s->gl_refused = pri; /* per frame, not per tick */
                s->stats.not_shown++;
            }
            if (!s->warned_linear_only) {
                warn_report("%s: the display cannot pass the modifier of a "
                            "tiled dma-buf (0x%" PRIx64 ") on; such frames "
                            "are not shown", s->name, pri->plane->modifier);
                s->warned_linear_only = true;
            }
        } else {
            qemu_console_resize(s->con, pri->plane->width,
                                pri->plane->height);
            dpy_gl_scanout_dmabuf(s->con, buffer_qbuf(pri));
            s->gl_scanout = pri;
            s->gl_scanout_owed = false;
            retired_free(s); /* the console points at @pri now */
            s->stats.frames++;
            update = true;
        }
    } else if (changed & DMABUF_SCANOUT_PRIMARY_REDRAW) {
        s->stats.frames++;
        update = true;
    }

    if (s->path == DMABUF_SCANOUT_PATH_GL_CURSOR_IMAGE) {
        cursor_image_show(s, changed);
    } else if (!f->cursor) {
        if (s->gl_cursor) {
            gl_cursor_off(s);
            update = true;
        }
    } else {
        if ((changed & DMABUF_SCANOUT_CURSOR_NEW) || s->gl_cursor !=
            f->cursor) {
            bool have_hot = f->hot_x != DMABUF_SCANOUT_HOT_UNKNOWN &&
                            f->hot_y != DMABUF_SCANOUT_HOT_UNKNOWN;

            dpy_gl_cursor_dmabuf(s->con, buffer_qbuf(f->cursor), have_hot,
                                 have_hot ? f->hot_x : 0,
                                 have_hot ? f->hot_y : 0);
            s->gl_cursor = f->cursor;
            changed |= DMABUF_SCANOUT_CURSOR_MOVED;
        }
        if (changed & DMABUF_SCANOUT_CURSOR_MOVED) {
            /* the GL displays take the image's top-left, on screen */
            dpy_gl_cursor_position(s->con, MAX(f->cursor_x, 0),
                                   MAX(f->cursor_y, 0));
            update = true;
        }
    }
    if (update) {
        s->gl_update_owed = true;
    }
    if (s->gl_update_owed && s->gl_scanout &&
        !qemu_console_is_gl_blocked(s->con)) {
        dpy_gl_update(s->con, 0, 0, s->gl_scanout->plane->width,
                      s->gl_scanout->plane->height);
        s->gl_update_owed = false;
    }
}

static void cpu_cant_show(DmabufScanout *s, DmabufScanoutBuffer *b)
{
    const char *why, *fix;

    s->stats.not_shown++;
    if (b->map_err < 0 && !s->warned_map) {
        s->warned_map = true;
        if (s->gl == DMABUF_SCANOUT_GL_OFF &&
            (s->displays & DISPLAYS_GL_DMABUF)) {
            why = "x-display-gl=off keeps it from the GL display";
            fix = "Drop x-display-gl=off from the device";
        } else if (s->displays & DPY_GL_NO_CONTEXT) {
            why = "the display cannot scan out these dma-bufs";
            fix = "Give -display kms the GPU that made them (GVT-g: the "
                  "host's i915)";
        } else if (s->displays & DISPLAYS_GL) {
            /* e.g. gtk,gl=on whose EGL (a software renderer) lacks it */
            why = "the GL display of this console cannot import dma-bufs "
                  "(its EGL has no dma-buf import)";
            fix = "Run the GL display on a GPU whose EGL imports dma-bufs";
        } else {
            why = "no display of this console imports dma-bufs";
            fix = "Use a display that imports them: -display gtk,gl=on, "
                  "-spice gl=on or -display egl-headless";
        }
        warn_report("%s: the frame cannot be read by the CPU (%s%s) and %s; "
                    "the last good frame stays. %s", s->name,
                    b->plane->modifier != DRM_FORMAT_MOD_LINEAR ?
                    "a tiled dma-buf" : "mmap: ",
                    b->plane->modifier != DRM_FORMAT_MOD_LINEAR ? "" :
                    g_strerror(-b->map_err), why, fix);
    }
}

/*
 * The cpu path could not map @b: a GL display that can import takes the
 * rest of this mode (once per mode, then the choice stands).
 */
static bool cpu_fallback_gl(DmabufScanout *s, DmabufScanoutBuffer *b)
{
    DmabufScanoutPath p;

    if (b->map_err >= 0 || s->mode_cpu_failed) {
        return false;
    }
    s->mode_cpu_failed = true;
    p = choose(s);
    if (p == DMABUF_SCANOUT_PATH_CPU) {
        return false;
    }
    set_path(s, p);
    return true;
}

static void show_cpu(DmabufScanout *s, uint32_t changed)
{
    const DmabufScanoutFrame *f = &s->frame;
    DmabufScanoutBuffer *pri = f->primary;

    if (!pri) {
        shadow_drop(s);
    } else if (changed & (DMABUF_SCANOUT_PRIMARY_NEW |
                          DMABUF_SCANOUT_PRIMARY_REDRAW)) {
        if (shadow_watched(s) || !s->shadow) {
            uint32_t from = 0, to = UINT32_MAX;

            if (!(changed & DMABUF_SCANOUT_PRIMARY_NEW) && f->damage_h) {
                from = f->damage_y;
                to = from + MIN(f->damage_h, UINT32_MAX - from);
            }
            if (shadow_refresh(s, pri, from, to)) {
                s->stats.frames++;
            } else if (cpu_fallback_gl(s, pri)) {
                show_gl(s, changed | DMABUF_SCANOUT_PRIMARY_NEW |
                        DMABUF_SCANOUT_CURSOR_NEW);
                return;
            } else {
                cpu_cant_show(s, pri);
            }
        } else {
            s->stale = true;
        }
    }
    cursor_image_show(s, changed);
}

void dmabuf_scanout_show(DmabufScanout *s, const DmabufScanoutFrame *f)
{
    uint32_t changed = f->changed;
    uint32_t sig = displays_signature(s);
    bool rechoose = s->path == DMABUF_SCANOUT_PATH_NONE || sig != s->displays;

    s->frame = *f;
    if (f->primary) {
        const DmabufPlane *p = f->primary->plane;

        if (!s->have_mode || p->width != s->mode_w ||
            p->height != s->mode_h || p->fourcc != s->mode_fourcc ||
            (p->n_fds == 0) != s->mode_cpu_only) {
            s->have_mode = true;
            s->mode_w = p->width;
            s->mode_h = p->height;
            s->mode_fourcc = p->fourcc;
            s->mode_cpu_failed = false;
            s->mode_cpu_only = p->n_fds == 0;
            rechoose = true;
        }
    }
    s->displays = sig;
    if (rechoose) {
        DmabufScanoutPath p = choose(s);

        if (p != s->path) {
            set_path(s, p);
            /* all is shown anew on the new path */
            changed |= DMABUF_SCANOUT_PRIMARY_NEW | DMABUF_SCANOUT_CURSOR_NEW;
        }
    }
    if (s->path == DMABUF_SCANOUT_PATH_CPU) {
        show_cpu(s, changed);
    } else {
        show_gl(s, changed);
    }
}

void dmabuf_scanout_refresh(DmabufScanout *s)
{
    DmabufScanoutBuffer *pri = s->frame.primary;
    int64_t now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);

    if (s->retired && !pri && !qemu_console_is_gl_blocked(s->con)) {
        gl_scanout_off(s); /* unblocked: the scanout taken off at last */
    }

    if (displays_signature(s) != s->displays) {
        DmabufScanoutFrame f = s->frame;

        /* a display came or went, or learnt it can import: show anew */
        f.changed = 0;
        dmabuf_scanout_show(s, &f);
    }
    if (!pri) {
        return;
    }
    if (s->path == DMABUF_SCANOUT_PATH_CPU) {
        s->pulled_ms = now;
        if (s->stale || !s->shadow || now - s->copied_ms >= SHADOW_FRESH_MS) {
            /* damage only where the pixels changed */
            if (!shadow_refresh(s, pri, 0, UINT32_MAX) &&
                cpu_fallback_gl(s, pri)) {
                show_gl(s, DMABUF_SCANOUT_PRIMARY_NEW |
                        DMABUF_SCANOUT_CURSOR_NEW);
            }
        }
    } else if (!qemu_console_is_gl_blocked(s->con)) {
        if (s->gl_scanout_owed) {
            show_gl(s, 0); /* unblocked: what was owed */
        } else if (s->gl_scanout == pri) {
            dpy_gl_update(s->con, 0, 0, pri->plane->width,
                          pri->plane->height);
            s->gl_update_owed = false;
        }
    }
}

bool dmabuf_scanout_busy(DmabufScanout *s)
{
    return s->path != DMABUF_SCANOUT_PATH_CPU &&
           qemu_console_is_gl_blocked(s->con);
}

void dmabuf_scanout_reset(DmabufScanout *s)
{
    path_takedown(s);
    s->gl_scanout_owed = false;
    s->gl_update_owed = false;
    memset(&s->frame, 0, sizeof(s->frame));
    s->have_mode = false;
    s->mode_cpu_failed = false;
    trace_dmabuf_scanout_reset(s->name);
}

DmabufScanoutPath dmabuf_scanout_path(const DmabufScanout *s)
{
    return s->path;
}

const DmabufScanoutStats *dmabuf_scanout_stats(const DmabufScanout *s)
{
    return &s->stats;
}

DmabufScanout *dmabuf_scanout_new(QemuConsole *con, const char *name,
                                  DmabufScanoutGl gl)
{
    DmabufScanout *s = g_new0(DmabufScanout, 1);

    s->con = con;
    s->name = g_strdup(name);
    s->gl = gl;
    s->pulled_ms = INT64_MIN / 2;
    s->copied_ms = INT64_MIN / 2;
    return s;
}

void dmabuf_scanout_free(DmabufScanout *s)
{
    if (!s) {
        return;
    }
    assert(s->stats.buffers == 0);
    path_takedown(s);
    /*
     * Still blocked, the console was pointed at the retired copy: the
     * caller closed the console first (graphic_console_close, as
     * vfio_display_finalize does), so nothing points at it any more.
     */
    retired_free(s);
    rowconv_finish(&s->shadow_conv);
    g_free(s->name);
    g_free(s);
}

/* ------------------------------------------------------------------ */
/* screendump */

pixman_image_t *dmabuf_scanout_snapshot(DmabufScanout *s, Error **errp)
{
    const DmabufScanoutFrame *f = &s->frame;
    pixman_image_t *img, *cur;
    const DmabufPlane *p;
    uint32_t rows;

    if (!f->primary) {
        error_setg(errp, "the device shows no frame");
        return NULL;
    }
    p = f->primary->plane;
    if ((uint64_t)p->width * p->height * 4 >
        DMABUF_SCANOUT_SNAPSHOT_MAX_BYTES) {
        error_setg(errp, "the frame (%ux%u) is larger than screendump's "
                   "limit of %u MiB", p->width, p->height,
                   DMABUF_SCANOUT_SNAPSHOT_MAX_BYTES >> 20);
        return NULL;
    }
    img = pixman_image_create_bits(PIXMAN_x8r8g8b8, p->width, p->height,
                                   NULL, 0);
    if (!img) {
        error_setg(errp, "no memory for a %ux%u screendump", p->width,
                   p->height);
        return NULL;
    }
    if (!read_rows(f->primary, PIXMAN_x8r8g8b8, img, &rows, errp)) {
        pixman_image_unref(img);
        return NULL;
    }
    if (f->cursor) {
        const DmabufPlane *cp = f->cursor->plane;
        /* the part of the cursor on the frame, in 64 bits: any int32 comes */
        int64_t x0 = MAX(f->cursor_x, 0), y0 = MAX(f->cursor_y, 0);
        int64_t x1 = MIN((int64_t)f->cursor_x + cp->width, p->width);
        int64_t y1 = MIN((int64_t)f->cursor_y + cp->height, p->height);
        uint32_t crows;

        if (x0 >= x1 || y0 >= y1) {
            return img; /* wholly off the frame */
        }
        /* DRM cursor planes are premultiplied, as pixman blends */
        cur = pixman_image_create_bits(PIXMAN_a8r8g8b8, cp->width,
                                       cp->height, NULL, 0);
        if (cur && read_rows(f->cursor, PIXMAN_a8r8g8b8, cur, &crows, NULL)) {
            /* every coordinate here is within the frame: pixman's int16 */
            pixman_image_composite(PIXMAN_OP_OVER, cur, NULL, img,
                                   x0 - f->cursor_x, y0 - f->cursor_y, 0, 0,
                                   x0, y0, x1 - x0, y1 - y0);
        } else {
            trace_dmabuf_scanout_cursor_skipped(s->name, "snapshot");
        }
        if (cur) {
            pixman_image_unref(cur);
        }
    }
    return img;
}
