/*
 * libFuzzer harness: ui/dmabuf-scanout.c over the unit tests' fake console
 * (tests/unit/fake-console.c), scripted by the input bytes.
 *
 * The input is a configuration byte (gl=auto/on/off, what the displays
 * declare) followed by steps. A step is one of:
 * - a new buffer from the fake device: one of the 15 formats or an
 *   unknown fourcc, 1..300 x 1..300, a stride from a few bytes short of a
 *   row to 64 bytes past it, an offset, a memfd as long as the plane says
 *   or shorter (a few bytes, a page, nearly nothing), linear or tiled; the
 *   memfds map like dma-bufs (fake_dmabuf_memfd());
 * - a buffer released, then its fd closed, as the device does;
 * - a frame shown: primary and cursor from the live buffers or none, the
 *   change bits, a cursor position (small, negative, or any int32), a
 *   hotspot (small, unknown, or any), a damage hint;
 * - a display refresh; a reset; a screendump (snapshot);
 * - the displays change: GL, dma-buf import, DPY_GL_* caps; a display
 *   blocks or unblocks the console;
 * - the clock advances (a frame period, or seconds);
 * - the presenter freed (every buffer released first) and made anew.
 *
 * Invariants, checked after every step (abort() on violation):
 * - no crash, no AddressSanitizer/UBSan report, no leak;
 * - the fake console saw no violation: no QemuDmaBuf freed while its
 *   scanout or GL cursor points at it, none freed without its imports
 *   released, no call with a dead QemuDmaBuf, no dpy_gl_update without GL
 *   (fake-console.h);
 * - stats.buffers == the live handles; QemuDmaBufs alive <= handles + 1
 *   (each buffer's own, and one copy of a retired scanout);
 * - a released buffer is no longer mapped, and its fd still open;
 * - on the cpu path no dma-buf cursor is left on the console;
 * - while a SPICE-like display (GL, dma-bufs, no read-back, gl not off)
 *   blocks the console, and it stays so, nothing reaches it but pointer
 *   swaps (the fake's blocked_changes does not grow);
 * - a snapshot is NULL with an error, or an image of the primary's size;
 * - after the input, every fd is closed again (the process's count is
 *   back) and no QemuDmaBuf is alive.
 *
 * Known bug worked around (tests/unit/scanout-test.c
 * /scanout/gl/free-while-blocked-leaves-nothing): dmabuf_scanout_free()
 * while the console is GL-blocked leaks the retired QemuDmaBuf, so the
 * harness unblocks the console before it frees the presenter; build with
 * -DFUZZ_FREE_WHILE_BLOCKED to let the fuzzer find it again.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qapi/error.h"
#include "qemu/timer.h"
#include "standard-headers/drm/drm_fourcc.h"
#include "ui/console.h"
#include "ui/dmabuf-plane.h"
#include "ui/dmabuf-scanout.h"
#include "fake-console.h"
#include "fuzz-common.h"

#define MAX_STEPS   128
#define MAX_BUFS    8

/* the formats the module converts, then some it does not know */
static const struct {
    uint32_t fourcc;
    unsigned int cpp;
} formats[] = {
    { DRM_FORMAT_XRGB8888, 4 }, { DRM_FORMAT_ARGB8888, 4 },
    { DRM_FORMAT_XBGR8888, 4 }, { DRM_FORMAT_ABGR8888, 4 },
    { DRM_FORMAT_RGBX8888, 4 }, { DRM_FORMAT_BGRX8888, 4 },
    { DRM_FORMAT_RGBA8888, 4 }, { DRM_FORMAT_BGRA8888, 4 },
    { DRM_FORMAT_XRGB2101010, 4 }, { DRM_FORMAT_ARGB2101010, 4 },
    { DRM_FORMAT_XBGR2101010, 4 }, { DRM_FORMAT_RGB888, 3 },
    { DRM_FORMAT_BGR888, 3 }, { DRM_FORMAT_RGB565, 2 },
    { DRM_FORMAT_BGR565, 2 },
    /* unknown to the module: a YUV format, 0, an unassigned code */
    { DRM_FORMAT_NV12, 1 }, { 0, 4 }, { 0x20203f3f, 4 },
};

