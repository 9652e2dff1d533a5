/*
 * The EGL layer against real mdev dma-bufs in the rig VM:
 * - mbochs (the kernel sample, unmodified) exports its dma-bufs read-only
 *   and with sizes that need not be page multiples: Mesa's software
 *   renderer crashes on both. The import must refuse them.
 * - vgpusim exports mappable dma-bufs: its primary plane in each format
 *   and its cursor plane are imported, drawn (egl-blit.c) and checked
 *   against the test pattern the device draws (docs/vgpusim.md).
 *
 * Usage: egl-vfio-test [--tap]; the mdevs come from $RIG_MDEV_mbochs and
 * $RIG_MDEV_vgpusim (set by the rig). A missing one is a skip, or a
 * failure with DMABUF_EGL_TEST_REQUIRE=1.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/vfio.h>

#include "qapi/error.h"
#include "standard-headers/drm/drm_fourcc.h"
#include "ui/dmabuf-egl.h"
#include "egl-blit.h"
#include "rig-vfio.h"

#define PLANE_PRIMARY   1
#define PLANE_CURSOR    2

/* vgpusim's mode for these tests */
#define VGS_W           640
#define VGS_H           480
#define CURSOR_X        200
#define CURSOR_Y        150

typedef struct Vfio {
    RigVfio dev;
    const char *uuid;           /* from the environment */
} Vfio;

static DmabufEglContext *ctx;
static EglBlit *ctx_blit;       /* on ctx */
static bool require_all;

static void skip_or_fail(const char *why)
{
    if (require_all) {
        g_test_message("required but unavailable: %s", why);
        g_test_fail();
    } else {
        g_test_skip(why);
    }
}

/* Fails the test with *@errp's message unless @ok; frees *@errp. */
static void assert_ok(bool ok, Error **errp, const char *what)
{
    if (!ok) {
        g_test_message("%s: %s", what, error_get_pretty(*errp));
        error_free(*errp);
        *errp = NULL;
    }
    g_assert_true(ok);
}

/* container, group, device of the mdev in $RIG_MDEV_<parent> */
static bool vfio_open(Vfio *v, const char *parent)
{
    g_autofree char *env = g_strdup_printf("RIG_MDEV_%s", parent);
    Error *err = NULL;

    v->dev.container = v->dev.group = v->dev.device = -1;
    v->uuid = g_getenv(env);
    if (!ctx) {
        skip_or_fail("no EGL context");
        return false;
    }
    if (!v->uuid) {
        g_autofree char *why = g_strdup_printf("no %s mdev ($%s unset)",
                                               parent, env);
        skip_or_fail(why);
        return false;
    }
    assert_ok(rig_vfio_open(&v->dev, v->uuid, &err), &err, v->uuid);
    return true;
}

static void vfio_close(Vfio *v)
{
    rig_vfio_close(&v->dev);
}

/*
 * QUERY_GFX_PLANE (retrying once: pristine mbochs answers -ENOMEM to the
 * first query of every new mode) and GET_GFX_DMABUF. Returns: the plane,
 * with a new fd that the caller owns.
 */
static void get_plane(Vfio *v, uint32_t type, DmabufPlane *p,
                      struct vfio_device_gfx_plane_info *out)
{
    struct vfio_device_gfx_plane_info info;
    unsigned int try;
    int fd, ret = -1;

    for (try = 0; try < 3 && ret < 0; try++) {
        memset(&info, 0, sizeof(info));
        info.argsz = sizeof(info);
        info.flags = VFIO_GFX_PLANE_TYPE_DMABUF;
        info.drm_plane_type = type;
        ret = ioctl(v->dev.device, VFIO_DEVICE_QUERY_GFX_PLANE, &info);
    }
    g_assert_cmpint(ret, ==, 0);
    g_assert_cmpuint(info.dmabuf_id, !=, 0);
    fd = ioctl(v->dev.device, VFIO_DEVICE_GET_GFX_DMABUF, &info.dmabuf_id);
    g_assert_cmpint(fd, >=, 0);
    dmabuf_plane_init(p);
    p->fourcc = info.drm_format;
    p->modifier = info.drm_format_mod;
    p->width = info.width;
    p->height = info.height;
    p->stride[0] = info.stride;
    p->size = info.size;
    p->n_fds = 1;
    p->fd[0] = fd;
    if (out) {
        *out = info;
    }
}

