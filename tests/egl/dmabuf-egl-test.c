/*
 * Tests of the EGL layer (ui/dmabuf-egl-device.c, ui/dmabuf-egl.c) on the
 * machine's EGL (Mesa llvmpipe in the rig VM): dma-bufs with known
 * patterns (udmabuf over a sealed memfd) are imported, drawn with and
 * without a cursor by the tests' blitter (egl-blit.c), read back and
 * compared pixel by pixel; buffers that would crash the software renderer
 * are refused.
 *
 * Skips are explicit: without an EGL device or without /dev/udmabuf the
 * affected tests call g_test_skip(). With DMABUF_EGL_TEST_REQUIRE=1 (the
 * rig sets it) a skip is a failure instead.
 * On a pixel mismatch the shot, the expected image and a diff are written
 * as PPM to $DMABUF_EGL_TEST_OUTDIR (or $RIG_RESULTS, or the current
 * directory) and their paths logged.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/udmabuf.h>

#include "qapi/error.h"
#include "standard-headers/drm/drm_fourcc.h"
#include "ui/dmabuf-egl.h"
#include "shim-trace.h"
#include "egl-blit.h"

#define FMT_UNKNOWN     fourcc_code('V', 'G', 'S', '?') /* no DRM format */

#define W               640
#define H               480
#define CURSOR          64
#define PAGE            4096u
#define MAX_REPORTED    8       /* mismatching pixels logged per compare */

typedef struct Rgba {
    uint8_t r, g, b, a;
} Rgba;

/* A memfd, its mapping and optionally a udmabuf over it. */
typedef struct TestBuf {
    int memfd;
    int dmabuf;
    uint8_t *map;
    size_t size;
} TestBuf;

static DmabufEglContext *ctx;   /* shared by the tests */
static EglBlit *ctx_blit;       /* on ctx */
static char *ctx_error;         /* why there is no ctx */
static bool have_udmabuf;
static bool require_all;        /* DMABUF_EGL_TEST_REQUIRE: no skips */

/* ------------------------------------------------------------------ */
/* helpers */

static void skip_or_fail(const char *why)
{
    if (require_all) {
        g_test_message("required but unavailable: %s", why);
        g_test_fail();
    } else {
        g_test_skip(why);
    }
}

static bool need_ctx(void)
{
    if (!ctx) {
        g_autofree char *why = g_strdup_printf("no EGL context: %s",
                                               ctx_error);
        skip_or_fail(why);
        return false;
    }
    return true;
}

static bool need_dmabuf(void)
{
    if (!need_ctx()) {
        return false;
    }
    if (!have_udmabuf) {
        skip_or_fail("no dma-buf source: /dev/udmabuf is missing");
        return false;
    }
    return true;
}

static int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    g_assert_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }
    closedir(d);
    return n - 1; /* the DIR's own fd */
}

static size_t page_round(size_t n)
{
    return (n + PAGE - 1) / PAGE * PAGE;
}

/* @size bytes of memfd (rounded up to pages if @dmabuf), mapped. */
static void testbuf_init(TestBuf *b, size_t size, bool dmabuf)
{
    b->dmabuf = -1;
    b->size = dmabuf ? page_round(size) : size;
    b->memfd = memfd_create("dmabuf-egl-test", MFD_CLOEXEC |
                            MFD_ALLOW_SEALING);
    g_assert_cmpint(b->memfd, >=, 0);
    g_assert_cmpint(ftruncate(b->memfd, b->size), ==, 0);
    b->map = mmap(NULL, b->size, PROT_READ | PROT_WRITE, MAP_SHARED,
                  b->memfd, 0);
    g_assert_true(b->map != MAP_FAILED);
    if (dmabuf) {
        struct udmabuf_create create = {
            .memfd = b->memfd,
            .flags = UDMABUF_FLAGS_CLOEXEC,
            .offset = 0,
            .size = b->size,
        };
        int dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);

        g_assert_cmpint(dev, >=, 0);
        /* udmabuf wants the memfd unable to shrink */
        g_assert_cmpint(fcntl(b->memfd, F_ADD_SEALS, F_SEAL_SHRINK), ==, 0);
        b->dmabuf = ioctl(dev, UDMABUF_CREATE, &create);
        g_assert_cmpint(b->dmabuf, >=, 0);
        close(dev);
    }
}

static void testbuf_finish(TestBuf *b)
{
    if (b->map && b->map != MAP_FAILED) {
        munmap(b->map, b->size);
    }
    b->map = NULL;
    if (b->dmabuf >= 0) {
        close(b->dmabuf);
    }
    if (b->memfd >= 0) {
        close(b->memfd);
    }
    b->dmabuf = b->memfd = -1;
}

/* A linear single-plane @p over @fd. */
static void plane_set(DmabufPlane *p, int fd, uint32_t fourcc, uint32_t w,
                      uint32_t h, uint32_t stride, uint32_t offset)
{
    dmabuf_plane_init(p);
    p->fourcc = fourcc;
    p->modifier = DRM_FORMAT_MOD_LINEAR;
    p->width = w;
    p->height = h;
    p->stride[0] = stride;
    p->offset[0] = offset;
    p->size = (uint64_t)offset + (uint64_t)stride * h;
    p->n_fds = 1;
    p->fd[0] = fd; /* borrowed from a TestBuf: never finish()ed here */
}

/* The test pattern: every channel varies, alpha too. */
static Rgba pattern(uint32_t x, uint32_t y, unsigned int seed)
{
    Rgba c = {
        .r = (uint8_t)(x * 7 + y * 3 + seed),
        .g = (uint8_t)((x ^ y) + seed * 5),
        .b = (uint8_t)(x * y + 17 + seed),
        .a = (uint8_t)(x + y * 5),
    };
    return c;
}

