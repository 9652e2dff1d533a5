/*
 * VFIO display dma-buf engine: polls a vfio device's primary and cursor
 * planes, validates what the device reports, caches dma-bufs by id and
 * decides, once per tick, what changed on screen. A device that offers
 * region planes instead (VFIODisplayDmabufConfig.region) gets the same,
 * with each region mapped read-only once and cached by region index.
 *
 * Region mappings are owned like the fds: the engine maps a region when a
 * plane first names it (ops->region_map) and unmaps it where it would
 * close an fd, after the release hook; the pixels a VFIODmabufBuffer's
 * plane points at stay mapped until then.
 *
 * The engine knows nothing of EGL, GL or QEMU consoles. It reaches the
 * device through VFIODisplayDmabufOps, so production uses ioctls on the
 * vfio device fd (vfio_display_dmabuf_ioctl_ops()) and tests use a fake.
 *
 * Ownership
 * - The engine owns every dma-buf fd it got from ops->get_dmabuf() and
 *   closes each exactly once: on eviction, on reset and in
 *   vfio_display_dmabuf_free(). Before it closes one it calls the
 *   release hook, so a presenter can drop its import first.
 * - VFIODmabufBuffer pointers returned by the accessors are borrowed; they
 *   stay valid until the release hook runs for them.
 * - A presenter that keeps a buffer beyond that must dmabuf_plane_dup()
 *   its plane and close the copy itself.
 * - The engine never owns the device fd behind the ops.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VFIO_DISPLAY_DMABUF_H
#define HW_VFIO_DISPLAY_DMABUF_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <linux/vfio.h>

#include "ui/dmabuf-plane.h"

typedef struct Error Error;

/*
 * Cached dma-bufs kept, the ones on screen included; the buffers on screen
 * (primary, cursor) are never evicted, even when they alone exceed it.
 */
#define VFIO_DMABUF_CACHE_KEEP          6
/* Largest primary plane accepted, in pixels per side. */
#define VFIO_DMABUF_MAX_DIM             16384
/* Largest cursor plane accepted, in pixels per side. */
#define VFIO_DMABUF_CURSOR_MAX_DIM      512
/* Largest buffer accepted, in bytes (a 16384x16384 plane at 4 cpp). */
#define VFIO_DMABUF_MAX_SIZE            (1ULL << 30)
/* Hotspot value meaning "unknown" in the vfio uapi. */
#define VFIO_DMABUF_HOTSPOT_UNKNOWN     0xffffffffu

/* Refresh policy bounds (milliseconds); all overridable in the config. */
#define VFIO_DMABUF_REFRESH_MIN_MS      4   /* fastest poll, while flipping */
/* poll after a change when no flip rate is known */
#define VFIO_DMABUF_REFRESH_ACTIVE_MS   16
/*
 * Slowest poll, fully idle (after about 4 s without a change). The user's
 * input wakes the poll (vfio_display_dmabuf_wake()): a keystroke's echo
 * or a pointer move after a quiet spell is seen at the active rate.
 */
#define VFIO_DMABUF_REFRESH_MAX_MS      1000
#define VFIO_DMABUF_REFRESH_BACKOFF_PCT 150 /* idle tick: interval *= 1.5 */
/*
 * The guest's flip rate sets the poll until this long after its last flip;
 * two flips further apart than twice this are not a rate.
 */
#define VFIO_DMABUF_FLIP_RATE_MS        250
/*
 * Shortest time between two cursor plane queries: while the primary plane
 * is polled every 4-8 ms for a fast flipping guest, the cursor is not
 * (about 80 Hz at most).
 */
#define VFIO_DMABUF_CURSOR_PERIOD_MS    12
/* Ticks without change before the interval starts backing off. */
#define VFIO_DMABUF_REFRESH_IDLE_TICKS  4
/* Seconds between two warnings of the same kind. */
#define VFIO_DMABUF_WARN_INTERVAL_S     10

