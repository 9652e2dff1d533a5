/*
 * vgpusim selftest: drives one vgpusim mdev through the VFIO ABI and its
 * sysfs controls and checks what docs/vgpusim.md promises. Runs in the rig
 * VM (static binary, root):
 *
 *   tests/rig/run-vm.sh --ko vgpusim.ko --bin selftest --mdev vgpusim \
 *       vgpusim -- selftest @MDEV:vgpusim@
 *
 * Exit 0 and "selftest: N passed, 0 failed" on success.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/dma-buf.h>
#include <linux/vfio.h>

/*
 * tests/shim's stand-in: the kernel's or libdrm's drm_fourcc.h, which also
 * brings drm.h (struct drm_prime_handle, DRM_IOCTL_PRIME_FD_TO_HANDLE)
 */
#include "standard-headers/drm/drm_fourcc.h"

/*
 * The display event as the last version of GVT-g's proposal has it ("Deliver
 * vGPU display vblank/refresh event to userspace", v6, Tina Zhang, 24 Sep
 * 2019, kvm list), written from the series' text: not from QEMU's header,
 * not from vgpusim.c, so that the numbers below check both.
 * Patch 1/6: "__u32 cap_offset; Offset within info struct of first cap"
 * after count; VFIO_IRQ_INFO_FLAG_CAPS (1 << 4); VFIO_IRQ_INFO_CAP_TYPE 1
 * with { header; __u32 type; __u32 subtype; }. Patch 2/6:
 * VFIO_IRQ_TYPE_GFX (1), VFIO_IRQ_SUBTYPE_GFX_DISPLAY_IRQ (1),
 * VFIO_IRQ_INFO_CAP_DISPLAY 2 with { header; __u64 cur_event_val; __u64
 * pri_event_val; }. Patches 3/6, 4/6 (kvmgt): flags MASKABLE | EVENTFD,
 * count 1, cap version 1, DISPLAY_PRI_REFRESH_EVENT_VAL (1UL << 56),
 * DISPLAY_CUR_REFRESH_EVENT_VAL (1UL << 48), caps at sizeof(info).
 */
#define V6_IRQ_INFO_FLAG_CAPS           (1 << 4)
#define V6_IRQ_INFO_CAP_TYPE            1
#define V6_IRQ_INFO_CAP_DISPLAY         2
#define V6_IRQ_TYPE_GFX                 1
#define V6_IRQ_SUBTYPE_GFX_DISPLAY_IRQ  1
#define V6_PRI                          (1ULL << 56)
#define V6_CUR                          (1ULL << 48)

struct v6_irq_info {
    uint32_t argsz;
    uint32_t flags;
    uint32_t index;
    uint32_t count;
    uint32_t cap_offset;
};

struct v6_cap_header {
    uint16_t id;
    uint16_t version;
    uint32_t next;
};

struct v6_cap_type {
    struct v6_cap_header header;
    uint32_t type;
    uint32_t subtype;
};

struct v6_cap_display {
    struct v6_cap_header header;
    uint64_t cur_event_val;
    uint64_t pri_event_val;
};

_Static_assert(sizeof(struct v6_irq_info) == 20, "v6 vfio_irq_info: 20");
_Static_assert(offsetof(struct v6_irq_info, cap_offset) == 16, "cap_offset");
_Static_assert(sizeof(struct v6_cap_header) == 8, "cap header: 8");
_Static_assert(sizeof(struct v6_cap_type) == 16, "irq cap type: 16");
_Static_assert(sizeof(struct v6_cap_display) == 24, "display cap: 24");
_Static_assert(offsetof(struct v6_cap_display, cur_event_val) == 8 &&
               offsetof(struct v6_cap_display, pri_event_val) == 16,
               "cur_event_val, then pri_event_val");

#define OFF(i) ((uint64_t)(i) << 40)
#define EDID_INDEX 9

static const char *uuid;
static int dev = -1;
static int npass, nfail;

static void check(int ok, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    printf("%s: ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (ok) {
        npass++;
    } else {
        nfail++;
    }
}

static void die(const char *what)
{
    printf("selftest: fatal: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void sysw(const char *attr, const char *val)
{
    char p[256];
    int fd;

    snprintf(p, sizeof(p), "/sys/bus/mdev/devices/%s/vgpusim/%s", uuid, attr);
    fd = open(p, O_WRONLY);
    if (fd < 0) {
        die(p);
    }
    if (write(fd, val, strlen(val)) < 0) {
        printf("selftest: write %s to %s: %s\n", val, attr, strerror(errno));
        nfail++;
    }
    close(fd);
}

static int sysw_err(const char *attr, const char *val)
{
    char p[256];
    int fd, r;

    snprintf(p, sizeof(p), "/sys/bus/mdev/devices/%s/vgpusim/%s", uuid, attr);
    fd = open(p, O_WRONLY);
    if (fd < 0) {
        die(p);
    }
    r = write(fd, val, strlen(val)) < 0 ? errno : 0;
    close(fd);
    return r;
}

static char *sysr(const char *attr)
{
    static char buf[8192];
    char p[256];
    ssize_t n;
    int fd;

    snprintf(p, sizeof(p), "/sys/bus/mdev/devices/%s/vgpusim/%s", uuid, attr);
    fd = open(p, O_RDONLY);
    if (fd < 0) {
        die(p);
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n < 0 ? 0 : n] = 0;
    return buf;
}

/* value of "key=" in a key=value attribute */
static long long kv(const char *attr, const char *key)
{
    char *s = sysr(attr), pat[128];
    char *p;

    snprintf(pat, sizeof(pat), "%s=", key);
    for (p = s; p; p = strchr(p, '\n')) {
        if (*p == '\n') {
            p++;
        }
        if (!strncmp(p, pat, strlen(pat))) {
            return strtoll(p + strlen(pat), NULL, 0);
        }
    }
    printf("selftest: no %s in %s\n", key, attr);
    return -1;
}

static int query(uint32_t type, struct vfio_device_gfx_plane_info *p)
{
    memset(p, 0, sizeof(*p));
    p->argsz = sizeof(*p);
    p->flags = VFIO_GFX_PLANE_TYPE_DMABUF;
    p->drm_plane_type = type;
    return ioctl(dev, VFIO_DEVICE_QUERY_GFX_PLANE, p) < 0 ? -errno : 0;
}

static int getbuf(uint32_t id)
{
    int fd = ioctl(dev, VFIO_DEVICE_GET_GFX_DMABUF, &id);

    return fd < 0 ? -errno : fd;
}

/*
 * The formats vgpusim draws (all that ui/dmabuf-plane.c accepts) and the
 * pixel values docs/vgpusim.md gives for them, written out here from DRM's
 * fourcc definitions (little endian; padding/alpha all ones; 8 bit v as
 * 10 bits is v << 2 | v >> 6) rather than computed like the module does.
 */
static const struct fmt {
    const char *name;
    uint32_t fourcc;
    int cpp;
    uint32_t white, black, red, gray;
    int gshift, gbits;    /* where the green channel is */
} fmts[] = {
    { "XRGB8888", DRM_FORMAT_XRGB8888, 4,
      0xffffffff, 0xff000000, 0xffff0000, 0xff808080, 8, 8 },
    { "ARGB8888", DRM_FORMAT_ARGB8888, 4,
      0xffffffff, 0xff000000, 0xffff0000, 0xff808080, 8, 8 },
    { "XBGR8888", DRM_FORMAT_XBGR8888, 4,
      0xffffffff, 0xff000000, 0xff0000ff, 0xff808080, 8, 8 },
    { "ABGR8888", DRM_FORMAT_ABGR8888, 4,
      0xffffffff, 0xff000000, 0xff0000ff, 0xff808080, 8, 8 },
    { "RGBX8888", DRM_FORMAT_RGBX8888, 4,
      0xffffffff, 0x000000ff, 0xff0000ff, 0x808080ff, 16, 8 },
    { "BGRX8888", DRM_FORMAT_BGRX8888, 4,
      0xffffffff, 0x000000ff, 0x0000ffff, 0x808080ff, 16, 8 },
    { "RGBA8888", DRM_FORMAT_RGBA8888, 4,
      0xffffffff, 0x000000ff, 0xff0000ff, 0x808080ff, 16, 8 },
    { "BGRA8888", DRM_FORMAT_BGRA8888, 4,
      0xffffffff, 0x000000ff, 0x0000ffff, 0x808080ff, 16, 8 },
    { "XRGB2101010", DRM_FORMAT_XRGB2101010, 4,
      0xffffffff, 0xc0000000, 0xfff00000, 0xe0280a02, 10, 10 },
    { "ARGB2101010", DRM_FORMAT_ARGB2101010, 4,
      0xffffffff, 0xc0000000, 0xfff00000, 0xe0280a02, 10, 10 },
    { "XBGR2101010", DRM_FORMAT_XBGR2101010, 4,
      0xffffffff, 0xc0000000, 0xc00003ff, 0xe0280a02, 10, 10 },
    { "RGB888", DRM_FORMAT_RGB888, 3,
      0xffffff, 0x000000, 0xff0000, 0x808080, 8, 8 },
    { "BGR888", DRM_FORMAT_BGR888, 3,
      0xffffff, 0x000000, 0x0000ff, 0x808080, 8, 8 },
    { "RGB565", DRM_FORMAT_RGB565, 2,
      0xffff, 0x0000, 0xf800, 0x8410, 5, 6 },
    { "BGR565", DRM_FORMAT_BGR565, 2,
      0xffff, 0x0000, 0x001f, 0x8410, 5, 6 },
};

#define NFMTS ((int)(sizeof(fmts) / sizeof(fmts[0])))

static const struct fmt *fmt_of(uint32_t fourcc)
{
    int i;

    for (i = 0; i < NFMTS; i++) {
        if (fmts[i].fourcc == fourcc) {
            return &fmts[i];
        }
    }
    return NULL;
}

/* the little-endian pixel value at @px */
static uint32_t px_val(const uint8_t *px, int cpp)
{
    uint32_t v = 0;
    int i;

    for (i = cpp - 1; i >= 0; i--) {
        v = v << 8 | px[i];
    }
    return v;
}

/* green channel above half */
static int bit_of(const uint8_t *px, const struct fmt *f)
{
    uint32_t gmax = (1u << f->gbits) - 1;

    return ((px_val(px, f->cpp) >> f->gshift) & gmax) > gmax / 2;
}

/* frame number from the first row; -1 if the complement does not match */
static long long decode(const uint8_t *fb, uint32_t fourcc)
{
    const struct fmt *f = fmt_of(fourcc);
    uint32_t v = 0, c = 0;
    int i;

    if (!f) {
        return -4;
    }
    for (i = 0; i < 32; i++) {
        v = v << 1 | bit_of(fb + i * f->cpp, f);
        c = c << 1 | bit_of(fb + (32 + i) * f->cpp, f);
    }
    return (v ^ c) == 0xffffffffu ? (long long)v : -1;
}

static long long frame_of(const struct vfio_device_gfx_plane_info *p)
{
    long long f;
    void *m;
    int fd;

    fd = getbuf(p->dmabuf_id);
    if (fd < 0) {
        return -2;
    }
    m = mmap(NULL, p->size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        return -3;
    }
    f = decode(m, p->drm_format);
    munmap(m, p->size);
    return f;
}

static int open_device(void)
{
    char path[PATH_MAX], link[PATH_MAX];
    const char *g;
    int container, group, fd;
    ssize_t n;

    snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s/iommu_group", uuid);
    n = readlink(path, link, sizeof(link) - 1);
    if (n < 0) {
        die(path);
    }
    link[n] = 0;
    g = strrchr(link, '/') + 1;
    container = open("/dev/vfio/vfio", O_RDWR);
    if (container < 0) {
        die("/dev/vfio/vfio");
    }
    snprintf(path, sizeof(path), "/dev/vfio/%s", g);
    group = open(path, O_RDWR);
    if (group < 0) {
        die(path);
    }
    if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) < 0) {
        die("VFIO_GROUP_SET_CONTAINER");
    }
    if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0) {
        die("VFIO_SET_IOMMU");
    }
    fd = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, uuid);
    if (fd < 0) {
        die("VFIO_GROUP_GET_DEVICE_FD");
    }
    close(group);
    close(container);
    return fd;
}