static void put_pixel(uint8_t *px, uint32_t fourcc, Rgba c)
{
    uint16_t v;

    switch (fourcc) {
    case DRM_FORMAT_XRGB8888:
    case DRM_FORMAT_ARGB8888:
        px[0] = c.b;
        px[1] = c.g;
        px[2] = c.r;
        /* X formats: junk in the padding byte must not show */
        px[3] = fourcc == DRM_FORMAT_ARGB8888 ? c.a : (uint8_t)(c.a ^ 0x5a);
        break;
    case DRM_FORMAT_XBGR8888:
    case DRM_FORMAT_ABGR8888:
        px[0] = c.r;
        px[1] = c.g;
        px[2] = c.b;
        px[3] = fourcc == DRM_FORMAT_ABGR8888 ? c.a : (uint8_t)(c.a ^ 0x5a);
        break;
    case DRM_FORMAT_RGB565:
        v = (uint16_t)(((c.r >> 3) << 11) | ((c.g >> 2) << 5) | (c.b >> 3));
        px[0] = v & 0xff;
        px[1] = v >> 8;
        break;
    default:
        g_assert_not_reached();
    }
}

/* What @c stored as @fourcc looks like when sampled (before blending). */
static Rgba sampled(uint32_t fourcc, Rgba c)
{
    Rgba s = c;

    if (fourcc == DRM_FORMAT_RGB565) {
        s.r = (uint8_t)(((c.r >> 3) * 255 + 15) / 31);
        s.g = (uint8_t)(((c.g >> 2) * 255 + 31) / 63);
        s.b = (uint8_t)(((c.b >> 3) * 255 + 15) / 31);
    }
    if (fourcc != DRM_FORMAT_ARGB8888 && fourcc != DRM_FORMAT_ABGR8888) {
        s.a = 255;
    }
    return s;
}

static unsigned int cpp_of(uint32_t fourcc)
{
    return dmabuf_format_cpp(fourcc);
}

/* Writes the pattern for a @w x @h plane at @offset with @stride. */
static void fill(TestBuf *b, uint32_t fourcc, uint32_t w, uint32_t h,
                 uint32_t stride, uint32_t offset, unsigned int seed)
{
    unsigned int cpp = cpp_of(fourcc);
    uint32_t x, y;

    g_assert_cmpuint((uint64_t)offset + (uint64_t)stride * h, <=, b->size);
    memset(b->map, 0xa5, b->size); /* padding and margins: junk */
    for (y = 0; y < h; y++) {
        for (x = 0; x < w; x++) {
            put_pixel(b->map + offset + (size_t)y * stride + x * cpp, fourcc,
                      pattern(x, y, seed));
        }
    }
}

static const char *out_dir(void)
{
    const char *d = g_getenv("DMABUF_EGL_TEST_OUTDIR");

    if (!d) {
        d = g_getenv("RIG_RESULTS");
    }
    return d ? d : ".";
}

/* @px: w * h RGBA (bytes R, G, B, A), top row first. */
static void write_ppm(const char *path, const uint8_t *px, uint32_t w,
                      uint32_t h)
{
    FILE *f = fopen(path, "wb");
    uint32_t i;

    if (!f) {
        g_test_message("cannot write %s: %s", path, g_strerror(errno));
        return;
    }
    fprintf(f, "P6\n%u %u\n255\n", w, h);
    for (i = 0; i < w * h; i++) {
        fwrite(px + i * 4, 1, 3, f);
    }
    fclose(f);
}

/*
 * Compares the readback @got (RGBA bytes) with @want within @fuzz per
 * channel. On mismatch logs the first pixels and writes shot, expected
 * and diff images named after @name. Returns: the number of mismatches.
 */
static unsigned int compare(const char *name, const uint8_t *got,
                            const uint8_t *want, uint32_t w, uint32_t h,
                            int fuzz)
{
    g_autofree uint8_t *diff = g_malloc0((size_t)w * h * 4);
    unsigned int bad = 0, i, ch;

    for (i = 0; i < w * h; i++) {
        bool ok = true;

        for (ch = 0; ch < 4; ch++) {
            if (abs(got[i * 4 + ch] - want[i * 4 + ch]) > fuzz) {
                ok = false;
            }
        }
        diff[i * 4] = ok ? got[i * 4] / 4 : 255;
        diff[i * 4 + 1] = ok ? got[i * 4 + 1] / 4 : 0;
        diff[i * 4 + 2] = ok ? got[i * 4 + 2] / 4 : 0;
        if (!ok) {
            if (bad < MAX_REPORTED) {
                g_test_message("%s: pixel %u,%u got %02x%02x%02x%02x want "
                               "%02x%02x%02x%02x (RGBA)", name, i % w, i / w,
                               got[i * 4], got[i * 4 + 1], got[i * 4 + 2],
                               got[i * 4 + 3], want[i * 4], want[i * 4 + 1],
                               want[i * 4 + 2], want[i * 4 + 3]);
            }
            bad++;
        }
    }
    if (bad) {
        g_autofree char *shot = g_strdup_printf("%s/%s-shot.ppm", out_dir(),
                                                name);
        g_autofree char *exp = g_strdup_printf("%s/%s-expected.ppm",
                                               out_dir(), name);
        g_autofree char *dif = g_strdup_printf("%s/%s-diff.ppm", out_dir(),
                                               name);

        write_ppm(shot, got, w, h);
        write_ppm(exp, want, w, h);
        write_ppm(dif, diff, w, h);
        g_test_message("%s: %u of %u pixels differ; see %s, %s, %s", name,
                       bad, w * h, shot, exp, dif);
    }
    return bad;
}

static DmabufEglImage *import_ok(const DmabufPlane *p)
{
    Error *err = NULL;
    DmabufEglImage *img = dmabuf_egl_import(ctx, p, &err);

    if (!img) {
        g_test_message("import failed: %s", error_get_pretty(err));
        error_free(err);
    }
    g_assert_nonnull(img);
    return img;
}

static EglBlitTarget *target_ok(uint32_t w, uint32_t h)
{
    Error *err = NULL;
    EglBlitTarget *t = egl_blit_target_new(ctx_blit, w, h, &err);

    if (!t) {
        g_test_message("target failed: %s", error_get_pretty(err));
        error_free(err);
    }
    g_assert_nonnull(t);
    return t;
}

static void blit_ok(EglBlitTarget *t, const DmabufEglImage *primary,
                    const DmabufEglImage *cursor, int32_t x, int32_t y)
{
    Error *err = NULL;

    if (!egl_blit_draw(t, primary, cursor, x, y, &err)) {
        g_test_message("blit failed: %s", error_get_pretty(err));
        error_free(err);
        g_assert_not_reached();
    }
}