/* What VFIO_DEVICE_GET_REGION_INFO says of a region plane's region. */
typedef struct VFIODmabufRegionInfo {
    uint32_t index;
    uint32_t flags;             /* VFIO_REGION_INFO_FLAG_* */
    uint64_t size;              /* bytes */
    uint64_t offset;            /* of the region in the device fd */
} VFIODmabufRegionInfo;

typedef struct VFIODisplayDmabufOps {
    /*
     * VFIO_DEVICE_QUERY_GFX_PLANE. @info arrives with argsz, flags and
     * drm_plane_type set. Returns 0 or a negative errno.
     */
    int (*query_plane)(void *opaque,
                       struct vfio_device_gfx_plane_info *info);
    /*
     * VFIO_DEVICE_GET_GFX_DMABUF. Returns a new dma-buf fd, which the
     * caller owns, or a negative errno.
     */
    int (*get_dmabuf)(void *opaque, uint32_t dmabuf_id);
    /*
     * Region planes only (VFIODisplayDmabufConfig.region); may be NULL
     * otherwise. VFIO_DEVICE_GET_REGION_INFO of @index into @info.
     * Returns 0 or a negative errno.
     */
    int (*region_info)(void *opaque, uint32_t index,
                       VFIODmabufRegionInfo *info);
    /*
     * Maps @len bytes from the start of the region @info read-only
     * (MAP_SHARED). Returns the address, which the caller owns, or NULL
     * with errno set.
     */
    void *(*region_map)(void *opaque, const VFIODmabufRegionInfo *info,
                        size_t len);
    /* Undoes one region_map(). */
    void (*region_unmap)(void *opaque, void *addr, size_t len);
} VFIODisplayDmabufOps;

typedef struct VFIODisplayDmabufConfig {
    unsigned int cache_keep;          /* VFIO_DMABUF_CACHE_KEEP */
    unsigned int refresh_min_ms;      /* VFIO_DMABUF_REFRESH_MIN_MS */
    unsigned int refresh_active_ms;   /* VFIO_DMABUF_REFRESH_ACTIVE_MS */
    unsigned int refresh_max_ms;      /* VFIO_DMABUF_REFRESH_MAX_MS */
    bool poll_cursor;                 /* query the cursor plane too */
    /*
     * Region planes (VFIO_GFX_PLANE_TYPE_REGION, as mdpy and, most likely,
     * NVIDIA vGPU offer) instead of dma-bufs: the primary plane only; each
     * (region, geometry) is mapped once and shown as a DmabufPlane with no
     * fd whose pixels are the mapping (include/ui/dmabuf-plane.h).
     */
    bool region;
} VFIODisplayDmabufConfig;

/*
 * One cached dma-buf, or a region plane's mapped region. Plain data, owned
 * by the engine.
 */
typedef struct VFIODmabufBuffer {
    uint32_t id;                /* the device's dmabuf_id, or region_index */
    uint32_t plane_type;        /* DRM_PLANE_TYPE_PRIMARY or _CURSOR */
    /*
     * fd[0] owned by the engine; for a region plane no fd, and pixels
     * the engine's mapping of the region (unmapped when released)
     */
    DmabufPlane plane;
    /*
     * The presenter's per-buffer data, set with
     * vfio_display_dmabuf_set_presenter_data(); the presenter frees it in
     * the release hook.
     */
    void *presenter_data;
} VFIODmabufBuffer;

/* The cursor as the device last reported it. */
typedef struct VFIODmabufCursor {
    int32_t x, y;               /* position of the cursor plane */
    uint32_t hot_x, hot_y;      /* VFIO_DMABUF_HOTSPOT_UNKNOWN if unknown */
} VFIODmabufCursor;

