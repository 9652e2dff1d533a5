/*
 * QEMU glue for the VFIO display dma-buf engine: a graphic console fed by
 * hw/vfio/display-dmabuf.c, for a device whose planes are dma-bufs or
 * regions (VFIO_GFX_PLANE_TYPE_REGION: the engine maps them, ui/ reads the
 * mapping). The device only produces frames: each poll tick
 * (or display event) runs the engine and hands what it shows to
 * ui/dmabuf-scanout.c, which presents them on every display of the console
 * (include/ui/dmabuf-scanout.h).
 *
 * A failed init leaves nothing behind (vfio_display_finalize() undoes what
 * it built); vfio-pci's realize tears the display down on any later error
 * (patches/qemu-10.2/0008).
 *
 * Ownership: VFIODisplay.dmabuf owns the VFIODmabufConsole, which owns the
 * engine (every dma-buf fd), the poll timer, the display event's
 * EventNotifier (its eventfd) and window timer while it is armed, the
 * input notifier's place on ui/input.c's list (while input.notify is
 * set), and the DmabufScanout. Each cached
 * buffer's DmabufScanoutBuffer (VFIODmabufBuffer.presenter_data) is made
 * here when the buffer is first shown and released through the engine's
 * release hook, before the engine closes the buffer's fd.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"

#include <sys/ioctl.h>
#include <linux/vfio.h>

#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/event_notifier.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qom/object.h"
#include "system/system.h"
#include "ui/console.h"
#include "ui/dmabuf-scanout.h"
#include "ui/input.h"
#include "hw/vfio/display-dmabuf.h"
#include "hw/vfio/vfio-gfx-irq.h"
#include "pci.h"
#include "vfio-display.h"
#include "trace.h"

/* Bounds of the x-display-* properties (0 keeps the engine's default). */
#define VFIO_DMABUF_PROP_MAX_MS   10000
#define VFIO_DMABUF_PROP_MAX_KEEP 64
/* how long a poll waits for a GL-blocked display before it goes on */
#define VFIO_DMABUF_BUSY_WAIT_MS  100

/* IRQ info answers larger than this are not read (v6's is 60 bytes) */
#define DISPLAY_EVENT_INFO_MAX    4096

struct VFIODmabufConsole {
    VFIOPCIDevice *vdev;
    QemuConsole *con;           /* vdev->dpy->con, borrowed */
    VFIODisplayDmabuf *engine;  /* owned */
    DmabufScanout *scanout;     /* owned: the console's presentation */
    QEMUTimer *timer;           /* owned: the poll (QEMU_CLOCK_REALTIME ns) */
    Notifier input;             /* the user's input wakes the poll */
    int devfd;                  /* borrowed from vdev; ops opaque */
    bool region;                /* region planes, not dma-bufs */
    int64_t busy_since_ms;      /* the display blocked since; 0: it is not */
    /*
     * Ticks (engine updates) are at least min_gap_ns apart, whoever asks:
     * the poll timer is re-armed at least refresh_min_ms after each tick,
     * and a display event within min_gap_ns of the last tick waits for the
     * end of that window (display_event_read()).
     */
    int64_t min_gap_ns;         /* refresh_min_ms */
    int64_t last_tick_ns;       /* the last tick that ran; 0: none yet */

    /* the device's display event, while armed (display_event_arm()) */
    EventNotifier event;        /* owned: cleaned up when disarmed */
    QEMUTimer *event_timer;     /* owned: the end of a held window */
    bool event_armed;
    bool event_held;            /* fd handler off until event_timer */
    uint32_t event_index;       /* its VFIO IRQ index */
    VFIODmabufEventInfo event_info; /* CAP_DISPLAY's values, if any */
    unsigned int event_planes;  /* VFIO_DMABUF_QUERY_* not yet queried */
    uint64_t event_last;        /* the last counter value read */
    uint64_t events;            /* non-zero counter reads */
    uint64_t event_ticks;       /* ticks the event asked for */
    uint64_t events_held;       /* reads that came within a window */
    uint64_t event_primary;     /* reads naming the primary only */
    uint64_t event_cursor;      /* ... the cursor only */
    uint64_t event_both;        /* ... both planes */
};

