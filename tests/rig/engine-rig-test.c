/*
 * Engine rig test: the VFIO display dma-buf engine (hw/vfio/display-dmabuf.c
 * with its production ioctl ops) against a real kernel's mdev, in the rig
 * VM. Where tests/unit/engine-test.c scripts a fake device, this one drives
 * the device from the guest side (registers, sysfs) and asserts what the
 * engine makes of it; vgpusim's own counters referee.
 *
 *   engine-rig-test mbochs UUID     the stock samples/vfio-mdev/mbochs
 *   engine-rig-test vgpusim UUID    our simulated vGPU (docs/vgpusim.md)
 *
 * Static binary, runs as root in the VM (tests/rig/check-rig.sh). Output:
 * "ok N - ..." / "not ok N - ..." per check, "# ..." comments, one line
 * "RIG-RESULT: PASS|FAIL engine-<kind>/<sub-case> (T s)" per sub-case and a
 * final "1..N". Exit 0 only if every check passed.
 *
 * Pristine mbochs corrupts kernel memory on a GET/close/GET of one id and on
 * two GETs of one id while the first fd is open. The engine never does the
 * second; the mbochs scenario avoids the first by using fewer distinct
 * scanouts than VFIO_DMABUF_CACHE_KEEP, so no id is evicted and re-fetched.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/dma-buf.h>
#include <linux/vfio.h>

#include "qapi/error.h"
#include "qemu/error-report.h"
#include "standard-headers/drm/drm_fourcc.h"
#include "hw/vfio/display-dmabuf.h"
#include "rig-vfio.h"

#define PLANE_PRIMARY 1
#define PLANE_CURSOR  2
#define PAGE_ALIGN(x) (((x) + 4095) & ~(uint64_t)4095)

/* vgpusim: the mode every sub-case starts from */
#define VGS_W 640
#define VGS_H 480
/* how long the built-in guest flips while the engine polls */
#define FLIP_WINDOW_MS 2000
#define FLIP_HZ 60

typedef struct Rig Rig;

typedef struct RigCase {
    const char *name;
    bool (*run)(Rig *r);        /* false: later sub-cases cannot run */
} RigCase;

struct Rig {
    const char *kind;           /* "mbochs" or "vgpusim" */
    const char *uuid;
    RigVfio vfio;               /* container, group, device */
    VFIODisplayDmabuf *d;
    uint64_t bar0_off, bar0_size, bar2_off;
    void *vram;                 /* BAR0 mmap (mbochs) */

    int fds_before_open;        /* our fds before opening; -1: not yet */
    int fds_after_open;         /* ... with the device open, no engine */
    unsigned int ev_seen;       /* every event of every tick, or'ed */
    uint32_t id[4];             /* ids a scenario remembers */

    char *sub;                  /* current sub-case, "engine-KIND/NAME" */
    unsigned int sub_failed;
    int64_t sub_start_ms;
    unsigned int nchecks, nfailed, nsubs_failed;
};

/* ------------------------------------------------------------------ */
/* reporting */

static bool G_GNUC_PRINTF(4, 5)
check_at(Rig *r, bool ok, int line, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    r->nchecks++;
    if (ok) {
        printf("ok %u - %s: %s\n", r->nchecks, r->sub, msg);
    } else {
        r->nfailed++;
        r->sub_failed++;
        printf("not ok %u - %s: %s (line %d)\n", r->nchecks, r->sub, msg,
               line);
    }
    return ok;
}

#define CHECK(r, cond, ...) check_at((r), (cond), __LINE__, __VA_ARGS__)

static int64_t now_ms(void)
{
    return g_get_monotonic_time() / 1000;
}

static void sub_begin(Rig *r, const char *name)
{
    r->sub = g_strdup_printf("engine-%s/%s", r->kind, name);
    r->sub_failed = 0;
    r->sub_start_ms = now_ms();
    printf("# %s\n", r->sub);
}

static void sub_end(Rig *r)
{
    printf("RIG-RESULT: %s %s (%.2f s)\n", r->sub_failed ? "FAIL" : "PASS",
           r->sub, (now_ms() - r->sub_start_ms) / 1000.0);
    if (r->sub_failed) {
        r->nsubs_failed++;
    }
    g_free(r->sub);
    r->sub = NULL;
}

static const char *ev_str(unsigned int ev)
{
    static const char *const names[] = {
        "NEW_SCANOUT", "SAME_BUFFER", "SCANOUT_GONE", "CURSOR_NEW",
        "CURSOR_MOVED", "CURSOR_GONE", "RETRY", "REFUSED",
    };
    static char buf[128];
    unsigned int i;

    buf[0] = '\0';
    for (i = 0; i < G_N_ELEMENTS(names); i++) {
        if (ev & (1u << i)) {
            g_strlcat(buf, buf[0] ? "|" : "", sizeof(buf));
            g_strlcat(buf, names[i], sizeof(buf));
        }
    }
    return buf[0] ? buf : "NONE";
}

static int count_open_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *de;
    int n = 0;

    if (!dir) {
        return -1;
    }
    while ((de = readdir(dir))) {
        if (de->d_name[0] != '.') {
            n++;
        }
    }
    closedir(dir);
    return n - 1; /* the directory's own fd */
}

/* ------------------------------------------------------------------ */
/* the device */

static void rig_close(Rig *r)
{
    if (r->vram) {
        munmap(r->vram, r->bar0_size);
        r->vram = NULL;
    }
    rig_vfio_close(&r->vfio);
}

/* Opens the device and builds the engine on the production ioctl ops. */
static bool open_engine(Rig *r)
{
    Error *err = NULL;
    bool ok;

    r->fds_before_open = count_open_fds();
    ok = rig_vfio_open(&r->vfio, r->uuid, &err);
    if (!CHECK(r, ok, "open mdev %s: %s", r->uuid,
               ok ? "ok" : error_get_pretty(err))) {
        error_free(err);
        return false;
    }
    ok = vfio_display_dmabuf_probe(vfio_display_dmabuf_ioctl_ops(),
                                   &r->vfio.device, &err);
    if (!CHECK(r, ok, "probe: %s", ok ? "dma-buf planes" :
               error_get_pretty(err))) {
        error_free(err);
        return false;
    }
    r->fds_after_open = count_open_fds();
    r->d = vfio_display_dmabuf_new(vfio_display_dmabuf_ioctl_ops(),
                                   &r->vfio.device, NULL);
    return true;
}

/* ------------------------------------------------------------------ */
/* the engine */

static const VFIODisplayDmabufStats *stats(Rig *r)
{
    return vfio_display_dmabuf_stats(r->d);
}

static const VFIODmabufBuffer *primary(Rig *r)
{
    return vfio_display_dmabuf_primary(r->d);
}

static uint32_t primary_id(Rig *r)
{
    const VFIODmabufBuffer *b = primary(r);

    return b ? b->id : 0;
}

static unsigned int tick(Rig *r)
{
    unsigned int ev = vfio_display_dmabuf_update(r->d, now_ms());

    r->ev_seen |= ev;
    return ev;
}

