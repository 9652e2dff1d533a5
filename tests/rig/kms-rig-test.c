/*
 * kms-rig-test: vkms (the kernel's virtual KMS driver) in the rig VM, for
 * the tests of QEMU's -display kms (docs/test-vm.md, "vkms in the rig").
 *
 *   kms-rig-test info           the vkms card, its connectors (with the
 *                               writeback connector's formats), CRTCs and
 *                               planes, one "key=value ..." line each
 *   kms-rig-test state          the atomic state of the CRTCs, planes and
 *                               connectors in a stable text form (mode
 *                               contents, not blob ids), for a diff of
 *                               "before" against "after"
 *   kms-rig-test selftest UUID  the rig end to end without QEMU: a
 *                               vgpusim mdev's primary and cursor dma-bufs
 *                               imported into vkms with PRIME, scanned out
 *                               with an atomic commit and read back through
 *                               the writeback connector, pixel for pixel
 *                               against vkms's own blending of the frames
 *                               read through the dma-bufs' mmap; then the
 *                               state before is restored and compared
 *
 * Exit status: 0 pass, 1 fail, 77 skip (no vkms card).
 * Built static (`gcc -static ... -ldrm`): the rig VM has no userland.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/dma-buf.h>
#include <linux/vfio.h>

#include <drm_fourcc.h>
#include <xf86drm.h>
#include <xf86drmMode.h>

#ifdef NDEBUG
#error "kms-rig-test must be built without NDEBUG"
#endif

#define MAX_CARDS       16
#define FENCE_WAIT_MS   10000
#define STATE_MAX       16384

static int nfail;

static void check(bool ok, const char *fmt, ...)
{
    va_list ap;

    printf("%s - ", ok ? "ok" : "not ok");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    if (!ok) {
        nfail++;
    }
}

static const char *fourcc_str(uint32_t f, char buf[5])
{
    unsigned int i;

    for (i = 0; i < 4; i++) {
        char c = (f >> (8 * i)) & 0xff;
        buf[i] = (c > ' ' && c < 127) ? c : '?';
    }
    buf[4] = 0;
    return buf;
}

/*
 * The card whose driver is vkms: /dev/dri/card0..15, asked by
 * DRM_IOCTL_VERSION. Every card seen is printed when @verbose.
 * Returns an fd (O_RDWR) or -1; @path gets the node's path.
 */
static int open_vkms(char *path, size_t len, bool verbose)
{
    int i, fd, found = -1;

    for (i = 0; i < MAX_CARDS; i++) {
        char p[64];
        drmVersionPtr v;

        snprintf(p, sizeof(p), "/dev/dri/card%d", i);
        fd = open(p, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            continue;
        }
        v = drmGetVersion(fd);
        if (verbose) {
            printf("card path=%s driver=%s\n", p, v ? v->name : "?");
        }
        if (v && strcmp(v->name, "vkms") == 0 && found < 0) {
            snprintf(path, len, "%s", p);
            found = fd;
        } else {
            close(fd);
        }
        drmFreeVersion(v);
    }
    return found;
}

static bool set_caps(int fd)
{
    return drmSetClientCap(fd, DRM_CLIENT_CAP_UNIVERSAL_PLANES, 1) == 0 &&
           drmSetClientCap(fd, DRM_CLIENT_CAP_ATOMIC, 1) == 0 &&
           drmSetClientCap(fd, DRM_CLIENT_CAP_WRITEBACK_CONNECTORS, 1) == 0;
}

/* Property @name of object @obj: its id (0 if none), value in @val. */
static uint32_t prop_find(int fd, uint32_t obj, uint32_t type,
                          const char *name, uint64_t *val)
{
    drmModeObjectPropertiesPtr props;
    uint32_t id = 0;
    unsigned int i;

    props = drmModeObjectGetProperties(fd, obj, type);
    if (!props) {
        return 0;
    }
    for (i = 0; i < props->count_props && !id; i++) {
        drmModePropertyPtr p = drmModeGetProperty(fd, props->props[i]);

        if (p && strcmp(p->name, name) == 0) {
            id = p->prop_id;
            if (val) {
                *val = props->prop_values[i];
            }
        }
        drmModeFreeProperty(p);
    }
    drmModeFreeObjectProperties(props);
    return id;
}

static uint64_t prop_val(int fd, uint32_t obj, uint32_t type,
                         const char *name)
{
    uint64_t v = 0;

    prop_find(fd, obj, type, name, &v);
    return v;
}

static const char *plane_type_str(uint64_t t)
{
    switch (t) {
    case DRM_PLANE_TYPE_PRIMARY:
        return "primary";
    case DRM_PLANE_TYPE_CURSOR:
        return "cursor";
    case DRM_PLANE_TYPE_OVERLAY:
        return "overlay";
    }
    return "unknown";
}

static void mode_str(const drmModeModeInfo *m, char *buf, size_t len)
{
    snprintf(buf, len, "%ux%u clock=%u h=%u,%u,%u,%u v=%u,%u,%u,%u "
             "flags=0x%x type=0x%x vrefresh=%u name=%s",
             m->hdisplay, m->vdisplay, m->clock, m->hdisplay,
             m->hsync_start, m->hsync_end, m->htotal, m->vdisplay,
             m->vsync_start, m->vsync_end, m->vtotal, m->flags, m->type,
             m->vrefresh, m->name);
}

/* "AR24,XR24,..." of a blob of u32 fourccs */
static void formats_str(const uint32_t *f, unsigned int n, char *buf,
                        size_t len)
{
    unsigned int i;
    size_t used = 0;
    char s[5];

    buf[0] = 0;
    for (i = 0; i < n && used + 6 < len; i++) {
        used += snprintf(buf + used, len - used, "%s%s", i ? "," : "",
                         fourcc_str(f[i], s));
    }
}

