/*
 * Unit tests of ui/dmabuf-scanout.c over the fake console
 * (tests/unit/fake-console.c): frames from a fake device (memfd-backed
 * buffers that map like dma-bufs) and what a user would see: the shadow
 * surface's pixels, the damage reported, the cursor, what GL displays are
 * given, screendump's picture; and that the console never points at a
 * freed QemuDmaBuf, that the path is chosen once per mode, and that the
 * device's fds are never closed.
 *
 * The expected pixels come from this file's own packer, written from the
 * DRM fourcc definitions (drm_fourcc.h: "[31:0] x:R:G:B 8:8:8:8 little
 * endian" and so on), never from the module's format table.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qemu/error-report.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "standard-headers/drm/drm_fourcc.h"
#include "ui/console.h"
#include "ui/dmabuf-plane.h"
#include "ui/dmabuf-scanout.h"
#include "shim-trace.h"
#include "fake-console.h"

/* Open fds of this process, from /proc/self/fd */
static int count_open_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *de;
    int n = 0;

    g_assert_nonnull(dir);
    while ((de = readdir(dir))) {
        n += de->d_name[0] != '.';
    }
    closedir(dir);
    return n - 1; /* the directory's own fd */
}

/* ------------------------------------------------------------------ */
/* the formats, from the DRM fourcc definitions */

typedef struct FmtDef {
    const char *name;
    uint32_t fourcc;
    unsigned int cpp;           /* bytes per pixel */
    unsigned int bits[4];       /* R, G, B, and the A or X field */
    unsigned int shift[4];      /* their lowest bit in the LE pixel value */
    bool alpha;                 /* the 4th field is alpha (else X: ignored) */
} FmtDef;

enum { R, G, B, A };

static const FmtDef fmts[] = {
    /* [31:0] x:R:G:B 8:8:8:8 little endian */
    { "XRGB8888", DRM_FORMAT_XRGB8888, 4, { 8, 8, 8, 8 }, { 16, 8, 0, 24 },
      false },
    /* [31:0] A:R:G:B 8:8:8:8 */
    { "ARGB8888", DRM_FORMAT_ARGB8888, 4, { 8, 8, 8, 8 }, { 16, 8, 0, 24 },
      true },
    /* [31:0] x:B:G:R 8:8:8:8 */
    { "XBGR8888", DRM_FORMAT_XBGR8888, 4, { 8, 8, 8, 8 }, { 0, 8, 16, 24 },
      false },
    /* [31:0] A:B:G:R 8:8:8:8 */
    { "ABGR8888", DRM_FORMAT_ABGR8888, 4, { 8, 8, 8, 8 }, { 0, 8, 16, 24 },
      true },
    /* [31:0] R:G:B:x 8:8:8:8 */
    { "RGBX8888", DRM_FORMAT_RGBX8888, 4, { 8, 8, 8, 8 }, { 24, 16, 8, 0 },
      false },
    /* [31:0] B:G:R:x 8:8:8:8 */
    { "BGRX8888", DRM_FORMAT_BGRX8888, 4, { 8, 8, 8, 8 }, { 8, 16, 24, 0 },
      false },
    /* [31:0] R:G:B:A 8:8:8:8 */
    { "RGBA8888", DRM_FORMAT_RGBA8888, 4, { 8, 8, 8, 8 }, { 24, 16, 8, 0 },
      true },
    /* [31:0] B:G:R:A 8:8:8:8 */
    { "BGRA8888", DRM_FORMAT_BGRA8888, 4, { 8, 8, 8, 8 }, { 8, 16, 24, 0 },
      true },
    /* [31:0] x:R:G:B 2:10:10:10 */
    { "XRGB2101010", DRM_FORMAT_XRGB2101010, 4, { 10, 10, 10, 2 },
      { 20, 10, 0, 30 }, false },
    /* [31:0] A:R:G:B 2:10:10:10 */
    { "ARGB2101010", DRM_FORMAT_ARGB2101010, 4, { 10, 10, 10, 2 },
      { 20, 10, 0, 30 }, true },
    /* [31:0] x:B:G:R 2:10:10:10 */
    { "XBGR2101010", DRM_FORMAT_XBGR2101010, 4, { 10, 10, 10, 2 },
      { 0, 10, 20, 30 }, false },
    /* [23:0] R:G:B little endian */
    { "RGB888", DRM_FORMAT_RGB888, 3, { 8, 8, 8, 0 }, { 16, 8, 0, 0 },
      false },
    /* [23:0] B:G:R */
    { "BGR888", DRM_FORMAT_BGR888, 3, { 8, 8, 8, 0 }, { 0, 8, 16, 0 },
      false },
    /* [15:0] R:G:B 5:6:5 little endian */
    { "RGB565", DRM_FORMAT_RGB565, 2, { 5, 6, 5, 0 }, { 11, 5, 0, 0 },
      false },
    /* [15:0] B:G:R 5:6:5 */
    { "BGR565", DRM_FORMAT_BGR565, 2, { 5, 6, 5, 0 }, { 0, 5, 11, 0 },
      false },
};

static const FmtDef *fmt_of(uint32_t fourcc)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(fmts); i++) {
        if (fmts[i].fourcc == fourcc) {
            return &fmts[i];
        }
    }
    g_assert_not_reached();
}

/*
 * A channel of @bits widened to 8 bits as a display shows it: the top
 * bits of a wider one, a narrower one with its bits repeated (so that
 * full scale stays full scale).
 */
static uint32_t widen(uint32_t v, unsigned int bits)
{
    uint32_t out = 0;
    int have;

    if (bits >= 8) {
        return v >> (bits - 8);
    }
    for (have = 0; have < 8; have += bits) {
        out = (out << bits) | v;
    }
    return (out >> (have - 8)) & 0xff;
}

static uint32_t hash32(uint32_t a, uint32_t b, uint32_t c)
{
    uint32_t h = a * 0x9e3779b1u ^ (b + 0x7f4a7c15u) * 0x85ebca6bu ^
                 (c + 0x165667b1u) * 0xc2b2ae35u;

    h ^= h >> 15;
    h *= 0x2c1b3c6du;
    h ^= h >> 12;
    h *= 0x297a2d39u;
    h ^= h >> 15;
    return h;
}

/* The channels (at the format's depths) of pixel @x,@y of picture @seed */
static void pixel_channels(const FmtDef *f, uint32_t seed, uint32_t x,
                           uint32_t y, uint32_t ch[4])
{
    uint32_t h = hash32(seed, x, y), h2 = hash32(seed ^ 0x5bd1e995u, y, x);
    int i;

    ch[R] = h;
    ch[G] = h >> 10;
    ch[B] = h >> 20;
    ch[A] = h2;
    for (i = 0; i < 4; i++) {
        ch[i] &= (1u << f->bits[i]) - 1;
    }
}

/* The pixel value of @ch in format @f (its low cpp bytes, little endian) */
static uint32_t pack(const FmtDef *f, const uint32_t ch[4])
{
    uint32_t v = 0;
    int i;

    for (i = 0; i < 4; i++) {
        if (f->bits[i]) {
            v |= ch[i] << f->shift[i];
        }
    }
    return v;
}

/* What a display shows for @ch: 0x00RRGGBB (X and alpha ignored) */
static uint32_t shown_rgb(const FmtDef *f, const uint32_t ch[4])
{
    return widen(ch[R], f->bits[R]) << 16 | widen(ch[G], f->bits[G]) << 8 |
           widen(ch[B], f->bits[B]);
}

/* ------------------------------------------------------------------ */
/* the fake device's buffers */

typedef struct TestBuf {
    DmabufPlane plane;           /* the device's; the fd is the test's */
    DmabufScanoutBuffer *b;      /* NULL once released */
    const FmtDef *fmt;
    uint32_t *expect;            /* width * height of 0x00RRGGBB */
    uint32_t *argb;              /* width * height of 0xAARRGGBB (cursor) */
} TestBuf;

/* Writes rows [@y0, @y1) of picture @seed into @t's buffer and oracle. */
static void tbuf_paint(TestBuf *t, uint32_t seed, uint32_t y0, uint32_t y1)
{
    const DmabufPlane *p = &t->plane;
    size_t row_bytes = (size_t)p->width * t->fmt->cpp;
    g_autofree uint8_t *row = g_malloc(row_bytes);
    uint32_t x, y, ch[4];
    unsigned int i;

    for (y = y0; y < y1 && y < p->height; y++) {
        for (x = 0; x < p->width; x++) {
            uint32_t v;

            pixel_channels(t->fmt, seed, x, y, ch);
            v = pack(t->fmt, ch);
            for (i = 0; i < t->fmt->cpp; i++) {
                row[(size_t)x * t->fmt->cpp + i] = v >> (8 * i);
            }
            t->expect[(size_t)y * p->width + x] = shown_rgb(t->fmt, ch);
            t->argb[(size_t)y * p->width + x] =
                (t->fmt->alpha ? widen(ch[A], t->fmt->bits[A]) : 0xff) << 24 |
                shown_rgb(t->fmt, ch);
        }
        g_assert_cmpint(pwrite(p->fd[0], row, row_bytes,
                               p->offset[0] + (off_t)y * p->stride[0]), ==,
                        (ssize_t)row_bytes);
    }
}

/*
 * A buffer of the fake device: @fourcc at @w x @h, rows @stride apart from
 * @offset, in a memfd of @size bytes (0: plane.size, @offset + @stride *
 * @h), filled with picture @seed (unless the memfd is shorter).
 */
static TestBuf *tbuf_new_sized(uint32_t fourcc, uint32_t w, uint32_t h,
                               uint32_t stride, uint32_t offset,
                               uint64_t modifier, size_t size, uint32_t seed)
{
    TestBuf *t = g_new0(TestBuf, 1);
    size_t need = (size_t)offset + (size_t)stride * (h - 1) +
                  (size_t)w * fmt_of(fourcc)->cpp;

    t->fmt = fmt_of(fourcc);
    dmabuf_plane_init(&t->plane);
    t->plane.fourcc = fourcc;
    t->plane.modifier = modifier;
    t->plane.width = w;
    t->plane.height = h;
    t->plane.size = (uint64_t)offset + (uint64_t)stride * h;
    t->plane.n_fds = 1;
    t->plane.offset[0] = offset;
    t->plane.stride[0] = stride;
    t->plane.fd[0] = fake_dmabuf_memfd(size ? size : t->plane.size);
    t->expect = g_new0(uint32_t, (size_t)w * h);
    t->argb = g_new0(uint32_t, (size_t)w * h);
    if (!size || size >= need) {
        tbuf_paint(t, seed, 0, h);
    }
    return t;
}

static TestBuf *tbuf_new(uint32_t fourcc, uint32_t w, uint32_t h,
                         uint32_t stride, uint32_t offset, uint32_t seed)
{
    return tbuf_new_sized(fourcc, w, h, stride, offset, DRM_FORMAT_MOD_LINEAR,
                          0, seed);
}

/* A linear XRGB8888 buffer with tight rows */
static TestBuf *tbuf_xrgb(uint32_t w, uint32_t h, uint32_t seed)
{
    return tbuf_new(DRM_FORMAT_XRGB8888, w, h, w * 4, 0, seed);
}

/*
 * A 64x64 premultiplied ARGB8888 cursor: alpha 0 in its left quarter,
 * 255 in the next, any in the rest; no colour above its alpha.
 */
static TestBuf *tbuf_cursor(uint32_t seed)
{
    TestBuf *t = tbuf_new(DRM_FORMAT_ARGB8888, 64, 64, 256, 0, 0);
    uint32_t px[64 * 64];
    uint32_t x, y;

    for (y = 0; y < 64; y++) {
        for (x = 0; x < 64; x++) {
            uint32_t h = hash32(seed, x, y);
            uint32_t a = x < 16 ? 0 : x < 32 ? 255 : h >> 24;
            uint32_t r = a ? (h & 0xff) % (a + 1) : 0;
            uint32_t g = a ? ((h >> 8) & 0xff) % (a + 1) : 0;
            uint32_t b = a ? ((h >> 16) & 0xff) % (a + 1) : 0;

            px[y * 64 + x] = a << 24 | r << 16 | g << 8 | b;
            t->argb[y * 64 + x] = px[y * 64 + x];
            t->expect[y * 64 + x] = px[y * 64 + x] & 0xffffff;
        }
    }
    g_assert_cmpint(pwrite(t->plane.fd[0], px, sizeof(px), 0), ==,
                    sizeof(px));
    return t;
}

/* ------------------------------------------------------------------ */
/* the fixture: a device's console and its presenter */

typedef struct Fx {
    QemuConsole *con;
    DmabufScanout *s;
    GPtrArray *bufs;             /* TestBufs, released or not */
    int fds_before;
    int64_t now;
} Fx;