/* Reads @t back as RGBA bytes (ABGR8888); returns a new buffer. */
static uint8_t *read_ok(EglBlitTarget *t)
{
    uint32_t w = egl_blit_target_width(t), h = egl_blit_target_height(t);
    uint8_t *px = g_malloc((size_t)w * h * 4);
    Error *err = NULL;

    if (!egl_blit_read_pixels(t, DRM_FORMAT_ABGR8888, px, (size_t)w * 4,
                              &err)) {
        g_test_message("read_pixels failed: %s", error_get_pretty(err));
        error_free(err);
        g_assert_not_reached();
    }
    return px;
}

/* The frame as it must look: pattern of @fourcc, opaque. */
static uint8_t *expected_frame(uint32_t fourcc, uint32_t w, uint32_t h,
                               unsigned int seed)
{
    uint8_t *px = g_malloc((size_t)w * h * 4);
    uint32_t x, y;

    for (y = 0; y < h; y++) {
        for (x = 0; x < w; x++) {
            Rgba s = sampled(fourcc, pattern(x, y, seed));
            uint8_t *d = px + ((size_t)y * w + x) * 4;

            d[0] = s.r;
            d[1] = s.g;
            d[2] = s.b;
            d[3] = 255;
        }
    }
    return px;
}

/* ------------------------------------------------------------------ */
/* context */

static void test_context(void)
{
    if (!need_ctx()) {
        return;
    }
    g_test_message("EGL device %s driver %s software %d",
                   dmabuf_egl_context_device(ctx),
                   dmabuf_egl_context_driver(ctx),
                   dmabuf_egl_context_is_software(ctx));
    /* kms_swrast crashes on import: it must never be chosen */
    g_assert_cmpstr(dmabuf_egl_context_driver(ctx), !=, "kms_swrast");
    if (g_file_test("/dev/dri", G_FILE_TEST_IS_DIR)) {
        g_test_message("/dev/dri exists; kms_swrast was avoided");
    }
    if (g_getenv("DMABUF_EGL_TEST_EXPECT_SOFTWARE")) {
        g_assert_true(dmabuf_egl_context_is_software(ctx));
        g_assert_cmpstr(dmabuf_egl_context_device(ctx), ==, "software");
    }
    g_assert_true(dmabuf_egl_context_supports(ctx, DRM_FORMAT_XRGB8888,
                                              DRM_FORMAT_MOD_LINEAR));
    g_assert_false(dmabuf_egl_context_supports(ctx, FMT_UNKNOWN,
                                               DRM_FORMAT_MOD_LINEAR));
    g_assert_false(dmabuf_egl_context_supports(ctx, DRM_FORMAT_XRGB8888,
                                               I915_FORMAT_MOD_X_TILED));
    g_assert_cmpuint(shim_trace_count("dmabuf_egl_context_new"), >=, 1);
}

/* Is the DRM node /dev/dri/@name served by vgem (which cannot render)? */
static bool node_is_vgem(const char *name)
{
    g_autofree char *sys = g_strdup_printf("/sys/class/drm/%s/device", name);
    char *real = realpath(sys, NULL);
    bool vgem = real && strstr(real, "vgem");

    free(real);
    return vgem;
}

/*
 * An explicit render node: either a driver that imports, or an error; a
 * vgem node (named by libvirt whenever GL is on) gives the device chosen
 * as if none were named, here the software one.
 */
static void test_context_render_node(void)
{
    g_autoptr(GDir) dir = g_dir_open("/dev/dri", 0, NULL);
    const char *name;
    unsigned int tried = 0;

    if (!dir) {
        g_test_skip("no /dev/dri: no render node to try");
        return;
    }
    while ((name = g_dir_read_name(dir)) != NULL) {
        g_autofree char *node = NULL;
        Error *err = NULL;
        DmabufEglContext *c;

        if (!g_str_has_prefix(name, "renderD")) {
            continue;
        }
        node = g_strdup_printf("/dev/dri/%s", name);
        c = dmabuf_egl_context_new(node, &err);
        if (c) {
            g_test_message("%s: driver %s", node,
                           dmabuf_egl_context_driver(c));
            g_assert_cmpstr(dmabuf_egl_context_driver(c), !=, "kms_swrast");
            if (node_is_vgem(name)) {
                g_assert_true(dmabuf_egl_context_is_software(c));
            }
            dmabuf_egl_context_free(c);
        } else {
            g_test_message("%s refused: %s", node, error_get_pretty(err));
            g_assert_nonnull(strstr(error_get_pretty(err), node));
            error_free(err);
        }
        tried++;
    }
    if (!tried) {
        g_test_skip("no render node in /dev/dri");
    }
}

/* Is @word one of the space-separated names in @list (may be NULL)? */
static bool has_word(const char *list, const char *word)
{
    size_t len = strlen(word);
    const char *p = list;

    while (p && (p = strstr(p, word)) != NULL) {
        if ((p == list || p[-1] == ' ') && (p[len] == ' ' || !p[len])) {
            return true;
        }
        p += len;
    }
    return false;
}

/*
 * A node no EGL device has: the device search runs and finds nothing.
 * Only possible where EGL can enumerate devices at all; elsewhere the test
 * says so and skips (fails under DMABUF_EGL_TEST_REQUIRE) instead of
 * passing on whatever error a missing EGL gives.
 */
static void test_context_no_such_node(void)
{
    const char *node = "/nonexistent/renderD999";
    const char *ext = eglQueryString(EGL_NO_DISPLAY, EGL_EXTENSIONS);
    g_autofree char *want = NULL;
    Error *err = NULL;

    if (!has_word(ext, "EGL_EXT_platform_device") ||
        !has_word(ext, "EGL_EXT_platform_base") ||
        !(has_word(ext, "EGL_EXT_device_base") ||
          (has_word(ext, "EGL_EXT_device_enumeration") &&
           has_word(ext, "EGL_EXT_device_query")))) {
        g_autofree char *why = g_strdup_printf(
            "EGL cannot enumerate devices (client extensions: %s)",
            ext ? ext : "none");

        printf("# SKIP no-such-node: %s\n", why);
        skip_or_fail(why);
        return;
    }
    g_assert_null(dmabuf_egl_context_new(node, &err));
    g_assert_nonnull(err);
    g_test_message("%s", error_get_pretty(err));
    want = g_strdup_printf("no EGL device has the DRM node %s", node);
    g_assert_cmpstr(error_get_pretty(err), ==, want);
    error_free(err);
}

