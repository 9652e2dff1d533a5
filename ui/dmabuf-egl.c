/*
 * EGL dma-buf layer, import side: the driver's dma-buf formats, the checks
 * before eglCreateImage, and the imports. See include/ui/dmabuf-egl.h for
 * the API and the ownership rules, docs/dmabuf-egl.md for the design and
 * the measurements behind the software-renderer checks; the device choice
 * and the context are in ui/dmabuf-egl-device.c.
 *
 * Everything in a DmabufPlane may come from a guest: it is checked here
 * before EGL sees it. Mesa's software path maps the dma-buf lazily, at the
 * first draw, and dereferences NULL when that mmap fails, killing the
 * process; no EGL or GL error is ever returned. So on a software context
 * every fd is refused up front unless llvmpipe's own mmap would succeed.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "qapi/error.h"
#include "standard-headers/drm/drm_fourcc.h"
#include "ui/dmabuf-egl-int.h"
#include "trace.h"

/* Capacity of an EGL attribute list for one dma-buf import. */
#define ATTR_MAX                (7 + DMABUF_MAX_FDS * 10 + 1)

typedef struct FormatModifier {
    uint64_t modifier;
    bool external_only;
} FormatModifier;

/* An entry of DmabufEglContext.formats. */
typedef struct Format {
    uint32_t fourcc;
    GArray *mods;               /* FormatModifier; empty: implicit only */
} Format;

struct DmabufEglImage {
    DmabufEglContext *ctx;      /* borrowed */
    GLuint tex;
    GLenum target;              /* GL_TEXTURE_2D or _EXTERNAL_OES */
    uint32_t width;
    uint32_t height;
};

typedef struct AttrList {
    EGLint v[ATTR_MAX];
    unsigned int n;
} AttrList;

/* ------------------------------------------------------------------ */
/* formats */

bool dmabuf_egl_formats_load(DmabufEglContext *c, Error **errp)
{
    g_autofree EGLint *fourccs = NULL;
    EGLint n = 0, i;

    if (!c->exts.has_modifiers) {
        return true; /* c->formats stays NULL: only linear, see lookup */
    }
    if (!c->procs.query_dmabuf_formats(c->dpy, 0, NULL, &n) || n < 0) {
        dmabuf_egl_error_setg(errp, "eglQueryDmaBufFormatsEXT");
        return false;
    }
    fourccs = g_new0(EGLint, n > 0 ? n : 1);
    if (!c->procs.query_dmabuf_formats(c->dpy, n, fourccs, &n)) {
        dmabuf_egl_error_setg(errp, "eglQueryDmaBufFormatsEXT");
        return false;
    }
    c->formats = g_array_new(FALSE, TRUE, sizeof(Format));
    for (i = 0; i < n; i++) {
        g_autofree EGLuint64KHR *mods = NULL;
        g_autofree EGLBoolean *ext_only = NULL;
        Format f = { .fourcc = (uint32_t)fourccs[i] };
        EGLint m = 0, j;

        if (!c->procs.query_dmabuf_modifiers(c->dpy, fourccs[i], 0, NULL,
                                             NULL, &m) || m < 0) {
            dmabuf_egl_error_setg(errp, "eglQueryDmaBufModifiersEXT");
            return false;
        }
        mods = g_new0(EGLuint64KHR, m > 0 ? m : 1);
        ext_only = g_new0(EGLBoolean, m > 0 ? m : 1);
        if (m > 0 && !c->procs.query_dmabuf_modifiers(c->dpy, fourccs[i], m,
                                                      mods, ext_only, &m)) {
            dmabuf_egl_error_setg(errp, "eglQueryDmaBufModifiersEXT");
            return false;
        }
        f.mods = g_array_sized_new(FALSE, TRUE, sizeof(FormatModifier), m);
        for (j = 0; j < m; j++) {
            FormatModifier fm = {
                .modifier = mods[j],
                .external_only = ext_only[j] == EGL_TRUE,
            };
            g_array_append_val(f.mods, fm);
        }
        g_array_append_val(c->formats, f);
    }
    return true;
}

void dmabuf_egl_formats_free(DmabufEglContext *c)
{
    guint i;

    if (!c->formats) {
        return;
    }
    for (i = 0; i < c->formats->len; i++) {
        g_array_free(g_array_index(c->formats, Format, i).mods, TRUE);
    }
    g_array_free(c->formats, TRUE);
    c->formats = NULL;
}

/*
 * Decides whether @fourcc with @modifier can be imported and how.
 * @use_modifier: pass the modifier attributes; @external: sample through
 * GL_TEXTURE_EXTERNAL_OES. Returns: NULL, or why not (to be freed).
 */