static uint32_t rd32(uint64_t off)
{
    uint32_t v = 0;

    if (pread(dev, &v, 4, off) != 4) {
        return 0xdeadbeef;
    }
    return v;
}

static void wr32(uint64_t off, uint32_t v)
{
    if (pwrite(dev, &v, 4, off) != 4) {
        printf("selftest: pwrite 0x%llx failed: %s\n", (unsigned long long)off,
               strerror(errno));
        nfail++;
    }
}

static void make_edid(uint8_t *e, unsigned w, unsigned h)
{
    static const uint8_t hdr[8] = { 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0 };
    uint8_t sum = 0;
    int i;

    memset(e, 0, 128);
    memcpy(e, hdr, 8);
    e[18] = 1;
    e[19] = 4;
    e[54] = 0x10;    /* pixel clock, non-zero: a timing descriptor */
    e[55] = 0x27;
    e[56] = w & 0xff;
    e[58] = (w >> 8) << 4;
    e[59] = h & 0xff;
    e[61] = (h >> 8) << 4;
    for (i = 0; i < 127; i++) {
        sum += e[i];
    }
    e[127] = (uint8_t)(0x100 - sum);
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static const struct fmt *fmt_named(const char *name)
{
    int i;

    for (i = 0; i < NFMTS; i++) {
        if (!strcmp(fmts[i].name, name)) {
            return &fmts[i];
        }
    }
    printf("selftest: no format %s\n", name);
    exit(1);
}

/*
 * Mode WxH, format @f and @stride (0: auto), one frame drawn: the plane
 * answer, then exact pixel values at known places of the pattern (gray
 * band, white, red and black bars; odd x, so 3 byte pixels sit unaligned)
 * and the frame number in the first row.
 */
static void check_format(const struct fmt *f, unsigned w, unsigned h, unsigned stride)
{
    struct vfio_device_gfx_plane_info p;
    uint32_t want_stride = stride ? stride : w * f->cpp;
    uint32_t want_size = (want_stride * h + 4095) & ~4095u;
    uint32_t white = 0, black = 0, red = 0, gray = 0;
    long long frame = -9, want_frame;
    uint8_t *m = MAP_FAILED;
    char v[32];
    int ok, fd;

    snprintf(v, sizeof(v), "%ux%u", w, h);
    sysw("mode", v);
    sysw("format", f->name);
    if (stride) {
        snprintf(v, sizeof(v), "%u", stride);
        sysw("stride", v);
    }
    sysw("step", "1");
    want_frame = kv("state", "frame");
    ok = query(1, &p) == 0 && p.drm_format == f->fourcc && p.width == w &&
         p.height == h && p.stride == want_stride && p.size == want_size &&
         p.dmabuf_id;
    fd = ok ? getbuf(p.dmabuf_id) : -1;
    if (fd >= 0) {
        m = mmap(NULL, p.size, PROT_READ, MAP_SHARED, fd, 0);
        close(fd);
    }
    if (m != MAP_FAILED) {
#define PX(x, y) px_val(m + (size_t)(y) * p.stride + (size_t)(x) * f->cpp, f->cpp)
        gray = PX(101, 5);
        white = PX((w / 16) | 1, h / 2);        /* bar 0 */
        red = PX((w * 11 / 16) | 1, h / 2);     /* bar 5 */
        black = PX((w * 15 / 16) | 1, h / 2);   /* bar 7 */
#undef PX
        frame = decode(m, f->fourcc);
        munmap(m, p.size);
    }
    check(ok && m != MAP_FAILED && white == f->white && black == f->black &&
          red == f->red && gray == f->gray && frame == want_frame,
          "%s %ux%u stride %u size %u: white 0x%0*x black 0x%0*x red 0x%0*x "
          "gray 0x%0*x, frame %lld", f->name, w, h, p.stride, p.size,
          f->cpp * 2, white, f->cpp * 2, black, f->cpp * 2, red, f->cpp * 2, gray,
          frame);
}

/* the eventfd's counter after waiting up to @ms for it; 0 if none came */
static uint64_t efd_wait(int efd, int ms)
{
    struct pollfd pfd = { .fd = efd, .events = POLLIN };
    uint64_t v = 0;

    if (poll(&pfd, 1, ms) == 1 && read(efd, &v, sizeof(v)) != sizeof(v)) {
        v = 0;
    }
    return v;
}

/* SET_IRQS on the display event (index 5) with @flags, @count and @fd */
static int set_irq(uint32_t flags, uint32_t count, int32_t fd)
{
    struct {
        struct vfio_irq_set set;
        int32_t fd;
    } is;

    memset(&is, 0, sizeof(is));
    is.set.argsz = sizeof(is.set) + count * sizeof(int32_t);
    is.set.flags = flags;
    is.set.index = VFIO_PCI_NUM_IRQS;
    is.set.count = count;
    is.fd = fd;
    return ioctl(dev, VFIO_DEVICE_SET_IRQS, &is);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* the display event, byte for byte against v6 (the numbers above) */
static void display_event_checks(void)
{
    union {
        struct v6_irq_info info;
        uint8_t b[256];
    } ii;
    struct v6_cap_type ct;
    struct v6_cap_display cd;
    uint64_t cnt;
    long long st0, st1, ev0;
    double t0, t1;
    int efd, r;

    sysw("pause", "1");
    sysw("cursor", "off");
    memset(&ii, 0, sizeof(ii));
    ii.info.argsz = sizeof(ii);
    ii.info.index = VFIO_PCI_NUM_IRQS;
    r = ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO, &ii);
    check(r == 0 && ii.info.index == VFIO_PCI_NUM_IRQS && ii.info.count == 1 &&
          ii.info.flags == (VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE |
                            V6_IRQ_INFO_FLAG_CAPS),
          "display event: IRQ index 5, count 1, EVENTFD|MASKABLE|CAPS (0x%x)",
          ii.info.flags);
    check(ii.info.cap_offset == 20,
          "v6: cap_offset = sizeof(struct vfio_irq_info) = 20 (%u)",
          ii.info.cap_offset);
    memcpy(&ct, ii.b + 20, sizeof(ct));
    check(ct.header.id == 1 && ct.header.version == 1 &&
          ct.type == 1 && ct.subtype == 1 && ct.header.next == 36,
          "v6: at 20 VFIO_IRQ_INFO_CAP_TYPE (1) v1, GFX (1) / DISPLAY_IRQ (1), "
          "next 36 (id %u type %u/%u next %u)", ct.header.id, ct.type,
          ct.subtype, ct.header.next);
    memcpy(&cd, ii.b + 36, sizeof(cd));
    check(cd.header.id == 2 && cd.header.version == 1 && cd.header.next == 0 &&
          cd.pri_event_val == V6_PRI && cd.cur_event_val == V6_CUR,
          "v6: at 36 VFIO_IRQ_INFO_CAP_DISPLAY (2) v1, primary 1<<56, cursor "
          "1<<48 (0x%llx, 0x%llx)", (unsigned long long)cd.pri_event_val,
          (unsigned long long)cd.cur_event_val);
    memset(&ii, 0, sizeof(ii));
    ii.info.argsz = sizeof(ii.info);
    ii.info.index = VFIO_PCI_NUM_IRQS;
    ii.info.cap_offset = 0xdeadbeef;
    r = ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO, &ii);
    check(r == 0 && ii.info.argsz == 60 && ii.info.count == 1 &&
          (ii.info.flags & V6_IRQ_INFO_FLAG_CAPS) &&
          ii.info.cap_offset == 0xdeadbeef,
          "v6: argsz 20 is told 60 (%u), only argsz..count written back",
          ii.info.argsz);

    efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    check(efd >= 0 && set_irq(VFIO_IRQ_SET_DATA_EVENTFD |
                              VFIO_IRQ_SET_ACTION_TRIGGER, 1, efd) == 0,
          "display event armed (DATA_EVENTFD | ACTION_TRIGGER, count 1)");
    check(kv("stats", "display_armed") == 1 && efd_wait(efd, 0) == 0,
          "armed, the counter untouched by arming");

    /* one signal per vblank, of the planes that changed in it */
    ev0 = kv("stats", "display_events");
    sysw("step", "2");
    cnt = efd_wait(efd, 1000);
    check(cnt == 2 * V6_PRI, "two flips, two vblanks: 2 x 1<<56 (0x%llx)",
          (unsigned long long)cnt);
    sysw("cursor_pos", "10 20");
    sysw("cursor_pos", "11 20");
    sysw("cursor_pos", "12 20");
    cnt = efd_wait(efd, 1000);
    sleep_ms(100);
    cnt += efd_wait(efd, 0);
    check(cnt == V6_CUR || cnt == 2 * V6_CUR,
          "three cursor moves while paused: at the idle vblank, 1<<48 once "
          "(twice if they straddle one) (0x%llx)", (unsigned long long)cnt);
    sysw("cursor", "auto");
    efd_wait(efd, 1000);
    sleep_ms(100);
    efd_wait(efd, 0);
    ev0 = kv("stats", "display_events");
    sysw("step", "3");
    cnt = efd_wait(efd, 1000);
    check(cnt == 3 * (V6_PRI + V6_CUR) &&
          kv("stats", "display_events") - ev0 == 3,
          "3 frames that flip and step the cursor: 3 signals of "
          "1<<56 + 1<<48, not 6 (0x%llx)", (unsigned long long)cnt);
    sysw("cursor", "off");
    efd_wait(efd, 1000);

    /* disarming as kvmgt allows it, not with fd -1 */
    errno = 0;
    check(set_irq(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 1,
                  -1) < 0 && errno == EBADF &&
          kv("stats", "display_disarm_refused") >= 1,
          "fd -1 does not disarm: EBADF, as eventfd_ctx_fdget(-1)");
    sysw("step", "1");
    check(efd_wait(efd, 1000) == V6_PRI && kv("stats", "display_armed") == 1,
          "... and the eventfd stays armed");
    check(set_irq(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK, 1, 0) == 0,
          "ACTION_MASK");
    sysw("step", "1");
    check(efd_wait(efd, 100) == 0 && kv("stats", "display_events_masked") >= 1,
          "masked: the vblank is not signalled");
    check(set_irq(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, 1,
                  0) == 0, "ACTION_UNMASK");
    sysw("step", "1");
    check(efd_wait(efd, 1000) == V6_PRI, "unmasked: signalled again");
    check(set_irq(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 1,
                  0) == 0 && kv("stats", "display_armed") == 1,
          "DATA_NONE, count 1: accepted, nothing changes (kvmgt)");

    /* the storm: 10 000 signals a second whatever happens */
    check(sysw_err("storm", "100001") == ERANGE,
          "storm above 100000 -> ERANGE");
    st0 = kv("stats", "storm_signals");
    t0 = now_s();
    sysw("storm", "10000");
    sleep_ms(500);
    cnt = efd_wait(efd, 0);
    sleep_ms(500);
    sysw("storm", "0");
    t1 = now_s();
    st1 = kv("stats", "storm_signals");
    check((st1 - st0) / (t1 - t0) >= 8000 && (st1 - st0) / (t1 - t0) <= 11000,
          "storm 10000: %.0f signals/s", (st1 - st0) / (t1 - t0));
    check(cnt == UINT64_MAX,
          "half a second unread: the counter saturates (0x%llx)",
          (unsigned long long)cnt);
    efd_wait(efd, 0);
    sleep_ms(50);
    check(efd_wait(efd, 50) == 0 && !strcmp(sysr("storm"), "0\n"),
          "storm 0: no signal any more");

    check(set_irq(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0,
                  0) == 0 && kv("stats", "display_armed") == 0,
          "disarmed with DATA_NONE | ACTION_TRIGGER, count 0");
    sysw("cursor_pos", "30 40");
    sysw("step", "1");
    check(efd_wait(efd, 200) == 0,
          "no signal once disarmed (a flip, a cursor change)");
    errno = 0;
    r = ioctl(dev, VFIO_DEVICE_SET_IRQS, &(struct vfio_irq_set){
        .argsz = sizeof(struct vfio_irq_set),
        .flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
        .index = VFIO_PCI_NUM_IRQS + 1 });
    check(r < 0 && errno == EINVAL,
          "SET_IRQS beyond the display event -> EINVAL");
    close(efd);
}

