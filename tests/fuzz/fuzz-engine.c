/*
 * libFuzzer harness: the engine over the unit tests' fake device
 * (tests/unit/fake-gfx-plane.c), scripted by the input bytes.
 *
 * The input is a configuration (cache bound, refresh bounds, cursor
 * polling, event-driven or polled) followed by steps. A step is one of:
 * - a tick: what the primary and the cursor query answer (a valid plane
 *   from a few ids and geometries, so ids come back with other geometries
 *   and as the other plane; a garbage plane; "no plane"; an error,
 *   transient or not; the last answer again), then time advances and the
 *   engine polls;
 * - GET failures (EAGAIN, ENOMEM, EIO, ENOENT, ...) for the next GETs;
 * - an engine reset;
 * - a revoked buffer: the device takes a buffer away behind the engine's
 *   fd. A device cannot close an fd in our process; the fake models the
 *   revocation by dup2()ing /dev/null over the fd (fake_gfx_revoke()), so
 *   the number stays open and the engine's to close, exactly once;
 * - the engine freed and made anew.
 *
 * Invariants, checked after every step (abort() on violation):
 * - no fd leak: the fake's live fds == the engine's fds_open == cached
 *   buffers; after free, none live and the process's fd count is back;
 * - no GET for an id whose fd is open (fake_gfx_double_gets() == 0);
 * - the release hook never gets a buffer that is on screen (the engine's
 *   primary or cursor); each fd handed out is released exactly once, while
 *   still open; a buffer on screen at the start of a tick that is released
 *   during it is reported gone or replaced by the tick's events;
 * - cached <= max(cache_keep, buffers on screen);
 * - events agree with the state (a new or same scanout has a primary,
 *   a primary that disappears is reported gone, ...); one buffer is never
 *   both primary and cursor, and each is of its plane type and valid;
 * - the next interval is within the configured bounds; event-driven, it
 *   is the safety poll (refresh_max_ms) unless the tick asked a retry;
 *   the user's input (wake(), some steps) only ever shortens it;
 * - the engine's query and GET counters match the device's.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <fcntl.h>
#include <unistd.h>

#include "standard-headers/drm/drm_fourcc.h"
#include "hw/vfio/display-dmabuf.h"
#include "fake-gfx-plane.h"
#include "fuzz-common.h"

#define MAX_STEPS       256
#define N_IDS           6       /* valid planes use ids 1..N_IDS */

typedef struct Geometry {
    uint32_t fourcc, w, h, stride;
    uint64_t modifier;
} Geometry;

/* Primary geometries; the last ones are also valid cursors. */
static const Geometry primary_geo[] = {
    { DRM_FORMAT_XRGB8888, 64, 64, 256, 0 },
    { DRM_FORMAT_XRGB8888, 128, 32, 576, 0 }, /* padded rows */
    { DRM_FORMAT_RGB565, 64, 64, 128, 0 },
    { DRM_FORMAT_XRGB8888, 64, 64, 256, I915_FORMAT_MOD_X_TILED },
    { DRM_FORMAT_ARGB8888, 64, 64, 256, 0 },
    { DRM_FORMAT_ARGB8888, 32, 32, 128, 0 },
};

static const Geometry cursor_geo[] = {
    { DRM_FORMAT_ARGB8888, 64, 64, 256, 0 },
    { DRM_FORMAT_ARGB8888, 32, 32, 128, 0 },
    { DRM_FORMAT_XRGB8888, 64, 64, 256, 0 },
};

static const int query_errs[] = {
    EAGAIN, ENOMEM, EINTR, EBUSY, ENODEV, EIO, EINVAL, ENOTTY,
};

static const int get_errs[] = { EAGAIN, ENOMEM, EIO, ENOENT, ENODEV, EBUSY };

typedef struct Harness {
    FakeGfx *gfx;
    VFIODisplayDmabuf *d;
    VFIODisplayDmabufConfig cfg;     /* as the engine clamps it */
    bool event_driven;               /* set_event_driven(), every engine */
    int64_t now;
    uint64_t released;               /* release hook calls, all engines */
    uint64_t handed_out;             /* successful GETs, freed engines */
    uint64_t gets, queries;          /* engine counters, freed engines */
    /* on screen at the start of the step, and whether it was released */
    const VFIODmabufBuffer *shown_primary, *shown_cursor;
    bool released_primary, released_cursor;
} Harness;

