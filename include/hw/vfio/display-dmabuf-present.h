/*
 * Presenters of the vfio dma-buf console.
 *
 * display-dmabuf-console.c owns the engine, the poll timer and the QEMU
 * console, and picks one presenter when the console is created. The
 * presenter turns the engine's events into calls on one kind of display:
 *   - cpu: a shadow DisplaySurface fed from a CPU mapping (VNC, -display
 *     none, gtk and SPICE without GL, screendump)
 *     (display-dmabuf-cpu.c);
 *   - gl: the dma-bufs themselves, dpy_gl_scanout_dmabuf and friends
 *     (egl-headless, gtk gl=on) (display-dmabuf-gl.c);
 *   - spice: the scanout as gl, the cursor on SPICE's cursor channel
 *     (ui/spice-dmabuf.c).
 * The console picks one at every poll tick from what its displays can do
 * (a GL display that cannot import dma-bufs gets the cpu presenter;
 * egl-headless a linear buffer through the cpu presenter, see
 * x-display-gl).
 *
 * Ownership: a presenter owns its state (VFIODmabufConsole.pstate, from
 * .init; the console g_free()s it after the optional .finish) and what it
 * keeps per buffer in
 * VFIODmabufBuffer.presenter_data (set with
 * vfio_display_dmabuf_set_presenter_data(), freed in .release). The
 * engine calls .release before it closes a buffer's fd; after it returns,
 * the console must not use that buffer in any way. The console owns the
 * display event's EventNotifier (both its fds) while it is armed, and
 * cleans it up when it disarms it (reset, finalize).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VFIO_DISPLAY_DMABUF_PRESENT_H
#define HW_VFIO_DISPLAY_DMABUF_PRESENT_H

#include "qemu/event_notifier.h"
#include "qemu/timer.h"
#include "ui/console.h"
#include "hw/vfio/display-dmabuf.h"

typedef struct VFIOPCIDevice VFIOPCIDevice;
typedef struct VFIODmabufConsole VFIODmabufConsole;

typedef struct VFIODmabufPresenter VFIODmabufPresenter;

struct VFIODmabufConsole {
    VFIOPCIDevice *vdev;
    QemuConsole *con;           /* vdev->dpy->con, borrowed */
    VFIODisplayDmabuf *engine;  /* owned */
    QEMUTimer *timer;           /* owned: the poll */
    int devfd;                  /* borrowed from vdev; ops opaque */
    const VFIODmabufPresenter *present;
    void *pstate;               /* the presenter's, see above */
    bool path_reported;         /* the info line about the path is out */
    /* the device's display event, while armed (display_event_arm()) */
    EventNotifier event;        /* owned: cleaned up when disarmed */
    bool event_armed;
    uint32_t event_index;       /* its VFIO IRQ index */
    uint64_t events;            /* events handled */
};

struct VFIODmabufPresenter {
    const char *name;           /* shown as path= in the stats */
    void *(*init)(VFIODmabufConsole *c);
    /* optional clean-up before the console frees pstate */
    void (*finish)(VFIODmabufConsole *c);
    /* after a poll tick; @ev: the engine's event bits */
    void (*show)(VFIODmabufConsole *c, unsigned int ev);
    /* the display's refresh: the buffer on screen may have new pixels */
    void (*redraw)(VFIODmabufConsole *c, const VFIODmabufBuffer *pri);
    /* @buf leaves the engine (its fd is still open): let go of it */
    void (*release)(VFIODmabufConsole *c, VFIODmabufBuffer *buf);
    /* the device was reset; the engine is empty. May be NULL */
    void (*reset)(VFIODmabufConsole *c);
    /* true: wait, the display still works on the last frame. May be NULL */
    bool (*busy)(VFIODmabufConsole *c);
    /* " key=value" counters for x-display-dmabuf-stats; may be NULL */
    void (*stats)(VFIODmabufConsole *c, GString *out);
};

extern const VFIODmabufPresenter vfio_dmabuf_present_cpu;
extern const VFIODmabufPresenter vfio_dmabuf_present_gl;
extern const VFIODmabufPresenter vfio_dmabuf_present_spice; /* ui/ */

/* display-dmabuf-cpu.c, shared */
/*
 * The engine's cursor events (@ev) as dpy_cursor_define + dpy_mouse_set
 * (the image's top-left); *@shown tracks whether the pointer is on.
 */
void vfio_dmabuf_cursor_show(VFIODmabufConsole *c, unsigned int ev,
                             bool *shown);
void vfio_dmabuf_cursor_hide(VFIODmabufConsole *c, bool *shown);
/* GraphicHwOps.snapshot: a new x8r8g8b8 image of frame + cursor, or NULL */
pixman_image_t *vfio_dmabuf_snapshot(VFIODmabufConsole *c, Error **errp);

/* display-dmabuf-gl.c, shared with the SPICE presenter */
/* the QemuDmaBuf of @buf (made on first use; presenter_data owns it) */
QemuDmaBuf *vfio_dmabuf_gl_buf(VFIODmabufConsole *c,
                               const VFIODmabufBuffer *buf);
/* drop @buf's QemuDmaBuf after the display let go of it */
void vfio_dmabuf_gl_buf_free(VFIODmabufConsole *c, VFIODmabufBuffer *buf);

#endif