/*
 * ---- the gvt profile, real tiling, GVT-g's formats, cursor sizes ----
 * Everything below reads the pixels through the BAR0 mapping of VRAM (the
 * vfio device's region 0), never through the dma-buf, so it works under
 * gvt too, where the dma-buf cannot be mapped.
 */

enum { LIN, XT, YT };

/*
 * Byte @xb of row @y of a tiled surface of @stride bytes, as Intel's
 * documentation decomposes the address inside a 4 KiB tile (no bit-6
 * swizzle): X: bits 8:0 = x[8:0], bits 11:9 = y[2:0]; Y (legacy): bits
 * 3:0 = x[3:0], bits 8:4 = y[4:0], bits 11:9 = x[6:4]. Tiles are numbered
 * row-major: tile row y >> 3 (X) or y >> 5 (Y), tile column x >> 9 or
 * x >> 7.
 */
static size_t tiled_at(int tiling, unsigned stride, unsigned xb, unsigned y)
{
    size_t tile;
    unsigned in;

    switch (tiling) {
    case XT:
        tile = (size_t)(y >> 3) * (stride >> 9) + (xb >> 9);
        in = (xb & 0x1ff) | (y & 7) << 9;
        return tile << 12 | in;
    case YT:
        tile = (size_t)(y >> 5) * (stride >> 7) + (xb >> 7);
        in = (xb & 0xf) | (y & 0x1f) << 4 | ((xb >> 4) & 7) << 9;
        return tile << 12 | in;
    default:
        return (size_t)y * stride + xb;
    }
}

/* a plane's picture from VRAM, de-tiled, as rows of w * cpp bytes */
static uint8_t *read_picture(const uint8_t *vram, uint64_t fb, int tiling,
                             unsigned stride, unsigned w, unsigned h, unsigned cpp)
{
    uint8_t *pic = malloc((size_t)w * cpp * h);
    unsigned x, y;

    for (y = 0; y < h; y++) {
        for (x = 0; x < w * cpp; x++) {
            pic[(size_t)y * w * cpp + x] = vram[fb + tiled_at(tiling, stride, x, y)];
        }
    }
    return pic;
}

/* pixels are live state: the front buffer of the paused engine */
static uint64_t front_offset(void)
{
    return kv("state", "fb_offset");
}

/*
 * Format @name at WxH, paused: the linear picture of the front buffer,
 * then the same frame under @tiling (x-tiled or y-tiled) de-tiled from
 * VRAM must be byte for byte the same; the plane's stride and size meet
 * the tiling; a flip draws the next frame tiled too.
 */
static void check_tiling(const uint8_t *vram, const char *name, unsigned cpp,
                         unsigned w, unsigned h, int tiling)
{
    const char *mod = tiling == XT ? "x-tiled" : "y-tiled";
    unsigned tw = tiling == XT ? 512 : 128, th = tiling == XT ? 8 : 32;
    unsigned want_stride = (w * cpp + tw - 1) / tw * tw;
    unsigned want_size = want_stride * ((h + th - 1) / th * th);
    struct vfio_device_gfx_plane_info p;
    uint8_t *lin, *til, *raw;
    long long frame;
    char v[32];
    int same, naive, r;

    snprintf(v, sizeof(v), "%ux%u", w, h);
    sysw("modifier", "linear");
    sysw("mode", v);
    sysw("format", name);
    sysw("step", "1");
    frame = kv("state", "frame");
    r = query(1, &p);
    lin = read_picture(vram, front_offset(), LIN, p.stride, w, h, cpp);
    sysw("modifier", mod);
    r |= query(1, &p);
    check(r == 0 && p.drm_format_mod == (tiling == XT ? I915_FORMAT_MOD_X_TILED :
                                         I915_FORMAT_MOD_Y_TILED) &&
          p.stride == want_stride && p.size == ((want_size + 4095) & ~4095u) &&
          kv("state", "stride") == want_stride && kv("state", "frame") == frame,
          "%s %s %ux%u: stride %u (want %u), size %u (want %u: height padded "
          "to %u rows)", name, mod, w, h, p.stride, want_stride, p.size,
          want_size, (h + th - 1) / th * th);
    til = read_picture(vram, front_offset(), tiling, p.stride, w, h, cpp);
    raw = read_picture(vram, front_offset(), LIN, p.stride, w, h, cpp);
    same = !memcmp(lin, til, (size_t)w * cpp * h);
    naive = !memcmp(lin, raw, (size_t)w * cpp * h);
    check(same && !naive,
          "%s %s %ux%u frame %lld: de-tiled picture = the linear one (%s), "
          "read as linear it is not (%s)", name, mod, w, h, frame,
          same ? "same" : "differs", naive ? "same" : "differs");
    free(til);
    free(raw);
    /* the engine's next frame, drawn by the flip, tiled as well */
    sysw("step", "1");
    r = query(1, &p);
    til = read_picture(vram, front_offset(), tiling, p.stride, w, h, cpp);
    check(r == 0 && kv("state", "frame") == frame + 1 &&
          !memcmp(til + (size_t)100 * w * cpp, lin + (size_t)100 * w * cpp,
                  (size_t)w * cpp * (h - 120)) &&
          ((cpp == 4 && decode(til, DRM_FORMAT_XRGB8888) == frame + 1) || cpp != 4),
          "%s %s: the next frame (flip to buffer %lld) tiled too, bars equal, "
          "frame %lld", name, mod, kv("state", "front"), frame + 1);
    free(til);
    free(lin);
    sysw("modifier", "linear");
}