static void on_release(void *opaque, VFIODmabufBuffer *buf)
{
    Harness *h = opaque;

    FUZZ_CHECK(buf != vfio_display_dmabuf_primary(h->d));
    FUZZ_CHECK(buf != vfio_display_dmabuf_cursor(h->d));
    FUZZ_CHECK(buf->plane.fd[0] >= 0);
    FUZZ_CHECK(fcntl(buf->plane.fd[0], F_GETFD) >= 0); /* not closed yet */
    if (buf == h->shown_primary) {
        h->released_primary = true;
        h->shown_primary = NULL; /* the address may be reused */
    }
    if (buf == h->shown_cursor) {
        h->released_cursor = true;
        h->shown_cursor = NULL;
    }
    h->released++;
}

static void engine_new(Harness *h)
{
    h->d = vfio_display_dmabuf_new(fake_gfx_ops(), h->gfx, &h->cfg);
    vfio_display_dmabuf_set_release(h->d, on_release, h);
    vfio_display_dmabuf_set_event_driven(h->d, h->event_driven);
}

static void engine_free(Harness *h)
{
    const VFIODisplayDmabufStats *st = vfio_display_dmabuf_stats(h->d);

    h->handed_out += st->gets - st->get_errors;
    h->gets += st->gets;
    h->queries += st->queries;
    h->shown_primary = h->shown_cursor = NULL;
    vfio_display_dmabuf_free(h->d);
    h->d = NULL;
    FUZZ_CHECK(fake_gfx_live_fds(h->gfx) == 0);
    FUZZ_CHECK(h->released == h->handed_out); /* each fd exactly once */
}

/* The valid plane @g of type @type with id @id, as the device reports it. */
static void make_plane(struct vfio_device_gfx_plane_info *p, uint32_t type,
                       const Geometry *g, uint32_t id)
{
    memset(p, 0, sizeof(*p));
    p->drm_plane_type = type;
    p->drm_format = g->fourcc;
    p->drm_format_mod = g->modifier;
    p->width = g->w;
    p->height = g->h;
    p->stride = g->stride;
    p->size = (uint64_t)g->stride * g->h;
    p->dmabuf_id = id;
}

/* A plane from raw input: mostly refused, sometimes not. */
static void make_garbage(struct vfio_device_gfx_plane_info *p,
                         uint32_t type, FuzzInput *in)
{
    uint8_t how = fuzz_u8(in);

    memset(p, 0, sizeof(*p));
    p->drm_plane_type = (how & 1) ? fuzz_u8(in) : type;
    p->drm_format = (how & 2) ? fuzz_u32(in) :
                    primary_geo[fuzz_u8(in) % G_N_ELEMENTS(primary_geo)].fourcc;
    p->drm_format_mod = (how & 4) ? fuzz_u32(in) : 0;
    p->width = (how & 8) ? fuzz_u32(in) : fuzz_u16(in) % 600;
    p->height = (how & 16) ? fuzz_u32(in) : fuzz_u16(in) % 600;
    p->stride = (how & 32) ? fuzz_u32(in) : p->width * 4 + fuzz_u8(in);
    p->size = (how & 64) ? fuzz_u32(in) : (uint64_t)p->stride * p->height;
    p->dmabuf_id = fuzz_u8(in) % (N_IDS + 2);
    if (how & 128) {
        p->x_pos = fuzz_u32(in);
        p->y_pos = fuzz_u32(in);
        p->x_hot = fuzz_u32(in);
        p->y_hot = fuzz_u32(in);
    }
}

/* Script what the next query of @type answers. */
static void script_plane(Harness *h, uint32_t type, FuzzInput *in)
{
    struct vfio_device_gfx_plane_info p;
    uint8_t op = fuzz_u8(in);
    uint32_t id = 1 + (op >> 3) % N_IDS;
    const Geometry *g;

    switch (op & 7) {
    case 0:
        fake_gfx_clear(h->gfx, type);
        break;
    case 1:
    case 2:
    case 3:
        if (type == FAKE_CURSOR) {
            g = &cursor_geo[fuzz_u8(in) % G_N_ELEMENTS(cursor_geo)];
        } else {
            g = &primary_geo[fuzz_u8(in) % G_N_ELEMENTS(primary_geo)];
        }
        make_plane(&p, type, g, id);
        if (type == FAKE_CURSOR) {
            uint8_t hot = fuzz_u8(in);

            p.x_pos = (uint32_t)((int32_t)(int8_t)fuzz_u8(in) * 8);
            p.y_pos = (uint32_t)((int32_t)(int8_t)fuzz_u8(in) * 8);
            p.x_hot = hot == 0xff ? VFIO_DMABUF_HOTSPOT_UNKNOWN : hot % 4;
            p.y_hot = hot == 0xff ? VFIO_DMABUF_HOTSPOT_UNKNOWN : hot / 64;
        }
        fake_gfx_set_plane(h->gfx, type, &p);
        break;
    case 4:
        make_garbage(&p, type, in);
        fake_gfx_set_plane(h->gfx, type, &p);
        break;
    case 5:
        fake_gfx_fail_query(h->gfx, type,
                            query_errs[fuzz_u8(in) % G_N_ELEMENTS(query_errs)],
                            1 + (op >> 6));
        break;
    default:
        break; /* the last answer again */
    }
}