/* Bits of what vfio_display_dmabuf_update() saw in one tick. */
typedef enum VFIODmabufEvent {
    VFIO_DMABUF_EV_NONE          = 0,
    VFIO_DMABUF_EV_NEW_SCANOUT   = 1 << 0, /* primary id or geometry changed */
    VFIO_DMABUF_EV_SAME_BUFFER   = 1 << 1, /* same primary; pixels may differ */
    VFIO_DMABUF_EV_SCANOUT_GONE  = 1 << 2, /* no primary any more */
    VFIO_DMABUF_EV_CURSOR_NEW    = 1 << 3, /* cursor image or hotspot changed */
    VFIO_DMABUF_EV_CURSOR_MOVED  = 1 << 4, /* position only */
    VFIO_DMABUF_EV_CURSOR_GONE   = 1 << 5, /* no cursor any more */
    VFIO_DMABUF_EV_RETRY         = 1 << 6, /* transient error; poll soon */
    VFIO_DMABUF_EV_REFUSED       = 1 << 7, /* a plane was refused; last kept */
} VFIODmabufEvent;

/* Why a plane was refused. */
typedef enum VFIODmabufPlaneCheck {
    VFIO_DMABUF_PLANE_OK = 0,
    VFIO_DMABUF_PLANE_EMPTY,          /* all zero: no scanout (not an error) */
    VFIO_DMABUF_PLANE_BAD_FOURCC,
    VFIO_DMABUF_PLANE_BAD_SIZE,       /* zero or too large width/height */
    VFIO_DMABUF_PLANE_BAD_STRIDE,     /* < width * cpp, misaligned, too large */
    VFIO_DMABUF_PLANE_BAD_LENGTH,     /* size < stride * height, or too big */
    VFIO_DMABUF_PLANE_BAD_HOTSPOT,    /* hotspot outside the cursor */
    VFIO_DMABUF_PLANE_BAD_ID,         /* dmabuf_id 0 with a non-empty plane */
    VFIO_DMABUF_PLANE_BAD_TYPE,       /* device answered for another plane */
    VFIO_DMABUF_PLANE_BAD_POSITION,   /* cursor position out of range */
    VFIO_DMABUF_PLANE_ID_IN_USE,      /* id on screen as the other plane */
    /* region planes */
    VFIO_DMABUF_PLANE_REGION_BAD,     /* no such region, or not mmappable */
    VFIO_DMABUF_PLANE_REGION_SHORT,   /* the plane does not fit in it */
    VFIO_DMABUF_PLANE_REGION_TILED,   /* a modifier: the CPU cannot read it */
    VFIO_DMABUF_PLANE_CHECK__MAX,
} VFIODmabufPlaneCheck;

/* Counters; all monotonic from vfio_display_dmabuf_new(). */
typedef struct VFIODisplayDmabufStats {
    uint64_t ticks;             /* update() calls */
    uint64_t queries;           /* QUERY_GFX_PLANE calls */
    uint64_t query_transient;   /* ... failed with EAGAIN/ENOMEM/EINTR/EBUSY */
    uint64_t query_errors;      /* ... failed otherwise */
    uint64_t planes_empty;      /* ... answered "no plane" */
    uint64_t planes_refused;    /* ... answered a plane that failed checks */
    uint64_t refused_by[VFIO_DMABUF_PLANE_CHECK__MAX];
    uint64_t gets;              /* GET_GFX_DMABUF calls */
    uint64_t get_errors;        /* ... that failed */
    uint64_t cache_hits;
    uint64_t cache_misses;
    uint64_t geometry_changes;  /* a cached id came back with a new geometry */
    uint64_t evictions;         /* buffers closed to keep the cache bound */
    uint64_t flips_seen;        /* primary changed to another buffer */
    uint64_t frames_reported;   /* ticks reporting NEW_SCANOUT or SAME_BUFFER */
    uint64_t cursor_changes;    /* cursor image or hotspot changes */
    uint64_t cursor_moves;      /* cursor position-only changes */
    uint64_t resets;
    uint64_t wakes;             /* wake() calls that shortened the poll */
    uint64_t fds_open;          /* dma-buf fds the engine holds right now */
    /* region planes */
    uint64_t region_infos;      /* GET_REGION_INFO calls */
    uint64_t region_maps;       /* regions mapped */
    uint64_t region_map_errors; /* ... mmap failed */
    uint64_t maps_open;         /* region mappings held right now */
} VFIODisplayDmabufStats;

typedef struct VFIODisplayDmabuf VFIODisplayDmabuf;