/* IN_FORMATS: the distinct modifiers, "0x0,..." */
static void modifiers_str(int fd, uint64_t blob_id, char *buf, size_t len)
{
    drmModePropertyBlobPtr blob;
    const struct drm_format_modifier_blob *h;
    const struct drm_format_modifier *mods;
    size_t used = 0;
    unsigned int i;

    snprintf(buf, len, "none");
    if (!blob_id) {
        return;
    }
    blob = drmModeGetPropertyBlob(fd, blob_id);
    if (!blob) {
        return;
    }
    h = blob->data;
    mods = (const void *)((const char *)blob->data + h->modifiers_offset);
    buf[0] = 0;
    for (i = 0; i < h->count_modifiers && used + 24 < len; i++) {
        used += snprintf(buf + used, len - used, "%s0x%llx", i ? "," : "",
                         (unsigned long long)mods[i].modifier);
    }
    drmModeFreePropertyBlob(blob);
}

static int cmd_info(void)
{
    char path[64], buf[1024], mbuf[256];
    drmModeResPtr res;
    drmModePlaneResPtr pres;
    int fd, i;
    unsigned int j;

    fd = open_vkms(path, sizeof(path), true);
    if (fd < 0) {
        printf("kms-rig-test: no vkms card in /dev/dri\n");
        return 77;
    }
    printf("vkms path=%s\n", path);
    if (!set_caps(fd)) {
        printf("kms-rig-test: client caps refused: %s\n", strerror(errno));
        return 1;
    }
    res = drmModeGetResources(fd);
    pres = drmModeGetPlaneResources(fd);
    if (!res || !pres) {
        printf("kms-rig-test: GETRESOURCES failed: %s\n", strerror(errno));
        return 1;
    }
    for (i = 0; i < res->count_connectors; i++) {
        drmModeConnectorPtr c = drmModeGetConnector(fd, res->connectors[i]);
        const char *tn;
        int pref = -1, k;

        if (!c) {
            continue;
        }
        tn = drmModeGetConnectorTypeName(c->connector_type);
        for (k = 0; k < c->count_modes; k++) {
            if (c->modes[k].type & DRM_MODE_TYPE_PREFERRED) {
                pref = k;
            }
        }
        printf("connector id=%u type=%s status=%s encoders=%d modes=%d "
               "preferred=%s CRTC_ID=%llu",
               c->connector_id, tn ? tn : "?",
               c->connection == DRM_MODE_CONNECTED ? "connected" :
               c->connection == DRM_MODE_DISCONNECTED ? "disconnected" :
               "unknown", c->count_encoders, c->count_modes,
               pref >= 0 ? c->modes[pref].name : "none",
               (unsigned long long)prop_val(fd, c->connector_id,
                                            DRM_MODE_OBJECT_CONNECTOR,
                                            "CRTC_ID"));
        if (c->connector_type == DRM_MODE_CONNECTOR_WRITEBACK) {
            uint64_t b = prop_val(fd, c->connector_id,
                                  DRM_MODE_OBJECT_CONNECTOR,
                                  "WRITEBACK_PIXEL_FORMATS");
            drmModePropertyBlobPtr blob = drmModeGetPropertyBlob(fd, b);

            if (blob) {
                formats_str(blob->data, blob->length / 4, buf, sizeof(buf));
                drmModeFreePropertyBlob(blob);
            } else {
                snprintf(buf, sizeof(buf), "none");
            }
            printf(" writeback_formats=%s", buf);
        }
        printf("\n");
        drmModeFreeConnector(c);
    }
    for (i = 0; i < res->count_crtcs; i++) {
        drmModeCrtcPtr c = drmModeGetCrtc(fd, res->crtcs[i]);

        if (!c) {
            continue;
        }
        if (c->mode_valid) {
            mode_str(&c->mode, mbuf, sizeof(mbuf));
        } else {
            snprintf(mbuf, sizeof(mbuf), "none");
        }
        printf("crtc id=%u index=%d ACTIVE=%llu fb=%u mode=%s\n",
               c->crtc_id, i,
               (unsigned long long)prop_val(fd, c->crtc_id,
                                            DRM_MODE_OBJECT_CRTC, "ACTIVE"),
               c->buffer_id, mbuf);
        drmModeFreeCrtc(c);
    }
    for (j = 0; j < pres->count_planes; j++) {
        drmModePlanePtr p = drmModeGetPlane(fd, pres->planes[j]);
        uint64_t inf = 0;
        bool has_inf;

        if (!p) {
            continue;
        }
        has_inf = prop_find(fd, p->plane_id, DRM_MODE_OBJECT_PLANE,
                            "IN_FORMATS", &inf) != 0;
        formats_str(p->formats, p->count_formats, buf, sizeof(buf));
        modifiers_str(fd, inf, mbuf, sizeof(mbuf));
        printf("plane id=%u type=%s possible_crtcs=0x%x formats=%s "
               "in_formats=%d modifiers=%s\n", p->plane_id,
               plane_type_str(prop_val(fd, p->plane_id,
                                       DRM_MODE_OBJECT_PLANE, "type")),
               p->possible_crtcs, buf, has_inf, mbuf);
        drmModeFreePlane(p);
    }
    drmModeFreePlaneResources(pres);
    drmModeFreeResources(res);
    close(fd);
    return 0;
}

/* "WxH/FOURCC" of a framebuffer, or "gone" */
static void fb_str(int fd, uint32_t fb_id, char *buf, size_t len)
{
    drmModeFB2Ptr fb;
    unsigned int i, k;
    char s[5];

    fb = drmModeGetFB2(fd, fb_id);
    if (!fb) {
        snprintf(buf, len, "gone");
        return;
    }
    snprintf(buf, len, "%ux%u/%s", fb->width, fb->height,
             fourcc_str(fb->pixel_format, s));
    /* GETFB2 gave us handles (we are root): close each once */
    for (i = 0; i < 4; i++) {
        bool dup = false;

        for (k = 0; k < i; k++) {
            dup |= fb->handles[k] == fb->handles[i];
        }
        if (fb->handles[i] && !dup) {
            drmCloseBufferHandle(fd, fb->handles[i]);
        }
    }
    drmModeFreeFB2(fb);
}