/*
 * A tick that queries the cursor plane too: at least
 * VFIO_DMABUF_CURSOR_PERIOD_MS after the last one (the engine does not
 * query the cursor more often).
 */
static unsigned int tick_both(Rig *r)
{
    g_usleep(VFIO_DMABUF_CURSOR_PERIOD_MS * 1000);
    return tick(r);
}

/*
 * Ticks now, then at the engine's own pace, until a tick reports one of
 * @want or @max_ms have passed. Returns the events of all ticks, or'ed.
 */
static unsigned int tick_until(Rig *r, unsigned int want, unsigned int max_ms)
{
    int64_t end = now_ms() + max_ms;
    unsigned int ev, all = 0;

    for (;;) {
        ev = tick(r);
        all |= ev;
        if ((ev & want) || now_ms() >= end) {
            return all;
        }
        g_usleep(vfio_display_dmabuf_next_interval_ms(r->d) * 1000);
    }
}

/* Checks the plane the engine shows against what the device should say. */
static bool check_plane(Rig *r, const VFIODmabufBuffer *b, uint32_t fourcc,
                        uint32_t w, uint32_t h, uint32_t stride,
                        uint64_t size)
{
    char name[5];
    int fd;

    if (!CHECK(r, b != NULL, "a buffer on screen")) {
        return false;
    }
    fd = b->plane.fd[0];
    CHECK(r, b->plane.fourcc == fourcc, "fourcc %s",
          dmabuf_format_name(b->plane.fourcc, name));
    CHECK(r, b->plane.width == w && b->plane.height == h, "%ux%u",
          b->plane.width, b->plane.height);
    CHECK(r, b->plane.stride[0] == stride, "stride %u", b->plane.stride[0]);
    CHECK(r, b->plane.size == size, "size %" PRIu64, b->plane.size);
    CHECK(r, b->plane.modifier == 0, "modifier 0x%" PRIx64 " (linear)",
          b->plane.modifier);
    CHECK(r, b->plane.n_fds == 1 && b->plane.offset[0] == 0 && fd >= 0,
          "one fd (%d) at offset 0", fd);
    CHECK(r, lseek(fd, 0, SEEK_END) == (off_t)PAGE_ALIGN(size) ||
          lseek(fd, 0, SEEK_END) == (off_t)size,
          "dma-buf length %lld", (long long)lseek(fd, 0, SEEK_END));
    CHECK(r, fcntl(fd, F_GETFD) & FD_CLOEXEC, "dma-buf fd is close-on-exec");
    return true;
}

/* ------------------------------------------------------------------ */
/* pristine mbochs */

static bool dispi_write(Rig *r, unsigned int index, uint16_t val)
{
    return rig_dispi_write(&r->vfio, r->bar2_off, index, val) == 0;
}

static bool mbochs_set_mode(Rig *r, uint16_t w, uint16_t h, uint16_t virt_h,
                            uint16_t y_off)
{
    return rig_mbochs_set_mode(&r->vfio, r->bar2_off, w, h, virt_h,
                               y_off) == 0;
}

static uint32_t mbochs_pattern(uint64_t off)
{
    return 0x5a000000u ^ (uint32_t)(off >> 2);
}

static bool mbochs_open(Rig *r)
{
    Error *err = NULL;
    uint64_t size2, i;
    uint32_t *vram;
    bool ok;

    if (!open_engine(r)) {
        return false;
    }
    ok = rig_vfio_region(&r->vfio, VFIO_PCI_BAR0_REGION_INDEX, &r->bar0_off,
                         &r->bar0_size, &err) &&
         rig_vfio_region(&r->vfio, VFIO_PCI_BAR2_REGION_INDEX, &r->bar2_off,
                         &size2, &err);
    if (!CHECK(r, ok, "BAR0 and BAR2 regions: %s",
               ok ? "ok" : error_get_pretty(err))) {
        error_free(err);
        return false;
    }
    CHECK(r, r->bar0_size >= 640 * 960 * 4, "VRAM %" PRIu64 " KiB",
          r->bar0_size >> 10);
    r->vram = mmap(NULL, r->bar0_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                   r->vfio.device, r->bar0_off);
    if (!CHECK(r, r->vram != MAP_FAILED, "mmap BAR0 (VRAM)")) {
        r->vram = NULL;
        return false;
    }
    /* a known pattern in both 640x480 pages of the virtual screen */
    vram = r->vram;
    for (i = 0; i < 640 * 960; i++) {
        vram[i] = mbochs_pattern(i * 4);
    }
    CHECK(r, vram[640 * 480] == mbochs_pattern(640 * 480 * 4),
          "pattern in VRAM");
    CHECK(r, tick(r) == VFIO_DMABUF_EV_NONE && !primary(r),
          "display off: no scanout");
    return true;
}

static bool mbochs_first_scanout(Rig *r)
{
    unsigned int warns = shim_warn_count();
    unsigned int ev;

    CHECK(r, mbochs_set_mode(r, 640, 480, 960, 0),
          "mode 640x480x32, virtual 640x960");
    ev = tick_until(r, VFIO_DMABUF_EV_NEW_SCANOUT, 2000);
    CHECK(r, ev & VFIO_DMABUF_EV_NEW_SCANOUT, "events %s", ev_str(ev));
    /* the first query of a new mode fails with ENOMEM (an mbochs quirk) */
    CHECK(r, ev & VFIO_DMABUF_EV_RETRY, "a transient error first");
    CHECK(r, stats(r)->query_transient >= 1, "query_transient %" PRIu64,
          stats(r)->query_transient);
    CHECK(r, stats(r)->query_errors == 0, "no hard query error");
    CHECK(r, shim_warn_count() == warns, "no warning (%u)",
          shim_warn_count() - warns);
    if (!check_plane(r, primary(r), DRM_FORMAT_XRGB8888, 640, 480, 2560,
                     2560 * 480)) {
        return false;
    }
    CHECK(r, stats(r)->gets == 1 && stats(r)->fds_open == 1,
          "one GET, one fd");
    r->id[0] = primary_id(r);
    CHECK(r, tick(r) == VFIO_DMABUF_EV_SAME_BUFFER, "next tick: same buffer");
    return true;
}

static bool mbochs_page_flip(Rig *r)
{
    VFIODisplayDmabufStats s0 = *stats(r);
    unsigned int ev;

    CHECK(r, dispi_write(r, DISPI_Y_OFFSET, 480), "Y offset 480");
    ev = tick_until(r, VFIO_DMABUF_EV_NEW_SCANOUT, 2000);
    CHECK(r, ev & VFIO_DMABUF_EV_NEW_SCANOUT, "events %s", ev_str(ev));
    if (!check_plane(r, primary(r), DRM_FORMAT_XRGB8888, 640, 480, 2560,
                     2560 * 480)) {
        return false;
    }
    r->id[1] = primary_id(r);
    CHECK(r, r->id[1] != r->id[0], "new id %u (was %u)", r->id[1], r->id[0]);
    CHECK(r, stats(r)->flips_seen == s0.flips_seen + 1, "flips_seen %" PRIu64,
          stats(r)->flips_seen);
    CHECK(r, stats(r)->gets == s0.gets + 1, "one more GET");
    return true;
}