/*
 * GVT-g's primary formats, and what a known pixel is in each: the values
 * of docs/vgpusim.md written out by hand. 2101010 gray: 0x80 as 10 bits
 * 0x202. C8: the index in an RGB332 palette. Packed YUV: BT.601 limited
 * range: white 235/128/128, black 16/128/128, gray 126/128/128, red
 * 82/90/240, yellow 210/16/146.
 */
static const struct gvt_fmt {
    const char *name;
    uint32_t fourcc;
    unsigned cpp;
    uint8_t white[4], black[4], red[4], gray[4];   /* bytes in memory */
} gvt_fmts[] = {
    { "RGB565", DRM_FORMAT_RGB565, 2,
      { 0xff, 0xff }, { 0, 0 }, { 0x00, 0xf8 }, { 0x10, 0x84 } },
    { "XRGB8888", DRM_FORMAT_XRGB8888, 4, { 0xff, 0xff, 0xff, 0xff },
      { 0, 0, 0, 0xff }, { 0, 0, 0xff, 0xff }, { 0x80, 0x80, 0x80, 0xff } },
    { "XBGR8888", DRM_FORMAT_XBGR8888, 4, { 0xff, 0xff, 0xff, 0xff },
      { 0, 0, 0, 0xff }, { 0xff, 0, 0, 0xff }, { 0x80, 0x80, 0x80, 0xff } },
    { "ARGB8888", DRM_FORMAT_ARGB8888, 4, { 0xff, 0xff, 0xff, 0xff },
      { 0, 0, 0, 0xff }, { 0, 0, 0xff, 0xff }, { 0x80, 0x80, 0x80, 0xff } },
    { "ABGR8888", DRM_FORMAT_ABGR8888, 4, { 0xff, 0xff, 0xff, 0xff },
      { 0, 0, 0, 0xff }, { 0xff, 0, 0, 0xff }, { 0x80, 0x80, 0x80, 0xff } },
    /* x:R:G:B 2:10:10:10 = 0xfff00000 red, 0xe0280a02 gray */
    { "XRGB2101010", DRM_FORMAT_XRGB2101010, 4, { 0xff, 0xff, 0xff, 0xff },
      { 0, 0, 0, 0xc0 }, { 0x00, 0x00, 0xf0, 0xff }, { 0x02, 0x0a, 0x28, 0xe0 } },
    /* x:B:G:R: red 0xc00003ff */
    { "XBGR2101010", DRM_FORMAT_XBGR2101010, 4, { 0xff, 0xff, 0xff, 0xff },
      { 0, 0, 0, 0xc0 }, { 0xff, 0x03, 0x00, 0xc0 }, { 0x02, 0x0a, 0x28, 0xe0 } },
    { "C8", DRM_FORMAT_C8, 1, { 0xff }, { 0x00 }, { 0xe0 }, { 0x92 } },
    /* two pixels of one colour: Y0 Cb Y1 Cr and its orders */
    { "YUYV", DRM_FORMAT_YUYV, 2, { 235, 128, 235, 128 }, { 16, 128, 16, 128 },
      { 82, 90, 82, 240 }, { 126, 128, 126, 128 } },
    { "UYVY", DRM_FORMAT_UYVY, 2, { 128, 235, 128, 235 }, { 128, 16, 128, 16 },
      { 90, 82, 240, 82 }, { 128, 126, 128, 126 } },
    { "YVYU", DRM_FORMAT_YVYU, 2, { 235, 128, 235, 128 }, { 16, 128, 16, 128 },
      { 82, 240, 82, 90 }, { 126, 128, 126, 128 } },
    { "VYUY", DRM_FORMAT_VYUY, 2, { 128, 235, 128, 235 }, { 128, 16, 128, 16 },
      { 240, 82, 90, 82 }, { 128, 126, 128, 126 } },
};

#define NGVT ((int)(sizeof(gvt_fmts) / sizeof(gvt_fmts[0])))

/* frame number from the first row: white pixels (YUV: Y above 128) are 1 */
static long long decode_gvt(const uint8_t *row, const struct gvt_fmt *f)
{
    uint32_t v = 0, c = 0;
    int i, bit;

    for (i = 0; i < 64; i++) {
        switch (f->fourcc) {
        case DRM_FORMAT_YUYV:
        case DRM_FORMAT_YVYU:       /* Y0 at byte 0, Y1 at byte 2 */
            bit = row[(i / 2) * 4 + (i % 2) * 2] > 128;
            break;
        case DRM_FORMAT_UYVY:
        case DRM_FORMAT_VYUY:       /* Y0 at byte 1, Y1 at byte 3 */
            bit = row[(i / 2) * 4 + 1 + (i % 2) * 2] > 128;
            break;
        default:
            bit = !memcmp(row + (size_t)i * f->cpp, f->white, f->cpp);
            break;
        }
        if (i < 32) {
            v = v << 1 | bit;
        } else {
            c = c << 1 | bit;
        }
    }
    return (v ^ c) == 0xffffffffu ? (long long)v : -1;
}

/* cpp bytes (2 pixels' 4 for YUV) at pixel @x, row @y, linear */
static void px_bytes(const uint8_t *vram, uint64_t fb, unsigned stride,
                     const struct gvt_fmt *f, unsigned x, unsigned y, uint8_t *out)
{
    int yuv = f->fourcc == DRM_FORMAT_YUYV || f->fourcc == DRM_FORMAT_UYVY ||
              f->fourcc == DRM_FORMAT_YVYU || f->fourcc == DRM_FORMAT_VYUY;

    memset(out, 0, 4);
    if (yuv) {
        memcpy(out, vram + fb + (size_t)y * stride + (x & ~1u) * 2, 4);
    } else {
        memcpy(out, vram + fb + (size_t)y * stride + (size_t)x * f->cpp, f->cpp);
    }
}

static int bytes_eq(const uint8_t *a, const uint8_t *b, unsigned n)
{
    return !memcmp(a, b, n);
}

/* the cursor image of docs/vgpusim.md at @size, pixel (x, y) */
static uint32_t cursor_px(unsigned size, unsigned x, unsigned y)
{
    int k = size / 64, cx = x / k, cy = y / k;
    int d2 = (cx - 32) * (cx - 32) + (cy - 32) * (cy - 32);

    if (d2 >= 22 * 22 && d2 < 26 * 26) {
        return 0xffffffff;
    }
    if (d2 >= 26 * 26 && d2 < 29 * 29) {
        return 0xff000000;
    }
    if ((cx == 32 || cy == 32) && d2 < 22 * 22) {
        return 0xffff0000;
    }
    return 0;
}

static void check_cursor_size(const uint8_t *vram, uint64_t vram_size, unsigned size)
{
    struct vfio_device_gfx_plane_info p;
    unsigned x, y, bad = 0, bytes = size * size * 4;
    uint64_t off;
    char v[16];
    int r;

    snprintf(v, sizeof(v), "%u", size);
    sysw("cursor_size", v);
    r = query(2, &p);
    off = kv("state", "cursor_offset");
    for (y = 0; y < size; y++) {
        for (x = 0; x < size; x++) {
            uint32_t got;

            memcpy(&got, vram + off + ((size_t)y * size + x) * 4, 4);
            bad += got != cursor_px(size, x, y);
        }
    }
    check(r == 0 && p.width == size && p.height == size && p.stride == size * 4 &&
          p.size == bytes && p.drm_format == DRM_FORMAT_ARGB8888 &&
          p.drm_format_mod == 0 && p.x_hot == size / 2 && p.y_hot == size / 2 &&
          off == vram_size - bytes && kv("state", "cursor_size") == size && !bad,
          "cursor_size %u: plane %ux%u stride %u size %u hot %u,%u, image at "
          "VRAM end - %u, %u pixels off the formula", size, p.width, p.height,
          p.stride, p.size, p.x_hot, p.y_hot, bytes, bad);
}

