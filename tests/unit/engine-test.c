/*
 * Unit tests of the VFIO display dma-buf engine against a fake device.
 * They assert what a user would see: events, buffers on screen, counters,
 * warnings printed, and the process's open fds.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <fcntl.h>
#include <unistd.h>

#include "qemu/error-report.h"
#include "qapi/error.h"
#include "standard-headers/drm/drm_fourcc.h"
#include "hw/vfio/display-dmabuf.h"
#include "shim-trace.h"
#include "fake-gfx-plane.h"

typedef struct Fixture {
    FakeGfx *gfx;
    VFIODisplayDmabuf *d;
    int fds_before;
    int64_t now;
    unsigned int released;          /* release hook calls */
    unsigned int released_open;     /* ... that saw the fd still open */
    uint32_t released_ids[64];      /* ids of the first calls, in order */
} Fixture;

static void on_release(void *opaque, VFIODmabufBuffer *buf)
{
    Fixture *fx = opaque;

    if (fx->released < G_N_ELEMENTS(fx->released_ids)) {
        fx->released_ids[fx->released] = buf->id;
    }
    fx->released++;
    /* the presenter is told before the fd goes away */
    if (fcntl(buf->plane.fd[0], F_GETFD) >= 0) {
        fx->released_open++;
    }
}

/* Was @id released (at least once) among the recorded releases? */
static bool was_released(const Fixture *fx, uint32_t id)
{
    unsigned int i, n = MIN(fx->released, G_N_ELEMENTS(fx->released_ids));

    for (i = 0; i < n; i++) {
        if (fx->released_ids[i] == id) {
            return true;
        }
    }
    return false;
}

static void fixture_init_cfg(Fixture *fx, const VFIODisplayDmabufConfig *cfg)
{
    memset(fx, 0, sizeof(*fx));
    fx->fds_before = count_open_fds();
    fx->gfx = fake_gfx_new();
    fx->d = vfio_display_dmabuf_new(fake_gfx_ops(), fx->gfx, cfg);
    vfio_display_dmabuf_set_release(fx->d, on_release, fx);
    fx->now = 1000;
}

static void fixture_init(Fixture *fx)
{
    fixture_init_cfg(fx, NULL);
}

static void fixture_finish(Fixture *fx)
{
    /* the engine's count of its fds is the device's count of live ones */
    g_assert_cmpuint(fake_gfx_live_fds(fx->gfx), ==,
                     vfio_display_dmabuf_stats(fx->d)->fds_open);
    vfio_display_dmabuf_free(fx->d);
    g_assert_cmpuint(fake_gfx_live_fds(fx->gfx), ==, 0);
    fake_gfx_free(fx->gfx);
    g_assert_cmpint(count_open_fds(), ==, fx->fds_before); /* no leak */
}

static unsigned int tick(Fixture *fx)
{
    fx->now += vfio_display_dmabuf_next_interval_ms(fx->d);
    return vfio_display_dmabuf_update(fx->d, fx->now);
}

/* a tick at least one cursor period later: both planes are queried */
static unsigned int tick_both(Fixture *fx)
{
    fx->now += MAX(vfio_display_dmabuf_next_interval_ms(fx->d),
                   VFIO_DMABUF_CURSOR_PERIOD_MS);
    return vfio_display_dmabuf_update(fx->d, fx->now);
}

static const VFIODisplayDmabufStats *stats(Fixture *fx)
{
    return vfio_display_dmabuf_stats(fx->d);
}

static uint32_t primary_id(Fixture *fx)
{
    const VFIODmabufBuffer *b = vfio_display_dmabuf_primary(fx->d);

    return b ? b->id : 0;
}

/* ------------------------------------------------------------------ */

static void test_probe(void)
{
    FakeGfx *gfx = fake_gfx_new();
    Error *err = NULL;

    g_assert_true(vfio_display_dmabuf_probe(fake_gfx_ops(), gfx, &err));
    g_assert_null(err);
    fake_gfx_free(gfx);
}

/*
 * A device that cannot export dma-bufs: vfio-pci without a display answers
 * ENOTTY, a region-only mdev EINVAL. The probe fails with the errno.
 */
static void test_probe_fails(void)
{
    static const int errs[] = { ENOTTY, EINVAL, EIO };
    unsigned int i;

    for (i = 0; i < G_N_ELEMENTS(errs); i++) {
        FakeGfx *gfx = fake_gfx_new();
        unsigned int warns = shim_warn_count();
        Error *err = NULL;

        fake_gfx_fail_probe(gfx, errs[i]);
        g_assert_false(vfio_display_dmabuf_probe(fake_gfx_ops(), gfx, &err));
        g_assert_nonnull(err);
        g_test_message("%s", error_get_pretty(err));
        g_assert_nonnull(strstr(error_get_pretty(err), "dma-buf"));
        g_assert_nonnull(strstr(error_get_pretty(err), g_strerror(errs[i])));
        g_assert_cmpuint(fake_gfx_queries(gfx), ==, 1);
        g_assert_cmpuint(fake_gfx_gets(gfx), ==, 0);
        g_assert_cmpuint(shim_warn_count(), ==, warns); /* quiet probe */
        error_free(err);
        fake_gfx_free(gfx);
    }
}

/*
 * The fake's detectors, which the engine tests and fuzz-engine rely on:
 * a GET while a file of that id is open under any fd is counted, and
 * live fds follow closes, number reuse and revocation.
 */
static void test_fake_detectors(void)
{
    const VFIODisplayDmabufOps *ops = fake_gfx_ops();
    FakeGfx *gfx = fake_gfx_new();
    int fds_before = count_open_fds();
    int a, b, dup_a;

    fake_gfx_set_primary(gfx, 1, 64, 64);
    a = ops->get_dmabuf(gfx, 1);
    g_assert_cmpint(a, >=, 0);
    g_assert_cmpuint(fake_gfx_double_gets(gfx), ==, 0);
    g_assert_cmpuint(fake_gfx_live_fds(gfx), ==, 1);
    b = ops->get_dmabuf(gfx, 1); /* a is open: a double GET */
    g_assert_cmpuint(fake_gfx_double_gets(gfx), ==, 1);
    g_assert_cmpuint(fake_gfx_live_fds(gfx), ==, 2);
    close(b);
    dup_a = dup(a);
    close(a);
    g_assert_cmpuint(fake_gfx_live_fds(gfx), ==, 0); /* dup is not ours */
    b = ops->get_dmabuf(gfx, 1); /* the dup keeps the file: double */
    g_assert_cmpuint(fake_gfx_double_gets(gfx), ==, 2);
    close(dup_a);
    close(b);
    b = ops->get_dmabuf(gfx, 1); /* all closed: fine */
    g_assert_cmpuint(fake_gfx_double_gets(gfx), ==, 2);
    g_assert_cmpuint(fake_gfx_live_fds(gfx), ==, 1);
    g_assert_cmpint(fake_gfx_revoke(gfx, 0), ==, b);
    g_assert_cmpuint(fake_gfx_live_fds(gfx), ==, 1);
    b = ops->get_dmabuf(gfx, 1); /* revoked: the old file is gone */
    g_assert_cmpuint(fake_gfx_double_gets(gfx), ==, 2);
    g_assert_cmpuint(fake_gfx_live_fds(gfx), ==, 2);
    close(b);
    close(fake_gfx_revoke(gfx, 0));
    g_assert_cmpuint(fake_gfx_live_fds(gfx), ==, 0);
    g_assert_cmpint(count_open_fds(), ==, fds_before);
    fake_gfx_free(gfx);
}