/* ------------------------------------------------------------------ */
/* mbochs: what Mesa's software renderer would crash on */

static void mbochs_refused(uint16_t w, uint16_t h, const char *expect)
{
    uint64_t bar2, bar2_size;
    Error *err = NULL;
    DmabufPlane p;
    Vfio v;
    off_t size;

    if (!vfio_open(&v, "mbochs")) {
        return;
    }
    if (!dmabuf_egl_context_is_software(ctx)) {
        g_test_skip("a GPU driver imports mbochs dma-bufs fine");
        vfio_close(&v);
        return;
    }
    assert_ok(rig_vfio_region(&v.dev, VFIO_PCI_BAR2_REGION_INDEX, &bar2,
                              &bar2_size, &err), &err, "BAR2");
    g_assert_cmpint(rig_mbochs_set_mode(&v.dev, bar2, w, h, h, 0), ==, 0);

    /* one GET per id: pristine mbochs corrupts memory on a second one */
    get_plane(&v, PLANE_PRIMARY, &p, NULL);
    size = lseek(p.fd[0], 0, SEEK_END);
    g_test_message("mbochs %ux%u: dma-buf of %lld bytes, fd flags 0%o", w, h,
                   (long long)size, fcntl(p.fd[0], F_GETFL) & O_ACCMODE);
    g_assert_null(dmabuf_egl_import(ctx, &p, &err));
    g_assert_nonnull(err);
    g_test_message("refused: %s", error_get_pretty(err));
    g_assert_nonnull(strstr(error_get_pretty(err), expect));
    error_free(err);
    dmabuf_plane_finish(&p);
    g_assert_cmpint(rig_dispi_write(&v.dev, bar2, DISPI_ENABLE, 0), ==, 0);
    vfio_close(&v);
}

/* 800x600x4 = 1920000 bytes: not a whole number of pages */
static void test_mbochs_odd_size(void)
{
    mbochs_refused(800, 600, "not a multiple of the page size");
}

/* 1024x768x4 is 768 pages, but the dma-buf is read-only: mmap fails */
static void test_mbochs_read_only(void)
{
    mbochs_refused(1024, 768, "mmap");
}

/* ------------------------------------------------------------------ */
/* vgpusim: real vGPU dma-bufs through the whole import */

static void sysfs_write(Vfio *v, const char *file, const char *val)
{
    int ret = rig_vgs_write(v->uuid, file, val);

    if (ret < 0) {
        g_test_message("write \"%s\" to vgpusim/%s: %s", val, file,
                       g_strerror(-ret));
        g_assert_not_reached();
    }
}

/* the frame number from vgpusim's "state" file */
static uint32_t vgs_frame(Vfio *v)
{
    g_autofree char *text = NULL;
    int64_t f;

    g_assert_cmpint(rig_vgs_read(v->uuid, "state", &text), ==, 0);
    f = rig_kv(text, "frame");
    g_assert_cmpint(f, >=, 0);
    return (uint32_t)f;
}

static const uint8_t *px_at(const uint8_t *rgba, uint32_t w, uint32_t x,
                            uint32_t y)
{
    return rgba + ((size_t)y * w + x) * 4;
}

static bool is_rgb(const uint8_t *px, int r, int g, int b, int fuzz)
{
    return abs(px[0] - r) <= fuzz && abs(px[1] - g) <= fuzz &&
           abs(px[2] - b) <= fuzz;
}

/* Checks the bars and the frame number of vgpusim's pattern. */
static void check_vgs_pattern(const uint8_t *rgba, uint32_t w, uint32_t h,
                              uint32_t frame)
{
    static const uint8_t bars[8][3] = {
        { 255, 255, 255 }, { 255, 255, 0 }, { 0, 255, 255 }, { 0, 255, 0 },
        { 255, 0, 255 }, { 255, 0, 0 }, { 0, 0, 255 }, { 0, 0, 0 },
    };
    int64_t f;
    uint32_t i;

    for (i = 0; i < 8; i++) {
        uint32_t x = w * i / 8 + w / 16;
        const uint8_t *px = px_at(rgba, w, x, h / 2);

        if (!is_rgb(px, bars[i][0], bars[i][1], bars[i][2], 1)) {
            g_test_message("bar %u at %u,%u: %02x%02x%02x", i, x, h / 2,
                           px[0], px[1], px[2]);
            g_assert_not_reached();
        }
    }
    f = rig_vgs_frame(px_at(rgba, w, 0, 4), DRM_FORMAT_ABGR8888);
    g_assert_cmpint(f, >=, 0); /* the check bits match */
    g_assert_cmpint(f, ==, frame);
}

