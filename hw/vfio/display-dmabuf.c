/*
 * VFIO display dma-buf engine. See include/hw/vfio/display-dmabuf.h for
 * the API and the ownership rules, docs/architecture.md for the design.
 *
 * Everything the device reports is guest-controlled: it is validated here
 * before any other layer sees it, and nothing in the per-tick path prints
 * more than one warning per kind every VFIO_DMABUF_WARN_INTERVAL_S.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/vfio.h>

#include "qapi/error.h"
#include "qemu/error-report.h"
#include "standard-headers/drm/drm_fourcc.h"
#include "hw/vfio/display-dmabuf.h"
#include "hw/vfio/vfio-gfx-irq.h"
#include "trace.h"

/* v6's layout (include/hw/vfio/vfio-gfx-irq.h): the parser relies on it */
G_STATIC_ASSERT(sizeof(struct vfio_gfx_irq_info) == 20);
G_STATIC_ASSERT(sizeof(struct vfio_info_cap_header) == 8);
G_STATIC_ASSERT(sizeof(struct vfio_irq_info_cap_type) == 16);
G_STATIC_ASSERT(sizeof(struct vfio_irq_info_cap_display_plane_events) == 24);

/*
 * From <drm/drm_mode.h>; spelled out so that the engine needs only the
 * vfio uapi header (the values are ABI).
 */
#define PLANE_PRIMARY 1
#define PLANE_CURSOR  2

/* Warning kinds for the rate limiter (one slot per kind). */
enum {
    WARN_QUERY = VFIO_DMABUF_PLANE_CHECK__MAX,
    WARN_GET,
    WARN_MAP,
    WARN__MAX,
};

typedef struct CacheEntry {
    VFIODmabufBuffer buf;
    uint64_t last_used;         /* tick of the last lookup */
    uint64_t region_size;       /* region planes: the region's size */
} CacheEntry;

typedef enum QueryResult {
    QUERY_PLANE,                /* a valid plane in the answer */
    QUERY_EMPTY,                /* no plane */
    QUERY_RETRY,                /* transient error */
    QUERY_BAD,                  /* error or refused plane: keep last frame */
} QueryResult;

struct VFIODisplayDmabuf {
    const VFIODisplayDmabufOps *ops;
    void *opaque;
    VFIODisplayDmabufConfig cfg;

    GPtrArray *cache;           /* CacheEntry *, owned */
    CacheEntry *primary;        /* on screen; in cache */
    CacheEntry *cursor;         /* on screen; in cache */
    VFIODmabufCursor cursor_pos;

    VFIODmabufReleaseFn release;
    void *release_opaque;

    VFIODisplayDmabufStats stats;
    uint64_t tick;
    int64_t now_ms;
    int64_t last_warn_ms[WARN__MAX];
    /* region planes: the region of the last plane query() accepted */
    VFIODmabufRegionInfo region;

    /* refresh policy */
    unsigned int interval_ms;
    unsigned int idle_ticks;
    unsigned int retries;
    int64_t last_flip_ms;
    int64_t last_cursor_ms;     /* last cursor plane query */
    int64_t last_primary_ms;    /* last primary plane query */
    unsigned int flip_period_ms; /* smoothed; 0 = unknown */
    bool event_driven;          /* set_event_driven(): updates on events */
};

static const char *const check_names[VFIO_DMABUF_PLANE_CHECK__MAX] = {
    [VFIO_DMABUF_PLANE_OK] = "ok",
    [VFIO_DMABUF_PLANE_EMPTY] = "empty",
    [VFIO_DMABUF_PLANE_BAD_FOURCC] = "unknown fourcc",
    [VFIO_DMABUF_PLANE_BAD_SIZE] = "bad width/height",
    [VFIO_DMABUF_PLANE_BAD_STRIDE] = "bad stride",
    [VFIO_DMABUF_PLANE_BAD_LENGTH] = "buffer size too small or too large",
    [VFIO_DMABUF_PLANE_BAD_HOTSPOT] = "hotspot outside the cursor",
    [VFIO_DMABUF_PLANE_BAD_ID] = "dmabuf_id 0",
    [VFIO_DMABUF_PLANE_BAD_TYPE] = "answer for another plane type",
    [VFIO_DMABUF_PLANE_BAD_POSITION] = "cursor position out of range",
    [VFIO_DMABUF_PLANE_ID_IN_USE] = "dmabuf_id on screen as the other plane",
    [VFIO_DMABUF_PLANE_REGION_BAD] = "region not mappable",
    [VFIO_DMABUF_PLANE_REGION_SHORT] = "plane outside its region",
    [VFIO_DMABUF_PLANE_REGION_TILED] = "tiled region plane",
};

const char *vfio_display_dmabuf_check_str(VFIODmabufPlaneCheck c)
{
    if (c >= VFIO_DMABUF_PLANE_CHECK__MAX) {
        return "?";
    }
    return check_names[c];
}

void vfio_display_dmabuf_config_default(VFIODisplayDmabufConfig *cfg)
{
    cfg->cache_keep = VFIO_DMABUF_CACHE_KEEP;
    cfg->refresh_min_ms = VFIO_DMABUF_REFRESH_MIN_MS;
    cfg->refresh_active_ms = VFIO_DMABUF_REFRESH_ACTIVE_MS;
    cfg->refresh_max_ms = VFIO_DMABUF_REFRESH_MAX_MS;
    cfg->poll_cursor = true;
    cfg->region = false;
}

/* ------------------------------------------------------------------ */
/* validation */

static bool plane_is_empty(const struct vfio_device_gfx_plane_info *info)
{
    return info->drm_format == 0 && info->width == 0 && info->height == 0 &&
           info->stride == 0 && info->size == 0 && info->dmabuf_id == 0;
}