static void test_first_scanout_then_same(void)
{
    Fixture fx;
    const VFIODmabufBuffer *b;

    fixture_init(&fx);
    g_assert_cmpuint(tick(&fx), ==, VFIO_DMABUF_EV_NONE); /* no scanout */
    fake_gfx_set_primary(fx.gfx, 7, 640, 480);
    g_assert_cmpuint(tick(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);
    b = vfio_display_dmabuf_primary(fx.d);
    g_assert_nonnull(b);
    g_assert_cmpuint(b->id, ==, 7);
    g_assert_cmpuint(b->plane.width, ==, 640);
    g_assert_cmpuint(b->plane.height, ==, 480);
    g_assert_cmpuint(b->plane.stride[0], ==, 2560);
    g_assert_cmpuint(b->plane.fourcc, ==, DRM_FORMAT_XRGB8888);
    g_assert_cmpint(b->plane.fd[0], >=, 0);
    g_assert_cmpint(lseek(b->plane.fd[0], 0, SEEK_END), ==, 640 * 480 * 4);
    g_assert_true(fcntl(b->plane.fd[0], F_GETFD) & FD_CLOEXEC);

    g_assert_cmpuint(tick(&fx), ==, VFIO_DMABUF_EV_SAME_BUFFER);
    g_assert_cmpuint(tick(&fx), ==, VFIO_DMABUF_EV_SAME_BUFFER);
    g_assert_cmpuint(stats(&fx)->gets, ==, 1);
    g_assert_cmpuint(stats(&fx)->cache_misses, ==, 1);
    g_assert_cmpuint(stats(&fx)->cache_hits, ==, 2);
    g_assert_cmpuint(stats(&fx)->frames_reported, ==, 3);
    g_assert_cmpuint(stats(&fx)->flips_seen, ==, 0);
    g_assert_cmpuint(stats(&fx)->fds_open, ==, 1);
    /* primary + cursor each tick */
    g_assert_cmpuint(stats(&fx)->queries, ==, 8);
    g_assert_cmpuint(fake_gfx_queries(fx.gfx), ==, 8);
    fixture_finish(&fx);
    g_assert_cmpuint(fx.released, ==, 1);
}

static void test_cache_hit_miss(void)
{
    Fixture fx;
    unsigned int round, id;

    fixture_init(&fx);
    /* triple buffering: 1, 2, 3, 1, 2, 3, ... */
    for (round = 0; round < 4; round++) {
        for (id = 1; id <= 3; id++) {
            fake_gfx_set_primary(fx.gfx, id, 320, 200);
            g_assert_cmpuint(tick(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);
            g_assert_cmpuint(primary_id(&fx), ==, id);
        }
    }
    g_assert_cmpuint(stats(&fx)->cache_misses, ==, 3);
    g_assert_cmpuint(stats(&fx)->cache_hits, ==, 9);
    g_assert_cmpuint(stats(&fx)->gets, ==, 3);
    g_assert_cmpuint(stats(&fx)->flips_seen, ==, 11);
    g_assert_cmpuint(stats(&fx)->evictions, ==, 0);
    g_assert_cmpuint(vfio_display_dmabuf_cached(fx.d), ==, 3);
    g_assert_cmpuint(fake_gfx_double_gets(fx.gfx), ==, 0);
    fixture_finish(&fx);
}

static void test_cache_bound(void)
{
    Fixture fx;
    uint32_t id;

    fixture_init(&fx);
    for (id = 1; id <= VFIO_DMABUF_CACHE_KEEP + 10; id++) {
        fake_gfx_set_primary(fx.gfx, id, 64, 64);
        g_assert_cmpuint(tick(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);
        g_assert_cmpuint(primary_id(&fx), ==, id);
        g_assert_cmpuint(vfio_display_dmabuf_cached(fx.d), <=,
                         VFIO_DMABUF_CACHE_KEEP);
        g_assert_cmpuint(stats(&fx)->fds_open, ==,
                         vfio_display_dmabuf_cached(fx.d));
    }
    g_assert_cmpuint(stats(&fx)->evictions, ==, 10);
    /* every eviction, least recently used first: ids 1..10, each fd open */
    g_assert_cmpuint(fx.released, ==, 10);
    g_assert_cmpuint(fx.released_open, ==, 10);
    for (id = 1; id <= 10; id++) {
        g_assert_cmpuint(fx.released_ids[id - 1], ==, id);
    }
    /* fds really closed: only KEEP remain open */
    g_assert_cmpint(count_open_fds(), ==,
                    fx.fds_before + VFIO_DMABUF_CACHE_KEEP);
    fixture_finish(&fx);
}

static void test_on_screen_never_evicted(void)
{
    VFIODisplayDmabufConfig cfg;
    const VFIODmabufBuffer *cur;
    Fixture fx;
    uint32_t id;
    int cursor_fd;

    vfio_display_dmabuf_config_default(&cfg);
    cfg.cache_keep = 1; /* smaller than what is on screen */
    fixture_init_cfg(&fx, &cfg);
    fake_gfx_set_cursor(fx.gfx, 1000, 10, 10, 0, 0);
    for (id = 1; id <= 20; id++) {
        fake_gfx_set_primary(fx.gfx, id, 64, 64);
        tick(&fx);
        g_assert_cmpuint(primary_id(&fx), ==, id);
        cur = vfio_display_dmabuf_cursor(fx.d);
        g_assert_nonnull(cur);
        g_assert_cmpuint(cur->id, ==, 1000);
        /* bound: KEEP, but never below what is on screen (2) */
        g_assert_cmpuint(vfio_display_dmabuf_cached(fx.d), <=, 2);
    }
    cur = vfio_display_dmabuf_cursor(fx.d);
    cursor_fd = cur->plane.fd[0];
    g_assert_cmpint(fcntl(cursor_fd, F_GETFD), >=, 0);
    g_assert_cmpuint(stats(&fx)->cursor_changes, ==, 1);
    g_assert_cmpuint(stats(&fx)->gets, ==, 21); /* cursor fetched once */
    fixture_finish(&fx);
}

/*
 * A bound smaller than what is on screen is exceeded only while both
 * planes are shown: when one goes, its buffer is evicted (found by
 * fuzz-engine: a gone plane's buffer stayed cached beyond the bound).
 */
static void test_bound_after_plane_gone(void)
{
    VFIODisplayDmabufConfig cfg;
    Fixture fx;

    vfio_display_dmabuf_config_default(&cfg);
    cfg.cache_keep = 1;
    fixture_init_cfg(&fx, &cfg);
    fake_gfx_set_primary(fx.gfx, 1, 64, 64);
    fake_gfx_set_cursor(fx.gfx, 2, 0, 0, 0, 0);
    tick_both(&fx);
    g_assert_cmpuint(vfio_display_dmabuf_cached(fx.d), ==, 2);
    fake_gfx_clear(fx.gfx, FAKE_CURSOR);
    g_assert_cmpuint(tick_both(&fx), ==,
                     VFIO_DMABUF_EV_SAME_BUFFER | VFIO_DMABUF_EV_CURSOR_GONE);
    g_assert_cmpuint(vfio_display_dmabuf_cached(fx.d), ==, 1);
    g_assert_cmpuint(fx.released, ==, 1);
    g_assert_cmpuint(fx.released_ids[0], ==, 2);
    g_assert_cmpuint(stats(&fx)->evictions, ==, 1);
    /* the primary's buffer fits the bound: kept for the mode to return */
    fake_gfx_clear(fx.gfx, FAKE_PRIMARY);
    g_assert_cmpuint(tick_both(&fx), ==, VFIO_DMABUF_EV_SCANOUT_GONE);
    g_assert_cmpuint(vfio_display_dmabuf_cached(fx.d), ==, 1);
    fixture_finish(&fx);

    cfg.cache_keep = 0; /* nothing kept off screen */
    fixture_init_cfg(&fx, &cfg);
    fake_gfx_set_primary(fx.gfx, 1, 64, 64);
    tick_both(&fx);
    fake_gfx_clear(fx.gfx, FAKE_PRIMARY);
    g_assert_cmpuint(tick_both(&fx), ==, VFIO_DMABUF_EV_SCANOUT_GONE);
    g_assert_cmpuint(vfio_display_dmabuf_cached(fx.d), ==, 0);
    g_assert_cmpuint(fx.released, ==, 1);
    fixture_finish(&fx);
}

static void test_no_get_for_open_id(void)
{
    Fixture fx;
    unsigned int i;

    fixture_init(&fx);
    /* mbochs-style page flip by Y offset: ids 1,2,1,2,... */
    for (i = 0; i < 20; i++) {
        fake_gfx_set_primary(fx.gfx, 1 + (i & 1), 640, 480);
        g_assert_cmpuint(tick(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);
    }
    g_assert_cmpuint(fake_gfx_gets(fx.gfx), ==, 2);
    /* a cursor and a primary plane together, many ticks */
    fake_gfx_set_cursor(fx.gfx, 5, 0, 0, 1, 1);
    for (i = 0; i < 20; i++) {
        tick(&fx);
    }
    g_assert_cmpuint(fake_gfx_gets(fx.gfx), ==, 3);
    g_assert_cmpuint(fake_gfx_double_gets(fx.gfx), ==, 0);
    fixture_finish(&fx);
}

static void test_geometry_change_same_id(void)
{
    Fixture fx;
    const VFIODmabufBuffer *b;

    fixture_init(&fx);
    fake_gfx_set_primary(fx.gfx, 1, 640, 480);
    g_assert_cmpuint(tick(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);
    fake_gfx_set_primary(fx.gfx, 1, 800, 600); /* same id, new geometry */
    g_assert_cmpuint(tick(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);
    b = vfio_display_dmabuf_primary(fx.d);
    g_assert_cmpuint(b->plane.width, ==, 800);
    g_assert_cmpint(lseek(b->plane.fd[0], 0, SEEK_END), ==, 800 * 600 * 4);
    g_assert_cmpuint(stats(&fx)->geometry_changes, ==, 1);
    g_assert_cmpuint(stats(&fx)->gets, ==, 2);
    g_assert_cmpuint(fx.released, ==, 1);
    g_assert_cmpuint(fx.released_ids[0], ==, 1);
    g_assert_cmpuint(fx.released_open, ==, 1);
    /* the old fd was closed before the second GET of id 1 */
    g_assert_cmpuint(fake_gfx_double_gets(fx.gfx), ==, 0);
    g_assert_cmpuint(vfio_display_dmabuf_cached(fx.d), ==, 1);
    fixture_finish(&fx);
}

/*
 * The id on screen changes geometry and the GET of the new buffer fails:
 * the old buffer is gone (its fd had to be closed before the GET), and the
 * tick says so (found by fuzz-engine: the plane vanished with only RETRY
 * or REFUSED reported).
 */
static void test_geometry_change_get_fails(void)
{
    struct vfio_device_gfx_plane_info cur32 = {
        .drm_plane_type = FAKE_CURSOR, .drm_format = DRM_FORMAT_ARGB8888,
        .width = 32, .height = 32, .stride = 128, .size = 128 * 32,
        .dmabuf_id = 2,
    };
    Fixture fx;
    unsigned int ev;

    fixture_init(&fx);
    fake_gfx_set_primary(fx.gfx, 1, 640, 480);
    fake_gfx_set_cursor(fx.gfx, 2, 0, 0, 0, 0);
    tick_both(&fx);
    fake_gfx_set_primary(fx.gfx, 1, 800, 600);
    fake_gfx_fail_get(fx.gfx, EAGAIN, 1);
    ev = tick_both(&fx);
    g_assert_cmpuint(ev, ==, VFIO_DMABUF_EV_RETRY |
                             VFIO_DMABUF_EV_SCANOUT_GONE);
    g_assert_null(vfio_display_dmabuf_primary(fx.d));
    g_assert_cmpuint(fx.released, ==, 1);
    g_assert_cmpuint(tick_both(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);
    g_assert_cmpuint(vfio_display_dmabuf_primary(fx.d)->plane.width, ==, 800);

    fake_gfx_set_plane(fx.gfx, FAKE_CURSOR, &cur32);
    fake_gfx_fail_get(fx.gfx, ENOENT, 1);
    ev = tick_both(&fx);
    g_assert_cmpuint(ev, ==, VFIO_DMABUF_EV_SAME_BUFFER |
                             VFIO_DMABUF_EV_REFUSED |
                             VFIO_DMABUF_EV_CURSOR_GONE);
    g_assert_null(vfio_display_dmabuf_cursor(fx.d));
    g_assert_null(vfio_display_dmabuf_cursor_pos(fx.d));
    g_assert_cmpuint(tick_both(&fx), ==, VFIO_DMABUF_EV_SAME_BUFFER |
                                    VFIO_DMABUF_EV_CURSOR_NEW);
    g_assert_cmpuint(fake_gfx_double_gets(fx.gfx), ==, 0);
    fixture_finish(&fx);
}

static void test_fd_count_teardown(void)
{
    Fixture fx;
    uint32_t id;

    fixture_init(&fx);
    fake_gfx_set_cursor(fx.gfx, 99, 1, 2, 3, 4);
    for (id = 1; id <= 4; id++) {
        fake_gfx_set_primary(fx.gfx, id, 128, 128);
        tick(&fx);
    }
    g_assert_cmpint(count_open_fds(), ==, fx.fds_before + 5);
    g_assert_cmpuint(stats(&fx)->fds_open, ==, 5);
    fixture_finish(&fx); /* asserts the count is back */
    g_assert_cmpuint(fx.released, ==, 5);
}

/*
 * The device takes a buffer away behind the engine's fd (unplug): the fd
 * stays the engine's, is released and closed once, and the id can be
 * fetched again afterwards.
 */
static void test_fd_revoked(void)
{
    Fixture fx;
    int fd;

    fixture_init(&fx);
    fake_gfx_set_primary(fx.gfx, 1, 64, 64);
    tick(&fx);
    g_assert_cmpuint(fake_gfx_live_fds(fx.gfx), ==, 1);
    fd = fake_gfx_revoke(fx.gfx, 0);
    g_assert_cmpint(fd, ==, vfio_display_dmabuf_primary(fx.d)->plane.fd[0]);
    g_assert_cmpuint(tick(&fx), ==, VFIO_DMABUF_EV_SAME_BUFFER);
    g_assert_cmpuint(fake_gfx_live_fds(fx.gfx), ==, 1);
    g_assert_cmpint(count_open_fds(), ==, fx.fds_before + 1);
    vfio_display_dmabuf_reset(fx.d);
    g_assert_cmpuint(fx.released, ==, 1);
    g_assert_cmpuint(fx.released_open, ==, 1);
    g_assert_cmpuint(fake_gfx_live_fds(fx.gfx), ==, 0);
    g_assert_cmpint(count_open_fds(), ==, fx.fds_before);
    g_assert_cmpuint(tick(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);
    g_assert_cmpuint(fake_gfx_gets(fx.gfx), ==, 2);
    g_assert_cmpuint(fake_gfx_double_gets(fx.gfx), ==, 0);
    g_assert_cmpint(fake_gfx_revoke(fx.gfx, 5), >=, 0); /* n wraps */
    fixture_finish(&fx);
}

static void test_transient_errors(void)
{
    static const int errs[] = { ENOMEM, EAGAIN, EINTR, EBUSY };
    unsigned int i;

    for (i = 0; i < G_N_ELEMENTS(errs); i++) {
        unsigned int warns = shim_warn_count();
        Fixture fx;

        fixture_init(&fx);
        fake_gfx_set_primary(fx.gfx, 1, 640, 480);
        /* mbochs: the first query of every new mode fails with ENOMEM */
        fake_gfx_fail_query(fx.gfx, FAKE_PRIMARY, errs[i], 1);
        g_assert_cmpuint(tick(&fx) & VFIO_DMABUF_EV_RETRY, !=, 0);
        g_assert_null(vfio_display_dmabuf_primary(fx.d));
        g_assert_cmpuint(vfio_display_dmabuf_next_interval_ms(fx.d), ==,
                         VFIO_DMABUF_REFRESH_MIN_MS);
        g_assert_cmpuint(tick(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);
        g_assert_cmpuint(stats(&fx)->query_transient, ==, 1);
        g_assert_cmpuint(stats(&fx)->query_errors, ==, 0);
        g_assert_cmpuint(shim_warn_count(), ==, warns); /* not an error */

        /* a transient GET failure is retried too */
        fake_gfx_set_primary(fx.gfx, 2, 640, 480);
        fake_gfx_fail_get(fx.gfx, EAGAIN, 1);
        g_assert_cmpuint(tick(&fx) & VFIO_DMABUF_EV_RETRY, !=, 0);
        g_assert_cmpuint(primary_id(&fx), ==, 1); /* last frame kept */
        g_assert_cmpuint(tick(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);
        g_assert_cmpuint(primary_id(&fx), ==, 2);
        g_assert_cmpuint(shim_warn_count(), ==, warns);
        fixture_finish(&fx);
    }
}

/*
 * A device with a display event: each update is one event, so the cursor
 * is queried every time (even 1 ms after the last), and the poll between
 * events is the slow safety one; retries still come fast.
 */
static void test_event_driven(void)
{
    Fixture fx;
    unsigned int q;

    fixture_init(&fx);
    vfio_display_dmabuf_set_event_driven(fx.d, true);
    fake_gfx_set_primary(fx.gfx, 1, 640, 480);
    fake_gfx_set_cursor(fx.gfx, 10, 100, 50, 2, 3);
    fx.now += 1;
    g_assert_cmpuint(vfio_display_dmabuf_update(fx.d, fx.now), ==,
                     VFIO_DMABUF_EV_NEW_SCANOUT | VFIO_DMABUF_EV_CURSOR_NEW);
    g_assert_cmpuint(vfio_display_dmabuf_next_interval_ms(fx.d), ==,
                     VFIO_DMABUF_REFRESH_MAX_MS);
    /* an event 1 ms later, a cursor move: seen at once */
    fake_gfx_set_cursor(fx.gfx, 10, 101, 50, 2, 3);
    q = fake_gfx_queries(fx.gfx);
    fx.now += 1;
    g_assert_cmpuint(vfio_display_dmabuf_update(fx.d, fx.now), ==,
                     VFIO_DMABUF_EV_SAME_BUFFER | VFIO_DMABUF_EV_CURSOR_MOVED);
    g_assert_cmpuint(fake_gfx_queries(fx.gfx) - q, ==, 2);
    /* a flip at 144 Hz stays at the safety poll, no adaptive speed-up */
    fake_gfx_set_primary(fx.gfx, 2, 640, 480);
    fx.now += 7;
    g_assert_cmpuint(vfio_display_dmabuf_update(fx.d, fx.now) &
                     VFIO_DMABUF_EV_NEW_SCANOUT, !=, 0);
    g_assert_cmpuint(vfio_display_dmabuf_next_interval_ms(fx.d), ==,
                     VFIO_DMABUF_REFRESH_MAX_MS);
    /* a transient error is retried at the fast rate */
    fake_gfx_set_primary(fx.gfx, 3, 640, 480);
    fake_gfx_fail_query(fx.gfx, FAKE_PRIMARY, EAGAIN, 1);
    fx.now += 1;
    g_assert_cmpuint(vfio_display_dmabuf_update(fx.d, fx.now) &
                     VFIO_DMABUF_EV_RETRY, !=, 0);
    g_assert_cmpuint(vfio_display_dmabuf_next_interval_ms(fx.d), ==,
                     VFIO_DMABUF_REFRESH_MIN_MS);
    /* off again: the adaptive poll, the cursor rate-limited */
    vfio_display_dmabuf_set_event_driven(fx.d, false);
    g_assert_cmpuint(vfio_display_dmabuf_next_interval_ms(fx.d), ==,
                     VFIO_DMABUF_REFRESH_ACTIVE_MS);
    fixture_finish(&fx);
}

/* an event naming one plane queries that plane only */
static void test_event_planes_query(void)
{
    Fixture fx;
    unsigned int q;

    fixture_init(&fx);
    vfio_display_dmabuf_set_event_driven(fx.d, true);
    fake_gfx_set_primary(fx.gfx, 1, 640, 480);
    fake_gfx_set_cursor(fx.gfx, 10, 100, 50, 2, 3);
    fx.now += 1;
    g_assert_cmpuint(vfio_display_dmabuf_update(fx.d, fx.now), ==,
                     VFIO_DMABUF_EV_NEW_SCANOUT | VFIO_DMABUF_EV_CURSOR_NEW);
    /* cursor event: one query, the move seen, the primary not asked */
    fake_gfx_set_cursor(fx.gfx, 10, 120, 50, 2, 3);
    fake_gfx_set_primary(fx.gfx, 2, 640, 480);
    q = fake_gfx_queries(fx.gfx);
    fx.now += 1;
    g_assert_cmpuint(vfio_display_dmabuf_update_planes(fx.d, fx.now,
                         VFIO_DMABUF_QUERY_CURSOR), ==,
                     VFIO_DMABUF_EV_CURSOR_MOVED);
    g_assert_cmpuint(fake_gfx_queries(fx.gfx) - q, ==, 1);
    g_assert_cmpuint(primary_id(&fx), ==, 1);
    /* primary event: one query, the flip seen */
    q = fake_gfx_queries(fx.gfx);
    fx.now += 1;
    g_assert_cmpuint(vfio_display_dmabuf_update_planes(fx.d, fx.now,
                         VFIO_DMABUF_QUERY_PRIMARY), ==,
                     VFIO_DMABUF_EV_NEW_SCANOUT);
    g_assert_cmpuint(fake_gfx_queries(fx.gfx) - q, ==, 1);
    g_assert_cmpuint(primary_id(&fx), ==, 2);
    g_assert_cmpuint(stats(&fx)->flips_seen, ==, 1);
    /* no plane named: nothing asked, nothing changes */
    q = fake_gfx_queries(fx.gfx);
    fx.now += 1;
    g_assert_cmpuint(vfio_display_dmabuf_update_planes(fx.d, fx.now, 0), ==,
                     VFIO_DMABUF_EV_NONE);
    g_assert_cmpuint(fake_gfx_queries(fx.gfx) - q, ==, 0);
    fixture_finish(&fx);
}

/*
 * Event-driven, a plane whose change was never signalled (signalled before
 * the event was armed, or lost) is still asked for: at the first tick,
 * whatever the event names, and at least every refresh_max_ms while the
 * other plane's events keep coming every 16 ms (they keep the safety poll
 * from ever running).
 */
static void test_event_other_plane_asked(void)
{
    Fixture fx;
    unsigned int i, id, ev = 0, q0;

    fixture_init(&fx);
    vfio_display_dmabuf_set_event_driven(fx.d, true);
    fake_gfx_set_primary(fx.gfx, 1, 640, 480);
    fake_gfx_set_cursor(fx.gfx, 10, 100, 50, 2, 3);
    /* the first tick comes from a primary-only event: both are asked */
    fx.now += 1;
    g_assert_cmpuint(vfio_display_dmabuf_update_planes(fx.d, fx.now,
                         VFIO_DMABUF_QUERY_PRIMARY), ==,
                     VFIO_DMABUF_EV_NEW_SCANOUT | VFIO_DMABUF_EV_CURSOR_NEW);
    /* 60 Hz primary-only events for 3 s; the cursor moves unsignalled */
    fake_gfx_set_cursor(fx.gfx, 10, 300, 200, 2, 3);
    q0 = fake_gfx_queries(fx.gfx);
    for (i = 0, id = 2; i < 180; i++, id = id % 3 + 1) {
        fake_gfx_set_primary(fx.gfx, id, 640, 480);
        fx.now += 16;
        ev |= vfio_display_dmabuf_update_planes(fx.d, fx.now,
                                                VFIO_DMABUF_QUERY_PRIMARY);
        if (fx.now <= 1 + VFIO_DMABUF_REFRESH_MAX_MS - 16) {
            g_assert_false(ev & VFIO_DMABUF_EV_CURSOR_MOVED);
        }
    }
    g_assert_true(ev & VFIO_DMABUF_EV_CURSOR_MOVED);
    g_assert_cmpint(vfio_display_dmabuf_cursor_pos(fx.d)->x, ==, 300);
    /* 180 primary queries and one cursor query per refresh_max_ms */
    g_assert_cmpuint(fake_gfx_queries(fx.gfx) - q0, >=,
                     180 + 180 * 16 / VFIO_DMABUF_REFRESH_MAX_MS);
    g_assert_cmpuint(fake_gfx_queries(fx.gfx) - q0, <=,
                     180 + 180 * 16 / VFIO_DMABUF_REFRESH_MAX_MS + 1);
    fixture_finish(&fx);
}

/*
 * A VFIO_DEVICE_GET_IRQ_INFO answer written byte by byte from v6's text
 * (not from our header): struct vfio_irq_info of 20 bytes, cap_offset 20,
 * CAP_TYPE (id 1, version 1, type 1, subtype 1) at 20, CAP_DISPLAY (id 2,
 * version 1, cur_event_val, pri_event_val as __u64) at 36.
 */
#define V6_PRI  (1ULL << 56)
#define V6_CUR  (1ULL << 48)

static void put32(uint8_t *b, size_t off, uint32_t v)
{
    memcpy(b + off, &v, sizeof(v));
}

static void put16(uint8_t *b, size_t off, uint16_t v)
{
    memcpy(b + off, &v, sizeof(v));
}

static void put64(uint8_t *b, size_t off, uint64_t v)
{
    memcpy(b + off, &v, sizeof(v));
}

/* a cap header at @off: id, version 1, next */
static void put_hdr(uint8_t *b, size_t off, uint16_t id, uint32_t next)
{
    put16(b, off, id);
    put16(b, off + 2, 1);
    put32(b, off + 4, next);
}

static size_t v6_answer(uint8_t *b, size_t size)
{
    memset(b, 0, size);
    put32(b, 0, size);                      /* argsz */
    put32(b, 4, (1 << 0) | (1 << 1) | (1 << 4)); /* EVENTFD|MASKABLE|CAPS */
    put32(b, 8, 5);                         /* index */
    put32(b, 12, 1);                        /* count */
    put32(b, 16, 20);                       /* cap_offset */
    put_hdr(b, 20, 1, 36);                  /* CAP_TYPE */
    put32(b, 28, 1);                        /* VFIO_IRQ_TYPE_GFX */
    put32(b, 32, 1);                        /* GFX_DISPLAY_IRQ */
    put_hdr(b, 36, 2, 0);                   /* CAP_DISPLAY */
    put64(b, 44, V6_CUR);
    put64(b, 52, V6_PRI);
    return 60;
}

static void test_irq_info_v6(void)
{
    uint8_t b[256];
    VFIODmabufEventInfo ev;
    size_t n = v6_answer(b, sizeof(b));

    g_assert_cmpuint(n, ==, 60);
    g_assert_true(vfio_display_dmabuf_parse_irq_info(b, sizeof(b), &ev));
    g_assert_true(ev.has_values);
    g_assert_cmpuint(ev.pri_val, ==, V6_PRI);
    g_assert_cmpuint(ev.cur_val, ==, V6_CUR);
    /* exactly the answer's size is enough */
    g_assert_true(vfio_display_dmabuf_parse_irq_info(b, 60, &ev));
    g_assert_true(ev.has_values);
    /* CAP_DISPLAY cut by argsz: the event without its values */
    g_assert_true(vfio_display_dmabuf_parse_irq_info(b, 59, &ev));
    g_assert_false(ev.has_values);
    /* CAP_TYPE cut: not the display event */
    g_assert_false(vfio_display_dmabuf_parse_irq_info(b, 35, &ev));
    g_assert_false(vfio_display_dmabuf_parse_irq_info(b, 19, &ev));
    /* CAP_DISPLAY first, then CAP_TYPE: order does not matter */
    v6_answer(b, sizeof(b));
    put32(b, 16, 36);
    put_hdr(b, 36, 2, 20);      /* backwards: refused, the walk ends */
    g_assert_false(vfio_display_dmabuf_parse_irq_info(b, sizeof(b), &ev));
    v6_answer(b, sizeof(b));
    put_hdr(b, 20, 2, 0);       /* CAP_DISPLAY at 20, CAP_TYPE at 60 */
    put64(b, 28, V6_CUR);
    put64(b, 36, V6_PRI);
    put16(b, 44, 0);
    put32(b, 24, 60);
    put_hdr(b, 60, 1, 0);
    put32(b, 68, 1);
    put32(b, 72, 1);
    g_assert_true(vfio_display_dmabuf_parse_irq_info(b, sizeof(b), &ev));
    g_assert_true(ev.has_values && ev.pri_val == V6_PRI);
    /* without CAP_DISPLAY: the event, no values */
    v6_answer(b, sizeof(b));
    put32(b, 24, 0);
    g_assert_true(vfio_display_dmabuf_parse_irq_info(b, sizeof(b), &ev));
    g_assert_false(ev.has_values);
}

static void test_irq_info_hostile(void)
{
    uint8_t b[256];
    VFIODmabufEventInfo ev;
    size_t i;

    /* the old layout of this project (a pad, cap at 24, CAP_TYPE id 3) */
    v6_answer(b, sizeof(b));
    put32(b, 16, 24);
    memmove(b + 24, b + 20, 40);
    put_hdr(b, 24, 3, 0);
    g_assert_false(vfio_display_dmabuf_parse_irq_info(b, sizeof(b), &ev));
    /* flags, count */
    v6_answer(b, sizeof(b));
    put32(b, 4, 1 << 4);
    g_assert_false(vfio_display_dmabuf_parse_irq_info(b, sizeof(b), &ev));
    v6_answer(b, sizeof(b));
    put32(b, 4, 1 << 0);
    g_assert_false(vfio_display_dmabuf_parse_irq_info(b, sizeof(b), &ev));
    v6_answer(b, sizeof(b));
    put32(b, 12, 2);
    g_assert_false(vfio_display_dmabuf_parse_irq_info(b, sizeof(b), &ev));
    /* cap_offset inside the struct, past the end, near UINT32_MAX */
    for (i = 0; i < 20; i++) {
        v6_answer(b, sizeof(b));
        put32(b, 16, i);
        g_assert_false(vfio_display_dmabuf_parse_irq_info(b, sizeof(b), &ev));
    }
    v6_answer(b, sizeof(b));
    put32(b, 16, 252);          /* a header would end past 256 */
    g_assert_false(vfio_display_dmabuf_parse_irq_info(b, sizeof(b), &ev));
    put32(b, 16, UINT32_MAX - 3);
    g_assert_false(vfio_display_dmabuf_parse_irq_info(b, sizeof(b), &ev));
    /* a loop onto itself, and next wrapping 32 bits */
    v6_answer(b, sizeof(b));
    put_hdr(b, 20, 4, 20);
    g_assert_false(vfio_display_dmabuf_parse_irq_info(b, sizeof(b), &ev));
    v6_answer(b, sizeof(b));
    put_hdr(b, 20, 4, UINT32_MAX);
    g_assert_false(vfio_display_dmabuf_parse_irq_info(b, sizeof(b), &ev));
    /* a chain of unknown caps longer than the bound: CAP_TYPE not reached */
    v6_answer(b, sizeof(b));
    for (i = 0; i < VFIO_DMABUF_EVENT_MAX_CAPS; i++) {
        put_hdr(b, 20 + 8 * i, 4, 20 + 8 * (i + 1));
    }
    put_hdr(b, 20 + 8 * i, 1, 0);
    put32(b, 28 + 8 * i, 1);
    put32(b, 32 + 8 * i, 1);
    g_assert_false(vfio_display_dmabuf_parse_irq_info(b, sizeof(b), &ev));
    /* one fewer: found */
    v6_answer(b, sizeof(b));
    for (i = 0; i < VFIO_DMABUF_EVENT_MAX_CAPS - 1; i++) {
        put_hdr(b, 20 + 8 * i, 4, 20 + 8 * (i + 1));
    }
    put_hdr(b, 20 + 8 * i, 1, 0);
    put32(b, 28 + 8 * i, 1);
    put32(b, 32 + 8 * i, 1);
    g_assert_true(vfio_display_dmabuf_parse_irq_info(b, sizeof(b), &ev));
    /* wrong type, subtype, version */
    v6_answer(b, sizeof(b));
    put32(b, 28, 2);
    g_assert_false(vfio_display_dmabuf_parse_irq_info(b, sizeof(b), &ev));
    v6_answer(b, sizeof(b));
    put32(b, 32, 2);
    g_assert_false(vfio_display_dmabuf_parse_irq_info(b, sizeof(b), &ev));
    v6_answer(b, sizeof(b));
    put16(b, 22, 2);
    g_assert_false(vfio_display_dmabuf_parse_irq_info(b, sizeof(b), &ev));
    /* unusable values: zero, equal; the event stays, the values do not */
    v6_answer(b, sizeof(b));
    put64(b, 44, 0);
    g_assert_true(vfio_display_dmabuf_parse_irq_info(b, sizeof(b), &ev));
    g_assert_false(ev.has_values);
    v6_answer(b, sizeof(b));
    put64(b, 44, V6_PRI);
    g_assert_true(vfio_display_dmabuf_parse_irq_info(b, sizeof(b), &ev));
    g_assert_false(ev.has_values);
    /* every length of a valid answer: never a read past it (ASan) */
    for (i = 0; i <= 60; i++) {
        uint8_t *h = g_malloc(MAX(i, 1));

        v6_answer(b, sizeof(b));
        memcpy(h, b, i);
        g_assert_cmpint(vfio_display_dmabuf_parse_irq_info(h, i, &ev), ==,
                        i >= 36);
        g_assert_cmpint(ev.has_values, ==, i >= 60);
        g_free(h);
    }
}

static void test_event_planes_decode(void)
{
    VFIODmabufEventInfo v6 = {
        .has_values = true, .pri_val = V6_PRI, .cur_val = V6_CUR,
    };
    VFIODmabufEventInfo none = { 0 };
    VFIODmabufEventInfo swapped = {
        .has_values = true, .pri_val = 1, .cur_val = 1 << 8,
    };

    g_assert_cmpuint(vfio_display_dmabuf_event_planes(&v6, 0), ==, 0);
    /* one vblank's signal */
    g_assert_cmpuint(vfio_display_dmabuf_event_planes(&v6, V6_PRI), ==,
                     VFIO_DMABUF_QUERY_PRIMARY);
    g_assert_cmpuint(vfio_display_dmabuf_event_planes(&v6, V6_CUR), ==,
                     VFIO_DMABUF_QUERY_CURSOR);
    g_assert_cmpuint(vfio_display_dmabuf_event_planes(&v6, V6_PRI + V6_CUR),
                     ==, VFIO_DMABUF_QUERY_BOTH);
    /* cursor signals added up: still only the cursor */
    g_assert_cmpuint(vfio_display_dmabuf_event_planes(&v6, 3 * V6_CUR), ==,
                     VFIO_DMABUF_QUERY_CURSOR);
    g_assert_cmpuint(vfio_display_dmabuf_event_planes(&v6, 255 * V6_CUR),
                     ==, VFIO_DMABUF_QUERY_CURSOR);
    /* several primaries, primaries and cursors, saturated, odd values */
    g_assert_cmpuint(vfio_display_dmabuf_event_planes(&v6, 2 * V6_PRI), ==,
                     VFIO_DMABUF_QUERY_BOTH);
    g_assert_cmpuint(vfio_display_dmabuf_event_planes(&v6, 2 * V6_PRI +
                                                      5 * V6_CUR), ==,
                     VFIO_DMABUF_QUERY_BOTH);
    g_assert_cmpuint(vfio_display_dmabuf_event_planes(&v6, UINT64_MAX), ==,
                     VFIO_DMABUF_QUERY_BOTH);
    g_assert_cmpuint(vfio_display_dmabuf_event_planes(&v6, 1), ==,
                     VFIO_DMABUF_QUERY_BOTH);
    g_assert_cmpuint(vfio_display_dmabuf_event_planes(&v6, V6_CUR + 1), ==,
                     VFIO_DMABUF_QUERY_BOTH);
    /* no CAP_DISPLAY: any signal is both */
    g_assert_cmpuint(vfio_display_dmabuf_event_planes(&none, 1), ==,
                     VFIO_DMABUF_QUERY_BOTH);
    g_assert_cmpuint(vfio_display_dmabuf_event_planes(&none, 0), ==, 0);
    /* a device whose cursor has the larger value */
    g_assert_cmpuint(vfio_display_dmabuf_event_planes(&swapped, 1 << 8), ==,
                     VFIO_DMABUF_QUERY_CURSOR);
    g_assert_cmpuint(vfio_display_dmabuf_event_planes(&swapped, 7), ==,
                     VFIO_DMABUF_QUERY_PRIMARY);
}

static void test_persistent_transient_backs_off(void)
{
    Fixture fx;
    unsigned int i, last = 0;

    fixture_init(&fx);
    fake_gfx_set_primary(fx.gfx, 1, 64, 64);
    fake_gfx_fail_query(fx.gfx, FAKE_PRIMARY, EAGAIN, 1000);
    for (i = 0; i < 10; i++) {
        tick(&fx);
        g_assert_cmpuint(vfio_display_dmabuf_next_interval_ms(fx.d), >=, last);
        last = vfio_display_dmabuf_next_interval_ms(fx.d);
    }
    /* doubling from min, capped: never a busy loop at min */
    g_assert_cmpuint(last, ==, MIN(VFIO_DMABUF_REFRESH_MIN_MS << 5,
                                   VFIO_DMABUF_REFRESH_MAX_MS));
    fixture_finish(&fx);
}

static void test_hard_errors_keep_frame(void)
{
    unsigned int warns;
    Fixture fx;
    unsigned int i;

    fixture_init(&fx);
    fake_gfx_set_primary(fx.gfx, 1, 64, 64);
    tick(&fx);
    warns = shim_warn_count();
    /* 20 ticks of backing off stay well inside one warning interval */
    fake_gfx_fail_query(fx.gfx, FAKE_PRIMARY, EIO, 20);
    for (i = 0; i < 20; i++) {
        g_assert_cmpuint(tick(&fx) & VFIO_DMABUF_EV_REFUSED, !=, 0);
        g_assert_cmpuint(primary_id(&fx), ==, 1);
    }
    g_assert_cmpint(fx.now - 1000, <, VFIO_DMABUF_WARN_INTERVAL_S * 1000);
    g_assert_cmpuint(stats(&fx)->query_errors, ==, 20);
    g_assert_cmpuint(shim_warn_count(), ==, warns + 1); /* once, not 20x */

    /* a GET that fails for good (ENOENT): refused, warned once */
    fake_gfx_set_primary(fx.gfx, 2, 64, 64);
    fake_gfx_fail_get(fx.gfx, ENOENT, 3);
    for (i = 0; i < 3; i++) {
        g_assert_cmpuint(tick(&fx) & VFIO_DMABUF_EV_REFUSED, !=, 0);
        g_assert_cmpuint(primary_id(&fx), ==, 1);
    }
    g_assert_cmpuint(stats(&fx)->get_errors, ==, 3);
    g_assert_cmpuint(shim_warn_count(), ==, warns + 2);
    g_assert_cmpuint(tick(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);
    fixture_finish(&fx);
}

static void test_zero_plane(void)
{
    Fixture fx;
    unsigned int warns = shim_warn_count();

    fixture_init(&fx);
    fake_gfx_clear(fx.gfx, FAKE_PRIMARY);
    g_assert_cmpuint(tick(&fx), ==, VFIO_DMABUF_EV_NONE);
    g_assert_cmpuint(stats(&fx)->planes_empty, ==, 2); /* primary + cursor */
    fake_gfx_set_primary(fx.gfx, 3, 640, 480);
    g_assert_cmpuint(tick(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);
    fake_gfx_clear(fx.gfx, FAKE_PRIMARY); /* guest disabled the display */
    g_assert_cmpuint(tick(&fx), ==, VFIO_DMABUF_EV_SCANOUT_GONE);
    g_assert_null(vfio_display_dmabuf_primary(fx.d));
    g_assert_cmpuint(tick(&fx), ==, VFIO_DMABUF_EV_NONE);
    /* same mode back: cached buffer, no new GET */
    fake_gfx_set_primary(fx.gfx, 3, 640, 480);
    g_assert_cmpuint(tick(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);
    g_assert_cmpuint(stats(&fx)->gets, ==, 1);
    /* ENODEV (i915/gvt: plane disabled) is "no scanout" too */
    fake_gfx_fail_query(fx.gfx, FAKE_PRIMARY, ENODEV, 1);
    g_assert_cmpuint(tick(&fx), ==, VFIO_DMABUF_EV_SCANOUT_GONE);
    g_assert_cmpuint(stats(&fx)->planes_refused, ==, 0);
    g_assert_cmpuint(shim_warn_count(), ==, warns);
    fixture_finish(&fx);
}

static void test_cursor_move_vs_change(void)
{
    const VFIODmabufCursor *pos;
    Fixture fx;

    fixture_init(&fx);
    fake_gfx_set_primary(fx.gfx, 1, 640, 480);
    fake_gfx_set_cursor(fx.gfx, 10, 100, 50, 2, 3);
    g_assert_cmpuint(tick(&fx), ==,
                     VFIO_DMABUF_EV_NEW_SCANOUT | VFIO_DMABUF_EV_CURSOR_NEW);
    pos = vfio_display_dmabuf_cursor_pos(fx.d);
    g_assert_cmpint(pos->x, ==, 100);
    g_assert_cmpint(pos->y, ==, 50);
    g_assert_cmpuint(pos->hot_x, ==, 2);
    g_assert_cmpuint(pos->hot_y, ==, 3);
    g_assert_cmpuint(tick(&fx), ==, VFIO_DMABUF_EV_SAME_BUFFER);

    fake_gfx_set_cursor(fx.gfx, 10, 101, 50, 2, 3); /* moved */
    g_assert_cmpuint(tick(&fx), ==,
                     VFIO_DMABUF_EV_SAME_BUFFER | VFIO_DMABUF_EV_CURSOR_MOVED);
    fake_gfx_set_cursor(fx.gfx, 10, -5, -7, 2, 3); /* off the left edge */
    g_assert_cmpuint(tick(&fx), ==,
                     VFIO_DMABUF_EV_SAME_BUFFER | VFIO_DMABUF_EV_CURSOR_MOVED);
    pos = vfio_display_dmabuf_cursor_pos(fx.d);
    g_assert_cmpint(pos->x, ==, -5);
    g_assert_cmpint(pos->y, ==, -7);
    g_assert_cmpuint(stats(&fx)->cursor_moves, ==, 2);

    /* a new hotspot defines the cursor anew, without a new GET */
    fake_gfx_set_cursor(fx.gfx, 10, -5, -7, 5, 5);
    g_assert_cmpuint(tick(&fx), ==,
                     VFIO_DMABUF_EV_SAME_BUFFER | VFIO_DMABUF_EV_CURSOR_NEW);
    fake_gfx_set_cursor(fx.gfx, 10, -5, -7, VFIO_DMABUF_HOTSPOT_UNKNOWN,
                        VFIO_DMABUF_HOTSPOT_UNKNOWN);
    g_assert_cmpuint(tick(&fx) & VFIO_DMABUF_EV_CURSOR_NEW, !=, 0);
    pos = vfio_display_dmabuf_cursor_pos(fx.d);
    g_assert_cmpuint(pos->hot_x, ==, VFIO_DMABUF_HOTSPOT_UNKNOWN);
    g_assert_cmpuint(stats(&fx)->cursor_changes, ==, 3);
    g_assert_cmpuint(stats(&fx)->cursor_moves, ==, 2);
    g_assert_cmpuint(stats(&fx)->gets, ==, 2); /* never re-imported */

    fake_gfx_set_cursor(fx.gfx, 11, -5, -7, 0, 0); /* new image */
    g_assert_cmpuint(tick(&fx) & VFIO_DMABUF_EV_CURSOR_NEW, !=, 0);
    g_assert_cmpuint(vfio_display_dmabuf_cursor(fx.d)->id, ==, 11);
    g_assert_cmpuint(stats(&fx)->cursor_changes, ==, 4);
    g_assert_cmpuint(stats(&fx)->gets, ==, 3);

    fake_gfx_clear(fx.gfx, FAKE_CURSOR);
    g_assert_cmpuint(tick(&fx) & VFIO_DMABUF_EV_CURSOR_GONE, !=, 0);
    g_assert_null(vfio_display_dmabuf_cursor(fx.d));
    g_assert_null(vfio_display_dmabuf_cursor_pos(fx.d));
    fixture_finish(&fx);
}

static void test_refresh_policy(void)
{
    Fixture fx;
    unsigned int i, iv, prev;
    int64_t next_flip;
    uint32_t id = 1;

    fixture_init(&fx);
    g_assert_cmpuint(vfio_display_dmabuf_next_interval_ms(fx.d), ==,
                     VFIO_DMABUF_REFRESH_ACTIVE_MS);
    /* guest flips at 60 Hz: the interval follows half the flip period */
    fake_gfx_set_primary(fx.gfx, id, 64, 64);
    next_flip = fx.now + 17;
    for (i = 0; i < 400; i++) {
        fx.now += vfio_display_dmabuf_next_interval_ms(fx.d);
        while (fx.now >= next_flip) {
            id = id % 3 + 1;
            fake_gfx_set_primary(fx.gfx, id, 64, 64);
            next_flip += 17;
        }
        vfio_display_dmabuf_update(fx.d, fx.now);
    }
    iv = vfio_display_dmabuf_next_interval_ms(fx.d);
    g_assert_cmpuint(iv, >=, 6);
    g_assert_cmpuint(iv, <=, 9);
    /* polling at half the period sees (nearly) every flip */
    g_assert_cmpuint(stats(&fx)->flips_seen, >=,
                     (fx.now - 1000) / 17 * 9 / 10);

    /* guest goes idle: backs off, monotonically, up to max */
    prev = iv;
    for (i = 0; i < 40; i++) {
        tick(&fx);
        iv = vfio_display_dmabuf_next_interval_ms(fx.d);
        g_assert_cmpuint(iv, >=, prev);
        prev = iv;
    }
    g_assert_cmpuint(iv, ==, VFIO_DMABUF_REFRESH_MAX_MS);

    /* one change: back to the active interval at once */
    fake_gfx_set_cursor(fx.gfx, 50, 1, 1, 0, 0);
    tick(&fx);
    g_assert_cmpuint(vfio_display_dmabuf_next_interval_ms(fx.d), <=,
                     VFIO_DMABUF_REFRESH_ACTIVE_MS);
    fixture_finish(&fx);
}

/* the user's input (wake()) brings an idle poll back to the active rate */
static void test_refresh_wake(void)
{
    VFIODisplayDmabufConfig cfg;
    Fixture fx;
    unsigned int i;

    fixture_init(&fx);
    fake_gfx_set_primary(fx.gfx, 1, 64, 64);
    tick(&fx);
    for (i = 0; i < 40; i++) {
        tick(&fx);
    }
    g_assert_cmpuint(vfio_display_dmabuf_next_interval_ms(fx.d), ==,
                     VFIO_DMABUF_REFRESH_MAX_MS);
    g_assert_true(vfio_display_dmabuf_wake(fx.d));
    g_assert_cmpuint(vfio_display_dmabuf_next_interval_ms(fx.d), ==,
                     VFIO_DMABUF_REFRESH_ACTIVE_MS);
    /* already at the active rate: nothing to re-arm, not counted */
    g_assert_false(vfio_display_dmabuf_wake(fx.d));
    g_assert_cmpuint(stats(&fx)->wakes, ==, 1);
    /* still nothing changed: the back-off starts anew, after IDLE_TICKS */
    for (i = 0; i < VFIO_DMABUF_REFRESH_IDLE_TICKS; i++) {
        tick(&fx);
        g_assert_cmpuint(vfio_display_dmabuf_next_interval_ms(fx.d), ==,
                         VFIO_DMABUF_REFRESH_ACTIVE_MS);
    }
    tick(&fx);
    g_assert_cmpuint(vfio_display_dmabuf_next_interval_ms(fx.d), >,
                     VFIO_DMABUF_REFRESH_ACTIVE_MS);
    /* event-driven: the device says when; input changes nothing */
    vfio_display_dmabuf_set_event_driven(fx.d, true);
    tick(&fx);
    g_assert_false(vfio_display_dmabuf_wake(fx.d));
    g_assert_cmpuint(vfio_display_dmabuf_next_interval_ms(fx.d), ==,
                     VFIO_DMABUF_REFRESH_MAX_MS);
    fixture_finish(&fx);

    /* a fixed poll (min = max, upstream's 30 ms): never shortened */
    vfio_display_dmabuf_config_default(&cfg);
    cfg.refresh_min_ms = cfg.refresh_max_ms = 30;
    fixture_init_cfg(&fx, &cfg);
    tick(&fx);
    g_assert_false(vfio_display_dmabuf_wake(fx.d));
    g_assert_cmpuint(vfio_display_dmabuf_next_interval_ms(fx.d), ==, 30);
    g_assert_cmpuint(stats(&fx)->wakes, ==, 0);
    fixture_finish(&fx);
}

static void test_refresh_bounds_override(void)
{
    VFIODisplayDmabufConfig cfg;
    Fixture fx;
    unsigned int i, iv;
    uint32_t id;

    vfio_display_dmabuf_config_default(&cfg);
    cfg.refresh_min_ms = 10;
    cfg.refresh_active_ms = 20;
    cfg.refresh_max_ms = 40;
    fixture_init_cfg(&fx, &cfg);
    for (id = 1; id < 50; id++) { /* flips every tick */
        fake_gfx_set_primary(fx.gfx, id % 3 + 1, 64, 64);
        tick(&fx);
        iv = vfio_display_dmabuf_next_interval_ms(fx.d);
        g_assert_cmpuint(iv, >=, 10);
        g_assert_cmpuint(iv, <=, 20);
    }
    for (i = 0; i < 50; i++) {
        tick(&fx);
        g_assert_cmpuint(vfio_display_dmabuf_next_interval_ms(fx.d), <=, 40);
    }
    g_assert_cmpuint(vfio_display_dmabuf_next_interval_ms(fx.d), ==, 40);
    fixture_finish(&fx);
}

static void test_reset_drains(void)
{
    Fixture fx;
    uint32_t id;

    fixture_init(&fx);
    fake_gfx_set_cursor(fx.gfx, 77, 0, 0, 0, 0);
    for (id = 1; id <= 3; id++) {
        fake_gfx_set_primary(fx.gfx, id, 64, 64);
        tick(&fx);
    }
    g_assert_cmpuint(vfio_display_dmabuf_cached(fx.d), ==, 4);
    vfio_display_dmabuf_reset(fx.d);
    g_assert_cmpuint(fx.released, ==, 4);
    g_assert_cmpuint(fx.released_open, ==, 4);
    g_assert_true(was_released(&fx, 1));
    g_assert_true(was_released(&fx, 2));
    g_assert_true(was_released(&fx, 3));
    g_assert_true(was_released(&fx, 77));
    g_assert_cmpuint(vfio_display_dmabuf_cached(fx.d), ==, 0);
    g_assert_cmpuint(stats(&fx)->fds_open, ==, 0);
    g_assert_cmpint(count_open_fds(), ==, fx.fds_before);
    g_assert_null(vfio_display_dmabuf_primary(fx.d));
    g_assert_null(vfio_display_dmabuf_cursor(fx.d));
    g_assert_cmpuint(stats(&fx)->resets, ==, 1);
    /* after reset the same state is a new scanout with a fresh GET */
    g_assert_cmpuint(tick(&fx), ==,
                     VFIO_DMABUF_EV_NEW_SCANOUT | VFIO_DMABUF_EV_CURSOR_NEW);
    g_assert_cmpuint(stats(&fx)->gets, ==, 6);
    g_assert_cmpuint(fake_gfx_double_gets(fx.gfx), ==, 0);
    fixture_finish(&fx);
}

/*
 * A fast flipping guest has its primary plane polled every few ms; the
 * cursor plane is queried at most once per VFIO_DMABUF_CURSOR_PERIOD_MS.
 */
static void test_cursor_rate_limited(void)
{
    Fixture fx;
    unsigned int i, q0, ticks = 100, step = VFIO_DMABUF_REFRESH_MIN_MS;
    unsigned int cursor_q;

    fixture_init(&fx);
    fake_gfx_set_primary(fx.gfx, 1, 640, 480);
    fake_gfx_set_cursor(fx.gfx, 2, 0, 0, 0, 0);
    tick(&fx);
    q0 = fake_gfx_queries(fx.gfx);
    for (i = 0; i < ticks; i++) {
        fx.now += step;
        vfio_display_dmabuf_update(fx.d, fx.now);
    }
    cursor_q = fake_gfx_queries(fx.gfx) - q0 - ticks;
    g_assert_cmpuint(cursor_q, <=,
                     ticks * step / VFIO_DMABUF_CURSOR_PERIOD_MS + 1);
    g_assert_cmpuint(cursor_q, >=,
                     ticks * step / (2 * VFIO_DMABUF_CURSOR_PERIOD_MS));
    /* a move is still seen within one period */
    fake_gfx_set_cursor(fx.gfx, 2, 50, 60, 0, 0);
    for (i = 0; i * step <= VFIO_DMABUF_CURSOR_PERIOD_MS; i++) {
        fx.now += step;
        if (vfio_display_dmabuf_update(fx.d, fx.now) &
            VFIO_DMABUF_EV_CURSOR_MOVED) {
            break;
        }
    }
    g_assert_cmpint(vfio_display_dmabuf_cursor_pos(fx.d)->x, ==, 50);
    fixture_finish(&fx);
}

/*
 * Once the guest stops flipping, other changes (a moving cursor) poll at
 * the active interval, not at the old flip rate.
 */
static void test_flip_rate_forgotten(void)
{
    Fixture fx;
    unsigned int i;

    fixture_init(&fx);
    fake_gfx_set_cursor(fx.gfx, 100, 0, 0, 0, 0);
    for (i = 0; i < 20; i++) {          /* flips every 8 ms */
        fake_gfx_set_primary(fx.gfx, 1 + i % 2, 64, 64);
        fx.now += 8;
        vfio_display_dmabuf_update(fx.d, fx.now);
    }
    g_assert_cmpuint(vfio_display_dmabuf_next_interval_ms(fx.d), <, 8);
    for (i = 0; i < 40; i++) {          /* then only the cursor moves */
        fake_gfx_set_cursor(fx.gfx, 100, i, i, 0, 0);
        tick_both(&fx);
    }
    g_assert_cmpuint(vfio_display_dmabuf_next_interval_ms(fx.d), ==,
                     VFIO_DMABUF_REFRESH_ACTIVE_MS);
    fixture_finish(&fx);
}

static void test_same_id_both_planes(void)
{
    Fixture fx;
    unsigned int i, ev, warns;

    fixture_init(&fx);
    fake_gfx_set_primary(fx.gfx, 1, 640, 480);
    fake_gfx_set_cursor(fx.gfx, 2, 0, 0, 0, 0);
    tick(&fx);
    warns = shim_warn_count();
    /* the primary flips to id 3, and the cursor claims id 3 too */
    fake_gfx_set_primary(fx.gfx, 3, 640, 480);
    fake_gfx_set_cursor(fx.gfx, 3, 10, 10, 0, 0);
    for (i = 0; i < 10; i++) {
        ev = tick_both(&fx);
        g_assert_cmpuint(primary_id(&fx), ==, 3);
        g_assert_cmpuint(vfio_display_dmabuf_cursor(fx.d)->id, ==, 2);
        g_assert_cmpuint(ev & VFIO_DMABUF_EV_REFUSED, !=, 0);
    }
    g_assert_cmpuint(stats(&fx)->refused_by[VFIO_DMABUF_PLANE_ID_IN_USE], ==,
                     10);
    g_assert_cmpuint(stats(&fx)->gets, ==, 3); /* no GET storm */
    g_assert_cmpuint(fake_gfx_double_gets(fx.gfx), ==, 0);
    g_assert_cmpuint(shim_warn_count(), ==, warns + 1);
    /* and the other way round: the cursor's id claimed by the primary */
    fake_gfx_set_cursor(fx.gfx, 2, 10, 10, 0, 0);
    fake_gfx_set_primary(fx.gfx, 2, 640, 480);
    tick_both(&fx);
    g_assert_cmpuint(primary_id(&fx), ==, 3);
    g_assert_cmpuint(vfio_display_dmabuf_cursor(fx.d)->id, ==, 2);
    fixture_finish(&fx);
}

/*
 * A cached buffer that is off screen, reported again as the other plane,
 * is a new buffer of that type; then the first plane cannot claim it
 * (found by fuzz-engine: a cache hit across plane types put one buffer,
 * still typed primary, on both planes).
 */
static void test_id_moves_to_other_plane(void)
{
    struct vfio_device_gfx_plane_info p;
    const VFIODmabufBuffer *cur;
    Fixture fx;
    unsigned int ev;

    fixture_init(&fx);
    /* a primary plane with a cursor's geometry: 64x64 ARGB8888 */
    p = (struct vfio_device_gfx_plane_info) {
        .drm_plane_type = FAKE_PRIMARY, .drm_format = DRM_FORMAT_ARGB8888,
        .width = 64, .height = 64, .stride = 256, .size = 256 * 64,
        .dmabuf_id = 5,
    };
    fake_gfx_set_plane(fx.gfx, FAKE_PRIMARY, &p);
    g_assert_cmpuint(tick_both(&fx), ==, VFIO_DMABUF_EV_NEW_SCANOUT);
    fake_gfx_clear(fx.gfx, FAKE_PRIMARY);
    g_assert_cmpuint(tick_both(&fx), ==, VFIO_DMABUF_EV_SCANOUT_GONE);
    g_assert_cmpuint(vfio_display_dmabuf_cached(fx.d), ==, 1);

    /* the same id and geometry as the cursor: fetched anew, as a cursor */
    fake_gfx_set_cursor(fx.gfx, 5, 0, 0, 0, 0);
    g_assert_cmpuint(tick_both(&fx), ==, VFIO_DMABUF_EV_CURSOR_NEW);
    cur = vfio_display_dmabuf_cursor(fx.d);
    g_assert_cmpuint(cur->id, ==, 5);
    g_assert_cmpuint(cur->plane_type, ==, FAKE_CURSOR);
    g_assert_cmpuint(fx.released, ==, 1);
    g_assert_cmpuint(stats(&fx)->gets, ==, 2);
    g_assert_cmpuint(fake_gfx_double_gets(fx.gfx), ==, 0);

    /* and now the primary cannot have it */
    fake_gfx_set_plane(fx.gfx, FAKE_PRIMARY, &p);
    ev = tick_both(&fx);
    g_assert_cmpuint(ev & VFIO_DMABUF_EV_REFUSED, !=, 0);
    g_assert_cmpuint(ev & VFIO_DMABUF_EV_NEW_SCANOUT, ==, 0);
    g_assert_null(vfio_display_dmabuf_primary(fx.d));
    g_assert_true(vfio_display_dmabuf_cursor(fx.d) == cur);
    g_assert_cmpuint(stats(&fx)->refused_by[VFIO_DMABUF_PLANE_ID_IN_USE], ==,
                     1);
    fixture_finish(&fx);
}

/* ------------------------------------------------------------------ */
/* hostile planes */

typedef struct HostileCase {
    const char *name;
    uint32_t type;
    uint32_t fourcc, w, h, stride;
    uint32_t size;      /* __u32 in the uapi: a wider value does not fit */
    uint32_t id, hot_x, hot_y, answer_type;
    VFIODmabufPlaneCheck expect;
    uint32_t x_pos, y_pos;
} HostileCase;

#define P 1 /* primary */
#define C 2 /* cursor */
#define U VFIO_DMABUF_HOTSPOT_UNKNOWN

static const HostileCase hostile[] = {
    { "fourcc 0", P, 0, 640, 480, 2560, 1228800, 1, 0, 0, P,
      VFIO_DMABUF_PLANE_BAD_FOURCC },
    { "fourcc garbage", P, 0xdeadbeef, 640, 480, 2560, 1228800, 1, 0, 0, P,
      VFIO_DMABUF_PLANE_BAD_FOURCC },
    { "fourcc NV12 (multi-planar)", P, DRM_FORMAT_NV12, 640, 480, 640, 460800,
      1, 0, 0, P, VFIO_DMABUF_PLANE_BAD_FOURCC },
    { "fourcc C8 (indexed: no palette in the ABI)", P, DRM_FORMAT_C8, 640,
      480, 640, 307200, 1, 0, 0, P, VFIO_DMABUF_PLANE_BAD_FOURCC },
    { "fourcc YUYV at an odd width (half a pixel pair)", P, DRM_FORMAT_YUYV,
      639, 480, 1280, 614400, 1, 0, 0, P, VFIO_DMABUF_PLANE_BAD_SIZE },
    { "fourcc UYVY stride short of width * 2", P, DRM_FORMAT_UYVY, 640, 480,
      1278, 614400, 1, 0, 0, P, VFIO_DMABUF_PLANE_BAD_STRIDE },
    { "width 0", P, DRM_FORMAT_XRGB8888, 0, 480, 2560, 1228800, 1, 0, 0, P,
      VFIO_DMABUF_PLANE_BAD_SIZE },
    { "height 0", P, DRM_FORMAT_XRGB8888, 640, 0, 2560, 1228800, 1, 0, 0, P,
      VFIO_DMABUF_PLANE_BAD_SIZE },
    { "width and height 0", P, DRM_FORMAT_XRGB8888, 0, 0, 2560, 4096, 1, 0, 0,
      P, VFIO_DMABUF_PLANE_BAD_SIZE },
    { "width huge", P, DRM_FORMAT_XRGB8888, 0x7fffffff, 1, 0xfffffffc,
      0xfffffffc, 1, 0, 0, P, VFIO_DMABUF_PLANE_BAD_SIZE },
    { "height huge", P, DRM_FORMAT_XRGB8888, 64, 0x80000000u, 256, 0xffffffffu,
      1, 0, 0, P, VFIO_DMABUF_PLANE_BAD_SIZE },
    { "width max+1", P, DRM_FORMAT_XRGB8888, VFIO_DMABUF_MAX_DIM + 1, 16,
      65540 * 4, 65540ULL * 4 * 16, 1, 0, 0, P, VFIO_DMABUF_PLANE_BAD_SIZE },
    { "height max+1", P, DRM_FORMAT_XRGB8888, 16, VFIO_DMABUF_MAX_DIM + 1, 64,
      64ULL * (VFIO_DMABUF_MAX_DIM + 1), 1, 0, 0, P,
      VFIO_DMABUF_PLANE_BAD_SIZE },
    { "width 0xffffffff", P, DRM_FORMAT_XRGB8888, 0xffffffffu, 1, 0xffffffffu,
      0xffffffffu, 1, 0, 0, P, VFIO_DMABUF_PLANE_BAD_SIZE },
    { "stride 0", P, DRM_FORMAT_XRGB8888, 640, 480, 0, 1228800, 1, 0, 0, P,
      VFIO_DMABUF_PLANE_BAD_STRIDE },
    { "stride < width*cpp", P, DRM_FORMAT_XRGB8888, 640, 480, 2556, 1228800, 1,
      0, 0, P, VFIO_DMABUF_PLANE_BAD_STRIDE },
    { "stride = width (cpp ignored)", P, DRM_FORMAT_XRGB8888, 640, 480, 640,
      1228800, 1, 0, 0, P, VFIO_DMABUF_PLANE_BAD_STRIDE },
    { "stride < width*cpp RGB565", P, DRM_FORMAT_RGB565, 640, 480, 1278,
      1228800, 1, 0, 0, P, VFIO_DMABUF_PLANE_BAD_STRIDE },
    { "stride < width*cpp RGB888", P, DRM_FORMAT_RGB888, 640, 480, 1919,
      1228800, 1, 0, 0, P, VFIO_DMABUF_PLANE_BAD_STRIDE },
    /* 0x40000000 * 4 = 2^32: 0 in 32 bits, so stride 0 would pass */
    { "width*cpp wraps 32 bits", P, DRM_FORMAT_XRGB8888, 0x40000000u, 1, 0,
      4096, 1, 0, 0, P, VFIO_DMABUF_PLANE_BAD_SIZE },
    /* 0x55555556 * 3 = 2^32 + 2: 2 in 32 bits, so stride 4 would pass */
    { "width*cpp wraps 32 bits (RGB888)", P, DRM_FORMAT_RGB888, 0x55555556u,
      1, 4, 4096, 1, 0, 0, P, VFIO_DMABUF_PLANE_BAD_SIZE },
    /* 0x40000 * 16384 = 2^32: 0 in 32 bits, so any size would pass */
    { "stride*height wraps 32 bits to 0", P, DRM_FORMAT_XRGB8888, 16384,
      16384, 0x40000, 0x40000, 1, 0, 0, P, VFIO_DMABUF_PLANE_BAD_STRIDE },
    /* 0x40004 * 16384 = 2^32 + 0x10000: the size given is the wrapped one */
    { "stride*height wraps 32 bits to the size", P, DRM_FORMAT_XRGB8888, 16384,
      16384, 0x40004, 0x10000, 1, 0, 0, P, VFIO_DMABUF_PLANE_BAD_STRIDE },
    { "stride*height over the limit", P, DRM_FORMAT_XRGB8888, 16384, 16384,
      0xffffffffu, 0xffffffffu, 1, 0, 0, P, VFIO_DMABUF_PLANE_BAD_STRIDE },
    { "size 0", P, DRM_FORMAT_XRGB8888, 640, 480, 2560, 0, 1, 0, 0, P,
      VFIO_DMABUF_PLANE_BAD_LENGTH },
    { "size one byte short", P, DRM_FORMAT_XRGB8888, 640, 480, 2560, 1228799, 1,
      0, 0, P, VFIO_DMABUF_PLANE_BAD_LENGTH },
    { "size one row short", P, DRM_FORMAT_XRGB8888, 640, 480, 2560, 1226240, 1,
      0, 0, P, VFIO_DMABUF_PLANE_BAD_LENGTH },
    { "size with padded stride short", P, DRM_FORMAT_XRGB8888, 640, 480, 4096,
      1228800, 1, 0, 0, P, VFIO_DMABUF_PLANE_BAD_LENGTH },
    { "size one page over the limit", P, DRM_FORMAT_XRGB8888, 640, 480, 2560,
      VFIO_DMABUF_MAX_SIZE + 4096, 1, 0, 0, P, VFIO_DMABUF_PLANE_BAD_LENGTH },
    { "size UINT32_MAX (the most the field carries)", P, DRM_FORMAT_XRGB8888,
      640, 480, 2560, UINT32_MAX, 1, 0, 0, P, VFIO_DMABUF_PLANE_BAD_LENGTH },
    { "dmabuf_id 0", P, DRM_FORMAT_XRGB8888, 640, 480, 2560, 1228800, 0, 0, 0,
      P, VFIO_DMABUF_PLANE_BAD_ID },
    { "answer for cursor when primary asked", P, DRM_FORMAT_XRGB8888, 640, 480,
      2560, 1228800, 1, 0, 0, C, VFIO_DMABUF_PLANE_BAD_TYPE },
    { "answer for plane type 7", P, DRM_FORMAT_XRGB8888, 640, 480, 2560,
      1228800, 1, 0, 0, 7, VFIO_DMABUF_PLANE_BAD_TYPE },
    { "cursor too wide", C, DRM_FORMAT_ARGB8888, VFIO_DMABUF_CURSOR_MAX_DIM + 1,
      64, 4 * (VFIO_DMABUF_CURSOR_MAX_DIM + 1),
      4ULL * (VFIO_DMABUF_CURSOR_MAX_DIM + 1) * 64, 9, 0, 0, C,
      VFIO_DMABUF_PLANE_BAD_SIZE },
    { "cursor too tall", C, DRM_FORMAT_ARGB8888, 64, 4096, 256, 256ULL * 4096,
      9, 0, 0, C, VFIO_DMABUF_PLANE_BAD_SIZE },
    { "cursor hotspot x outside", C, DRM_FORMAT_ARGB8888, 64, 64, 256, 16384, 9,
      64, 0, C, VFIO_DMABUF_PLANE_BAD_HOTSPOT },
    { "cursor hotspot y outside", C, DRM_FORMAT_ARGB8888, 64, 64, 256, 16384, 9,
      0, 1000, C, VFIO_DMABUF_PLANE_BAD_HOTSPOT },
    { "cursor hotspot x 0xfffffffe", C, DRM_FORMAT_ARGB8888, 64, 64, 256, 16384,
      9, 0xfffffffe, U, C, VFIO_DMABUF_PLANE_BAD_HOTSPOT },
    { "cursor size short", C, DRM_FORMAT_ARGB8888, 64, 64, 256, 16383, 9, 0, 0,
      C, VFIO_DMABUF_PLANE_BAD_LENGTH },
    { "cursor unknown fourcc", C, fourcc_code('Y', '8', ' ', ' '), 64, 64, 256,
      16384, 9, 0, 0, C, VFIO_DMABUF_PLANE_BAD_FOURCC },
    { "cursor stride short", C, DRM_FORMAT_ARGB8888, 64, 64, 255, 16384, 9, 0,
      0, C, VFIO_DMABUF_PLANE_BAD_STRIDE },
    { "cursor dmabuf_id 0", C, DRM_FORMAT_ARGB8888, 64, 64, 256, 16384, 0, 0, 0,
      C, VFIO_DMABUF_PLANE_BAD_ID },
    { "cursor x near INT32_MAX", C, DRM_FORMAT_ARGB8888, 64, 64, 256, 16384, 9,
      0, 0, C, VFIO_DMABUF_PLANE_BAD_POSITION, 0x7fffffff, 0 },
    { "cursor y far negative", C, DRM_FORMAT_ARGB8888, 64, 64, 256, 16384, 9, 0,
      0, C, VFIO_DMABUF_PLANE_BAD_POSITION, 0, 0x80000000u },
};

static void fill_hostile(struct vfio_device_gfx_plane_info *p,
                         const HostileCase *hc)
{
    memset(p, 0, sizeof(*p));
    p->drm_plane_type = hc->answer_type;
    p->drm_format = hc->fourcc;
    p->width = hc->w;
    p->height = hc->h;
    p->stride = hc->stride;
    p->size = hc->size;
    p->dmabuf_id = hc->id;
    p->x_hot = hc->hot_x;
    p->y_hot = hc->hot_y;
    p->x_pos = hc->x_pos;
    p->y_pos = hc->y_pos;
}

static void test_hostile_table(void)
{
    unsigned int i, j;

    g_assert_cmpuint(G_N_ELEMENTS(hostile), >=, 30);
    /* each case is its own: none repeats another's plane and question */
    for (i = 0; i < G_N_ELEMENTS(hostile); i++) {
        for (j = i + 1; j < G_N_ELEMENTS(hostile); j++) {
            struct vfio_device_gfx_plane_info a, b;

            fill_hostile(&a, &hostile[i]);
            fill_hostile(&b, &hostile[j]);
            if (hostile[i].type == hostile[j].type &&
                !memcmp(&a, &b, sizeof(a))) {
                g_test_message("hostile cases \"%s\" and \"%s\" are the "
                               "same plane", hostile[i].name, hostile[j].name);
                g_assert_not_reached();
            }
        }
    }
    for (i = 0; i < G_N_ELEMENTS(hostile); i++) {
        const HostileCase *hc = &hostile[i];
        struct vfio_device_gfx_plane_info p;
        unsigned int traces, warns, t, ev;
        Fixture fx;

        g_test_message("hostile case %u: %s", i, hc->name);
        fill_hostile(&p, hc);
        g_assert_cmpint(vfio_display_dmabuf_check_plane(&p, hc->type), ==,
                        hc->expect);

        /* through the engine: refused, last good frame kept, no GET */
        fixture_init(&fx);
        fake_gfx_set_primary(fx.gfx, 500, 320, 240);
        fake_gfx_set_cursor(fx.gfx, 501, 5, 5, 0, 0);
        tick(&fx);
        traces = shim_trace_count("vfio_display_dmabuf_refused");
        warns = shim_warn_count();
        fake_gfx_set_plane(fx.gfx, hc->type, &p);
        for (t = 0; t < 20; t++) {
            ev = tick(&fx);
            g_assert_cmpuint(ev & VFIO_DMABUF_EV_REFUSED, !=, 0);
            g_assert_cmpuint(ev & (VFIO_DMABUF_EV_NEW_SCANOUT |
                                   VFIO_DMABUF_EV_CURSOR_NEW |
                                   VFIO_DMABUF_EV_SCANOUT_GONE |
                                   VFIO_DMABUF_EV_CURSOR_GONE), ==, 0);
        }
        g_assert_cmpuint(primary_id(&fx), ==, 500);
        g_assert_cmpuint(vfio_display_dmabuf_cursor(fx.d)->id, ==, 501);
        g_assert_cmpuint(stats(&fx)->gets, ==, 2);
        g_assert_cmpuint(stats(&fx)->planes_refused, ==, 20);
        g_assert_cmpuint(stats(&fx)->refused_by[hc->expect], ==, 20);
        /* one trace event per refusal, one warning for all of them */
        g_assert_cmpuint(shim_trace_count("vfio_display_dmabuf_refused"), ==,
                         traces + 20);
        g_assert_cmpuint(shim_warn_count(), ==, warns + 1);
        g_assert_nonnull(strstr(shim_last_warning(),
                                vfio_display_dmabuf_check_str(hc->expect)));
        fixture_finish(&fx);
    }
}

static void test_warning_rate_limit(void)
{
    struct vfio_device_gfx_plane_info p;
    unsigned int warns, i;
    Fixture fx;

    fixture_init(&fx);
    fill_hostile(&p, &hostile[0]);
    fake_gfx_set_plane(fx.gfx, FAKE_PRIMARY, &p);
    warns = shim_warn_count();
    for (i = 0; i < 100; i++) {
        fx.now += 10;
        vfio_display_dmabuf_update(fx.d, fx.now); /* 1 s in all */
    }
    g_assert_cmpuint(shim_warn_count(), ==, warns + 1);
    fx.now += VFIO_DMABUF_WARN_INTERVAL_S * 1000;
    vfio_display_dmabuf_update(fx.d, fx.now);
    g_assert_cmpuint(shim_warn_count(), ==, warns + 2);
    /* another kind of bad plane warns on its own */
    fill_hostile(&p, &hostile[12]);
    fake_gfx_set_plane(fx.gfx, FAKE_PRIMARY, &p);
    vfio_display_dmabuf_update(fx.d, fx.now + 1);
    g_assert_cmpuint(shim_warn_count(), ==, warns + 3);
    fixture_finish(&fx);
}

static void test_valid_formats_accepted(void)
{
    static const struct { uint32_t fourcc; unsigned int cpp; } ok[] = {
        { DRM_FORMAT_XRGB8888, 4 }, { DRM_FORMAT_ARGB8888, 4 },
        { DRM_FORMAT_XBGR8888, 4 }, { DRM_FORMAT_ABGR8888, 4 },
        { DRM_FORMAT_RGB565, 2 }, { DRM_FORMAT_RGB888, 3 },
        { DRM_FORMAT_XRGB2101010, 4 },
    };
    unsigned int i;

    for (i = 0; i < G_N_ELEMENTS(ok); i++) {
        struct vfio_device_gfx_plane_info p = {
            .drm_plane_type = 1, .drm_format = ok[i].fourcc, .width = 640,
            .height = 480, .stride = 640 * ok[i].cpp,
            .size = 640ULL * ok[i].cpp * 480, .dmabuf_id = 1,
        };

        g_assert_cmpuint(dmabuf_format_cpp(ok[i].fourcc), ==, ok[i].cpp);
        g_assert_cmpint(vfio_display_dmabuf_check_plane(&p, 1), ==,
                        VFIO_DMABUF_PLANE_OK);
        p.stride += 64; /* padded rows are fine if size covers them */
        p.size = (uint64_t)p.stride * 480;
        g_assert_cmpint(vfio_display_dmabuf_check_plane(&p, 1), ==,
                        VFIO_DMABUF_PLANE_OK);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/engine/probe", test_probe);
    g_test_add_func("/engine/probe-fails", test_probe_fails);
    g_test_add_func("/engine/fake/detectors", test_fake_detectors);
    g_test_add_func("/engine/first-scanout-then-same",
                    test_first_scanout_then_same);
    g_test_add_func("/engine/cache/hit-miss", test_cache_hit_miss);
    g_test_add_func("/engine/cache/bound", test_cache_bound);
    g_test_add_func("/engine/cache/on-screen-never-evicted",
                    test_on_screen_never_evicted);
    g_test_add_func("/engine/cache/bound-after-plane-gone",
                    test_bound_after_plane_gone);
    g_test_add_func("/engine/cache/no-get-for-open-id",
                    test_no_get_for_open_id);
    g_test_add_func("/engine/cache/geometry-change-same-id",
                    test_geometry_change_same_id);
    g_test_add_func("/engine/cache/geometry-change-get-fails",
                    test_geometry_change_get_fails);
    g_test_add_func("/engine/fds/teardown", test_fd_count_teardown);
    g_test_add_func("/engine/fds/revoked", test_fd_revoked);
    g_test_add_func("/engine/errors/transient", test_transient_errors);
    g_test_add_func("/engine/errors/transient-backoff",
                    test_persistent_transient_backs_off);
    g_test_add_func("/engine/errors/hard-keeps-frame",
                    test_hard_errors_keep_frame);
    g_test_add_func("/engine/zero-plane", test_zero_plane);
    g_test_add_func("/engine/cursor/move-vs-change",
                    test_cursor_move_vs_change);
    g_test_add_func("/engine/cursor/rate-limited", test_cursor_rate_limited);
    g_test_add_func("/engine/refresh/flip-rate-forgotten",
                    test_flip_rate_forgotten);
    g_test_add_func("/engine/refresh/policy", test_refresh_policy);
    g_test_add_func("/engine/refresh/event-driven", test_event_driven);
    g_test_add_func("/engine/refresh/input-wakes", test_refresh_wake);
    g_test_add_func("/engine/event/planes-query", test_event_planes_query);
    g_test_add_func("/engine/event/other-plane-asked",
                    test_event_other_plane_asked);
    g_test_add_func("/engine/event/irq-info-v6", test_irq_info_v6);
    g_test_add_func("/engine/event/irq-info-hostile", test_irq_info_hostile);
    g_test_add_func("/engine/event/planes-decode", test_event_planes_decode);
    g_test_add_func("/engine/refresh/bounds-override",
                    test_refresh_bounds_override);
    g_test_add_func("/engine/reset", test_reset_drains);
    g_test_add_func("/engine/cache/same-id-both-planes",
                    test_same_id_both_planes);
    g_test_add_func("/engine/cache/id-moves-to-other-plane",
                    test_id_moves_to_other_plane);
    g_test_add_func("/engine/hostile/table", test_hostile_table);
    g_test_add_func("/engine/hostile/warning-rate-limit",
                    test_warning_rate_limit);
    g_test_add_func("/engine/formats/valid", test_valid_formats_accepted);
    return g_test_run();
}