static void fx_init(Fx *fx, DmabufScanoutGl gl, bool has_gl,
                    bool has_dmabuf, uint32_t caps)
{
    memset(fx, 0, sizeof(*fx));
    fx->fds_before = count_open_fds();
    fx->con = fake_console_new();
    fake_console_set_gl(fx->con, has_gl, has_dmabuf, caps);
    fx->s = dmabuf_scanout_new(fx->con, "test-dev", gl);
    fx->bufs = g_ptr_array_new();
    fx->now = 1000000;
    shim_clock_set_ms(fx->now);
}

static void fx_advance(Fx *fx, int64_t ms)
{
    fx->now += ms;
    shim_clock_set_ms(fx->now);
}

static const FakeConsoleState *st(Fx *fx)
{
    return fake_console_state(fx->con);
}

/* asserts the console saw nothing QEMU would crash or leak on */
static void fx_no_violation(Fx *fx)
{
    if (st(fx)->violations) {
        g_autofree char *log = fake_console_log(fx->con);

        g_test_message("calls:\n%s", log);
        g_test_message("first violation: %s", st(fx)->violation);
    }
    g_assert_cmpuint(st(fx)->violations, ==, 0);
}

/* Whether the process maps the memfd @fd (any part of it) */
static bool is_mapped(int fd)
{
    g_autofree char *maps = NULL;
    struct stat sb;
    const char *m;

    g_assert_cmpint(fstat(fd, &sb), ==, 0);
    g_assert_true(g_file_get_contents("/proc/self/maps", &maps, NULL, NULL));
    /* each line: address perms offset dev inode path */
    for (m = strstr(maps, "/memfd:"); m; m = strstr(m + 1, "/memfd:")) {
        const char *line = m;
        unsigned long ino;

        while (line > maps && line[-1] != '\n') {
            line--;
        }
        if (sscanf(line, "%*s %*s %*s %*s %lu", &ino) == 1 &&
            ino == (unsigned long)sb.st_ino) {
            return true;
        }
    }
    return false;
}

/* Makes @t the presenter's (as the device does when it first shows it) */
static TestBuf *fx_add(Fx *fx, TestBuf *t)
{
    t->b = dmabuf_scanout_buffer_new(fx->s, &t->plane);
    g_ptr_array_add(fx->bufs, t);
    return t;
}

/* The device lets go of @t: released (unmapped), its fd still open. */
static void fx_release(Fx *fx, TestBuf *t)
{
    dmabuf_scanout_buffer_release(fx->s, t->b);
    t->b = NULL;
    g_assert_false(is_mapped(t->plane.fd[0]));
    g_assert_cmpint(fcntl(t->plane.fd[0], F_GETFD), >=, 0);
}

static void tbuf_free(TestBuf *t)
{
    dmabuf_plane_finish(&t->plane);
    g_free(t->expect);
    g_free(t->argb);
    g_free(t);
}

static void fx_finish(Fx *fx)
{
    unsigned int i;

    for (i = 0; i < fx->bufs->len; i++) {
        TestBuf *t = g_ptr_array_index(fx->bufs, i);

        if (t->b) {
            fx_release(fx, t);
        }
    }
    g_assert_cmpuint(dmabuf_scanout_stats(fx->s)->buffers, ==, 0);
    dmabuf_scanout_free(fx->s);
    fx_no_violation(fx);
    g_assert_cmpuint(fake_dmabufs_live(), ==, 0);
    g_assert(st(fx)->scanout != FAKE_SCANOUT_DMABUF);
    g_assert_null(st(fx)->gl_cursor);
    fake_console_free(fx->con);
    for (i = 0; i < fx->bufs->len; i++) {
        tbuf_free(g_ptr_array_index(fx->bufs, i));
    }
    g_ptr_array_free(fx->bufs, true);
    g_assert_cmpint(count_open_fds(), ==, fx->fds_before);
}

static void fx_show(Fx *fx, TestBuf *pri, TestBuf *cur, int32_t cx,
                    int32_t cy, uint32_t hx, uint32_t hy, uint32_t changed)
{
    DmabufScanoutFrame f = {
        .primary = pri ? pri->b : NULL,
        .cursor = cur ? cur->b : NULL,
        .cursor_x = cx, .cursor_y = cy,
        .hot_x = hx, .hot_y = hy,
        .changed = changed,
    };

    dmabuf_scanout_show(fx->s, &f);
}

/* a flip to @pri, no cursor */
static void fx_flip(Fx *fx, TestBuf *pri)
{
    fx_show(fx, pri, NULL, 0, 0, 0, 0, DMABUF_SCANOUT_PRIMARY_NEW);
}

/* the display refreshes, a frame period later (so it is watching) */
static void fx_refresh(Fx *fx)
{
    fx_advance(fx, 33);
    dmabuf_scanout_refresh(fx->s);
}

/* ------------------------------------------------------------------ */
/* checking pictures */

/*
 * Whether @img (x8r8g8b8) shows exactly @t (RGB; the X byte is not looked
 * at); the first difference is told as a test message.
 */
static bool picture_is(pixman_image_t *img, const TestBuf *t,
                       const char *what)
{
    const DmabufPlane *p = &t->plane;
    const uint8_t *data = (const uint8_t *)pixman_image_get_data(img);
    int stride = pixman_image_get_stride(img);
    uint32_t x, y;

    if (pixman_image_get_width(img) != (int)p->width ||
        pixman_image_get_height(img) != (int)p->height) {
        g_test_message("%s: %dx%d, want %ux%u", what,
                       pixman_image_get_width(img),
                       pixman_image_get_height(img), p->width, p->height);
        return false;
    }
    for (y = 0; y < p->height; y++) {
        const uint32_t *row = (const uint32_t *)(data + (size_t)y * stride);

        for (x = 0; x < p->width; x++) {
            uint32_t got = row[x] & 0xffffff;
            uint32_t want = t->expect[(size_t)y * p->width + x];

            if (got != want) {
                g_test_message("%s: %s %ux%u stride %u offset %u: pixel "
                               "%u,%u is 0x%06x, want 0x%06x", what,
                               t->fmt->name, p->width, p->height,
                               p->stride[0], p->offset[0], x, y, got, want);
                return false;
            }
        }
    }
    return true;
}

static void assert_picture(pixman_image_t *img, const TestBuf *t,
                           const char *what)
{
    g_assert_true(picture_is(img, t, what));
}

/* the console's surface is the shadow and shows exactly @t */
static void assert_shadow(Fx *fx, const TestBuf *t)
{
    g_assert_cmpint(st(fx)->scanout, ==, FAKE_SCANOUT_SURFACE);
    g_assert_false(st(fx)->surface->flags & QEMU_PLACEHOLDER_FLAG);
    assert_picture(st(fx)->surface->image, t, "shadow");
}

/* damage rectangle @i is the full-width band of rows [@y, @y + @h) */
static void assert_damage(Fx *fx, unsigned int i, int y, int h)
{
    const FakeRect *r;

    g_assert_cmpuint(st(fx)->damage->len, >, i);
    r = &g_array_index(st(fx)->damage, FakeRect, i);
    g_assert_cmpint(r->x, ==, 0);
    g_assert_cmpint(r->w, ==, surface_width(st(fx)->surface));
    g_assert_cmpint(r->y, ==, y);
    g_assert_cmpint(r->h, ==, h);
}

static pixman_image_t *snapshot_ok(Fx *fx)
{
    Error *err = NULL;
    pixman_image_t *img = dmabuf_scanout_snapshot(fx->s, &err);

    if (err) {
        g_test_message("snapshot: %s", error_get_pretty(err));
        error_free(err);
    }
    g_assert_nonnull(img);
    return img;
}

/* NULL with an error that says @why */
static void snapshot_fails(Fx *fx, const char *why)
{
    Error *err = NULL;
    pixman_image_t *img = dmabuf_scanout_snapshot(fx->s, &err);

    g_assert_null(img);
    g_assert_nonnull(err);
    if (!strstr(error_get_pretty(err), why)) {
        g_test_message("error \"%s\" does not say \"%s\"",
                       error_get_pretty(err), why);
        g_assert_not_reached();
    }
    error_free(err);
    /* and without an Error to fill: still no crash */
    g_assert_null(dmabuf_scanout_snapshot(fx->s, NULL));
}

/* The widths and strides every format is checked at */
static const uint32_t widths[] = { 1366, 1365, 641 };
enum { STRIDE_TIGHT, STRIDE_WIDE, STRIDE_UNALIGNED, N_STRIDES };
static const char *const stride_names[] = { "tight", "wide", "unaligned" };

/* rows of @w pixels of @f, @kind apart; @offset where the first starts */
static void geometry(const FmtDef *f, uint32_t w, int kind, uint32_t *stride,
                     uint32_t *offset)
{
    uint32_t row = w * f->cpp;

    switch (kind) {
    case STRIDE_TIGHT:
        *stride = row;
        *offset = 0;
        break;
    case STRIDE_WIDE:
        *stride = row + 256;        /* padded, as GPUs align rows */
        *offset = 4096;
        break;
    default:
        *stride = row + ((row + 1) % 4 ? 1 : 2); /* not a multiple of 4 */
        *offset = 3;                            /* nor the first row */
        g_assert_cmpuint(*stride % 4, !=, 0);
        break;
    }
}

#define FMT_ROWS 24

/* ------------------------------------------------------------------ */
/* the cpu path: shadow surface */

/*
 * Each format at each width and stride, flipped to on a display without
 * GL: the shadow shows exactly the pixels of the DRM definition.
 */
static void test_cpu_pixels(gconstpointer data)
{
    const FmtDef *f = data;
    Fx fx;
    TestBuf *prev = NULL;
    size_t wi;
    int k;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, false, false, 0);
    for (wi = 0; wi < G_N_ELEMENTS(widths); wi++) {
        for (k = 0; k < N_STRIDES; k++) {
            uint32_t stride, offset;
            TestBuf *t;

            geometry(f, widths[wi], k, &stride, &offset);
            t = fx_add(&fx, tbuf_new(f->fourcc, widths[wi], FMT_ROWS, stride,
                                     offset, wi * 10 + k));
            fx_refresh(&fx);            /* a display is watching */
            fx_flip(&fx, t);
            g_test_message("%s %u %s", f->name, widths[wi], stride_names[k]);
            g_assert_cmpint(dmabuf_scanout_path(fx.s), ==,
                            DMABUF_SCANOUT_PATH_CPU);
            assert_shadow(&fx, t);
            if (prev) {
                fx_release(&fx, prev);
            }
            prev = t;
        }
    }
    g_assert_cmpuint(dmabuf_scanout_stats(fx.s)->not_shown, ==, 0);
    g_assert_cmpuint(fake_console_count(fx.con, "dpy_gl_scanout_dmabuf"), ==,
                     0);
    fx_finish(&fx);
}

/* two flips whose pictures differ in @rows only; returns the damage */
static void damage_between(Fx *fx, const uint32_t *rows, size_t n)
{
    TestBuf *a = fx_add(fx, tbuf_xrgb(1366, 300, 1));
    TestBuf *b = fx_add(fx, tbuf_xrgb(1366, 300, 1));
    size_t i;

    for (i = 0; i < n; i++) {
        tbuf_paint(b, 2, rows[i], rows[i] + 1);
    }
    fx_refresh(fx);
    fx_flip(fx, a);
    assert_shadow(fx, a);
    fake_console_clear(fx->con);
    fx_refresh(fx);
    g_assert_cmpuint(st(fx)->damage->len, ==, 0); /* nothing changed yet */
    fx_flip(fx, b);
    assert_shadow(fx, b);
}

/* A flip to a frame that differs in rows 100..123 damages those rows only */
static void test_cpu_damage_rows(void)
{
    uint32_t rows[24];
    Fx fx;
    uint32_t i;

    for (i = 0; i < 24; i++) {
        rows[i] = 100 + i;
    }
    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, false, false, 0);
    damage_between(&fx, rows, 24);
    g_assert_cmpuint(st(&fx)->damage->len, ==, 1);
    assert_damage(&fx, 0, 100, 24);
    g_assert_cmpuint(fake_console_count(fx.con, "dpy_gfx_update_full"), ==, 0);
    fx_finish(&fx);
}

/*
 * Changed rows up to 16 apart are one rectangle (the unchanged rows between
 * them sent along); 17 apart, two.
 */
static void test_cpu_damage_gap_merge(void)
{
    static const uint32_t merged[] = { 100, 103, 119, 123 };
    static const uint32_t split[] = { 100, 103, 120, 123 };
    Fx fx;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, false, false, 0);
    damage_between(&fx, merged, G_N_ELEMENTS(merged));
    g_assert_cmpuint(st(&fx)->damage->len, ==, 1);
    assert_damage(&fx, 0, 100, 24);
    fx_finish(&fx);

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, false, false, 0);
    damage_between(&fx, split, G_N_ELEMENTS(split));
    g_assert_cmpuint(st(&fx)->damage->len, ==, 2);
    assert_damage(&fx, 0, 100, 4);
    assert_damage(&fx, 1, 120, 4);
    fx_finish(&fx);
}