static VFIODmabufPlaneCheck
check_plane(const struct vfio_device_gfx_plane_info *info, uint32_t plane_type,
            bool region)
{
    uint32_t max_dim;
    unsigned int cpp;
    uint64_t need;

    if (plane_is_empty(info)) {
        return VFIO_DMABUF_PLANE_EMPTY;
    }
    if (info->drm_plane_type != plane_type) {
        return VFIO_DMABUF_PLANE_BAD_TYPE;
    }
    cpp = dmabuf_format_cpp(info->drm_format);
    if (cpp == 0) {
        return VFIO_DMABUF_PLANE_BAD_FOURCC;
    }
    max_dim = plane_type == PLANE_CURSOR ? VFIO_DMABUF_CURSOR_MAX_DIM
                                         : VFIO_DMABUF_MAX_DIM;
    if (info->width == 0 || info->height == 0 ||
        info->width > max_dim || info->height > max_dim) {
        return VFIO_DMABUF_PLANE_BAD_SIZE;
    }
    /* 4:2:2: a pixel pair shares its chroma; DRM wants whole pairs */
    if (dmabuf_format_is_yuv422(info->drm_format) && info->width % 2) {
        return VFIO_DMABUF_PLANE_BAD_SIZE;
    }
    /* 64-bit arithmetic: all factors are 32-bit, no product overflows */
    if ((uint64_t)info->stride < (uint64_t)info->width * cpp) {
        return VFIO_DMABUF_PLANE_BAD_STRIDE;
    }
    /*
     * Rows start on a pixel's natural alignment (any byte for 24-bit
     * formats, which hardware pads to other multiples): a row of 32-bit
     * pixels at an odd address is no layout a display engine scans out.
     */
    if (cpp != 3 && info->stride % cpp) {
        return VFIO_DMABUF_PLANE_BAD_STRIDE;
    }
    need = (uint64_t)info->stride * info->height;
    if (need > VFIO_DMABUF_MAX_SIZE) {
        return VFIO_DMABUF_PLANE_BAD_STRIDE;
    }
    if (info->size < need || info->size > VFIO_DMABUF_MAX_SIZE) {
        return VFIO_DMABUF_PLANE_BAD_LENGTH;
    }
    if (info->dmabuf_id == 0 && !region) {
        return VFIO_DMABUF_PLANE_BAD_ID;
    }
    if (plane_type == PLANE_CURSOR &&
        ((int32_t)info->x_pos < -VFIO_DMABUF_MAX_DIM ||
         (int32_t)info->x_pos > VFIO_DMABUF_MAX_DIM ||
         (int32_t)info->y_pos < -VFIO_DMABUF_MAX_DIM ||
         (int32_t)info->y_pos > VFIO_DMABUF_MAX_DIM)) {
        return VFIO_DMABUF_PLANE_BAD_POSITION;
    }
    if (plane_type == PLANE_CURSOR &&
        ((info->x_hot != VFIO_DMABUF_HOTSPOT_UNKNOWN &&
          info->x_hot >= info->width) ||
         (info->y_hot != VFIO_DMABUF_HOTSPOT_UNKNOWN &&
          info->y_hot >= info->height))) {
        return VFIO_DMABUF_PLANE_BAD_HOTSPOT;
    }
    return VFIO_DMABUF_PLANE_OK;
}

VFIODmabufPlaneCheck
vfio_display_dmabuf_check_plane(const struct vfio_device_gfx_plane_info *info,
                                uint32_t plane_type)
{
    return check_plane(info, plane_type, false);
}

VFIODmabufPlaneCheck
vfio_display_dmabuf_check_region(const struct vfio_device_gfx_plane_info *info,
                                 const VFIODmabufRegionInfo *region)
{
    VFIODmabufPlaneCheck c = check_plane(info, PLANE_PRIMARY, true);
    uint64_t need;

    if (c != VFIO_DMABUF_PLANE_OK) {
        return c;
    }
    if (info->drm_format_mod != 0) {
        return VFIO_DMABUF_PLANE_REGION_TILED;
    }
    if (region->index != info->region_index ||
        !(region->flags & VFIO_REGION_INFO_FLAG_READ) ||
        !(region->flags & VFIO_REGION_INFO_FLAG_MMAP)) {
        return VFIO_DMABUF_PLANE_REGION_BAD;
    }
    /* DRM's minimum: the last row need not be padded to the stride */
    need = (uint64_t)info->stride * (info->height - 1) +
           (uint64_t)info->width * dmabuf_format_cpp(info->drm_format);
    if (region->size < need) {
        return VFIO_DMABUF_PLANE_REGION_SHORT;
    }
    return VFIO_DMABUF_PLANE_OK;
}

/* warn_report at most once per kind every VFIO_DMABUF_WARN_INTERVAL_S */
static void G_GNUC_PRINTF(3, 4)
warn_limited(VFIODisplayDmabuf *d, unsigned int kind, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    if (d->last_warn_ms[kind] != INT64_MIN &&
        d->now_ms - d->last_warn_ms[kind] <
            (int64_t)VFIO_DMABUF_WARN_INTERVAL_S * 1000) {
        return;
    }
    d->last_warn_ms[kind] = d->now_ms;
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    warn_report("vfio-display-dmabuf: %s", msg);
}