static void gvt_checks(uint8_t *vram, uint64_t vram_size)
{
    static const char *const not_gvt[] = {
        "RGBX8888", "BGRX8888", "RGBA8888", "BGRA8888", "ARGB2101010",
        "RGB888", "BGR888", "BGR565",
    };
    struct vfio_device_gfx_plane_info p, c;
    char v[32];
    void *m;
    int fd, cfd, r, i, refused, ok;
    long long n0, n1;

    sysw("pause", "1");
    sysw("front_buffer", "0");
    sysw("fault", "clear");
    sysw("enable", "1");
    sysw("nbufs", "3");
    sysw("modifier", "linear");
    sysw("format", "XRGB8888");
    sysw("mode", "640x480");
    sysw("cursor", "on");
    sysw("cursor_pos", "10 10");

    /* the control */
    check(!strcmp(sysr("profile"), "default\n") &&
          strstr(sysr("state"), "\nprofile=default\n") != NULL,
          "profile reads default (state too)");
    check(sysw_err("profile", "strict") == EINVAL, "profile strict -> EINVAL");

    /* default: the CPU may map, vmap and sync */
    r = query(1, &p);
    fd = r ? -1 : getbuf(p.dmabuf_id);
    snprintf(v, sizeof(v), "%d", fd);
    m = fd < 0 ? MAP_FAILED : mmap(NULL, p.size, PROT_READ, MAP_SHARED, fd, 0);
    {
        struct dma_buf_sync s = { DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ };

        check(m != MAP_FAILED && sysw_err("importer_vmap", v) == 0 &&
              ioctl(fd, DMA_BUF_IOCTL_SYNC, &s) == 0 &&
              kv("stats", "mmap_refused") == 0 && kv("stats", "vmap_refused") == 0 &&
              kv("stats", "cpu_access_refused") == 0,
              "default profile: dma-buf mmap, kernel vmap (importer_vmap), "
              "CPU access all work, nothing refused");
        s.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ;
        ioctl(fd, DMA_BUF_IOCTL_SYNC, &s);
    }
    if (m != MAP_FAILED) {
        munmap(m, p.size);
    }
    close(fd);
    fd = open("/dev/null", O_RDONLY);
    snprintf(v, sizeof(v), "%d", fd);
    check(sysw_err("importer_vmap", v) == EINVAL,
          "importer_vmap of a file that is no dma-buf -> EINVAL");
    close(fd);

    /* a format outside GVT-g's list while switching: XRGB8888 */
    sysw("format", "RGB888");
    sysw("profile", "gvt");
    check(!strcmp(sysr("profile"), "gvt\n") && !strcmp(sysr("format"), "XRGB8888\n"),
          "profile gvt (RGB888 live: the format falls back to XRGB8888)");

    /* gvt: the proxy refuses the CPU, a device still imports */
    sysw("reset_stats", "1");
    r = query(1, &c);
    fd = r ? -1 : getbuf(c.dmabuf_id);
    check(r == 0 && c.dmabuf_id && c.dmabuf_id != p.dmabuf_id && fd >= 0,
          "gvt: a new id for the same picture (%u, was %u), GET works",
          c.dmabuf_id, p.dmabuf_id);
    errno = 0;
    m = mmap(NULL, c.size, PROT_READ, MAP_SHARED, fd, 0);
    check(m == MAP_FAILED && errno == ENODEV && kv("stats", "mmap_refused") == 1,
          "gvt: dma-buf mmap -> ENODEV (%s), mmap_refused 1", strerror(errno));
    snprintf(v, sizeof(v), "%d", fd);
    check(sysw_err("importer_vmap", v) == ENXIO && kv("stats", "vmap_refused") == 1,
          "gvt: vmap by a kernel importer -> ENXIO, vmap_refused 1");
    {
        struct dma_buf_sync s = { DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ };

        errno = 0;
        r = ioctl(fd, DMA_BUF_IOCTL_SYNC, &s);
        check(r < 0 && errno == ENXIO && kv("stats", "cpu_access_refused") == 1,
              "gvt: DMA_BUF_IOCTL_SYNC start (begin_cpu_access) -> ENXIO");
    }
    cfd = open("/dev/dri/card0", O_RDWR);
    if (cfd >= 0) {
        struct drm_prime_handle prime = { 0 };

        prime.fd = fd;
        r = ioctl(cfd, DRM_IOCTL_PRIME_FD_TO_HANDLE, &prime);
        check(r == 0 && prime.handle,
              "gvt: vgem imports the dma-buf (attach, map_dma_buf), handle %u",
              prime.handle);
        close(cfd);
    } else {
        printf("skip: no /dev/dri/card0\n");
    }
    close(fd);
    r = query(2, &c);
    fd = r ? -1 : getbuf(c.dmabuf_id);
    errno = 0;
    m = fd < 0 ? MAP_FAILED : mmap(NULL, c.size, PROT_READ, MAP_SHARED, fd, 0);
    check(fd >= 0 && m == MAP_FAILED && errno == ENODEV &&
          kv("stats", "mmap_refused") == 2,
          "gvt: the cursor's dma-buf cannot be mapped either");
    close(fd);
    check(kv("stats", "live_dmabufs") == 0, "gvt: live_dmabufs back to 0");

    /* formats: only GVT-g's */
    refused = 0;
    for (i = 0; i < (int)(sizeof(not_gvt) / sizeof(not_gvt[0])); i++) {
        refused += sysw_err("format", not_gvt[i]) == EINVAL;
    }
    check(refused == (int)(sizeof(not_gvt) / sizeof(not_gvt[0])) &&
          !strcmp(sysr("format"), "XRGB8888\n"),
          "gvt: the %d formats fb_decoder does not report -> EINVAL", refused);
    check(sysw_err("format", "YUYV") == 0 && sysw_err("mode", "641x480") == EINVAL &&
          sysw_err("format", "XRGB8888") == 0,
          "packed YUV: odd widths refused");

    /* each format: exact bytes at known places, the frame in the band */
    sysw("mode", "648x480");    /* bar 1 starts at x = 81: odd */
    for (i = 0; i < NGVT; i++) {
        const struct gvt_fmt *f = &gvt_fmts[i];
        uint8_t w[4], k[4], rd[4], g[4];
        unsigned stride, n = f->cpp == 2 && f->fourcc != DRM_FORMAT_RGB565 ? 4 : f->cpp;
        uint64_t fb;
        long long frame;

        sysw("format", f->name);
        sysw("step", "1");
        r = query(1, &p);
        fb = front_offset();
        stride = p.stride;
        px_bytes(vram, fb, stride, f, 40, 240, w);       /* bar 0 */
        px_bytes(vram, fb, stride, f, 450, 240, rd);     /* bar 5 */
        px_bytes(vram, fb, stride, f, 600, 240, k);      /* bar 7 */
        px_bytes(vram, fb, stride, f, 100, 4, g);        /* band */
        frame = decode_gvt(vram + fb, f);
        ok = r == 0 && p.drm_format == f->fourcc && stride == 648 * f->cpp &&
             bytes_eq(w, f->white, n) && bytes_eq(k, f->black, n) &&
             bytes_eq(rd, f->red, n) && bytes_eq(g, f->gray, n) &&
             frame == kv("state", "frame");
        check(ok, "gvt %s: stride %u, white %02x%02x%02x%02x black "
              "%02x%02x%02x%02x red %02x%02x%02x%02x gray %02x%02x%02x%02x "
              "(bytes), frame %lld", f->name, stride, w[0], w[1], w[2], w[3],
              k[0], k[1], k[2], k[3], rd[0], rd[1], rd[2], rd[3], g[0], g[1],
              g[2], g[3], frame);
        if (f->fourcc == DRM_FORMAT_YUYV) {
            /* pixels 80 (white) and 81 (yellow): chroma of the even one */
            static const uint8_t pair[4] = { 235, 128, 210, 128 };
            static const uint8_t yellow[4] = { 210, 16, 210, 146 };
            uint8_t a[4], b[4];

            px_bytes(vram, fb, stride, f, 80, 240, a);
            px_bytes(vram, fb, stride, f, 82, 240, b);
            check(bytes_eq(a, pair, 4) && bytes_eq(b, yellow, 4),
                  "YUYV: pair (80 white, 81 yellow) = %u %u %u %u (Cb, Cr of "
                  "the even pixel), yellow pair = %u %u %u %u", a[0], a[1],
                  a[2], a[3], b[0], b[1], b[2], b[3]);
        }
        if (f->fourcc == DRM_FORMAT_C8) {
            uint8_t y8[1];

            px_bytes(vram, fb, stride, f, 100, 240, y8);  /* bar 1, yellow */
            check(y8[0] == 0xfc, "C8: yellow is RGB332 index 0xfc (0x%02x)", y8[0]);
        }
    }
    sysw("format", "XRGB8888");

    /* tiling under gvt: X-tiled YUYV (the dma-buf is GVT-g's usual tiled) */
    check_tiling(vram, "YUYV", 2, 970, 690, XT);

    /* cursor sizes */
    check_cursor_size(vram, vram_size, 128);
    check_cursor_size(vram, vram_size, 256);
    check(sysw_err("cursor_size", "100") == EINVAL &&
          sysw_err("cursor_size", "512") == EINVAL, "cursor_size 100, 512 -> EINVAL");
    check_cursor_size(vram, vram_size, 64);

    /* a reset keeps the profile */
    ioctl(dev, VFIO_DEVICE_RESET);
    check(!strcmp(sysr("profile"), "gvt\n"), "a device reset keeps the profile");
    sysw("profile", "default");
    sysw("pause", "1");
    n0 = kv("stats", "mmap_refused");
    r = query(1, &p);
    fd = r ? -1 : getbuf(p.dmabuf_id);
    m = fd < 0 ? MAP_FAILED : mmap(NULL, p.size, PROT_READ, MAP_SHARED, fd, 0);
    n1 = kv("stats", "mmap_refused");
    check(m != MAP_FAILED && n1 == n0, "profile default again: mmap works");
    if (m != MAP_FAILED) {
        munmap(m, p.size);
    }
    close(fd);

    /* real tiling in the default profile, independent de-tiler */
    check_tiling(vram, "XRGB8888", 4, 970, 690, XT);
    check_tiling(vram, "XRGB8888", 4, 970, 690, YT);
    check_tiling(vram, "RGB565", 2, 1366, 768, YT);
    check_tiling(vram, "C8", 1, 700, 500, XT);
    check(sysw_err("stride", "3900") == 0 && sysw_err("modifier", "x-tiled") == EINVAL &&
          sysw_err("stride", "4096") == 0 && sysw_err("modifier", "x-tiled") == 0 &&
          sysw_err("stride", "4000") == EINVAL,
          "tiled: an explicit stride must be whole tiles (3900 then x-tiled, "
          "4000 under x-tiled refused)");
    sysw("modifier", "linear");
    sysw("mode", "640x480");
    sysw("format", "XRGB8888");
    sysw("cursor", "off");
}

/*
 * Profile region: the planes as mdpy offers them (VFIO_GFX_PLANE_TYPE_REGION):
 * a probe and queries with REGION only, no dma-bufs, no display event;
 * region_index names display region 10 + the front buffer's index, a
 * window on that VRAM buffer, mmappable; a flip names another region. The
 * values are written out from the plane's geometry, not asked of the
 * module.
 */
#define DISPLAY_REGION 10

static int rquery(uint32_t type, struct vfio_device_gfx_plane_info *p)
{
    memset(p, 0, sizeof(*p));
    p->argsz = sizeof(*p);
    p->flags = VFIO_GFX_PLANE_TYPE_REGION;
    p->drm_plane_type = type;
    return ioctl(dev, VFIO_DEVICE_QUERY_GFX_PLANE, p) < 0 ? -errno : 0;
}

static int region_info(uint32_t index, struct vfio_region_info *ri)
{
    memset(ri, 0, sizeof(*ri));
    ri->argsz = sizeof(*ri);
    ri->index = index;
    return ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, ri) < 0 ? -errno : 0;
}