/*
 * Front-buffer rendering: a redraw of the buffer on screen damages the
 * rows that changed; a redraw, or a display refresh, with no change
 * damages nothing.
 */
static void test_cpu_damage_redraw(void)
{
    Fx fx;
    TestBuf *a;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, false, false, 0);
    a = fx_add(&fx, tbuf_xrgb(1366, 300, 1));
    fx_refresh(&fx);
    fx_flip(&fx, a);
    fake_console_clear(fx.con);

    /* nothing changed: redraws and refreshes damage nothing */
    fx_refresh(&fx);
    fx_show(&fx, a, NULL, 0, 0, 0, 0, DMABUF_SCANOUT_PRIMARY_REDRAW);
    fx_refresh(&fx);
    fx_advance(&fx, 5000);
    dmabuf_scanout_refresh(fx.s);
    g_assert_cmpuint(st(&fx)->damage->len, ==, 0);

    /* rows 100..123 redrawn: the redraw itself damages them */
    fx_advance(&fx, 10);
    tbuf_paint(a, 7, 100, 124);
    fx_show(&fx, a, NULL, 0, 0, 0, 0, DMABUF_SCANOUT_PRIMARY_REDRAW);
    g_assert_cmpuint(st(&fx)->damage->len, ==, 1);
    assert_damage(&fx, 0, 100, 24);
    assert_shadow(&fx, a);

    /* the same pixels again: nothing */
    fake_console_clear(fx.con);
    fx_advance(&fx, 10);
    fx_show(&fx, a, NULL, 0, 0, 0, 0, DMABUF_SCANOUT_PRIMARY_REDRAW);
    fx_refresh(&fx);
    g_assert_cmpuint(st(&fx)->damage->len, ==, 0);
    fx_finish(&fx);
}

/*
 * Pixels that change with no frame at all (front-buffer rendering the
 * device cannot see) reach the shadow at the display's next refresh, as
 * damage of those rows.
 */
static void test_cpu_refresh_finds_changes(void)
{
    Fx fx;
    TestBuf *a;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, false, false, 0);
    a = fx_add(&fx, tbuf_xrgb(640, 480, 1));
    fx_refresh(&fx);
    fx_flip(&fx, a);
    fake_console_clear(fx.con);
    tbuf_paint(a, 9, 200, 210);
    fx_refresh(&fx);
    g_assert_cmpuint(st(&fx)->damage->len, ==, 1);
    assert_damage(&fx, 0, 200, 10);
    assert_shadow(&fx, a);
    fx_finish(&fx);
}

/*
 * A redraw that says which rows changed (damage_y/damage_h) looks at those
 * rows only: they are damaged at once; other rows that changed too are
 * found by the display's next refresh.
 */
static void test_cpu_damage_hint(void)
{
    Fx fx;
    TestBuf *a;
    DmabufScanoutFrame f = { 0 };

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, false, false, 0);
    a = fx_add(&fx, tbuf_xrgb(640, 480, 1));
    fx_flip(&fx, a);
    fx_refresh(&fx);                    /* a display is watching */
    fake_console_clear(fx.con);
    fx_advance(&fx, 10);
    tbuf_paint(a, 8, 100, 124);
    tbuf_paint(a, 9, 300, 310);
    f.primary = a->b;
    f.changed = DMABUF_SCANOUT_PRIMARY_REDRAW;
    f.damage_y = 100;
    f.damage_h = 24;
    dmabuf_scanout_show(fx.s, &f);
    g_assert_cmpuint(st(&fx)->damage->len, ==, 1);
    assert_damage(&fx, 0, 100, 24);
    fx_refresh(&fx);
    g_assert_cmpuint(st(&fx)->damage->len, ==, 2);
    assert_damage(&fx, 1, 300, 10);
    assert_shadow(&fx, a);
    fx_finish(&fx);
}

/*
 * A buffer whose last row is not padded to the stride (DRM's minimum
 * size, offset + stride * (height - 1) + width * cpp, in whole pages) is
 * shown whole: every row is inside the buffer.
 */
static void test_cpu_unpadded_last_row(void)
{
    size_t page = sysconf(_SC_PAGESIZE);
    /* 641 RGB565 pixels, rows 1538 bytes apart from 4096: 40752 bytes */
    size_t need = 4096 + 1538 * 23 + 641 * 2;
    size_t size = (need + page - 1) / page * page;
    Fx fx;
    TestBuf *t;
    pixman_image_t *img;
    bool shadow_ok, snap_ok;

    g_assert_cmpuint(size, <, 4096 + 1538 * 24); /* the last row unpadded */
    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, false, false, 0);
    t = fx_add(&fx, tbuf_new_sized(DRM_FORMAT_RGB565, 641, 24, 1538, 4096,
                                   DRM_FORMAT_MOD_LINEAR, size, 1));
    t->plane.size = size;
    fx_flip(&fx, t);
    shadow_ok = picture_is(st(&fx)->surface->image, t, "shadow");
    img = snapshot_ok(&fx);
    snap_ok = picture_is(img, t, "snapshot");
    pixman_image_unref(img);
    fx_finish(&fx);
    /* dmabuf_plane_map() once counted whole strides: the last row was lost */
    g_assert_true(shadow_ok);
    g_assert_true(snap_ok);
}

/*
 * The shadow surface keeps its address across flips of one mode (VNC's
 * surface is not switched under it); a mode change replaces it once.
 */
static void test_cpu_shadow_kept_across_flips(void)
{
    Fx fx;
    TestBuf *a, *b, *c;
    DisplaySurface *first;
    void *first_data;
    int i;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, false, false, 0);
    a = fx_add(&fx, tbuf_xrgb(800, 600, 1));
    b = fx_add(&fx, tbuf_xrgb(800, 600, 2));
    fx_refresh(&fx);
    fx_flip(&fx, a);
    first = st(&fx)->surface;
    first_data = surface_data(first);
    g_assert_cmpuint(fake_console_count(fx.con, "dpy_gfx_replace_surface"),
                     ==, 1);
    for (i = 0; i < 10; i++) {
        fx_refresh(&fx);
        fx_flip(&fx, i % 2 ? a : b);
        assert_shadow(&fx, i % 2 ? a : b);
        g_assert_true(st(&fx)->surface == first);
        g_assert_true(surface_data(st(&fx)->surface) == first_data);
    }
    g_assert_cmpuint(fake_console_count(fx.con, "dpy_gfx_replace_surface"),
                     ==, 1);

    /* a new mode: one new surface of the new size */
    c = fx_add(&fx, tbuf_xrgb(1024, 768, 3));
    fx_refresh(&fx);
    fx_flip(&fx, c);
    g_assert_cmpuint(fake_console_count(fx.con, "dpy_gfx_replace_surface"),
                     ==, 2);
    g_assert_cmpint(surface_width(st(&fx)->surface), ==, 1024);
    g_assert_cmpint(surface_height(st(&fx)->surface), ==, 768);
    assert_shadow(&fx, c);
    fx_finish(&fx);
}

/*
 * Nobody watching (VNC without a client never refreshes): a flip is not
 * copied until the next refresh, which then shows it.
 */
static void test_cpu_unwatched_copies_on_refresh(void)
{
    Fx fx;
    TestBuf *a, *b;
    uint64_t copies;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, false, false, 0);
    a = fx_add(&fx, tbuf_xrgb(640, 480, 1));
    b = fx_add(&fx, tbuf_xrgb(640, 480, 2));
    fx_flip(&fx, a);                    /* the first frame is copied */
    assert_shadow(&fx, a);
    fx_advance(&fx, 10000);
    copies = dmabuf_scanout_stats(fx.s)->shadow_copies;
    fx_flip(&fx, b);
    g_assert_cmpuint(dmabuf_scanout_stats(fx.s)->shadow_copies, ==, copies);
    assert_shadow(&fx, a);
    fx_refresh(&fx);
    assert_shadow(&fx, b);
    fx_finish(&fx);
}

/* ------------------------------------------------------------------ */
/* screendump */

/* Each format, width and stride: screendump's picture is exact. */
static void test_snapshot_pixels(gconstpointer data)
{
    const FmtDef *f = data;
    Fx fx;
    size_t wi;
    int k;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, false, false, 0);
    for (wi = 0; wi < G_N_ELEMENTS(widths); wi++) {
        for (k = 0; k < N_STRIDES; k++) {
            uint32_t stride, offset;
            pixman_image_t *img;
            TestBuf *t;

            geometry(f, widths[wi], k, &stride, &offset);
            t = fx_add(&fx, tbuf_new(f->fourcc, widths[wi], FMT_ROWS, stride,
                                     offset, 100 + wi * 10 + k));
            fx_flip(&fx, t);
            img = snapshot_ok(&fx);
            g_assert_cmpint(pixman_image_get_format(img), ==,
                            PIXMAN_x8r8g8b8);
            assert_picture(img, t, "snapshot");
            pixman_image_unref(img);
            fx_release(&fx, t);
        }
    }
    fx_finish(&fx);
}

/* premultiplied @c OVER opaque @d, per channel, rounded */
static uint32_t over(uint32_t c, uint32_t d)
{
    uint32_t a = c >> 24, out = 0;
    int sh;

    for (sh = 0; sh < 24; sh += 8) {
        uint32_t cs = (c >> sh) & 0xff, ds = (d >> sh) & 0xff;
        uint32_t v = cs + (ds * (255 - a) + 127) / 255;

        out |= MIN(v, 255u) << sh;
    }
    return out;
}

/* @t's expected picture with cursor @c composited at @cx,@cy */
static void expect_with_cursor(TestBuf *t, const TestBuf *c, int32_t cx,
                               int32_t cy)
{
    int64_t x, y;

    for (y = 0; y < 64; y++) {
        for (x = 0; x < 64; x++) {
            int64_t px = cx + x, py = cy + y;
            uint32_t *d;

            if (px < 0 || py < 0 || px >= t->plane.width ||
                py >= t->plane.height) {
                continue;
            }
            d = &t->expect[py * t->plane.width + px];
            *d = over(c->argb[y * 64 + x], *d);
        }
    }
}

/*
 * The cursor (premultiplied ARGB8888) is composited OVER the frame with
 * its top-left at the frame's cursor position, clipped at the edges.
 */
static void test_snapshot_cursor_over(void)
{
    static const struct {
        int32_t x, y;
    } at[] = { { 100, 50 }, { -10, -20 }, { 600, 440 }, { 0, 0 } };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(at); i++) {
        Fx fx;
        TestBuf *pri, *cur;
        pixman_image_t *img;

        fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, false, false, 0);
        pri = fx_add(&fx, tbuf_xrgb(640, 480, 5));
        cur = fx_add(&fx, tbuf_cursor(6));
        fx_show(&fx, pri, cur, at[i].x, at[i].y, 3, 4,
                DMABUF_SCANOUT_PRIMARY_NEW | DMABUF_SCANOUT_CURSOR_NEW);
        img = snapshot_ok(&fx);
        expect_with_cursor(pri, cur, at[i].x, at[i].y);
        g_test_message("cursor at %d,%d", at[i].x, at[i].y);
        assert_picture(img, pri, "snapshot with cursor");
        pixman_image_unref(img);
        fx_finish(&fx);
    }
}

/* A snapshot of a 640x480 frame with the cursor at @x,@y; whether exact */
static bool snapshot_cursor_at(int32_t x, int32_t y, bool cursor_visible)
{
    Fx fx;
    TestBuf *pri, *cur;
    pixman_image_t *img;
    bool ok;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, false, false, 0);
    pri = fx_add(&fx, tbuf_xrgb(640, 480, 5));
    cur = fx_add(&fx, tbuf_cursor(6));
    fx_show(&fx, pri, cur, x, y, 0, 0,
            DMABUF_SCANOUT_PRIMARY_NEW | DMABUF_SCANOUT_CURSOR_NEW);
    img = snapshot_ok(&fx);
    if (cursor_visible) {
        expect_with_cursor(pri, cur, x, y);
    }
    g_test_message("cursor at %d,%d", x, y);
    ok = picture_is(img, pri, "snapshot");
    pixman_image_unref(img);
    fx_finish(&fx);
    return ok;
}

/* A cursor wholly beyond the frame's edges is not in the picture */
static void test_snapshot_cursor_off_frame(void)
{
    static const struct {
        int32_t x, y;
    } at[] = { { 640, 0 }, { 0, 480 }, { -64, -64 }, { -64, 100 },
               { 100, -64 }, { 32767, 32767 }, { -32768, -32768 } };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(at); i++) {
        g_assert_true(snapshot_cursor_at(at[i].x, at[i].y, false));
    }
    /* partly in, at the edges */
    g_assert_true(snapshot_cursor_at(620, 460, true));
    g_assert_true(snapshot_cursor_at(-40, -40, true));
}

/*
 * A cursor position beyond pixman's 16-bit coordinates (DmabufScanoutFrame
 * takes any int32: virtio-gpu's are the guest's uint32) is not wrapped
 * onto the screen: 65536 + 100 is off the frame, not at 100.
 */