/* ------------------------------------------------------------------ */
/* pixels */

static void check_format(uint32_t fourcc, uint32_t stride, uint32_t offset)
{
    int fuzz = fourcc == DRM_FORMAT_RGB565 ? 1 : 0;
    g_autofree uint8_t *want = NULL;
    g_autofree uint8_t *got = NULL;
    g_autofree char *name = NULL;
    EglBlitTarget *t;
    DmabufEglImage *img;
    DmabufPlane p;
    TestBuf b;
    char fmt[5];

    if (!need_dmabuf()) {
        return;
    }
    name = g_strdup_printf("format-%s%s", dmabuf_format_name(fourcc, fmt),
                           offset ? "-offset" : "");
    testbuf_init(&b, (size_t)offset + (size_t)stride * H, true);
    fill(&b, fourcc, W, H, stride, offset, 3);
    plane_set(&p, b.dmabuf, fourcc, W, H, stride, offset);
    img = import_ok(&p);
    t = target_ok(W, H);
    blit_ok(t, img, NULL, 0, 0);
    got = read_ok(t);
    want = expected_frame(fourcc, W, H, 3);
    g_assert_cmpuint(compare(name, got, want, W, H, fuzz), ==, 0);

    egl_blit_target_free(t);
    dmabuf_egl_image_free(img);
    testbuf_finish(&b);
}

static void test_format(gconstpointer data)
{
    uint32_t fourcc = GPOINTER_TO_UINT(data);

    check_format(fourcc, W * cpp_of(fourcc), 0);
}

static void test_format_stride_offset(void)
{
    check_format(DRM_FORMAT_XRGB8888, W * 4 + 256, 2 * PAGE + 64);
}

/* read_pixels into each output layout, with a padded stride */
static void test_read_formats(void)
{
    static const uint32_t outs[] = {
        DRM_FORMAT_XRGB8888, DRM_FORMAT_ARGB8888, DRM_FORMAT_XBGR8888,
        DRM_FORMAT_ABGR8888,
    };
    const uint32_t w = 96, h = 64, stride = w * 4 + 32;
    g_autofree uint8_t *px = g_malloc((size_t)stride * h);
    g_autofree uint8_t *want = expected_frame(DRM_FORMAT_ARGB8888, w, h, 9);
    EglBlitTarget *t;
    DmabufEglImage *img;
    Error *err = NULL;
    DmabufPlane p;
    TestBuf b;
    size_t i;

    if (!need_dmabuf()) {
        return;
    }
    testbuf_init(&b, (size_t)w * 4 * h, true);
    fill(&b, DRM_FORMAT_ARGB8888, w, h, w * 4, 0, 9);
    plane_set(&p, b.dmabuf, DRM_FORMAT_ARGB8888, w, h, w * 4, 0);
    img = import_ok(&p);
    t = target_ok(w, h);
    blit_ok(t, img, NULL, 0, 0);
    for (i = 0; i < G_N_ELEMENTS(outs); i++) {
        uint32_t x, y;

        memset(px, 0x11, (size_t)stride * h);
        g_assert_true(egl_blit_read_pixels(t, outs[i], px, stride, &err));
        for (y = 0; y < h; y++) {
            for (x = 0; x < w; x++) {
                const uint8_t *s = px + (size_t)y * stride + x * 4;
                const uint8_t *e = want + ((size_t)y * w + x) * 4;
                bool bgr = outs[i] == DRM_FORMAT_XRGB8888 ||
                           outs[i] == DRM_FORMAT_ARGB8888;

                g_assert_cmpuint(s[0], ==, bgr ? e[2] : e[0]);
                g_assert_cmpuint(s[1], ==, e[1]);
                g_assert_cmpuint(s[2], ==, bgr ? e[0] : e[2]);
                g_assert_cmpuint(s[3], ==, 255);
            }
            /* the row padding is left alone */
            g_assert_cmpuint(px[(size_t)y * stride + w * 4], ==, 0x11);
        }
    }
    g_assert_false(egl_blit_read_pixels(t, DRM_FORMAT_RGB565, px, stride,
                                        &err));
    g_assert_nonnull(err);
    error_free(err);
    err = NULL;
    g_assert_false(egl_blit_read_pixels(t, DRM_FORMAT_XRGB8888, px, w * 4 - 4,
                                        &err));
    g_assert_nonnull(err);
    error_free(err);

    egl_blit_target_free(t);
    dmabuf_egl_image_free(img);
    testbuf_finish(&b);
}

/* A cursor image: ARGB with every alpha from 0 to 255, opaque border. */
static Rgba cursor_pixel(uint32_t x, uint32_t y)
{
    Rgba c = {
        .r = (uint8_t)(255 - x * 4),
        .g = (uint8_t)(y * 4),
        .b = (uint8_t)(x * y),
        .a = (uint8_t)((x * CURSOR + y) & 0xff),
    };

    if (x == 0 || y == 0 || x == CURSOR - 1 || y == CURSOR - 1) {
        c.a = 255;
    }
    return c;
}

static uint8_t blend(uint8_t src, uint8_t dst, uint8_t a)
{
    return (uint8_t)((src * a + dst * (255 - a) + 127) / 255);
}