static bool mbochs_flip_back(Rig *r)
{
    VFIODisplayDmabufStats s0 = *stats(r);
    unsigned int ev;

    CHECK(r, dispi_write(r, DISPI_Y_OFFSET, 0), "Y offset 0");
    ev = tick_until(r, VFIO_DMABUF_EV_NEW_SCANOUT, 2000);
    CHECK(r, ev & VFIO_DMABUF_EV_NEW_SCANOUT, "events %s", ev_str(ev));
    CHECK(r, primary_id(r) == r->id[0], "old id %u again", primary_id(r));
    CHECK(r, stats(r)->cache_hits > s0.cache_hits &&
          stats(r)->cache_misses == s0.cache_misses, "a cache hit");
    CHECK(r, stats(r)->gets == s0.gets, "no new GET (gets %" PRIu64 ")",
          stats(r)->gets);
    CHECK(r, stats(r)->flips_seen == s0.flips_seen + 1, "flips_seen %" PRIu64,
          stats(r)->flips_seen);
    return primary(r) != NULL;
}

static bool mbochs_mode_change(Rig *r)
{
    VFIODisplayDmabufStats s0 = *stats(r);
    unsigned int ev;

    CHECK(r, mbochs_set_mode(r, 800, 600, 600, 0), "mode 800x600x32");
    ev = tick_until(r, VFIO_DMABUF_EV_NEW_SCANOUT, 2000);
    CHECK(r, ev & VFIO_DMABUF_EV_NEW_SCANOUT, "events %s", ev_str(ev));
    if (!check_plane(r, primary(r), DRM_FORMAT_XRGB8888, 800, 600, 3200,
                     3200 * 600)) {
        return false;
    }
    r->id[2] = primary_id(r);
    CHECK(r, r->id[2] != r->id[0] && r->id[2] != r->id[1], "new id %u",
          r->id[2]);
    CHECK(r, mbochs_set_mode(r, 640, 480, 960, 0), "mode 640x480x32 again");
    ev = tick_until(r, VFIO_DMABUF_EV_NEW_SCANOUT, 2000);
    CHECK(r, ev & VFIO_DMABUF_EV_NEW_SCANOUT, "events %s", ev_str(ev));
    CHECK(r, primary_id(r) == r->id[0], "old id %u is a hit", primary_id(r));
    CHECK(r, stats(r)->gets == s0.gets + 1, "only 800x600 needed a GET");
    CHECK(r, stats(r)->evictions == 0 &&
          vfio_display_dmabuf_cached(r->d) == 3, "3 cached, none evicted");
    return check_plane(r, primary(r), DRM_FORMAT_XRGB8888, 640, 480, 2560,
                       2560 * 480);
}

static bool mbochs_no_cursor(Rig *r)
{
    CHECK(r, tick(r) == VFIO_DMABUF_EV_SAME_BUFFER, "idle tick: same buffer");
    CHECK(r, vfio_display_dmabuf_cursor(r->d) == NULL &&
          vfio_display_dmabuf_cursor_pos(r->d) == NULL, "cursor stays NULL");
    CHECK(r, !(r->ev_seen & (VFIO_DMABUF_EV_CURSOR_NEW |
                             VFIO_DMABUF_EV_CURSOR_MOVED |
                             VFIO_DMABUF_EV_CURSOR_GONE)),
          "no cursor event in any tick");
    CHECK(r, stats(r)->cursor_changes == 0 && stats(r)->planes_refused == 0,
          "no cursor change, nothing refused");
    return true;
}