static void test_snapshot_cursor_far_off_frame(void)
{
    static const struct {
        int32_t x, y;
    } at[] = { { 65536 + 100, 50 }, { 100, 65536 + 50 },
               { -65536 + 100, 50 }, { INT32_MAX, INT32_MAX },
               { INT32_MIN, 0 } };
    unsigned int wrong = 0;
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(at); i++) {
        wrong += !snapshot_cursor_at(at[i].x, at[i].y, false);
    }
    /* pixman's int16_t coordinates once wrapped these onto the frame */
    g_assert_cmpuint(wrong, ==, 0);
}

/* No frame shown (yet, or any more): NULL and an error, no crash */
static void test_snapshot_no_frame(void)
{
    Fx fx;
    TestBuf *a;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, false, false, 0);
    snapshot_fails(&fx, "no frame");
    a = fx_add(&fx, tbuf_xrgb(64, 64, 1));
    fx_flip(&fx, a);
    fx_show(&fx, NULL, NULL, 0, 0, 0, 0, DMABUF_SCANOUT_PRIMARY_NEW);
    snapshot_fails(&fx, "no frame");
    fx_flip(&fx, a);
    dmabuf_scanout_reset(fx.s);
    snapshot_fails(&fx, "no frame");
    fx_finish(&fx);
}

/*
 * A 16384x16384 frame (1 GiB as x8r8g8b8) is refused before its buffer
 * is touched: this one is a small memfd, and is never mapped.
 */
static void test_snapshot_too_large(void)
{
    Fx fx;
    TestBuf *huge;

    /* the GL path: showing it maps nothing */
    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, true, true, 0);
    huge = fx_add(&fx, tbuf_new_sized(DRM_FORMAT_XRGB8888, 16384, 16384,
                                      65536, 0, DRM_FORMAT_MOD_LINEAR, 65536,
                                      0));
    fx_flip(&fx, huge);
    g_assert_false(is_mapped(huge->plane.fd[0]));
    snapshot_fails(&fx, "limit");
    g_assert_false(is_mapped(huge->plane.fd[0]));
    g_assert_cmpuint(dmabuf_scanout_stats(fx.s)->map_failures, ==, 0);
    fx_finish(&fx);

    /* one row more than 8192x8192 is above the limit ... */
    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, true, true, 0);
    huge = fx_add(&fx, tbuf_new_sized(DRM_FORMAT_XRGB8888, 8192, 8193,
                                      32768, 0, DRM_FORMAT_MOD_LINEAR, 65536,
                                      0));
    fx_flip(&fx, huge);
    snapshot_fails(&fx, "limit");
    g_assert_false(is_mapped(huge->plane.fd[0]));
    fx_finish(&fx);

    /* ... 8192x8192 is not: this one fails only for its short buffer */
    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, true, true, 0);
    huge = fx_add(&fx, tbuf_new_sized(DRM_FORMAT_XRGB8888, 8192, 8192,
                                      32768, 0, DRM_FORMAT_MOD_LINEAR, 65536,
                                      0));
    fx_flip(&fx, huge);
    snapshot_fails(&fx, "cannot be read");
    fx_finish(&fx);
}

/* A tiled buffer cannot be read by the CPU: NULL and an error */
static void test_snapshot_tiled(void)
{
    Fx fx;
    TestBuf *t;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, true, true, 0);
    t = fx_add(&fx, tbuf_new_sized(DRM_FORMAT_XRGB8888, 256, 64, 1024, 0,
                                   I915_FORMAT_MOD_X_TILED, 0, 1));
    fx_flip(&fx, t);
    g_assert_cmpint(st(&fx)->scanout, ==, FAKE_SCANOUT_DMABUF);
    snapshot_fails(&fx, "tiled");
    fx_finish(&fx);
}

/*
 * A buffer shorter than its geometry: NULL and an error, never a read
 * past its end. Far too short (its mapping refused, as a dma-buf's), and
 * a stride shorter than a row (the last row would end past the buffer).
 */
static void test_snapshot_short_buffer(void)
{
    Fx fx;
    TestBuf *t;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, true, true, 0);
    t = fx_add(&fx, tbuf_new_sized(DRM_FORMAT_XRGB8888, 640, 480, 2560, 0,
                                   DRM_FORMAT_MOD_LINEAR, 4096, 0));
    fx_flip(&fx, t);
    snapshot_fails(&fx, "cannot be read");
    fx_finish(&fx);

    /*
     * one page, its one row starting at 2048 and ending past it: the
     * mapping of the whole pages (one) holds no whole row
     */
    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, true, true, 0);
    t = fx_add(&fx, tbuf_new_sized(DRM_FORMAT_XRGB8888, 640, 1, 2560, 2048,
                                   DRM_FORMAT_MOD_LINEAR, 4096, 0));
    fx_flip(&fx, t);
    snapshot_fails(&fx, "shorter than its geometry");
    fx_finish(&fx);

    /* stride smaller than a row: the last row runs past the buffer */
    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, true, true, 0);
    t = fx_add(&fx, tbuf_new_sized(DRM_FORMAT_XRGB8888, 1024, 4, 64, 0,
                                   DRM_FORMAT_MOD_LINEAR, 4096, 0));
    fx_flip(&fx, t);
    snapshot_fails(&fx, "shorter than its geometry");
    fx_finish(&fx);
}

/* ------------------------------------------------------------------ */
/* the cursor */

/* the console's QEMUCursor is @c's image with hotspot @hx,@hy */
static void assert_cursor_image(Fx *fx, const TestBuf *c, int hx, int hy)
{
    const QEMUCursor *qc = st(fx)->cursor;
    uint32_t i;

    g_assert_nonnull(qc);
    g_assert_cmpuint(qc->width, ==, c->plane.width);
    g_assert_cmpuint(qc->height, ==, c->plane.height);
    g_assert_cmpint(qc->hot_x, ==, hx);
    g_assert_cmpint(qc->hot_y, ==, hy);
    for (i = 0; i < c->plane.width * c->plane.height; i++) {
        if (qc->data[i] != c->argb[i]) {
            g_test_message("%s cursor pixel %u is 0x%08x, want 0x%08x",
                           c->fmt->name, i, qc->data[i], c->argb[i]);
            g_assert_cmphex(qc->data[i], ==, c->argb[i]);
        }
    }
}

/*
 * The cpu path defines the cursor plane as a QEMUCursor: its size,
 * hotspot and ARGB pixels; the pointer at the frame's cursor position.
 */
static void test_cursor_cpu_define(void)
{
    Fx fx;
    TestBuf *pri, *cur;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, false, false, 0);
    pri = fx_add(&fx, tbuf_xrgb(640, 480, 1));
    cur = fx_add(&fx, tbuf_cursor(2));
    fx_show(&fx, pri, cur, 100, 50, 3, 4,
            DMABUF_SCANOUT_PRIMARY_NEW | DMABUF_SCANOUT_CURSOR_NEW);
    assert_cursor_image(&fx, cur, 3, 4);
    g_assert_true(st(&fx)->mouse_on);
    g_assert_cmpint(st(&fx)->mouse_x, ==, 100);
    g_assert_cmpint(st(&fx)->mouse_y, ==, 50);
    g_assert_cmpuint(dmabuf_scanout_stats(fx.s)->cursor_defines, ==, 1);

    /* it moves: the pointer follows, the image is not defined again */
    fx_show(&fx, pri, cur, -5, 300, 3, 4, DMABUF_SCANOUT_CURSOR_MOVED);
    g_assert_cmpint(st(&fx)->mouse_x, ==, -5);
    g_assert_cmpint(st(&fx)->mouse_y, ==, 300);
    g_assert_cmpuint(fake_console_count(fx.con, "dpy_cursor_define"), ==, 1);
    fx_finish(&fx);
}

/* An unknown hotspot (DMABUF_SCANOUT_HOT_UNKNOWN) is 0,0 */
static void test_cursor_cpu_hot_unknown(void)
{
    Fx fx;
    TestBuf *pri, *cur;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, false, false, 0);
    pri = fx_add(&fx, tbuf_xrgb(640, 480, 1));
    cur = fx_add(&fx, tbuf_cursor(2));
    fx_show(&fx, pri, cur, 10, 20, DMABUF_SCANOUT_HOT_UNKNOWN,
            DMABUF_SCANOUT_HOT_UNKNOWN,
            DMABUF_SCANOUT_PRIMARY_NEW | DMABUF_SCANOUT_CURSOR_NEW);
    assert_cursor_image(&fx, cur, 0, 0);
    fx_finish(&fx);
}

/*
 * A cursor plane of any format becomes the right ARGB image (opaque for
 * formats without alpha).
 */
static void test_cursor_cpu_formats(void)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(fmts); i++) {
        Fx fx;
        TestBuf *pri, *cur;

        fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, false, false, 0);
        pri = fx_add(&fx, tbuf_xrgb(640, 480, 1));
        cur = fx_add(&fx, tbuf_new(fmts[i].fourcc, 64, 64, 64 * fmts[i].cpp,
                                   0, 40 + i));
        fx_show(&fx, pri, cur, 1, 2, 5, 6,
                DMABUF_SCANOUT_PRIMARY_NEW | DMABUF_SCANOUT_CURSOR_NEW);
        assert_cursor_image(&fx, cur, 5, 6);
        fx_finish(&fx);
    }
}

typedef enum CursorStep {
    STEP_ON,        /* the cursor buffer appears */
    STEP_HOT,       /* the hotspot changes */
    STEP_POS,       /* the position changes */
} CursorStep;

/*
 * Frames with the cursor changes of @order, one per frame; returns with
 * the final state shown: cursor @cur at 300,200 with hotspot 7,9.
 */
static void cursor_steps(Fx *fx, TestBuf *pri, TestBuf *cur,
                         const CursorStep order[3])
{
    bool on = false;
    uint32_t hx = 1, hy = 1;
    int32_t x = 10, y = 10;
    int i;

    fx_show(fx, pri, NULL, x, y, hx, hy, DMABUF_SCANOUT_PRIMARY_NEW);
    for (i = 0; i < 3; i++) {
        uint32_t changed = 0;

        switch (order[i]) {
        case STEP_ON:
            on = true;
            changed = DMABUF_SCANOUT_CURSOR_NEW;
            break;
        case STEP_HOT:
            hx = 7;
            hy = 9;
            changed = on ? DMABUF_SCANOUT_CURSOR_NEW : 0;
            break;
        case STEP_POS:
            x = 300;
            y = 200;
            changed = on ? DMABUF_SCANOUT_CURSOR_MOVED : 0;
            break;
        }
        fx_show(fx, pri, on ? cur : NULL, x, y, hx, hy, changed);
    }
}

static const CursorStep cursor_orders[][3] = {
    { STEP_ON, STEP_HOT, STEP_POS },
    { STEP_HOT, STEP_POS, STEP_ON },
    { STEP_POS, STEP_ON, STEP_HOT },
};

/*
 * The cpu path: whatever the order of appearing, new hotspot and move,
 * the result is the cursor image with the last hotspot at the last
 * position, shown.
 */
static void test_cursor_cpu_orders(void)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cursor_orders); i++) {
        Fx fx;
        TestBuf *pri, *cur;

        fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, false, false, 0);
        pri = fx_add(&fx, tbuf_xrgb(640, 480, 1));
        cur = fx_add(&fx, tbuf_cursor(2));
        cursor_steps(&fx, pri, cur, cursor_orders[i]);
        g_test_message("order %zu", i);
        assert_cursor_image(&fx, cur, 7, 9);
        g_assert_true(st(&fx)->mouse_on);
        g_assert_cmpint(st(&fx)->mouse_x, ==, 300);
        g_assert_cmpint(st(&fx)->mouse_y, ==, 200);
        fx_finish(&fx);
    }
}

/* The GL path: the same orders give the dma-buf cursor, hotspot, position */
static void test_cursor_gl_orders(void)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cursor_orders); i++) {
        Fx fx;
        TestBuf *pri, *cur;
        QemuDmaBuf *q;

        fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, true, true, 0);
        pri = fx_add(&fx, tbuf_xrgb(640, 480, 1));
        cur = fx_add(&fx, tbuf_cursor(2));
        cursor_steps(&fx, pri, cur, cursor_orders[i]);
        g_test_message("order %zu", i);
        q = st(&fx)->gl_cursor;
        g_assert_nonnull(q);
        g_assert_true(fake_dmabuf_is_live(q));
        g_assert_cmpuint(qemu_dmabuf_get_width(q), ==, 64);
        g_assert_cmpint(qemu_dmabuf_get_fds(q, NULL)[0], ==,
                        cur->plane.fd[0]);
        g_assert_true(st(&fx)->gl_cursor_have_hot);
        g_assert_cmpuint(st(&fx)->gl_cursor_hot_x, ==, 7);
        g_assert_cmpuint(st(&fx)->gl_cursor_hot_y, ==, 9);
        g_assert_cmpuint(st(&fx)->gl_cursor_x, ==, 300);
        g_assert_cmpuint(st(&fx)->gl_cursor_y, ==, 200);
        g_assert_null(st(&fx)->cursor);
        fx_finish(&fx);
    }
}