static const uint64_t modifiers[] = {
    DRM_FORMAT_MOD_LINEAR, DRM_FORMAT_MOD_LINEAR, DRM_FORMAT_MOD_LINEAR,
    I915_FORMAT_MOD_X_TILED, I915_FORMAT_MOD_Y_TILED, DRM_FORMAT_MOD_INVALID,
};

typedef struct Buf {
    DmabufPlane plane;
    DmabufScanoutBuffer *b;     /* NULL: the slot is free */
} Buf;

typedef struct Harness {
    QemuConsole *con;
    DmabufScanout *s;
    DmabufScanoutGl gl;
    Buf bufs[MAX_BUFS];
    unsigned int live;
    int64_t now;
    /* a SPICE-like display blocks the console since this many changes */
    bool blocked_clean;
    unsigned int blocked_changes_at;
} Harness;

static int open_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *de;
    int n = 0;

    FUZZ_CHECK(dir);
    while ((de = readdir(dir))) {
        n += de->d_name[0] != '.';
    }
    closedir(dir);
    return n - 1;
}

/* whether the process maps the memfd @fd */
static bool is_mapped(int fd)
{
    char *maps = NULL;
    const char *m;
    struct stat sb;
    bool found = false;

    FUZZ_CHECK(fstat(fd, &sb) == 0);
    FUZZ_CHECK(g_file_get_contents("/proc/self/maps", &maps, NULL, NULL));
    /* each line: address perms offset dev inode path */
    for (m = strstr(maps, "/memfd:"); m && !found;
         m = strstr(m + 1, "/memfd:")) {
        const char *line = m;
        unsigned long ino;

        while (line > maps && line[-1] != '\n') {
            line--;
        }
        found = sscanf(line, "%*s %*s %*s %*s %lu", &ino) == 1 &&
                ino == (unsigned long)sb.st_ino;
    }
    g_free(maps);
    return found;
}

static bool spice_like(Harness *h)
{
    const FakeConsoleState *st = fake_console_state(h->con);

    return st->has_gl && st->has_dmabuf && !(st->gl_caps & DPY_GL_READS_BACK)
           && h->gl != DMABUF_SCANOUT_GL_OFF &&
           dmabuf_scanout_path(h->s) != DMABUF_SCANOUT_PATH_CPU &&
           dmabuf_scanout_path(h->s) != DMABUF_SCANOUT_PATH_NONE;
}

static void check_state(Harness *h)
{
    const FakeConsoleState *st = fake_console_state(h->con);

    if (st->violations) {
        fprintf(stderr, "fuzz: fake console: %s\n", st->violation);
    }
    FUZZ_CHECK(st->violations == 0);
    FUZZ_CHECK(dmabuf_scanout_stats(h->s)->buffers == h->live);
    FUZZ_CHECK(fake_dmabufs_live() <= h->live + 1);
    if (dmabuf_scanout_path(h->s) == DMABUF_SCANOUT_PATH_CPU) {
        FUZZ_CHECK(st->gl_cursor == NULL);
    }
    if (h->blocked_clean) {
        FUZZ_CHECK(st->blocked_changes == h->blocked_changes_at);
    }
}

