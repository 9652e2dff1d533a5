/*
 * Unit tests of the engine's region planes (VFIO_GFX_PLANE_TYPE_REGION)
 * against a fake device that answers as the kernel's mdpy sample does:
 * the probe only with exactly PROBE | REGION, a query only with exactly
 * REGION, whatever plane type is asked (mdpy has no cursor and answers
 * every type with its framebuffer). Its regions are memfds, mapped by the
 * engine through the ops as the device fd would be.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qemu/error-report.h"
#include "qapi/error.h"
#include "standard-headers/drm/drm_fourcc.h"
#include "hw/vfio/display-dmabuf.h"
#include "fake-gfx-plane.h"

#define REGIONS 16

typedef struct FakeRegion {
    int fd;                     /* memfd; -1: no such region */
    uint64_t size;              /* what GET_REGION_INFO says */
    uint32_t flags;
} FakeRegion;

typedef struct Fake {
    struct vfio_device_gfx_plane_info plane;
    FakeRegion region[REGIONS];
    int info_err;               /* GET_REGION_INFO fails with -info_err */
    int map_err;                /* region_map fails with map_err */
    unsigned int queries;
    unsigned int queries_not_primary;
    unsigned int queries_bad_flags;
    unsigned int maps;
    unsigned int unmaps;
    unsigned int live_maps;
} Fake;

static int fake_query(void *opaque, struct vfio_device_gfx_plane_info *info)
{
    Fake *f = opaque;
    uint32_t type = info->drm_plane_type;

    if (info->flags & VFIO_GFX_PLANE_TYPE_PROBE) {
        return info->flags == (VFIO_GFX_PLANE_TYPE_PROBE |
                               VFIO_GFX_PLANE_TYPE_REGION) ? 0 : -EINVAL;
    }
    if (info->flags != VFIO_GFX_PLANE_TYPE_REGION) {
        f->queries_bad_flags++;
        return -EINVAL;
    }
    f->queries++;
    if (type != FAKE_PRIMARY) {
        f->queries_not_primary++;
    }
    *info = f->plane;
    info->argsz = sizeof(*info);
    info->flags = VFIO_GFX_PLANE_TYPE_REGION;
    info->drm_plane_type = type; /* mdpy leaves the caller's */
    return 0;
}

static int fake_get(void *opaque, uint32_t id)
{
    g_assert_not_reached(); /* no dma-bufs here */
    return -EINVAL;
}

static int fake_region_info(void *opaque, uint32_t index,
                            VFIODmabufRegionInfo *info)
{
    Fake *f = opaque;

    if (f->info_err) {
        return -f->info_err;
    }
    if (index >= REGIONS || f->region[index].fd < 0) {
        return -EINVAL;
    }
    info->index = index;
    info->flags = f->region[index].flags;
    info->size = f->region[index].size;
    info->offset = (uint64_t)index << 40;
    return 0;
}

static void *fake_region_map(void *opaque, const VFIODmabufRegionInfo *info,
                             size_t len)
{
    Fake *f = opaque;
    void *addr;

    g_assert_cmpuint(info->index, <, REGIONS);
    g_assert_cmpuint(info->offset, ==, (uint64_t)info->index << 40);
    g_assert_cmpuint(len, <=, info->size);
    if (f->map_err) {
        errno = f->map_err;
        return NULL;
    }
    addr = mmap(NULL, len, PROT_READ, MAP_SHARED, f->region[info->index].fd,
                0);
    if (addr == MAP_FAILED) {
        return NULL;
    }
    f->maps++;
    f->live_maps++;
    return addr;
}

static void fake_region_unmap(void *opaque, void *addr, size_t len)
{
    Fake *f = opaque;

    g_assert_cmpint(munmap(addr, len), ==, 0);
    f->unmaps++;
    f->live_maps--;
}

static const VFIODisplayDmabufOps fake_ops = {
    .query_plane = fake_query,
    .get_dmabuf = fake_get,
    .region_info = fake_region_info,
    .region_map = fake_region_map,
    .region_unmap = fake_region_unmap,
};