static void check_cursor(const char *name, int32_t cx, int32_t cy)
{
    g_autofree uint8_t *want = expected_frame(DRM_FORMAT_XRGB8888, W, H, 1);
    g_autofree uint8_t *got = NULL;
    DmabufEglImage *img, *cur;
    EglBlitTarget *t;
    DmabufPlane p, pc;
    TestBuf b, bc;
    uint32_t x, y;

    if (!need_dmabuf()) {
        return;
    }
    testbuf_init(&b, (size_t)W * 4 * H, true);
    fill(&b, DRM_FORMAT_XRGB8888, W, H, W * 4, 0, 1);
    plane_set(&p, b.dmabuf, DRM_FORMAT_XRGB8888, W, H, W * 4, 0);
    testbuf_init(&bc, CURSOR * 4 * CURSOR, true);
    for (y = 0; y < CURSOR; y++) {
        for (x = 0; x < CURSOR; x++) {
            put_pixel(bc.map + (y * CURSOR + x) * 4, DRM_FORMAT_ARGB8888,
                      cursor_pixel(x, y));
        }
    }
    plane_set(&pc, bc.dmabuf, DRM_FORMAT_ARGB8888, CURSOR, CURSOR, CURSOR * 4,
              0);
    img = import_ok(&p);
    cur = import_ok(&pc);
    t = target_ok(W, H);
    blit_ok(t, img, cur, cx, cy);
    got = read_ok(t);

    for (y = 0; y < CURSOR; y++) {
        for (x = 0; x < CURSOR; x++) {
            int32_t px = cx + (int32_t)x, py = cy + (int32_t)y;
            Rgba c = cursor_pixel(x, y);
            uint8_t *d;

            if (px < 0 || py < 0 || px >= W || py >= H) {
                continue;
            }
            d = want + ((size_t)py * W + px) * 4;
            d[0] = blend(c.r, d[0], c.a);
            d[1] = blend(c.g, d[1], c.a);
            d[2] = blend(c.b, d[2], c.a);
        }
    }
    /* ±1: blending rounds differently from the reference */
    g_assert_cmpuint(compare(name, got, want, W, H, 1), ==, 0);

    egl_blit_target_free(t);
    dmabuf_egl_image_free(cur);
    dmabuf_egl_image_free(img);
    testbuf_finish(&bc);
    testbuf_finish(&b);
}

static void test_cursor(void)
{
    /* plane at 200,150 with hotspot 10,20 */
    check_cursor("cursor", 200 - 10, 150 - 20);
}

static void test_cursor_edges(void)
{
    check_cursor("cursor-top-left", -30, -7);
    check_cursor("cursor-bottom-right", W - 20, H - 40);
}

/* four solid quadrants, drawn at half size: the centres keep colour */
static void test_scaled(void)
{
    static const Rgba quad[4] = {
        { 255, 0, 0, 255 }, { 0, 255, 0, 255 },
        { 0, 0, 255, 255 }, { 255, 255, 255, 255 },
    };
    g_autofree uint8_t *got = NULL;
    EglBlitTarget *t;
    DmabufEglImage *img;
    DmabufPlane p;
    TestBuf b;
    uint32_t x, y, q;

    if (!need_dmabuf()) {
        return;
    }
    testbuf_init(&b, (size_t)W * 4 * H, true);
    for (y = 0; y < H; y++) {
        for (x = 0; x < W; x++) {
            put_pixel(b.map + ((size_t)y * W + x) * 4, DRM_FORMAT_XRGB8888,
                      quad[(y >= H / 2) * 2 + (x >= W / 2)]);
        }
    }
    plane_set(&p, b.dmabuf, DRM_FORMAT_XRGB8888, W, H, W * 4, 0);
    img = import_ok(&p);
    t = target_ok(W / 2, H / 2);
    blit_ok(t, img, NULL, 0, 0);
    got = read_ok(t);
    for (q = 0; q < 4; q++) {
        uint32_t qx = (q % 2) * W / 4 + W / 8, qy = (q / 2) * H / 4 + H / 8;
        const uint8_t *px = got + ((size_t)qy * (W / 2) + qx) * 4;

        g_assert_cmpuint(px[0], ==, quad[q].r);
        g_assert_cmpuint(px[1], ==, quad[q].g);
        g_assert_cmpuint(px[2], ==, quad[q].b);
    }
    egl_blit_target_free(t);
    dmabuf_egl_image_free(img);
    testbuf_finish(&b);
}

/* no primary: black, and a cursor still drawn in target pixels */
static void test_no_primary(void)
{
    g_autofree uint8_t *got = NULL;
    EglBlitTarget *t;
    DmabufEglImage *cur;
    DmabufPlane pc;
    TestBuf bc;
    uint32_t i;

    if (!need_dmabuf()) {
        return;
    }
    testbuf_init(&bc, CURSOR * 4 * CURSOR, true);
    for (i = 0; i < CURSOR * CURSOR; i++) {
        put_pixel(bc.map + i * 4, DRM_FORMAT_ARGB8888,
                  (Rgba){ 255, 255, 255, 255 });
    }
    plane_set(&pc, bc.dmabuf, DRM_FORMAT_ARGB8888, CURSOR, CURSOR, CURSOR * 4,
              0);
    cur = import_ok(&pc);
    t = target_ok(128, 128);
    blit_ok(t, NULL, cur, 10, 20);
    got = read_ok(t);
    g_assert_cmpuint(got[0], ==, 0);                          /* 0,0 */
    g_assert_cmpuint(got[3], ==, 255);
    g_assert_cmpuint(got[(20 * 128 + 10) * 4], ==, 255);      /* inside */
    g_assert_cmpuint(got[(19 * 128 + 10) * 4], ==, 0);        /* above */
    g_assert_cmpuint(got[(83 * 128 + 73) * 4], ==, 255);      /* corner */
    g_assert_cmpuint(got[(84 * 128 + 73) * 4], ==, 0);
    egl_blit_target_free(t);
    dmabuf_egl_image_free(cur);
    testbuf_finish(&bc);
}

/*
 * The import is a live view, survives the close of every fd we had, and
 * gives all its fds back when freed.
 */
static void test_live_view_and_fds(void)
{
    g_autofree uint8_t *want = NULL;
    g_autofree uint8_t *got = NULL;
    EglBlitTarget *t;
    DmabufEglImage *img;
    DmabufPlane p;
    TestBuf b;
    int fds_before;

    if (!need_dmabuf()) {
        return;
    }
    t = target_ok(W, H);
    fds_before = count_open_fds();
    testbuf_init(&b, (size_t)W * 4 * H, true);
    fill(&b, DRM_FORMAT_XBGR8888, W, H, W * 4, 0, 5);
    plane_set(&p, b.dmabuf, DRM_FORMAT_XBGR8888, W, H, W * 4, 0);
    img = import_ok(&p);
    blit_ok(t, img, NULL, 0, 0);
    got = read_ok(t);
    want = expected_frame(DRM_FORMAT_XBGR8888, W, H, 5);
    g_assert_cmpuint(compare("live-1", got, want, W, H, 0), ==, 0);

    /* new pixels, same import */
    fill(&b, DRM_FORMAT_XBGR8888, W, H, W * 4, 0, 77);
    g_clear_pointer(&got, g_free);
    g_clear_pointer(&want, g_free);
    blit_ok(t, img, NULL, 0, 0);
    got = read_ok(t);
    want = expected_frame(DRM_FORMAT_XBGR8888, W, H, 77);
    g_assert_cmpuint(compare("live-2", got, want, W, H, 0), ==, 0);

    /* the driver holds its own reference: close everything of ours */
    testbuf_finish(&b);
    g_clear_pointer(&got, g_free);
    blit_ok(t, img, NULL, 0, 0);
    got = read_ok(t);
    g_assert_cmpuint(compare("live-3", got, want, W, H, 0), ==, 0);

    dmabuf_egl_image_free(img);
    /* the driver's dup of the dma-buf is gone with the texture */
    g_assert_cmpint(count_open_fds(), ==, fds_before);
    egl_blit_target_free(t);
}