static bool is_on_screen_type(const VFIODmabufBuffer *b, uint32_t type)
{
    struct vfio_device_gfx_plane_info p;

    if (b->plane_type != type || b->plane.n_fds != 1 ||
        fcntl(b->plane.fd[0], F_GETFD) < 0) {
        return false;
    }
    /* what the engine shows passes the checks it was accepted by */
    memset(&p, 0, sizeof(p));
    p.drm_plane_type = type;
    p.drm_format = b->plane.fourcc;
    p.drm_format_mod = b->plane.modifier;
    p.width = b->plane.width;
    p.height = b->plane.height;
    p.stride = b->plane.stride[0];
    p.size = b->plane.size;
    p.dmabuf_id = b->id;
    p.x_hot = p.y_hot = VFIO_DMABUF_HOTSPOT_UNKNOWN;
    return vfio_display_dmabuf_check_plane(&p, type) == VFIO_DMABUF_PLANE_OK;
}

/* Everything that must hold between two steps. */
static void check_state(Harness *h)
{
    const VFIODisplayDmabufStats *st = vfio_display_dmabuf_stats(h->d);
    const VFIODmabufBuffer *pri = vfio_display_dmabuf_primary(h->d);
    const VFIODmabufBuffer *cur = vfio_display_dmabuf_cursor(h->d);
    unsigned int cached = vfio_display_dmabuf_cached(h->d);
    unsigned int on_screen = !!pri + !!cur;
    unsigned int iv = vfio_display_dmabuf_next_interval_ms(h->d);

    FUZZ_CHECK(fake_gfx_live_fds(h->gfx) == st->fds_open);
    FUZZ_CHECK(st->fds_open == cached);
    FUZZ_CHECK(fake_gfx_double_gets(h->gfx) == 0);
    FUZZ_CHECK(cached <= MAX(h->cfg.cache_keep, on_screen));
    FUZZ_CHECK(!pri || !cur || pri != cur);
    FUZZ_CHECK(!pri || !cur || pri->id != cur->id);
    FUZZ_CHECK(!pri || is_on_screen_type(pri, FAKE_PRIMARY));
    FUZZ_CHECK(!cur || is_on_screen_type(cur, FAKE_CURSOR));
    FUZZ_CHECK((cur != NULL) == (vfio_display_dmabuf_cursor_pos(h->d) != NULL));
    FUZZ_CHECK(iv >= h->cfg.refresh_min_ms && iv <= h->cfg.refresh_max_ms);
    FUZZ_CHECK(st->planes_refused <= st->queries);
}