/* Count, trace and (rate-limited) report a plane refused for @c. */
static void refuse(VFIODisplayDmabuf *d,
                   const struct vfio_device_gfx_plane_info *info,
                   VFIODmabufPlaneCheck c)
{
    char name[5];

    d->stats.planes_refused++;
    d->stats.refused_by[c]++;
    trace_vfio_display_dmabuf_refused(info->drm_plane_type, check_names[c],
                                      info->drm_format, info->width,
                                      info->height, info->stride, info->size);
    if (c == VFIO_DMABUF_PLANE_BAD_FOURCC &&
        info->drm_format == DRM_FORMAT_C8) {
        /* GVT-g reports 8-bit indexed scanouts: say why, not just "bad" */
        warn_limited(d, c, "device reported a %s plane in C8 (%s: 8-bit "
                     "indexed, and the vfio display ABI carries no palette, "
                     "so its colours are unknown); keeping the last good "
                     "frame: set a true-colour (16/24/32-bit) mode in the "
                     "guest",
                     info->drm_plane_type == PLANE_CURSOR ? "cursor" :
                     "primary", check_names[c]);
        return;
    }
    if (d->cfg.region) {
        /* what the region is, once the device was asked (query_region) */
        g_autofree char *region = d->region.index == info->region_index &&
            (d->region.size || d->region.flags) ?
            g_strdup_printf(" of %llu bytes, flags 0x%x",
                            (unsigned long long)d->region.size,
                            d->region.flags) : g_strdup("");

        warn_limited(d, c, "device reported a bad region plane (%s: %s "
                     "%ux%u stride %u size %llu in region %u%s); keeping "
                     "the last good frame", check_names[c],
                     dmabuf_format_name(info->drm_format, name),
                     info->width, info->height, info->stride,
                     (unsigned long long)info->size, info->region_index,
                     region);
        return;
    }
    warn_limited(d, c, "device reported a bad %s plane (%s: %s %ux%u "
                 "stride %u size %llu); keeping the last good frame",
                 info->drm_plane_type == PLANE_CURSOR ? "cursor" : "primary",
                 check_names[c], dmabuf_format_name(info->drm_format, name),
                 info->width, info->height, info->stride,
                 (unsigned long long)info->size);
}

/* ------------------------------------------------------------------ */
/* cache */

static bool same_geometry(const DmabufPlane *p,
                          const struct vfio_device_gfx_plane_info *info)
{
    return p->fourcc == info->drm_format &&
           p->modifier == info->drm_format_mod &&
           p->width == info->width && p->height == info->height &&
           p->stride[0] == info->stride && p->size == info->size;
}

static CacheEntry *cache_find(VFIODisplayDmabuf *d, uint32_t id)
{
    guint i;

    for (i = 0; i < d->cache->len; i++) {
        CacheEntry *e = g_ptr_array_index(d->cache, i);

        if (e->buf.id == id) {
            return e;
        }
    }
    return NULL;
}

/*
 * The one way out of the cache: unlink, tell the presenter, close, free.
 * Eviction, geometry changes, reset and free all come through here.
 */
static void cache_drop(VFIODisplayDmabuf *d, CacheEntry *e)
{
    if (e == d->primary) {
        d->primary = NULL;
    }
    if (e == d->cursor) {
        d->cursor = NULL;
    }
    g_ptr_array_remove_fast(d->cache, e);
    if (d->release) {
        d->release(d->release_opaque, &e->buf);
    }
    trace_vfio_display_dmabuf_evict(e->buf.id, e->buf.plane.fd[0],
                                    d->cache->len);
    if (e->buf.plane.fd[0] >= 0) {
        d->stats.fds_open--;
    }
    if (e->buf.plane.pixels) {
        trace_vfio_display_dmabuf_region_unmap(e->buf.id,
                                               e->buf.plane.pixels_len);
        d->ops->region_unmap(d->opaque, (void *)e->buf.plane.pixels,
                             e->buf.plane.pixels_len);
        e->buf.plane.pixels = NULL;
        d->stats.maps_open--;
    }
    dmabuf_plane_finish(&e->buf.plane);
    g_free(e);
}

/* Keep at most cfg.cache_keep buffers; never the ones on screen. */
static void cache_trim(VFIODisplayDmabuf *d)
{
    while (d->cache->len > d->cfg.cache_keep) {
        CacheEntry *victim = NULL;
        guint i;

        for (i = 0; i < d->cache->len; i++) {
            CacheEntry *e = g_ptr_array_index(d->cache, i);

            if (e == d->primary || e == d->cursor) {
                continue;
            }
            if (!victim || e->last_used < victim->last_used) {
                victim = e;
            }
        }
        if (!victim) {
            return; /* only on-screen buffers left */
        }
        d->stats.evictions++;
        cache_drop(d, victim);
    }
}

/*
 * GET_GFX_DMABUF for an id that has no open fd. This is the only caller of
 * ops->get_dmabuf: asking twice for an id whose fd is open shares one file
 * reference between two fds in some drivers (mbochs) and corrupts them.
 */
/* a new entry for @info, its plane filled but for the pixels' source */
static CacheEntry *entry_new(VFIODisplayDmabuf *d,
                             const struct vfio_device_gfx_plane_info *info)
{
    CacheEntry *e = g_new0(CacheEntry, 1);

    e->buf.id = info->dmabuf_id;
    e->buf.plane_type = info->drm_plane_type;
    dmabuf_plane_init(&e->buf.plane);
    e->buf.plane.fourcc = info->drm_format;
    e->buf.plane.modifier = info->drm_format_mod;
    e->buf.plane.width = info->width;
    e->buf.plane.height = info->height;
    e->buf.plane.size = info->size;
    e->buf.plane.offset[0] = 0;
    e->buf.plane.stride[0] = info->stride;
    e->last_used = d->tick;
    return e;
}

/*
 * A region plane's region, mapped: from its start (the uapi has no
 * offset), the plane's pages, at most the region's size. The one caller
 * of ops->region_map; one mapping per (region, geometry) in the cache.
 */