/* every call leaves the thread's current context and API as it found them */
static void test_context_restore(void)
{
    EGLDisplay dpy;
    DmabufEglContext *other;
    EglBlitTarget *t;
    Error *err = NULL;

    if (!need_ctx()) {
        return;
    }
    g_assert_true(eglGetCurrentContext() == EGL_NO_CONTEXT);
    t = target_ok(16, 16);
    blit_ok(t, NULL, NULL, 0, 0);
    g_assert_true(eglGetCurrentContext() == EGL_NO_CONTEXT);

    other = dmabuf_egl_context_new_from_display(
        dmabuf_egl_context_egl_display(ctx), EGL_NO_CONTEXT, &err);
    g_assert_nonnull(other);
    dpy = dmabuf_egl_context_egl_display(other);
    g_assert_true(eglMakeCurrent(dpy, EGL_NO_SURFACE, EGL_NO_SURFACE,
                                 dmabuf_egl_context_egl_context(other)));
    blit_ok(t, NULL, NULL, 0, 0);
    g_assert_true(eglGetCurrentContext() ==
                  dmabuf_egl_context_egl_context(other));
    g_assert_true(eglMakeCurrent(dpy, EGL_NO_SURFACE, EGL_NO_SURFACE,
                                 EGL_NO_CONTEXT));

    /* a caller that bound desktop GL keeps it bound */
    if (eglBindAPI(EGL_OPENGL_API)) {
        blit_ok(t, NULL, NULL, 0, 0);
        g_assert_cmphex(eglQueryAPI(), ==, EGL_OPENGL_API);
        eglBindAPI(EGL_OPENGL_ES_API);
    }
    g_assert_true(eglGetCurrentContext() == EGL_NO_CONTEXT);
    dmabuf_egl_context_free(other);
    egl_blit_target_free(t);
}

/* the GTK case: a second context on a borrowed display, sharing objects */
static void test_from_display(void)
{
    g_autofree uint8_t *want = NULL;
    g_autofree uint8_t *got = NULL;
    DmabufEglContext *adopted;
    EglBlit *adopted_blit;
    DmabufEglImage *img, *shared;
    EglBlitTarget *t;
    Error *err = NULL;
    DmabufPlane p;
    TestBuf b;

    if (!need_dmabuf()) {
        return;
    }
    adopted = dmabuf_egl_context_new_from_display(
        dmabuf_egl_context_egl_display(ctx),
        dmabuf_egl_context_egl_context(ctx), &err);
    g_assert_nonnull(adopted);
    g_assert_cmpint(dmabuf_egl_context_is_software(adopted), ==,
                    dmabuf_egl_context_is_software(ctx));

    testbuf_init(&b, (size_t)W * 4 * H, true);
    fill(&b, DRM_FORMAT_XRGB8888, W, H, W * 4, 0, 11);
    plane_set(&p, b.dmabuf, DRM_FORMAT_XRGB8888, W, H, W * 4, 0);
    img = dmabuf_egl_import(adopted, &p, &err);
    g_assert_nonnull(img);
    adopted_blit = egl_blit_new(adopted);
    t = egl_blit_target_new(adopted_blit, W, H, &err);
    g_assert_nonnull(t);
    blit_ok(t, img, NULL, 0, 0);
    got = read_ok(t);
    want = expected_frame(DRM_FORMAT_XRGB8888, W, H, 11);
    g_assert_cmpuint(compare("from-display", got, want, W, H, 0), ==, 0);

    /* an import into the first context is visible in the share group */
    shared = import_ok(&p);
    g_assert_true(eglMakeCurrent(dmabuf_egl_context_egl_display(adopted),
                                 EGL_NO_SURFACE, EGL_NO_SURFACE,
                                 dmabuf_egl_context_egl_context(adopted)));
    g_assert_true(glIsTexture(dmabuf_egl_image_texture(shared)));
    eglMakeCurrent(dmabuf_egl_context_egl_display(adopted), EGL_NO_SURFACE,
                   EGL_NO_SURFACE, EGL_NO_CONTEXT);
    dmabuf_egl_image_free(shared);

    egl_blit_target_free(t);
    egl_blit_free(adopted_blit);
    dmabuf_egl_image_free(img);
    dmabuf_egl_context_free(adopted);
    testbuf_finish(&b);

    /* the borrowed display was not terminated */
    t = target_ok(8, 8);
    blit_ok(t, NULL, NULL, 0, 0);
    egl_blit_target_free(t);
}

/* ------------------------------------------------------------------ */
/* refusals: none of these may reach eglCreateImage or crash */

typedef enum RefuseKind {
    REFUSE_PIPE,            /* no size: lseek fails */
    REFUSE_ODD_SIZE,        /* size not a page multiple */
    REFUSE_WRITE_ONLY,      /* a read-only shared mmap fails */
    REFUSE_NOT_DMABUF,      /* a plain memfd could shrink later */
    REFUSE_SHORT_DMABUF,    /* udmabuf smaller than stride * height */
    REFUSE_OFFSET,          /* offset pushes the rows past the end */
    REFUSE_UNKNOWN_FOURCC,
    REFUSE_TILED,           /* a modifier the driver does not list */
    REFUSE_NO_FD,
    REFUSE_ZERO_WIDTH,
    REFUSE_HUGE,            /* beyond GL_MAX_TEXTURE_SIZE */
    REFUSE_SHORT_STRIDE,
    REFUSE_TWO_FDS,
} RefuseKind;