/* region @index: @size bytes, each 32-bit word of it @index * 0x01010101 */
static void fake_add_region(Fake *f, uint32_t index, uint64_t size,
                            uint32_t flags)
{
    uint32_t *p;
    size_t i;
    int fd = memfd_create("fake-region", MFD_CLOEXEC);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, 16 << 20), ==, 0);
    p = mmap(NULL, 16 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    g_assert(p != MAP_FAILED);
    for (i = 0; i < (16u << 20) / 4; i++) {
        p[i] = index * 0x01010101u;
    }
    munmap(p, 16 << 20);
    if (f->region[index].fd >= 0) {
        close(f->region[index].fd);
    }
    f->region[index].fd = fd;
    f->region[index].size = size;
    f->region[index].flags = flags;
}

#define RW_MMAP (VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | \
                 VFIO_REGION_INFO_FLAG_MMAP)

/* mdpy's answer: XRGB8888 @w x @h in region @index, size the region's */
static void fake_set_plane(Fake *f, uint32_t index, uint32_t w, uint32_t h)
{
    memset(&f->plane, 0, sizeof(f->plane));
    f->plane.drm_format = DRM_FORMAT_XRGB8888;
    f->plane.width = w;
    f->plane.height = h;
    f->plane.stride = w * 4;
    f->plane.size = (uint32_t)f->region[index].size;
    f->plane.region_index = index;
}

typedef struct Fixture {
    Fake f;
    VFIODisplayDmabuf *d;
    int fds_before;
    int64_t now;
    unsigned int released;
    unsigned int released_readable; /* release saw its pixels mapped */
} Fixture;

static void on_release(void *opaque, VFIODmabufBuffer *buf)
{
    Fixture *fx = opaque;
    volatile uint8_t b;

    fx->released++;
    g_assert_cmpint(buf->plane.n_fds, ==, 0);
    g_assert_cmpint(buf->plane.fd[0], ==, -1);
    if (buf->plane.pixels) {
        b = buf->plane.pixels[buf->plane.pixels_len - 1]; /* still mapped */
        (void)b;
        fx->released_readable++;
    }
}

static void fixture_init(Fixture *fx)
{
    VFIODisplayDmabufConfig cfg;
    unsigned int i;

    memset(fx, 0, sizeof(*fx));
    fx->fds_before = count_open_fds();
    for (i = 0; i < REGIONS; i++) {
        fx->f.region[i].fd = -1;
    }
    vfio_display_dmabuf_config_default(&cfg);
    cfg.region = true;
    fx->d = vfio_display_dmabuf_new(&fake_ops, &fx->f, &cfg);
    vfio_display_dmabuf_set_release(fx->d, on_release, fx);
    fx->now = 1000;
}

static void fixture_finish(Fixture *fx)
{
    unsigned int i;

    g_assert_cmpuint(fx->f.live_maps, ==,
                     vfio_display_dmabuf_stats(fx->d)->maps_open);
    vfio_display_dmabuf_free(fx->d);
    g_assert_cmpuint(fx->f.live_maps, ==, 0);
    g_assert_cmpuint(fx->f.maps, ==, fx->f.unmaps);
    g_assert_cmpuint(fx->released, ==, fx->released_readable);
    g_assert_cmpuint(fx->f.queries_not_primary, ==, 0); /* no cursor asked */
    g_assert_cmpuint(fx->f.queries_bad_flags, ==, 0);
    for (i = 0; i < REGIONS; i++) {
        if (fx->f.region[i].fd >= 0) {
            close(fx->f.region[i].fd);
        }
    }
    g_assert_cmpint(count_open_fds(), ==, fx->fds_before); /* no leak */
}

static unsigned int tick(Fixture *fx)
{
    /* a cursor period later: a dma-buf engine would ask for the cursor */
    fx->now += MAX(vfio_display_dmabuf_next_interval_ms(fx->d),
                   VFIO_DMABUF_CURSOR_PERIOD_MS);
    return vfio_display_dmabuf_update(fx->d, fx->now);
}

static const VFIODisplayDmabufStats *stats(Fixture *fx)
{
    return vfio_display_dmabuf_stats(fx->d);
}

/* ------------------------------------------------------------------ */

