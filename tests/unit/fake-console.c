/*
 * A fake QEMU console (tests/unit/fake-console.h says what it models).
 * The state changes follow QEMU 10.2's ui/console.c; the code is this
 * file's own.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "fake-console.h"

#define FAKE_DMABUF_MAGIC 0x71646d62u   /* "qdmb" */
#define FAKE_MEMFD_NAME "fake-dmabuf"

struct QemuConsole {
    FakeConsoleState st;
};

struct QemuDmaBuf {
    uint32_t magic;
    uint32_t width, height;
    uint32_t offset[4], stride[4];
    uint32_t x, y, backing_width, backing_height;
    uint32_t fourcc;
    uint64_t modifier;
    int32_t fd[4];
    uint32_t num_planes;
    bool allow_fences, y0_top;
    bool given;        /* given to the displays since its last release */
};

static GList *consoles;           /* live fake consoles */
static GHashTable *live_dmabufs;  /* QemuDmaBufs made and not freed */
static unsigned int mmap_refused;

/* ------------------------------------------------------------------ */
/* recording */

static void violation(QemuConsole *con, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

static void violation(QemuConsole *con, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    con->st.violations++;
    if (g_getenv("FAKE_CONSOLE_VERBOSE")) {
        fprintf(stderr, "fake-console: violation: %s\n", msg);
    }
    if (!con->st.violation) {
        con->st.violation = msg;
    } else {
        g_free(msg);
    }
}

static void record(QemuConsole *con, const char *name, const void *ptr,
                   int64_t a0, int64_t a1, int64_t a2, int64_t a3, int64_t a4)
{
    FakeCall c = { name, ptr, { a0, a1, a2, a3, a4 } };

    g_array_append_val(con->st.calls, c);
}

/* @fn reaches the displays: counted if one blocks the console */
static void blocked_change(QemuConsole *con, const char *fn)
{
    if (con->st.gl_blocked) {
        con->st.blocked_changes++;
        if (g_getenv("FAKE_CONSOLE_VERBOSE")) {
            fprintf(stderr, "fake-console: %s while GL-blocked\n", fn);
        }
    }
}

/* the same call in every console's log (qemu_dmabuf_new/_free) */
static void record_all(const char *name, const void *ptr, int64_t a0)
{
    GList *l;

    for (l = consoles; l; l = l->next) {
        record(l->data, name, ptr, a0, 0, 0, 0, 0);
    }
}

/* @d is usable: live, and really read (AddressSanitizer sees a freed one) */
static bool check_dmabuf(QemuConsole *con, const char *fn,
                         const QemuDmaBuf *d)
{
    if (!fake_dmabuf_is_live(d)) {
        violation(con, "%s: QemuDmaBuf %p is not live (freed or never made)",
                  fn, (const void *)d);
        return false;
    }
    if (d->magic != FAKE_DMABUF_MAGIC) {
        violation(con, "%s: QemuDmaBuf %p is corrupt", fn, (const void *)d);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* the console */

/*
 * The console's own surfaces (placeholder, resize): nothing reads them, so
 * up to 16384 wide all their rows are one shared row of zeros (stride 0),
 * and a 16384x16384 mode costs no GiB.
 */
static DisplaySurface *surface_new(int w, int h, uint8_t flags)
{
    static uint32_t zero_row[16384];
    DisplaySurface *s = g_new0(DisplaySurface, 1);

    if (w <= (int)G_N_ELEMENTS(zero_row)) {
        s->image = pixman_image_create_bits(PIXMAN_x8r8g8b8, w, h, zero_row,
                                            0);
    } else {
        s->image = pixman_image_create_bits(PIXMAN_x8r8g8b8, w, h, NULL,
                                            w * 4);
    }
    g_assert(s->image);
    s->flags = flags;
    return s;
}

static void surface_free(DisplaySurface *s)
{
    if (s) {
        pixman_image_unref(s->image);
        g_free(s);
    }
}

QemuConsole *fake_console_new(void)
{
    QemuConsole *con = g_new0(QemuConsole, 1);

    con->st.calls = g_array_new(false, false, sizeof(FakeCall));
    con->st.damage = g_array_new(false, false, sizeof(FakeRect));
    /* what graphic_console_init leaves: a placeholder */
    con->st.surface = surface_new(640, 480, QEMU_ALLOCATED_FLAG |
                                  QEMU_PLACEHOLDER_FLAG);
    con->st.scanout = FAKE_SCANOUT_SURFACE;
    consoles = g_list_prepend(consoles, con);
    return con;
}

void fake_console_free(QemuConsole *con)
{
    if (!con) {
        return;
    }
    consoles = g_list_remove(consoles, con);
    surface_free(con->st.surface);
    cursor_unref(con->st.cursor);
    g_array_free(con->st.calls, true);
    g_array_free(con->st.damage, true);
    g_free(con->st.violation);
    g_free(con);
}

const FakeConsoleState *fake_console_state(QemuConsole *con)
{
    return &con->st;
}

void fake_console_set_gl(QemuConsole *con, bool has_gl, bool has_dmabuf,
                         uint32_t gl_caps)
{
    con->st.has_gl = has_gl;
    con->st.has_dmabuf = has_dmabuf;
    con->st.gl_caps = gl_caps;
}

void fake_console_set_gl_blocked(QemuConsole *con, bool blocked)
{
    con->st.gl_blocked = blocked;
}

void fake_console_close(QemuConsole *con)
{
    record(con, "graphic_console_close", NULL, 0, 0, 0, 0, 0);
    if (con->st.scanout != FAKE_SCANOUT_SURFACE) {
        con->st.scanout = FAKE_SCANOUT_NONE;
        con->st.scanout_dmabuf = NULL;
    }
}

void fake_console_clear(QemuConsole *con)
{
    g_array_set_size(con->st.calls, 0);
    g_array_set_size(con->st.damage, 0);
}

unsigned int fake_console_count(QemuConsole *con, const char *name)
{
    unsigned int i, n = 0;

    for (i = 0; i < con->st.calls->len; i++) {
        if (!strcmp(g_array_index(con->st.calls, FakeCall, i).name, name)) {
            n++;
        }
    }
    return n;
}

int fake_console_find(QemuConsole *con, const char *name, const void *ptr,
                      unsigned int from)
{
    unsigned int i;

    for (i = from; i < con->st.calls->len; i++) {
        const FakeCall *c = &g_array_index(con->st.calls, FakeCall, i);

        if (!strcmp(c->name, name) && (!ptr || c->ptr == ptr)) {
            return i;
        }
    }
    return -1;
}

char *fake_console_log(QemuConsole *con)
{
    GString *s = g_string_new("");
    unsigned int i;

    for (i = 0; i < con->st.calls->len; i++) {
        const FakeCall *c = &g_array_index(con->st.calls, FakeCall, i);

        g_string_append_printf(s, "%u %s(%p, %" PRId64 ", %" PRId64 ", %"
                               PRId64 ", %" PRId64 ", %" PRId64 ")\n", i,
                               c->name, c->ptr, c->arg[0], c->arg[1],
                               c->arg[2], c->arg[3], c->arg[4]);
    }
    return g_string_free(s, false);
}

/* qemu_console_get_width/height(con, -1) */
static void console_size(QemuConsole *con, int *w, int *h)
{
    switch (con->st.scanout) {
    case FAKE_SCANOUT_DMABUF:
        *w = con->st.scanout_dmabuf->width;
        *h = con->st.scanout_dmabuf->height;
        break;
    case FAKE_SCANOUT_SURFACE:
        *w = surface_width(con->st.surface);
        *h = surface_height(con->st.surface);
        break;
    default:
        *w = *h = -1;
        break;
    }
}

/* ------------------------------------------------------------------ */
/* ui/surface.h */

DisplaySurface *qemu_create_displaysurface_pixman(pixman_image_t *image)
{
    DisplaySurface *s = g_new0(DisplaySurface, 1);

    s->image = pixman_image_ref(image);
    return s;
}

/* ------------------------------------------------------------------ */
/* ui/dmabuf.h */

QemuDmaBuf *qemu_dmabuf_new(uint32_t width, uint32_t height,
                            const uint32_t *offset, const uint32_t *stride,
                            uint32_t x, uint32_t y,
                            uint32_t backing_width, uint32_t backing_height,
                            uint32_t fourcc, uint64_t modifier,
                            const int32_t *dmabuf_fd, uint32_t num_planes,
                            bool allow_fences, bool y0_top)
{
    QemuDmaBuf *d = g_new0(QemuDmaBuf, 1);
    uint32_t i;

    g_assert(num_planes <= 4);
    d->magic = FAKE_DMABUF_MAGIC;
    d->width = width;
    d->height = height;
    for (i = 0; i < 4; i++) {
        d->fd[i] = -1;
    }
    for (i = 0; i < num_planes; i++) {
        d->offset[i] = offset[i];
        d->stride[i] = stride[i];
        d->fd[i] = dmabuf_fd[i];
    }
    d->x = x;
    d->y = y;
    d->backing_width = backing_width;
    d->backing_height = backing_height;
    d->fourcc = fourcc;
    d->modifier = modifier;
    d->num_planes = num_planes;
    d->allow_fences = allow_fences;
    d->y0_top = y0_top;
    if (!live_dmabufs) {
        live_dmabufs = g_hash_table_new(g_direct_hash, g_direct_equal);
    }
    g_hash_table_add(live_dmabufs, d);
    record_all("qemu_dmabuf_new", d, num_planes);
    return d;
}

void qemu_dmabuf_free(QemuDmaBuf *d)
{
    GList *l;

    if (!d) {
        return;
    }
    record_all("qemu_dmabuf_free", d, 0);
    for (l = consoles; l; l = l->next) {
        QemuConsole *con = l->data;

        if (con->st.scanout == FAKE_SCANOUT_DMABUF &&
            con->st.scanout_dmabuf == d) {
            violation(con, "qemu_dmabuf_free(%p): the console's scanout "
                      "still points at it (use-after-free)", (void *)d);
        }
        if (con->st.gl_cursor == d) {
            violation(con, "qemu_dmabuf_free(%p): it is the console's GL "
                      "cursor (use-after-free)", (void *)d);
        }
    }
    if (!fake_dmabuf_is_live(d)) {
        if (consoles) {
            violation(consoles->data, "qemu_dmabuf_free(%p): not live "
                      "(double free?)", (void *)d);
        }
        return;
    }
    if (d->given && consoles) {
        violation(consoles->data, "qemu_dmabuf_free(%p): given to the "
                  "displays and never dpy_gl_release_dmabuf'ed since "
                  "(their imports leak)", (void *)d);
    }
    g_hash_table_remove(live_dmabufs, d);
    if (!g_hash_table_size(live_dmabufs)) {
        g_hash_table_destroy(live_dmabufs);
        live_dmabufs = NULL;
    }
    d->magic = 0;
    g_free(d);
}

void qemu_dmabuf_close(QemuDmaBuf *d)
{
    uint32_t i;

    if (consoles) {
        record_all("qemu_dmabuf_close", d, 0);
        if (!check_dmabuf(consoles->data, "qemu_dmabuf_close", d)) {
            return;
        }
    }
    for (i = 0; i < d->num_planes; i++) {
        if (d->fd[i] >= 0) {
            close(d->fd[i]);
            d->fd[i] = -1;
        }
    }
}

bool fake_dmabuf_is_live(const QemuDmaBuf *d)
{
    return d && live_dmabufs && g_hash_table_contains(live_dmabufs, d);
}

unsigned int fake_dmabufs_live(void)
{
    return live_dmabufs ? g_hash_table_size(live_dmabufs) : 0;
}

const int *qemu_dmabuf_get_fds(QemuDmaBuf *d, int *nfds)
{
    if (nfds) {
        *nfds = G_N_ELEMENTS(d->fd);
    }
    return d->fd;
}

uint32_t qemu_dmabuf_get_width(QemuDmaBuf *d)
{
    return d->width;
}

uint32_t qemu_dmabuf_get_height(QemuDmaBuf *d)
{
    return d->height;
}

const uint32_t *qemu_dmabuf_get_offsets(QemuDmaBuf *d, int *noffsets)
{
    if (noffsets) {
        *noffsets = G_N_ELEMENTS(d->offset);
    }
    return d->offset;
}

const uint32_t *qemu_dmabuf_get_strides(QemuDmaBuf *d, int *nstrides)
{
    if (nstrides) {
        *nstrides = G_N_ELEMENTS(d->stride);
    }
    return d->stride;
}

uint32_t qemu_dmabuf_get_num_planes(QemuDmaBuf *d)
{
    return d->num_planes;
}

uint32_t qemu_dmabuf_get_fourcc(QemuDmaBuf *d)
{
    return d->fourcc;
}

uint64_t qemu_dmabuf_get_modifier(QemuDmaBuf *d)
{
    return d->modifier;
}

uint32_t qemu_dmabuf_get_x(QemuDmaBuf *d)
{
    return d->x;
}

uint32_t qemu_dmabuf_get_y(QemuDmaBuf *d)
{
    return d->y;
}

uint32_t qemu_dmabuf_get_backing_width(QemuDmaBuf *d)
{
    return d->backing_width;
}

uint32_t qemu_dmabuf_get_backing_height(QemuDmaBuf *d)
{
    return d->backing_height;
}

bool qemu_dmabuf_get_y0_top(QemuDmaBuf *d)
{
    return d->y0_top;
}

bool qemu_dmabuf_get_allow_fences(QemuDmaBuf *d)
{
    return d->allow_fences;
}

/* ------------------------------------------------------------------ */
/* ui/console.h: cursors */

QEMUCursor *cursor_alloc(uint16_t width, uint16_t height)
{
    QEMUCursor *c;

    if (width > 512 || height > 512) {
        return NULL;  /* QEMU's limit */
    }
    c = g_malloc0(sizeof(QEMUCursor) + (size_t)width * height * 4);
    c->width = width;
    c->height = height;
    c->refcount = 1;
    return c;
}

QEMUCursor *cursor_ref(QEMUCursor *c)
{
    c->refcount++;
    return c;
}

void cursor_unref(QEMUCursor *c)
{
    if (c && --c->refcount == 0) {
        g_free(c);
    }
}

/* ------------------------------------------------------------------ */
/* ui/console.h: the 2D side */

void dpy_gfx_update(QemuConsole *con, int x, int y, int w, int h)
{
    FakeRect r = { x, y, w, h };

    record(con, "dpy_gfx_update", NULL, x, y, w, h, 0);
    g_array_append_val(con->st.damage, r);
}

void dpy_gfx_update_full(QemuConsole *con)
{
    int w, h;
    FakeRect r;

    record(con, "dpy_gfx_update_full", NULL, 0, 0, 0, 0, 0);
    console_size(con, &w, &h);
    r = (FakeRect) { 0, 0, MAX(w, 0), MAX(h, 0) };
    g_array_append_val(con->st.damage, r);
}

void dpy_gfx_replace_surface(QemuConsole *con, DisplaySurface *surface)
{
    DisplaySurface *old = con->st.surface;

    record(con, "dpy_gfx_replace_surface", surface, 0, 0, 0, 0, 0);
    blocked_change(con, "dpy_gfx_replace_surface");
    if (surface && surface == old) {
        violation(con, "dpy_gfx_replace_surface: the current surface "
                  "again (QEMU asserts)");
        return;
    }
    if (!surface) {
        /* QEMU's placeholder, the size of the last surface */
        surface = surface_new(old ? surface_width(old) : 640,
                              old ? surface_height(old) : 480,
                              QEMU_ALLOCATED_FLAG | QEMU_PLACEHOLDER_FLAG);
    } else {
        /* read it: a freed surface is AddressSanitizer's to report */
        g_assert(surface_width(surface) > 0 && surface_height(surface) > 0);
    }
    con->st.scanout = FAKE_SCANOUT_SURFACE;
    con->st.surface = surface;
    surface_free(old);
}

void dpy_mouse_set(QemuConsole *con, int x, int y, bool on)
{
    record(con, "dpy_mouse_set", NULL, x, y, on, 0, 0);
    con->st.mouse_x = x;
    con->st.mouse_y = y;
    con->st.mouse_on = on;
}

void dpy_cursor_define(QemuConsole *con, QEMUCursor *cursor)
{
    record(con, "dpy_cursor_define", cursor, cursor->width, cursor->height,
           cursor->hot_x, cursor->hot_y, 0);
    if (cursor->refcount <= 0) {
        violation(con, "dpy_cursor_define: cursor refcount %d",
                  cursor->refcount);
        return;
    }
    cursor_unref(con->st.cursor);
    con->st.cursor = cursor_ref(cursor);
}

void qemu_console_resize(QemuConsole *con, int width, int height)
{
    DisplaySurface *s = con->st.surface;
    int w, h;

    record(con, "qemu_console_resize", NULL, width, height, 0, 0, 0);
    blocked_change(con, "qemu_console_resize");
    con->st.resize_w = width;
    con->st.resize_h = height;
    console_size(con, &w, &h);
    /* QEMU keeps a scanout or an allocated real surface of that size */
    if ((con->st.scanout != FAKE_SCANOUT_SURFACE ||
         (s && (s->flags & QEMU_ALLOCATED_FLAG) &&
          !(s->flags & QEMU_PLACEHOLDER_FLAG))) &&
        w == width && h == height) {
        return;
    }
    dpy_gfx_replace_surface(con, surface_new(width, height,
                                             QEMU_ALLOCATED_FLAG));
}

/* ------------------------------------------------------------------ */
/* ui/console.h: the GL side */

void dpy_gl_scanout_disable(QemuConsole *con)
{
    record(con, "dpy_gl_scanout_disable", NULL, 0, 0, 0, 0, 0);
    blocked_change(con, "dpy_gl_scanout_disable");
    if (con->st.scanout != FAKE_SCANOUT_SURFACE) {
        con->st.scanout = FAKE_SCANOUT_NONE;
        con->st.scanout_dmabuf = NULL;
    }
}

void dpy_gl_scanout_dmabuf(QemuConsole *con, QemuDmaBuf *dmabuf)
{
    record(con, "dpy_gl_scanout_dmabuf", dmabuf, 0, 0, 0, 0, 0);
    if (!check_dmabuf(con, "dpy_gl_scanout_dmabuf", dmabuf)) {
        return;
    }
    dmabuf->given = true;
    con->st.scanout = FAKE_SCANOUT_DMABUF;
    con->st.scanout_dmabuf = dmabuf;
}

void dpy_gl_cursor_dmabuf(QemuConsole *con, QemuDmaBuf *dmabuf,
                          bool have_hot, uint32_t hot_x, uint32_t hot_y)
{
    record(con, "dpy_gl_cursor_dmabuf", dmabuf, have_hot, hot_x, hot_y, 0, 0);
    if (dmabuf && !check_dmabuf(con, "dpy_gl_cursor_dmabuf", dmabuf)) {
        return;
    }
    if (dmabuf) {
        dmabuf->given = true;
    }
    con->st.gl_cursor = dmabuf;
    con->st.gl_cursor_have_hot = have_hot;
    con->st.gl_cursor_hot_x = hot_x;
    con->st.gl_cursor_hot_y = hot_y;
}

void dpy_gl_cursor_position(QemuConsole *con, uint32_t pos_x, uint32_t pos_y)
{
    record(con, "dpy_gl_cursor_position", NULL, pos_x, pos_y, 0, 0, 0);
    con->st.gl_cursor_x = pos_x;
    con->st.gl_cursor_y = pos_y;
}

void dpy_gl_release_dmabuf(QemuConsole *con, QemuDmaBuf *dmabuf)
{
    record(con, "dpy_gl_release_dmabuf", dmabuf, 0, 0, 0, 0, 0);
    if (!check_dmabuf(con, "dpy_gl_release_dmabuf", dmabuf)) {
        return;
    }
    dmabuf->given = false;
}

void dpy_gl_update(QemuConsole *con, uint32_t x, uint32_t y, uint32_t w,
                   uint32_t h)
{
    record(con, "dpy_gl_update", NULL, x, y, w, h, 0);
    blocked_change(con, "dpy_gl_update");
    if (!con->st.has_gl && !(con->st.gl_caps & DPY_GL_NO_CONTEXT)) {
        violation(con, "dpy_gl_update on a console without GL (QEMU "
                  "asserts, unless a display needs no context: patch 0009)");
        return;
    }
    con->st.gl_updates++;
    con->st.gl_update = (FakeRect) { x, y, w, h };
}

bool console_has_gl(QemuConsole *con)
{
    return con->st.has_gl;
}

bool dpy_gl_has_dmabuf(QemuConsole *con)
{
    /* as patch 0005 and 0009: GL, or a display that needs no context */
    return (con->st.has_gl || (con->st.gl_caps & DPY_GL_NO_CONTEXT)) &&
           con->st.has_dmabuf;
}

uint32_t qemu_console_gl_caps(QemuConsole *con)
{
    return con->st.gl_caps;
}

bool qemu_console_is_gl_blocked(QemuConsole *con)
{
    return con->st.gl_blocked;
}

/* ------------------------------------------------------------------ */
/* the fake exporter */

int fake_dmabuf_memfd(size_t size)
{
    int fd = memfd_create(FAKE_MEMFD_NAME, MFD_CLOEXEC);

    g_assert(fd >= 0);
    g_assert(ftruncate(fd, (off_t)size) == 0);
    return fd;
}

unsigned int fake_dmabuf_mmap_refused(void)
{
    return mmap_refused;
}

/* @fd is a memfd of the fake exporter (its link is "/memfd:NAME (deleted)") */
static bool is_fake_dmabuf(int fd)
{
    static const char want[] = "/memfd:" FAKE_MEMFD_NAME " ";
    char path[64], link[sizeof(want) - 1];
    ssize_t n;

    if (fd < 0) {
        return false;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    n = readlink(path, link, sizeof(link));
    return n == (ssize_t)sizeof(link) && !memcmp(link, want, sizeof(link));
}

void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd,
                  off_t off);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd,
                  off_t off);
void *__real_mmap64(void *addr, size_t len, int prot, int flags, int fd,
                    off_t off);
void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd,
                    off_t off);

/*
 * A dma-buf's rule for the fake exporter's memfds: a mapping that reaches
 * past the buffer's last page fails with EINVAL, as
 * dma_buf_mmap_internal() refuses it. Returns: whether to refuse.
 */
static bool refuse_mmap(size_t len, int flags, int fd, off_t off)
{
    size_t page = sysconf(_SC_PAGESIZE);
    struct stat st;
    uint64_t pages;

    if ((flags & MAP_ANONYMOUS) || !is_fake_dmabuf(fd)) {
        return false;
    }
    if (fstat(fd, &st) < 0 || off < 0) {
        return true;
    }
    pages = ((uint64_t)st.st_size + page - 1) / page;
    if ((uint64_t)off / page + ((uint64_t)len + page - 1) / page > pages) {
        mmap_refused++;
        return true;
    }
    return false;
}

/*
 * mmap and mmap64 (what a file built with _FILE_OFFSET_BITS=64 calls; the
 * same function on 64-bit hosts), with the rule above.
 */
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd,
                  off_t off)
{
    if (refuse_mmap(len, flags, fd, off)) {
        errno = EINVAL;
        return MAP_FAILED;
    }
    return __real_mmap(addr, len, prot, flags, fd, off);
}

void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd,
                    off_t off)
{
    if (refuse_mmap(len, flags, fd, off)) {
        errno = EINVAL;
        return MAP_FAILED;
    }
    return __real_mmap64(addr, len, prot, flags, fd, off);
}