static void *region_map(uint32_t index, size_t len)
{
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, dev, OFF(index));

    return m == MAP_FAILED ? NULL : m;
}

static void region_profile_checks(void *vram)
{
    struct vfio_device_info info = { .argsz = sizeof(info) };
    struct vfio_device_gfx_plane_info p, q;
    struct vfio_region_info ri;
    const uint32_t size = 640 * 480 * 4;    /* 300 pages: bufsz */
    long long frame, seen;
    uint32_t id = 1, old;
    uint8_t *m, *m2;
    int r;

    sysw("pause", "1");
    sysw("fault", "plane none");
    sysw("modifier", "linear");
    sysw("mode", "640x480");
    sysw("format", "XRGB8888");
    sysw("profile", "region");
    check(!strncmp(sysr("profile"), "region\n", 7), "profile region");
    sysw("step", "1");

    check(ioctl(dev, VFIO_DEVICE_GET_INFO, &info) == 0 &&
          info.num_regions == DISPLAY_REGION + 8 &&
          info.num_irqs == VFIO_PCI_NUM_IRQS,
          "region: 18 regions (8 display regions), no display event irq");
    memset(&p, 0, sizeof(p));
    p.argsz = sizeof(p);
    p.flags = VFIO_GFX_PLANE_TYPE_PROBE | VFIO_GFX_PLANE_TYPE_REGION;
    check(ioctl(dev, VFIO_DEVICE_QUERY_GFX_PLANE, &p) == 0, "region: PROBE|REGION -> 0");
    p.flags = VFIO_GFX_PLANE_TYPE_PROBE | VFIO_GFX_PLANE_TYPE_DMABUF;
    check(ioctl(dev, VFIO_DEVICE_QUERY_GFX_PLANE, &p) < 0 && errno == EINVAL,
          "region: PROBE|DMABUF -> EINVAL (as mdpy)");
    check(query(1, &q) == -EINVAL, "region: a DMABUF query -> EINVAL");
    check(ioctl(dev, VFIO_DEVICE_GET_GFX_DMABUF, &id) < 0 && errno == ENOTTY,
          "region: GET_GFX_DMABUF -> ENOTTY");

    frame = kv("state", "frame");
    r = rquery(1, &p);
    check(r == 0 && p.flags == VFIO_GFX_PLANE_TYPE_REGION && p.drm_plane_type == 1 &&
          p.width == 640 && p.height == 480 && p.stride == 2560 &&
          p.drm_format == DRM_FORMAT_XRGB8888 && p.drm_format_mod == 0 && p.size == size &&
          p.x_pos == 0 && p.y_pos == 0 && p.x_hot == 0 && p.y_hot == 0 &&
          p.region_index == DISPLAY_REGION + kv("state", "fb_offset") / size,
          "region: primary 640x480 XR24 stride 2560 size %u in region %u", p.size,
          p.region_index);
    r = rquery(2, &q);
    check(r == 0 && q.drm_plane_type == 2 && q.width == 640 &&
          q.region_index == p.region_index,
          "region: a cursor query answers the primary (mdpy looks at the flags only)");
    r = region_info(p.region_index, &ri);
    check(r == 0 && ri.size == size &&
          ri.flags == (VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
                       VFIO_REGION_INFO_FLAG_MMAP) &&
          ri.offset == OFF(p.region_index) && ri.cap_offset == 0,
          "region: region %u R|W|MMAP, %llu bytes, no caps", p.region_index,
          (unsigned long long)ri.size);
    m = region_map(p.region_index, size);
    check(m && decode(m, DRM_FORMAT_XRGB8888) == frame, "region: mapping shows frame %lld",
          frame);
    check(region_map(p.region_index, size + 4096) == NULL && errno == EINVAL,
          "region: mmap beyond the region -> EINVAL");
    if (m) {
        /* zero copy: a BAR0 write shows through the region */
        ((volatile uint32_t *)vram)[(kv("state", "fb_offset") + 100 * 2560) / 4] = 0x12345678;
        check(((volatile uint32_t *)m)[100 * 2560 / 4] == 0x12345678,
              "region: BAR0 write visible through the region");
    }

    /* a flip names another region; the old one still holds its buffer */
    old = p.region_index;
    seen = kv("stats", "flips_seen");
    sysw("step", "1");
    r = rquery(1, &q);
    check(r == 0 && q.region_index != old && q.width == 640 &&
          kv("stats", "flips_seen") == seen + 1,
          "region: flip -> region %u (was %u), seen", q.region_index, old);
    m2 = region_map(q.region_index, size);
    check(m2 && decode(m2, DRM_FORMAT_XRGB8888) == frame + 1,
          "region: the new region shows frame %lld", frame + 1);
    check(m && decode(m, DRM_FORMAT_XRGB8888) == frame,
          "region: region %u still holds frame %lld (a buffer, not the scanout)", old, frame);
    if (m2) {
        munmap(m2, size);
    }

    /* faults */
    sysw("fault", "plane region_short");
    r = rquery(1, &q);
    r = r ? r : region_info(q.region_index, &ri);
    check(r == 0 && q.size == size && ri.size < (uint64_t)q.stride * q.height,
          "region_short: region %llu bytes < plane", (unsigned long long)ri.size);
    sysw("fault", "plane region_nommap");
    r = region_info(q.region_index, &ri);
    check(r == 0 &&
          ri.flags == (VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE) &&
          region_map(q.region_index, size) == NULL && errno == EINVAL,
          "region_nommap: no MMAP flag, mmap -> EINVAL");
    sysw("fault", "plane stride_short");
    r = rquery(1, &q);
    check(r == 0 && q.stride < q.width * 4, "region: stride_short %u", q.stride);
    sysw("fault", "plane size_short");
    r = rquery(1, &q);
    check(r == 0 && q.size < q.stride * q.height, "region: size_short %u", q.size);
    sysw("fault", "eagain 1");
    check(rquery(1, &q) == -EAGAIN && rquery(1, &q) == 0, "region: eagain 1");
    sysw("fault", "plane none");
    sysw("enable", "0");
    check(rquery(1, &q) == 0 && q.width == 0 && q.drm_format == 0 && q.size == 0 &&
          q.region_index == 0, "region: scanout off -> all zero");
    sysw("enable", "1");
    check(rquery(1, &q) == 0 && q.width == 640, "region: scanout on again");
    if (m) {
        munmap(m, size);
    }

    sysw("profile", "default");
    check(query(1, &q) == 0 && q.dmabuf_id && rquery(1, &p) == -EINVAL,
          "profile default: dma-bufs again, REGION -> EINVAL");
}