static void test_probe(void)
{
    Fake f = { 0 };
    Error *err = NULL;

    g_assert_true(vfio_display_dmabuf_probe_region(&fake_ops, &f, &err));
    g_assert_null(err);
    /* mdpy refuses the dma-buf probe: -EINVAL */
    g_assert_false(vfio_display_dmabuf_probe(&fake_ops, &f, &err));
    g_assert_nonnull(err);
    error_free(err);
}

static void test_first_frame_and_same(void)
{
    Fixture fx;
    const VFIODmabufBuffer *b;
    unsigned int ev, i;

    fixture_init(&fx);
    fake_add_region(&fx.f, 9, 1024 * 768 * 4, RW_MMAP);
    fake_set_plane(&fx.f, 9, 1024, 768);

    ev = tick(&fx);
    g_assert_cmphex(ev, ==, VFIO_DMABUF_EV_NEW_SCANOUT);
    b = vfio_display_dmabuf_primary(fx.d);
    g_assert_nonnull(b);
    g_assert_cmpuint(b->id, ==, 9);
    g_assert_cmpint(b->plane.n_fds, ==, 0);
    g_assert_cmpint(b->plane.fd[0], ==, -1);
    g_assert_nonnull(b->plane.pixels);
    g_assert_cmpuint(b->plane.pixels_len, ==, 1024 * 768 * 4);
    g_assert_cmpuint(b->plane.stride[0], ==, 4096);
    /* the pixels are the region's, from its start */
    g_assert_cmphex(b->plane.pixels[0], ==, 9);
    g_assert_cmphex(b->plane.pixels[b->plane.pixels_len - 1], ==, 9);

    for (i = 0; i < 10; i++) {
        g_assert_cmphex(tick(&fx), ==, VFIO_DMABUF_EV_SAME_BUFFER);
    }
    g_assert_true(vfio_display_dmabuf_primary(fx.d) == b);
    g_assert_cmpuint(fx.f.maps, ==, 1);           /* mapped once */
    g_assert_cmpuint(stats(&fx)->region_maps, ==, 1);
    g_assert_cmpuint(stats(&fx)->maps_open, ==, 1);
    g_assert_cmpuint(stats(&fx)->region_infos, ==, 11); /* every query */
    g_assert_cmpuint(stats(&fx)->queries, ==, 11);
    g_assert_cmpuint(stats(&fx)->frames_reported, ==, 11);
    g_assert_cmpuint(stats(&fx)->flips_seen, ==, 0);
    g_assert_cmpuint(stats(&fx)->gets, ==, 0);
    g_assert_cmpuint(stats(&fx)->fds_open, ==, 0);
    g_assert_null(vfio_display_dmabuf_cursor(fx.d));
    fixture_finish(&fx);
}