/* engine release hook: ui/ lets go of @buf, then the engine closes it */
static void buf_release(void *opaque, VFIODmabufBuffer *buf)
{
    VFIODmabufConsole *c = opaque;

    dmabuf_scanout_buffer_release(c->scanout, buf->presenter_data);
    buf->presenter_data = NULL;
}

/* the ui/ handle of a cached buffer, made when it is first shown */
static DmabufScanoutBuffer *scanout_buf(VFIODmabufConsole *c,
                                        const VFIODmabufBuffer *buf)
{
    if (!buf) {
        return NULL;
    }
    if (!buf->presenter_data) {
        vfio_display_dmabuf_set_presenter_data(
            c->engine, buf, dmabuf_scanout_buffer_new(c->scanout,
                                                      &buf->plane));
    }
    return buf->presenter_data;
}

/* what the engine shows now, as a frame for ui/ */
static void frame_of(VFIODmabufConsole *c, unsigned int ev,
                     DmabufScanoutFrame *f)
{
    const VFIODmabufCursor *pos = vfio_display_dmabuf_cursor_pos(c->engine);

    memset(f, 0, sizeof(*f));
    f->primary = scanout_buf(c, vfio_display_dmabuf_primary(c->engine));
    f->cursor = scanout_buf(c, vfio_display_dmabuf_cursor(c->engine));
    f->hot_x = f->hot_y = DMABUF_SCANOUT_HOT_UNKNOWN;
    if (f->cursor && pos) { /* NULL without a cursor */
        f->cursor_x = pos->x;
        f->cursor_y = pos->y;
        f->hot_x = pos->hot_x;
        f->hot_y = pos->hot_y;
    }
    /*
     * SAME_BUFFER is not passed on: the display's refresh looks at the
     * pixels of the buffer on screen (dmabuf_scanout_refresh), at its rate.
     */
    if (ev & VFIO_DMABUF_EV_NEW_SCANOUT) {
        f->changed |= DMABUF_SCANOUT_PRIMARY_NEW;
    }
    if (ev & VFIO_DMABUF_EV_CURSOR_NEW) {
        f->changed |= DMABUF_SCANOUT_CURSOR_NEW;
    }
    if (ev & VFIO_DMABUF_EV_CURSOR_MOVED) {
        f->changed |= DMABUF_SCANOUT_CURSOR_MOVED;
    }
}

/*
 * One tick: the engine queries @planes (VFIO_DMABUF_QUERY_*; 0: its own
 * choice, as the poll does) and what changed is shown. The poll timer is
 * re-armed for the engine's next interval, at least refresh_min_ms later.
 * Returns false when the display was busy and nothing was queried.
 */
static bool run_tick(VFIODmabufConsole *c, unsigned int planes)
{
    int64_t now_ns = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    int64_t now = now_ns / SCALE_MS;
    DmabufScanoutFrame f;
    unsigned int ev;

    if (dmabuf_scanout_busy(c->scanout)) {
        /*
         * The display still works on the last frame (spice gl): wait a
         * little, then go on (a client that never answers must not stop
         * the device: ui/ keeps the newest frame for when it does).
         */
        if (!c->busy_since_ms) {
            c->busy_since_ms = now;
        }
        if (now - c->busy_since_ms < VFIO_DMABUF_BUSY_WAIT_MS) {
            timer_mod(c->timer, now_ns + c->min_gap_ns);
            return false;
        }
    } else {
        c->busy_since_ms = 0;
    }
    if (planes) {
        ev = vfio_display_dmabuf_update_planes(c->engine, now, planes);
        c->event_planes &= ~planes;
    } else {
        ev = vfio_display_dmabuf_update(c->engine, now);
        if (c->event_armed) {
            c->event_planes = 0; /* event-driven, update() asks for both */
        }
    }
    c->last_tick_ns = now_ns;
    /* a quiet tick shows nothing (the display's refresh redraws) */
    if (ev & (VFIO_DMABUF_EV_NEW_SCANOUT | VFIO_DMABUF_EV_SCANOUT_GONE |
              VFIO_DMABUF_EV_CURSOR_NEW | VFIO_DMABUF_EV_CURSOR_MOVED |
              VFIO_DMABUF_EV_CURSOR_GONE)) {
        frame_of(c, ev, &f);
        dmabuf_scanout_show(c->scanout, &f);
    }
    timer_mod(c->timer, now_ns +
              vfio_display_dmabuf_next_interval_ms(c->engine) * SCALE_MS);
    return true;
}