typedef struct RefuseCase {
    RefuseKind kind;
    bool needs_udmabuf;
    bool software_only;     /* a GPU driver imports these fine */
    const char *expect;     /* in the error message */
} RefuseCase;

static const RefuseCase refuse_cases[] = {
    { REFUSE_PIPE, false, true, "size is unknown" },
    { REFUSE_ODD_SIZE, false, true, "not a multiple of the page size" },
    { REFUSE_WRITE_ONLY, false, true, "mmap" },
    { REFUSE_NOT_DMABUF, false, true, "not a dma-buf" },
    { REFUSE_SHORT_DMABUF, true, false, "holds 4096 bytes" },
    { REFUSE_OFFSET, true, false, "the geometry needs" },
    { REFUSE_UNKNOWN_FOURCC, false, false, "unknown fourcc" },
    { REFUSE_TILED, false, false, "modifier 0x100000000000001" },
    { REFUSE_NO_FD, false, false, "no fd" },
    { REFUSE_ZERO_WIDTH, false, false, "size 0x64" },
    { REFUSE_HUGE, false, false, "is outside" },
    { REFUSE_SHORT_STRIDE, false, false, "stride" },
    { REFUSE_TWO_FDS, false, false, "single-plane" },
};

static const char *const refuse_names[] = {
    [REFUSE_PIPE] = "pipe",
    [REFUSE_ODD_SIZE] = "odd-size",
    [REFUSE_WRITE_ONLY] = "write-only",
    [REFUSE_NOT_DMABUF] = "not-dmabuf",
    [REFUSE_SHORT_DMABUF] = "short-dmabuf",
    [REFUSE_OFFSET] = "offset-past-end",
    [REFUSE_UNKNOWN_FOURCC] = "unknown-fourcc",
    [REFUSE_TILED] = "tiled-modifier",
    [REFUSE_NO_FD] = "no-fd",
    [REFUSE_ZERO_WIDTH] = "zero-width",
    [REFUSE_HUGE] = "huge",
    [REFUSE_SHORT_STRIDE] = "short-stride",
    [REFUSE_TWO_FDS] = "two-fds",
};

static void test_refuse(gconstpointer data)
{
    const RefuseCase *rc = data;
    unsigned int refused = shim_trace_count("dmabuf_egl_import_refused");
    unsigned int imported = shim_trace_count("dmabuf_egl_import");
    const uint32_t w = 64, h = 64, stride = w * 4;
    TestBuf b = { .memfd = -1, .dmabuf = -1 };
    int pipefd[2] = { -1, -1 };
    g_autofree char *path = NULL;
    int fd = -1, fds_before;
    Error *err = NULL;
    DmabufPlane p;

    if (rc->needs_udmabuf ? !need_dmabuf() : !need_ctx()) {
        return;
    }
    if (rc->software_only && !dmabuf_egl_context_is_software(ctx)) {
        g_test_skip("a GPU driver imports this buffer fine");
        return;
    }
    fds_before = count_open_fds();
    switch (rc->kind) {
    case REFUSE_PIPE:
        g_assert_cmpint(pipe2(pipefd, O_CLOEXEC), ==, 0);
        fd = pipefd[0];
        break;
    case REFUSE_ODD_SIZE:
        testbuf_init(&b, PAGE * 4 + 100, false);
        fd = b.memfd;
        break;
    case REFUSE_WRITE_ONLY:
        testbuf_init(&b, PAGE * 4, false);
        path = g_strdup_printf("/proc/self/fd/%d", b.memfd);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        g_assert_cmpint(fd, >=, 0);
        break;
    case REFUSE_NOT_DMABUF:
        testbuf_init(&b, PAGE * 4, false);
        fd = b.memfd;
        break;
    case REFUSE_SHORT_DMABUF:
        testbuf_init(&b, PAGE, true);
        fd = b.dmabuf;
        break;
    default:
        testbuf_init(&b, PAGE * 4, have_udmabuf);
        fd = have_udmabuf ? b.dmabuf : b.memfd;
        break;
    }
    plane_set(&p, fd, DRM_FORMAT_XRGB8888, w, h, stride, 0);
    switch (rc->kind) {
    case REFUSE_OFFSET:
        p.offset[0] = PAGE * 2;
        break;
    case REFUSE_UNKNOWN_FOURCC:
        p.fourcc = FMT_UNKNOWN;
        break;
    case REFUSE_TILED:
        p.modifier = I915_FORMAT_MOD_X_TILED;
        break;
    case REFUSE_NO_FD:
        p.fd[0] = -1;
        break;
    case REFUSE_ZERO_WIDTH:
        p.width = 0;
        break;
    case REFUSE_HUGE:
        p.width = 1 << 20;
        p.stride[0] = 1 << 22;
        break;
    case REFUSE_SHORT_STRIDE:
        p.stride[0] = w * 4 - 4;
        break;
    case REFUSE_TWO_FDS:
        p.n_fds = 2;
        p.fd[1] = fd;
        break;
    default:
        break;
    }

    g_assert_null(dmabuf_egl_import(ctx, &p, &err));
    g_assert_nonnull(err);
    g_test_message("%s: %s", refuse_names[rc->kind], error_get_pretty(err));
    if (!strstr(error_get_pretty(err), rc->expect)) {
        g_test_message("expected \"%s\" in the message", rc->expect);
        g_assert_not_reached();
    }
    error_free(err);
    /* refused before eglCreateImage, and said so in a trace event */
    g_assert_cmpuint(shim_trace_count("dmabuf_egl_import_refused"), ==,
                     refused + 1);
    g_assert_cmpuint(shim_trace_count("dmabuf_egl_import"), ==, imported);

    if (rc->kind == REFUSE_PIPE) {
        close(pipefd[0]);
        close(pipefd[1]);
    } else if (rc->kind == REFUSE_WRITE_ONLY) {
        close(fd);
    }
    testbuf_finish(&b);
    g_assert_cmpint(count_open_fds(), ==, fds_before);
}

/* after every refusal, the context still draws */
static void test_refuse_then_draw(void)
{
    check_format(DRM_FORMAT_XRGB8888, W * 4, 0);
}