/* A display with its own cursor channel: the same orders, as a QEMUCursor */
static void test_cursor_image_orders(void)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cursor_orders); i++) {
        Fx fx;
        TestBuf *pri, *cur;

        fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, true, true, DPY_GL_CURSOR_IMAGE);
        pri = fx_add(&fx, tbuf_xrgb(640, 480, 1));
        cur = fx_add(&fx, tbuf_cursor(2));
        cursor_steps(&fx, pri, cur, cursor_orders[i]);
        g_test_message("order %zu", i);
        assert_cursor_image(&fx, cur, 7, 9);
        g_assert_true(st(&fx)->mouse_on);
        g_assert_cmpint(st(&fx)->mouse_x, ==, 300);
        g_assert_cmpint(st(&fx)->mouse_y, ==, 200);
        g_assert_cmpuint(fake_console_count(fx.con, "dpy_gl_cursor_dmabuf"),
                         ==, 0);
        fx_finish(&fx);
    }
}

/* The cursor plane goes away: the pointer is hidden (and comes back) */
static void test_cursor_gone_hides(void)
{
    Fx fx;
    TestBuf *pri, *cur;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, false, false, 0);
    pri = fx_add(&fx, tbuf_xrgb(640, 480, 1));
    cur = fx_add(&fx, tbuf_cursor(2));
    fx_show(&fx, pri, cur, 100, 50, 3, 4,
            DMABUF_SCANOUT_PRIMARY_NEW | DMABUF_SCANOUT_CURSOR_NEW);
    g_assert_true(st(&fx)->mouse_on);
    fx_show(&fx, pri, NULL, 100, 50, 3, 4, 0);
    g_assert_false(st(&fx)->mouse_on);
    fx_show(&fx, pri, cur, 120, 60, 3, 4, DMABUF_SCANOUT_CURSOR_NEW);
    g_assert_true(st(&fx)->mouse_on);
    g_assert_cmpint(st(&fx)->mouse_x, ==, 120);
    assert_cursor_image(&fx, cur, 3, 4);
    fx_finish(&fx);

    /* the GL path: the dma-buf cursor is taken off */
    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, true, true, 0);
    pri = fx_add(&fx, tbuf_xrgb(640, 480, 1));
    cur = fx_add(&fx, tbuf_cursor(2));
    fx_show(&fx, pri, cur, 100, 50, 3, 4,
            DMABUF_SCANOUT_PRIMARY_NEW | DMABUF_SCANOUT_CURSOR_NEW);
    g_assert_nonnull(st(&fx)->gl_cursor);
    fx_show(&fx, pri, NULL, 100, 50, 3, 4, 0);
    g_assert_null(st(&fx)->gl_cursor);
    fx_finish(&fx);
}

/* ------------------------------------------------------------------ */
/* the GL path */

/* the console's scanout is @t's QemuDmaBuf, with @t's geometry */
static QemuDmaBuf *assert_gl_scanout(Fx *fx, const TestBuf *t)
{
    QemuDmaBuf *q = st(fx)->scanout_dmabuf;

    g_assert_cmpint(st(fx)->scanout, ==, FAKE_SCANOUT_DMABUF);
    g_assert_true(fake_dmabuf_is_live(q));
    g_assert_cmpuint(qemu_dmabuf_get_width(q), ==, t->plane.width);
    g_assert_cmpuint(qemu_dmabuf_get_height(q), ==, t->plane.height);
    g_assert_cmpuint(qemu_dmabuf_get_backing_width(q), ==, t->plane.width);
    g_assert_cmpuint(qemu_dmabuf_get_backing_height(q), ==, t->plane.height);
    g_assert_cmpuint(qemu_dmabuf_get_x(q), ==, 0);
    g_assert_cmpuint(qemu_dmabuf_get_y(q), ==, 0);
    g_assert_cmphex(qemu_dmabuf_get_fourcc(q), ==, t->plane.fourcc);
    g_assert_cmphex(qemu_dmabuf_get_modifier(q), ==, t->plane.modifier);
    g_assert_cmpuint(qemu_dmabuf_get_num_planes(q), ==, 1);
    g_assert_cmpuint(qemu_dmabuf_get_strides(q, NULL)[0], ==,
                     t->plane.stride[0]);
    g_assert_cmpuint(qemu_dmabuf_get_offsets(q, NULL)[0], ==,
                     t->plane.offset[0]);
    g_assert_cmpint(qemu_dmabuf_get_fds(q, NULL)[0], ==, t->plane.fd[0]);
    return q;
}

/*
 * A display that imports dma-bufs gets the buffer itself: a QemuDmaBuf of
 * the plane's geometry, fourcc, modifier and fd, the console resized to
 * it, the whole frame updated; no copy.
 */
static void test_gl_scanout(void)
{
    Fx fx;
    TestBuf *a, *b;
    QemuDmaBuf *qa;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, true, true, 0);
    a = fx_add(&fx, tbuf_new_sized(DRM_FORMAT_XRGB8888, 1366, 768, 5632, 4096,
                                   I915_FORMAT_MOD_X_TILED, 0, 1));
    b = fx_add(&fx, tbuf_new(DRM_FORMAT_RGB565, 1366, 768, 2752, 0, 2));
    fx_flip(&fx, a);
    g_assert_cmpint(dmabuf_scanout_path(fx.s), ==, DMABUF_SCANOUT_PATH_GL);
    qa = assert_gl_scanout(&fx, a);
    g_assert_cmpint(st(&fx)->resize_w, ==, 1366);
    g_assert_cmpint(st(&fx)->resize_h, ==, 768);
    g_assert_cmpuint(st(&fx)->gl_updates, ==, 1);
    g_assert_cmpint(st(&fx)->gl_update.w, ==, 1366);
    g_assert_cmpint(st(&fx)->gl_update.h, ==, 768);
    g_assert_cmpuint(dmabuf_scanout_stats(fx.s)->shadow_copies, ==, 0);
    g_assert_cmpuint(dmabuf_scanout_stats(fx.s)->map_failures, ==, 0);

    /* flips: each buffer imported once, the console follows */
    fx_flip(&fx, b);
    assert_gl_scanout(&fx, b);
    fx_flip(&fx, a);
    g_assert_true(assert_gl_scanout(&fx, a) == qa);
    fx_flip(&fx, b);
    g_assert_cmpuint(fake_console_count(fx.con, "qemu_dmabuf_new"), ==, 2);
    g_assert_cmpuint(st(&fx)->gl_updates, ==, 4);
    /* a display refresh updates it again, without a new scanout */
    fx_refresh(&fx);
    g_assert_cmpuint(st(&fx)->gl_updates, ==, 5);
    g_assert_cmpuint(fake_console_count(fx.con, "dpy_gl_scanout_dmabuf"), ==,
                     4);
    fx_finish(&fx);
}

/*
 * The cursor plane goes to GL displays as a dma-buf cursor with its
 * hotspot and position; an unknown hotspot is said to be unknown.
 */
/*
 * A display that scans dma-bufs out without a GL context (-display kms,
 * DPY_GL_NO_CONTEXT) gets them although the console has no GL; once it
 * says it cannot import them, the shadow surface instead.
 */
static void test_gl_no_context(void)
{
    Fx fx;
    TestBuf *a;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, false, true, DPY_GL_NO_CONTEXT);
    a = fx_add(&fx, tbuf_new(DRM_FORMAT_XRGB8888, 64, 48, 256, 0, 1));
    fx_flip(&fx, a);
    g_assert_cmpint(dmabuf_scanout_path(fx.s), ==, DMABUF_SCANOUT_PATH_GL);
    assert_gl_scanout(&fx, a);
    g_assert_cmpuint(dmabuf_scanout_stats(fx.s)->shadow_copies, ==, 0);

    fake_console_set_gl(fx.con, false, false, DPY_GL_NO_CONTEXT);
    fx_refresh(&fx);
    g_assert_cmpint(dmabuf_scanout_path(fx.s), ==, DMABUF_SCANOUT_PATH_CPU);
    g_assert_cmpuint(dmabuf_scanout_stats(fx.s)->shadow_copies, >=, 1);
    fx_finish(&fx);
}

static void test_gl_cursor_dmabuf(void)
{
    Fx fx;
    TestBuf *pri, *cur;
    QemuDmaBuf *q;
    int i;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, true, true, 0);
    pri = fx_add(&fx, tbuf_xrgb(640, 480, 1));
    cur = fx_add(&fx, tbuf_cursor(2));
    fx_show(&fx, pri, cur, 100, 50, 3, 4,
            DMABUF_SCANOUT_PRIMARY_NEW | DMABUF_SCANOUT_CURSOR_NEW);
    q = st(&fx)->gl_cursor;
    g_assert_nonnull(q);
    g_assert_cmpuint(qemu_dmabuf_get_width(q), ==, 64);
    g_assert_cmpuint(qemu_dmabuf_get_height(q), ==, 64);
    g_assert_cmphex(qemu_dmabuf_get_fourcc(q), ==, DRM_FORMAT_ARGB8888);
    g_assert_cmpint(qemu_dmabuf_get_fds(q, NULL)[0], ==, cur->plane.fd[0]);
    g_assert_true(st(&fx)->gl_cursor_have_hot);
    g_assert_cmpuint(st(&fx)->gl_cursor_hot_x, ==, 3);
    g_assert_cmpuint(st(&fx)->gl_cursor_hot_y, ==, 4);
    g_assert_cmpuint(st(&fx)->gl_cursor_x, ==, 100);
    g_assert_cmpuint(st(&fx)->gl_cursor_y, ==, 50);
    g_assert_cmpuint(fake_console_count(fx.con, "dpy_cursor_define"), ==, 0);

    /* moves: the position only */
    for (i = 0; i < 5; i++) {
        fx_show(&fx, pri, cur, 110 + i, 60, 3, 4,
                DMABUF_SCANOUT_CURSOR_MOVED);
    }
    g_assert_cmpuint(st(&fx)->gl_cursor_x, ==, 114);
    g_assert_cmpuint(fake_console_count(fx.con, "dpy_gl_cursor_dmabuf"), ==,
                     1);

    /* the hotspot becomes unknown */
    fx_show(&fx, pri, cur, 110, 60, DMABUF_SCANOUT_HOT_UNKNOWN,
            DMABUF_SCANOUT_HOT_UNKNOWN, DMABUF_SCANOUT_CURSOR_NEW);
    g_assert_true(st(&fx)->gl_cursor == q);
    g_assert_false(st(&fx)->gl_cursor_have_hot);
    fx_finish(&fx);
}

/*
 * A display that shows cursor images itself (DPY_GL_CURSOR_IMAGE: spice)
 * gets the frames as dma-bufs and the cursor as a QEMUCursor, never as a
 * dma-buf cursor.
 */
static void test_gl_cursor_image_cap(void)
{
    Fx fx;
    TestBuf *pri, *cur;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, true, true, DPY_GL_CURSOR_IMAGE);
    pri = fx_add(&fx, tbuf_xrgb(640, 480, 1));
    cur = fx_add(&fx, tbuf_cursor(2));
    fx_show(&fx, pri, cur, 100, 50, 3, 4,
            DMABUF_SCANOUT_PRIMARY_NEW | DMABUF_SCANOUT_CURSOR_NEW);
    g_assert_cmpint(dmabuf_scanout_path(fx.s), ==,
                    DMABUF_SCANOUT_PATH_GL_CURSOR_IMAGE);
    assert_gl_scanout(&fx, pri);
    assert_cursor_image(&fx, cur, 3, 4);
    g_assert_true(st(&fx)->mouse_on);
    g_assert_cmpint(st(&fx)->mouse_x, ==, 100);
    g_assert_cmpint(st(&fx)->mouse_y, ==, 50);
    fx_show(&fx, pri, cur, 200, 150, 3, 4, DMABUF_SCANOUT_CURSOR_MOVED);
    g_assert_cmpint(st(&fx)->mouse_x, ==, 200);
    g_assert_cmpuint(fake_console_count(fx.con, "dpy_gl_cursor_dmabuf"), ==,
                     0);
    g_assert_null(st(&fx)->gl_cursor);
    fx_finish(&fx);
}

/*
 * A display that cannot pass modifiers on (DPY_GL_LINEAR_ONLY) is never
 * given a tiled buffer: the last frame stays, counted as not shown, said
 * once.
 */