static const char *const plane_props[] = {
    "FB_ID", "CRTC_ID", "SRC_X", "SRC_Y", "SRC_W", "SRC_H",
    "CRTC_X", "CRTC_Y", "CRTC_W", "CRTC_H",
};
#define N_PLANE_PROPS (sizeof(plane_props) / sizeof(plane_props[0]))

/* The state text: one line per CRTC, plane and connector. */
static bool state_text(int fd, char *out, size_t len)
{
    drmModeResPtr res = drmModeGetResources(fd);
    drmModePlaneResPtr pres = drmModeGetPlaneResources(fd);
    size_t used = 0;
    char buf[256], fbs[64];
    unsigned int j, k;
    int i;

#define EMIT(...) do { \
        if (used < len) { \
            used += snprintf(out + used, len - used, __VA_ARGS__); \
        } \
    } while (0)

    out[0] = 0;
    if (!res || !pres) {
        return false;
    }
    for (i = 0; i < res->count_crtcs; i++) {
        uint32_t id = res->crtcs[i];
        uint64_t blob_id = prop_val(fd, id, DRM_MODE_OBJECT_CRTC, "MODE_ID");
        drmModePropertyBlobPtr blob = NULL;

        snprintf(buf, sizeof(buf), "none");
        if (blob_id) {
            blob = drmModeGetPropertyBlob(fd, blob_id);
            if (blob && blob->length == sizeof(drmModeModeInfo)) {
                mode_str(blob->data, buf, sizeof(buf));
            } else {
                snprintf(buf, sizeof(buf), "unreadable");
            }
            drmModeFreePropertyBlob(blob);
        }
        EMIT("crtc id=%u ACTIVE=%llu MODE_ID=%s\n", id,
             (unsigned long long)prop_val(fd, id, DRM_MODE_OBJECT_CRTC,
                                          "ACTIVE"), buf);
    }
    for (j = 0; j < pres->count_planes; j++) {
        uint32_t id = pres->planes[j];
        uint64_t v[N_PLANE_PROPS];

        for (k = 0; k < N_PLANE_PROPS; k++) {
            v[k] = prop_val(fd, id, DRM_MODE_OBJECT_PLANE, plane_props[k]);
        }
        snprintf(fbs, sizeof(fbs), "-");
        if (v[0]) {
            fb_str(fd, v[0], fbs, sizeof(fbs));
        }
        /* SRC_* are 16.16 fixed point */
        EMIT("plane id=%u type=%s FB_ID=%llu fb=%s CRTC_ID=%llu "
             "SRC=%llu.%04llx,%llu.%04llx,%llu.%04llxx%llu.%04llx "
             "CRTC=%lld,%lld,%llux%llu\n", id,
             plane_type_str(prop_val(fd, id, DRM_MODE_OBJECT_PLANE, "type")),
             (unsigned long long)v[0], fbs, (unsigned long long)v[1],
             (unsigned long long)(v[2] >> 16),
             (unsigned long long)(v[2] & 0xffff),
             (unsigned long long)(v[3] >> 16),
             (unsigned long long)(v[3] & 0xffff),
             (unsigned long long)(v[4] >> 16),
             (unsigned long long)(v[4] & 0xffff),
             (unsigned long long)(v[5] >> 16),
             (unsigned long long)(v[5] & 0xffff),
             (long long)(int32_t)v[6], (long long)(int32_t)v[7],
             (unsigned long long)v[8], (unsigned long long)v[9]);
    }
    for (i = 0; i < res->count_connectors; i++) {
        uint32_t id = res->connectors[i];
        drmModeConnectorPtr c = drmModeGetConnectorCurrent(fd, id);
        const char *tn = c ? drmModeGetConnectorTypeName(c->connector_type)
                           : NULL;

        EMIT("connector id=%u type=%s CRTC_ID=%llu\n", id, tn ? tn : "?",
             (unsigned long long)prop_val(fd, id, DRM_MODE_OBJECT_CONNECTOR,
                                          "CRTC_ID"));
        drmModeFreeConnector(c);
    }
#undef EMIT
    drmModeFreePlaneResources(pres);
    drmModeFreeResources(res);
    return used < len;
}

static int cmd_state(void)
{
    static char text[STATE_MAX];
    char path[64];
    int fd;

    fd = open_vkms(path, sizeof(path), false);
    if (fd < 0) {
        printf("kms-rig-test: no vkms card in /dev/dri\n");
        return 77;
    }
    if (!set_caps(fd) || !state_text(fd, text, sizeof(text))) {
        printf("kms-rig-test: cannot read the state of %s: %s\n", path,
               strerror(errno));
        return 1;
    }
    fputs(text, stdout);
    close(fd);
    return 0;
}

/* ---- selftest ---- */

/* What the state was before the selftest, to put back. */
typedef struct SavedPlane {
    uint32_t id;
    uint64_t v[N_PLANE_PROPS];
} SavedPlane;

typedef struct Saved {
    uint32_t crtc;
    uint64_t active;
    bool has_mode;
    drmModeModeInfo mode;
    unsigned int n_planes;
    SavedPlane planes[32];
    unsigned int n_conns;
    uint32_t conn[16];
    uint64_t conn_crtc[16];
} Saved;

/* The objects the selftest drives. */
typedef struct Kms {
    int fd;
    uint32_t crtc;
    uint32_t conn;          /* the Virtual connector */
    uint32_t wb;            /* the writeback connector */
    uint32_t primary;
    uint32_t cursor;
    drmModeModeInfo mode;
} Kms;

/* A vgpusim plane imported into vkms. */
typedef struct Buf {
    struct vfio_device_gfx_plane_info info;
    int dmabuf;             /* owned, -1 when closed */
    uint8_t *map;           /* the dma-buf's mmap */
    uint32_t handle;        /* GEM handle in vkms */
    uint32_t fb;            /* vkms framebuffer */
} Buf;