static CacheEntry *
cache_insert_region(VFIODisplayDmabuf *d,
                    const struct vfio_device_gfx_plane_info *info,
                    bool *transient)
{
    size_t page = qemu_real_host_page_size();
    uint64_t need = (uint64_t)info->stride * info->height;
    size_t len = MIN(ROUND_UP(need, page), d->region.size);
    CacheEntry *e;
    void *addr;

    assert(!cache_find(d, info->region_index));
    d->stats.region_maps++;
    addr = d->ops->region_map(d->opaque, &d->region, len);
    if (!addr) {
        int err = errno;

        d->stats.region_map_errors++;
        trace_vfio_display_dmabuf_region_map_error(info->region_index, len,
                                                   -err);
        *transient = err == EAGAIN || err == ENOMEM || err == EINTR;
        if (!*transient) {
            warn_limited(d, WARN_MAP, "mmap of region %u (%zu bytes) "
                         "failed: %s", info->region_index, len,
                         g_strerror(err));
        }
        return NULL;
    }
    e = entry_new(d, info);
    e->buf.plane.n_fds = 0;
    e->buf.plane.pixels = addr;
    e->buf.plane.pixels_len = len;
    e->region_size = d->region.size;
    g_ptr_array_add(d->cache, e);
    d->stats.maps_open++;
    trace_vfio_display_dmabuf_region_map(info->region_index, len,
                                         info->drm_format, info->width,
                                         info->height, info->stride);
    return e;
}

static CacheEntry *cache_insert(VFIODisplayDmabuf *d,
                                const struct vfio_device_gfx_plane_info *info,
                                bool *transient)
{
    CacheEntry *e;
    int fd;

    if (d->cfg.region) {
        return cache_insert_region(d, info, transient);
    }
    assert(!cache_find(d, info->dmabuf_id));
    d->stats.gets++;
    fd = d->ops->get_dmabuf(d->opaque, info->dmabuf_id);
    if (fd < 0) {
        d->stats.get_errors++;
        trace_vfio_display_dmabuf_get_error(info->dmabuf_id, fd);
        *transient = fd == -EAGAIN || fd == -ENOMEM || fd == -EINTR ||
                     fd == -EBUSY;
        if (!*transient) {
            warn_limited(d, WARN_GET, "GET_GFX_DMABUF id %u failed: %s",
                         info->dmabuf_id, g_strerror(-fd));
        }
        return NULL;
    }
    /* the kernel may hand it out without close-on-exec */
    fcntl(fd, F_SETFD, FD_CLOEXEC);

    e = entry_new(d, info);
    e->buf.plane.n_fds = 1;
    e->buf.plane.fd[0] = fd;
    g_ptr_array_add(d->cache, e);
    d->stats.fds_open++;
    trace_vfio_display_dmabuf_get(info->drm_plane_type, info->dmabuf_id, fd,
                                  info->drm_format, info->drm_format_mod,
                                  info->width, info->height, info->stride);
    return e;
}

static CacheEntry *cache_lookup(VFIODisplayDmabuf *d,
                                const struct vfio_device_gfx_plane_info *info,
                                bool *transient)
{
    CacheEntry *e = cache_find(d, info->dmabuf_id);

    *transient = false;
    if (e && ((e == d->primary && info->drm_plane_type != PLANE_PRIMARY) ||
              (e == d->cursor && info->drm_plane_type != PLANE_CURSOR))) {
        /* one buffer cannot be both planes: keep what is on screen */
        refuse(d, info, VFIO_DMABUF_PLANE_ID_IN_USE);
        return NULL;
    }
    if (e && e->buf.plane_type == info->drm_plane_type &&
        same_geometry(&e->buf.plane, info) &&
        (!d->cfg.region || e->region_size == d->region.size)) {
        d->stats.cache_hits++;
        e->last_used = d->tick;
        return e;
    }
    if (e) {
        /*
         * Same id, new geometry or the other plane: a new buffer (the
         * presenter's data is per plane type); the old fd goes first.
         */
        d->stats.geometry_changes++;
        trace_vfio_display_dmabuf_geometry_changed(e->buf.id);
        cache_drop(d, e);
    }
    d->stats.cache_misses++;
    return cache_insert(d, info, transient);
}

/* ------------------------------------------------------------------ */
/* one tick */

/*
 * A region plane's region, asked of the device on every query (a region
 * may change size under the same plane geometry) into d->region, and the
 * plane checked against it.
 */
static VFIODmabufPlaneCheck
query_region(VFIODisplayDmabuf *d,
             const struct vfio_device_gfx_plane_info *info)
{
    VFIODmabufRegionInfo *r = &d->region;
    int ret;

    memset(r, 0, sizeof(*r));
    d->stats.region_infos++;
    ret = d->ops->region_info(d->opaque, info->region_index, r);
    if (ret < 0) {
        memset(r, 0, sizeof(*r));
        trace_vfio_display_dmabuf_region_info_error(info->region_index, ret);
        return VFIO_DMABUF_PLANE_REGION_BAD;
    }
    r->index = info->region_index;
    return vfio_display_dmabuf_check_region(info, r);
}

static QueryResult query(VFIODisplayDmabuf *d, uint32_t type,
                         struct vfio_device_gfx_plane_info *info)
{
    VFIODmabufPlaneCheck c;
    int ret;