static char *lookup_format(const DmabufEglContext *c, uint32_t fourcc,
                           uint64_t modifier, bool *use_modifier,
                           bool *external)
{
    const Format *f = NULL;
    char name[5];
    guint i;

    *use_modifier = false;
    *external = false;
    if (dmabuf_format_cpp(fourcc) == 0) {
        return g_strdup_printf("unknown fourcc 0x%08x", fourcc);
    }
    if (!c->formats) {
        /*
         * No modifier queries: the format list is unknown (eglCreateImage
         * will say), and only a linear layout can be passed, implicitly.
         * A wrong-layout import would give garbage, not an error.
         */
        if (modifier != DRM_FORMAT_MOD_LINEAR &&
            modifier != DRM_FORMAT_MOD_INVALID) {
            return g_strdup_printf("modifier 0x%" PRIx64 " needs "
                                   "EGL_EXT_image_dma_buf_import_modifiers",
                                   modifier);
        }
        return NULL;
    }
    for (i = 0; i < c->formats->len; i++) {
        if (g_array_index(c->formats, Format, i).fourcc == fourcc) {
            f = &g_array_index(c->formats, Format, i);
            break;
        }
    }
    if (!f) {
        return g_strdup_printf("the driver does not import format %s",
                               dmabuf_format_name(fourcc, name));
    }
    if (f->mods->len == 0) {
        /* implicit layout only: fine for linear and "invalid" (implicit) */
        if (modifier != DRM_FORMAT_MOD_LINEAR &&
            modifier != DRM_FORMAT_MOD_INVALID) {
            return g_strdup_printf("the driver imports %s only with an "
                                   "implicit layout, not modifier 0x%" PRIx64,
                                   dmabuf_format_name(fourcc, name),
                                   modifier);
        }
        return NULL;
    }
    for (i = 0; i < f->mods->len; i++) {
        const FormatModifier *fm = &g_array_index(f->mods, FormatModifier, i);

        if (fm->modifier == modifier ||
            (modifier == DRM_FORMAT_MOD_INVALID &&
             fm->modifier == DRM_FORMAT_MOD_LINEAR)) {
            if (fm->external_only && !c->exts.has_gl_egl_image_external) {
                return g_strdup_printf("%s with modifier 0x%" PRIx64 " is "
                                       "external-only and GL lacks "
                                       "GL_OES_EGL_image_external",
                                       dmabuf_format_name(fourcc, name),
                                       modifier);
            }
            *use_modifier = modifier != DRM_FORMAT_MOD_INVALID;
            *external = fm->external_only;
            return NULL;
        }
    }
    return g_strdup_printf("the driver does not list modifier 0x%" PRIx64
                           " for %s", modifier,
                           dmabuf_format_name(fourcc, name));
}

bool dmabuf_egl_context_supports(const DmabufEglContext *c, uint32_t fourcc,
                                 uint64_t modifier)
{
    g_autofree char *why = NULL;
    bool use_modifier, external;

    why = lookup_format(c, fourcc, modifier, &use_modifier, &external);
    return why == NULL;
}

/* ------------------------------------------------------------------ */
/* checks */

/*
 * What llvmpipe does with an imported fd (Mesa's dri_sw winsys, at each
 * map of the texture): size = lseek(fd, 0, SEEK_END), then
 * mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0), and a NULL dereference
 * if that fails. Repeat it here once so that it cannot fail later.
 * Returns: NULL if @fd is fine for @c, or why not (to be freed).
 */
static char *check_fd(const DmabufEglContext *c, int fd, uint64_t need)
{
    uint64_t page = qemu_real_host_page_size();
    struct statfs sfs;
    struct stat st;
    off_t size;
    void *map;

    if (fstat(fd, &st) < 0) {
        return g_strdup_printf("fstat: %s", g_strerror(errno));
    }
    /* a regular file (memfd) would move its offset; a dma-buf does not */
    size = S_ISREG(st.st_mode) ? st.st_size : lseek(fd, 0, SEEK_END);
    if (size < 0) {
        if (!c->is_software) {
            return NULL; /* the driver imports through the kernel */
        }
        return g_strdup_printf("its size is unknown (lseek: %s)",
                               g_strerror(errno));
    }
    if ((uint64_t)size < need) {
        return g_strdup_printf("it holds %lld bytes, the geometry needs "
                               "%" PRIu64, (long long)size, need);
    }
    if (!c->is_software) {
        return NULL;
    }
    if ((uint64_t)size % page != 0) {
        return g_strdup_printf("its size %lld is not a multiple of the page "
                               "size %" PRIu64 ", so the software renderer "
                               "cannot map it", (long long)size, page);
    }
    map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        return g_strdup_printf("a read-only shared mmap of it fails (%s), "
                               "so the software renderer cannot read it",
                               g_strerror(errno));
    }
    munmap(map, size);
    /* only a dma-buf's size is fixed; a plain file could shrink later */
    if (fstatfs(fd, &sfs) < 0 || sfs.f_type != DMA_BUF_MAGIC) {
        return g_strdup("it is not a dma-buf");
    }
    return NULL;
}

