/*
 * EGL dma-buf layer, device side: chooses the EGL device and owns the
 * context (set-up, make current / restore, teardown). See
 * include/ui/dmabuf-egl.h for the API and the ownership rules,
 * docs/dmabuf-egl.md for the design; the checks and imports are in
 * ui/dmabuf-egl.c.
 *
 * A render node served by a software rasterizer (kms_swrast, e.g. on vgem)
 * crashes on the first dma-buf import: it is never chosen. Without a GPU
 * that imports dma-bufs, Mesa's software device (llvmpipe) is used.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "qapi/error.h"
#include "qemu/error-report.h"
#include "ui/dmabuf-egl-int.h"
#include "trace.h"

/*
 * EGL_EXT_device_drm_render_node (2021) is missing from libepoxy 1.5.10,
 * the version in Debian 12 and 13; the value is the registry's. An
 * identical redefinition is valid C when a header has it.
 */
#define EGL_DRM_RENDER_NODE_FILE_EXT      0x3377

/* Largest number of EGL devices looked at when choosing one. */
#define MAX_DEVICES             16
/* Bound on glGetError() calls that drain stale errors. */
#define GL_ERROR_DRAIN_MAX      16

/* ------------------------------------------------------------------ */
/* helpers */

#define ERROR_CASE(e) case e: return #e

static const char *egl_error_name(EGLint err)
{
    switch (err) {
    ERROR_CASE(EGL_SUCCESS);
    ERROR_CASE(EGL_NOT_INITIALIZED);
    ERROR_CASE(EGL_BAD_ACCESS);
    ERROR_CASE(EGL_BAD_ALLOC);
    ERROR_CASE(EGL_BAD_ATTRIBUTE);
    ERROR_CASE(EGL_BAD_CONFIG);
    ERROR_CASE(EGL_BAD_CONTEXT);
    ERROR_CASE(EGL_BAD_CURRENT_SURFACE);
    ERROR_CASE(EGL_BAD_DISPLAY);
    ERROR_CASE(EGL_BAD_MATCH);
    ERROR_CASE(EGL_BAD_NATIVE_PIXMAP);
    ERROR_CASE(EGL_BAD_NATIVE_WINDOW);
    ERROR_CASE(EGL_BAD_PARAMETER);
    ERROR_CASE(EGL_BAD_SURFACE);
    ERROR_CASE(EGL_CONTEXT_LOST);
    ERROR_CASE(EGL_BAD_DEVICE_EXT);
    default:
        return "unknown EGL error";
    }
}

static const char *gl_error_name(GLenum err)
{
    switch (err) {
    ERROR_CASE(GL_NO_ERROR);
    ERROR_CASE(GL_INVALID_ENUM);
    ERROR_CASE(GL_INVALID_VALUE);
    ERROR_CASE(GL_INVALID_OPERATION);
    ERROR_CASE(GL_INVALID_FRAMEBUFFER_OPERATION);
    ERROR_CASE(GL_OUT_OF_MEMORY);
    default:
        return "unknown GL error";
    }
}

#undef ERROR_CASE

void dmabuf_egl_error_setg(Error **errp, const char *call)
{
    const char *name = egl_error_name(eglGetError());

    trace_dmabuf_egl_error(call, name);
    error_setg(errp, "%s failed: %s", call, name);
}

void dmabuf_egl_gl_drain_errors(void)
{
    unsigned int i;

    for (i = 0; i < GL_ERROR_DRAIN_MAX; i++) {
        if (glGetError() == GL_NO_ERROR) {
            return;
        }
    }
}

bool dmabuf_egl_gl_check(Error **errp, const char *what)
{
    GLenum err = glGetError();

    if (err == GL_NO_ERROR) {
        return true;
    }
    dmabuf_egl_gl_drain_errors();
    trace_dmabuf_egl_gl_error(what, gl_error_name(err));
    error_setg(errp, "%s failed: %s", what, gl_error_name(err));
    return false;
}