    memset(info, 0, sizeof(*info));
    info->argsz = sizeof(*info);
    info->flags = d->cfg.region ? VFIO_GFX_PLANE_TYPE_REGION :
                                  VFIO_GFX_PLANE_TYPE_DMABUF;
    info->drm_plane_type = type;
    memset(&d->region, 0, sizeof(d->region)); /* not asked yet */
    d->stats.queries++;
    ret = d->ops->query_plane(d->opaque, info);
    if (ret == -EAGAIN || ret == -ENOMEM || ret == -EINTR || ret == -EBUSY) {
        d->stats.query_transient++;
        trace_vfio_display_dmabuf_query_error(type, ret, true);
        return QUERY_RETRY;
    }
    if (ret == -ENODEV) {
        /* plane disabled (i915/gvt answers so) */
        d->stats.planes_empty++;
        return QUERY_EMPTY;
    }
    if (ret < 0) {
        d->stats.query_errors++;
        trace_vfio_display_dmabuf_query_error(type, ret, false);
        warn_limited(d, WARN_QUERY, "QUERY_GFX_PLANE type %u failed: %s",
                     type, g_strerror(-ret));
        return QUERY_BAD;
    }
    c = check_plane(info, type, d->cfg.region);
    if (c == VFIO_DMABUF_PLANE_EMPTY) {
        d->stats.planes_empty++;
        return QUERY_EMPTY;
    }
    if (c == VFIO_DMABUF_PLANE_OK && d->cfg.region) {
        c = query_region(d, info);
    }
    if (c != VFIO_DMABUF_PLANE_OK) {
        refuse(d, info, c);
        return QUERY_BAD;
    }
    return QUERY_PLANE;
}

static unsigned int update_primary(VFIODisplayDmabuf *d)
{
    struct vfio_device_gfx_plane_info info;
    unsigned int ev;
    CacheEntry *e;
    bool transient, shown;

    switch (query(d, PLANE_PRIMARY, &info)) {
    case QUERY_RETRY:
        return VFIO_DMABUF_EV_RETRY;
    case QUERY_BAD:
        return VFIO_DMABUF_EV_REFUSED;
    case QUERY_EMPTY:
        if (!d->primary) {
            return VFIO_DMABUF_EV_NONE;
        }
        d->primary = NULL; /* stays cached: the mode may come back */
        trace_vfio_display_dmabuf_scanout_gone();
        cache_trim(d); /* ... if the bound has room for it off screen */
        return VFIO_DMABUF_EV_SCANOUT_GONE;
    case QUERY_PLANE:
        break;
    }

    shown = d->primary != NULL;
    e = cache_lookup(d, &info, &transient);
    if (!e) {
        ev = transient ? VFIO_DMABUF_EV_RETRY : VFIO_DMABUF_EV_REFUSED;
        if (shown && !d->primary) {
            /* its id got a new geometry, and the new buffer failed */
            trace_vfio_display_dmabuf_scanout_gone();
            ev |= VFIO_DMABUF_EV_SCANOUT_GONE;
        }
        return ev;
    }
    if (e == d->primary) {
        return VFIO_DMABUF_EV_SAME_BUFFER;
    }
    if (d->primary) {
        d->stats.flips_seen++;
    }
    d->primary = e;
    trace_vfio_display_dmabuf_scanout(e->buf.id, info.width, info.height);
    cache_trim(d);
    return VFIO_DMABUF_EV_NEW_SCANOUT;
}

static unsigned int update_cursor(VFIODisplayDmabuf *d)
{
    struct vfio_device_gfx_plane_info info;
    VFIODmabufCursor pos;
    unsigned int ev;
    CacheEntry *e;
    bool transient, shown;

    switch (query(d, PLANE_CURSOR, &info)) {
    case QUERY_RETRY:
        return VFIO_DMABUF_EV_RETRY;
    case QUERY_BAD:
        return VFIO_DMABUF_EV_REFUSED;
    case QUERY_EMPTY:
        if (!d->cursor) {
            return VFIO_DMABUF_EV_NONE;
        }
        d->cursor = NULL;
        trace_vfio_display_dmabuf_cursor_gone();
        cache_trim(d);
        return VFIO_DMABUF_EV_CURSOR_GONE;
    case QUERY_PLANE:
        break;
    }

    shown = d->cursor != NULL;
    e = cache_lookup(d, &info, &transient);
    if (!e) {
        ev = transient ? VFIO_DMABUF_EV_RETRY : VFIO_DMABUF_EV_REFUSED;
        if (shown && !d->cursor) {
            trace_vfio_display_dmabuf_cursor_gone();
            ev |= VFIO_DMABUF_EV_CURSOR_GONE;
        }
        return ev;
    }
    pos.x = (int32_t)info.x_pos;
    pos.y = (int32_t)info.y_pos;
    pos.hot_x = info.x_hot;
    pos.hot_y = info.y_hot;
    if (e != d->cursor || pos.hot_x != d->cursor_pos.hot_x ||
        pos.hot_y != d->cursor_pos.hot_y) {
        /* a new image or a new hotspot: the cursor is defined anew */
        d->cursor = e;
        d->cursor_pos = pos;
        d->stats.cursor_changes++;
        trace_vfio_display_dmabuf_cursor(e->buf.id, pos.x, pos.y,
                                         pos.hot_x, pos.hot_y);
        cache_trim(d);
        return VFIO_DMABUF_EV_CURSOR_NEW;
    }
    if (pos.x != d->cursor_pos.x || pos.y != d->cursor_pos.y) {
        d->cursor_pos = pos;
        d->stats.cursor_moves++;
        trace_vfio_display_dmabuf_cursor_move(pos.x, pos.y,
                                              pos.hot_x, pos.hot_y);
        return VFIO_DMABUF_EV_CURSOR_MOVED;
    }
    return VFIO_DMABUF_EV_NONE;
}

/*
 * The refresh policy. After a flip the interval follows half the smoothed
 * flip period (so that every flip is seen), within [min, active]; after
 * another change it is `active`; after VFIO_DMABUF_REFRESH_IDLE_TICKS
 * quiet ticks it grows by BACKOFF_PCT per tick up to `max`. A transient
 * error retries at `min`, doubling while it persists.
 */