static int vfio_open(const char *uuid)
{
    char path[PATH_MAX], link[PATH_MAX], gpath[PATH_MAX + 16];
    const char *g;
    ssize_t n;
    int container, group, dev;

    snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s/iommu_group",
             uuid);
    n = readlink(path, link, sizeof(link) - 1);
    if (n < 0) {
        printf("# readlink %s: %s\n", path, strerror(errno));
        return -1;
    }
    link[n] = 0;
    g = strrchr(link, '/');
    g = g ? g + 1 : link;
    container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
    snprintf(gpath, sizeof(gpath), "/dev/vfio/%s", g);
    group = open(gpath, O_RDWR | O_CLOEXEC);
    if (container < 0 || group < 0 ||
        ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) < 0 ||
        ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0) {
        printf("# VFIO container/group %s: %s\n", gpath, strerror(errno));
        dev = -1;
    } else {
        dev = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, uuid);
        if (dev < 0) {
            printf("# VFIO_GROUP_GET_DEVICE_FD: %s\n", strerror(errno));
        }
    }
    /* the device fd keeps the group and container in use */
    if (group >= 0) {
        close(group);
    }
    if (container >= 0) {
        close(container);
    }
    return dev;
}

static int vgs_write(const char *uuid, const char *attr, const char *val)
{
    char path[PATH_MAX];
    ssize_t n;
    int fd, err;

    snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s/vgpusim/%s",
             uuid, attr);
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    n = write(fd, val, strlen(val));
    err = errno;
    close(fd);
    return n == (ssize_t)strlen(val) ? 0 : n < 0 ? -err : -EIO;
}

/* QUERY_GFX_PLANE + GET_GFX_DMABUF + mmap; false with a message on error */
static bool buf_get(int dev, uint32_t type, Buf *b)
{
    struct dma_buf_sync sync = {
        .flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ,
    };
    uint32_t id;

    memset(b, 0, sizeof(*b));
    b->dmabuf = -1;
    b->map = MAP_FAILED;
    b->info.argsz = sizeof(b->info);
    b->info.flags = VFIO_GFX_PLANE_TYPE_DMABUF;
    b->info.drm_plane_type = type;
    if (ioctl(dev, VFIO_DEVICE_QUERY_GFX_PLANE, &b->info) < 0) {
        printf("# QUERY_GFX_PLANE type %u: %s\n", type, strerror(errno));
        return false;
    }
    if (!b->info.dmabuf_id) {
        printf("# plane type %u is disabled\n", type);
        return false;
    }
    id = b->info.dmabuf_id;
    b->dmabuf = ioctl(dev, VFIO_DEVICE_GET_GFX_DMABUF, &id);
    if (b->dmabuf < 0) {
        printf("# GET_GFX_DMABUF %u: %s\n", id, strerror(errno));
        return false;
    }
    b->map = mmap(NULL, b->info.size, PROT_READ, MAP_SHARED, b->dmabuf, 0);
    if (b->map == MAP_FAILED) {
        printf("# mmap of the dma-buf: %s\n", strerror(errno));
        return false;
    }
    if (ioctl(b->dmabuf, DMA_BUF_IOCTL_SYNC, &sync) < 0) {
        printf("# DMA_BUF_IOCTL_SYNC: %s\n", strerror(errno));
        return false;
    }
    return true;
}

static void buf_put(int fd, Buf *b)
{
    struct dma_buf_sync sync = {
        .flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ,
    };

    if (b->fb) {
        drmModeRmFB(fd, b->fb);
        b->fb = 0;
    }
    if (b->handle) {
        drmCloseBufferHandle(fd, b->handle);
        b->handle = 0;
    }
    if (b->map != MAP_FAILED && b->map) {
        ioctl(b->dmabuf, DMA_BUF_IOCTL_SYNC, &sync);
        munmap(b->map, b->info.size);
        b->map = MAP_FAILED;
    }
    if (b->dmabuf >= 0) {
        close(b->dmabuf);
        b->dmabuf = -1;
    }
}

/* PRIME import of @b's dma-buf and an FB over it */
static bool buf_import(int fd, Buf *b)
{
    uint32_t handles[4] = { 0 }, pitches[4] = { 0 }, offsets[4] = { 0 };
    uint64_t mods[4] = { 0 };
    uint32_t flags = 0;
    char s[5];
    int ret;

    ret = drmPrimeFDToHandle(fd, b->dmabuf, &b->handle);
    check(ret == 0, "PRIME_FD_TO_HANDLE of the vgpusim dma-buf (plane %u, "
          "%ux%u %s, %u bytes)%s%s", b->info.drm_plane_type, b->info.width,
          b->info.height, fourcc_str(b->info.drm_format, s), b->info.size,
          ret ? ": " : "", ret ? strerror(errno) : "");
    if (ret) {
        return false;
    }
    handles[0] = b->handle;
    pitches[0] = b->info.stride;
    if (b->info.drm_format_mod != DRM_FORMAT_MOD_INVALID) {
        mods[0] = b->info.drm_format_mod;
        flags = DRM_MODE_FB_MODIFIERS;
    }
    ret = drmModeAddFB2WithModifiers(fd, b->info.width, b->info.height,
                                     b->info.drm_format, handles, pitches,
                                     offsets, flags ? mods : NULL, &b->fb,
                                     flags);
    check(ret == 0, "ADDFB2 %s modifier 0x%llx stride %u%s%s",
          fourcc_str(b->info.drm_format, s),
          (unsigned long long)b->info.drm_format_mod, b->info.stride,
          ret ? ": " : "", ret ? strerror(errno) : "");
    return ret == 0;
}