static bool mbochs_mmap_quirk(Rig *r)
{
    const VFIODmabufBuffer *b = primary(r);
    void *m;
    int fd;

    if (!CHECK(r, b != NULL, "a buffer on screen")) {
        return false;
    }
    fd = b->plane.fd[0];
    /* upstream exports the dma-buf O_RDONLY and needs VM_SHARED in mmap */
    CHECK(r, (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY,
          "dma-buf file is read-only");
    m = mmap(NULL, b->plane.size, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(r, m == MAP_FAILED, "mmap of the mbochs dma-buf fails (%s)",
          m == MAP_FAILED ? g_strerror(errno) : "it worked");
    if (m != MAP_FAILED) {
        printf("# mbochs dma-bufs can be mmapped now: update "
               "docs/test-vm.md and check the pattern here\n");
        munmap(m, b->plane.size);
    }
    return true;
}

static bool mbochs_scanout_gone(Rig *r)
{
    unsigned int ev;

    CHECK(r, dispi_write(r, DISPI_ENABLE, 0), "display disabled");
    ev = tick(r);
    CHECK(r, ev == VFIO_DMABUF_EV_SCANOUT_GONE, "events %s", ev_str(ev));
    CHECK(r, primary(r) == NULL, "no buffer on screen");
    CHECK(r, vfio_display_dmabuf_cached(r->d) == 3 &&
          stats(r)->fds_open == 3, "the 3 buffers stay cached");
    CHECK(r, tick(r) == VFIO_DMABUF_EV_NONE, "then quiet");
    return true;
}

static bool teardown(Rig *r)
{
    if (r->fds_before_open < 0) {
        return true; /* never opened */
    }
    vfio_display_dmabuf_free(r->d);
    r->d = NULL;
    if (r->vfio.device >= 0) {
        CHECK(r, count_open_fds() == r->fds_after_open,
              "engine freed: %d fds open, %d before", count_open_fds(),
              r->fds_after_open);
    }
    rig_close(r);
    CHECK(r, count_open_fds() == r->fds_before_open,
          "device closed: %d fds open, %d before", count_open_fds(),
          r->fds_before_open);
    return true;
}

static const RigCase mbochs_cases[] = {
    { "open", mbochs_open },
    { "first-scanout", mbochs_first_scanout },
    { "page-flip", mbochs_page_flip },
    { "flip-back", mbochs_flip_back },
    { "mode-change", mbochs_mode_change },
    { "no-cursor", mbochs_no_cursor },
    { "dmabuf-mmap-quirk", mbochs_mmap_quirk },
    { "scanout-gone", mbochs_scanout_gone },
    { "teardown", teardown },
};

/* ------------------------------------------------------------------ */
/* vgpusim: sysfs */

static bool vgs_write(Rig *r, const char *attr, const char *val)
{
    int ret = rig_vgs_write(r->uuid, attr, val);

    if (ret < 0) {
        CHECK(r, false, "write '%s' to %s: %s", val, attr, g_strerror(-ret));
        return false;
    }
    return true;
}

/* @attr's text; "" if it cannot be read (a failed check) */
static char *vgs_read(Rig *r, const char *attr)
{
    char *text;
    int ret = rig_vgs_read(r->uuid, attr, &text);

    if (ret < 0) {
        CHECK(r, false, "read %s: %s", attr, g_strerror(-ret));
        return g_strdup("");
    }
    return text;
}

static int64_t vgs_kv(Rig *r, const char *attr, const char *key)
{
    g_autofree char *text = vgs_read(r, attr);

    return rig_kv(text, key);
}

/*
 * Pauses the built-in guest. A frame it was drawing may still flip, so the
 * engine ticks for a few frame times before the caller goes on.
 */
static void vgs_pause(Rig *r)
{
    vgs_write(r, "pause", "1");
    tick_until(r, 0, 3 * 1000 / FLIP_HZ);
}

static bool vgs_step(Rig *r, unsigned int n)
{
    g_autofree char *v = g_strdup_printf("%u", n);

    return vgs_write(r, "step", v);
}

/* The device as referee: its counters agree with the engine's. */
static void vgs_check_counters(Rig *r)
{
    g_autofree char *st = vgs_read(r, "stats");
    const VFIODisplayDmabufStats *s = stats(r);

    CHECK(r, rig_kv(st, "queries") == (int64_t)s->queries,
          "device queries %" PRId64 " = engine queries %" PRIu64,
          rig_kv(st, "queries"), s->queries);
    CHECK(r, rig_kv(st, "exports") == (int64_t)(s->gets - s->get_errors) &&
          rig_kv(st, "export_errors") == (int64_t)s->get_errors,
          "device exports %" PRId64 "+%" PRId64 " = engine gets %" PRIu64
          " (%" PRIu64 " failed)", rig_kv(st, "exports"),
          rig_kv(st, "export_errors"), s->gets, s->get_errors);
    CHECK(r, rig_kv(st, "live_dmabufs") == (int64_t)s->fds_open,
          "device live_dmabufs %" PRId64 " = engine fds_open %" PRIu64,
          rig_kv(st, "live_dmabufs"), s->fds_open);
}

/* ------------------------------------------------------------------ */
/* vgpusim: pixels through the dma-buf */

typedef struct Mapping {
    const uint8_t *px;
    size_t len;
    int fd;
    uint32_t fourcc, stride, cpp;
} Mapping;

/* mmap @b's dma-buf read-only and open a CPU access window on it */
static bool map_begin(Mapping *m, const VFIODmabufBuffer *b)
{
    struct dma_buf_sync sync = {
        .flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ,
    };
    void *p;

    memset(m, 0, sizeof(*m));
    if (!b) {
        return false;
    }
    p = mmap(NULL, b->plane.size, PROT_READ, MAP_SHARED, b->plane.fd[0], 0);
    if (p == MAP_FAILED) {
        return false;
    }
    m->px = p;
    m->len = b->plane.size;
    m->fd = b->plane.fd[0];
    m->fourcc = b->plane.fourcc;
    m->stride = b->plane.stride[0];
    m->cpp = dmabuf_format_cpp(b->plane.fourcc);
    if (ioctl(m->fd, DMA_BUF_IOCTL_SYNC, &sync) < 0) {
        munmap((void *)m->px, m->len);
        m->px = NULL;
        return false;
    }
    return true;
}

static bool map_end(Mapping *m)
{
    struct dma_buf_sync sync = {
        .flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ,
    };
    bool ok;

    if (!m->px) {
        return false;
    }
    ok = ioctl(m->fd, DMA_BUF_IOCTL_SYNC, &sync) == 0;
    munmap((void *)m->px, m->len);
    m->px = NULL;
    return ok;
}

static uint32_t pixel_at(const Mapping *m, uint32_t x, uint32_t y)
{
    const uint8_t *p = m->px + (size_t)y * m->stride + (size_t)x * m->cpp;

    if (m->cpp == 2) {
        return p[0] | p[1] << 8;
    }
    return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

/* the frame number of docs/vgpusim.md; -1 if torn or undecodable */
static int64_t frame_of(const Mapping *m)
{
    return rig_vgs_frame(m->px, m->fourcc);
}

/*
 * The frame in @b's pixels, read through its dma-buf; a torn read (front
 * buffer being redrawn) is retried. -1: never decoded, -2: cannot map.
 */
static int64_t buffer_frame(const VFIODmabufBuffer *b)
{
    int64_t f = -1;
    Mapping m;
    int tries;

    for (tries = 0; tries < 5 && f < 0; tries++) {
        if (!map_begin(&m, b)) {
            return -2;
        }
        f = frame_of(&m);
        if (!map_end(&m)) {
            return -2;
        }
        if (f < 0) {
            g_usleep(1000);
        }
    }
    return f;
}

static int64_t primary_frame(Rig *r)
{
    return buffer_frame(primary(r));
}

/* ------------------------------------------------------------------ */
/* vgpusim scenarios */

static bool vgs_open(Rig *r)
{
    bool ok;

    /* a paused, deterministic 640x480 display; counters from zero */
    ok = vgs_write(r, "pause", "1") && vgs_write(r, "cursor", "off") &&
         vgs_write(r, "front_buffer", "0") && vgs_write(r, "nbufs", "3") &&
         vgs_write(r, "flip_hz", G_STRINGIFY(FLIP_HZ)) &&
         vgs_write(r, "format", "XRGB8888") &&
         vgs_write(r, "mode", G_STRINGIFY(VGS_W) "x" G_STRINGIFY(VGS_H)) &&
         vgs_write(r, "fault", "none") && vgs_write(r, "reset_stats", "1");
    if (!CHECK(r, ok, "device set up: paused, %ux%u XRGB8888, 3 buffers",
               VGS_W, VGS_H)) {
        return false;
    }
    return open_engine(r);
}

static bool vgs_planes(Rig *r)
{
    VFIODisplayDmabufStats s0;
    unsigned int ev, i;

    ev = tick_until(r, VFIO_DMABUF_EV_NEW_SCANOUT, 1000);
    CHECK(r, ev == VFIO_DMABUF_EV_NEW_SCANOUT, "first tick: %s", ev_str(ev));
    if (!check_plane(r, primary(r), DRM_FORMAT_XRGB8888, VGS_W, VGS_H,
                     VGS_W * 4, PAGE_ALIGN(VGS_W * 4 * VGS_H))) {
        return false;
    }
    r->id[0] = primary_id(r);
    CHECK(r, r->id[0] == vgs_kv(r, "state", "primary_id"),
          "id %u is the device's primary_id", r->id[0]);
    CHECK(r, (fcntl(primary(r)->plane.fd[0], F_GETFL) & O_ACCMODE) == O_RDWR,
          "dma-buf file is read-write");
    CHECK(r, vfio_display_dmabuf_cursor(r->d) == NULL, "cursor off: none");
    vgs_check_counters(r);

    /* three buffers: 1, 2, 3, then 1 again from the cache */
    for (i = 1; i <= 3; i++) {
        s0 = *stats(r);
        vgs_step(r, 1);
        ev = tick(r);
        CHECK(r, ev == VFIO_DMABUF_EV_NEW_SCANOUT, "flip %u: %s", i,
              ev_str(ev));
        CHECK(r, stats(r)->flips_seen == s0.flips_seen + 1,
              "flips_seen %" PRIu64, stats(r)->flips_seen);
        if (i < 3) {
            r->id[i] = primary_id(r);
            CHECK(r, r->id[i] != r->id[i - 1] && r->id[i] != r->id[0],
                  "new id %u", r->id[i]);
            CHECK(r, stats(r)->gets == s0.gets + 1, "one GET");
        } else {
            CHECK(r, primary_id(r) == r->id[0], "id %u again", r->id[0]);
            CHECK(r, stats(r)->gets == s0.gets &&
                  stats(r)->cache_hits == s0.cache_hits + 1,
                  "a cache hit, no GET");
        }
    }
    CHECK(r, tick(r) == VFIO_DMABUF_EV_SAME_BUFFER, "paused: same buffer");
    CHECK(r, vfio_display_dmabuf_cached(r->d) == 3, "3 buffers cached");
    vgs_check_counters(r);
    return primary(r) != NULL;
}

static bool vgs_pixels(Rig *r)
{
    int64_t f, want;
    Mapping m;
    unsigned int i;

    for (i = 0; i < 3; i++) {
        if (i) {
            vgs_step(r, 1);
            CHECK(r, tick(r) & VFIO_DMABUF_EV_NEW_SCANOUT, "step %u", i);
        }
        want = vgs_kv(r, "state", "frame");
        if (!CHECK(r, map_begin(&m, primary(r)),
                   "mmap + DMA_BUF_SYNC_START of buffer %u",
                   primary_id(r))) {
            return false;
        }
        f = frame_of(&m);
        CHECK(r, f == want, "pixels carry frame %" PRId64 " (device: %"
              PRId64 ")", f, want);
        CHECK(r, pixel_at(&m, VGS_W / 16, VGS_H / 2) == 0xffffffff &&
              pixel_at(&m, VGS_W * 5 / 8 + VGS_W / 16, VGS_H / 2) ==
              0xffff0000, "white and red bars");
        CHECK(r, map_end(&m), "DMA_BUF_SYNC_END");
    }
    vgs_check_counters(r);
    return true;
}

static bool vgs_flipping(Rig *r)
{
    g_autofree char *st0 = NULL;
    g_autofree char *st1 = NULL;
    VFIODisplayDmabufStats s0;
    int64_t end, f, last = -1, made, seen, missed, eseen;
    unsigned int ev, reads = 0, decoded = 0, backwards = 0;

    vgs_write(r, "pause", "0");
    /* let the engine learn the flip rate first */
    tick_until(r, 0, 300);
    s0 = *stats(r);
    st0 = vgs_read(r, "stats");
    end = now_ms() + FLIP_WINDOW_MS;
    while (now_ms() < end) {
        ev = tick(r);
        if (ev & VFIO_DMABUF_EV_NEW_SCANOUT) {
            reads++;
            f = primary_frame(r);
            if (f >= 0) {
                decoded++;
                backwards += f < last;
                last = f;
            }
        }
        g_usleep(vfio_display_dmabuf_next_interval_ms(r->d) * 1000);
    }
    st1 = vgs_read(r, "stats");
    made = rig_kv(st1, "flips_made") - rig_kv(st0, "flips_made");
    seen = rig_kv(st1, "flips_seen") - rig_kv(st0, "flips_seen");
    missed = rig_kv(st1, "flips_missed") - rig_kv(st0, "flips_missed");
    eseen = stats(r)->flips_seen - s0.flips_seen;
    printf("# %d ms at %d Hz: device made %" PRId64 " flips, saw %" PRId64
           ", missed %" PRId64 ", dropped %" PRId64 " ticks, latency p50 %"
           PRId64 " us p99 %" PRId64 " us; engine saw %" PRId64 " in %"
           PRIu64 " ticks, interval now %u ms\n",
           FLIP_WINDOW_MS, FLIP_HZ, made, seen, missed,
           rig_kv(st1, "ticks_dropped") - rig_kv(st0, "ticks_dropped"),
           rig_kv(st1, "latency_p50_us"), rig_kv(st1, "latency_p99_us"), eseen,
           stats(r)->ticks - s0.ticks,
           vfio_display_dmabuf_next_interval_ms(r->d));
    CHECK(r, made >= FLIP_HZ * FLIP_WINDOW_MS / 1000 / 2,
          "the device flipped (%" PRId64 ")", made);
    CHECK(r, eseen * 10 >= made * 9, "engine saw %" PRId64 " of %" PRId64
          " flips (>= 90%%)", eseen, made);
    CHECK(r, eseen >= seen - 1 && eseen <= seen + 1,
          "engine flips_seen %" PRId64 " = device flips_seen %" PRId64,
          eseen, seen);
    CHECK(r, stats(r)->gets == s0.gets, "no GET: 3 buffers, all cached");
    CHECK(r, decoded * 10 >= reads * 9 && decoded > 0,
          "frame decoded in %u of %u new scanouts", decoded, reads);
    CHECK(r, backwards == 0, "frames never go back (last %" PRId64 ")",
          last);
    CHECK(r, vfio_display_dmabuf_next_interval_ms(r->d) <=
          1000 / FLIP_HZ, "engine polls faster than the flips");
    return primary(r) != NULL;
}

static bool vgs_front_buffer(Rig *r)
{
    VFIODisplayDmabufStats s0;
    int64_t f0, f1, end;
    unsigned int ev, ticks = 0, same = 0, other = 0;
    uint32_t id;

    vgs_write(r, "front_buffer", "1");
    /* a frame being drawn when the mode changed may still flip */
    tick_until(r, 0, 100);
    s0 = *stats(r);
    id = primary_id(r);
    f0 = primary_frame(r);
    end = now_ms() + 500;
    while (now_ms() < end) {
        g_usleep(vfio_display_dmabuf_next_interval_ms(r->d) * 1000);
        ev = tick(r);
        ticks++;
        if (ev == VFIO_DMABUF_EV_SAME_BUFFER) {
            same++;
        } else {
            other++;
            printf("# front-buffer tick: %s\n", ev_str(ev));
        }
    }
    f1 = primary_frame(r);
    CHECK(r, same == ticks && other == 0, "%u of %u ticks SAME_BUFFER",
          same, ticks);
    CHECK(r, primary_id(r) == id, "id %u throughout", id);
    CHECK(r, stats(r)->gets == s0.gets && stats(r)->flips_seen ==
          s0.flips_seen, "no GET, no flip");
    CHECK(r, f0 >= 0 && f1 > f0, "pixels advance from frame %" PRId64
          " to %" PRId64 " without a new GET", f0, f1);
    vgs_write(r, "front_buffer", "0");
    vgs_pause(r);
    return primary(r) != NULL;
}

static bool vgs_cursor(Rig *r)
{
    const VFIODmabufBuffer *c;
    const VFIODmabufCursor *pos;
    VFIODisplayDmabufStats s0;
    unsigned int ev, moves = 0;
    int64_t end;
    uint32_t cid;
    Mapping m;

    vgs_write(r, "cursor", "on");
    vgs_write(r, "cursor_pos", "100 50");
    ev = tick_both(r);
    CHECK(r, ev & VFIO_DMABUF_EV_CURSOR_NEW, "cursor on: %s", ev_str(ev));
    c = vfio_display_dmabuf_cursor(r->d);
    pos = vfio_display_dmabuf_cursor_pos(r->d);
    if (!check_plane(r, c, DRM_FORMAT_ARGB8888, 64, 64, 256, 64 * 64 * 4) ||
        !CHECK(r, pos != NULL, "cursor position known")) {
        return false;
    }
    CHECK(r, c->plane_type == PLANE_CURSOR, "cursor plane type");
    cid = c->id;
    CHECK(r, cid != primary_id(r), "own id %u", cid);
    CHECK(r, pos->x == 100 && pos->y == 50, "at %d,%d", pos->x, pos->y);
    CHECK(r, pos->hot_x == 32 && pos->hot_y == 32, "hotspot %u,%u",
          pos->hot_x, pos->hot_y);
    if (CHECK(r, map_begin(&m, c), "map the cursor")) {
        CHECK(r, pixel_at(&m, 32, 32) == 0xffff0000 &&
              pixel_at(&m, 0, 0) == 0 && pixel_at(&m, 32 + 24, 32) ==
              0xffffffff, "cursor image: red centre, clear corner, "
              "white ring");
        map_end(&m);
    }
    s0 = *stats(r);

    vgs_write(r, "cursor_pos", "120 70");
    ev = tick_both(r);
    CHECK(r, ev & VFIO_DMABUF_EV_CURSOR_MOVED &&
          !(ev & VFIO_DMABUF_EV_CURSOR_NEW), "moved: %s", ev_str(ev));
    CHECK(r, pos->x == 120 && pos->y == 70, "at %d,%d", pos->x, pos->y);
    /* a new hotspot defines the cursor anew (no new GET) */
    vgs_write(r, "cursor_hot", "5 7");
    ev = tick_both(r);
    CHECK(r, ev & VFIO_DMABUF_EV_CURSOR_NEW, "hotspot changed: %s",
          ev_str(ev));
    CHECK(r, pos->hot_x == 5 && pos->hot_y == 7, "hotspot %u,%u",
          pos->hot_x, pos->hot_y);
    vgs_write(r, "cursor_hot", "none");
    ev = tick_both(r);
    CHECK(r, ev & VFIO_DMABUF_EV_CURSOR_NEW &&
          pos->hot_x == VFIO_DMABUF_HOTSPOT_UNKNOWN &&
          pos->hot_y == VFIO_DMABUF_HOTSPOT_UNKNOWN, "hotspot unknown");
    vgs_write(r, "cursor_hot", "32 32");
    tick_both(r);

    /* the device moves the cursor by itself while its guest runs */
    vgs_write(r, "cursor", "auto");
    vgs_write(r, "pause", "0");
    end = now_ms() + 300;
    while (now_ms() < end) {
        ev = tick(r);
        moves += !!(ev & VFIO_DMABUF_EV_CURSOR_MOVED);
        g_usleep(vfio_display_dmabuf_next_interval_ms(r->d) * 1000);
    }
    vgs_pause(r);
    CHECK(r, moves >= 3, "auto cursor: %u moves in 300 ms", moves);
    c = vfio_display_dmabuf_cursor(r->d);
    CHECK(r, c && c->id == cid, "same cursor buffer %u", cid);
    CHECK(r, stats(r)->gets == s0.gets && stats(r)->cursor_changes ==
          s0.cursor_changes + 3, "no re-GET; cursor changes: the three "
          "hotspots only (%" PRIu64 " moves counted)", stats(r)->cursor_moves);

    vgs_write(r, "cursor", "off");
    ev = tick_both(r);
    CHECK(r, ev & VFIO_DMABUF_EV_CURSOR_GONE, "cursor off: %s", ev_str(ev));
    CHECK(r, vfio_display_dmabuf_cursor(r->d) == NULL, "no cursor");
    vgs_check_counters(r);
    return primary(r) != NULL;
}

static bool vgs_transient(Rig *r)
{
    unsigned int warns = shim_warn_count();
    VFIODisplayDmabufStats s0 = *stats(r);
    uint32_t id = primary_id(r);
    unsigned int ev;

    /* both queries of a tick fail */
    vgs_write(r, "fault", "eagain 2");
    ev = tick_both(r);
    CHECK(r, ev == VFIO_DMABUF_EV_RETRY, "eagain: %s", ev_str(ev));
    CHECK(r, stats(r)->query_transient == s0.query_transient + 2,
          "query_transient +2");
    CHECK(r, vfio_display_dmabuf_next_interval_ms(r->d) ==
          VFIO_DMABUF_REFRESH_MIN_MS, "retry soon (%u ms)",
          vfio_display_dmabuf_next_interval_ms(r->d));
    CHECK(r, primary_id(r) == id, "frame kept");
    ev = tick_both(r);
    CHECK(r, ev == VFIO_DMABUF_EV_SAME_BUFFER, "recovered: %s", ev_str(ev));

    vgs_write(r, "fault", "enomem 1");
    ev = tick_both(r);
    CHECK(r, ev == VFIO_DMABUF_EV_RETRY, "enomem: %s", ev_str(ev));
    ev = tick_both(r);
    CHECK(r, ev == VFIO_DMABUF_EV_SAME_BUFFER, "recovered: %s", ev_str(ev));

    /* a GET that fails transiently: a new mode needs one */
    vgs_write(r, "fault", "get_eagain 1");
    vgs_write(r, "mode", "704x528");
    ev = tick(r);
    CHECK(r, ev == VFIO_DMABUF_EV_RETRY, "get_eagain: %s", ev_str(ev));
    CHECK(r, stats(r)->get_errors == s0.get_errors + 1, "get_errors +1");
    CHECK(r, primary_id(r) == id, "old frame kept");
    ev = tick(r);
    CHECK(r, ev == VFIO_DMABUF_EV_NEW_SCANOUT, "recovered: %s", ev_str(ev));
    check_plane(r, primary(r), DRM_FORMAT_XRGB8888, 704, 528, 704 * 4,
                PAGE_ALIGN(704 * 4 * 528));
    CHECK(r, primary_frame(r) == vgs_kv(r, "state", "frame"),
          "pixels carry the device's frame");
    CHECK(r, shim_warn_count() == warns, "no warning for transient errors");
    vgs_check_counters(r);
    return primary(r) != NULL;
}

static bool vgs_hard_errors(Rig *r)
{
    unsigned int warns = shim_warn_count();
    VFIODisplayDmabufStats s0 = *stats(r);
    uint32_t id = primary_id(r);
    unsigned int ev;

    vgs_write(r, "fault", "einval 1");
    ev = tick(r);
    CHECK(r, ev == VFIO_DMABUF_EV_REFUSED, "query einval: %s", ev_str(ev));
    CHECK(r, stats(r)->query_errors == s0.query_errors + 1,
          "query_errors +1");
    CHECK(r, primary_id(r) == id, "frame kept");
    ev = tick(r);
    CHECK(r, ev == VFIO_DMABUF_EV_SAME_BUFFER, "recovered: %s", ev_str(ev));

    vgs_write(r, "fault", "get_einval 1");
    vgs_write(r, "mode", "672x504");
    ev = tick(r);
    CHECK(r, ev == VFIO_DMABUF_EV_REFUSED, "get einval: %s", ev_str(ev));
    CHECK(r, primary_id(r) == id, "frame kept");
    ev = tick(r);
    CHECK(r, ev == VFIO_DMABUF_EV_NEW_SCANOUT, "recovered: %s", ev_str(ev));
    check_plane(r, primary(r), DRM_FORMAT_XRGB8888, 672, 504, 672 * 4,
                PAGE_ALIGN(672 * 4 * 504));
    CHECK(r, shim_warn_count() == warns + 2, "one warning each (%u)",
          shim_warn_count() - warns);
    vgs_check_counters(r);
    return primary(r) != NULL;
}

static bool vgs_hostile(Rig *r)
{
    static const struct {
        const char *kind;
        VFIODmabufPlaneCheck why;
    } hostile[] = {
        { "stride_short", VFIO_DMABUF_PLANE_BAD_STRIDE },
        { "size_short", VFIO_DMABUF_PLANE_BAD_LENGTH },
        { "zero_width", VFIO_DMABUF_PLANE_BAD_SIZE },
        { "zero_height", VFIO_DMABUF_PLANE_BAD_SIZE },
        { "huge_width", VFIO_DMABUF_PLANE_BAD_SIZE },
        { "bad_fourcc", VFIO_DMABUF_PLANE_BAD_FOURCC },
        /* width 32768 is refused before stride * height can overflow */
        { "overflow", VFIO_DMABUF_PLANE_BAD_SIZE },
    };
    VFIODisplayDmabufStats s0;
    g_autofree char *cmd = NULL;
    const VFIODmabufBuffer *b;
    unsigned int ev, i;
    uint32_t id, cid;
    int fd;

    vgs_write(r, "mode", G_STRINGIFY(VGS_W) "x" G_STRINGIFY(VGS_H));
    tick(r);
    b = primary(r);
    if (!CHECK(r, b && b->plane.width == VGS_W, "back to %ux%u", VGS_W,
               VGS_H)) {
        return false;
    }
    id = b->id;
    fd = b->plane.fd[0];
    for (i = 0; i < G_N_ELEMENTS(hostile); i++) {
        s0 = *stats(r);
        g_free(cmd);
        cmd = g_strdup_printf("plane %s", hostile[i].kind);
        vgs_write(r, "fault", cmd);
        ev = tick(r);
        ev |= tick(r);
        CHECK(r, ev == VFIO_DMABUF_EV_REFUSED, "%s: %s", hostile[i].kind,
              ev_str(ev));
        CHECK(r, stats(r)->refused_by[hostile[i].why] ==
              s0.refused_by[hostile[i].why] + 2 &&
              stats(r)->planes_refused == s0.planes_refused + 2,
              "%s: refused as '%s'", hostile[i].kind,
              vfio_display_dmabuf_check_str(hostile[i].why));
        b = primary(r);
        CHECK(r, b && b->id == id && b->plane.fd[0] == fd &&
              stats(r)->gets == s0.gets, "%s: last good frame kept, no GET",
              hostile[i].kind);
        vgs_write(r, "fault", "plane none");
        ev = tick(r);
        CHECK(r, ev == VFIO_DMABUF_EV_SAME_BUFFER && primary_id(r) == id,
              "%s: back to id %u", hostile[i].kind, id);
    }

    vgs_write(r, "cursor", "on");
    ev = tick_both(r);
    CHECK(r, ev & VFIO_DMABUF_EV_CURSOR_NEW, "cursor on: %s", ev_str(ev));
    cid = vfio_display_dmabuf_cursor(r->d) ?
          vfio_display_dmabuf_cursor(r->d)->id : 0;
    s0 = *stats(r);
    vgs_write(r, "fault", "plane bad_hotspot");
    ev = tick_both(r);
    CHECK(r, ev == (VFIO_DMABUF_EV_SAME_BUFFER | VFIO_DMABUF_EV_REFUSED),
          "bad_hotspot: %s", ev_str(ev));
    CHECK(r, stats(r)->refused_by[VFIO_DMABUF_PLANE_BAD_HOTSPOT] ==
          s0.refused_by[VFIO_DMABUF_PLANE_BAD_HOTSPOT] + 1,
          "bad_hotspot: refused as '%s'",
          vfio_display_dmabuf_check_str(VFIO_DMABUF_PLANE_BAD_HOTSPOT));
    CHECK(r, cid && vfio_display_dmabuf_cursor(r->d) &&
          vfio_display_dmabuf_cursor(r->d)->id == cid &&
          vfio_display_dmabuf_cursor_pos(r->d)->hot_x == 32,
          "bad_hotspot: cursor %u and hotspot kept", cid);
    vgs_write(r, "fault", "plane none");
    ev = tick(r);
    CHECK(r, ev == VFIO_DMABUF_EV_SAME_BUFFER, "recovered: %s", ev_str(ev));
    vgs_write(r, "cursor", "off");
    tick(r);
    vgs_check_counters(r);
    return primary(r) != NULL;
}

static bool vgs_reuse_id(Rig *r)
{
    VFIODisplayDmabufStats s0 = *stats(r);
    uint32_t id = primary_id(r);
    unsigned int ev;

    vgs_write(r, "fault", "reuse_id");
    vgs_write(r, "mode", "800x600");
    ev = tick(r);
    CHECK(r, ev == VFIO_DMABUF_EV_NEW_SCANOUT, "800x600 under the old id: %s",
          ev_str(ev));
    CHECK(r, primary_id(r) == id, "id %u reused", primary_id(r));
    CHECK(r, stats(r)->geometry_changes == s0.geometry_changes + 1,
          "geometry_changes +1");
    CHECK(r, stats(r)->gets == s0.gets + 1, "a new GET for the new geometry");
    if (!check_plane(r, primary(r), DRM_FORMAT_XRGB8888, 800, 600, 3200,
                     PAGE_ALIGN(3200 * 600))) {
        return false;
    }
    CHECK(r, primary_frame(r) == vgs_kv(r, "state", "frame"),
          "pixels of the new buffer");
    vgs_write(r, "mode", G_STRINGIFY(VGS_W) "x" G_STRINGIFY(VGS_H));
    ev = tick(r);
    CHECK(r, (ev & VFIO_DMABUF_EV_NEW_SCANOUT) && primary_id(r) != id,
          "%ux%u again: a new id %u (%s)", VGS_W, VGS_H, primary_id(r),
          ev_str(ev));
    vgs_check_counters(r);
    return primary(r) != NULL;
}

static bool vgs_reset(Rig *r)
{
    VFIODisplayDmabufStats s0;
    int64_t before, after;
    unsigned int ev;
    uint32_t id;

    /* the device resets under the engine while its guest flips */
    vgs_write(r, "pause", "0");
    tick_until(r, 0, 200);
    before = primary_frame(r);
    s0 = *stats(r);
    vgs_write(r, "fault", "reset");
    ev = tick_until(r, VFIO_DMABUF_EV_NEW_SCANOUT, 1000);
    CHECK(r, ev & VFIO_DMABUF_EV_NEW_SCANOUT, "after the reset: %s",
          ev_str(ev));
    CHECK(r, vgs_kv(r, "stats", "resets") == 1, "device reset once");
    CHECK(r, stats(r)->gets > s0.gets, "new ids fetched");
    after = primary_frame(r);
    CHECK(r, after >= 0 && after < before, "frame %" PRId64 " after reset, %"
          PRId64 " before", after, before);
    vgs_pause(r);

    /* QEMU's path: VFIO_DEVICE_RESET, then the engine drops everything */
    CHECK(r, ioctl(r->vfio.device, VFIO_DEVICE_RESET) == 0,
          "VFIO_DEVICE_RESET");
    vfio_display_dmabuf_reset(r->d);
    CHECK(r, vfio_display_dmabuf_cached(r->d) == 0 &&
          stats(r)->fds_open == 0 && !primary(r), "engine reset: empty");
    CHECK(r, count_open_fds() == r->fds_after_open, "no dma-buf fd open");
    CHECK(r, vgs_kv(r, "stats", "live_dmabufs") == 0, "device: no dma-buf");
    ev = tick(r);
    CHECK(r, ev == VFIO_DMABUF_EV_NEW_SCANOUT, "recovered: %s", ev_str(ev));
    id = primary_id(r);
    CHECK(r, id && id == vgs_kv(r, "state", "primary_id"), "id %u", id);
    CHECK(r, primary_frame(r) == 0, "frame 0 after the reset");
    vgs_check_counters(r);
    return primary(r) != NULL;
}

static bool vgs_formats(Rig *r)
{
    static const struct {
        const char *name;
        uint32_t fourcc;
        unsigned int cpp;
        uint32_t white, red;
    } fmt[] = {
        /* XRGB8888 last: it is the current format, a no-op first */
        { "ARGB8888", DRM_FORMAT_ARGB8888, 4, 0xffffffff, 0xffff0000 },
        { "XBGR8888", DRM_FORMAT_XBGR8888, 4, 0xffffffff, 0xff0000ff },
        { "RGB565", DRM_FORMAT_RGB565, 2, 0xffff, 0xf800 },
        { "XRGB8888", DRM_FORMAT_XRGB8888, 4, 0xffffffff, 0xffff0000 },
    };
    unsigned int ev, i;
    int64_t f, want;
    Mapping m;

    for (i = 0; i < G_N_ELEMENTS(fmt); i++) {
        vgs_write(r, "format", fmt[i].name);
        ev = tick(r);
        CHECK(r, ev == VFIO_DMABUF_EV_NEW_SCANOUT, "%s: %s", fmt[i].name,
              ev_str(ev));
        if (!check_plane(r, primary(r), fmt[i].fourcc, VGS_W, VGS_H,
                         VGS_W * fmt[i].cpp,
                         PAGE_ALIGN(VGS_W * fmt[i].cpp * VGS_H))) {
            return false;
        }
        want = vgs_kv(r, "state", "frame");
        if (!CHECK(r, map_begin(&m, primary(r)), "%s: map", fmt[i].name)) {
            return false;
        }
        f = frame_of(&m);
        CHECK(r, f == want, "%s: frame %" PRId64 " decoded", fmt[i].name, f);
        CHECK(r, pixel_at(&m, VGS_W / 16, VGS_H / 2) == fmt[i].white,
              "%s: white bar 0x%x", fmt[i].name,
              pixel_at(&m, VGS_W / 16, VGS_H / 2));
        CHECK(r, pixel_at(&m, VGS_W * 5 / 8 + VGS_W / 16, VGS_H / 2) ==
              fmt[i].red, "%s: red bar 0x%x", fmt[i].name,
              pixel_at(&m, VGS_W * 5 / 8 + VGS_W / 16, VGS_H / 2));
        map_end(&m);
    }
    vgs_check_counters(r);
    return primary(r) != NULL;
}

static bool vgs_teardown(Rig *r)
{
    if (r->fds_before_open < 0) {
        return true;
    }
    teardown(r);
    CHECK(r, vgs_kv(r, "stats", "live_dmabufs") == 0,
          "device: live_dmabufs 0");
    return true;
}

static const RigCase vgpusim_cases[] = {
    { "open", vgs_open },
    { "planes", vgs_planes },
    { "pixels", vgs_pixels },
    { "flipping", vgs_flipping },
    { "front-buffer", vgs_front_buffer },
    { "cursor", vgs_cursor },
    { "transient-errors", vgs_transient },
    { "hard-errors", vgs_hard_errors },
    { "hostile-planes", vgs_hostile },
    { "reuse-id", vgs_reuse_id },
    { "reset", vgs_reset },
    { "formats", vgs_formats },
    { "teardown", vgs_teardown },
};

/* ------------------------------------------------------------------ */

/* Runs @cases in order; the last one (teardown) runs in any case. */
static void run(Rig *r, const RigCase *cases, unsigned int n)
{
    unsigned int i;
    bool ok = true;

    for (i = 0; i < n - 1 && ok; i++) {
        sub_begin(r, cases[i].name);
        ok = cases[i].run(r);
        if (!ok) {
            CHECK(r, false, "cannot go on");
        }
        sub_end(r);
    }
    sub_begin(r, cases[n - 1].name);
    cases[n - 1].run(r);
    sub_end(r);
}

int main(int argc, char **argv)
{
    Rig r = {
        .vfio = { .container = -1, .group = -1, .device = -1 },
        .fds_before_open = -1, .fds_after_open = -1,
    };

    if (argc != 3 || (strcmp(argv[1], "mbochs") &&
                      strcmp(argv[1], "vgpusim"))) {
        fprintf(stderr, "usage: engine-rig-test mbochs|vgpusim UUID\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    g_setenv("SHIM_VERBOSE", "1", false); /* warnings go to the log */
    r.kind = argv[1];
    r.uuid = argv[2];
    printf("# engine-rig-test %s %s\n", r.kind, r.uuid);
    if (!strcmp(r.kind, "mbochs")) {
        run(&r, mbochs_cases, G_N_ELEMENTS(mbochs_cases));
    } else {
        run(&r, vgpusim_cases, G_N_ELEMENTS(vgpusim_cases));
    }
    printf("1..%u\n", r.nchecks);
    printf("# engine-rig-test %s: %u checks, %u failed, %u sub-cases "
           "failed\n", r.kind, r.nchecks, r.nfailed, r.nsubs_failed);
    return r.nfailed ? 1 : 0;
}