/*
 * Called for a buffer just before the engine closes its fd (eviction,
 * geometry change, reset, free). The buffer pointer is invalid afterwards.
 */
typedef void (*VFIODmabufReleaseFn)(void *opaque, VFIODmabufBuffer *buf);

/**
 * vfio_display_dmabuf_config_default:
 * @cfg: filled with the named defaults above
 */
void vfio_display_dmabuf_config_default(VFIODisplayDmabufConfig *cfg);

/**
 * vfio_display_dmabuf_probe:
 * @ops: device access
 * @opaque: passed to @ops
 * @errp: error object
 *
 * Asks the device whether it exports planes as dma-bufs
 * (VFIO_GFX_PLANE_TYPE_PROBE | VFIO_GFX_PLANE_TYPE_DMABUF).
 * Returns: true, or false with @errp set.
 */
bool vfio_display_dmabuf_probe(const VFIODisplayDmabufOps *ops, void *opaque,
                               Error **errp);

/**
 * vfio_display_dmabuf_probe_region:
 * @ops: device access
 * @opaque: passed to @ops
 * @errp: error object
 *
 * Asks the device whether it offers planes as regions
 * (VFIO_GFX_PLANE_TYPE_PROBE | VFIO_GFX_PLANE_TYPE_REGION); for a device
 * that does not offer dma-bufs.
 * Returns: true, or false with @errp set.
 */
bool vfio_display_dmabuf_probe_region(const VFIODisplayDmabufOps *ops,
                                      void *opaque, Error **errp);

/**
 * vfio_display_dmabuf_new:
 * @ops: device access, borrowed for the engine's lifetime
 * @opaque: passed to @ops, borrowed
 * @cfg: configuration, copied; NULL for the defaults
 *
 * Returns: a new engine that holds no fd yet. Free it with
 * vfio_display_dmabuf_free().
 */
VFIODisplayDmabuf *vfio_display_dmabuf_new(const VFIODisplayDmabufOps *ops,
                                           void *opaque,
                                           const VFIODisplayDmabufConfig *cfg);

/**
 * vfio_display_dmabuf_free:
 * @d: engine, may be NULL
 *
 * Releases and closes every cached fd (release hook first), then frees @d.
 */
void vfio_display_dmabuf_free(VFIODisplayDmabuf *d);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(VFIODisplayDmabuf, vfio_display_dmabuf_free)

/**
 * vfio_display_dmabuf_set_release:
 * @d: engine
 * @fn: hook, or NULL
 * @opaque: passed to @fn
 */
void vfio_display_dmabuf_set_release(VFIODisplayDmabuf *d,
                                     VFIODmabufReleaseFn fn, void *opaque);

/**
 * vfio_display_dmabuf_set_presenter_data:
 * @d: engine
 * @buf: a buffer of @d (primary, cursor or one given to the release hook)
 * @data: stored in @buf->presenter_data; owned by the presenter
 */
void vfio_display_dmabuf_set_presenter_data(VFIODisplayDmabuf *d,
                                            const VFIODmabufBuffer *buf,
                                            void *data);

/**
 * vfio_display_dmabuf_update:
 * @d: engine
 * @now_ms: a monotonic clock in milliseconds, used by the refresh policy
 *
 * One tick: queries the primary (and cursor) plane, validates, looks up or
 * gets the dma-buf, and compares with the previous tick. Never fails: a bad
 * answer keeps the last good frame and is counted.
 * Returns: a mask of VFIODmabufEvent bits.
 */
unsigned int vfio_display_dmabuf_update(VFIODisplayDmabuf *d, int64_t now_ms);

/* Planes for vfio_display_dmabuf_update_planes() and the display event. */
#define VFIO_DMABUF_QUERY_PRIMARY       (1u << 0)
#define VFIO_DMABUF_QUERY_CURSOR        (1u << 1)
#define VFIO_DMABUF_QUERY_BOTH          (VFIO_DMABUF_QUERY_PRIMARY | \
                                         VFIO_DMABUF_QUERY_CURSOR)