static void update_interval(VFIODisplayDmabuf *d, unsigned int ev)
{
    const VFIODisplayDmabufConfig *c = &d->cfg;
    unsigned int old = d->interval_ms;
    unsigned int next;

    if (ev & VFIO_DMABUF_EV_NEW_SCANOUT) {
        int64_t gap = d->last_flip_ms == INT64_MIN ? -1 :
                      d->now_ms - d->last_flip_ms;

        if (gap >= 0 && gap <= 2 * VFIO_DMABUF_FLIP_RATE_MS) {
            d->flip_period_ms = d->flip_period_ms ?
                (3 * d->flip_period_ms + (unsigned int)gap + 2) / 4 :
                (unsigned int)gap;
        } else {
            d->flip_period_ms = 0; /* first flip after a pause */
        }
        d->last_flip_ms = d->now_ms;
    }

    if (ev & VFIO_DMABUF_EV_RETRY) {
        unsigned int shift = MIN(d->retries, 5u);

        d->retries++;
        next = c->refresh_min_ms << shift;
    } else if (ev & (VFIO_DMABUF_EV_NEW_SCANOUT | VFIO_DMABUF_EV_SCANOUT_GONE |
                     VFIO_DMABUF_EV_CURSOR_NEW | VFIO_DMABUF_EV_CURSOR_MOVED |
                     VFIO_DMABUF_EV_CURSOR_GONE)) {
        d->retries = 0;
        d->idle_ticks = 0;
        next = c->refresh_active_ms;
        /* the flip rate counts while the guest flips, not after */
        if (d->flip_period_ms &&
            d->now_ms - d->last_flip_ms <= VFIO_DMABUF_FLIP_RATE_MS) {
            next = MIN(next, d->flip_period_ms / 2);
        }
    } else {
        d->retries = 0;
        next = d->interval_ms;
        if (++d->idle_ticks > VFIO_DMABUF_REFRESH_IDLE_TICKS) {
            next = MAX(next * VFIO_DMABUF_REFRESH_BACKOFF_PCT / 100,
                       next + 1);
        }
    }
    if (d->event_driven && !(ev & VFIO_DMABUF_EV_RETRY)) {
        next = c->refresh_max_ms; /* the device says when: a safety poll */
    }
    next = MAX(next, c->refresh_min_ms);
    next = MIN(next, c->refresh_max_ms);
    d->interval_ms = next;
    if (next != old) {
        trace_vfio_display_dmabuf_interval(old, next);
    }
}

unsigned int vfio_display_dmabuf_update_planes(VFIODisplayDmabuf *d,
                                               int64_t now_ms,
                                               unsigned int planes)
{
    unsigned int ev = VFIO_DMABUF_EV_NONE;

    d->tick++;
    d->now_ms = now_ms;
    d->stats.ticks++;
    /*
     * Whatever an event names, each plane is asked at the first tick and
     * at least every refresh_max_ms: a change the device signalled before
     * the event was armed, or never, is seen although the other plane's
     * events keep coming (and keep the safety poll from running).
     */
    if (d->last_primary_ms == INT64_MIN ||
        now_ms - d->last_primary_ms >= (int64_t)d->cfg.refresh_max_ms) {
        planes |= VFIO_DMABUF_QUERY_PRIMARY;
    }
    if (d->last_cursor_ms == INT64_MIN ||
        now_ms - d->last_cursor_ms >= (int64_t)d->cfg.refresh_max_ms) {
        planes |= VFIO_DMABUF_QUERY_CURSOR;
    }
    if (planes & VFIO_DMABUF_QUERY_PRIMARY) {
        d->last_primary_ms = now_ms;
        ev |= update_primary(d);
    }
    if (d->cfg.poll_cursor && (planes & VFIO_DMABUF_QUERY_CURSOR)) {
        d->last_cursor_ms = now_ms;
        ev |= update_cursor(d);
    }
    if (ev & (VFIO_DMABUF_EV_NEW_SCANOUT | VFIO_DMABUF_EV_SAME_BUFFER)) {
        assert(d->primary);
        d->stats.frames_reported++;
    }
    assert(!(ev & VFIO_DMABUF_EV_CURSOR_NEW) || d->cursor);
    update_interval(d, ev);
    return ev;
}

unsigned int vfio_display_dmabuf_update(VFIODisplayDmabuf *d, int64_t now_ms)
{
    unsigned int planes = VFIO_DMABUF_QUERY_PRIMARY;

    /* polling, the cursor is asked for at most every CURSOR_PERIOD_MS */
    if (d->event_driven || d->last_cursor_ms == INT64_MIN ||
        now_ms - d->last_cursor_ms >= VFIO_DMABUF_CURSOR_PERIOD_MS) {
        planes |= VFIO_DMABUF_QUERY_CURSOR;
    }
    return vfio_display_dmabuf_update_planes(d, now_ms, planes);
}

unsigned int vfio_display_dmabuf_next_interval_ms(const VFIODisplayDmabuf *d)
{
    return d->interval_ms;
}

bool vfio_display_dmabuf_wake(VFIODisplayDmabuf *d)
{
    unsigned int old = d->interval_ms;
    unsigned int next = MIN(MAX(d->cfg.refresh_active_ms,
                                d->cfg.refresh_min_ms), d->cfg.refresh_max_ms);

    d->idle_ticks = 0;
    if (d->event_driven || old <= next) {
        return false;
    }
    d->interval_ms = next;
    d->stats.wakes++;
    trace_vfio_display_dmabuf_wake(old, next);
    return true;
}

/* ------------------------------------------------------------------ */
/* the display event's IRQ info (include/hw/vfio/vfio-gfx-irq.h) */