static void poll_tick(void *opaque)
{
    run_tick(opaque, 0);
}

/*
 * Input was sent to the guest: it will likely draw. The idle poll (up to
 * refresh_max_ms) goes back to the active rate, counted from the last
 * tick, so a keystroke's echo is not seen up to a second late. A pointer
 * moving at 1 kHz costs one timer re-arm per event, not a query.
 */
static void input_activity(Notifier *n, void *data)
{
    VFIODmabufConsole *c = container_of(n, VFIODmabufConsole, input);
    int64_t at;

    if (!vfio_display_dmabuf_wake(c->engine)) {
        return;
    }
    /* the interval is at least refresh_min_ms: ticks stay that far apart */
    at = c->last_tick_ns +
         vfio_display_dmabuf_next_interval_ms(c->engine) * SCALE_MS;
    if (!timer_pending(c->timer) || timer_expire_time_ns(c->timer) > at) {
        timer_mod(c->timer, at);
    }
}

/* ------------------------------------------------------------------ */
/* the device's display event (include/hw/vfio/vfio-gfx-irq.h) */

/* IRQ indexes looked at beyond the PCI ones */
#define DISPLAY_EVENT_MAX_INDEXES 16

/*
 * VFIO_DEVICE_GET_IRQ_INFO on @index into @buf (zeroed first), growing it
 * once if the device asks for more (v6: argsz 60). Returns the bytes of
 * the answer to trust (what @buf holds and the device's argsz allow), 0
 * on error.
 */
static size_t display_event_irq_info(int devfd, uint32_t index,
                                     uint8_t **buf)
{
    struct vfio_gfx_irq_info *info;
    size_t size = 256;
    int tries;

    for (tries = 0; tries < 2; tries++) {
        *buf = g_realloc(*buf, size);
        memset(*buf, 0, size);
        info = (struct vfio_gfx_irq_info *)*buf;
        info->argsz = size;
        info->index = index;
        if (ioctl(devfd, VFIO_DEVICE_GET_IRQ_INFO, info) < 0) {
            return 0;
        }
        if (info->argsz <= size) {
            return info->argsz;
        }
        if (info->argsz > DISPLAY_EVENT_INFO_MAX) {
            return 0;
        }
        size = info->argsz;
    }
    return 0;
}

/*
 * The IRQ index of the device's display event and what its capabilities
 * say, or -1. What the device answers is checked like a plane
 * (vfio_display_dmabuf_parse_irq_info()).
 */
static int display_event_index(int devfd, VFIODmabufEventInfo *info)
{
    struct vfio_device_info dev = { .argsz = sizeof(dev) };
    g_autofree uint8_t *buf = NULL;
    uint32_t i;
    size_t len;

    if (ioctl(devfd, VFIO_DEVICE_GET_INFO, &dev) < 0) {
        return -1;
    }
    for (i = VFIO_PCI_NUM_IRQS;
         i < MIN(dev.num_irqs, VFIO_PCI_NUM_IRQS + DISPLAY_EVENT_MAX_INDEXES);
         i++) {
        len = display_event_irq_info(devfd, i, &buf);
        if (len && vfio_display_dmabuf_parse_irq_info(buf, len, info)) {
            return i;
        }
    }
    return -1;
}