/**
 * vfio_display_dmabuf_update_planes:
 * @d: engine
 * @now_ms: as for vfio_display_dmabuf_update()
 * @planes: VFIO_DMABUF_QUERY_* bits: the planes to query in this tick (the
 *   cursor only if the config polls it), for a display event that names
 *   them; update() chooses them itself. A plane not queried yet, or not
 *   for refresh_max_ms, is queried too, whatever @planes says (a change
 *   the event never named is seen within refresh_max_ms).
 *
 * Returns: as vfio_display_dmabuf_update().
 */
unsigned int vfio_display_dmabuf_update_planes(VFIODisplayDmabuf *d,
                                               int64_t now_ms,
                                               unsigned int planes);

/**
 * vfio_display_dmabuf_next_interval_ms:
 * @d: engine
 *
 * Returns: how long to wait before the next update(), computed from what
 * the last ticks saw, within [refresh_min_ms, refresh_max_ms].
 */
unsigned int vfio_display_dmabuf_next_interval_ms(const VFIODisplayDmabuf *d);

/**
 * vfio_display_dmabuf_wake:
 * @d: engine
 *
 * A change is likely soon (the user typed, moved or clicked): polling, the
 * interval goes back to refresh_active_ms and its back-off starts anew.
 * Nothing when event-driven (the device says when) or already that fast.
 *
 * Returns: true when the interval became shorter: the caller re-arms its
 * poll for next_interval_ms() after the last tick.
 */
bool vfio_display_dmabuf_wake(VFIODisplayDmabuf *d);

/**
 * vfio_display_dmabuf_set_event_driven:
 * @d: engine
 * @on: the device signals each plane change (its display event,
 *   include/hw/vfio/vfio-gfx-irq.h) and the caller runs update() on it
 *
 * Event-driven, every update() queries the cursor plane too (an event may
 * be a cursor change) and next_interval_ms() is refresh_max_ms, a safety
 * poll, except while transient errors are retried. Off: the adaptive poll.
 */
void vfio_display_dmabuf_set_event_driven(VFIODisplayDmabuf *d, bool on);

/*
 * The display event as the device describes it (v6 of GVT-g's proposal,
 * include/hw/vfio/vfio-gfx-irq.h).
 */
typedef struct VFIODmabufEventInfo {
    bool has_values;            /* a usable VFIO_IRQ_INFO_CAP_DISPLAY */
    uint64_t pri_val;           /* what a primary plane update adds */
    uint64_t cur_val;           /* what a cursor plane update adds */
} VFIODmabufEventInfo;

/* Capabilities followed in one VFIO_DEVICE_GET_IRQ_INFO answer. */
#define VFIO_DMABUF_EVENT_MAX_CAPS      8

/**
 * vfio_display_dmabuf_parse_irq_info:
 * @buf: a VFIO_DEVICE_GET_IRQ_INFO answer (struct vfio_gfx_irq_info and
 *   its capability chain), as the device wrote it
 * @len: how many bytes of @buf to trust: the smaller of the buffer's size
 *   and the argsz the device answered
 * @info: filled when the answer is a display event
 *
 * Validates a device-controlled answer without touching the device: flags
 * EVENTFD and FLAG_CAPS, count 1, a VFIO_IRQ_INFO_CAP_TYPE of type GFX,
 * subtype GFX_DISPLAY_IRQ; a VFIO_IRQ_INFO_CAP_DISPLAY, if any, gives the
 * values (used only when both are non-zero and differ). Every capability
 * lies inside [20, @len), each `next` moves forward, at most
 * VFIO_DMABUF_EVENT_MAX_CAPS are read: no answer makes it read outside
 * @buf or loop.
 * Returns: true if it is the display event.
 */
bool vfio_display_dmabuf_parse_irq_info(const void *buf, size_t len,
                                        VFIODmabufEventInfo *info);