static void test_gl_linear_only(void)
{
    Fx fx;
    TestBuf *lin, *tiled, *lin2;
    unsigned int warns = shim_warn_count();
    int i;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, true, true, DPY_GL_LINEAR_ONLY);
    lin = fx_add(&fx, tbuf_xrgb(640, 480, 1));
    tiled = fx_add(&fx, tbuf_new_sized(DRM_FORMAT_XRGB8888, 640, 480, 2560,
                                       0, I915_FORMAT_MOD_X_TILED, 0, 2));
    lin2 = fx_add(&fx, tbuf_xrgb(640, 480, 3));
    fx_flip(&fx, lin);
    assert_gl_scanout(&fx, lin);
    for (i = 0; i < 3; i++) {
        fx_flip(&fx, tiled);
        assert_gl_scanout(&fx, lin);
    }
    g_assert_cmpuint(dmabuf_scanout_stats(fx.s)->not_shown, ==, 3);
    /* poll ticks with nothing new: counted per frame, not per tick */
    for (i = 0; i < 5; i++) {
        fx_show(&fx, tiled, NULL, 0, 0, DMABUF_SCANOUT_HOT_UNKNOWN,
                DMABUF_SCANOUT_HOT_UNKNOWN, 0);
    }
    g_assert_cmpuint(dmabuf_scanout_stats(fx.s)->not_shown, ==, 3);
    g_assert_cmpuint(fake_console_count(fx.con, "dpy_gl_scanout_dmabuf"), ==,
                     1);
    g_assert_cmpuint(shim_warn_count(), ==, warns + 1);
    fx_flip(&fx, lin2);
    assert_gl_scanout(&fx, lin2);
    fx_finish(&fx);
}

/* ------------------------------------------------------------------ */
/* the use-after-free regression (SPICE gl=on) */

/*
 * The first call at or after @from that moves the console's scanout off
 * @q: a disable, or a scanout of another QemuDmaBuf; -1 if none.
 */
static int scanout_moved_off(Fx *fx, QemuDmaBuf *q, unsigned int from)
{
    GArray *calls = st(fx)->calls;
    unsigned int i;

    for (i = from; i < calls->len; i++) {
        const FakeCall *c = &g_array_index(calls, FakeCall, i);

        if (!strcmp(c->name, "dpy_gl_scanout_disable") ||
            (!strcmp(c->name, "dpy_gl_scanout_dmabuf") && c->ptr != q)) {
            return i;
        }
    }
    return -1;
}

/*
 * A buffer on screen and the cursor buffer are released while a display
 * blocks the console (a SPICE client has not acknowledged the last draw):
 * when their QemuDmaBufs are freed the console no longer points at them
 * (its scanout moved off first: disabled, or pointed at the module's own
 * copy with its own fds; the dma-buf cursor taken off), their imports
 * were released first, and nothing but that reached the display while it
 * was blocked. After a reset, a new mode's new buffer is scanned out once
 * the display unblocks, and the copy is gone.
 */
static void test_gl_release_while_blocked(void)
{
    Fx fx;
    TestBuf *pri, *cur, *next;
    QemuDmaBuf *qp, *qc;
    int off_p, free_p, rel_p, cur_off, free_c, rel_c;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, true, true, 0);
    pri = fx_add(&fx, tbuf_xrgb(640, 480, 1));
    cur = fx_add(&fx, tbuf_cursor(2));
    fx_show(&fx, pri, cur, 100, 50, 3, 4,
            DMABUF_SCANOUT_PRIMARY_NEW | DMABUF_SCANOUT_CURSOR_NEW);
    qp = assert_gl_scanout(&fx, pri);
    qc = st(&fx)->gl_cursor;
    g_assert_nonnull(qc);

    fake_console_set_gl_blocked(fx.con, true);
    g_assert_true(dmabuf_scanout_busy(fx.s));
    fake_console_clear(fx.con);
    fx_release(&fx, pri);
    fx_release(&fx, cur);
    fx_no_violation(&fx);
    g_assert_false(fake_dmabuf_is_live(qp));
    g_assert_false(fake_dmabuf_is_live(qc));
    if (st(&fx)->scanout == FAKE_SCANOUT_DMABUF) {
        /* the module's own copy: live, the same frame, its own fd */
        QemuDmaBuf *copy = st(&fx)->scanout_dmabuf;
        int fd = qemu_dmabuf_get_fds(copy, NULL)[0];

        g_assert_true(fake_dmabuf_is_live(copy));
        g_assert_cmpuint(qemu_dmabuf_get_width(copy), ==, 640);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(fd, !=, pri->plane.fd[0]);
        g_assert_cmpint(fcntl(fd, F_GETFD), >=, 0);
    }
    g_assert_null(st(&fx)->gl_cursor);

    off_p = scanout_moved_off(&fx, qp, 0);
    rel_p = fake_console_find(fx.con, "dpy_gl_release_dmabuf", qp, 0);
    free_p = fake_console_find(fx.con, "qemu_dmabuf_free", qp, 0);
    cur_off = fake_console_find(fx.con, "dpy_gl_cursor_dmabuf", NULL, 0);
    rel_c = fake_console_find(fx.con, "dpy_gl_release_dmabuf", qc, 0);
    free_c = fake_console_find(fx.con, "qemu_dmabuf_free", qc, 0);
    g_assert_cmpint(off_p, >=, 0);
    g_assert_cmpint(free_p, >, off_p);
    g_assert_cmpint(free_p, >, rel_p);
    g_assert_cmpint(rel_p, >=, 0);
    g_assert_cmpint(cur_off, >=, 0);
    g_assert_null(g_array_index(st(&fx)->calls, FakeCall, cur_off).ptr);
    g_assert_cmpint(free_c, >, cur_off);
    g_assert_cmpint(free_c, >, rel_c);
    g_assert_cmpint(rel_c, >=, 0);
    g_assert_cmpuint(fake_console_count(fx.con, "dpy_gl_update"), ==, 0);
    g_assert_cmpuint(fake_console_count(fx.con, "qemu_console_resize"), ==,
                     0);
    g_assert_cmpuint(st(&fx)->blocked_changes, ==, 0);

    /* the device resets and comes back in a new mode, still blocked */
    dmabuf_scanout_reset(fx.s);
    next = fx_add(&fx, tbuf_xrgb(1024, 768, 3));
    fx_flip(&fx, next);
    fx_refresh(&fx);
    fx_no_violation(&fx);
    g_assert_cmpuint(fake_console_count(fx.con, "dpy_gl_update"), ==, 0);
    g_assert_cmpuint(st(&fx)->blocked_changes, ==, 0);
    /* screendump shows the new frame at once */
    {
        pixman_image_t *img = snapshot_ok(&fx);

        assert_picture(img, next, "snapshot while blocked");
        pixman_image_unref(img);
    }
    fake_console_set_gl_blocked(fx.con, false);
    fx_refresh(&fx);
    assert_gl_scanout(&fx, next);
    g_assert_cmpint(st(&fx)->resize_w, ==, 1024);
    g_assert_cmpint(st(&fx)->gl_update.w, ==, 1024);
    /* the copy is gone: only @next's QemuDmaBuf is alive */
    g_assert_cmpuint(fake_dmabufs_live(), ==, 1);
    fx_finish(&fx);
}

/*
 * The device goes away while a display blocks the console: after its
 * buffers are released, dmabuf_scanout_free leaves no QemuDmaBuf and no
 * fd behind, and the console pointing at nothing of the module's.
 */
static void test_gl_free_while_blocked(void)
{
    int fds_before = count_open_fds();
    QemuConsole *con = fake_console_new();
    const FakeConsoleState *cs = fake_console_state(con);
    DmabufScanout *s;
    TestBuf *t = tbuf_xrgb(640, 480, 1);
    DmabufScanoutFrame f = { 0 };
    unsigned int leaked;

    fake_console_set_gl(con, true, true, 0);
    s = dmabuf_scanout_new(con, "t", DMABUF_SCANOUT_GL_AUTO);
    t->b = dmabuf_scanout_buffer_new(s, &t->plane);
    f.primary = t->b;
    f.changed = DMABUF_SCANOUT_PRIMARY_NEW;
    dmabuf_scanout_show(s, &f);
    g_assert_cmpint(cs->scanout, ==, FAKE_SCANOUT_DMABUF);
    fake_console_set_gl_blocked(con, true);
    dmabuf_scanout_buffer_release(s, t->b);
    /* the console shows the module's copy (own fd dups) meanwhile */
    g_assert_cmpint(cs->scanout, ==, FAKE_SCANOUT_DMABUF);
    g_assert_true(fake_dmabuf_is_live(cs->scanout_dmabuf));
    /* the device goes: vfio_display_finalize closes the console first */
    fake_console_close(con);
    dmabuf_scanout_free(s);
    g_assert_cmpuint(cs->violations, ==, 0);
    g_assert_cmpuint(cs->blocked_changes, ==, 0);
    tbuf_free(t);

    leaked = fake_dmabufs_live();
    g_assert_cmpuint(leaked, ==, 0);
    fake_console_free(con);
    g_assert_cmpint(count_open_fds(), ==, fds_before);
}

/*
 * While a display blocks the console no dpy_gl_update reaches it (flips,
 * redraws, cursor moves); once it unblocks, the display's refresh gives
 * the newest frame and updates it.
 */
static void test_gl_blocked_then_newest(void)
{
    Fx fx;
    TestBuf *a, *b, *c, *cur;
    unsigned int updates;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, true, true, 0);
    a = fx_add(&fx, tbuf_xrgb(640, 480, 1));
    b = fx_add(&fx, tbuf_xrgb(640, 480, 2));
    c = fx_add(&fx, tbuf_xrgb(640, 480, 3));
    cur = fx_add(&fx, tbuf_cursor(4));
    fx_show(&fx, a, cur, 10, 10, 0, 0,
            DMABUF_SCANOUT_PRIMARY_NEW | DMABUF_SCANOUT_CURSOR_NEW);
    updates = st(&fx)->gl_updates;
    g_assert_cmpuint(updates, ==, 1);
    fake_console_set_gl_blocked(fx.con, true);
    fx_show(&fx, a, cur, 20, 10, 0, 0, DMABUF_SCANOUT_CURSOR_MOVED);
    fx_show(&fx, a, cur, 20, 10, 0, 0, DMABUF_SCANOUT_PRIMARY_REDRAW);
    fx_show(&fx, b, cur, 20, 10, 0, 0, DMABUF_SCANOUT_PRIMARY_NEW);
    fx_show(&fx, c, cur, 30, 10, 0, 0,
            DMABUF_SCANOUT_PRIMARY_NEW | DMABUF_SCANOUT_CURSOR_MOVED);
    fx_refresh(&fx);
    g_assert_cmpuint(st(&fx)->gl_updates, ==, updates);
    g_assert_cmpuint(fake_console_count(fx.con, "dpy_gl_update"), ==, 1);
    g_assert_cmpuint(st(&fx)->blocked_changes, ==, 0);
    fake_console_set_gl_blocked(fx.con, false);
    g_assert_false(dmabuf_scanout_busy(fx.s));
    fx_refresh(&fx);
    assert_gl_scanout(&fx, c);
    g_assert_cmpuint(st(&fx)->gl_updates, >, updates);
    g_assert_cmpuint(st(&fx)->gl_cursor_x, ==, 30);
    fx_finish(&fx);
}

/* ------------------------------------------------------------------ */
/* choosing the path */

/*
 * A GL display that reads every frame back (egl-headless) with gl=auto:
 * a linear buffer the CPU can map takes the cpu path.
 */
static void test_path_reads_back_linear_cpu(void)
{
    Fx fx;
    TestBuf *a;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, true, true, DPY_GL_READS_BACK);
    a = fx_add(&fx, tbuf_xrgb(640, 480, 1));
    fx_flip(&fx, a);
    g_assert_cmpint(dmabuf_scanout_path(fx.s), ==, DMABUF_SCANOUT_PATH_CPU);
    assert_shadow(&fx, a);
    g_assert_cmpuint(fake_console_count(fx.con, "dpy_gl_scanout_dmabuf"), ==,
                     0);
    fx_finish(&fx);
}

/*
 * 600 frames alternating a linear and a tiled (unmappable) buffer of one
 * mode, on a reads-back display: the mode moves to the GL path once and
 * stays; at most two info lines; every frame after the move is on screen.
 */
static void test_path_alternating_changes_once(void)
{
    Fx fx;
    TestBuf *lin, *tiled;
    unsigned int infos = shim_info_count();
    const DmabufScanoutStats *sts;
    int i;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, true, true, DPY_GL_READS_BACK);
    lin = fx_add(&fx, tbuf_xrgb(640, 480, 1));
    tiled = fx_add(&fx, tbuf_new_sized(DRM_FORMAT_XRGB8888, 640, 480, 2560,
                                       0, I915_FORMAT_MOD_Y_TILED, 0, 2));
    sts = dmabuf_scanout_stats(fx.s);
    for (i = 0; i < 600; i++) {
        fx_refresh(&fx);
        fx_flip(&fx, i % 2 ? tiled : lin);
        if (i == 0) {
            g_assert_cmpint(dmabuf_scanout_path(fx.s), ==,
                            DMABUF_SCANOUT_PATH_CPU);
        }
    }
    fx_refresh(&fx);
    /* the first choice, and one change */
    g_assert_cmpuint(sts->path_changes, <=, 2);
    g_assert_cmpint(dmabuf_scanout_path(fx.s), ==, DMABUF_SCANOUT_PATH_GL);
    g_assert_cmpuint(shim_info_count() - infos, <=, 2);
    g_assert_cmpuint(sts->not_shown, ==, 0);
    assert_gl_scanout(&fx, tiled);
    fx_no_violation(&fx);

    /* a new mode is chosen for anew: its linear buffer goes to the cpu */
    {
        TestBuf *big = fx_add(&fx, tbuf_xrgb(800, 600, 3));

        fx_refresh(&fx);
        fx_flip(&fx, big);
        g_assert_cmpint(dmabuf_scanout_path(fx.s), ==,
                        DMABUF_SCANOUT_PATH_CPU);
        assert_shadow(&fx, big);
        g_assert_cmpuint(sts->path_changes, ==, 3);
    }
    fx_finish(&fx);
}