static void buf_new(Harness *h, FuzzInput *in)
{
    uint8_t fi = fuzz_u8(in) % G_N_ELEMENTS(formats);
    uint32_t w = 1 + fuzz_u16(in) % 300, h_ = 1 + fuzz_u16(in) % 300;
    uint8_t delta = fuzz_u8(in);
    uint8_t off = fuzz_u8(in), how = fuzz_u8(in);
    uint32_t row = w * formats[fi].cpp, stride;
    uint64_t full, short_by;
    size_t size;
    unsigned int i;
    Buf *b = NULL;
    uint8_t pattern[256];

    for (i = 0; i < MAX_BUFS; i++) {
        if (!h->bufs[i].b) {
            b = &h->bufs[i];
            break;
        }
    }
    if (!b) {
        return;
    }
    /* -8 .. +64 bytes around a row; never 0 */
    stride = MAX((int64_t)row + (delta % 73) - 8, 1);
    dmabuf_plane_init(&b->plane);
    b->plane.fourcc = formats[fi].fourcc;
    b->plane.modifier = modifiers[(how >> 4) % G_N_ELEMENTS(modifiers)];
    b->plane.width = w;
    b->plane.height = h_;
    b->plane.n_fds = 1;
    b->plane.stride[0] = stride;
    b->plane.offset[0] = (off & 0x80) ? (uint32_t)(off & 0x7f) * 4 : off & 3;
    full = (uint64_t)b->plane.offset[0] + (uint64_t)stride * h_;
    b->plane.size = full;
    short_by = fuzz_u8(in);
    switch (how & 7) {
    case 0:
        size = full - MIN(full, short_by);          /* a few bytes short */
        break;
    case 1:
        size = 4096;                                  /* one page */
        break;
    case 2:
        size = short_by;                              /* nearly nothing */
        break;
    default:
        size = full;
        break;
    }
    b->plane.fd[0] = fake_dmabuf_memfd(size);
    /* some pixels, cheaply: the first bytes and a few rows */
    for (i = 0; i < sizeof(pattern); i++) {
        pattern[i] = i * 37 + fi + w;
    }
    for (i = 0; i < 4 && (size_t)i * stride * (h_ / 4 + 1) < size; i++) {
        size_t at = (size_t)i * stride * (h_ / 4 + 1);

        FUZZ_CHECK(pwrite(b->plane.fd[0], pattern,
                          MIN(sizeof(pattern), size - at), at) >= 0);
    }
    b->b = dmabuf_scanout_buffer_new(h->s, &b->plane);
    h->live++;
}

static void buf_release(Harness *h, Buf *b)
{
    dmabuf_scanout_buffer_release(h->s, b->b);
    b->b = NULL;
    h->live--;
    FUZZ_CHECK(fcntl(b->plane.fd[0], F_GETFD) >= 0); /* not ours to close */
    FUZZ_CHECK(!is_mapped(b->plane.fd[0]));
    dmabuf_plane_finish(&b->plane);                  /* the device closes */
}

/* a live buffer chosen by @sel, or NULL */
static DmabufScanoutBuffer *pick(Harness *h, uint8_t sel)
{
    Buf *b = &h->bufs[sel % MAX_BUFS];

    return (sel & 0x80) ? NULL : b->b;
}

static int32_t pick_pos(FuzzInput *in)
{
    uint8_t how = fuzz_u8(in);

    switch (how & 3) {
    case 0:
        return (int8_t)fuzz_u8(in) * 8;         /* -1024 .. 1016 */
    case 1:
        return (int32_t)fuzz_u16(in);           /* up to 65535 */
    case 2:
        return (int32_t)fuzz_u32(in);           /* anything */
    default:
        return how >> 2;
    }
}

static uint32_t pick_hot(FuzzInput *in)
{
    uint8_t how = fuzz_u8(in);

    switch (how & 3) {
    case 0:
        return DMABUF_SCANOUT_HOT_UNKNOWN;
    case 1:
        return fuzz_u32(in);
    default:
        return how >> 2;
    }
}

static void show(Harness *h, FuzzInput *in)
{
    DmabufScanoutFrame f;

    memset(&f, 0, sizeof(f));
    f.primary = pick(h, fuzz_u8(in));
    f.cursor = pick(h, fuzz_u8(in));
    f.changed = fuzz_u8(in) & 0xf;
    f.cursor_x = pick_pos(in);
    f.cursor_y = pick_pos(in);
    f.hot_x = pick_hot(in);
    f.hot_y = pick_hot(in);
    if (f.changed & DMABUF_SCANOUT_PRIMARY_REDRAW) {
        f.damage_y = fuzz_u16(in) % 320;
        f.damage_h = fuzz_u8(in);
    }
    dmabuf_scanout_show(h->s, &f);
}

static void snapshot(Harness *h)
{
    Error *err = NULL;
    pixman_image_t *img = dmabuf_scanout_snapshot(h->s, &err);

    if (img) {
        FUZZ_CHECK(!err);
        FUZZ_CHECK(pixman_image_get_format(img) == PIXMAN_x8r8g8b8);
        pixman_image_unref(img);
    } else {
        FUZZ_CHECK(err);
        FUZZ_CHECK(error_get_pretty(err)[0]);
        error_free(err);
    }
}