/* Returns: NULL if @p may go to eglCreateImage, or why not (to be freed). */
static char *check_plane(const DmabufEglContext *c, const DmabufPlane *p,
                         bool *use_modifier, bool *external)
{
    unsigned int cpp = dmabuf_format_cpp(p->fourcc);
    char *why;
    uint64_t need;

    if (p->n_fds != 1) {
        return g_strdup_printf("%u fds; only single-plane formats are "
                               "supported", p->n_fds);
    }
    if (p->fd[0] < 0) {
        return g_strdup("no fd");
    }
    why = lookup_format(c, p->fourcc, p->modifier, use_modifier, external);
    if (why) {
        return why;
    }
    if (p->width == 0 || p->height == 0 ||
        p->width > (uint32_t)c->max_texture_size ||
        p->height > (uint32_t)c->max_texture_size) {
        return g_strdup_printf("size %ux%u is outside 1..%d", p->width,
                               p->height, c->max_texture_size);
    }
    if ((uint64_t)p->stride[0] < (uint64_t)p->width * cpp ||
        p->stride[0] > (uint32_t)INT32_MAX ||
        p->offset[0] > (uint32_t)INT32_MAX) {
        return g_strdup_printf("stride %u offset %u do not fit width %u",
                               p->stride[0], p->offset[0], p->width);
    }
    /* 64-bit: every factor is 32-bit */
    need = (uint64_t)p->offset[0] +
           (uint64_t)p->stride[0] * (p->height - 1) +
           (uint64_t)p->width * cpp;
    return check_fd(c, p->fd[0], need);
}

