/*
 * -display kms: a console's frames on a KMS plane of the host, without a
 * compositor and, for dma-buf consoles, without a copy.
 *
 *   -display kms[,device=/dev/dri/cardN][,connector=NAME][,mode=WxH]
 *               [,plane=ID][,x-writeback=FILE]
 *
 * A console that hands over dma-bufs (a vfio vGPU through
 * ui/dmabuf-scanout.c) gets them imported with PRIME, one framebuffer per
 * buffer, and flipped onto the primary plane with atomic commits; its
 * cursor buffer goes to the cursor plane the same way. Any other frame
 * (a plain surface, or a dma-buf the device cannot import, or a device
 * without a cursor plane) is copied into one of two dumb buffers. One
 * commit is in flight at a time; a frame that arrives meanwhile waits for
 * the page-flip event, and a newer one replaces it (counted as dropped).
 * At exit (also on SIGTERM) the CRTC, connectors and planes are given back
 * as they were found.
 *
 * Ownership:
 *   - KmsDisplay is created at display init and lives until exit; its exit
 *     notifier restores the device and closes the DRM fd, which it owns.
 *   - KmsFb: an import (a GEM handle from the console's dma-buf fd and a
 *     framebuffer) or a dumb buffer (handle, framebuffer, mapping). The
 *     display owns them. An import is keyed by the console's QemuDmaBuf,
 *     which stays the console's: kms never closes its fds. Once the
 *     console releases the buffer (dpy_gl_release_dmabuf) the framebuffer
 *     is removed as soon as no commit on screen or in flight uses it.
 *   - GEM handles: one per dma-buf per DRM fd (the kernel gives the same
 *     handle for the same buffer); closed when the last KmsFb using it goes.
 *   - The writeback fence fd (x-writeback) is the display's until the
 *     written-back frame is saved.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <poll.h>
#include <sys/mman.h>
#include <xf86drm.h>
#include <xf86drmMode.h>
#include "standard-headers/drm/drm_fourcc.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/notify.h"
#include "qapi/error.h"
#include "qom/object.h"
#include "system/system.h"
#include "ui/console.h"
#include "ui/surface.h"
#include "trace.h"

#define KMS_MAX_CARDS 16

typedef struct KmsFb {
    QemuDmaBuf *key;        /* the console's buffer, or NULL */
    uint32_t fb_id;
    uint32_t handle;
    uint32_t w, h, fourcc;
    uint64_t modifier;
    int fd;                 /* the dma-buf fd it was imported from (key) */
    uint32_t stride, offset;
    int refs;               /* states (wanted, in flight, shown) using it */
    bool released;          /* the console gave it up */
    /* dumb buffers */
    bool dumb;
    void *map;
    uint64_t map_size;
    uint32_t pitch;
    pixman_image_t *img;
} KmsFb;

/* what a commit puts on screen */
typedef struct KmsState {
    KmsFb *primary;
    KmsFb *cursor;
    int32_t cursor_x, cursor_y;
} KmsState;

typedef struct KmsPlaneProps {
    uint32_t fb_id, crtc_id;
    uint32_t src_x, src_y, src_w, src_h;
    uint32_t crtc_x, crtc_y, crtc_w, crtc_h;
} KmsPlaneProps;

/* one property of one object as found at start, for the restore */
typedef struct KmsSaved {
    uint32_t obj, prop;
    uint64_t value;
    bool conn_crtc;         /* a connector's CRTC_ID */
} KmsSaved;

typedef struct KmsStats {
    uint64_t commits, flips_shown, flips_dropped, commit_failures;
    uint64_t imports, import_failures, releases, copies, writebacks;
    uint64_t modesets;
} KmsStats;

typedef struct KmsDisplay {
    DisplayChangeListener dcl;
    char *path;
    int fd;

    /* the output */
    uint32_t conn_id, crtc_id, crtc_index;
    uint32_t primary_id, cursor_id;
    uint32_t wb_conn_id;
    char *conn_name;
    drmModeModeInfo *modes;
    int n_modes;
    int preferred;
    int forced_mode;        /* mode=WxH: index, or -1 */
    uint64_t cursor_max_w, cursor_max_h;

    /* property ids */
    uint32_t p_active, p_mode_id, p_conn_crtc;
    uint32_t p_wb_crtc, p_wb_fb, p_wb_fence;
    KmsPlaneProps pp, cp;
    drmModePropertyBlobRes *primary_formats;  /* IN_FORMATS, or NULL */
    uint32_t *primary_legacy_formats;
    uint32_t n_primary_legacy_formats;

    /* the state found at start */
    KmsSaved *saved;
    int n_saved;
    drmModeModeInfo saved_mode;
    bool saved_mode_valid;
    bool touched;

    /* the mode set now */
    int mode;               /* index in modes, or -1 */
    uint32_t mode_blob;
    bool modeset_owed;
    uint32_t tested_w, tested_h; /* a dma-buf frame size the mode takes */

    /* frames */
    GPtrArray *fbs;         /* KmsFb *, imports and dumb buffers */
    KmsState want, inflight, shown;
    bool dirty;             /* want differs from what was committed */
    KmsFb *committed_primary;  /* the primary of the last commit */
    bool in_flight;
    bool cursor_refused;    /* the cursor plane refused the guest's */
    /*
     * The console's cursor dma-buf (dpy_gl_cursor_dmabuf), borrowed until
     * the console releases it or gives another: kept while the console
     * shows no dma-buf yet, so that a cursor given before the first
     * scanout is on the cursor plane with it.
     */
    QemuDmaBuf *cursor_buf;
    bool dmabuf_mode;       /* the console shows dma-bufs */
    bool dmabuf_ok;         /* we can show them (else: surfaces, copied) */
    uint32_t frame_w, frame_h; /* the frame's size (scanout or surface) */
    DisplaySurface *surface;
    QEMUCursor *qcursor;
    bool qcursor_on;
    int32_t qcursor_x, qcursor_y;
    KmsFb *qcursor_fb;
    KmsFb *copy[2];         /* the copy path's buffers */
    bool cursor_blend;      /* no cursor plane (or it refused): blended */
    bool qcursor_big;       /* this cursor is larger than the plane takes */
    bool surface_dirty;     /* the copy path must copy the surface again */

    /* x-writeback */
    char *wb_path;
    KmsFb *wb_fb;
    int32_t wb_fence;
    uint64_t wb_commit;
    int64_t wb_since_ms;    /* when the pending writeback was committed */

    /* messages said once */
    bool said_copy, said_cursor, said_commit, said_wb;

    KmsStats stats;
    Notifier exit_notifier;
} KmsDisplay;

static const char *fourcc_str(uint32_t f, char buf[5])
{
    for (int i = 0; i < 4; i++) {
        char c = (f >> (8 * i)) & 0xff;
        buf[i] = g_ascii_isprint(c) ? c : '?';
    }
    buf[4] = 0;
    return buf;
}

/* ------------------------------------------------------------------ */
/* properties */

static uint32_t prop_id(int fd, uint32_t obj, uint32_t type, const char *name,
                        uint64_t *value)
{
    drmModeObjectProperties *props = drmModeObjectGetProperties(fd, obj, type);
    uint32_t id = 0;

    if (!props) {
        return 0;
    }
    for (uint32_t i = 0; i < props->count_props && !id; i++) {
        drmModePropertyRes *p = drmModeGetProperty(fd, props->props[i]);

        if (p && !strcmp(p->name, name)) {
            id = p->prop_id;
            if (value) {
                *value = props->prop_values[i];
            }
        }
        drmModeFreeProperty(p);
    }
    drmModeFreeObjectProperties(props);
    return id;
}

static bool plane_props(int fd, uint32_t plane, KmsPlaneProps *pp)
{
    static const char *const names[] = {
        "FB_ID", "CRTC_ID", "SRC_X", "SRC_Y", "SRC_W", "SRC_H",
        "CRTC_X", "CRTC_Y", "CRTC_W", "CRTC_H",
    };
    uint32_t *ids = &pp->fb_id;

    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        ids[i] = prop_id(fd, plane, DRM_MODE_OBJECT_PLANE, names[i], NULL);
        if (!ids[i]) {
            return false;
        }
    }
    return true;
}

