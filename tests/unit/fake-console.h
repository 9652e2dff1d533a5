/*
 * A fake QEMU console for the unit tests and the fuzz harness of ui/
 * modules written against QEMU's console API (tests/shim/ui/console.h has
 * the prototypes; here are their implementations and the test hooks).
 *
 * It holds the state a QEMU 10.2 console holds and changes it as QEMU's
 * ui/console.c does (scanout kind NONE/SURFACE/DMABUF, current surface
 * with QEMU's placeholder, qemu_console_resize's rules, the cursor and
 * pointer), records every call in order, and lets a test set what the
 * displays declare (GL, dma-buf import, DPY_GL_* caps) and the GL block.
 *
 * Violations: what would crash, corrupt or leak in QEMU is counted (and
 * the first one described); tests and the fuzz harness assert zero:
 *   - qemu_dmabuf_free() of a QemuDmaBuf a console's scanout points at
 *     (kind DMABUF) or that is a console's GL cursor: a use-after-free in
 *     the displays (the SPICE gl=on bug);
 *   - qemu_dmabuf_free() of one given to the displays (scanout or cursor)
 *     without dpy_gl_release_dmabuf() since: the displays' imports leak;
 *   - any call with a QemuDmaBuf that is not live (freed, or never made),
 *     a double free;
 *   - dpy_gl_update() on a console without GL (QEMU asserts con->gl);
 *   - dpy_gfx_replace_surface() with the current surface (QEMU asserts);
 *   - dpy_cursor_define() of a cursor whose refcount is not positive.
 * The fake also dereferences every QemuDmaBuf, surface and cursor it is
 * given, so that AddressSanitizer reports a use of freed memory.
 *
 * Blocked changes: while a display blocks the console (a SPICE client has
 * not acknowledged a draw) a module must leave it alone (spice-server
 * must not see a scanout change then). The calls that would reach it are
 * counted apart: dpy_gl_scanout_disable, dpy_gl_update,
 * qemu_console_resize and dpy_gfx_replace_surface made while blocked.
 * (dpy_gl_scanout_dmabuf is not: SPICE only stores the pointer until its
 * next draw.)
 *
 * Ownership, as in QEMU: a surface given to dpy_gfx_replace_surface()
 * belongs to the console (freed when replaced, or by fake_console_free);
 * the console holds a reference on the last cursor defined. QemuDmaBufs
 * belong to whoever made them; they borrow their fds (never closed here).
 *
 * The fake dma-buf exporter: fake_dmabuf_memfd() makes memfd-backed
 * buffers that map like dma-bufs. A memfd lets a mapping reach past its
 * end (reads there raise SIGBUS); a dma-buf's mmap refuses one with
 * EINVAL (dma_buf_mmap_internal checks the size), which is what the code
 * under test relies on. An executable linked with fake-console.c must be
 * linked with -Wl,--wrap=mmap,--wrap=mmap64: its __wrap_mmap(64) give
 * those memfds (only them) the dma-buf rule.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TESTS_UNIT_FAKE_CONSOLE_H
#define TESTS_UNIT_FAKE_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>
#include "ui/console.h"

/* QEMU's enum display_scanout, without textures (no module makes them) */
typedef enum FakeScanout {
    FAKE_SCANOUT_NONE,
    FAKE_SCANOUT_SURFACE,
    FAKE_SCANOUT_DMABUF,
} FakeScanout;

typedef struct FakeRect {
    int x, y, w, h;
} FakeRect;

/* One call, as it was made */
typedef struct FakeCall {
    const char *name;   /* the function's name, e.g. "dpy_gl_scanout_dmabuf" */
    const void *ptr;    /* its pointer argument (QemuDmaBuf, surface, cursor) */
    int64_t arg[5];     /* its other arguments, in order (bools as 0/1) */
} FakeCall;