static void tick(Harness *h, FuzzInput *in)
{
    const VFIODmabufBuffer *pri, *cur;
    bool had_primary, had_cursor;
    unsigned int ev;
    uint8_t dt;

    script_plane(h, FAKE_PRIMARY, in);
    script_plane(h, FAKE_CURSOR, in);
    dt = fuzz_u8(in);
    /* mostly the engine's own interval; sometimes a pause or a hurry */
    h->now += dt < 200 ? vfio_display_dmabuf_next_interval_ms(h->d) :
              dt < 250 ? (int64_t)(dt - 200) :
              (int64_t)(dt - 249) * 7000;

    if (dt % 17 == 1) {
        /* the user's input: a poll no slower than active, within bounds */
        unsigned int before = vfio_display_dmabuf_next_interval_ms(h->d);
        bool woke = vfio_display_dmabuf_wake(h->d);
        unsigned int iv = vfio_display_dmabuf_next_interval_ms(h->d);

        FUZZ_CHECK(woke ? iv < before : iv == before);
        FUZZ_CHECK(iv >= h->cfg.refresh_min_ms && iv <= h->cfg.refresh_max_ms);
    }

    h->shown_primary = vfio_display_dmabuf_primary(h->d);
    h->shown_cursor = vfio_display_dmabuf_cursor(h->d);
    had_primary = h->shown_primary != NULL;
    had_cursor = h->shown_cursor != NULL;
    h->released_primary = h->released_cursor = false;

    ev = vfio_display_dmabuf_update(h->d, h->now);

    pri = vfio_display_dmabuf_primary(h->d);
    cur = vfio_display_dmabuf_cursor(h->d);
    FUZZ_CHECK(ev < (VFIO_DMABUF_EV_REFUSED << 1));
    if (ev & (VFIO_DMABUF_EV_NEW_SCANOUT | VFIO_DMABUF_EV_SAME_BUFFER)) {
        FUZZ_CHECK(pri);
    }
    FUZZ_CHECK(!((ev & VFIO_DMABUF_EV_NEW_SCANOUT) &&
                 (ev & VFIO_DMABUF_EV_SAME_BUFFER)));
    if (ev & VFIO_DMABUF_EV_SCANOUT_GONE) {
        FUZZ_CHECK(!pri && had_primary);
    }
    if (ev & (VFIO_DMABUF_EV_CURSOR_NEW | VFIO_DMABUF_EV_CURSOR_MOVED)) {
        FUZZ_CHECK(cur);
    }
    if (ev & VFIO_DMABUF_EV_CURSOR_GONE) {
        FUZZ_CHECK(!cur && had_cursor);
    }
    /* the presenter learns of every change of what is on screen */
    if (had_primary && !pri) {
        FUZZ_CHECK(ev & VFIO_DMABUF_EV_SCANOUT_GONE);
    }
    if (!had_primary && pri) {
        FUZZ_CHECK(ev & VFIO_DMABUF_EV_NEW_SCANOUT);
    }
    if (had_cursor && !cur) {
        FUZZ_CHECK(ev & VFIO_DMABUF_EV_CURSOR_GONE);
    }
    if (!had_cursor && cur) {
        FUZZ_CHECK(ev & VFIO_DMABUF_EV_CURSOR_NEW);
    }
    if (h->released_primary) {
        FUZZ_CHECK(ev & (VFIO_DMABUF_EV_NEW_SCANOUT |
                         VFIO_DMABUF_EV_SCANOUT_GONE));
    }
    if (h->released_cursor) {
        FUZZ_CHECK(ev & (VFIO_DMABUF_EV_CURSOR_NEW |
                         VFIO_DMABUF_EV_CURSOR_GONE));
    }
    if (!h->cfg.poll_cursor) {
        FUZZ_CHECK(!cur);
    }
    if (h->event_driven && !(ev & VFIO_DMABUF_EV_RETRY)) {
        FUZZ_CHECK(vfio_display_dmabuf_next_interval_ms(h->d) ==
                   h->cfg.refresh_max_ms);
    }
    h->shown_primary = h->shown_cursor = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzInput in = { data, size };
    int fds_before = count_open_fds();
    Harness h;
    unsigned int step;
    uint8_t c;

    memset(&h, 0, sizeof(h));
    h.gfx = fake_gfx_new();
    h.now = 1000;
    c = fuzz_u8(&in);
    vfio_display_dmabuf_config_default(&h.cfg);
    h.cfg.cache_keep = c % 9;
    h.cfg.poll_cursor = !(c & 0x80);
    h.event_driven = c & 0x20;
    if (c & 0x40) {
        h.cfg.refresh_min_ms = fuzz_u8(&in) % 20;
        h.cfg.refresh_active_ms = fuzz_u8(&in);
        h.cfg.refresh_max_ms = fuzz_u8(&in);
    }
    engine_new(&h);
    /* the engine's clamping, so the bounds below are the real ones */
    h.cfg.refresh_min_ms = MAX(h.cfg.refresh_min_ms, 1u);
    h.cfg.refresh_max_ms = MAX(h.cfg.refresh_max_ms, h.cfg.refresh_min_ms);
    check_state(&h);

    for (step = 0; step < MAX_STEPS && in.left; step++) {
        uint8_t op = fuzz_u8(&in);

        switch (op % 16) {
        case 12:
            fake_gfx_fail_get(h.gfx,
                              get_errs[(op >> 4) % G_N_ELEMENTS(get_errs)],
                              1 + fuzz_u8(&in) % 3);
            break;
        case 13:
            vfio_display_dmabuf_reset(h.d);
            FUZZ_CHECK(vfio_display_dmabuf_cached(h.d) == 0);
            FUZZ_CHECK(!vfio_display_dmabuf_primary(h.d));
            FUZZ_CHECK(!vfio_display_dmabuf_cursor(h.d));
            break;
        case 14:
            fake_gfx_revoke(h.gfx, op >> 4);
            break;
        case 15:
            engine_free(&h);
            FUZZ_CHECK(count_open_fds() == fds_before);
            engine_new(&h);
            break;
        default:
            tick(&h, &in);
            break;
        }
        check_state(&h);
        /* the engine's counters are the device's */
        FUZZ_CHECK(h.queries + vfio_display_dmabuf_stats(h.d)->queries ==
                   fake_gfx_queries(h.gfx));
        FUZZ_CHECK(h.gets + vfio_display_dmabuf_stats(h.d)->gets ==
                   fake_gfx_gets(h.gfx));
    }

    engine_free(&h);
    fake_gfx_free(h.gfx);
    FUZZ_CHECK(count_open_fds() == fds_before);
    return 0;
}