/* what the displays declare, and the block */
static void displays(Harness *h, uint8_t v)
{
    const FakeConsoleState *st = fake_console_state(h->con);
    bool was_blocked = st->gl_blocked;

    if (v & 0x80) {
        fake_console_set_gl_blocked(h->con, v & 1);
    } else {
        fake_console_set_gl(h->con, v & 1, v & 2, (v >> 2) & 7);
    }
    if (!st->gl_blocked) {
        h->blocked_clean = false;
    } else if (!was_blocked) {
        h->blocked_clean = spice_like(h);
        h->blocked_changes_at = st->blocked_changes;
    } else if (!(v & 0x80)) {
        h->blocked_clean = false; /* the displays changed while blocked */
    }
}

static void scanout_new(Harness *h)
{
    h->s = dmabuf_scanout_new(h->con, "fuzz", h->gl);
}

/* every buffer released, the presenter freed */
static void scanout_free(Harness *h)
{
    unsigned int i;

    for (i = 0; i < MAX_BUFS; i++) {
        if (h->bufs[i].b) {
            buf_release(h, &h->bufs[i]);
        }
    }
#ifndef FUZZ_FREE_WHILE_BLOCKED
    /* the known leak of a retired scanout (see the top of the file) */
    if (fake_console_state(h->con)->gl_blocked) {
        fake_console_set_gl_blocked(h->con, false);
        h->blocked_clean = false;
    }
#endif
    dmabuf_scanout_free(h->s);
    h->s = NULL;
    FUZZ_CHECK(fake_console_state(h->con)->violations == 0);
    FUZZ_CHECK(fake_dmabufs_live() == 0);
    FUZZ_CHECK(fake_console_state(h->con)->scanout != FAKE_SCANOUT_DMABUF);
    FUZZ_CHECK(fake_console_state(h->con)->gl_cursor == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzInput in = { data, size };
    int fds_before = open_fds();
    Harness h;
    unsigned int step;
    uint8_t c;

    memset(&h, 0, sizeof(h));
    h.now = 1000000;
    shim_clock_set_ms(h.now);
    c = fuzz_u8(&in);
    h.gl = (c & 3) == 3 ? DMABUF_SCANOUT_GL_AUTO : (DmabufScanoutGl)(c & 3);
    h.con = fake_console_new();
    fake_console_set_gl(h.con, c & 4, c & 8, (c >> 4) & 7);
    scanout_new(&h);
    check_state(&h);

    for (step = 0; step < MAX_STEPS && in.left; step++) {
        uint8_t op = fuzz_u8(&in);

        switch (op % 16) {
        case 0:
        case 1:
            buf_new(&h, &in);
            break;
        case 2: {
            Buf *b = &h.bufs[(op >> 4) % MAX_BUFS];

            if (b->b) {
                buf_release(&h, b);
            }
            break;
        }
        case 3:
        case 4:
        case 5:
        case 6:
            show(&h, &in);
            break;
        case 7:
        case 8:
            dmabuf_scanout_refresh(h.s);
            break;
        case 9:
            dmabuf_scanout_reset(h.s);
            break;
        case 10:
            snapshot(&h);
            break;
        case 11:
            displays(&h, fuzz_u8(&in));
            break;
        case 12:
        case 13:
            /* a frame period, or up to 25 s (past the watch window) */
            h.now += (op & 0x80) ? (int64_t)(op >> 4) * 3500 : 16;
            shim_clock_set_ms(h.now);
            break;
        case 14:
            (void)dmabuf_scanout_busy(h.s);
            (void)dmabuf_scanout_path_name(dmabuf_scanout_path(h.s));
            break;
        default:
            scanout_free(&h);
            scanout_new(&h);
            break;
        }
        check_state(&h);
    }

    scanout_free(&h);
    fake_console_free(h.con);
    FUZZ_CHECK(open_fds() == fds_before);
    return 0;
}