/* gl=off: the cpu path whatever the displays; a tiled buffer is not shown */
static void test_path_gl_off_always_cpu(void)
{
    Fx fx;
    TestBuf *lin, *tiled;
    unsigned int warns = shim_warn_count();
    int i;

    fx_init(&fx, DMABUF_SCANOUT_GL_OFF, true, true, 0);
    lin = fx_add(&fx, tbuf_xrgb(640, 480, 1));
    tiled = fx_add(&fx, tbuf_new_sized(DRM_FORMAT_XRGB8888, 640, 480, 2560,
                                       0, I915_FORMAT_MOD_X_TILED, 0, 2));
    for (i = 0; i < 10; i++) {
        fx_refresh(&fx);
        fx_flip(&fx, i % 2 ? tiled : lin);
        g_assert_cmpint(dmabuf_scanout_path(fx.s), ==,
                        DMABUF_SCANOUT_PATH_CPU);
    }
    assert_shadow(&fx, lin);            /* the last good frame */
    g_assert_cmpuint(dmabuf_scanout_stats(fx.s)->not_shown, >=, 5);
    g_assert_cmpuint(shim_warn_count(), ==, warns + 1);
    g_assert_cmpuint(fake_console_count(fx.con, "dpy_gl_scanout_dmabuf"), ==,
                     0);
    fx_finish(&fx);
}

/* A GL display that cannot import dma-bufs: the cpu path */
static void test_path_no_import_cpu(void)
{
    Fx fx;
    TestBuf *a;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, true, false, 0);
    a = fx_add(&fx, tbuf_xrgb(640, 480, 1));
    fx_flip(&fx, a);
    g_assert_cmpint(dmabuf_scanout_path(fx.s), ==, DMABUF_SCANOUT_PATH_CPU);
    assert_shadow(&fx, a);
    fx_finish(&fx);

    /* gl=on too */
    fx_init(&fx, DMABUF_SCANOUT_GL_ON, true, false, 0);
    a = fx_add(&fx, tbuf_xrgb(640, 480, 1));
    fx_flip(&fx, a);
    g_assert_cmpint(dmabuf_scanout_path(fx.s), ==, DMABUF_SCANOUT_PATH_CPU);
    fx_finish(&fx);
}

/* gl=on: the dma-bufs even to a display that reads them back */
static void test_path_gl_on_reads_back(void)
{
    Fx fx;
    TestBuf *a;

    fx_init(&fx, DMABUF_SCANOUT_GL_ON, true, true, DPY_GL_READS_BACK);
    a = fx_add(&fx, tbuf_xrgb(640, 480, 1));
    fx_flip(&fx, a);
    g_assert_cmpint(dmabuf_scanout_path(fx.s), ==, DMABUF_SCANOUT_PATH_GL);
    assert_gl_scanout(&fx, a);
    fx_finish(&fx);
}

/*
 * The displays change (the GL display goes, then comes back): the next
 * refresh shows the frame on the path that suits them, and the console
 * never points at a GL scanout on the cpu path.
 */
static void test_path_displays_change(void)
{
    Fx fx;
    TestBuf *a;
    unsigned int infos = shim_info_count();
    int i;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, true, true, 0);
    a = fx_add(&fx, tbuf_xrgb(640, 480, 1));
    fx_flip(&fx, a);
    assert_gl_scanout(&fx, a);
    fake_console_set_gl(fx.con, false, false, 0);
    fx_refresh(&fx);
    g_assert_cmpint(dmabuf_scanout_path(fx.s), ==, DMABUF_SCANOUT_PATH_CPU);
    assert_shadow(&fx, a);
    fake_console_set_gl(fx.con, true, true, 0);
    fx_refresh(&fx);
    g_assert_cmpint(dmabuf_scanout_path(fx.s), ==, DMABUF_SCANOUT_PATH_GL);
    assert_gl_scanout(&fx, a);
    g_assert_cmpuint(dmabuf_scanout_stats(fx.s)->path_changes, ==, 3);

    /* back and forth: one info line per path, whatever the changes */
    for (i = 0; i < 6; i++) {
        fake_console_set_gl(fx.con, i % 2, i % 2, 0);
        fx_refresh(&fx);
    }
    g_assert_cmpuint(dmabuf_scanout_stats(fx.s)->path_changes, ==, 9);
    g_assert_cmpuint(shim_info_count() - infos, ==, 2);
    fx_finish(&fx);
}

/* ------------------------------------------------------------------ */
/* ownership */

/*
 * The module never closes the device's fds: through GL and cpu frames,
 * cursors, screendumps, releases, a reset and free, the process's open
 * fds stay those the test made, until the test closes them itself.
 */
static void test_fds_never_closed(void)
{
    int before = count_open_fds();
    QemuConsole *con = fake_console_new();
    DmabufScanout *s = dmabuf_scanout_new(con, "fds", DMABUF_SCANOUT_GL_AUTO);
    TestBuf *t[4];
    DmabufScanoutFrame f;
    pixman_image_t *img;
    int i;

    t[0] = tbuf_xrgb(640, 480, 1);
    t[1] = tbuf_xrgb(640, 480, 2);
    t[2] = tbuf_cursor(3);
    t[3] = tbuf_new_sized(DRM_FORMAT_XRGB8888, 640, 480, 2560, 0,
                          I915_FORMAT_MOD_X_TILED, 0, 4);
    for (i = 0; i < 4; i++) {
        t[i]->b = dmabuf_scanout_buffer_new(s, &t[i]->plane);
    }
    g_assert_cmpint(count_open_fds(), ==, before + 4);
    g_assert_cmpuint(dmabuf_scanout_stats(s)->buffers, ==, 4);

    for (i = 0; i < 8; i++) {
        /* GL, GL with its own cursor channel, no GL, reads-back */
        static const uint32_t caps[] = { 0, DPY_GL_CURSOR_IMAGE, 0,
                                         DPY_GL_READS_BACK };

        fake_console_set_gl(con, i % 4 != 2, true, caps[i % 4]);
        memset(&f, 0, sizeof(f));
        f.primary = t[i % 2 ? 3 : i % 3 ? 1 : 0]->b;
        f.cursor = t[2]->b;
        f.cursor_x = i * 10;
        f.changed = DMABUF_SCANOUT_PRIMARY_NEW | DMABUF_SCANOUT_CURSOR_NEW;
        shim_clock_set_ms(5000 + i * 40);
        dmabuf_scanout_show(s, &f);
        dmabuf_scanout_refresh(s);
        img = dmabuf_scanout_snapshot(s, NULL);
        if (img) {
            pixman_image_unref(img);
        }
    }
    g_assert_cmpint(count_open_fds(), ==, before + 4);
    dmabuf_scanout_buffer_release(s, t[0]->b);
    dmabuf_scanout_reset(s);
    for (i = 1; i < 4; i++) {
        dmabuf_scanout_buffer_release(s, t[i]->b);
    }
    g_assert_cmpuint(dmabuf_scanout_stats(s)->buffers, ==, 0);
    dmabuf_scanout_free(s);
    g_assert_cmpuint(fake_console_state(con)->violations, ==, 0);
    fake_console_free(con);
    g_assert_cmpint(count_open_fds(), ==, before + 4);
    for (i = 0; i < 4; i++) {
        g_assert_cmpint(fcntl(t[i]->plane.fd[0], F_GETFD), >=, 0);
        tbuf_free(t[i]);
    }
    g_assert_cmpint(count_open_fds(), ==, before);
}

/*
 * dmabuf_scanout_free takes everything off the console: no GL scanout
 * or cursor, the pointer hidden, the shadow replaced by a placeholder.
 */
static void test_free_takes_all_off(void)
{
    static const bool gl[] = { false, true };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(gl); i++) {
        QemuConsole *con = fake_console_new();
        DmabufScanout *s = dmabuf_scanout_new(con, "t",
                                              DMABUF_SCANOUT_GL_AUTO);
        const FakeConsoleState *cs = fake_console_state(con);
        TestBuf *t = tbuf_xrgb(64, 64, 1);
        TestBuf *c = tbuf_cursor(2);
        DmabufScanoutFrame f = { 0 };

        fake_console_set_gl(con, gl[i], gl[i], 0);
        t->b = dmabuf_scanout_buffer_new(s, &t->plane);
        c->b = dmabuf_scanout_buffer_new(s, &c->plane);
        f.primary = t->b;
        f.cursor = c->b;
        f.changed = DMABUF_SCANOUT_PRIMARY_NEW | DMABUF_SCANOUT_CURSOR_NEW;
        dmabuf_scanout_show(s, &f);
        if (gl[i]) {
            g_assert_cmpint(cs->scanout, ==, FAKE_SCANOUT_DMABUF);
            g_assert_nonnull(cs->gl_cursor);
        } else {
            g_assert_true(cs->mouse_on);
            g_assert_false(cs->surface->flags & QEMU_PLACEHOLDER_FLAG);
        }
        /* the device's reset: all off, the buffers still valid */
        dmabuf_scanout_reset(s);
        g_assert_cmpint(cs->scanout, !=, FAKE_SCANOUT_DMABUF);
        g_assert_null(cs->gl_cursor);
        g_assert_false(cs->mouse_on);
        dmabuf_scanout_show(s, &f);
        dmabuf_scanout_buffer_release(s, t->b);
        dmabuf_scanout_buffer_release(s, c->b);
        dmabuf_scanout_free(s);
        g_assert_cmpint(cs->scanout, !=, FAKE_SCANOUT_DMABUF);
        g_assert_null(cs->gl_cursor);
        g_assert_false(cs->mouse_on);
        if (!gl[i]) {
            /* the shadow is taken back: QEMU's placeholder */
            g_assert_true(cs->surface->flags & QEMU_PLACEHOLDER_FLAG);
        }
        g_assert_cmpuint(cs->violations, ==, 0);
        fake_console_free(con);
        tbuf_free(t);
        tbuf_free(c);
    }
}

/* The module's format table agrees with pixman's names for each format */
/* ------------------------------------------------------------------ */
/* packed YUV 4:2:2 on the cpu path */

typedef struct YuvDef {
    const char *name;
    uint32_t fourcc;
    const char order[5];        /* the four bytes of a pixel pair */
} YuvDef;

static const YuvDef yuvs[] = {
    { "YUYV", DRM_FORMAT_YUYV, "YUyV" },
    { "YVYU", DRM_FORMAT_YVYU, "YVyU" },
    { "UYVY", DRM_FORMAT_UYVY, "UYVy" },
    { "VYUY", DRM_FORMAT_VYUY, "VYUy" },
};

/*
 * BT.601 limited range to RGB, written from the standard's matrix in
 * floating point (independent of the code's fixed point): 0x00RRGGBB.
 */
static uint32_t bt601_rgb(int y, int u, int v)
{
    double c = 255.0 / 219.0 * (y - 16), d = u - 128.0, e = v - 128.0;
    double ch[3] = {
        c + 255.0 / 112.0 * 0.701 * e,
        c - 255.0 / 112.0 * 0.886 * 0.114 / 0.587 * d -
            255.0 / 112.0 * 0.701 * 0.299 / 0.587 * e,
        c + 255.0 / 112.0 * 0.886 * d,
    };
    uint32_t out = 0;
    int i;

    for (i = 0; i < 3; i++) {
        double x = ch[i] < 0 ? 0 : ch[i] > 255 ? 255 : ch[i];

        out = out << 8 | (uint32_t)(x + 0.5);
    }
    return out;
}

static bool close_rgb(uint32_t a, uint32_t b)
{
    int i;

    for (i = 0; i < 24; i += 8) {
        if (abs((int)((a >> i) & 0xff) - (int)((b >> i) & 0xff)) > 1) {
            return false;
        }
    }
    return true;
}

/*
 * Each packed YUV 4:2:2 byte order, at a width of 66 (33 pairs), rows
 * padded to 192 bytes, on a display without GL: every pixel of the shadow
 * is the BT.601 (limited range) colour of its Y and its pair's U and V,
 * within 1 per channel of the exact value; then the same buffer on a GL
 * display that does not read back (x-display-gl=auto) is converted on the
 * CPU too, not given to GL as a texture it cannot sample.
 */