/**
 * vfio_display_dmabuf_event_planes:
 * @info: from vfio_display_dmabuf_parse_irq_info()
 * @count: the eventfd's counter as read (the sum of the signals since the
 *   last read)
 *
 * Which planes to query for @count. The counter adds up what the device
 * signalled: a value made of one plane's signals only names that plane
 * (below the larger value, a multiple of the smaller: only the plane with
 * the smaller value; exactly the larger value, or the sum of both: one
 * vblank's worth), anything else (several vblanks, a saturated counter, no
 * CAP_DISPLAY) names both. Exactly the larger value could also be that
 * many signals of the smaller one (256 cursor signals in kvmgt's values):
 * a device that signals once per vblank cannot add that many between two
 * reads (the console reads at least every refresh_min_ms while signals
 * come), and a device that does gets its cursor from the safety poll.
 * Returns: VFIO_DMABUF_QUERY_* bits; 0 for a zero @count.
 */
unsigned int vfio_display_dmabuf_event_planes(const VFIODmabufEventInfo *info,
                                              uint64_t count);

/**
 * vfio_display_dmabuf_reset:
 * @d: engine
 *
 * Forgets the screen state and drains the cache (release hook, close) as
 * for a device reset. Counters are kept.
 */
void vfio_display_dmabuf_reset(VFIODisplayDmabuf *d);

/**
 * vfio_display_dmabuf_release_all:
 * @d: engine
 *
 * Like vfio_display_dmabuf_reset() without counting a reset: every buffer
 * is released (release hook first) and closed, and the next update shows
 * the planes anew (NEW_SCANOUT, CURSOR_NEW). For a change of presenter.
 */
void vfio_display_dmabuf_release_all(VFIODisplayDmabuf *d);

/* The buffer on screen, or NULL. Borrowed. */
const VFIODmabufBuffer *
vfio_display_dmabuf_primary(const VFIODisplayDmabuf *d);
/* The cursor image, or NULL. Borrowed. */
const VFIODmabufBuffer *
vfio_display_dmabuf_cursor(const VFIODisplayDmabuf *d);
/* The cursor position and hotspot, or NULL if there is no cursor. */
const VFIODmabufCursor *
vfio_display_dmabuf_cursor_pos(const VFIODisplayDmabuf *d);
/* Number of cached buffers (each holds one fd). */
unsigned int vfio_display_dmabuf_cached(const VFIODisplayDmabuf *d);
/* Counters. */
const VFIODisplayDmabufStats *
vfio_display_dmabuf_stats(const VFIODisplayDmabuf *d);

/**
 * vfio_display_dmabuf_check_plane:
 * @info: what the device answered
 * @plane_type: the plane that was asked for
 *
 * Validates a QUERY_GFX_PLANE answer without touching the device.
 * Returns: VFIO_DMABUF_PLANE_OK, VFIO_DMABUF_PLANE_EMPTY, or the reason.
 */
VFIODmabufPlaneCheck
vfio_display_dmabuf_check_plane(const struct vfio_device_gfx_plane_info *info,
                                uint32_t plane_type);

/**
 * vfio_display_dmabuf_check_region:
 * @info: a primary region plane as the device answered it
 * @region: what the device says of the region @info names
 *
 * The checks of vfio_display_dmabuf_check_plane() but BAD_ID (region_index
 * 0 is a region like any other), then: the plane is linear, and its
 * pixels (stride * (height - 1) + width * cpp bytes from the region's
 * start: the uapi has no offset) lie inside a readable, mmappable region.
 * Returns: VFIO_DMABUF_PLANE_OK or the reason.
 */
VFIODmabufPlaneCheck
vfio_display_dmabuf_check_region(const struct vfio_device_gfx_plane_info *info,
                                 const VFIODmabufRegionInfo *region);

/* A short name of @c, for messages and tests. */
const char *vfio_display_dmabuf_check_str(VFIODmabufPlaneCheck c);

/**
 * vfio_display_dmabuf_ioctl_ops:
 *
 * Returns: ops that issue the ioctls on a vfio device fd. Their opaque is
 * an "int *" pointing at the device fd (borrowed, never closed).
 */
const VFIODisplayDmabufOps *vfio_display_dmabuf_ioctl_ops(void);

#endif /* HW_VFIO_DISPLAY_DMABUF_H */