static uint8_t *draw_and_read(EglBlitTarget *t, const DmabufEglImage *img,
                              const DmabufEglImage *cursor, int32_t x,
                              int32_t y)
{
    uint32_t w = egl_blit_target_width(t), h = egl_blit_target_height(t);
    uint8_t *rgba = g_malloc((size_t)w * h * 4);
    Error *err = NULL;

    g_assert_true(egl_blit_draw(t, img, cursor, x, y, &err));
    g_assert_true(egl_blit_read_pixels(t, DRM_FORMAT_ABGR8888, rgba, w * 4,
                                       &err));
    return rgba;
}

static void test_vgpusim_format(gconstpointer data)
{
    const char *format = data;
    g_autofree uint8_t *rgba = NULL;
    DmabufEglImage *img;
    EglBlitTarget *t;
    Error *err = NULL;
    DmabufPlane p;
    Vfio v;
    char name[5];

    if (!vfio_open(&v, "vgpusim")) {
        return;
    }
    sysfs_write(&v, "pause", "1");
    sysfs_write(&v, "cursor", "off");
    sysfs_write(&v, "mode", G_STRINGIFY(VGS_W) "x" G_STRINGIFY(VGS_H));
    sysfs_write(&v, "format", format);
    sysfs_write(&v, "step", "3");

    get_plane(&v, PLANE_PRIMARY, &p, NULL);
    g_test_message("vgpusim %s: %s %ux%u stride %u", format,
                   dmabuf_format_name(p.fourcc, name), p.width, p.height,
                   p.stride[0]);
    img = dmabuf_egl_import(ctx, &p, &err);
    if (!img) {
        g_test_message("import: %s", error_get_pretty(err));
    }
    g_assert_nonnull(img);
    dmabuf_plane_finish(&p); /* the texture keeps the buffer */
    t = egl_blit_target_new(ctx_blit, VGS_W, VGS_H, &err);
    g_assert_nonnull(t);
    rgba = draw_and_read(t, img, NULL, 0, 0);
    check_vgs_pattern(rgba, VGS_W, VGS_H, vgs_frame(&v));

    /* front-buffer drawing shows through the same import */
    sysfs_write(&v, "front_buffer", "1");
    sysfs_write(&v, "step", "1");
    g_clear_pointer(&rgba, g_free);
    rgba = draw_and_read(t, img, NULL, 0, 0);
    check_vgs_pattern(rgba, VGS_W, VGS_H, vgs_frame(&v));
    sysfs_write(&v, "front_buffer", "0");

    egl_blit_target_free(t);
    dmabuf_egl_image_free(img);
    sysfs_write(&v, "format", "XRGB8888");
    sysfs_write(&v, "pause", "0");
    vfio_close(&v);
}