bool dmabuf_egl_check(const DmabufEglContext *c, const DmabufPlane *p,
                      Error **errp)
{
    g_autofree char *why = NULL;
    bool use_modifier, external;
    char name[5];

    why = check_plane(c, p, &use_modifier, &external);
    if (why) {
        error_setg(errp, "cannot import the dma-buf (%ux%u %s mod "
                   "0x%" PRIx64 "): %s", p->width, p->height,
                   dmabuf_format_name(p->fourcc, name), p->modifier, why);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* import */

static void attr_add(AttrList *l, EGLint key, EGLint value)
{
    assert(l->n + 3 <= ATTR_MAX); /* room for the pair and EGL_NONE */
    l->v[l->n++] = key;
    l->v[l->n++] = value;
    l->v[l->n] = EGL_NONE;
}

static void build_attrs(AttrList *l, const DmabufPlane *p, bool use_modifier)
{
    static const EGLint plane_keys[DMABUF_MAX_FDS][5] = {
        { EGL_DMA_BUF_PLANE0_FD_EXT, EGL_DMA_BUF_PLANE0_OFFSET_EXT,
          EGL_DMA_BUF_PLANE0_PITCH_EXT, EGL_DMA_BUF_PLANE0_MODIFIER_LO_EXT,
          EGL_DMA_BUF_PLANE0_MODIFIER_HI_EXT },
        { EGL_DMA_BUF_PLANE1_FD_EXT, EGL_DMA_BUF_PLANE1_OFFSET_EXT,
          EGL_DMA_BUF_PLANE1_PITCH_EXT, EGL_DMA_BUF_PLANE1_MODIFIER_LO_EXT,
          EGL_DMA_BUF_PLANE1_MODIFIER_HI_EXT },
        { EGL_DMA_BUF_PLANE2_FD_EXT, EGL_DMA_BUF_PLANE2_OFFSET_EXT,
          EGL_DMA_BUF_PLANE2_PITCH_EXT, EGL_DMA_BUF_PLANE2_MODIFIER_LO_EXT,
          EGL_DMA_BUF_PLANE2_MODIFIER_HI_EXT },
        { EGL_DMA_BUF_PLANE3_FD_EXT, EGL_DMA_BUF_PLANE3_OFFSET_EXT,
          EGL_DMA_BUF_PLANE3_PITCH_EXT, EGL_DMA_BUF_PLANE3_MODIFIER_LO_EXT,
          EGL_DMA_BUF_PLANE3_MODIFIER_HI_EXT },
    };
    unsigned int i;

    l->n = 0;
    l->v[0] = EGL_NONE;
    attr_add(l, EGL_WIDTH, (EGLint)p->width);
    attr_add(l, EGL_HEIGHT, (EGLint)p->height);
    attr_add(l, EGL_LINUX_DRM_FOURCC_EXT, (EGLint)p->fourcc);
    for (i = 0; i < p->n_fds && i < DMABUF_MAX_FDS; i++) {
        attr_add(l, plane_keys[i][0], p->fd[i]);
        attr_add(l, plane_keys[i][1], (EGLint)p->offset[i]);
        attr_add(l, plane_keys[i][2], (EGLint)p->stride[i]);
        if (use_modifier) {
            attr_add(l, plane_keys[i][3], (EGLint)(p->modifier & 0xffffffff));
            attr_add(l, plane_keys[i][4], (EGLint)(p->modifier >> 32));
        }
    }
}

DmabufEglImage *dmabuf_egl_import(DmabufEglContext *c,
                                  const DmabufPlane *p, Error **errp)
{
    g_autofree char *why = NULL;
    DmabufEglImage *img;
    bool use_modifier, external;
    DmabufEglSavedCurrent saved;
    AttrList attrs;
    EGLImageKHR image;
    GLenum target;
    GLuint tex = 0;
    char name[5];

    why = check_plane(c, p, &use_modifier, &external);
    if (why) {
        trace_dmabuf_egl_import_refused(p->fourcc, p->modifier,
                                        p->n_fds ? p->fd[0] : -1, why);
        error_setg(errp, "cannot import dma-buf %s %ux%u: %s",
                   dmabuf_format_name(p->fourcc, name), p->width, p->height,
                   why);
        return NULL;
    }
    target = external ? GL_TEXTURE_EXTERNAL_OES : GL_TEXTURE_2D;
    build_attrs(&attrs, p, use_modifier);

    if (!dmabuf_egl_context_make_current(c, &saved, errp)) {
        return NULL;
    }
    dmabuf_egl_gl_drain_errors();
    image = c->procs.create_image(c->dpy, EGL_NO_CONTEXT,
                                  EGL_LINUX_DMA_BUF_EXT, NULL, attrs.v);
    if (image == EGL_NO_IMAGE_KHR) {
        dmabuf_egl_error_setg(errp, "eglCreateImageKHR(dma-buf)");
        goto restore;
    }
    glGenTextures(1, &tex);
    glBindTexture(target, tex);
    c->procs.image_target_texture(target, (GLeglImageOES)image);
    if (!dmabuf_egl_gl_check(errp, "glEGLImageTargetTexture2DOES")) {
        goto delete_texture;
    }
    glTexParameteri(target, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
    glTexParameteri(target, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
    glTexParameteri(target, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
    glTexParameteri(target, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
    glBindTexture(target, 0);
    if (!dmabuf_egl_gl_check(errp, "glTexParameteri")) {
        goto delete_texture;
    }
    /* the texture keeps the storage; nothing rebinds the image */
    c->procs.destroy_image(c->dpy, image);

    img = g_new0(DmabufEglImage, 1);
    img->ctx = c;
    img->tex = tex;
    img->target = target;
    img->width = p->width;
    img->height = p->height;
    c->n_images++;
    trace_dmabuf_egl_import(p->fourcc, p->modifier, p->width, p->height,
                            p->stride[0], p->offset[0], p->fd[0], tex,
                            external);
    dmabuf_egl_context_restore(c, &saved);
    return img;

delete_texture:
    glBindTexture(target, 0);
    glDeleteTextures(1, &tex);
    c->procs.destroy_image(c->dpy, image);
restore:
    dmabuf_egl_context_restore(c, &saved);
    return NULL;
}

void dmabuf_egl_image_free(DmabufEglImage *img)
{
    DmabufEglSavedCurrent saved;

    if (!img) {
        return;
    }
    trace_dmabuf_egl_image_free(img->tex);
    if (dmabuf_egl_context_make_current(img->ctx, &saved, NULL)) {
        glDeleteTextures(1, &img->tex);
        dmabuf_egl_context_restore(img->ctx, &saved);
    }
    img->ctx->n_images--;
    g_free(img);
}

GLuint dmabuf_egl_image_texture(const DmabufEglImage *img)
{
    return img->tex;
}

GLenum dmabuf_egl_image_gl_target(const DmabufEglImage *img)
{
    return img->target;
}

uint32_t dmabuf_egl_image_width(const DmabufEglImage *img)
{
    return img->width;
}

uint32_t dmabuf_egl_image_height(const DmabufEglImage *img)
{
    return img->height;
}