bool vfio_display_dmabuf_parse_irq_info(const void *buf, size_t len,
                                        VFIODmabufEventInfo *info)
{
    const uint8_t *p = buf;
    struct vfio_gfx_irq_info irq;
    struct vfio_info_cap_header hdr;
    struct vfio_irq_info_cap_type type;
    struct vfio_irq_info_cap_display_plane_events disp;
    bool is_display = false;
    size_t off;
    unsigned int n;

    memset(info, 0, sizeof(*info));
    if (len < sizeof(irq)) {
        return false;
    }
    memcpy(&irq, p, sizeof(irq));
    if (!(irq.flags & VFIO_IRQ_INFO_EVENTFD) ||
        !(irq.flags & VFIO_IRQ_INFO_FLAG_CAPS) || irq.count != 1) {
        return false;
    }
    /*
     * Capabilities are copied out (they need not be aligned: v6 puts
     * CAP_DISPLAY's __u64s at offset 44). Each one lies after the struct
     * and inside @len; `next` must move forward, so the walk ends.
     */
    off = irq.cap_offset;
    for (n = 0; off && n < VFIO_DMABUF_EVENT_MAX_CAPS; n++) {
        if (off < sizeof(irq) || off > len || len - off < sizeof(hdr)) {
            break;
        }
        memcpy(&hdr, p + off, sizeof(hdr));
        if (hdr.id == VFIO_IRQ_INFO_CAP_TYPE && hdr.version == 1 &&
            len - off >= sizeof(type)) {
            memcpy(&type, p + off, sizeof(type));
            if (type.type == VFIO_IRQ_TYPE_GFX &&
                type.subtype == VFIO_IRQ_SUBTYPE_GFX_DISPLAY_IRQ) {
                is_display = true;
            }
        } else if (hdr.id == VFIO_IRQ_INFO_CAP_DISPLAY && hdr.version == 1 &&
                   len - off >= sizeof(disp) && !info->has_values) {
            memcpy(&disp, p + off, sizeof(disp));
            if (disp.pri_event_val && disp.cur_event_val &&
                disp.pri_event_val != disp.cur_event_val) {
                info->has_values = true;
                info->pri_val = disp.pri_event_val;
                info->cur_val = disp.cur_event_val;
            }
        }
        if (hdr.next && hdr.next < off + sizeof(hdr)) {
            break; /* backwards or onto itself: a loop */
        }
        off = hdr.next;
    }
    if (!is_display) {
        memset(info, 0, sizeof(*info));
    }
    return is_display;
}

unsigned int vfio_display_dmabuf_event_planes(const VFIODmabufEventInfo *info,
                                              uint64_t count)
{
    uint64_t hi, lo;
    unsigned int hi_plane, lo_plane;

    if (!count) {
        return 0;
    }
    if (!info->has_values) {
        return VFIO_DMABUF_QUERY_BOTH;
    }
    if (info->pri_val > info->cur_val) {
        hi = info->pri_val;
        lo = info->cur_val;
        hi_plane = VFIO_DMABUF_QUERY_PRIMARY;
        lo_plane = VFIO_DMABUF_QUERY_CURSOR;
    } else {
        hi = info->cur_val;
        lo = info->pri_val;
        hi_plane = VFIO_DMABUF_QUERY_CURSOR;
        lo_plane = VFIO_DMABUF_QUERY_PRIMARY;
    }
    if (count < hi) {
        /* no signal of the larger value fits: the smaller one's only */
        return count % lo == 0 ? lo_plane : VFIO_DMABUF_QUERY_BOTH;
    }
    if (count == hi) {
        return hi_plane; /* one signal of it (see the header) */
    }
    return VFIO_DMABUF_QUERY_BOTH;
}

/* ------------------------------------------------------------------ */
/* life cycle and accessors */

static void policy_reset(VFIODisplayDmabuf *d)
{
    d->interval_ms = d->cfg.refresh_active_ms;
    d->idle_ticks = 0;
    d->retries = 0;
    d->last_flip_ms = INT64_MIN;
    d->last_cursor_ms = INT64_MIN;
    d->last_primary_ms = INT64_MIN;
    d->flip_period_ms = 0;
}

void vfio_display_dmabuf_set_event_driven(VFIODisplayDmabuf *d, bool on)
{
    if (d->event_driven != on) {
        trace_vfio_display_dmabuf_event_driven(on);
        d->event_driven = on;
        policy_reset(d);
    }
}

static void drain(VFIODisplayDmabuf *d)
{
    d->primary = NULL;
    d->cursor = NULL;
    while (d->cache->len) {
        cache_drop(d, g_ptr_array_index(d->cache, d->cache->len - 1));
    }
}

VFIODisplayDmabuf *vfio_display_dmabuf_new(const VFIODisplayDmabufOps *ops,
                                           void *opaque,
                                           const VFIODisplayDmabufConfig *cfg)
{
    VFIODisplayDmabuf *d = g_new0(VFIODisplayDmabuf, 1);
    unsigned int i;

    d->ops = ops;
    d->opaque = opaque;
    if (cfg) {
        d->cfg = *cfg;
    } else {
        vfio_display_dmabuf_config_default(&d->cfg);
    }
    /* keep the bounds consistent whatever the caller asked for */
    d->cfg.refresh_min_ms = MAX(d->cfg.refresh_min_ms, 1u);
    d->cfg.refresh_max_ms = MAX(d->cfg.refresh_max_ms, d->cfg.refresh_min_ms);
    d->cfg.refresh_active_ms = MIN(MAX(d->cfg.refresh_active_ms,
                                       d->cfg.refresh_min_ms),
                                   d->cfg.refresh_max_ms);
    if (d->cfg.region) {
        /*
         * No cursor plane: region devices have none, and mdpy answers any
         * plane type with its framebuffer.
         */
        d->cfg.poll_cursor = false;
        assert(ops->region_info && ops->region_map && ops->region_unmap);
    }
    d->cache = g_ptr_array_new();
    for (i = 0; i < WARN__MAX; i++) {
        d->last_warn_ms[i] = INT64_MIN;
    }
    policy_reset(d);
    trace_vfio_display_dmabuf_new(d->cfg.cache_keep, d->cfg.refresh_min_ms,
                                  d->cfg.refresh_max_ms);
    return d;
}