/* What the console holds now; read-only for tests (use the setters) */
typedef struct FakeConsoleState {
    /* what the displays declare (fake_console_set_gl) */
    bool has_gl;              /* console_has_gl() */
    bool has_dmabuf;          /* dpy_gl_has_dmabuf(), when has_gl */
    uint32_t gl_caps;         /* qemu_console_gl_caps() */
    bool gl_blocked;          /* qemu_console_is_gl_blocked() */

    /* QemuConsole's own state, as QEMU keeps it */
    DisplaySurface *surface;  /* current surface (a placeholder included) */
    FakeScanout scanout;
    QemuDmaBuf *scanout_dmabuf; /* what scanout DMABUF points at */
    QEMUCursor *cursor;       /* last dpy_cursor_define (a reference) */
    int mouse_x, mouse_y;     /* last dpy_mouse_set */
    bool mouse_on;

    /* what the GL displays were given */
    QemuDmaBuf *gl_cursor;    /* last dpy_gl_cursor_dmabuf (NULL: none) */
    bool gl_cursor_have_hot;
    uint32_t gl_cursor_hot_x, gl_cursor_hot_y;
    uint32_t gl_cursor_x, gl_cursor_y; /* last dpy_gl_cursor_position */
    unsigned int gl_updates;  /* dpy_gl_update calls */
    FakeRect gl_update;       /* ... the last one's rectangle */
    int resize_w, resize_h;   /* last qemu_console_resize */

    /* damage reported with dpy_gfx_update(_full) since the last clear */
    GArray *damage;           /* of FakeRect; _full as the whole surface */

    GArray *calls;            /* of FakeCall, since the last clear */
    unsigned int violations;
    char *violation;          /* the first one, or NULL */
    unsigned int blocked_changes; /* see above */
} FakeConsoleState;

/* A new graphic console: a 640x480 placeholder, no GL, nothing else. */
QemuConsole *fake_console_new(void);
/* Frees @con, its surface and its cursor reference. */
void fake_console_free(QemuConsole *con);

const FakeConsoleState *fake_console_state(QemuConsole *con);

/* What the console's displays declare: the next calls answer this. */
void fake_console_set_gl(QemuConsole *con, bool has_gl, bool has_dmabuf,
                         uint32_t gl_caps);
/* A GL display blocks the console (a SPICE client has not acked a draw). */
void fake_console_set_gl_blocked(QemuConsole *con, bool blocked);

/*
 * What graphic_console_close() does to the console when its device goes
 * away: the scanout is taken off (kind NONE), whatever a display blocks.
 * (QEMU's own does that through dpy_gl_scanout_disable, which a blocked
 * local SPICE client does not survive; that is upstream's, not modelled.)
 */
void fake_console_close(QemuConsole *con);
/* Forgets the recorded calls and damage (state and violations stay). */
void fake_console_clear(QemuConsole *con);
/* Calls of @name since the last clear. */
unsigned int fake_console_count(QemuConsole *con, const char *name);
/*
 * Index of the first call of @name at or after @from, with pointer
 * argument @ptr unless @ptr is NULL (any); -1 if none.
 */
int fake_console_find(QemuConsole *con, const char *name, const void *ptr,
                      unsigned int from);
/* The calls since the last clear, one "name(args)" per line: for messages. */
char *fake_console_log(QemuConsole *con);

/* Whether @d is a QemuDmaBuf made and not yet freed. */
bool fake_dmabuf_is_live(const QemuDmaBuf *d);
/* QemuDmaBufs made and not freed, in the whole process. */
unsigned int fake_dmabufs_live(void);

/*
 * A buffer of @size bytes, zero-filled, as the fake exporter makes them:
 * a memfd that maps like a dma-buf (see above). The caller owns the fd.
 * Returns: the fd; aborts on failure.
 */
int fake_dmabuf_memfd(size_t size);
/* mmap()s the fake exporter refused, as a dma-buf's would be. */
unsigned int fake_dmabuf_mmap_refused(void);

#endif