/*
 * VFIO_DEVICE_SET_IRQS on the display event: arm it with @fd
 * (DATA_EVENTFD, count 1), or disarm it (@fd < 0: DATA_NONE, count 0, as
 * v6 says; kvmgt refuses fd -1).
 */
static int display_event_set(VFIODmabufConsole *c, uint32_t index, int fd)
{
    struct {
        struct vfio_irq_set set;
        int32_t fd;
    } irq = {
        .set = {
            .argsz = sizeof(irq.set),
            .flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
            .index = index,
            .start = 0,
            .count = 0,
        },
    };

    if (fd >= 0) {
        irq.set.argsz = sizeof(irq);
        irq.set.flags = VFIO_IRQ_SET_DATA_EVENTFD |
                        VFIO_IRQ_SET_ACTION_TRIGGER;
        irq.set.count = 1;
        irq.fd = fd;
    }
    return ioctl(c->devfd, VFIO_DEVICE_SET_IRQS, &irq) < 0 ? -errno : 0;
}

/* the eventfd's counter, reset to 0; 0 if nothing was signalled */
static uint64_t display_event_take(VFIODmabufConsole *c)
{
    uint64_t v;
    ssize_t n;

    do {
        n = read(event_notifier_get_fd(&c->event), &v, sizeof(v));
    } while (n < 0 && errno == EINTR);
    return n == sizeof(v) ? v : 0;
}

/* what a counter value asks for, added to the planes not yet queried */
static void display_event_note(VFIODmabufConsole *c, uint64_t v)
{
    unsigned int planes = vfio_display_dmabuf_event_planes(&c->event_info, v);

    c->events++;
    c->event_last = v;
    if (planes == VFIO_DMABUF_QUERY_PRIMARY) {
        c->event_primary++;
    } else if (planes == VFIO_DMABUF_QUERY_CURSOR) {
        c->event_cursor++;
    } else {
        c->event_both++;
    }
    c->event_planes |= planes;
    trace_vfio_display_dmabuf_console_event_read(c->vdev->vbasedev.name, v,
                                                 planes);
}

static void display_event_read(void *opaque);

/* stop listening until @until_ns, the end of the window */
static void display_event_hold(VFIODmabufConsole *c, int64_t until_ns)
{
    if (!c->event_held) {
        qemu_set_fd_handler(event_notifier_get_fd(&c->event), NULL, NULL,
                            NULL);
        c->event_held = true;
        trace_vfio_display_dmabuf_console_event_hold(c->vdev->vbasedev.name,
                                                     until_ns);
    }
    timer_mod(c->event_timer, until_ns);
}

/*
 * Query what the events asked for now, or at the end of the window that
 * the last tick opened: ticks stay min_gap_ns apart whatever the device
 * signals, and no event is lost, only folded into the next tick.
 */
static void display_event_run(VFIODmabufConsole *c)
{
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);

    if (!c->event_planes) {
        return;
    }
    if (c->last_tick_ns && now - c->last_tick_ns < c->min_gap_ns) {
        c->events_held++;
        display_event_hold(c, c->last_tick_ns + c->min_gap_ns);
        return;
    }
    c->event_ticks++;
    run_tick(c, c->event_planes);
}

/* the eventfd is readable: the device signalled */
static void display_event_read(void *opaque)
{
    VFIODmabufConsole *c = opaque;
    uint64_t v = display_event_take(c);

    if (v) {
        display_event_note(c, v);
        display_event_run(c);
    }
}

/* the end of a held window: listen again, query what came meanwhile */
static void display_event_window_end(void *opaque)
{
    VFIODmabufConsole *c = opaque;
    uint64_t v;

    if (!c->event_armed) {
        return;
    }
    if (c->event_held) {
        c->event_held = false;
        qemu_set_fd_handler(event_notifier_get_fd(&c->event),
                            display_event_read, NULL, c);
    }
    v = display_event_take(c);
    if (v) {
        display_event_note(c, v);
    }
    display_event_run(c);
}