int main(int argc, char **argv)
{
    struct vfio_device_info info = { .argsz = sizeof(info) };
    struct vfio_device_gfx_plane_info p, q;
    struct {
        struct vfio_region_info ri;
        uint8_t caps[256];
    } big;
    struct vfio_region_info ri;
    struct vfio_region_info_cap_type *ct;
    uint32_t id1, id2, cfg, n;
    long long f1, f2;
    uint8_t edid[128];
    void *m, *vram;
    int fd1, fd2, fd3, r, i, seen;
    uint64_t vram_size;

    if (argc != 2) {
        fprintf(stderr, "usage: selftest UUID\n");
        return 2;
    }
    uuid = argv[1];
    dev = open_device();

    /* device and region info */
    check(ioctl(dev, VFIO_DEVICE_GET_INFO, &info) == 0, "GET_INFO");
    check(info.flags == (VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET),
          "device flags PCI|RESET (0x%x)", info.flags);
    check(info.num_regions == 10 && info.num_irqs == VFIO_PCI_NUM_IRQS + 1,
          "10 regions, 5 PCI irq indexes + the display event");
    memset(&big, 0, sizeof(big));
    big.ri.argsz = sizeof(big);
    big.ri.index = 0;
    check(ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &big) == 0, "region info argsz %zu",
          sizeof(big));
    check(big.ri.offset == OFF(0) && big.ri.flags == 7, "BAR0 off 0 flags R|W|MMAP");
    vram_size = big.ri.size;
    memset(&big, 0, sizeof(big));
    big.ri.argsz = sizeof(big);
    big.ri.index = EDID_INDEX;
    r = ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &big);
    ct = (void *)((uint8_t *)&big + big.ri.cap_offset);
    check(r == 0 && (big.ri.flags & VFIO_REGION_INFO_FLAG_CAPS) && big.ri.cap_offset &&
          ct->header.id == VFIO_REGION_INFO_CAP_TYPE && ct->type == VFIO_REGION_TYPE_GFX &&
          ct->subtype == VFIO_REGION_SUBTYPE_GFX_EDID && big.ri.offset == OFF(9),
          "EDID region with TYPE cap");
    memset(&ri, 0, sizeof(ri));
    ri.argsz = sizeof(ri);
    ri.index = EDID_INDEX;
    r = ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &ri);
    check(r == 0 && ri.argsz > sizeof(ri) && ri.cap_offset == 0,
          "short argsz reports needed size %u", ri.argsz);
    ri.argsz = 8;
    check(ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &ri) < 0 && errno == EINVAL,
          "argsz 8 -> EINVAL");

    /* config space, registers */
    cfg = rd32(OFF(7));
    check(cfg == 0x00ff1b36, "config vendor/device 0x%08x", cfg);
    check((rd32(OFF(7) + 8) >> 16) == 0x0380, "class 0x0380");
    wr32(OFF(7) + 0x10, 0xffffffff);
    check(rd32(OFF(7) + 0x10) == (uint32_t)(~(vram_size - 1) | 8), "BAR0 sizing");
    check(rd32(OFF(2)) == 0x31534756, "BAR2 ID register");

    /* BAR0 mmap */
    vram = mmap(NULL, vram_size, PROT_READ | PROT_WRITE, MAP_SHARED, dev, OFF(0));
    check(vram != MAP_FAILED, "mmap BAR0 shared");
    check(mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, dev, OFF(0)) == MAP_FAILED,
          "mmap BAR0 private refused");
    check(mmap(NULL, 4096, PROT_READ, MAP_SHARED, dev, OFF(2)) == MAP_FAILED,
          "mmap BAR2 refused");

    /* probe semantics */
    memset(&p, 0, sizeof(p));
    p.argsz = sizeof(p);
    p.flags = VFIO_GFX_PLANE_TYPE_PROBE | VFIO_GFX_PLANE_TYPE_DMABUF;
    check(ioctl(dev, VFIO_DEVICE_QUERY_GFX_PLANE, &p) == 0, "PROBE|DMABUF -> 0");
    p.flags = VFIO_GFX_PLANE_TYPE_PROBE | VFIO_GFX_PLANE_TYPE_REGION;
    check(ioctl(dev, VFIO_DEVICE_QUERY_GFX_PLANE, &p) < 0 && errno == EINVAL,
          "PROBE|REGION -> EINVAL");
    p.flags = VFIO_GFX_PLANE_TYPE_PROBE;
    check(ioctl(dev, VFIO_DEVICE_QUERY_GFX_PLANE, &p) < 0 && errno == EINVAL,
          "PROBE -> EINVAL");

    display_event_checks();
    region_profile_checks(vram);

    /* deterministic frames: paused + step */
    sysw("pause", "1");
    sysw("reset_stats", "1");
    sysw("mode", "640x480");
    sysw("format", "XRGB8888");
    sysw("step", "1");
    r = query(1, &p);
    check(r == 0 && p.width == 640 && p.height == 480 && p.stride == 2560 &&
          p.drm_format == DRM_FORMAT_XRGB8888 && p.size == 1228800 && p.dmabuf_id &&
          p.x_hot == 0xffffffff && p.drm_format_mod == 0,
          "primary 640x480 XR24 id %u", p.dmabuf_id);
    f1 = frame_of(&p);
    check(f1 == kv("state", "frame"), "pixels carry frame %lld", f1);
    id1 = p.dmabuf_id;
    check(query(1, &q) == 0 && q.dmabuf_id == id1, "same id on re-query");
    sysw("step", "1");
    r = query(1, &q);
    check(r == 0 && q.dmabuf_id != id1, "flip -> new id %u", q.dmabuf_id);
    f2 = frame_of(&q);
    check(f2 == f1 + 1, "next frame %lld", f2);
    sysw("step", "2");
    check(query(1, &q) == 0 && q.dmabuf_id == id1 && frame_of(&q) == f1 + 3,
          "3 buffers: id %u again after 3 flips", id1);

    /* zero copy: a write through BAR0 shows in the dma-buf mapping */
    fd1 = getbuf(id1);
    m = mmap(NULL, q.size, PROT_READ, MAP_SHARED, fd1, 0);
    ((volatile uint32_t *)vram)[(kv("state", "fb_offset") + 100 * q.stride) / 4] = 0x12345678;
    check(m != MAP_FAILED && ((volatile uint32_t *)m)[100 * q.stride / 4] == 0x12345678,
          "BAR0 write visible through the dma-buf");
    munmap(m, q.size);
    close(fd1);

    /* dma-buf refcounting under any order */
    fd1 = getbuf(id1);
    fd2 = getbuf(id1);
    fd3 = getbuf(id1);
    check(fd1 >= 0 && fd2 >= 0 && fd3 >= 0 && fd1 != fd2, "GET x3 -> 3 fds");
    check(lseek(fd1, 0, SEEK_END) == (off_t)q.size, "dma-buf size %u", q.size);
    check(kv("stats", "live_dmabufs") == 3, "live_dmabufs 3");
    close(fd2);
    m = mmap(NULL, q.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd1, 0);
    check(m != MAP_FAILED && decode(m, DRM_FORMAT_XRGB8888) == f1 + 3,
          "mmap RW after closing a sibling");
    {
        struct dma_buf_sync s = { DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW };

        check(ioctl(fd1, DMA_BUF_IOCTL_SYNC, &s) == 0, "DMA_BUF_IOCTL_SYNC start");
        s.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW;
        check(ioctl(fd1, DMA_BUF_IOCTL_SYNC, &s) == 0, "DMA_BUF_IOCTL_SYNC end");
    }
    close(fd1);
    check(decode(m, DRM_FORMAT_XRGB8888) == f1 + 3, "mapping outlives its fd");
    munmap(m, q.size);
    close(fd3);
    check(kv("stats", "live_dmabufs") == 0, "live_dmabufs back to 0");
    check(getbuf(0) == -ENOENT && getbuf(999999) == -ENOENT, "unknown id -> ENOENT");
    check(mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, (fd1 = getbuf(id1)), 0) == MAP_FAILED,
          "dma-buf MAP_PRIVATE refused");
    close(fd1);

    /* vgem import exercises attach/map_dma_buf */
    fd2 = open("/dev/dri/card0", O_RDWR);
    if (fd2 >= 0) {
        struct drm_prime_handle prime = { 0 };

        prime.fd = getbuf(id1);
        r = ioctl(fd2, DRM_IOCTL_PRIME_FD_TO_HANDLE, &prime);
        check(r == 0 && prime.handle, "vgem imports the dma-buf (handle %u)", prime.handle);
        close(prime.fd);
        close(fd2);
    } else {
        printf("skip: no /dev/dri/card0\n");
    }

    /* cursor and other planes */
    check(query(2, &p) == 0 && p.dmabuf_id == 0 && p.width == 0, "cursor off -> zero");
    sysw("cursor", "on");
    sysw("cursor_pos", "100 50");
    r = query(2, &p);
    check(r == 0 && p.width == 64 && p.height == 64 && p.drm_format == DRM_FORMAT_ARGB8888 &&
          p.x_pos == 100 && p.y_pos == 50 && p.x_hot == 32 && p.y_hot == 32 &&
          p.dmabuf_id && p.dmabuf_id != id1, "cursor 64x64 AR24 id %u", p.dmabuf_id);
    sysw("cursor_hot", "none");
    check(query(2, &q) == 0 && q.x_hot == 0xffffffff && q.dmabuf_id == p.dmabuf_id,
          "cursor without hotspot");
    check(query(0, &q) == 0 && q.dmabuf_id == 0 && q.drm_format == 0, "overlay -> zero");
    check(query(7, &q) == -EINVAL, "plane type 7 -> EINVAL");

    /* faults */
    sysw("fault", "eagain 2");
    check(query(1, &q) == -EAGAIN && query(1, &q) == -EAGAIN && query(1, &q) == 0,
          "eagain 2");
    sysw("fault", "enomem 1");
    check(query(1, &q) == -ENOMEM && query(1, &q) == 0, "enomem 1");
    sysw("fault", "plane stride_short");
    r = query(1, &q);
    check(r == 0 && q.stride < q.width * 4, "stride_short %u", q.stride);
    sysw("fault", "plane size_short");
    r = query(1, &q);
    check(r == 0 && q.size < q.stride * q.height, "size_short %u", q.size);
    fd1 = getbuf(q.dmabuf_id);
    check(fd1 >= 0 && lseek(fd1, 0, SEEK_END) == (off_t)q.size, "size_short dma-buf is short");
    close(fd1);
    sysw("fault", "plane overflow");
    r = query(1, &q);
    check(r == 0 && (uint64_t)q.stride * q.height > 0xffffffffull &&
          q.size == (uint32_t)((uint64_t)q.stride * q.height), "overflow %ux%u stride %u size %u",
          q.width, q.height, q.stride, q.size);
    sysw("fault", "plane bad_fourcc");
    check(query(1, &q) == 0 &&
          q.drm_format == fourcc_code('V', 'G', 'S', '?'), "bad fourcc");
    sysw("fault", "plane zero_width");
    check(query(1, &q) == 0 && q.width == 0 && q.dmabuf_id, "zero width");
    sysw("fault", "plane bad_hotspot");
    check(query(2, &q) == 0 && q.x_hot == 64, "bad hotspot");
    sysw("fault", "plane none");
    check(query(1, &q) == 0 && q.dmabuf_id == id1, "plane none: id %u back", id1);
    sysw("modifier", "x-tiled");
    check(query(1, &q) == 0 && q.drm_format_mod == 0x0100000000000001ull && q.dmabuf_id != id1,
          "x-tiled modifier, own id");
    sysw("modifier", "linear");
    check(query(1, &q) == 0 && q.dmabuf_id == id1, "linear again: id %u", id1);
    sysw("fault", "reuse_id");
    sysw("mode", "800x600");
    r = query(1, &q);
    check(r == 0 && q.dmabuf_id == id1 && q.width == 800, "reuse_id: id %u is 800 wide",
          q.dmabuf_id);
    sysw("format", "RGB565");
    check(query(1, &q) == 0 && q.drm_format == DRM_FORMAT_RGB565 && q.stride == 1600, "RGB565");
    check(frame_of(&q) == kv("state", "frame"), "RGB565 pixels carry the frame");

    /* all 15 formats: exact pixels, odd widths, 3 byte pixels */
    for (i = 0; i < NFMTS; i++) {
        check_format(&fmts[i], 1365, 768, 0);
    }
    check_format(fmt_named("RGB888"), 1366, 768, 0);
    check_format(fmt_named("RGB888"), 1023, 767, 0);
    check_format(fmt_named("BGR888"), 1023, 767, 0);
    check_format(fmt_named("XRGB2101010"), 1023, 767, 0);
    check_format(fmt_named("BGR565"), 1023, 767, 0);
    check_format(fmt_named("RGB888"), 1365, 768, 4098);
    check(sysw_err("stride", "4096") == EINVAL && sysw_err("stride", "4094") == EINVAL,
          "RGB888 1365 wide: stride 4096 (not a multiple of 3), 4094 (< 4095) refused");
    sysw("mode", "1366x768");
    r = query(1, &q);
    check(r == 0 && q.stride == 4098 && kv("state", "stride") == 4098,
          "mode resets the stride to auto (1366*3 = %u)", q.stride);

    /* stride_unaligned: width*cpp + 2 */
    sysw("format", "XRGB8888");
    r = query(1, &p);
    sysw("fault", "plane stride_unaligned");
    r |= query(1, &q);
    fd1 = r ? -1 : getbuf(q.dmabuf_id);
    check(r == 0 && q.width == 1366 && q.height == 768 && q.stride == 1366 * 4 + 2 &&
          q.stride % 4 == 2 && q.size == ((q.stride * 768 + 4095) & ~4095u) &&
          q.dmabuf_id && q.dmabuf_id != p.dmabuf_id && fd1 >= 0 &&
          lseek(fd1, 0, SEEK_END) == (off_t)q.size,
          "stride_unaligned XRGB8888 1366x768: stride %u size %u, own id %u",
          q.stride, q.size, q.dmabuf_id);
    close(fd1);
    check(strstr(sysr("fault"), "plane=stride_unaligned\n") != NULL,
          "fault shows plane=stride_unaligned");
    sysw("fault", "plane none");
    r = query(1, &q);
    check(r == 0 && q.stride == 1366 * 4 && q.dmabuf_id == p.dmabuf_id,
          "plane none: stride %u, id %u back", q.stride, p.dmabuf_id);
    sysw("format", "RGB888");
    sysw("fault", "plane stride_unaligned");
    r = query(1, &q);
    check(r == 0 && q.stride == 1366 * 3 + 2 && q.stride % 3 &&
          q.size == ((q.stride * 768 + 4095) & ~4095u),
          "stride_unaligned RGB888: stride %u size %u", q.stride, q.size);
    sysw("fault", "clear");
    r = query(1, &q);
    check(r == 0 && q.stride == 1366 * 3, "fault clear ends it (stride %u)", q.stride);

    /* modifier alternate: buffer i linear for even i, x-tiled for odd i */
    sysw("mode", "800x600");
    sysw("format", "XRGB8888");
    sysw("nbufs", "2");
    sysw("modifier", "alternate");
    check(!strcmp(sysr("modifier"), "alternate\n"), "modifier reads alternate");
    {
        uint32_t ids[2] = { 0, 0 }, all[8];
        int nids = 0, bad = 0, answers = 0, k, front;

        for (i = 0; i < 20; i++) {
            sysw("step", "1");
            front = kv("state", "front");
            if (query(1, &q) || (front != 0 && front != 1) ||
                q.drm_format_mod != (front ? 0x0100000000000001ull : 0) ||
                frame_of(&q) != kv("state", "frame") ||
                (ids[front] && ids[front] != q.dmabuf_id)) {
                bad++;
                continue;
            }
            ids[front] = q.dmabuf_id;
        }
        check(!bad && ids[0] && ids[1] && ids[0] != ids[1],
              "alternate, 20 steps: buffer 0 linear id %u, buffer 1 x-tiled id %u",
              ids[0], ids[1]);
        sysw("pause", "0");
        for (i = 0; i < 500; i++) {
            if (query(1, &q) == 0 && q.dmabuf_id) {
                answers++;
                for (k = 0; k < nids && all[k] != q.dmabuf_id; k++) {
                }
                if (k == nids && nids < 8) {
                    all[nids++] = q.dmabuf_id;
                }
                bad += q.drm_format_mod !=
                       (q.dmabuf_id == ids[1] ? 0x0100000000000001ull : 0);
            }
            sleep_ms(2);
        }
        sysw("pause", "1");
        check(!bad && answers > 100 && nids == 2,
              "alternate, engine running: %d answers, %d distinct ids", answers, nids);
    }
    sysw("modifier", "linear");
    check(!strcmp(sysr("modifier"), "0x0000000000000000\n") && query(1, &q) == 0 &&
          q.drm_format_mod == 0 && kv("state", "modifier_alternate") == 0,
          "modifier linear ends alternate");
    sysw("nbufs", "3");
    check(sysw_err("mode", "10x10") == EINVAL, "mode 10x10 refused");
    sysw("format", "XRGB8888");
    sysw("enable", "0");
    check(query(1, &q) == 0 && q.dmabuf_id == 0 && q.width == 0 && q.size == 0, "disabled -> zero");
    sysw("enable", "1");

    /* reset: mode back to power-on, old ids gone, open dma-bufs live on */
    check(query(1, &q) == 0, "query before reset");
    fd1 = getbuf(q.dmabuf_id);
    check(ioctl(dev, VFIO_DEVICE_RESET) == 0, "VFIO_DEVICE_RESET");
    check(getbuf(q.dmabuf_id) == -ENOENT, "old id gone after reset");
    check(kv("state", "frame") == 0, "frame 0 after reset");
    m = mmap(NULL, q.size, PROT_READ, MAP_SHARED, fd1, 0);
    check(m != MAP_FAILED && decode(m, DRM_FORMAT_XRGB8888) >= 0,
          "pre-reset dma-buf still readable");
    munmap(m, q.size);
    close(fd1);
    check(query(1, &p) == 0 && frame_of(&p) == 0, "frame 0 visible after reset");

    /* EDID */
    check(rd32(OFF(9) + 20) == 1, "link up at start");
    wr32(OFF(9) + 20, 2);
    check(query(1, &q) == 0 && q.dmabuf_id == 0, "link down -> plane disabled");
    make_edid(edid, 1280, 720);
    check(pwrite(dev, edid, 128, OFF(9) + rd32(OFF(9))) == 128, "write EDID blob");
    wr32(OFF(9) + 8, 128);
    wr32(OFF(9) + 20, 1);
    check(query(1, &q) == 0 && q.width == 1280 && q.height == 720, "EDID preferred mode 1280x720");
    check(kv("edid", "applied") == 1, "edid applied");

    /* the running engine and the referee counters */
    sysw("flip_hz", "100");
    sysw("reset_stats", "1");
    sysw("pause", "0");
    seen = 0;
    id2 = 0;
    for (i = 0; i < 300; i++) {
        if (query(1, &q) == 0 && q.dmabuf_id != id2) {
            seen++;
            id2 = q.dmabuf_id;
        }
        sleep_ms(2);
    }
    sysw("pause", "1");
    check(seen > 5, "engine flips seen by polling: %d", seen);
    check(kv("stats", "flips_seen") > 5 && kv("stats", "latency_samples") > 5 &&
          kv("stats", "flips_made") >= kv("stats", "flips_seen"),
          "flips_made %lld seen %lld missed %lld p50 %lld us",
          kv("stats", "flips_made"), kv("stats", "flips_seen"),
          kv("stats", "flips_missed"), kv("stats", "latency_p50_us"));
    sysw("front_buffer", "1");
    check(query(1, &p) == 0, "front-buffer query");
    f1 = frame_of(&p);
    sysw("step", "3");
    check(query(1, &q) == 0 && q.dmabuf_id == p.dmabuf_id && frame_of(&q) == f1 + 3,
          "front-buffer mode: same id, frame %lld -> %lld", f1, frame_of(&q));
    sysw("front_buffer", "0");

    /* random order of GET / mmap / close / flip / reset: no leak, no BUG */
    {
        int fds[16], k, live = 0, bad = 0;
        unsigned seed = 12345;

        for (k = 0; k < 16; k++) {
            fds[k] = -1;
        }
        for (i = 0; i < 400; i++) {
            seed = seed * 1103515245u + 12345u;
            k = (seed >> 16) % 16;
            switch ((seed >> 8) % 8) {
            case 0: case 1: case 2:
                if (fds[k] < 0 && query(1, &q) == 0 && q.dmabuf_id) {
                    fds[k] = getbuf(q.dmabuf_id);
                    bad += fds[k] < 0;
                    live += fds[k] >= 0;
                }
                break;
            case 3: case 4:
                if (fds[k] >= 0) {
                    close(fds[k]);
                    fds[k] = -1;
                    live--;
                }
                break;
            case 5:
                if (fds[k] >= 0) {
                    m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fds[k], 0);
                    bad += m == MAP_FAILED || decode(m, DRM_FORMAT_XRGB8888) < 0;
                    if (m != MAP_FAILED) {
                        munmap(m, 4096);
                    }
                }
                break;
            case 6:
                sysw("step", "1");
                break;
            case 7:
                if ((seed >> 20) % 8 == 0) {
                    ioctl(dev, VFIO_DEVICE_RESET);
                }
                break;
            }
        }
        check(!bad && kv("stats", "live_dmabufs") == live, "random GET/close/reset: %d live", live);
        for (k = 0; k < 16; k++) {
            if (fds[k] >= 0) {
                close(fds[k]);
            }
        }
        check(kv("stats", "live_dmabufs") == 0, "all closed: live_dmabufs 0");
    }

    /* the gvt profile, tiling, GVT-g's formats, cursor sizes */
    gvt_checks(vram, vram_size);

    /* device close with a dma-buf open, then mdev removal */
    munmap(vram, vram_size);    /* a live BAR mapping would block the removal */
    check(query(1, &q) == 0, "final query");
    fd1 = getbuf(q.dmabuf_id);
    close(dev);
    m = mmap(NULL, q.size, PROT_READ, MAP_SHARED, fd1, 0);
    check(m != MAP_FAILED && decode(m, DRM_FORMAT_XRGB8888) >= 0, "dma-buf outlives the device fd");
    {
        char path[256];
        int rfd;

        snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s/remove", uuid);
        rfd = open(path, O_WRONLY);
        check(rfd >= 0 && write(rfd, "1", 1) == 1, "remove the mdev");
        close(rfd);
    }
    n = 0;
    for (i = 0; i < 16; i++) {
        n += ((volatile uint8_t *)m)[i * 4096];
    }
    check(decode(m, DRM_FORMAT_XRGB8888) >= 0, "dma-buf outlives the mdev (%u)", n & 1);
    munmap(m, q.size);
    close(fd1);

    printf("selftest: %d passed, %d failed\n", npass, nfail);
    return nfail ? 1 : 0;
}