/* remember every property value of @obj that a commit of ours may change */
static void save_object(KmsDisplay *kms, uint32_t obj, uint32_t type,
                        const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t v = 0;
        uint32_t id = prop_id(kms->fd, obj, type, names[i], &v);

        if (!id) {
            continue;
        }
        kms->saved = g_renew(KmsSaved, kms->saved, kms->n_saved + 1);
        kms->saved[kms->n_saved++] = (KmsSaved){
            obj, id, v, type == DRM_MODE_OBJECT_CONNECTOR,
        };
    }
}

static void save_state(KmsDisplay *kms)
{
    static const char *const plane_names[] = {
        "FB_ID", "CRTC_ID", "SRC_X", "SRC_Y", "SRC_W", "SRC_H",
        "CRTC_X", "CRTC_Y", "CRTC_W", "CRTC_H",
    };
    static const char *const crtc_names[] = { "ACTIVE" };
    static const char *const conn_names[] = { "CRTC_ID" };
    drmModeRes *res = drmModeGetResources(kms->fd);
    drmModePlaneRes *pres = drmModeGetPlaneResources(kms->fd);
    drmModeCrtc *crtc = drmModeGetCrtc(kms->fd, kms->crtc_id);

    save_object(kms, kms->crtc_id, DRM_MODE_OBJECT_CRTC, crtc_names, 1);
    if (crtc && crtc->mode_valid) {
        kms->saved_mode = crtc->mode;
        kms->saved_mode_valid = true;
    }
    drmModeFreeCrtc(crtc);
    for (int i = 0; res && i < res->count_connectors; i++) {
        save_object(kms, res->connectors[i], DRM_MODE_OBJECT_CONNECTOR,
                    conn_names, 1);
    }
    for (uint32_t i = 0; pres && i < pres->count_planes; i++) {
        if (pres->planes[i] == kms->primary_id ||
            pres->planes[i] == kms->cursor_id) {
            save_object(kms, pres->planes[i], DRM_MODE_OBJECT_PLANE,
                        plane_names, G_N_ELEMENTS(plane_names));
        }
    }
    drmModeFreePlaneResources(pres);
    drmModeFreeResources(res);
}

/* ------------------------------------------------------------------ */
/* framebuffers */

static KmsFb *fb_new(KmsDisplay *kms)
{
    KmsFb *fb = g_new0(KmsFb, 1);

    fb->fd = -1;
    g_ptr_array_add(kms->fbs, fb);
    return fb;
}

static bool handle_shared(KmsDisplay *kms, KmsFb *fb)
{
    for (guint i = 0; i < kms->fbs->len; i++) {
        KmsFb *o = g_ptr_array_index(kms->fbs, i);

        if (o != fb && !o->dumb && o->handle == fb->handle) {
            return true;
        }
    }
    return false;
}

static void fb_destroy(KmsDisplay *kms, KmsFb *fb)
{
    trace_kms_fb_destroy(fb->fb_id, fb->dumb);
    if (fb->fb_id) {
        drmModeRmFB(kms->fd, fb->fb_id);
    }
    if (fb->img) {
        pixman_image_unref(fb->img);
    }
    if (fb->map) {
        munmap(fb->map, fb->map_size);
    }
    if (fb->dumb && fb->handle) {
        drmModeDestroyDumbBuffer(kms->fd, fb->handle);
    } else if (fb->handle && !handle_shared(kms, fb)) {
        drmCloseBufferHandle(kms->fd, fb->handle);
    }
    g_ptr_array_remove_fast(kms->fbs, fb);
    g_free(fb);
}

static void fb_ref(KmsFb *fb)
{
    if (fb) {
        fb->refs++;
    }
}

static void fb_unref(KmsDisplay *kms, KmsFb *fb)
{
    if (fb && --fb->refs == 0 && fb->released) {
        fb_destroy(kms, fb);
    }
}

static void state_set(KmsDisplay *kms, KmsState *dst, const KmsState *src)
{
    KmsState old = *dst;

    fb_ref(src->primary);
    fb_ref(src->cursor);
    *dst = *src;
    fb_unref(kms, old.primary);
    fb_unref(kms, old.cursor);
}

static KmsFb *dumb_new(KmsDisplay *kms, uint32_t w, uint32_t h,
                       uint32_t fourcc, Error **errp)
{
    KmsFb *fb = fb_new(kms);
    uint32_t handles[4] = { 0 }, pitches[4] = { 0 }, offsets[4] = { 0 };
    uint64_t offset;
    int ret;

    fb->dumb = true;
    fb->w = w;
    fb->h = h;
    fb->fourcc = fourcc;
    fb->released = true; /* nobody else holds it: freed at refs 0 */
    ret = drmModeCreateDumbBuffer(kms->fd, w, h, 32, 0, &fb->handle,
                                  &fb->pitch, &fb->map_size);
    if (ret) {
        error_setg_errno(errp, -ret, "cannot create a %ux%u dumb buffer",
                         w, h);
        goto fail;
    }
    ret = drmModeMapDumbBuffer(kms->fd, fb->handle, &offset);
    if (!ret) {
        fb->map = mmap(NULL, fb->map_size, PROT_READ | PROT_WRITE,
                       MAP_SHARED, kms->fd, offset);
        if (fb->map == MAP_FAILED) {
            fb->map = NULL;
            ret = -errno;
        }
    }
    if (ret) {
        error_setg_errno(errp, -ret, "cannot map a dumb buffer");
        goto fail;
    }
    memset(fb->map, 0, fb->map_size);
    fb->img = pixman_image_create_bits(fourcc == DRM_FORMAT_ARGB8888 ?
                                       PIXMAN_a8r8g8b8 : PIXMAN_x8r8g8b8,
                                       w, h, fb->map, fb->pitch);
    handles[0] = fb->handle;
    pitches[0] = fb->pitch;
    ret = drmModeAddFB2(kms->fd, w, h, fb->fourcc, handles, pitches, offsets,
                        &fb->fb_id, 0);
    if (ret) {
        error_setg_errno(errp, errno, "cannot add a %ux%u framebuffer", w, h);
        goto fail;
    }
    return fb;

fail:
    fb->refs = 0;
    fb_destroy(kms, fb);
    return NULL;
}

/* Whether the primary plane lists @fourcc with @modifier */
static bool primary_takes(KmsDisplay *kms, uint32_t fourcc, uint64_t modifier)
{
    if (kms->primary_formats) {
        drmModeFormatModifierIterator it = { 0 };

        while (drmModeFormatModifierBlobIterNext(kms->primary_formats, &it)) {
            if (it.fmt == fourcc && it.mod == modifier) {
                return true;
            }
        }
        return false;
    }
    if (modifier != DRM_FORMAT_MOD_LINEAR) {
        return false;
    }
    for (uint32_t i = 0; i < kms->n_primary_legacy_formats; i++) {
        if (kms->primary_legacy_formats[i] == fourcc) {
            return true;
        }
    }
    return false;
}