/*
 * Arms the device's display event unless x-display-event=off. Returns
 * false (with @errp set) only for x-display-event=on on a device without
 * one; any other failure leaves the console polling, with one warning.
 */
static bool display_event_arm(VFIODmabufConsole *c, Error **errp)
{
    OnOffAuto want = c->vdev->display_event;
    VFIODmabufEventInfo info;
    int index, ret;

    if (want == ON_OFF_AUTO_OFF || c->event_armed) {
        return true;
    }
    index = display_event_index(c->devfd, &info);
    if (index < 0) {
        if (want == ON_OFF_AUTO_ON) {
            error_setg(errp, "vfio-display-dmabuf: x-display-event=on, but "
                       "the device offers no display event");
            return false;
        }
        return true;
    }
    ret = event_notifier_init(&c->event, false);
    if (ret < 0) {
        warn_report("vfio-display-dmabuf: no eventfd for the display event "
                    "(%s): polling", strerror(-ret));
        return true;
    }
    ret = display_event_set(c, index, event_notifier_get_fd(&c->event));
    if (ret < 0) {
        warn_report("vfio-display-dmabuf: the device refused its display "
                    "event (%s): polling", strerror(-ret));
        event_notifier_cleanup(&c->event);
        return true;
    }
    if (!c->event_timer) {
        c->event_timer = timer_new_ns(QEMU_CLOCK_REALTIME,
                                      display_event_window_end, c);
    }
    qemu_set_fd_handler(event_notifier_get_fd(&c->event), display_event_read,
                        NULL, c);
    c->event_armed = true;
    c->event_held = false;
    c->event_index = index;
    c->event_info = info;
    c->event_planes = 0;
    vfio_display_dmabuf_set_event_driven(c->engine, true);
    trace_vfio_display_dmabuf_console_event(c->vdev->vbasedev.name, index,
                                            true, info.pri_val, info.cur_val);
    return true;
}

static void display_event_disarm(VFIODmabufConsole *c)
{
    int ret;

    if (!c->event_armed) {
        return;
    }
    timer_del(c->event_timer);
    qemu_set_fd_handler(event_notifier_get_fd(&c->event), NULL, NULL, NULL);
    ret = display_event_set(c, c->event_index, -1);
    if (ret < 0) {
        /* a device gone or reset: it drops the eventfd when closed */
        trace_vfio_display_dmabuf_console_event_disarm_error(
            c->vdev->vbasedev.name, ret);
    }
    event_notifier_cleanup(&c->event);
    c->event_armed = false;
    c->event_held = false;
    c->event_planes = 0;
    vfio_display_dmabuf_set_event_driven(c->engine, false);
    trace_vfio_display_dmabuf_console_event(c->vdev->vbasedev.name,
                                            c->event_index, false, 0, 0);
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
    dmabuf_scanout_refresh(c->scanout);
}

static pixman_image_t *console_snapshot(void *opaque, Error **errp)
{
    VFIOPCIDevice *vdev = opaque;

    return dmabuf_scanout_snapshot(vdev->dpy->dmabuf->scanout, errp);
}

/*
 * No GRAPHIC_FLAGS_GL nor _DMABUF: every display can show this console,
 * ui/dmabuf-scanout.c adapts to them.
 */
static const GraphicHwOps console_ops = {
    .gfx_update = console_gfx_update,
    .ui_info = vfio_display_edid_ui_info,
    .snapshot = console_snapshot,
};