static void test_vgpusim_cursor(void)
{
    struct vfio_device_gfx_plane_info ci;
    g_autofree uint8_t *plain = NULL;
    g_autofree uint8_t *with = NULL;
    DmabufEglImage *img, *cur;
    EglBlitTarget *t;
    Error *err = NULL;
    DmabufPlane p, pc;
    int32_t cx, cy;
    Vfio v;

    if (!vfio_open(&v, "vgpusim")) {
        return;
    }
    sysfs_write(&v, "pause", "1");
    sysfs_write(&v, "mode", G_STRINGIFY(VGS_W) "x" G_STRINGIFY(VGS_H));
    sysfs_write(&v, "cursor", "on");
    sysfs_write(&v, "cursor_pos", G_STRINGIFY(CURSOR_X) " "
                G_STRINGIFY(CURSOR_Y));
    sysfs_write(&v, "cursor_hot", "32 32");

    get_plane(&v, PLANE_PRIMARY, &p, NULL);
    get_plane(&v, PLANE_CURSOR, &pc, &ci);
    cx = (int32_t)ci.x_pos; /* the plane's top-left (docs/vgpusim.md) */
    cy = (int32_t)ci.y_pos;
    g_test_message("cursor plane %ux%u at %d,%d hot %u,%u", pc.width,
                   pc.height, cx, cy, ci.x_hot, ci.y_hot);
    g_assert_cmpint(cx, ==, CURSOR_X);
    img = dmabuf_egl_import(ctx, &p, &err);
    g_assert_nonnull(img);
    cur = dmabuf_egl_import(ctx, &pc, &err);
    g_assert_nonnull(cur);
    dmabuf_plane_finish(&p);
    dmabuf_plane_finish(&pc);
    t = egl_blit_target_new(ctx_blit, VGS_W, VGS_H, &err);
    g_assert_nonnull(t);

    plain = draw_and_read(t, img, NULL, 0, 0);
    with = draw_and_read(t, img, cur, cx, cy);
    /* transparent corner: the frame shows */
    g_assert_cmpmem(px_at(with, VGS_W, cx + 2, cy + 2), 4,
                    px_at(plain, VGS_W, cx + 2, cy + 2), 4);
    /* white ring at radius 24, red cross at the centre */
    g_assert_true(is_rgb(px_at(with, VGS_W, cx + 32 + 24, cy + 32),
                         255, 255, 255, 1));
    g_assert_true(is_rgb(px_at(with, VGS_W, cx + 32, cy + 32), 255, 0, 0,
                         1));
    /* outside the cursor nothing changed */
    g_assert_cmpmem(px_at(with, VGS_W, cx + 70, cy + 70), 4,
                    px_at(plain, VGS_W, cx + 70, cy + 70), 4);

    egl_blit_target_free(t);
    dmabuf_egl_image_free(cur);
    dmabuf_egl_image_free(img);
    sysfs_write(&v, "cursor", "off");
    sysfs_write(&v, "pause", "0");
    vfio_close(&v);
}

/* a hostile plane whose dma-buf is half the size it claims */
static void test_vgpusim_size_short(void)
{
    Error *err = NULL;
    DmabufPlane p;
    Vfio v;

    if (!vfio_open(&v, "vgpusim")) {
        return;
    }
    sysfs_write(&v, "pause", "1");
    sysfs_write(&v, "mode", G_STRINGIFY(VGS_W) "x" G_STRINGIFY(VGS_H));
    sysfs_write(&v, "fault", "plane size_short");
    get_plane(&v, PLANE_PRIMARY, &p, NULL);
    g_assert_null(dmabuf_egl_import(ctx, &p, &err));
    g_assert_nonnull(err);
    g_test_message("refused: %s", error_get_pretty(err));
    g_assert_nonnull(strstr(error_get_pretty(err), "the geometry needs"));
    error_free(err);
    dmabuf_plane_finish(&p);
    sysfs_write(&v, "fault", "plane none");
    sysfs_write(&v, "pause", "0");
    vfio_close(&v);
}

int main(int argc, char **argv)
{
    static const char *const formats[] = {
        "XRGB8888", "ARGB8888", "XBGR8888", "RGB565",
    };
    Error *err = NULL;
    size_t i;
    int ret;

    g_test_init(&argc, &argv, NULL);
    require_all = g_getenv("DMABUF_EGL_TEST_REQUIRE") != NULL;
    ctx = dmabuf_egl_context_new(NULL, &err);
    if (!ctx) {
        printf("# no EGL context: %s\n", error_get_pretty(err));
        error_free(err);
    } else {
        ctx_blit = egl_blit_new(ctx);
    }

    g_test_add_func("/egl-vfio/mbochs/odd-size", test_mbochs_odd_size);
    g_test_add_func("/egl-vfio/mbochs/read-only", test_mbochs_read_only);
    for (i = 0; i < G_N_ELEMENTS(formats); i++) {
        g_autofree char *path = g_strdup_printf("/egl-vfio/vgpusim/format/%s",
                                                formats[i]);

        g_test_add_data_func(path, formats[i], test_vgpusim_format);
    }
    g_test_add_func("/egl-vfio/vgpusim/cursor", test_vgpusim_cursor);
    g_test_add_func("/egl-vfio/vgpusim/size-short", test_vgpusim_size_short);

    ret = g_test_run();
    egl_blit_free(ctx_blit);
    dmabuf_egl_context_free(ctx);
    return ret;
}