/* Whole-word match of @name in the space-separated @list (may be NULL). */
static bool has_ext(const char *list, const char *name)
{
    size_t len = strlen(name);
    const char *p = list;

    if (!list) {
        return false;
    }
    while ((p = strstr(p, name)) != NULL) {
        if ((p == list || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0')) {
            return true;
        }
        p += len;
    }
    return false;
}

/* ------------------------------------------------------------------ */
/* current context */

/* Remembers what was current, with the bound API; nothing if @c is. */
bool dmabuf_egl_context_make_current(DmabufEglContext *c,
                                     DmabufEglSavedCurrent *s, Error **errp)
{
    s->api = eglQueryAPI();
    s->dpy = eglGetCurrentDisplay();
    s->ctx = eglGetCurrentContext();
    s->draw = eglGetCurrentSurface(EGL_DRAW);
    s->read = eglGetCurrentSurface(EGL_READ);
    s->switched = false;
    if (s->api == EGL_OPENGL_ES_API && s->ctx == c->ctx &&
        s->draw == EGL_NO_SURFACE && s->read == EGL_NO_SURFACE) {
        return true;
    }
    eglBindAPI(EGL_OPENGL_ES_API);
    if (!eglMakeCurrent(c->dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, c->ctx)) {
        dmabuf_egl_error_setg(errp, "eglMakeCurrent");
        if (s->api != EGL_NONE && s->api != EGL_OPENGL_ES_API) {
            eglBindAPI(s->api);
        }
        return false;
    }
    s->switched = true;
    return true;
}

void dmabuf_egl_context_restore(DmabufEglContext *c,
                                const DmabufEglSavedCurrent *s)
{
    bool ok;

    if (!s->switched) {
        return;
    }
    if (s->ctx == EGL_NO_CONTEXT) {
        ok = eglMakeCurrent(c->dpy, EGL_NO_SURFACE, EGL_NO_SURFACE,
                            EGL_NO_CONTEXT);
    } else {
        ok = eglMakeCurrent(s->dpy, s->draw, s->read, s->ctx);
    }
    if (!ok) {
        trace_dmabuf_egl_error("eglMakeCurrent (restore)",
                               egl_error_name(eglGetError()));
    }
    if (s->api != EGL_NONE && s->api != EGL_OPENGL_ES_API) {
        eglBindAPI(s->api);
    }
}

/* ------------------------------------------------------------------ */
/* set-up */

static void load_client_exts(DmabufEglContext *c)
{
    const char *ext = eglQueryString(EGL_NO_DISPLAY, EGL_EXTENSIONS);
    DmabufEglExts *x = &c->exts;

    /* NULL without EGL_EXT_client_extensions: no platform support then */
    x->has_platform_base = has_ext(ext, "EGL_EXT_platform_base");
    x->has_device_enumeration = has_ext(ext, "EGL_EXT_device_enumeration") ||
                                has_ext(ext, "EGL_EXT_device_base");
    x->has_device_query = has_ext(ext, "EGL_EXT_device_query") ||
                          has_ext(ext, "EGL_EXT_device_base");
    x->has_platform_device = has_ext(ext, "EGL_EXT_platform_device");
    x->has_display_reference = has_ext(ext, "EGL_KHR_display_reference");

    if (x->has_platform_base) {
        c->procs.get_platform_display = (PFNEGLGETPLATFORMDISPLAYEXTPROC)
            eglGetProcAddress("eglGetPlatformDisplayEXT");
    }
    if (x->has_device_enumeration) {
        c->procs.query_devices = (PFNEGLQUERYDEVICESEXTPROC)
            eglGetProcAddress("eglQueryDevicesEXT");
    }
    if (x->has_device_query) {
        c->procs.query_device_string = (PFNEGLQUERYDEVICESTRINGEXTPROC)
            eglGetProcAddress("eglQueryDeviceStringEXT");
        c->procs.query_display_attrib = (PFNEGLQUERYDISPLAYATTRIBEXTPROC)
            eglGetProcAddress("eglQueryDisplayAttribEXT");
    }
}

static bool device_is_software(DmabufEglContext *c, EGLDeviceEXT dev)
{
    const char *ext = c->procs.query_device_string(dev, EGL_EXTENSIONS);

    return has_ext(ext, "EGL_MESA_device_software");
}

/* The device's render node (or primary node), or NULL; borrowed. */
static const char *device_node(DmabufEglContext *c, EGLDeviceEXT dev)
{
    const char *ext = c->procs.query_device_string(dev, EGL_EXTENSIONS);

    if (has_ext(ext, "EGL_EXT_device_drm_render_node")) {
        const char *node = c->procs.query_device_string(
            dev, EGL_DRM_RENDER_NODE_FILE_EXT);
        if (node) {
            return node;
        }
    }
    if (has_ext(ext, "EGL_EXT_device_drm")) {
        return c->procs.query_device_string(dev, EGL_DRM_DEVICE_FILE_EXT);
    }
    return NULL;
}

/* Loads display extensions and procs, checks what import needs. */
static bool load_display_exts(DmabufEglContext *c, Error **errp)
{
    const char *ext = eglQueryString(c->dpy, EGL_EXTENSIONS);
    DmabufEglExts *x = &c->exts;

    if (!ext) {
        dmabuf_egl_error_setg(errp, "eglQueryString(EGL_EXTENSIONS)");
        return false;
    }
    x->has_image_base = has_ext(ext, "EGL_KHR_image_base");
    x->has_dmabuf_import = has_ext(ext, "EGL_EXT_image_dma_buf_import");
    x->has_modifiers = has_ext(ext, "EGL_EXT_image_dma_buf_import_modifiers");
    x->has_surfaceless = has_ext(ext, "EGL_KHR_surfaceless_context");
    x->has_no_config = has_ext(ext, "EGL_KHR_no_config_context");
    x->has_query_driver = has_ext(ext, "EGL_MESA_query_driver");

    if (!x->has_image_base || !x->has_dmabuf_import) {
        error_setg(errp, "the EGL driver lacks %s",
                   x->has_image_base ? "EGL_EXT_image_dma_buf_import"
                                     : "EGL_KHR_image_base");
        return false;
    }
    if (!x->has_surfaceless) {
        error_setg(errp, "the EGL driver lacks EGL_KHR_surfaceless_context");
        return false;
    }
    c->procs.create_image = (PFNEGLCREATEIMAGEKHRPROC)
        eglGetProcAddress("eglCreateImageKHR");
    c->procs.destroy_image = (PFNEGLDESTROYIMAGEKHRPROC)
        eglGetProcAddress("eglDestroyImageKHR");
    if (x->has_modifiers) {
        c->procs.query_dmabuf_formats = (PFNEGLQUERYDMABUFFORMATSEXTPROC)
            eglGetProcAddress("eglQueryDmaBufFormatsEXT");
        c->procs.query_dmabuf_modifiers = (PFNEGLQUERYDMABUFMODIFIERSEXTPROC)
            eglGetProcAddress("eglQueryDmaBufModifiersEXT");
    }
    if (x->has_query_driver) {
        c->procs.get_display_driver_name = (PFNEGLGETDISPLAYDRIVERNAMEPROC)
            eglGetProcAddress("eglGetDisplayDriverName");
    }
    if (!c->procs.create_image || !c->procs.destroy_image ||
        (x->has_modifiers && (!c->procs.query_dmabuf_formats ||
                              !c->procs.query_dmabuf_modifiers))) {
        error_setg(errp, "the EGL driver advertises dma-buf import but "
                   "eglGetProcAddress finds no entry point for it");
        return false;
    }
    return true;
}

/* GL side, with the new context current. */
static bool setup_gl(DmabufEglContext *c, Error **errp)
{
    const char *ext = (const char *)glGetString(GL_EXTENSIONS);
    const char *renderer = (const char *)glGetString(GL_RENDERER);

    c->exts.has_gl_egl_image = has_ext(ext, "GL_OES_EGL_image");
    c->exts.has_gl_egl_image_external =
        has_ext(ext, "GL_OES_EGL_image_external");
    if (!c->exts.has_gl_egl_image) {
        error_setg(errp, "the GL driver lacks GL_OES_EGL_image");
        return false;
    }
    c->procs.image_target_texture = (PFNGLEGLIMAGETARGETTEXTURE2DOESPROC)
        eglGetProcAddress("glEGLImageTargetTexture2DOES");
    if (!c->procs.image_target_texture) {
        error_setg(errp, "eglGetProcAddress finds no "
                   "glEGLImageTargetTexture2DOES");
        return false;
    }
    /*
     * Without EGL_MESA_query_driver or a device to ask, the renderer
     * name is all there is; these are Mesa's CPU rasterizers.
     */
    if (renderer && (g_str_has_prefix(renderer, "llvmpipe") ||
                     g_str_has_prefix(renderer, "softpipe"))) {
        c->is_software = true;
    }
    glGetIntegerv(GL_MAX_TEXTURE_SIZE, &c->max_texture_size);
    return dmabuf_egl_gl_check(errp, "GL set-up");
}

static bool create_gl_context(DmabufEglContext *c, EGLContext share,
                              Error **errp)
{
    static const EGLint config_attrs[] = {
        EGL_RENDERABLE_TYPE, EGL_OPENGL_ES2_BIT,
        EGL_NONE,
    };
    static const EGLint ctx_attrs[] = {
        EGL_CONTEXT_CLIENT_VERSION, 2,
        EGL_NONE,
    };
    EGLenum api = eglQueryAPI();
    EGLint n = 0;

    if (c->exts.has_no_config) {
        c->config = EGL_NO_CONFIG_KHR;
    } else if (!eglChooseConfig(c->dpy, config_attrs, &c->config, 1, &n) ||
               n < 1) {
        dmabuf_egl_error_setg(errp, "eglChooseConfig(GLES2)");
        return false;
    }
    eglBindAPI(EGL_OPENGL_ES_API);
    c->ctx = eglCreateContext(c->dpy, c->config, share, ctx_attrs);
    if (api != EGL_NONE && api != EGL_OPENGL_ES_API) {
        eglBindAPI(api);
    }
    if (c->ctx == EGL_NO_CONTEXT) {
        dmabuf_egl_error_setg(errp, "eglCreateContext(GLES2)");
        return false;
    }
    return true;
}

/*
 * Everything after the display is initialised: extensions, driver, the
 * GLES2 context, formats. @share: share context or EGL_NO_CONTEXT;
 * @has_node: the display sits on a DRM node (not on Mesa's software
 * device).
 */
static bool setup_display(DmabufEglContext *c, EGLContext share,
                          bool has_node, Error **errp)
{
    const char *driver = NULL;
    DmabufEglSavedCurrent saved;
    bool ok;

    if (!load_display_exts(c, errp)) {
        return false;
    }
    if (c->procs.get_display_driver_name) {
        driver = c->procs.get_display_driver_name(c->dpy);
    }
    c->driver = g_strdup(driver ? driver : "unknown");
    /*
     * kms_swrast renders with llvmpipe on a DRM node and imports through
     * that node (PRIME + MODE_MAP_DUMB). vgem refuses to map imported
     * buffers and llvmpipe then dereferences NULL: every import crashes.
     * See docs/dmabuf-egl.md.
     */
    if (driver && !strcmp(driver, "kms_swrast")) {
        error_setg(errp, "driver kms_swrast (software rendering on a DRM "
                   "node) crashes on dma-buf import; use Mesa's software "
                   "device instead");
        return false;
    }
    c->is_software = c->device_is_software ||
                     (driver && !strcmp(driver, "swrast"));

    if (!create_gl_context(c, share, errp)) {
        return false;
    }
    if (!dmabuf_egl_context_make_current(c, &saved, errp)) {
        return false;
    }
    ok = setup_gl(c, errp);
    dmabuf_egl_context_restore(c, &saved);
    if (!ok) {
        return false;
    }
    if (c->is_software && has_node && !c->device_is_software &&
        (!driver || strcmp(driver, "swrast"))) {
        /* llvmpipe behind a DRM node without a driver name: kms_swrast */
        error_setg(errp, "a software renderer on a DRM node (kms_swrast) "
                   "crashes on dma-buf import");
        return false;
    }
    return dmabuf_egl_formats_load(c, errp);
}

/* Undoes everything setup_display() and the display set-up did. */
static void context_teardown(DmabufEglContext *c)
{
    if (c->ctx != EGL_NO_CONTEXT) {
        if (eglGetCurrentContext() == c->ctx) {
            /* the caller left it current: release it before it goes */
            eglMakeCurrent(c->dpy, EGL_NO_SURFACE, EGL_NO_SURFACE,
                           EGL_NO_CONTEXT);
        }
        eglDestroyContext(c->dpy, c->ctx);
        c->ctx = EGL_NO_CONTEXT;
    }
    if (c->dpy != EGL_NO_DISPLAY && c->terminate_display) {
        eglTerminate(c->dpy);
    }
    c->dpy = EGL_NO_DISPLAY;
    c->terminate_display = false;
    dmabuf_egl_formats_free(c);
    g_clear_pointer(&c->device, g_free);
    g_clear_pointer(&c->driver, g_free);
    c->is_software = false;
    c->device_is_software = false;
}

/* Frees a context that is set up, half set up or empty. */
static void context_destroy(DmabufEglContext *c)
{
    context_teardown(c);
    g_free(c);
}

/* Opens and sets up @dev; on failure @c is torn down again. */
static bool try_device(DmabufEglContext *c, EGLDeviceEXT dev,
                       const char *node, bool software, Error **errp)
{
    EGLint attrs[3] = { EGL_NONE, EGL_NONE, EGL_NONE };
    EGLint major, minor;

    if (c->exts.has_display_reference) {
        /* then eglTerminate() only drops our reference */
        attrs[0] = EGL_TRACK_REFERENCES_KHR;
        attrs[1] = EGL_TRUE;
    }
    c->dpy = c->procs.get_platform_display(EGL_PLATFORM_DEVICE_EXT, dev,
                                           attrs);
    if (c->dpy == EGL_NO_DISPLAY) {
        dmabuf_egl_error_setg(errp, "eglGetPlatformDisplayEXT(device)");
        return false;
    }
    if (!eglInitialize(c->dpy, &major, &minor)) {
        dmabuf_egl_error_setg(errp, "eglInitialize");
        c->dpy = EGL_NO_DISPLAY;
        return false;
    }
    c->terminate_display = c->exts.has_display_reference;
    c->device_is_software = software;
    if (!setup_display(c, EGL_NO_CONTEXT, node != NULL, errp)) {
        context_teardown(c);
        return false;
    }
    c->device = g_strdup(software ? "software" : node);
    return true;
}

/* Same device file? Compares the device numbers, so symlinks match. */
static bool same_node(const char *a, const char *b)
{
    struct stat sa, sb;

    if (!a || !b) {
        return false;
    }
    if (stat(a, &sa) < 0 || stat(b, &sb) < 0) {
        return !strcmp(a, b);
    }
    return S_ISCHR(sa.st_mode) && S_ISCHR(sb.st_mode) &&
           sa.st_rdev == sb.st_rdev;
}

static bool node_is_render_node_of(DmabufEglContext *c, EGLDeviceEXT dev,
                                   const char *want)
{
    const char *ext = c->procs.query_device_string(dev, EGL_EXTENSIONS);

    if (has_ext(ext, "EGL_EXT_device_drm_render_node") &&
        same_node(want, c->procs.query_device_string(
                      dev, EGL_DRM_RENDER_NODE_FILE_EXT))) {
        return true;
    }
    return has_ext(ext, "EGL_EXT_device_drm") &&
           same_node(want, c->procs.query_device_string(
                         dev, EGL_DRM_DEVICE_FILE_EXT));
}

/*
 * Kernel DRM drivers that cannot render. Mesa has no driver for them and,
 * after failing, falls back to kms_swrast on their node (noisily), which
 * crashes on import; they are skipped before eglInitialize.
 */
static const char *const render_less_drivers[] = { "vgem" };

/*
 * The kernel driver behind the DRM node @node, from sysfs: the bound
 * driver's name, or for a device without one (vgem registers a bare
 * platform device) the device's own name. Returns: a new string or NULL.
 */
static char *node_kernel_driver(const char *node)
{
    g_autofree char *sys = NULL;
    g_autofree char *link = NULL;
    g_autofree char *target = NULL;
    struct stat st;
    char *real;

    if (stat(node, &st) < 0 || !S_ISCHR(st.st_mode)) {
        return NULL;
    }
    sys = g_strdup_printf("/sys/dev/char/%u:%u/device", major(st.st_rdev),
                          minor(st.st_rdev));
    link = g_strconcat(sys, "/driver", NULL);
    target = g_file_read_link(link, NULL);
    if (target) {
        return g_path_get_basename(target);
    }
    real = realpath(sys, NULL);
    if (!real) {
        return NULL;
    }
    target = g_path_get_basename(real);
    free(real);
    return g_steal_pointer(&target);
}

/* Returns: NULL if @node may be tried, or why not (to be freed). */
static char *node_unusable(const char *node)
{
    g_autofree char *kdriver = node_kernel_driver(node);
    size_t i;

    for (i = 0; kdriver && i < G_N_ELEMENTS(render_less_drivers); i++) {
        if (!strcmp(kdriver, render_less_drivers[i])) {
            return g_strdup_printf("kernel driver %s cannot render (Mesa "
                                   "would use kms_swrast, which crashes on "
                                   "dma-buf import)", kdriver);
        }
    }
    return NULL;
}

static void context_trace_new(DmabufEglContext *c)
{
    trace_dmabuf_egl_context_new(c->device, c->driver, c->is_software,
                                 c->formats ? c->formats->len : 0,
                                 c->exts.has_modifiers);
}

DmabufEglContext *dmabuf_egl_context_new(const char *render_node,
                                         Error **errp)
{
    DmabufEglContext *c = g_new0(DmabufEglContext, 1);
    g_autoptr(GString) tried = g_string_new(NULL);
    EGLDeviceEXT devs[MAX_DEVICES];
    EGLDeviceEXT soft = EGL_NO_DEVICE_EXT;
    EGLint n = 0, i;

    c->dpy = EGL_NO_DISPLAY;
    c->ctx = EGL_NO_CONTEXT;
    load_client_exts(c);
    if (!c->exts.has_platform_device || !c->procs.get_platform_display ||
        !c->procs.query_devices || !c->procs.query_device_string) {
        error_setg(errp, "EGL lacks EGL_EXT_platform_device with device "
                   "enumeration and query; cannot choose a device");
        goto free_context;
    }
    if (!c->procs.query_devices(MAX_DEVICES, devs, &n) || n < 0) {
        dmabuf_egl_error_setg(errp, "eglQueryDevicesEXT");
        goto free_context;
    }

    for (i = 0; i < n; i++) {
        const char *node = device_node(c, devs[i]);
        bool software = device_is_software(c, devs[i]);
        g_autofree char *why = NULL;
        Error *local_err = NULL;

        trace_dmabuf_egl_device(i, node ? node : "none", software);
        if (software) {
            if (soft == EGL_NO_DEVICE_EXT) {
                soft = devs[i];
            }
            continue;
        }
        if (!node) {
            continue;
        }
        if (render_node && !node_is_render_node_of(c, devs[i], render_node)) {
            continue;
        }
        why = node_unusable(node);
        if (why && render_node) {
            /*
             * Named, but it cannot render (libvirt names the first render
             * node whenever GL is on, vgem's included): choose as if no
             * node were named, and say so once.
             */
            warn_report("egl: %s: %s; choosing another device",
                        render_node, why);
            trace_dmabuf_egl_device_unusable(i, why);
            context_destroy(c);
            return dmabuf_egl_context_new(NULL, errp);
        }
        if (!why) {
            if (try_device(c, devs[i], node, false, &local_err)) {
                context_trace_new(c);
                return c;
            }
            why = g_strdup(error_get_pretty(local_err));
            error_free(local_err);
        }
        trace_dmabuf_egl_device_unusable(i, why);
        g_string_append_printf(tried, "%s%s: %s", tried->len ? "; " : "",
                               node, why);
        if (render_node) {
            error_setg(errp, "cannot use %s: %s", render_node, why);
            goto free_context;
        }
    }
    if (render_node) {
        error_setg(errp, "no EGL device has the DRM node %s", render_node);
        goto free_context;
    }
    if (soft == EGL_NO_DEVICE_EXT) {
        error_setg(errp, "no EGL device can import dma-bufs: %s%sMesa's "
                   "software device (EGL_MESA_device_software) is missing",
                   tried->str, tried->len ? "; " : "");
        goto free_context;
    }
    if (!try_device(c, soft, NULL, true, errp)) {
        goto free_context;
    }
    context_trace_new(c);
    return c;

free_context:
    context_destroy(c);
    return NULL;
}

DmabufEglContext *dmabuf_egl_context_new_from_display(EGLDisplay dpy,
                                                      EGLContext share,
                                                      Error **errp)
{
    DmabufEglContext *c = g_new0(DmabufEglContext, 1);
    bool has_node = false;

    c->dpy = dpy;
    c->ctx = EGL_NO_CONTEXT;
    load_client_exts(c);
    if (c->procs.query_display_attrib && c->procs.query_device_string) {
        EGLAttrib dev = 0;

        if (c->procs.query_display_attrib(dpy, EGL_DEVICE_EXT, &dev) &&
            (EGLDeviceEXT)dev != EGL_NO_DEVICE_EXT) {
            c->device_is_software = device_is_software(c, (EGLDeviceEXT)dev);
            c->device = g_strdup(c->device_is_software ? "software" :
                                 device_node(c, (EGLDeviceEXT)dev));
            has_node = !c->device_is_software && c->device;
        }
    }
    if (!c->device) {
        c->device = g_strdup("adopted display");
    }
    if (!setup_display(c, share, has_node, errp)) {
        context_destroy(c); /* the display is borrowed: not terminated */
        return NULL;
    }
    context_trace_new(c);
    return c;
}

void dmabuf_egl_context_free(DmabufEglContext *c)
{
    if (!c) {
        return;
    }
    /* images borrow the context */
    assert(c->n_images == 0);
    trace_dmabuf_egl_context_free(c->device);
    context_destroy(c);
}

bool dmabuf_egl_context_is_software(const DmabufEglContext *c)
{
    return c->is_software;
}

const char *dmabuf_egl_context_device(const DmabufEglContext *c)
{
    return c->device;
}

const char *dmabuf_egl_context_driver(const DmabufEglContext *c)
{
    return c->driver;
}

EGLDisplay dmabuf_egl_context_egl_display(const DmabufEglContext *c)
{
    return c->dpy;
}

EGLContext dmabuf_egl_context_egl_context(const DmabufEglContext *c)
{
    return c->ctx;
}