static const FmtDef yuv_fmt = { "yuv", 0, 2, { 0 }, { 0 }, false };

/* A @yd buffer of 66x8 (33 pairs a row), rows 192 bytes apart, and its
 * expected colours (BT.601 of each Y with its pair's U and V) */
static TestBuf *tbuf_yuv(const YuvDef *yd)
{
    const uint32_t w = 66, h = 8, stride = 192;
    TestBuf *t = g_new0(TestBuf, 1);
    g_autofree uint8_t *row = g_malloc0(stride);
    uint32_t x, y;

    t->fmt = &yuv_fmt;
    dmabuf_plane_init(&t->plane);
    t->plane.fourcc = yd->fourcc;
    t->plane.width = w;
    t->plane.height = h;
    t->plane.size = (uint64_t)stride * h;
    t->plane.n_fds = 1;
    t->plane.stride[0] = stride;
    t->plane.fd[0] = fake_dmabuf_memfd(t->plane.size);
    t->expect = g_new0(uint32_t, (size_t)w * h);
    t->argb = g_new0(uint32_t, (size_t)w * h);
    for (y = 0; y < h; y++) {
        for (x = 0; x < w; x += 2) {
            /* the whole range of each component, clamping included */
            int y0 = hash32(1, x, y) & 0xff, y1 = hash32(2, x, y) & 0xff;
            int u = hash32(3, x, y) & 0xff, v = hash32(4, x, y) & 0xff;
            int i;

            for (i = 0; i < 4; i++) {
                char c = yd->order[i];

                row[x * 2 + i] = c == 'Y' ? y0 : c == 'y' ? y1 :
                                 c == 'U' ? u : v;
            }
            t->expect[y * w + x] = bt601_rgb(y0, u, v);
            t->expect[y * w + x + 1] = bt601_rgb(y1, u, v);
        }
        g_assert_cmpint(pwrite(t->plane.fd[0], row, stride,
                               (off_t)y * stride), ==, stride);
    }
    return t;
}

/* the shadow holds @t's expected colours, within 1 per channel */
static void assert_shadow_close(Fx *fx, const TestBuf *t, const char *name)
{
    pixman_image_t *img = st(fx)->surface->image;
    uint32_t x, y, bad = 0, w = t->plane.width;

    g_assert_cmpint(st(fx)->scanout, ==, FAKE_SCANOUT_SURFACE);
    g_assert_cmpint(pixman_image_get_width(img), ==, w);
    for (y = 0; y < t->plane.height; y++) {
        const uint32_t *got = (const uint32_t *)
            ((const uint8_t *)pixman_image_get_data(img) +
             (size_t)y * pixman_image_get_stride(img));

        for (x = 0; x < w; x++) {
            if (!close_rgb(got[x] & 0xffffff, t->expect[y * w + x]) &&
                !bad++) {
                g_test_message("%s: pixel %u,%u is %06x, want %06x", name,
                               x, y, got[x] & 0xffffff, t->expect[y * w + x]);
            }
        }
    }
    g_assert_cmpuint(bad, ==, 0);
}

/*
 * Each packed YUV 4:2:2 byte order on a display without GL: every pixel
 * of the shadow is the BT.601 (limited range) colour of its Y and its
 * pair's U and V, within 1 per channel of the exact value. On a GL display
 * that imports (x-display-gl=auto) the same buffer is converted on the CPU
 * too, not given to GL as a texture it cannot sample; the GL display gets
 * no dma-buf.
 */
static void test_cpu_yuv(gconstpointer data)
{
    const YuvDef *yd = data;
    TestBuf *t;
    Fx fx;

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, false, false, 0);
    t = fx_add(&fx, tbuf_yuv(yd));
    fx_refresh(&fx);
    fx_flip(&fx, t);
    g_assert_cmpint(dmabuf_scanout_path(fx.s), ==, DMABUF_SCANOUT_PATH_CPU);
    assert_shadow_close(&fx, t, yd->name);
    fx_finish(&fx);

    fx_init(&fx, DMABUF_SCANOUT_GL_AUTO, true, true, 0);
    t = fx_add(&fx, tbuf_yuv(yd));
    fx_refresh(&fx);
    fx_flip(&fx, t);
    g_assert_cmpint(dmabuf_scanout_path(fx.s), ==, DMABUF_SCANOUT_PATH_CPU);
    assert_shadow_close(&fx, t, yd->name);
    g_assert_cmpuint(fake_console_count(fx.con, "dpy_gl_scanout_dmabuf"), ==,
                     0);
    fx_finish(&fx);
}

static void test_format_table(void)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(fmts); i++) {
        pixman_format_code_t p = dmabuf_scanout_format_pixman(fmts[i].fourcc);

        g_assert_cmpuint(p, !=, 0);
        g_assert_cmpuint(PIXMAN_FORMAT_BPP(p), ==, fmts[i].cpp * 8);
        /* and with the formats the engine accepts (ui/dmabuf-plane.c) */
        g_assert_cmpuint(dmabuf_format_cpp(fmts[i].fourcc), ==, fmts[i].cpp);
    }
    g_assert_cmpuint(dmabuf_scanout_format_pixman(DRM_FORMAT_NV12), ==, 0);
    g_assert_cmpuint(dmabuf_scanout_format_pixman(0), ==, 0);
}

/*
 * A region plane (no fd; pixels the device's side mapped): the CPU path
 * whatever the displays could import, pixel-exact, front-buffer drawing
 * found by the refresh, screendump; the mapping stays the producer's.
 */
static void test_region_plane_cpu(void)
{
    Fx fx;
    TestBuf *t;
    pixman_image_t *img;
    void *map;

    fx_init(&fx, DMABUF_SCANOUT_GL_ON, true, true, 0);
    t = tbuf_new(DRM_FORMAT_XRGB8888, 640, 480, 2560, 0, 3);
    map = mmap(NULL, t->plane.size, PROT_READ, MAP_SHARED, t->plane.fd[0], 0);
    g_assert(map != MAP_FAILED);
    t->plane.n_fds = 0;          /* the fd stays the test's, for painting */
    t->plane.pixels = map;
    t->plane.pixels_len = t->plane.size;
    fx_add(&fx, t);
    fx_flip(&fx, t);
    g_assert_cmpint(dmabuf_scanout_path(fx.s), ==, DMABUF_SCANOUT_PATH_CPU);
    g_assert_cmpuint(fake_console_count(fx.con, "qemu_dmabuf_new"), ==, 0);
    assert_shadow(&fx, t);
    fake_console_clear(fx.con);
    tbuf_paint(t, 4, 100, 120);
    fx_refresh(&fx);
    assert_damage(&fx, 0, 100, 20);
    assert_shadow(&fx, t);
    img = snapshot_ok(&fx);
    assert_picture(img, t, "snapshot");
    pixman_image_unref(img);
    g_assert_cmpuint(dmabuf_scanout_stats(fx.s)->map_failures, ==, 0);
    dmabuf_scanout_buffer_release(fx.s, t->b);
    t->b = NULL;
    /* released: ui/ never unmapped the producer's mapping */
    g_assert_cmpuint(((volatile uint8_t *)map)[0], ==,
                     ((uint8_t *)map)[0]);
    g_assert_cmpint(munmap(map, t->plane.size), ==, 0);
    fx_finish(&fx);
}

int main(int argc, char **argv)
{
    size_t i;

    g_test_init(&argc, &argv, NULL);
    for (i = 0; i < G_N_ELEMENTS(fmts); i++) {
        g_autofree char *cpu = g_strdup_printf("/scanout/cpu/shadow-pixels/%s",
                                               fmts[i].name);
        g_autofree char *snap = g_strdup_printf(
            "/scanout/snapshot/pixels/%s", fmts[i].name);

        g_test_add_data_func(cpu, &fmts[i], test_cpu_pixels);
        g_test_add_data_func(snap, &fmts[i], test_snapshot_pixels);
    }
    for (i = 0; i < G_N_ELEMENTS(yuvs); i++) {
        g_autofree char *name = g_strdup_printf(
            "/scanout/cpu/yuv422-bt601/%s", yuvs[i].name);

        g_test_add_data_func(name, &yuvs[i], test_cpu_yuv);
    }
    g_test_add_func("/scanout/format-table-has-the-15-formats",
                    test_format_table);
    g_test_add_func("/scanout/cpu/damage/changed-rows-only",
                    test_cpu_damage_rows);
    g_test_add_func("/scanout/cpu/damage/gap-merge", test_cpu_damage_gap_merge);
    g_test_add_func("/scanout/cpu/damage/redraw-and-no-change",
                    test_cpu_damage_redraw);
    g_test_add_func("/scanout/cpu/damage/refresh-finds-changes",
                    test_cpu_refresh_finds_changes);
    g_test_add_func("/scanout/cpu/damage/redraw-hint-rows-first",
                    test_cpu_damage_hint);
    g_test_add_func("/scanout/cpu/unpadded-last-row-shown",
                    test_cpu_unpadded_last_row);
    g_test_add_func("/scanout/cpu/shadow/kept-across-flips-new-on-mode",
                    test_cpu_shadow_kept_across_flips);
    g_test_add_func("/scanout/cpu/shadow/unwatched-copied-on-refresh",
                    test_cpu_unwatched_copies_on_refresh);
    g_test_add_func("/scanout/snapshot/cursor-composited-over",
                    test_snapshot_cursor_over);
    g_test_add_func("/scanout/snapshot/cursor-off-frame-not-drawn",
                    test_snapshot_cursor_off_frame);
    g_test_add_func("/scanout/snapshot/cursor-far-off-frame-not-wrapped",
                    test_snapshot_cursor_far_off_frame);
    g_test_add_func("/scanout/snapshot/error/no-frame",
                    test_snapshot_no_frame);
    g_test_add_func("/scanout/snapshot/error/too-large-buffer-untouched",
                    test_snapshot_too_large);
    g_test_add_func("/scanout/snapshot/error/tiled", test_snapshot_tiled);
    g_test_add_func("/scanout/snapshot/error/buffer-shorter-than-geometry",
                    test_snapshot_short_buffer);
    g_test_add_func("/scanout/cursor/cpu/image-hotspot-position",
                    test_cursor_cpu_define);
    g_test_add_func("/scanout/cursor/cpu/hotspot-unknown-is-0",
                    test_cursor_cpu_hot_unknown);
    g_test_add_func("/scanout/cursor/cpu/argb-from-every-format",
                    test_cursor_cpu_formats);
    g_test_add_func("/scanout/cursor/cpu/change-orders-same-result",
                    test_cursor_cpu_orders);
    g_test_add_func("/scanout/cursor/gl/change-orders-same-result",
                    test_cursor_gl_orders);
    g_test_add_func("/scanout/cursor/gl-cursor-image/change-orders-same-result",
                    test_cursor_image_orders);
    g_test_add_func("/scanout/cursor/gone-hides-pointer",
                    test_cursor_gone_hides);
    g_test_add_func("/scanout/gl/scanout-dmabuf-geometry",
                    test_gl_scanout);
    g_test_add_func("/scanout/gl/no-context-display-gets-dmabufs",
                    test_gl_no_context);
    g_test_add_func("/scanout/gl/cursor-dmabuf-hotspot-position",
                    test_gl_cursor_dmabuf);
    g_test_add_func("/scanout/gl/cursor-image-cap-no-dmabuf-cursor",
                    test_gl_cursor_image_cap);
    g_test_add_func("/scanout/gl/linear-only-keeps-last-frame",
                    test_gl_linear_only);
    g_test_add_func("/scanout/gl/release-while-blocked-no-use-after-free",
                    test_gl_release_while_blocked);
    g_test_add_func("/scanout/gl/free-while-blocked-leaves-nothing",
                    test_gl_free_while_blocked);
    g_test_add_func("/scanout/gl/blocked-no-update-then-newest",
                    test_gl_blocked_then_newest);
    g_test_add_func("/scanout/path/reads-back-linear-takes-cpu",
                    test_path_reads_back_linear_cpu);
    g_test_add_func("/scanout/path/alternating-tiled-changes-once",
                    test_path_alternating_changes_once);
    g_test_add_func("/scanout/path/gl-off-always-cpu",
                    test_path_gl_off_always_cpu);
    g_test_add_func("/scanout/path/no-dmabuf-import-cpu",
                    test_path_no_import_cpu);
    g_test_add_func("/scanout/path/gl-on-reads-back-gets-dmabufs",
                    test_path_gl_on_reads_back);
    g_test_add_func("/scanout/path/displays-change-rechosen",
                    test_path_displays_change);
    g_test_add_func("/scanout/fds/never-closed", test_fds_never_closed);
    g_test_add_func("/scanout/reset-and-free/take-all-off",
                    test_free_takes_all_off);
    g_test_add_func("/scanout/region/plane-cpu-path", test_region_plane_cpu);
    return g_test_run();
}