static bool save_state(int fd, Saved *sv, const Kms *k)
{
    drmModeResPtr res = drmModeGetResources(fd);
    drmModePlaneResPtr pres = drmModeGetPlaneResources(fd);
    uint64_t blob_id;
    unsigned int j, p;
    int i;

    memset(sv, 0, sizeof(*sv));
    if (!res || !pres) {
        return false;
    }
    sv->crtc = k->crtc;
    sv->active = prop_val(fd, k->crtc, DRM_MODE_OBJECT_CRTC, "ACTIVE");
    blob_id = prop_val(fd, k->crtc, DRM_MODE_OBJECT_CRTC, "MODE_ID");
    if (blob_id) {
        drmModePropertyBlobPtr blob = drmModeGetPropertyBlob(fd, blob_id);

        if (!blob || blob->length != sizeof(sv->mode)) {
            return false;
        }
        memcpy(&sv->mode, blob->data, sizeof(sv->mode));
        sv->has_mode = true;
        drmModeFreePropertyBlob(blob);
    }
    for (j = 0; j < pres->count_planes && j < 32; j++) {
        sv->planes[j].id = pres->planes[j];
        for (p = 0; p < N_PLANE_PROPS; p++) {
            sv->planes[j].v[p] = prop_val(fd, pres->planes[j],
                                          DRM_MODE_OBJECT_PLANE,
                                          plane_props[p]);
        }
    }
    sv->n_planes = j;
    for (i = 0; i < res->count_connectors && i < 16; i++) {
        sv->conn[i] = res->connectors[i];
        sv->conn_crtc[i] = prop_val(fd, res->connectors[i],
                                    DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID");
    }
    sv->n_conns = i;
    drmModeFreePlaneResources(pres);
    drmModeFreeResources(res);
    return true;
}

static int add(drmModeAtomicReqPtr req, int fd, uint32_t obj, uint32_t type,
               const char *name, uint64_t val)
{
    uint32_t id = prop_find(fd, obj, type, name, NULL);

    if (!id) {
        printf("# object %u has no property %s\n", obj, name);
        return -1;
    }
    return drmModeAtomicAddProperty(req, obj, id, val) < 0 ? -1 : 0;
}

static bool restore_state(int fd, const Saved *sv)
{
    drmModeAtomicReqPtr req = drmModeAtomicAlloc();
    uint32_t blob = 0;
    unsigned int j, p;
    int err = 0, ret;

    if (sv->has_mode &&
        drmModeCreatePropertyBlob(fd, &sv->mode, sizeof(sv->mode),
                                  &blob) != 0) {
        printf("# CREATEPROPBLOB: %s\n", strerror(errno));
        return false;
    }
    err |= add(req, fd, sv->crtc, DRM_MODE_OBJECT_CRTC, "ACTIVE",
               sv->active);
    err |= add(req, fd, sv->crtc, DRM_MODE_OBJECT_CRTC, "MODE_ID", blob);
    for (j = 0; j < sv->n_planes; j++) {
        for (p = 0; p < N_PLANE_PROPS; p++) {
            err |= add(req, fd, sv->planes[j].id, DRM_MODE_OBJECT_PLANE,
                       plane_props[p], sv->planes[j].v[p]);
        }
    }
    for (j = 0; j < sv->n_conns; j++) {
        err |= add(req, fd, sv->conn[j], DRM_MODE_OBJECT_CONNECTOR,
                   "CRTC_ID", sv->conn_crtc[j]);
    }
    ret = err ? -1 : drmModeAtomicCommit(fd, req,
                                         DRM_MODE_ATOMIC_ALLOW_MODESET, NULL);
    if (ret) {
        printf("# restore commit: %s\n", strerror(errno));
    }
    drmModeAtomicFree(req);
    if (blob) {
        drmModeDestroyPropertyBlob(fd, blob);
    }
    return ret == 0;
}

/* The CRTC, the connectors, the planes and a mode of the vkms card. */
static bool find_objects(Kms *k)
{
    drmModeResPtr res = drmModeGetResources(k->fd);
    drmModePlaneResPtr pres = drmModeGetPlaneResources(k->fd);
    unsigned int j;
    int i, m;
    bool ok = false;

    if (!res || !pres || res->count_crtcs < 1) {
        return false;
    }
    k->crtc = res->crtcs[0];
    for (i = 0; i < res->count_connectors; i++) {
        drmModeConnectorPtr c = drmModeGetConnector(k->fd,
                                                    res->connectors[i]);

        if (!c) {
            continue;
        }
        if (c->connector_type == DRM_MODE_CONNECTOR_WRITEBACK) {
            k->wb = c->connector_id;
        } else if (!k->conn && c->count_modes > 0) {
            k->conn = c->connector_id;
            /* the preferred mode (vkms: 1024x768, as vgpusim's default) */
            k->mode = c->modes[0];
            for (m = 0; m < c->count_modes; m++) {
                if (c->modes[m].type & DRM_MODE_TYPE_PREFERRED) {
                    k->mode = c->modes[m];
                    break;
                }
            }
        }
        drmModeFreeConnector(c);
    }
    for (j = 0; j < pres->count_planes; j++) {
        uint64_t t = prop_val(k->fd, pres->planes[j], DRM_MODE_OBJECT_PLANE,
                              "type");

        if (t == DRM_PLANE_TYPE_PRIMARY && !k->primary) {
            k->primary = pres->planes[j];
        } else if (t == DRM_PLANE_TYPE_CURSOR && !k->cursor) {
            k->cursor = pres->planes[j];
        }
    }
    ok = k->conn && k->wb && k->primary && k->cursor;
    drmModeFreePlaneResources(pres);
    drmModeFreeResources(res);
    return ok;
}

/* vkms's blend of one 16-bit channel (vkms_composer.c, 32-bit unsigned) */
static uint16_t vkms_blend(uint16_t src, uint16_t dst, uint16_t alpha)
{
    uint32_t c = (uint32_t)src * 0xffff + (uint32_t)dst * (0xffff - alpha);

    return (uint16_t)((c + 0xffff / 2) / 0xffff);
}

/* one XRGB8888/ARGB8888 pixel (little endian) as vkms's 16-bit ARGB */
static void px16(const uint8_t *p, bool has_alpha, uint16_t out[4])
{
    out[0] = has_alpha ? p[3] * 257 : 0xffff;
    out[1] = p[2] * 257;
    out[2] = p[1] * 257;
    out[3] = p[0] * 257;
}

/*
 * The picture vkms should write back: black background, the primary at
 * 0,0 and the cursor at @cx,@cy, each blended as vkms_composer.c does,
 * stored as XRGB8888. Returns the number of differing pixels of @wb.
 */
static unsigned long compare(const Kms *k, const Buf *pri, const Buf *cur,
                             int cx, int cy, const uint8_t *wb,
                             uint32_t wb_pitch)
{
    unsigned int w = k->mode.hdisplay, h = k->mode.vdisplay, x, y, c;
    bool pa = pri->info.drm_format == DRM_FORMAT_ARGB8888;
    unsigned long bad = 0;

    for (y = 0; y < h; y++) {
        for (x = 0; x < w; x++) {
            uint16_t out[4] = { 0xffff, 0, 0, 0 }, s[4];
            uint32_t want, got;

            px16(pri->map + y * pri->info.stride + x * 4, pa, s);
            for (c = 1; c < 4; c++) {
                out[c] = vkms_blend(s[c], out[c], s[0]);
            }
            if ((int)x >= cx && (int)x < cx + (int)cur->info.width &&
                (int)y >= cy && (int)y < cy + (int)cur->info.height) {
                px16(cur->map + (y - cy) * cur->info.stride + (x - cx) * 4,
                     true, s);
                for (c = 1; c < 4; c++) {
                    out[c] = vkms_blend(s[c], out[c], s[0]);
                }
            }
            want = 0xff000000u | (uint32_t)((out[1] + 128) / 257) << 16 |
                   (uint32_t)((out[2] + 128) / 257) << 8 |
                   (uint32_t)((out[3] + 128) / 257);
            memcpy(&got, wb + y * wb_pitch + x * 4, 4);
            if (got != want) {
                if (bad < 5) {
                    printf("# pixel %u,%u: writeback 0x%08x, expected "
                           "0x%08x\n", x, y, got, want);
                }
                bad++;
            }
        }
    }
    return bad;
}

/* A dumb buffer of the mode's size with an XRGB8888 FB, mapped. */
typedef struct Dumb {
    uint32_t handle, pitch, fb;
    uint64_t size;
    uint8_t *map;
} Dumb;

static bool dumb_new(int fd, uint32_t w, uint32_t h, Dumb *d)
{
    struct drm_mode_create_dumb cd = { .width = w, .height = h, .bpp = 32 };
    struct drm_mode_map_dumb md = { 0 };
    uint32_t handles[4] = { 0 }, pitches[4] = { 0 }, offsets[4] = { 0 };

    memset(d, 0, sizeof(*d));
    d->map = MAP_FAILED;
    if (drmIoctl(fd, DRM_IOCTL_MODE_CREATE_DUMB, &cd) < 0) {
        printf("# CREATE_DUMB: %s\n", strerror(errno));
        return false;
    }
    d->handle = cd.handle;
    d->pitch = cd.pitch;
    d->size = cd.size;
    handles[0] = d->handle;
    pitches[0] = d->pitch;
    if (drmModeAddFB2(fd, w, h, DRM_FORMAT_XRGB8888, handles, pitches,
                      offsets, &d->fb, 0) < 0) {
        printf("# ADDFB2 of the dumb buffer: %s\n", strerror(errno));
        return false;
    }
    md.handle = d->handle;
    if (drmIoctl(fd, DRM_IOCTL_MODE_MAP_DUMB, &md) < 0) {
        printf("# MAP_DUMB: %s\n", strerror(errno));
        return false;
    }
    d->map = mmap(NULL, d->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                  md.offset);
    if (d->map == MAP_FAILED) {
        printf("# mmap of the dumb buffer: %s\n", strerror(errno));
        return false;
    }
    return true;
}

static void dumb_free(int fd, Dumb *d)
{
    if (d->map != MAP_FAILED && d->map) {
        munmap(d->map, d->size);
    }
    if (d->fb) {
        drmModeRmFB(fd, d->fb);
    }
    if (d->handle) {
        drmModeDestroyDumbBuffer(fd, d->handle);
    }
    memset(d, 0, sizeof(*d));
}

/*
 * One atomic commit: the primary on the whole mode, the cursor at @cx,@cy,
 * a modeset with the mode when @modeset, a writeback job into @d unless it
 * is NULL (then the commit is all). Waits for the writeback fence.
 * Returns true when the commit worked and the fence (if any) signalled.
 */
static bool commit_frame(const Kms *k, const Buf *pri, const Buf *cur,
                         int cx, int cy, bool modeset, const Dumb *d)
{
    drmModeAtomicReqPtr req = drmModeAtomicAlloc();
    unsigned int w = k->mode.hdisplay, h = k->mode.vdisplay;
    uint32_t blob = 0;
    int32_t fence = -1;
    struct pollfd pfd;
    int err = 0, ret, fd = k->fd;
    bool ok = false;

    if (d) {
        memset(d->map, 0, d->size);
    }
    if (modeset) {
        if (drmModeCreatePropertyBlob(fd, &k->mode, sizeof(k->mode),
                                      &blob) != 0) {
            printf("# CREATEPROPBLOB: %s\n", strerror(errno));
            goto out;
        }
        err |= add(req, fd, k->crtc, DRM_MODE_OBJECT_CRTC, "ACTIVE", 1);
        err |= add(req, fd, k->crtc, DRM_MODE_OBJECT_CRTC, "MODE_ID", blob);
        err |= add(req, fd, k->conn, DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID",
                   k->crtc);
        err |= add(req, fd, k->primary, DRM_MODE_OBJECT_PLANE, "CRTC_ID",
                   k->crtc);
        err |= add(req, fd, k->primary, DRM_MODE_OBJECT_PLANE, "SRC_X", 0);
        err |= add(req, fd, k->primary, DRM_MODE_OBJECT_PLANE, "SRC_Y", 0);
        err |= add(req, fd, k->primary, DRM_MODE_OBJECT_PLANE, "SRC_W",
                   (uint64_t)w << 16);
        err |= add(req, fd, k->primary, DRM_MODE_OBJECT_PLANE, "SRC_H",
                   (uint64_t)h << 16);
        err |= add(req, fd, k->primary, DRM_MODE_OBJECT_PLANE, "CRTC_X", 0);
        err |= add(req, fd, k->primary, DRM_MODE_OBJECT_PLANE, "CRTC_Y", 0);
        err |= add(req, fd, k->primary, DRM_MODE_OBJECT_PLANE, "CRTC_W", w);
        err |= add(req, fd, k->primary, DRM_MODE_OBJECT_PLANE, "CRTC_H", h);
        err |= add(req, fd, k->cursor, DRM_MODE_OBJECT_PLANE, "FB_ID",
                   cur->fb);
        err |= add(req, fd, k->cursor, DRM_MODE_OBJECT_PLANE, "CRTC_ID",
                   k->crtc);
        err |= add(req, fd, k->cursor, DRM_MODE_OBJECT_PLANE, "SRC_X", 0);
        err |= add(req, fd, k->cursor, DRM_MODE_OBJECT_PLANE, "SRC_Y", 0);
        err |= add(req, fd, k->cursor, DRM_MODE_OBJECT_PLANE, "SRC_W",
                   (uint64_t)cur->info.width << 16);
        err |= add(req, fd, k->cursor, DRM_MODE_OBJECT_PLANE, "SRC_H",
                   (uint64_t)cur->info.height << 16);
        err |= add(req, fd, k->cursor, DRM_MODE_OBJECT_PLANE, "CRTC_W",
                   cur->info.width);
        err |= add(req, fd, k->cursor, DRM_MODE_OBJECT_PLANE, "CRTC_H",
                   cur->info.height);
    }
    err |= add(req, fd, k->primary, DRM_MODE_OBJECT_PLANE, "FB_ID", pri->fb);
    err |= add(req, fd, k->cursor, DRM_MODE_OBJECT_PLANE, "CRTC_X",
               (uint64_t)(int64_t)cx);
    err |= add(req, fd, k->cursor, DRM_MODE_OBJECT_PLANE, "CRTC_Y",
               (uint64_t)(int64_t)cy);
    if (d) {
        /*
         * The writeback connector takes the CRTC alone: Debian's 6.12
         * drm_kms_helper checks encoder clones ("failed valid clone
         * check"), and vkms 6.12 gives its two encoders no
         * possible_clones, so the Virtual connector and the writeback
         * connector cannot share the CRTC (EINVAL).
         */
        err |= add(req, fd, k->conn, DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID",
                   0);
        err |= add(req, fd, k->wb, DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID",
                   k->crtc);
        err |= add(req, fd, k->wb, DRM_MODE_OBJECT_CONNECTOR,
                   "WRITEBACK_FB_ID", d->fb);
        err |= add(req, fd, k->wb, DRM_MODE_OBJECT_CONNECTOR,
                   "WRITEBACK_OUT_FENCE_PTR", (uint64_t)(uintptr_t)&fence);
    }
    if (err) {
        printf("# building the atomic request failed\n");
        goto out;
    }
    ret = drmModeAtomicCommit(fd, req, modeset || d ?
                              DRM_MODE_ATOMIC_ALLOW_MODESET : 0, NULL);
    check(ret == 0, "atomic commit: %s%ux%u, primary FB %u, cursor FB %u "
          "at %d,%d, writeback FB %u%s%s", modeset ? "modeset " :
          d ? "writeback connector alone on the CRTC, " : "", w, h,
          pri->fb, cur->fb, cx, cy, d ? d->fb : 0, ret ? ": " : "",
          ret ? strerror(errno) : "");
    if (ret || !d) {
        ok = ret == 0;
        goto out;
    }
    pfd.fd = fence;
    pfd.events = POLLIN;
    ret = fence >= 0 ? poll(&pfd, 1, FENCE_WAIT_MS) : -1;
    check(ret == 1, "writeback fence %d signalled (poll %d)", fence, ret);
    ok = ret == 1;
out:
    if (fence >= 0) {
        close(fence);
    }
    if (blob) {
        drmModeDestroyPropertyBlob(fd, blob);
    }
    drmModeAtomicFree(req);
    return ok;
}

/*
 * After a refused writeback commit: which part the kernel refuses, by
 * TEST_ONLY commits of the writeback connector's properties alone.
 */
static void probe_writeback(const Kms *k, const Dumb *d)
{
    static const struct {
        bool fb, fence, modeset;
    } v[] = {
        { false, false, false }, { false, false, true },
        { true, false, false }, { true, false, true },
        { true, true, true },
    };
    unsigned int i;

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        drmModeAtomicReqPtr req = drmModeAtomicAlloc();
        int32_t fence = -1;
        int ret, err = 0;

        err |= add(req, k->fd, k->wb, DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID",
                   k->crtc);
        if (v[i].fb) {
            err |= add(req, k->fd, k->wb, DRM_MODE_OBJECT_CONNECTOR,
                       "WRITEBACK_FB_ID", d->fb);
        }
        if (v[i].fence) {
            err |= add(req, k->fd, k->wb, DRM_MODE_OBJECT_CONNECTOR,
                       "WRITEBACK_OUT_FENCE_PTR",
                       (uint64_t)(uintptr_t)&fence);
        }
        ret = err ? -1 : drmModeAtomicCommit(k->fd, req,
                DRM_MODE_ATOMIC_TEST_ONLY |
                (v[i].modeset ? DRM_MODE_ATOMIC_ALLOW_MODESET : 0), NULL);
        printf("# TEST_ONLY writeback CRTC_ID%s%s%s: %s\n",
               v[i].fb ? " + WRITEBACK_FB_ID" : "",
               v[i].fence ? " + OUT_FENCE_PTR" : "",
               v[i].modeset ? " (ALLOW_MODESET)" : "",
               ret ? strerror(errno) : "ok");
        if (fence >= 0) {
            close(fence);
        }
        drmModeAtomicFree(req);
    }
}