void vfio_display_dmabuf_free(VFIODisplayDmabuf *d)
{
    if (!d) {
        return;
    }
    drain(d);
    g_ptr_array_free(d->cache, true);
    g_free(d);
}

void vfio_display_dmabuf_set_release(VFIODisplayDmabuf *d,
                                     VFIODmabufReleaseFn fn, void *opaque)
{
    d->release = fn;
    d->release_opaque = opaque;
}

void vfio_display_dmabuf_set_presenter_data(VFIODisplayDmabuf *d,
                                            const VFIODmabufBuffer *buf,
                                            void *data)
{
    guint i;

    for (i = 0; i < d->cache->len; i++) {
        CacheEntry *e = g_ptr_array_index(d->cache, i);

        if (&e->buf == buf) {
            e->buf.presenter_data = data;
            return;
        }
    }
    g_assert_not_reached(); /* not one of ours */
}

void vfio_display_dmabuf_release_all(VFIODisplayDmabuf *d)
{
    drain(d);
    memset(&d->cursor_pos, 0, sizeof(d->cursor_pos));
    policy_reset(d);
}

void vfio_display_dmabuf_reset(VFIODisplayDmabuf *d)
{
    trace_vfio_display_dmabuf_reset(d->cache->len);
    d->stats.resets++;
    vfio_display_dmabuf_release_all(d);
}

/* VFIO_GFX_PLANE_TYPE_PROBE for plane kind @kind (DMABUF or REGION) */
static bool probe_kind(const VFIODisplayDmabufOps *ops, void *opaque,
                       uint32_t kind, const char *what, Error **errp)
{
    struct vfio_device_gfx_plane_info probe;
    int ret;

    memset(&probe, 0, sizeof(probe));
    probe.argsz = sizeof(probe);
    probe.flags = VFIO_GFX_PLANE_TYPE_PROBE | kind;
    ret = ops->query_plane(opaque, &probe);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "device does not %s", what);
        return false;
    }
    return true;
}

bool vfio_display_dmabuf_probe(const VFIODisplayDmabufOps *ops, void *opaque,
                               Error **errp)
{
    return probe_kind(ops, opaque, VFIO_GFX_PLANE_TYPE_DMABUF,
                      "export display planes as dma-bufs", errp);
}

bool vfio_display_dmabuf_probe_region(const VFIODisplayDmabufOps *ops,
                                      void *opaque, Error **errp)
{
    return probe_kind(ops, opaque, VFIO_GFX_PLANE_TYPE_REGION,
                      "offer display planes as regions", errp);
}

const VFIODmabufBuffer *vfio_display_dmabuf_primary(const VFIODisplayDmabuf *d)
{
    return d->primary ? &d->primary->buf : NULL;
}

const VFIODmabufBuffer *vfio_display_dmabuf_cursor(const VFIODisplayDmabuf *d)
{
    return d->cursor ? &d->cursor->buf : NULL;
}

const VFIODmabufCursor *
vfio_display_dmabuf_cursor_pos(const VFIODisplayDmabuf *d)
{
    return d->cursor ? &d->cursor_pos : NULL;
}

unsigned int vfio_display_dmabuf_cached(const VFIODisplayDmabuf *d)
{
    return d->cache->len;
}

const VFIODisplayDmabufStats *
vfio_display_dmabuf_stats(const VFIODisplayDmabuf *d)
{
    return &d->stats;
}

/* ------------------------------------------------------------------ */
/* production ops: ioctls on the vfio device fd */

static int ioctl_query_plane(void *opaque,
                             struct vfio_device_gfx_plane_info *info)
{
    int fd = *(int *)opaque;

    return ioctl(fd, VFIO_DEVICE_QUERY_GFX_PLANE, info) < 0 ? -errno : 0;
}

static int ioctl_get_dmabuf(void *opaque, uint32_t dmabuf_id)
{
    int fd = *(int *)opaque;
    int ret = ioctl(fd, VFIO_DEVICE_GET_GFX_DMABUF, &dmabuf_id);

    return ret < 0 ? -errno : ret;
}

static int ioctl_region_info(void *opaque, uint32_t index,
                             VFIODmabufRegionInfo *info)
{
    int fd = *(int *)opaque;
    struct vfio_region_info r = {
        .argsz = sizeof(r),
        .index = index,
    };

    if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &r) < 0) {
        return -errno;
    }
    info->index = index;
    info->flags = r.flags;
    info->size = r.size;
    info->offset = r.offset;
    return 0;
}

static void *ioctl_region_map(void *opaque, const VFIODmabufRegionInfo *info,
                              size_t len)
{
    int fd = *(int *)opaque;
    void *addr;

    if (info->offset > (uint64_t)INT64_MAX) {
        errno = EINVAL;
        return NULL;
    }
    addr = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, (off_t)info->offset);
    return addr == MAP_FAILED ? NULL : addr;
}

static void ioctl_region_unmap(void *opaque, void *addr, size_t len)
{
    munmap(addr, len);
}

static const VFIODisplayDmabufOps ioctl_ops = {
    .query_plane = ioctl_query_plane,
    .get_dmabuf = ioctl_get_dmabuf,
    .region_info = ioctl_region_info,
    .region_map = ioctl_region_map,
    .region_unmap = ioctl_region_unmap,
};

const VFIODisplayDmabufOps *vfio_display_dmabuf_ioctl_ops(void)
{
    return &ioctl_ops;
}