/* The framebuffer of the console's @buf, imported on first use */
static KmsFb *import(KmsDisplay *kms, QemuDmaBuf *buf, bool cursor,
                     Error **errp)
{
    int nfds = 0;
    const int *fds = qemu_dmabuf_get_fds(buf, &nfds);
    const uint32_t *strides = qemu_dmabuf_get_strides(buf, NULL);
    const uint32_t *offsets = qemu_dmabuf_get_offsets(buf, NULL);
    uint32_t w = qemu_dmabuf_get_width(buf), h = qemu_dmabuf_get_height(buf);
    uint32_t fourcc = qemu_dmabuf_get_fourcc(buf);
    uint64_t mod = qemu_dmabuf_get_modifier(buf);
    uint32_t handles[4] = { 0 }, pitches[4] = { 0 }, offs[4] = { 0 };
    uint64_t mods[4] = { 0 };
    KmsFb *fb;
    char fs[5];
    int ret;

    for (guint i = 0; i < kms->fbs->len; i++) {
        fb = g_ptr_array_index(kms->fbs, i);
        if (fb->key != buf) {
            continue;
        }
        if (fb->fd == fds[0] && fb->w == w && fb->h == h &&
            fb->fourcc == fourcc && fb->modifier == mod &&
            fb->stride == strides[0] && fb->offset == offsets[0]) {
            return fb;
        }
        /* the console reused its QemuDmaBuf for another buffer */
        fb->key = NULL;
        fb->released = true;
        if (!fb->refs) {
            fb_destroy(kms, fb);
        }
        break;
    }
    if (nfds < 1 || qemu_dmabuf_get_num_planes(buf) != 1) {
        error_setg(errp, "a %u-plane dma-buf (only single-plane formats)",
                   qemu_dmabuf_get_num_planes(buf));
        return NULL;
    }
    if (!cursor && !primary_takes(kms, fourcc, mod)) {
        error_setg(errp, "plane %u does not take format %s with modifier "
                   "0x%" PRIx64, kms->primary_id, fourcc_str(fourcc, fs), mod);
        return NULL;
    }
    fb = fb_new(kms);
    fb->key = buf;
    fb->fd = fds[0];
    fb->w = w;
    fb->h = h;
    fb->fourcc = fourcc;
    fb->modifier = mod;
    fb->stride = strides[0];
    fb->offset = offsets[0];
    if (drmPrimeFDToHandle(kms->fd, fds[0], &fb->handle)) {
        error_setg_errno(errp, errno, "PRIME import of the dma-buf failed");
        goto fail;
    }
    handles[0] = fb->handle;
    pitches[0] = fb->stride;
    offs[0] = fb->offset;
    mods[0] = mod;
    ret = drmModeAddFB2WithModifiers(kms->fd, w, h, fourcc, handles, pitches,
                                     offs, mods, &fb->fb_id,
                                     DRM_MODE_FB_MODIFIERS);
    if (ret) {
        error_setg_errno(errp, errno, "the device refuses a %ux%u %s "
                         "framebuffer with modifier 0x%" PRIx64,
                         w, h, fourcc_str(fourcc, fs), mod);
        goto fail;
    }
    kms->stats.imports++;
    trace_kms_import(fb->fb_id, fb->handle, w, h, fourcc, mod);
    return fb;

fail:
    kms->stats.import_failures++;
    fb->key = NULL;
    fb->released = true;
    fb_destroy(kms, fb);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* modes */

static int find_mode(KmsDisplay *kms, uint32_t w, uint32_t h)
{
    int best = -1;

    for (int i = 0; i < kms->n_modes; i++) {
        if (kms->modes[i].hdisplay != w || kms->modes[i].vdisplay != h ||
            (kms->modes[i].flags & DRM_MODE_FLAG_INTERLACE)) {
            continue;
        }
        if (best < 0 || (kms->modes[i].type & DRM_MODE_TYPE_PREFERRED) ||
            (!(kms->modes[best].type & DRM_MODE_TYPE_PREFERRED) &&
             kms->modes[i].vrefresh == 60)) {
            best = i;
        }
    }
    return best;
}

/* the mode for a @w x @h frame: the user's, the frame's own, or preferred */
static int mode_for(KmsDisplay *kms, uint32_t w, uint32_t h)
{
    int m;

    if (kms->forced_mode >= 0) {
        return kms->forced_mode;
    }
    m = find_mode(kms, w, h);
    return m >= 0 ? m : kms->preferred;
}

static void set_mode(KmsDisplay *kms, int m)
{
    if (m == kms->mode) {
        return;
    }
    if (kms->mode_blob) {
        drmModeDestroyPropertyBlob(kms->fd, kms->mode_blob);
        kms->mode_blob = 0;
    }
    kms->mode = m;
    kms->tested_w = kms->tested_h = 0;
    drmModeCreatePropertyBlob(kms->fd, &kms->modes[m], sizeof(kms->modes[m]),
                              &kms->mode_blob);
    kms->modeset_owed = true;
    if (kms->wb_fb) {
        kms->wb_fb->released = true;
        fb_unref(kms, kms->wb_fb);
        kms->wb_fb = NULL;
    }
    trace_kms_mode(kms->modes[m].hdisplay, kms->modes[m].vdisplay,
                   kms->modes[m].vrefresh);
}

/* ------------------------------------------------------------------ */
/* commits */

static void add(drmModeAtomicReq *req, uint32_t obj, uint32_t prop,
                uint64_t v)
{
    drmModeAtomicAddProperty(req, obj, prop, v);
}

/*
 * Where a @fw x @fh frame goes in the mode: centred, cropped when larger.
 * src in 16.16.
 */
static void place(KmsDisplay *kms, drmModeAtomicReq *req, uint32_t plane,
                  const KmsPlaneProps *pp, uint32_t fb_id, uint32_t fw,
                  uint32_t fh)
{
    const drmModeModeInfo *m = &kms->modes[kms->mode];
    uint32_t w = MIN(fw, m->hdisplay), h = MIN(fh, m->vdisplay);

    add(req, plane, pp->fb_id, fb_id);
    add(req, plane, pp->crtc_id, kms->crtc_id);
    add(req, plane, pp->src_x, (uint64_t)((fw - w) / 2) << 16);
    add(req, plane, pp->src_y, (uint64_t)((fh - h) / 2) << 16);
    add(req, plane, pp->src_w, (uint64_t)w << 16);
    add(req, plane, pp->src_h, (uint64_t)h << 16);
    add(req, plane, pp->crtc_x, (m->hdisplay - w) / 2);
    add(req, plane, pp->crtc_y, (m->vdisplay - h) / 2);
    add(req, plane, pp->crtc_w, w);
    add(req, plane, pp->crtc_h, h);
}

static void plane_off(drmModeAtomicReq *req, uint32_t plane,
                      const KmsPlaneProps *pp)
{
    add(req, plane, pp->fb_id, 0);
    add(req, plane, pp->crtc_id, 0);
}

/*
 * A position in the frame (@pos, guest-controlled) on screen: the frame is
 * centred in the mode, or cropped around its centre when larger
 */
static int64_t cursor_on_screen(int32_t pos, uint32_t mode, uint32_t frame)
{
    int64_t v = (int64_t)pos + ((int64_t)mode - (int64_t)frame) / 2;

    return MIN(MAX(v, -(int64_t)65536), (int64_t)65536);
}

/* Builds the request that shows @st */
static drmModeAtomicReq *build(KmsDisplay *kms, const KmsState *st,
                               bool modeset)
{
    drmModeAtomicReq *req = drmModeAtomicAlloc();
    const drmModeModeInfo *m = &kms->modes[kms->mode];

    if (modeset) {
        add(req, kms->crtc_id, kms->p_active, 1);
        add(req, kms->crtc_id, kms->p_mode_id, kms->mode_blob);
        add(req, kms->conn_id, kms->p_conn_crtc, kms->crtc_id);
        for (int i = 0; i < kms->n_saved; i++) {
            /* the CRTC's other connectors (e.g. the console's) let go */
            if (kms->saved[i].conn_crtc && kms->saved[i].obj != kms->conn_id &&
                kms->saved[i].value == kms->crtc_id) {
                add(req, kms->saved[i].obj, kms->saved[i].prop, 0);
            }
        }
        if (kms->wb_path && kms->wb_conn_id != kms->conn_id) {
            /* a clone: not every device can (vkms cannot) */
            add(req, kms->wb_conn_id, kms->p_wb_crtc, kms->crtc_id);
        }
    }
    if (st->primary) {
        place(kms, req, kms->primary_id, &kms->pp, st->primary->fb_id,
              st->primary->w, st->primary->h);
    } else {
        plane_off(req, kms->primary_id, &kms->pp);
    }
    if (kms->cursor_id) {
        if (st->cursor) {
            add(req, kms->cursor_id, kms->cp.fb_id, st->cursor->fb_id);
            add(req, kms->cursor_id, kms->cp.crtc_id, kms->crtc_id);
            add(req, kms->cursor_id, kms->cp.src_x, 0);
            add(req, kms->cursor_id, kms->cp.src_y, 0);
            add(req, kms->cursor_id, kms->cp.src_w,
                (uint64_t)st->cursor->w << 16);
            add(req, kms->cursor_id, kms->cp.src_h,
                (uint64_t)st->cursor->h << 16);
            add(req, kms->cursor_id, kms->cp.crtc_x,
                cursor_on_screen(st->cursor_x, m->hdisplay, kms->frame_w));
            add(req, kms->cursor_id, kms->cp.crtc_y,
                cursor_on_screen(st->cursor_y, m->vdisplay, kms->frame_h));
            add(req, kms->cursor_id, kms->cp.crtc_w, st->cursor->w);
            add(req, kms->cursor_id, kms->cp.crtc_h, st->cursor->h);
        } else {
            plane_off(req, kms->cursor_id, &kms->cp);
        }
    }
    return req;
}

static void say_commit_failed(KmsDisplay *kms, int err)
{
    if (!kms->said_commit) {
        kms->said_commit = true;
        warn_report("kms: %s refuses the frame (atomic commit: %s); the last "
                    "frame stays", kms->path, g_strerror(err));
    }
}

static void wb_save(KmsDisplay *kms);
static void wb_readable(void *opaque);

/* Tests @st without changing anything: 0 or -errno */
static int test_state(KmsDisplay *kms, const KmsState *st)
{
    drmModeAtomicReq *req = build(kms, st, true);
    int ret = drmModeAtomicCommit(kms->fd, req,
                                  DRM_MODE_ATOMIC_TEST_ONLY |
                                  DRM_MODE_ATOMIC_ALLOW_MODESET, NULL);

    drmModeAtomicFree(req);
    return ret ? -errno : 0;
}

static void copy_frame(KmsDisplay *kms, KmsFb *dst);

/* One atomic commit of @st (and a writeback job): 0 or -errno */
static int commit_state(KmsDisplay *kms, const KmsState *st, bool modeset)
{
    uint32_t flags = DRM_MODE_PAGE_FLIP_EVENT | DRM_MODE_ATOMIC_NONBLOCK;
    drmModeAtomicReq *req = build(kms, st, modeset);
    int ret;

    if (modeset) {
        flags |= DRM_MODE_ATOMIC_ALLOW_MODESET;
    }
    if (kms->wb_path && kms->wb_conn_id) {
        const drmModeModeInfo *m = &kms->modes[kms->mode];

        if (!kms->wb_fb) {
            Error *err = NULL;

            kms->wb_fb = dumb_new(kms, m->hdisplay, m->vdisplay,
                                  DRM_FORMAT_XRGB8888, &err);
            if (kms->wb_fb) {
                fb_ref(kms->wb_fb);
                kms->wb_fb->released = false;
            } else {
                error_reportf_err(err, "kms: writeback: ");
            }
        }
        if (kms->wb_fb) {
            add(req, kms->wb_conn_id, kms->p_wb_fb, kms->wb_fb->fb_id);
            add(req, kms->wb_conn_id, kms->p_wb_fence,
                (uint64_t)(uintptr_t)&kms->wb_fence);
        }
    }
    ret = drmModeAtomicCommit(kms->fd, req, flags, kms) ? -errno : 0;
    drmModeAtomicFree(req);
    if (ret) {
        kms->wb_fence = -1; /* no job: no fence */
    }
    return ret;
}

/*
 * Of the two copy buffers (the mode's size, made on first use), the one
 * not on screen: kick() runs with no commit in flight, so one is free.
 */
static KmsFb *copy_target(KmsDisplay *kms, Error **errp)
{
    const drmModeModeInfo *m = &kms->modes[kms->mode];

    for (int i = 0; i < 2; i++) {
        KmsFb *fb = kms->copy[i];

        if (fb && (fb->w != m->hdisplay || fb->h != m->vdisplay)) {
            /* another mode's: freed once it is off screen */
            fb->released = true;
            fb_unref(kms, fb);
            kms->copy[i] = fb = NULL;
        }
        if (!fb) {
            fb = dumb_new(kms, m->hdisplay, m->vdisplay, DRM_FORMAT_XRGB8888,
                          errp);
            if (!fb) {
                return NULL;
            }
            fb_ref(fb); /* the pool's */
            fb->released = false;
            kms->copy[i] = fb;
        }
        if (fb != kms->shown.primary && fb != kms->inflight.primary) {
            return fb;
        }
    }
    error_setg(errp, "no copy buffer is free");
    return NULL;
}

/* Commits the wanted state if nothing is in flight */
static void kick(KmsDisplay *kms)
{
    bool modeset = kms->modeset_owed;
    KmsState st;
    int ret;

    if (!kms->dirty || kms->in_flight || kms->mode < 0) {
        return;
    }
    if (kms->wb_fence >= 0) {
        return; /* the last frame is still being written back: wb_save */
    }
    if (!kms->dmabuf_mode && kms->surface &&
        (kms->surface_dirty || !kms->want.primary ||
         (kms->want.primary != kms->copy[0] &&
          kms->want.primary != kms->copy[1]))) {
        /* the copy path: into the copy buffer not on screen */
        Error *err = NULL;
        KmsFb *dst = copy_target(kms, &err);

        if (!dst) {
            error_reportf_err(err, "kms: %s: ", kms->path);
            kms->dirty = false;
            return;
        }
        copy_frame(kms, dst);
        kms->surface_dirty = false;
        st = kms->want;
        st.primary = dst;
        state_set(kms, &kms->want, &st);
    }
    st = kms->want;
    ret = commit_state(kms, &st, modeset);
    if (ret == -EBUSY) {
        /* the kernel still finishes an earlier commit: at refresh */
        trace_kms_commit_busy();
        return;
    }
    kms->dirty = false;
    if (ret && st.cursor && ret != -EACCES && ret != -EPERM) {
        KmsState nc = st;

        /* the cursor plane may be what refuses: the frame without it */
        nc.cursor = NULL;
        if (!commit_state(kms, &nc, modeset)) {
            if (!kms->said_cursor) {
                kms->said_cursor = true;
                warn_report("kms: %s: the cursor plane refuses the cursor "
                            "(%ux%u: %s); %s", kms->path, st.cursor->w,
                            st.cursor->h, g_strerror(-ret),
                            kms->dmabuf_mode ? "it is not shown" :
                            "it is blended into the copy");
            }
            if (kms->dmabuf_mode) {
                kms->cursor_refused = true;
            } else {
                kms->cursor_blend = true;
                kms->dirty = true; /* copied again, with the cursor */
                kms->surface_dirty = true;
            }
            state_set(kms, &kms->want, &nc);
            st = nc;
            ret = 0;
        }
    }
    if (ret) {
        int err = -ret;

        kms->stats.commit_failures++;
        kms->modeset_owed = true; /* the next commit sets the output again */
        trace_kms_commit_failed(err);
        if (!kms->dmabuf_mode || !kms->dmabuf_ok || err == EACCES ||
            err == EPERM) {
            say_commit_failed(kms, err);
        } else {
            /* the device cannot show these buffers: take surfaces */
            kms->dmabuf_ok = false;
            if (!kms->said_copy) {
                kms->said_copy = true;
                warn_report("kms: %s cannot scan out the console's dma-bufs "
                            "(atomic commit: %s); frames are copied",
                            kms->path, g_strerror(err));
            }
        }
        return;
    }
    kms->touched = true;
    kms->modeset_owed = false;
    if (modeset) {
        kms->stats.modesets++;
    }
    kms->in_flight = true;
    kms->committed_primary = st.primary;
    state_set(kms, &kms->inflight, &st);
    kms->stats.commits++;
    if (kms->wb_fence >= 0) {
        kms->wb_commit = kms->stats.commits;
        kms->wb_since_ms = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
        qemu_set_fd_handler(kms->wb_fence, wb_readable, NULL, kms);
    }
    trace_kms_commit(st.primary ? st.primary->fb_id : 0,
                     st.cursor ? st.cursor->fb_id : 0, st.cursor_x,
                     st.cursor_y, modeset);
}

/* the wanted state changed: commit it now, or after the flip in flight */
static void want_changed(KmsDisplay *kms)
{
    kms->dirty = true;
    kick(kms);
}

static void page_flip(int fd, unsigned int seq, unsigned int sec,
                      unsigned int usec, unsigned int crtc_id, void *data)
{
    KmsDisplay *kms = data;

    kms->in_flight = false;
    state_set(kms, &kms->shown, &kms->inflight);
    state_set(kms, &kms->inflight, &(KmsState){ 0 });
    kms->stats.flips_shown++;
    trace_kms_flip_done(seq);
    kick(kms);
}

static void drm_readable(void *opaque)
{
    KmsDisplay *kms = opaque;
    drmEventContext ev = {
        .version = 3,
        .page_flip_handler2 = page_flip,
    };

    drmHandleEvent(kms->fd, &ev);
}

/* ------------------------------------------------------------------ */
/* x-writeback: what the output showed, as a PPM */

/* a writeback not complete this long after its commit is given up */
#define KMS_WB_TIMEOUT_MS 1000

/* give the pending writeback's fence up: it will not be waited for */
static void wb_lost(KmsDisplay *kms)
{
    qemu_set_fd_handler(kms->wb_fence, NULL, NULL, NULL);
    close(kms->wb_fence);
    kms->wb_fence = -1;
    trace_kms_writeback_lost(kms->wb_commit);
    if (!kms->said_wb) {
        kms->said_wb = true;
        warn_report("kms: writeback did not complete in %d s",
                    KMS_WB_TIMEOUT_MS / 1000);
    }
}

static void wb_save(KmsDisplay *kms)
{
    struct pollfd p = { .fd = kms->wb_fence, .events = POLLIN };
    KmsFb *fb = kms->wb_fb;
    g_autofree char *tmp = NULL;
    g_autofree uint8_t *out = NULL;
    FILE *f;

    if (kms->wb_fence < 0) {
        return;
    }
    if (poll(&p, 1, KMS_WB_TIMEOUT_MS) != 1) {
        wb_lost(kms);
        return;
    }
    qemu_set_fd_handler(kms->wb_fence, NULL, NULL, NULL);
    close(kms->wb_fence);
    kms->wb_fence = -1;
    if (!fb) {
        return;
    }
    tmp = g_strdup_printf("%s.tmp", kms->wb_path);
    f = fopen(tmp, "wb");
    if (!f) {
        if (!kms->said_wb) {
            kms->said_wb = true;
            warn_report("kms: cannot write %s: %s", tmp, g_strerror(errno));
        }
        return;
    }
    fprintf(f, "P6\n%u %u\n255\n", fb->w, fb->h);
    out = g_malloc((size_t)fb->w * fb->h * 3);
    for (uint32_t y = 0; y < fb->h; y++) {
        const uint32_t *row = (const uint32_t *)((uint8_t *)fb->map +
                                                 (size_t)y * fb->pitch);
        uint8_t *o = out + (size_t)y * fb->w * 3;

        for (uint32_t x = 0; x < fb->w; x++) {
            o[x * 3] = row[x] >> 16;
            o[x * 3 + 1] = row[x] >> 8;
            o[x * 3 + 2] = row[x];
        }
    }
    fwrite(out, 3, (size_t)fb->w * fb->h, f);
    if (fclose(f) == 0 && rename(tmp, kms->wb_path) == 0) {
        kms->stats.writebacks++;
        trace_kms_writeback(kms->wb_commit, fb->w, fb->h);
    }
}

static void wb_readable(void *opaque)
{
    KmsDisplay *kms = opaque;

    wb_save(kms);
    kick(kms); /* a frame that waited for the writeback */
}

/* ------------------------------------------------------------------ */
/* the copy path */

static void copy_frame(KmsDisplay *kms, KmsFb *dst)
{
    DisplaySurface *s = kms->surface;
    uint32_t sw = surface_width(s), sh = surface_height(s);
    int32_t dx = ((int32_t)dst->w - (int32_t)sw) / 2;
    int32_t dy = ((int32_t)dst->h - (int32_t)sh) / 2;

    pixman_image_composite32(PIXMAN_OP_SRC, s->image, NULL, dst->img,
                             0, 0, 0, 0, dx, dy, sw, sh);
    if ((kms->cursor_blend || kms->qcursor_big) && kms->qcursor &&
        kms->qcursor_on) {
        QEMUCursor *c = kms->qcursor;
        pixman_image_t *ci = pixman_image_create_bits(PIXMAN_a8r8g8b8,
                                                      c->width, c->height,
                                                      c->data,
                                                      c->width * 4);

        pixman_image_composite32(PIXMAN_OP_OVER, ci, NULL, dst->img,
                                 0, 0, 0, 0,
                                 cursor_on_screen(kms->qcursor_x, dst->w, sw),
                                 cursor_on_screen(kms->qcursor_y, dst->h, sh),
                                 c->width, c->height);
        pixman_image_unref(ci);
    }
    kms->stats.copies++;
    trace_kms_copy(dst->fb_id, sw, sh);
}

/*
 * The surface path's cursor: the QEMUCursor on the cursor plane. Its image
 * is copied when @new_image (or when there is no buffer yet); a move only
 * moves the plane.
 */
static void qcursor_to_plane(KmsDisplay *kms, bool new_image)
{
    QEMUCursor *c = kms->qcursor;
    KmsState st = kms->want;
    Error *err = NULL;

    if (kms->cursor_blend) {
        return;
    }
    kms->qcursor_big = c && kms->cursor_max_w && kms->cursor_max_h &&
                       ((uint64_t)c->width > kms->cursor_max_w ||
                        (uint64_t)c->height > kms->cursor_max_h);
    if (!c || !kms->qcursor_on || kms->qcursor_big) {
        st.cursor = NULL; /* none, or blended into the copy */
    } else {
        uint32_t w = MAX(c->width, kms->cursor_max_w);
        uint32_t h = MAX(c->height, kms->cursor_max_h);

        KmsFb *cur = kms->qcursor_fb;
        bool busy = cur && (cur == kms->shown.cursor ||
                            cur == kms->inflight.cursor);

        if (cur && !new_image && cur->w == w && cur->h == h) {
            goto place; /* the same image: only the position */
        }
        if (!cur || cur->w != w || cur->h != h || busy) {
            /* a buffer the screen does not show for the new image */
            if (kms->qcursor_fb) {
                kms->qcursor_fb->released = true;
                fb_unref(kms, kms->qcursor_fb);
            }
            kms->qcursor_fb = dumb_new(kms, w, h, DRM_FORMAT_ARGB8888, &err);
            if (!kms->qcursor_fb) {
                error_reportf_err(err, "kms: cursor: ");
                kms->cursor_blend = true;
                return;
            }
            fb_ref(kms->qcursor_fb);
            kms->qcursor_fb->released = false;
        }
        memset(kms->qcursor_fb->map, 0, kms->qcursor_fb->map_size);
        for (int y = 0; y < c->height; y++) {
            memcpy((uint8_t *)kms->qcursor_fb->map +
                   (size_t)y * kms->qcursor_fb->pitch,
                   c->data + (size_t)y * c->width, c->width * 4);
        }
place:
        st.cursor = kms->qcursor_fb;
        st.cursor_x = kms->qcursor_x;
        st.cursor_y = kms->qcursor_y;
    }
    state_set(kms, &kms->want, &st);
}

/* ------------------------------------------------------------------ */
/* DisplayChangeListener */

static void frame_size(KmsDisplay *kms, uint32_t w, uint32_t h)
{
    int m;

    if (kms->frame_w == w && kms->frame_h == h) {
        return;
    }
    kms->frame_w = w;
    kms->frame_h = h;
    m = mode_for(kms, w, h);
    set_mode(kms, m);
}

static void kms_refresh(DisplayChangeListener *dcl)
{
    KmsDisplay *kms = container_of(dcl, KmsDisplay, dcl);

    graphic_hw_update(dcl->con);
    if (kms->wb_fence >= 0 && qemu_clock_get_ms(QEMU_CLOCK_REALTIME) -
        kms->wb_since_ms > KMS_WB_TIMEOUT_MS) {
        /* a writeback that never completes must not stop the display */
        wb_lost(kms);
    }
    kick(kms);
}

static void kms_gfx_switch(DisplayChangeListener *dcl, DisplaySurface *s)
{
    KmsDisplay *kms = container_of(dcl, KmsDisplay, dcl);
    bool resized = !kms->surface || !s ||
                   surface_width(s) != surface_width(kms->surface) ||
                   surface_height(s) != surface_height(kms->surface);

    kms->surface = s;
    if (!s || kms->dmabuf_mode) {
        return;
    }
    if (resized && kms->cursor_id && !kms->dmabuf_ok) {
        /* a new mode: the device may take its dma-bufs again */
        kms->dmabuf_ok = !kms->cursor_blend;
    }
    frame_size(kms, surface_width(s), surface_height(s));
    qcursor_to_plane(kms, false);
    /*
     * Shown at its first update or the next refresh, not now: a device
     * that moves to dma-bufs replaces the surface (a placeholder, a blank
     * resize) right before its scanout, which must not flash on screen.
     */
    kms->dirty = true;
    kms->surface_dirty = true;
}

static void kms_gfx_update(DisplayChangeListener *dcl, int x, int y,
                           int w, int h)
{
    KmsDisplay *kms = container_of(dcl, KmsDisplay, dcl);

    if (!kms->dmabuf_mode && kms->surface) {
        kms->surface_dirty = true;
        want_changed(kms);
    }
}

static void kms_mouse_set(DisplayChangeListener *dcl, int x, int y, bool on)
{
    KmsDisplay *kms = container_of(dcl, KmsDisplay, dcl);

    kms->qcursor_x = x;
    kms->qcursor_y = y;
    kms->qcursor_on = on;
    if (!kms->dmabuf_mode && kms->surface) {
        qcursor_to_plane(kms, false);
        /* on the cursor plane a move is a plane move, blended a copy */
        kms->surface_dirty |= kms->cursor_blend || kms->qcursor_big;
        want_changed(kms);
    }
}

static void kms_cursor_define(DisplayChangeListener *dcl, QEMUCursor *c)
{
    KmsDisplay *kms = container_of(dcl, KmsDisplay, dcl);

    cursor_ref(c);
    if (kms->qcursor) {
        cursor_unref(kms->qcursor);
    }
    kms->qcursor = c;
    if (!kms->dmabuf_mode && kms->surface) {
        qcursor_to_plane(kms, true);
        kms->surface_dirty |= kms->cursor_blend || kms->qcursor_big;
        want_changed(kms);
    }
}

static bool kms_has_dmabuf(DisplayChangeListener *dcl)
{
    KmsDisplay *kms = container_of(dcl, KmsDisplay, dcl);

    return kms->dmabuf_ok;
}

static void copy_instead(KmsDisplay *kms, const char *why)
{
    kms->dmabuf_ok = false;
    trace_kms_copy_instead(why);
    if (!kms->said_copy) {
        kms->said_copy = true;
        warn_report("kms: %s: %s; frames are copied into dumb buffers",
                    kms->path, why);
    }
}

/* @st's cursor: the console's cursor dma-buf, imported (once per buffer) */
static void want_cursor(KmsDisplay *kms, KmsState *st)
{
    Error *err = NULL;

    st->cursor = NULL;
    if (!kms->cursor_buf || kms->cursor_refused) {
        return;
    }
    st->cursor = import(kms, kms->cursor_buf, true, &err);
    if (!st->cursor) {
        if (!kms->said_cursor) {
            kms->said_cursor = true;
            warn_reportf_err(err, "kms: %s: the cursor is not shown: ",
                             kms->path);
        } else {
            error_free(err);
        }
    }
}

static void kms_scanout_disable(DisplayChangeListener *dcl)
{
    KmsDisplay *kms = container_of(dcl, KmsDisplay, dcl);
    KmsState st = kms->want;

    if (!kms->dmabuf_mode) {
        return;
    }
    kms->dmabuf_mode = false;
    st.primary = NULL;
    st.cursor = NULL;
    state_set(kms, &kms->want, &st);
    if (kms->surface) {
        kms_gfx_switch(dcl, kms->surface); /* back to surfaces */
    } else {
        want_changed(kms);
    }
}

static void kms_scanout_dmabuf(DisplayChangeListener *dcl, QemuDmaBuf *buf)
{
    KmsDisplay *kms = container_of(dcl, KmsDisplay, dcl);
    Error *err = NULL;
    KmsState st;
    KmsFb *fb;
    bool first;
    int ret;

    if (!kms->dmabuf_ok) {
        return; /* the console sees dpy_has_dmabuf false at its refresh */
    }
    if (qemu_dmabuf_get_fds(buf, NULL)[0] < 0) {
        return; /* no fd this time (the device ran short): the last frame */
    }
    fb = import(kms, buf, false, &err);
    if (!fb) {
        g_autofree char *why = g_strdup(error_get_pretty(err));

        error_free(err);
        copy_instead(kms, why);
        return;
    }
    first = !kms->dmabuf_mode;
    kms->dmabuf_mode = true;
    frame_size(kms, fb->w, fb->h);
    st = kms->want;
    st.primary = fb;
    if (first) {
        /* the first scanout: with the cursor given before it, if any */
        want_cursor(kms, &st);
    }
    if (kms->modeset_owed || fb->w != kms->tested_w ||
        fb->h != kms->tested_h) {
        /* a new mode or frame size: can the plane show it? */
        ret = test_state(kms, &st);
        if (ret) {
            g_autofree char *why = g_strdup_printf(
                "the device cannot show a %ux%u frame in its %ux%u mode on "
                "plane %u (%s)", fb->w, fb->h,
                kms->modes[kms->mode].hdisplay,
                kms->modes[kms->mode].vdisplay, kms->primary_id,
                g_strerror(-ret));
            kms->dmabuf_mode = false;
            copy_instead(kms, why);
            return;
        }
        kms->tested_w = fb->w;
        kms->tested_h = fb->h;
    }
    if (kms->want.primary && kms->want.primary != fb &&
        kms->want.primary != kms->committed_primary) {
        /* wanted, never committed: a newer frame replaces it */
        kms->stats.flips_dropped++;
        trace_kms_flip_dropped();
    }
    state_set(kms, &kms->want, &st);
    trace_kms_scanout(fb->fb_id, fb->w, fb->h);
    /* shown at dpy_gl_update, when the console says the frame is whole */
}

static void kms_cursor_dmabuf(DisplayChangeListener *dcl, QemuDmaBuf *buf,
                              bool have_hot, uint32_t hot_x, uint32_t hot_y)
{
    KmsDisplay *kms = container_of(dcl, KmsDisplay, dcl);
    KmsState st = kms->want;

    kms->cursor_buf = buf;
    if (!kms->dmabuf_mode) {
        return; /* on the plane with the first scanout */
    }
    want_cursor(kms, &st);
    state_set(kms, &kms->want, &st);
}

static void kms_cursor_position(DisplayChangeListener *dcl, uint32_t x,
                                uint32_t y)
{
    KmsDisplay *kms = container_of(dcl, KmsDisplay, dcl);

    /* in the frame: build() puts it where the frame is on screen */
    kms->want.cursor_x = (int32_t)MIN(x, (uint32_t)INT32_MAX);
    kms->want.cursor_y = (int32_t)MIN(y, (uint32_t)INT32_MAX);
}

static void kms_release_dmabuf(DisplayChangeListener *dcl, QemuDmaBuf *buf)
{
    KmsDisplay *kms = container_of(dcl, KmsDisplay, dcl);

    if (buf == kms->cursor_buf) {
        kms->cursor_buf = NULL;
    }

    for (guint i = 0; i < kms->fbs->len; i++) {
        KmsFb *fb = g_ptr_array_index(kms->fbs, i);

        if (fb->key == buf) {
            fb->key = NULL;
            fb->released = true;
            kms->stats.releases++;
            trace_kms_release(fb->fb_id, fb->refs);
            if (!fb->refs) {
                fb_destroy(kms, fb);
            }
            break;
        }
    }
}

static void kms_gl_update(DisplayChangeListener *dcl, uint32_t x, uint32_t y,
                          uint32_t w, uint32_t h)
{
    KmsDisplay *kms = container_of(dcl, KmsDisplay, dcl);
    const KmsState *last = kms->in_flight ? &kms->inflight : &kms->shown;

    if (!kms->dmabuf_mode) {
        return;
    }
    if (kms->want.primary == last->primary &&
        kms->want.cursor == last->cursor &&
        kms->want.cursor_x == last->cursor_x &&
        kms->want.cursor_y == last->cursor_y && !kms->modeset_owed) {
        /*
         * Nothing new (a display refresh, a redraw of the same buffer):
         * the planes scan the buffers out, no commit needed.
         */
        return;
    }
    want_changed(kms);
}

static const DisplayChangeListenerOps kms_ops = {
    .dpy_name                = "kms",
    .dpy_refresh             = kms_refresh,
    .dpy_gfx_switch          = kms_gfx_switch,
    .dpy_gfx_update          = kms_gfx_update,
    .dpy_mouse_set           = kms_mouse_set,
    .dpy_cursor_define       = kms_cursor_define,
    .dpy_has_dmabuf          = kms_has_dmabuf,
    .dpy_gl_caps             = DPY_GL_NO_CONTEXT,
    .dpy_gl_scanout_disable  = kms_scanout_disable,
    .dpy_gl_scanout_dmabuf   = kms_scanout_dmabuf,
    .dpy_gl_cursor_dmabuf    = kms_cursor_dmabuf,
    .dpy_gl_cursor_position  = kms_cursor_position,
    .dpy_gl_release_dmabuf   = kms_release_dmabuf,
    .dpy_gl_update           = kms_gl_update,
};

/* ------------------------------------------------------------------ */
/* giving the device back */

static void restore(KmsDisplay *kms)
{
    drmModeAtomicReq *req;
    uint32_t blob = 0;
    int ret;

    if (kms->wb_fence >= 0) {
        wb_save(kms);
    }
    if (!kms->touched) {
        return;
    }
    req = drmModeAtomicAlloc();
    for (int i = 0; i < kms->n_saved; i++) {
        add(req, kms->saved[i].obj, kms->saved[i].prop, kms->saved[i].value);
    }
    if (kms->saved_mode_valid) {
        drmModeCreatePropertyBlob(kms->fd, &kms->saved_mode,
                                  sizeof(kms->saved_mode), &blob);
    }
    add(req, kms->crtc_id, kms->p_mode_id, blob);
    /* blocking: waits for the commit in flight */
    ret = drmModeAtomicCommit(kms->fd, req, DRM_MODE_ATOMIC_ALLOW_MODESET,
                              NULL);
    drmModeAtomicFree(req);
    if (ret) {
        int err = errno;

        /* what was found is gone (another client's framebuffer): off */
        req = drmModeAtomicAlloc();
        plane_off(req, kms->primary_id, &kms->pp);
        if (kms->cursor_id) {
            plane_off(req, kms->cursor_id, &kms->cp);
        }
        add(req, kms->conn_id, kms->p_conn_crtc, 0);
        if (kms->wb_conn_id) {
            add(req, kms->wb_conn_id, kms->p_wb_crtc, 0);
        }
        add(req, kms->crtc_id, kms->p_active, 0);
        add(req, kms->crtc_id, kms->p_mode_id, 0);
        ret = drmModeAtomicCommit(kms->fd, req, DRM_MODE_ATOMIC_ALLOW_MODESET,
                                  NULL);
        drmModeAtomicFree(req);
        warn_report("kms: %s: cannot restore the output as found (%s); %s",
                    kms->path, g_strerror(err),
                    ret ? "cannot switch it off either" : "switched it off");
    }
    if (blob) {
        drmModeDestroyPropertyBlob(kms->fd, blob);
    }
    kms->touched = false;
    trace_kms_restore(ret);
}

static void kms_exit(Notifier *n, void *data)
{
    KmsDisplay *kms = container_of(n, KmsDisplay, exit_notifier);

    if (kms->fd < 0) {
        return;
    }
    qemu_set_fd_handler(kms->fd, NULL, NULL, NULL);
    restore(kms);
    /* the device's framebuffers and handles go with the fd */
    close(kms->fd);
    kms->fd = -1;
}

/* ------------------------------------------------------------------ */
/* finding the output */

static char *connector_name(drmModeConnector *c)
{
    const char *t = drmModeGetConnectorTypeName(c->connector_type);

    return g_strdup_printf("%s-%u", t ? t : "Unknown", c->connector_type_id);
}

static bool pick_output(KmsDisplay *kms, const char *want_conn, Error **errp)
{
    drmModeRes *res = drmModeGetResources(kms->fd);
    drmModeConnector *conn = NULL;
    bool ok = false;

    if (!res) {
        error_setg_errno(errp, errno, "%s has no KMS resources", kms->path);
        return false;
    }
    for (int i = 0; i < res->count_connectors; i++) {
        drmModeConnector *c = drmModeGetConnector(kms->fd,
                                                  res->connectors[i]);
        g_autofree char *name = NULL;

        if (!c) {
            continue;
        }
        name = connector_name(c);
        if (c->connector_type == DRM_MODE_CONNECTOR_WRITEBACK &&
            !kms->wb_conn_id) {
            kms->wb_conn_id = c->connector_id;
        }
        /* a writeback connector only when named (it shows nothing) */
        if (!conn && c->connection == DRM_MODE_CONNECTED &&
            c->count_modes > 0 &&
            (want_conn ? !strcmp(want_conn, name) :
             c->connector_type != DRM_MODE_CONNECTOR_WRITEBACK)) {
            conn = c;
            kms->conn_name = g_steal_pointer(&name);
            continue;
        }
        drmModeFreeConnector(c);
    }
    if (!conn) {
        error_setg(errp, "%s has no connected connector%s%s", kms->path,
                   want_conn ? " named " : "", want_conn ? want_conn : "");
        goto out;
    }
    kms->conn_id = conn->connector_id;
    kms->n_modes = conn->count_modes;
    kms->modes = g_memdup2(conn->modes, sizeof(*conn->modes) *
                           conn->count_modes);
    kms->preferred = 0;
    for (int i = 0; i < conn->count_modes; i++) {
        if (conn->modes[i].type & DRM_MODE_TYPE_PREFERRED) {
            kms->preferred = i;
            break;
        }
    }
    /* a CRTC the connector can use (the one it uses now, if any) */
    for (int e = 0; e < conn->count_encoders && !kms->crtc_id; e++) {
        drmModeEncoder *enc = drmModeGetEncoder(kms->fd, conn->encoders[e]);

        for (int i = 0; enc && i < res->count_crtcs; i++) {
            if (enc->possible_crtcs & (1u << i) &&
                (!kms->crtc_id || res->crtcs[i] == enc->crtc_id)) {
                kms->crtc_id = res->crtcs[i];
                kms->crtc_index = i;
            }
        }
        drmModeFreeEncoder(enc);
    }
    if (!kms->crtc_id) {
        error_setg(errp, "%s: connector %s has no usable CRTC", kms->path,
                   kms->conn_name);
        goto out;
    }
    ok = true;
out:
    drmModeFreeConnector(conn);
    drmModeFreeResources(res);
    return ok;
}

static bool pick_planes(KmsDisplay *kms, uint32_t want_plane, Error **errp)
{
    drmModePlaneRes *pres = drmModeGetPlaneResources(kms->fd);

    for (uint32_t i = 0; pres && i < pres->count_planes; i++) {
        drmModePlane *p = drmModeGetPlane(kms->fd, pres->planes[i]);
        uint64_t type = 0;

        if (!p) {
            continue;
        }
        prop_id(kms->fd, p->plane_id, DRM_MODE_OBJECT_PLANE, "type", &type);
        if (p->possible_crtcs & (1u << kms->crtc_index)) {
            if (want_plane ? p->plane_id == want_plane :
                (type == DRM_PLANE_TYPE_PRIMARY && !kms->primary_id)) {
                kms->primary_id = p->plane_id;
                kms->primary_legacy_formats =
                    g_memdup2(p->formats, sizeof(uint32_t) * p->count_formats);
                kms->n_primary_legacy_formats = p->count_formats;
            } else if (type == DRM_PLANE_TYPE_CURSOR && !kms->cursor_id) {
                kms->cursor_id = p->plane_id;
            }
        }
        drmModeFreePlane(p);
    }
    drmModeFreePlaneResources(pres);
    if (!kms->primary_id) {
        if (want_plane) {
            error_setg(errp, "%s: plane %u does not exist or cannot show "
                       "CRTC %u", kms->path, want_plane, kms->crtc_id);
        } else {
            error_setg(errp, "%s: no primary plane for CRTC %u", kms->path,
                       kms->crtc_id);
        }
        return false;
    }
    if (!plane_props(kms->fd, kms->primary_id, &kms->pp) ||
        (kms->cursor_id && !plane_props(kms->fd, kms->cursor_id, &kms->cp))) {
        error_setg(errp, "%s: a plane lacks an atomic property", kms->path);
        return false;
    }
    {
        uint64_t blob = 0;

        if (prop_id(kms->fd, kms->primary_id, DRM_MODE_OBJECT_PLANE,
                    "IN_FORMATS", &blob) && blob) {
            kms->primary_formats = drmModeGetPropertyBlob(kms->fd, blob);
        }
    }
    return true;
}

static bool open_device(KmsDisplay *kms, const char *path, const char *conn,
                        Error **errp)
{
    kms->fd = open(path, O_RDWR | O_CLOEXEC);
    if (kms->fd < 0) {
        error_setg_errno(errp, errno, "cannot open %s", path);
        return false;
    }
    kms->path = g_strdup(path);
    if (drmSetClientCap(kms->fd, DRM_CLIENT_CAP_UNIVERSAL_PLANES, 1) ||
        drmSetClientCap(kms->fd, DRM_CLIENT_CAP_ATOMIC, 1)) {
        error_setg(errp, "%s does not do atomic modesetting", path);
        goto fail;
    }
    if (kms->wb_path &&
        drmSetClientCap(kms->fd, DRM_CLIENT_CAP_WRITEBACK_CONNECTORS, 1)) {
        error_setg(errp, "%s has no writeback connectors (x-writeback)",
                   path);
        goto fail;
    }
    if (!pick_output(kms, conn, errp)) {
        goto fail;
    }
    return true;

fail:
    close(kms->fd);
    kms->fd = -1;
    g_clear_pointer(&kms->path, g_free);
    /* nothing of this card carries over to the next one tried */
    g_clear_pointer(&kms->conn_name, g_free);
    g_clear_pointer(&kms->modes, g_free);
    kms->n_modes = 0;
    kms->conn_id = kms->crtc_id = kms->crtc_index = kms->wb_conn_id = 0;
    return false;
}

static bool find_device(KmsDisplay *kms, const char *device,
                        const char *conn, Error **errp)
{
    if (device) {
        return open_device(kms, device, conn, errp);
    }
    for (int i = 0; i < KMS_MAX_CARDS; i++) {
        g_autofree char *p = g_strdup_printf("/dev/dri/card%d", i);
        Error *err = NULL;

        if (access(p, F_OK)) {
            continue;
        }
        if (open_device(kms, p, conn, &err)) {
            return true;
        }
        trace_kms_device_skipped(p, error_get_pretty(err));
        error_free(err);
    }
    error_setg(errp, "no /dev/dri/card* with a connected connector%s%s "
               "(device=/dev/dri/cardN picks one)",
               conn ? " named " : "", conn ? conn : "");
    return false;
}

static bool parse_mode(KmsDisplay *kms, const char *mode, Error **errp)
{
    unsigned int w, h;
    char end;

    kms->forced_mode = -1;
    if (!mode) {
        return true;
    }
    if (sscanf(mode, "%ux%u%c", &w, &h, &end) != 2) {
        error_setg(errp, "mode=%s: expected WIDTHxHEIGHT", mode);
        return false;
    }
    kms->forced_mode = find_mode(kms, w, h);
    if (kms->forced_mode < 0) {
        error_setg(errp, "connector %s offers no %ux%u mode", kms->conn_name,
                   w, h);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* stats: qom-get /machine x-kms-stats */

static KmsDisplay *the_kms;

static char *kms_stats_get(Object *obj, Error **errp)
{
    KmsDisplay *kms = the_kms;
    const drmModeModeInfo *m = kms->mode >= 0 ? &kms->modes[kms->mode] : NULL;
    unsigned int live = 0, dumb = 0;

    for (guint i = 0; i < kms->fbs->len; i++) {
        KmsFb *fb = g_ptr_array_index(kms->fbs, i);

        live += !fb->dumb;
        dumb += fb->dumb;
    }

    return g_strdup_printf(
        "device=%s connector=%s crtc=%u plane=%u cursor_plane=%u "
        "mode=%ux%u path=%s commits=%" PRIu64 " flips_shown=%" PRIu64
        " flips_dropped=%" PRIu64 " commit_failures=%" PRIu64
        " imports=%" PRIu64 " import_failures=%" PRIu64
        " releases=%" PRIu64 " live_imports=%u dumb_buffers=%u copies=%" PRIu64
        " modesets=%" PRIu64 " writebacks=%" PRIu64 " writeback_commit=%"
        PRIu64,
        kms->path, kms->conn_name, kms->crtc_id, kms->primary_id,
        kms->cursor_id, m ? m->hdisplay : 0, m ? m->vdisplay : 0,
        kms->dmabuf_mode ? "zero-copy" : "copy", kms->stats.commits,
        kms->stats.flips_shown, kms->stats.flips_dropped,
        kms->stats.commit_failures, kms->stats.imports,
        kms->stats.import_failures, kms->stats.releases,
        live, dumb,
        kms->stats.copies, kms->stats.modesets, kms->stats.writebacks,
        kms->wb_commit);
}

/* ------------------------------------------------------------------ */
/* init */

static void kms_init(DisplayState *ds, DisplayOptions *opts)
{
    DisplayKMS *o = &opts->u.kms;
    KmsDisplay *kms = g_new0(KmsDisplay, 1);
    QemuConsole *con = NULL;
    Error *err = NULL;
    uint64_t cap;

    kms->fd = -1;
    kms->mode = -1;
    kms->wb_fence = -1;
    kms->fbs = g_ptr_array_new();
    kms->wb_path = g_strdup(o->x_writeback);
    if (!find_device(kms, o->device, o->connector, &err) ||
        !parse_mode(kms, o->mode, &err) ||
        !pick_planes(kms, o->has_plane ? o->plane : 0, &err)) {
        error_report_err(err);
        exit(1);
    }
    if (!drmIsMaster(kms->fd) && drmSetMaster(kms->fd)) {
        error_report("kms: %s: not its DRM master (%s): another client (a "
                     "compositor or an X server) drives it. Run QEMU on a "
                     "free VT with no compositor on this device",
                     kms->path, g_strerror(errno));
        exit(1);
    }
    kms->p_active = prop_id(kms->fd, kms->crtc_id, DRM_MODE_OBJECT_CRTC,
                            "ACTIVE", NULL);
    kms->p_mode_id = prop_id(kms->fd, kms->crtc_id, DRM_MODE_OBJECT_CRTC,
                             "MODE_ID", NULL);
    kms->p_conn_crtc = prop_id(kms->fd, kms->conn_id,
                               DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID", NULL);
    if (kms->wb_conn_id) {
        kms->p_wb_crtc = prop_id(kms->fd, kms->wb_conn_id,
                                 DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID", NULL);
        kms->p_wb_fb = prop_id(kms->fd, kms->wb_conn_id,
                               DRM_MODE_OBJECT_CONNECTOR, "WRITEBACK_FB_ID",
                               NULL);
        kms->p_wb_fence = prop_id(kms->fd, kms->wb_conn_id,
                                  DRM_MODE_OBJECT_CONNECTOR,
                                  "WRITEBACK_OUT_FENCE_PTR", NULL);
    }
    if (kms->wb_path && (!kms->wb_conn_id || !kms->p_wb_fb ||
                         !kms->p_wb_fence)) {
        error_report("kms: %s has no writeback connector (x-writeback)",
                     kms->path);
        exit(1);
    }
    if (!kms->p_active || !kms->p_mode_id || !kms->p_conn_crtc) {
        error_report("kms: %s lacks an atomic CRTC or connector property",
                     kms->path);
        exit(1);
    }
    kms->cursor_max_w = kms->cursor_max_h = 0;
    if (kms->cursor_id) {
        if (!drmGetCap(kms->fd, DRM_CAP_CURSOR_WIDTH, &cap)) {
            kms->cursor_max_w = cap;
        }
        if (!drmGetCap(kms->fd, DRM_CAP_CURSOR_HEIGHT, &cap)) {
            kms->cursor_max_h = cap;
        }
        kms->dmabuf_ok = true;
    } else {
        kms->cursor_blend = true;
        kms->dmabuf_ok = false;
        kms->said_cursor = true;
        warn_report("kms: %s has no cursor plane for CRTC %u: the cursor is "
                    "blended into a copy of each frame", kms->path,
                    kms->crtc_id);
    }
    save_state(kms);

    for (int i = 0;; i++) {
        con = qemu_console_lookup_by_index(i);
        if (!con || qemu_console_is_graphic(con)) {
            break;
        }
    }
    if (!con) {
        error_report("kms: no graphic console to show");
        exit(1);
    }
    info_report("kms: %s connector %s CRTC %u plane %u cursor plane %u%s",
                kms->path, kms->conn_name, kms->crtc_id, kms->primary_id,
                kms->cursor_id, kms->cursor_id ? "" : " (none)");
    trace_kms_open(kms->path, kms->conn_name, kms->crtc_id, kms->primary_id,
                   kms->cursor_id);
    the_kms = kms;
    object_property_add_str(object_resolve_path("/machine", NULL),
                            "x-kms-stats", kms_stats_get,
                            NULL);
    kms->exit_notifier.notify = kms_exit;
    qemu_add_exit_notifier(&kms->exit_notifier);
    qemu_set_fd_handler(kms->fd, drm_readable, NULL, kms);
    kms->dcl.con = con;
    kms->dcl.ops = &kms_ops;
    register_displaychangelistener(&kms->dcl);
}

static QemuDisplay qemu_display_kms = {
    .type = DISPLAY_TYPE_KMS,
    .init = kms_init,
};

static void register_kms(void)
{
    qemu_display_register(&qemu_display_kms);
}

type_init(register_kms);