/* region 0 (BAR0, as a device that scans out of its VRAM) is a region */
static void test_region_index_zero(void)
{
    Fixture fx;

    fixture_init(&fx);
    fake_add_region(&fx.f, 0, 8 << 20, RW_MMAP);
    fake_set_plane(&fx.f, 0, 800, 600);
    g_assert_cmphex(tick(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);
    g_assert_cmpuint(vfio_display_dmabuf_primary(fx.d)->id, ==, 0);
    /* only the plane's pages are mapped, not all 8 MiB */
    g_assert_cmpuint(vfio_display_dmabuf_primary(fx.d)->plane.pixels_len, ==,
                     ROUND_UP(800 * 600 * 4, qemu_real_host_page_size()));
    g_assert_cmpuint(stats(&fx)->planes_refused, ==, 0);
    fixture_finish(&fx);
}

/* a flip is a plane in another region: seen, each region mapped once */
static void test_flip_between_regions(void)
{
    Fixture fx;
    const VFIODmabufBuffer *a, *b;
    unsigned int i;

    fixture_init(&fx);
    fake_add_region(&fx.f, 10, 640 * 480 * 4, RW_MMAP);
    fake_add_region(&fx.f, 11, 640 * 480 * 4, RW_MMAP);
    fake_set_plane(&fx.f, 10, 640, 480);
    g_assert_cmphex(tick(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);
    a = vfio_display_dmabuf_primary(fx.d);
    for (i = 0; i < 6; i++) {
        fake_set_plane(&fx.f, i % 2 ? 10 : 11, 640, 480);
        g_assert_cmphex(tick(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);
        b = vfio_display_dmabuf_primary(fx.d);
        g_assert_cmpuint(b->id, ==, i % 2 ? 10 : 11);
        g_assert_cmphex(b->plane.pixels[0], ==, b->id);
        g_assert_true(i % 2 ? b == a : b != a);
    }
    g_assert_cmpuint(stats(&fx)->flips_seen, ==, 6);
    g_assert_cmpuint(fx.f.maps, ==, 2);
    g_assert_cmpuint(stats(&fx)->maps_open, ==, 2);
    g_assert_cmpuint(stats(&fx)->cache_hits, ==, 5);
    /* the flip rate drives the poll, as with dma-bufs */
    g_assert_cmpuint(vfio_display_dmabuf_next_interval_ms(fx.d), <=,
                     VFIO_DMABUF_REFRESH_ACTIVE_MS);
    fixture_finish(&fx);
}

/* a new mode in the same region, or the region resized: mapped anew */
static void test_remap_on_geometry_or_size(void)
{
    Fixture fx;

    fixture_init(&fx);
    fake_add_region(&fx.f, 9, 8 << 20, RW_MMAP);
    fake_set_plane(&fx.f, 9, 1024, 768);
    g_assert_cmphex(tick(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);

    fake_set_plane(&fx.f, 9, 800, 600);
    g_assert_cmphex(tick(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);
    g_assert_cmpuint(vfio_display_dmabuf_primary(fx.d)->plane.width, ==, 800);
    g_assert_cmpuint(stats(&fx)->geometry_changes, ==, 1);
    g_assert_cmpuint(fx.f.maps, ==, 2);
    g_assert_cmpuint(fx.f.live_maps, ==, 1);     /* the old one unmapped */
    g_assert_cmpuint(fx.released, ==, 1);

    fx.f.region[9].size = 4 << 20;               /* same plane, smaller */
    g_assert_cmphex(tick(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);
    g_assert_cmpuint(stats(&fx)->geometry_changes, ==, 2);
    g_assert_cmpuint(fx.f.maps, ==, 3);
    g_assert_cmpuint(fx.f.live_maps, ==, 1);
    g_assert_cmphex(tick(&fx), ==, VFIO_DMABUF_EV_SAME_BUFFER);
    fixture_finish(&fx);
}

typedef struct Hostile {
    const char *name;
    VFIODmabufPlaneCheck want;
    void (*apply)(Fake *f);
} Hostile;

static void h_region_short(Fake *f)
{
    f->region[9].size = 1024 * 767 * 4; /* a row short */
}

static void h_not_mmappable(Fake *f)
{
    f->region[9].flags = VFIO_REGION_INFO_FLAG_READ |
                         VFIO_REGION_INFO_FLAG_WRITE;
}

static void h_not_readable(Fake *f)
{
    f->region[9].flags = VFIO_REGION_INFO_FLAG_MMAP;
}

static void h_no_region(Fake *f)
{
    f->plane.region_index = 12; /* no such region */
}

static void h_info_fails(Fake *f)
{
    f->info_err = EIO;
}

static void h_tiled(Fake *f)
{
    f->plane.drm_format_mod = I915_FORMAT_MOD_X_TILED;
}

static void h_stride_short(Fake *f)
{
    f->plane.stride = 1023 * 4;
}

static void h_size_short(Fake *f)
{
    f->plane.size = 4096;
}

static void h_zero_width(Fake *f)
{
    f->plane.width = 0;
}

static void h_bad_fourcc(Fake *f)
{
    f->plane.drm_format = fourcc_code('V', 'G', 'S', '?');
}

static void h_huge_height(Fake *f)
{
    f->plane.height = VFIO_DMABUF_MAX_DIM + 1;
}

static const Hostile hostile[] = {
    { "region short", VFIO_DMABUF_PLANE_REGION_SHORT, h_region_short },
    { "not mmappable", VFIO_DMABUF_PLANE_REGION_BAD, h_not_mmappable },
    { "not readable", VFIO_DMABUF_PLANE_REGION_BAD, h_not_readable },
    { "no such region", VFIO_DMABUF_PLANE_REGION_BAD, h_no_region },
    { "region info fails", VFIO_DMABUF_PLANE_REGION_BAD, h_info_fails },
    { "tiled", VFIO_DMABUF_PLANE_REGION_TILED, h_tiled },
    { "stride short", VFIO_DMABUF_PLANE_BAD_STRIDE, h_stride_short },
    { "size short", VFIO_DMABUF_PLANE_BAD_LENGTH, h_size_short },
    { "zero width", VFIO_DMABUF_PLANE_BAD_SIZE, h_zero_width },
    { "bad fourcc", VFIO_DMABUF_PLANE_BAD_FOURCC, h_bad_fourcc },
    { "huge height", VFIO_DMABUF_PLANE_BAD_SIZE, h_huge_height },
};

/*
 * Each hostile answer is refused for its own reason with one warning
 * however long it lasts, the last good frame stays on screen (its mapping
 * too), nothing more is mapped, and the good plane comes back as the same
 * buffer.
 */
static void test_hostile(void)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(hostile); i++) {
        const Hostile *h = &hostile[i];
        const VFIODmabufBuffer *good;
        unsigned int warns, j;
        Fixture fx;

        fixture_init(&fx);
        fake_add_region(&fx.f, 9, 1024 * 768 * 4, RW_MMAP);
        fake_add_region(&fx.f, 11, 4096, VFIO_REGION_INFO_FLAG_READ);
        fake_set_plane(&fx.f, 9, 1024, 768);
        g_assert_cmphex(tick(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);
        good = vfio_display_dmabuf_primary(fx.d);

        h->apply(&fx.f);
        warns = shim_warn_count();
        for (j = 0; j < 20; j++) {
            g_assert_cmphex(tick(&fx), ==, VFIO_DMABUF_EV_REFUSED);
            g_assert_true(vfio_display_dmabuf_primary(fx.d) == good);
        }
        g_test_message("%s: refused as %s", h->name,
                       vfio_display_dmabuf_check_str(h->want));
        g_assert_cmpuint(shim_warn_count(), ==, warns + 1);
        g_assert_cmpuint(stats(&fx)->planes_refused, ==, 20);
        g_assert_cmpuint(stats(&fx)->refused_by[h->want], ==, 20);
        g_assert_cmpuint(fx.f.maps, ==, 1);
        g_assert_cmphex(good->plane.pixels[0], ==, 9); /* still mapped */

        /* the device heals: the same buffer, not mapped again */
        fake_add_region(&fx.f, 9, 1024 * 768 * 4, RW_MMAP);
        fx.f.info_err = 0;
        fake_set_plane(&fx.f, 9, 1024, 768);
        g_assert_cmphex(tick(&fx), ==, VFIO_DMABUF_EV_SAME_BUFFER);
        g_assert_cmpuint(fx.f.maps, ==, 1);
        fixture_finish(&fx);
    }
}

/* mmap refused: the frame is not shown, one warning, nothing leaks */
static void test_map_fails(void)
{
    Fixture fx;
    unsigned int warns, i;

    fixture_init(&fx);
    fake_add_region(&fx.f, 9, 1024 * 768 * 4, RW_MMAP);
    fake_set_plane(&fx.f, 9, 1024, 768);
    fx.f.map_err = EACCES;
    warns = shim_warn_count();
    for (i = 0; i < 5; i++) {
        g_assert_cmphex(tick(&fx), ==, VFIO_DMABUF_EV_REFUSED);
    }
    g_assert_null(vfio_display_dmabuf_primary(fx.d));
    g_assert_cmpuint(shim_warn_count(), ==, warns + 1);
    g_assert_cmpuint(stats(&fx)->region_map_errors, ==, 5);
    g_assert_cmpuint(stats(&fx)->maps_open, ==, 0);

    /* transient: retried soon, quietly */
    fx.f.map_err = ENOMEM;
    g_assert_cmphex(tick(&fx), ==, VFIO_DMABUF_EV_RETRY);
    g_assert_cmpuint(vfio_display_dmabuf_next_interval_ms(fx.d), ==,
                     VFIO_DMABUF_REFRESH_MIN_MS);
    fx.f.map_err = 0;
    g_assert_cmphex(tick(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);
    g_assert_cmpuint(shim_warn_count(), ==, warns + 1);
    fixture_finish(&fx);
}

/* the scanout goes off and on; reset and the cache bound unmap */
static void test_gone_reset_bound(void)
{
    Fixture fx;
    unsigned int i;

    fixture_init(&fx);
    for (i = 0; i < 10; i++) {
        fake_add_region(&fx.f, i, 256 * 256 * 4, RW_MMAP);
        fake_set_plane(&fx.f, i, 256, 256);
        g_assert_cmphex(tick(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);
    }
    g_assert_cmpuint(stats(&fx)->maps_open, ==, VFIO_DMABUF_CACHE_KEEP);
    g_assert_cmpuint(fx.f.live_maps, ==, VFIO_DMABUF_CACHE_KEEP);
    g_assert_cmpuint(stats(&fx)->evictions, ==, 10 - VFIO_DMABUF_CACHE_KEEP);

    memset(&fx.f.plane, 0, sizeof(fx.f.plane));
    g_assert_cmphex(tick(&fx), ==, VFIO_DMABUF_EV_SCANOUT_GONE);
    g_assert_null(vfio_display_dmabuf_primary(fx.d));

    vfio_display_dmabuf_reset(fx.d);
    g_assert_cmpuint(fx.f.live_maps, ==, 0);
    g_assert_cmpuint(stats(&fx)->maps_open, ==, 0);
    fake_set_plane(&fx.f, 3, 256, 256);
    g_assert_cmphex(tick(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);
    fixture_finish(&fx);
}

/* the check itself: DRM's minimum size, the flags, the index */
static void test_check_region(void)
{
    struct vfio_device_gfx_plane_info p = {
        .drm_plane_type = FAKE_PRIMARY,
        .drm_format = DRM_FORMAT_RGB888,
        .width = 101, .height = 10, .stride = 304, .size = 4096,
        .region_index = 0,
    };
    VFIODmabufRegionInfo r = {
        .index = 0, .flags = RW_MMAP, .size = 304 * 9 + 303,
    };

    g_assert_cmpint(vfio_display_dmabuf_check_region(&p, &r), ==,
                    VFIO_DMABUF_PLANE_OK);
    r.size--;
    g_assert_cmpint(vfio_display_dmabuf_check_region(&p, &r), ==,
                    VFIO_DMABUF_PLANE_REGION_SHORT);
    r.size = 1ULL << 40;
    r.index = 1;                     /* info of another region */
    g_assert_cmpint(vfio_display_dmabuf_check_region(&p, &r), ==,
                    VFIO_DMABUF_PLANE_REGION_BAD);
    r.index = 0;
    /* the dma-buf check refuses index/id 0; the region check does not */
    g_assert_cmpint(vfio_display_dmabuf_check_plane(&p, FAKE_PRIMARY), ==,
                    VFIO_DMABUF_PLANE_BAD_ID);
    p.drm_format_mod = I915_FORMAT_MOD_Y_TILED;
    g_assert_cmpint(vfio_display_dmabuf_check_region(&p, &r), ==,
                    VFIO_DMABUF_PLANE_REGION_TILED);
    memset(&p, 0, sizeof(p));
    p.drm_plane_type = FAKE_PRIMARY;
    g_assert_cmpint(vfio_display_dmabuf_check_region(&p, &r), ==,
                    VFIO_DMABUF_PLANE_EMPTY);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/region/probe", test_probe);
    g_test_add_func("/region/first-frame-and-same", test_first_frame_and_same);
    g_test_add_func("/region/index-zero", test_region_index_zero);
    g_test_add_func("/region/flip-between-regions", test_flip_between_regions);
    g_test_add_func("/region/remap", test_remap_on_geometry_or_size);
    g_test_add_func("/region/hostile", test_hostile);
    g_test_add_func("/region/map-fails", test_map_fails);
    g_test_add_func("/region/gone-reset-bound", test_gone_reset_bound);
    g_test_add_func("/region/check", test_check_region);
    return g_test_run();
}