static int cmd_selftest(const char *uuid)
{
    static char before[STATE_MAX], after[STATE_MAX], reopened[STATE_MAX];
    static const struct {
        int x, y;
        const char *what;
    } spots[] = {
        { 200, 100, "inside" },
        { 1000, 740, "across the bottom-right edge" },
        { -20, -40, "across the top-left edge" },
    };
    char path[64];
    Kms k = { .fd = -1 };
    Saved sv;
    Buf pri, cur;
    Dumb d = { .map = MAP_FAILED };
    unsigned int i;
    int dev, ret;
    bool ok;

    memset(&pri, 0, sizeof(pri));
    memset(&cur, 0, sizeof(cur));
    pri.dmabuf = cur.dmabuf = -1;
    pri.map = cur.map = MAP_FAILED;

    k.fd = open_vkms(path, sizeof(path), true);
    if (k.fd < 0) {
        printf("kms-rig-test: no vkms card in /dev/dri\n");
        return 77;
    }
    check(set_caps(k.fd), "%s: client caps universal planes, atomic, "
          "writeback connectors", path);
    ok = find_objects(&k);
    check(ok, "vkms objects: CRTC %u, connector %u, "
          "writeback %u, primary plane %u, cursor plane %u, mode %s",
          k.crtc, k.conn, k.wb, k.primary, k.cursor, k.mode.name);
    check(state_text(k.fd, before, sizeof(before)), "state before read");
    printf("# state before:\n%s", before);
    check(save_state(k.fd, &sv, &k), "state before saved");
    ret = drmSetMaster(k.fd);
    check(ret == 0, "DRM master%s%s", ret ? ": " : "",
          ret ? strerror(errno) : "");
    if (nfail) {
        goto out;
    }

    /* vgpusim: the built-in guest stopped on a frame, the cursor on */
    dev = vfio_open(uuid);
    check(dev >= 0, "vgpusim %s open", uuid);
    if (dev < 0) {
        goto out;
    }
    check(vgs_write(uuid, "pause", "1") == 0, "vgpusim engine paused");
    check(vgs_write(uuid, "cursor", "on") == 0, "vgpusim cursor on");
    if (!buf_get(dev, DRM_PLANE_TYPE_PRIMARY, &pri) ||
        !buf_get(dev, DRM_PLANE_TYPE_CURSOR, &cur)) {
        check(false, "vgpusim primary and cursor dma-bufs mmapped");
        goto close_dev;
    }
    check(pri.info.width == k.mode.hdisplay &&
          pri.info.height == k.mode.vdisplay,
          "vgpusim's mode %ux%u is vkms's preferred mode %ux%u",
          pri.info.width, pri.info.height, k.mode.hdisplay,
          k.mode.vdisplay);
    check(pri.info.drm_format == DRM_FORMAT_XRGB8888 ||
          pri.info.drm_format == DRM_FORMAT_ARGB8888,
          "vgpusim primary format is XRGB8888 or ARGB8888");
    check(cur.info.drm_format == DRM_FORMAT_ARGB8888,
          "vgpusim cursor format is ARGB8888");
    if (nfail || !buf_import(k.fd, &pri) || !buf_import(k.fd, &cur) ||
        !dumb_new(k.fd, k.mode.hdisplay, k.mode.vdisplay, &d)) {
        check(false, "buffers ready");
        goto close_dev;
    }

    /* the mode and the planes first, then one writeback per spot */
    ok = commit_frame(&k, &pri, &cur, spots[0].x, spots[0].y, true, NULL);
    for (i = 0; ok && i < sizeof(spots) / sizeof(spots[0]); i++) {
        unsigned long bad;

        if (!commit_frame(&k, &pri, &cur, spots[i].x, spots[i].y, false,
                          &d)) {
            probe_writeback(&k, &d);
            break;
        }
        bad = compare(&k, &pri, &cur, spots[i].x, spots[i].y, d.map,
                      d.pitch);
        check(bad == 0, "writeback %ux%u equals the vgpusim frame with its "
              "cursor at %d,%d (%s) as vkms blends it: %lu pixels differ",
              k.mode.hdisplay, k.mode.vdisplay, spots[i].x, spots[i].y,
              spots[i].what, bad);
    }

    check(restore_state(k.fd, &sv), "state before committed again");
    check(state_text(k.fd, after, sizeof(after)) &&
          strcmp(before, after) == 0, "state after restore equals before");
    if (strcmp(before, after) != 0) {
        printf("# state after restore:\n%s", after);
    }

close_dev:
    buf_put(k.fd, &pri);
    buf_put(k.fd, &cur);
    dumb_free(k.fd, &d);
    close(dev);
    vgs_write(uuid, "pause", "0");
out:
    /* the last close gives the CRTC back to fbdev (if it had it) */
    drmDropMaster(k.fd);
    close(k.fd);
    k.fd = open_vkms(path, sizeof(path), false);
    check(k.fd >= 0 && set_caps(k.fd) &&
          state_text(k.fd, reopened, sizeof(reopened)) &&
          strcmp(before, reopened) == 0,
          "state after close and reopen equals before");
    if (strcmp(before, reopened) != 0) {
        printf("# state after reopen:\n%s", reopened);
    }
    if (k.fd >= 0) {
        close(k.fd);
    }
    printf("kms-rig-test: selftest %s (%d failed)\n", nfail ? "FAIL" : "PASS",
           nfail);
    return nfail ? 1 : 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 2 && strcmp(argv[1], "info") == 0) {
        return cmd_info();
    }
    if (argc == 2 && strcmp(argv[1], "state") == 0) {
        return cmd_state();
    }
    if (argc == 3 && strcmp(argv[1], "selftest") == 0) {
        return cmd_selftest(argv[2]);
    }
    fprintf(stderr, "usage: kms-rig-test info | state | selftest UUID\n");
    return 2;
}