static char *stats_str(VFIODmabufConsole *c)
{
    const VFIODisplayDmabufStats *s = vfio_display_dmabuf_stats(c->engine);
    const DmabufScanoutStats *ui = dmabuf_scanout_stats(c->scanout);
    GString *out = g_string_new(NULL);
    unsigned int i;

    g_string_append_printf(out,
        "path=%s ticks=%" PRIu64 " queries=%" PRIu64
        " query_transient=%" PRIu64 " query_errors=%" PRIu64
        " planes_empty=%" PRIu64 " planes_refused=%" PRIu64
        " gets=%" PRIu64 " get_errors=%" PRIu64 " cache_hits=%" PRIu64
        " cache_misses=%" PRIu64 " geometry_changes=%" PRIu64
        " evictions=%" PRIu64 " flips_seen=%" PRIu64
        " frames_reported=%" PRIu64 " cursor_changes=%" PRIu64
        " cursor_moves=%" PRIu64 " resets=%" PRIu64
        " input_wakes=%" PRIu64 " fds_open=%" PRIu64
        " cached=%u interval_ms=%u display_event=%d display_events=%" PRIu64
        " display_event_ticks=%" PRIu64 " display_events_held=%" PRIu64
        " display_event_primary=%" PRIu64 " display_event_cursor=%" PRIu64
        " display_event_both=%" PRIu64 " display_event_last=0x%" PRIx64
        " display_event_pri_val=0x%" PRIx64 " display_event_cur_val=0x%"
        PRIx64,
        dmabuf_scanout_path_name(dmabuf_scanout_path(c->scanout)),
        s->ticks, s->queries,
        s->query_transient, s->query_errors, s->planes_empty,
        s->planes_refused, s->gets, s->get_errors, s->cache_hits,
        s->cache_misses, s->geometry_changes, s->evictions, s->flips_seen,
        s->frames_reported, s->cursor_changes, s->cursor_moves, s->resets,
        s->wakes, s->fds_open, vfio_display_dmabuf_cached(c->engine),
        vfio_display_dmabuf_next_interval_ms(c->engine), c->event_armed,
        c->events, c->event_ticks, c->events_held, c->event_primary,
        c->event_cursor, c->event_both, c->event_last,
        c->event_info.pri_val, c->event_info.cur_val);
    g_string_append_printf(out,
        " path_changes=%" PRIu64 " frames_shown=%" PRIu64
        " shadow_copies=%" PRIu64 " shadow_rows=%" PRIu64
        " shadow_updates=%" PRIu64 " map_failures=%" PRIu64
        " not_shown=%" PRIu64 " cursor_defines=%" PRIu64
        " ui_buffers=%" PRIu64,
        ui->path_changes, ui->frames, ui->shadow_copies, ui->shadow_rows,
        ui->shadow_updates, ui->map_failures, ui->not_shown,
        ui->cursor_defines, ui->buffers);
    /* region planes; refused_<reason> for every reason that happened */
    g_string_append_printf(out,
        " planes=%s region_infos=%" PRIu64 " region_maps=%" PRIu64
        " region_map_errors=%" PRIu64 " maps_open=%" PRIu64,
        c->region ? "region" : "dmabuf", s->region_infos, s->region_maps,
        s->region_map_errors, s->maps_open);
    for (i = VFIO_DMABUF_PLANE_EMPTY + 1; i < VFIO_DMABUF_PLANE_CHECK__MAX;
         i++) {
        if (s->refused_by[i]) {
            g_autofree char *why =
                g_strdelimit(g_strdup(vfio_display_dmabuf_check_str(i)),
                             " /", '_');

            g_string_append_printf(out, " refused_%s=%" PRIu64, why,
                                   s->refused_by[i]);
        }
    }
    return g_string_free(out, false);
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

/*
 * The console for a device that offers its planes as dma-bufs, or with
 * @region as regions (VFIO_GFX_PLANE_TYPE_REGION: mdpy, NVIDIA vGPU).
 */
static bool console_init(VFIOPCIDevice *vdev, bool region, Error **errp)
{
    VFIODisplayDmabufConfig cfg;
    g_autofree char *name = NULL;
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
    cfg.region = region;

    vdev->dpy = dpy = g_new0(VFIODisplay, 1);
    dpy->dmabuf = c = g_new0(VFIODmabufConsole, 1);
    c->vdev = vdev;
    c->devfd = vdev->vbasedev.fd;
    c->region = region;
    c->engine = vfio_display_dmabuf_new(vfio_display_dmabuf_ioctl_ops(),
                                        &c->devfd, &cfg);
    vfio_display_dmabuf_set_release(c->engine, buf_release, c);
    dpy->con = c->con = graphic_console_init(DEVICE(vdev), 0, &console_ops,
                                             vdev);
    name = g_strdup_printf("vfio-display-dmabuf: %s", vdev->vbasedev.name);
    c->scanout = dmabuf_scanout_new(c->con, name,
                                    vdev->display_gl == ON_OFF_AUTO_ON ?
                                    DMABUF_SCANOUT_GL_ON :
                                    vdev->display_gl == ON_OFF_AUTO_OFF ?
                                    DMABUF_SCANOUT_GL_OFF :
                                    DMABUF_SCANOUT_GL_AUTO);
    trace_vfio_display_dmabuf_console_init(vdev->vbasedev.name, region);

    if (!object_property_find(OBJECT(vdev), "x-display-dmabuf-stats")) {
        object_property_add_str(OBJECT(vdev), "x-display-dmabuf-stats",
                                stats_get, NULL);
    }
    if (vdev->enable_ramfb) {
        dpy->ramfb = ramfb_setup(vdev->use_legacy_x86_rom, errp);
        if (!dpy->ramfb) {
            goto fail;
        }
    }
    if (!vfio_display_edid_init(vdev, errp)) {
        goto fail;
    }
    c->min_gap_ns = (int64_t)MAX(cfg.refresh_min_ms, 1u) * SCALE_MS;
    c->timer = timer_new_ns(QEMU_CLOCK_REALTIME, poll_tick, c);
    if (!display_event_arm(c, errp)) {
        goto fail;
    }
    c->input.notify = input_activity;
    qemu_input_add_activity_notifier(&c->input);
    timer_mod(c->timer, qemu_clock_get_ns(QEMU_CLOCK_REALTIME));
    return true;

fail:
    /*
     * Nothing half-built stays: the console (and its strong link to the
     * device), the engine and its fds, the timers, the EDID state; the
     * display is torn down as at unplug and vdev->dpy is NULL again.
     */
    vfio_display_finalize(vdev);
    return false;
}

bool vfio_display_dmabuf_console_init(VFIOPCIDevice *vdev, Error **errp)
{
    return console_init(vdev, false, errp);
}

bool vfio_display_dmabuf_console_init_region(VFIOPCIDevice *vdev,
                                             Error **errp)
{
    return console_init(vdev, true, errp);
}

void vfio_display_dmabuf_console_reset(VFIODisplay *dpy)
{
    VFIODmabufConsole *c = dpy ? dpy->dmabuf : NULL;

    if (!c) {
        return;
    }
    /* a device reset may have dropped the event: arm it anew */
    display_event_disarm(c);
    display_event_arm(c, NULL);
    /* off the displays; the release hook frees each buffer's ui/ handle */
    dmabuf_scanout_reset(c->scanout);
    vfio_display_dmabuf_reset(c->engine);
    dpy_gfx_update_full(dpy->con);
}

void vfio_display_dmabuf_console_finalize(VFIODisplay *dpy)
{
    VFIODmabufConsole *c = dpy->dmabuf;

    if (!c) {
        return;
    }
    trace_vfio_display_dmabuf_console_finalize(c->vdev->vbasedev.name);
    if (c->input.notify) {
        qemu_input_remove_activity_notifier(&c->input);
    }
    display_event_disarm(c);
    if (c->event_timer) {
        timer_free(c->event_timer);
    }
    if (c->timer) {
        timer_free(c->timer);
    }
    vfio_display_dmabuf_free(c->engine); /* each buffer released to ui/ */
    dmabuf_scanout_free(c->scanout);
    g_free(c);
    dpy->dmabuf = NULL;
}