/* ------------------------------------------------------------------ */
/* timing at 640x480 (reported, not asserted) */

static double ms_since(gint64 t0)
{
    return (g_get_monotonic_time() - t0) / 1000.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static void test_timing(void)
{
    g_autofree uint8_t *px = g_malloc((size_t)W * H * 4);
    double import_ms, first_ms, blit[9], read[9];
    EglBlitTarget *t;
    DmabufEglImage *img;
    Error *err = NULL;
    DmabufPlane p;
    TestBuf b;
    gint64 t0;
    unsigned int i;
    FILE *f;
    g_autofree char *path = NULL;

    if (!need_dmabuf()) {
        return;
    }
    testbuf_init(&b, (size_t)W * 4 * H, true);
    fill(&b, DRM_FORMAT_XRGB8888, W, H, W * 4, 0, 2);
    plane_set(&p, b.dmabuf, DRM_FORMAT_XRGB8888, W, H, W * 4, 0);
    t = target_ok(W, H);

    t0 = g_get_monotonic_time();
    img = import_ok(&p);
    import_ms = ms_since(t0);

    t0 = g_get_monotonic_time();
    blit_ok(t, img, NULL, 0, 0);
    g_assert_true(egl_blit_read_pixels(t, DRM_FORMAT_XRGB8888, px, W * 4,
                                       &err));
    first_ms = ms_since(t0);

    for (i = 0; i < G_N_ELEMENTS(blit); i++) {
        t0 = g_get_monotonic_time();
        blit_ok(t, img, NULL, 0, 0);
        blit[i] = ms_since(t0);
        t0 = g_get_monotonic_time();
        g_assert_true(egl_blit_read_pixels(t, DRM_FORMAT_XRGB8888, px, W * 4,
                                           &err));
        read[i] = ms_since(t0);
    }
    qsort(blit, G_N_ELEMENTS(blit), sizeof(double), cmp_double);
    qsort(read, G_N_ELEMENTS(read), sizeof(double), cmp_double);
    path = g_strdup_printf("%s/dmabuf-egl-times.txt", out_dir());
    f = fopen(path, "w");
    for (i = 0; i < 2; i++) {
        FILE *o = i ? f : stdout;

        if (!o) {
            continue;
        }
        fprintf(o, "# dmabuf-egl-times %ux%u XRGB8888 device %s: import "
                "%.2f ms; first blit+readback %.1f ms; then (median of %zu, "
                "min..max) blit %.2f ms (%.2f..%.2f), readback %.1f ms "
                "(%.1f..%.1f)\n", W, H, dmabuf_egl_context_device(ctx),
                import_ms, first_ms, G_N_ELEMENTS(blit),
                blit[G_N_ELEMENTS(blit) / 2], blit[0],
                blit[G_N_ELEMENTS(blit) - 1], read[G_N_ELEMENTS(read) / 2],
                read[0], read[G_N_ELEMENTS(read) - 1]);
    }
    if (f) {
        fclose(f);
    }
    dmabuf_egl_image_free(img);
    egl_blit_target_free(t);
    testbuf_finish(&b);
}

int main(int argc, char **argv)
{
    static const uint32_t formats[] = {
        DRM_FORMAT_XRGB8888, DRM_FORMAT_ARGB8888, DRM_FORMAT_XBGR8888,
        DRM_FORMAT_ABGR8888, DRM_FORMAT_RGB565,
    };
    Error *err = NULL;
    gint64 t0;
    size_t i;
    int ret, dev;

    g_test_init(&argc, &argv, NULL);
    require_all = g_getenv("DMABUF_EGL_TEST_REQUIRE") != NULL;

    t0 = g_get_monotonic_time();
    ctx = dmabuf_egl_context_new(g_getenv("DMABUF_EGL_TEST_RENDER_NODE"),
                                 &err);
    if (!ctx) {
        ctx_error = g_strdup(error_get_pretty(err));
        error_free(err);
        printf("# no EGL context: %s\n", ctx_error);
    } else {
        printf("# EGL context on %s (driver %s) in %.0f ms\n",
               dmabuf_egl_context_device(ctx),
               dmabuf_egl_context_driver(ctx),
               (g_get_monotonic_time() - t0) / 1000.0);
        ctx_blit = egl_blit_new(ctx);
    }
    dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
    have_udmabuf = dev >= 0;
    if (dev >= 0) {
        close(dev);
    } else {
        printf("# no dma-buf source: /dev/udmabuf: %s\n", g_strerror(errno));
    }

    g_test_add_func("/egl/context/choice", test_context);
    g_test_add_func("/egl/context/render-node", test_context_render_node);
    g_test_add_func("/egl/context/no-such-node", test_context_no_such_node);
    for (i = 0; i < G_N_ELEMENTS(formats); i++) {
        g_autofree char *path = NULL;
        char name[5];

        path = g_strdup_printf("/egl/pixels/format/%s",
                               dmabuf_format_name(formats[i], name));
        g_test_add_data_func(path, GUINT_TO_POINTER(formats[i]), test_format);
    }
    g_test_add_func("/egl/pixels/stride-offset", test_format_stride_offset);
    g_test_add_func("/egl/pixels/read-formats", test_read_formats);
    g_test_add_func("/egl/pixels/cursor", test_cursor);
    g_test_add_func("/egl/pixels/cursor-edges", test_cursor_edges);
    g_test_add_func("/egl/pixels/scaled", test_scaled);
    g_test_add_func("/egl/pixels/no-primary", test_no_primary);
    g_test_add_func("/egl/import/live-view-and-fds", test_live_view_and_fds);
    g_test_add_func("/egl/context/restore", test_context_restore);
    g_test_add_func("/egl/context/from-display", test_from_display);
    for (i = 0; i < G_N_ELEMENTS(refuse_cases); i++) {
        g_autofree char *path = g_strdup_printf(
            "/egl/refuse/%s", refuse_names[refuse_cases[i].kind]);

        g_test_add_data_func(path, &refuse_cases[i], test_refuse);
    }
    g_test_add_func("/egl/refuse/then-draw", test_refuse_then_draw);
    g_test_add_func("/egl/timing", test_timing);

    ret = g_test_run();
    egl_blit_free(ctx_blit);
    dmabuf_egl_context_free(ctx);
    g_free(ctx_error);
    return ret;
}
