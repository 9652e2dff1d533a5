/*
 * EGL dma-buf import, blit and readback. See include/ui/egl-dmabuf.h for
 * the API and the ownership rules, docs/egl-dmabuf.md for the design and
 * the measurements behind the software-renderer checks.
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

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "qapi/error.h"
#include "standard-headers/drm/drm_fourcc.h"
#include "ui/egl-dmabuf.h"
#include "trace.h"

/*
 * EGL_EXT_device_drm_render_node (2021) is missing from libepoxy 1.5.10,
 * the version in Debian 12 and 13; the value is the registry's. An
 * identical redefinition is valid C when a header has it.
 */
#define EGL_DRM_RENDER_NODE_FILE_EXT      0x3377

/* Largest number of EGL devices looked at when choosing one. */
#define MAX_DEVICES             16
/* Capacity of an EGL attribute list for one dma-buf import. */
#define ATTR_MAX                (7 + DMABUF_MAX_FDS * 10 + 1)
/* Bound on glGetError() calls that drain stale errors. */
#define GL_ERROR_DRAIN_MAX      16

typedef struct EglDmabufExts {
    /* client extensions (EGL_NO_DISPLAY) */
    bool has_platform_base;         /* EGL_EXT_platform_base */
    bool has_device_enumeration;    /* EGL_EXT_device_enumeration or _base */
    bool has_device_query;          /* EGL_EXT_device_query or _base */
    bool has_platform_device;       /* EGL_EXT_platform_device */
    bool has_display_reference;     /* EGL_KHR_display_reference */
    /* display extensions */
    bool has_image_base;            /* EGL_KHR_image_base */
    bool has_dmabuf_import;         /* EGL_EXT_image_dma_buf_import */
    bool has_modifiers;             /* EGL_EXT_image_dma_buf_import_modifiers */
    bool has_surfaceless;           /* EGL_KHR_surfaceless_context */
    bool has_no_config;             /* EGL_KHR_no_config_context */
    bool has_query_driver;          /* EGL_MESA_query_driver */
    /* GL extensions */
    bool has_gl_egl_image;          /* GL_OES_EGL_image */
    bool has_gl_egl_image_external; /* GL_OES_EGL_image_external */
} EglDmabufExts;

typedef struct EglDmabufProcs {
    PFNEGLGETPLATFORMDISPLAYEXTPROC get_platform_display;
    PFNEGLQUERYDEVICESEXTPROC query_devices;
    PFNEGLQUERYDEVICESTRINGEXTPROC query_device_string;
    PFNEGLQUERYDISPLAYATTRIBEXTPROC query_display_attrib;
    PFNEGLGETDISPLAYDRIVERNAMEPROC get_display_driver_name;
    PFNEGLCREATEIMAGEKHRPROC create_image;
    PFNEGLDESTROYIMAGEKHRPROC destroy_image;
    PFNEGLQUERYDMABUFFORMATSEXTPROC query_dmabuf_formats;
    PFNEGLQUERYDMABUFMODIFIERSEXTPROC query_dmabuf_modifiers;
    PFNGLEGLIMAGETARGETTEXTURE2DOESPROC image_target_texture;
} EglDmabufProcs;

typedef struct FormatModifier {
    uint64_t modifier;
    bool external_only;
} FormatModifier;

typedef struct Format {
    uint32_t fourcc;
    GArray *mods;               /* FormatModifier; empty: implicit only */
} Format;

typedef struct BlitProgram {
    GLuint prog;                /* 0 if this sampler type is unavailable */
    GLint u_dst;
    GLint u_tex;
    GLint u_opaque;
} BlitProgram;

struct EglDmabufContext {
    EGLDisplay dpy;
    bool terminate_display;     /* ours, and EGL counts references */
    EGLContext ctx;
    EGLConfig config;

    EglDmabufExts exts;
    EglDmabufProcs procs;

    char *device;               /* render node path or "software" */
    char *driver;               /* Mesa driver name or "unknown" */
    bool device_is_software;    /* EGL_MESA_device_software */
    bool is_software;

    GArray *formats;            /* Format; NULL without modifier queries */
    GLint max_texture_size;
    BlitProgram prog_2d;
    BlitProgram prog_external;
    GLuint vbo;

    unsigned int n_images;      /* live images and targets, for free() */
    unsigned int n_targets;
};

struct EglDmabufImage {
    EglDmabufContext *ctx;      /* borrowed */
    GLuint tex;
    GLenum target;              /* GL_TEXTURE_2D or _EXTERNAL_OES */
    uint32_t width;
    uint32_t height;
};

struct EglDmabufTarget {
    EglDmabufContext *ctx;      /* borrowed */
    GLuint tex;
    GLuint fbo;
    uint32_t width;
    uint32_t height;
    uint8_t *readback;          /* width * height RGBA, allocated lazily */
};

/* The thread's current context, saved by ctx_make_current(). */
typedef struct SavedCurrent {
    EGLenum api;
    EGLDisplay dpy;
    EGLContext ctx;
    EGLSurface draw;
    EGLSurface read;
    bool switched;
} SavedCurrent;

typedef struct AttrList {
    EGLint v[ATTR_MAX];
    unsigned int n;
} AttrList;

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

/* Sets @errp to "@call failed: EGL_..." with the current eglGetError(). */
static void egl_error_setg(Error **errp, const char *call)
{
    const char *name = egl_error_name(eglGetError());

    trace_egl_dmabuf_egl_error(call, name);
    error_setg(errp, "%s failed: %s", call, name);
}

static void gl_drain_errors(void)
{
    unsigned int i;

    for (i = 0; i < GL_ERROR_DRAIN_MAX; i++) {
        if (glGetError() == GL_NO_ERROR) {
            return;
        }
    }
}

/* Returns: true, or false with @errp set if GL recorded an error. */
static bool gl_check(Error **errp, const char *what)
{
    GLenum err = glGetError();

    if (err == GL_NO_ERROR) {
        return true;
    }
    gl_drain_errors();
    trace_egl_dmabuf_gl_error(what, gl_error_name(err));
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

static void attr_add(AttrList *l, EGLint key, EGLint value)
{
    assert(l->n + 3 <= ATTR_MAX); /* room for the pair and EGL_NONE */
    l->v[l->n++] = key;
    l->v[l->n++] = value;
    l->v[l->n] = EGL_NONE;
}

/*
 * Makes @c current on this thread and remembers what was current, with
 * the bound API, for ctx_restore(). Does nothing if @c is current.
 */
static bool ctx_make_current(EglDmabufContext *c, SavedCurrent *s,
                             Error **errp)
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
        egl_error_setg(errp, "eglMakeCurrent");
        if (s->api != EGL_NONE && s->api != EGL_OPENGL_ES_API) {
            eglBindAPI(s->api);
        }
        return false;
    }
    s->switched = true;
    return true;
}

static void ctx_restore(EglDmabufContext *c, const SavedCurrent *s)
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
        trace_egl_dmabuf_egl_error("eglMakeCurrent (restore)",
                                   egl_error_name(eglGetError()));
    }
    if (s->api != EGL_NONE && s->api != EGL_OPENGL_ES_API) {
        eglBindAPI(s->api);
    }
}

/* ------------------------------------------------------------------ */
/* set-up */

static void load_client_exts(EglDmabufContext *c)
{
    const char *ext = eglQueryString(EGL_NO_DISPLAY, EGL_EXTENSIONS);
    EglDmabufExts *x = &c->exts;

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

static bool device_is_software(EglDmabufContext *c, EGLDeviceEXT dev)
{
    const char *ext = c->procs.query_device_string(dev, EGL_EXTENSIONS);

    return has_ext(ext, "EGL_MESA_device_software");
}

/* The device's render node (or primary node), or NULL; borrowed. */
static const char *device_node(EglDmabufContext *c, EGLDeviceEXT dev)
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
static bool load_display_exts(EglDmabufContext *c, Error **errp)
{
    const char *ext = eglQueryString(c->dpy, EGL_EXTENSIONS);
    EglDmabufExts *x = &c->exts;

    if (!ext) {
        egl_error_setg(errp, "eglQueryString(EGL_EXTENSIONS)");
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

/* Queries every dma-buf format and its modifiers, once. */
static bool load_formats(EglDmabufContext *c, Error **errp)
{
    g_autofree EGLint *fourccs = NULL;
    EGLint n = 0, i;

    if (!c->exts.has_modifiers) {
        return true; /* c->formats stays NULL: only linear, see lookup */
    }
    if (!c->procs.query_dmabuf_formats(c->dpy, 0, NULL, &n) || n < 0) {
        egl_error_setg(errp, "eglQueryDmaBufFormatsEXT");
        return false;
    }
    fourccs = g_new0(EGLint, n > 0 ? n : 1);
    if (!c->procs.query_dmabuf_formats(c->dpy, n, fourccs, &n)) {
        egl_error_setg(errp, "eglQueryDmaBufFormatsEXT");
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
            egl_error_setg(errp, "eglQueryDmaBufModifiersEXT");
            return false;
        }
        mods = g_new0(EGLuint64KHR, m > 0 ? m : 1);
        ext_only = g_new0(EGLBoolean, m > 0 ? m : 1);
        if (m > 0 && !c->procs.query_dmabuf_modifiers(c->dpy, fourccs[i], m,
                                                      mods, ext_only, &m)) {
            egl_error_setg(errp, "eglQueryDmaBufModifiersEXT");
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

static GLuint compile_shader(GLenum type, const char *src, Error **errp)
{
    GLuint sh = glCreateShader(type);
    GLint ok = GL_FALSE;

    glShaderSource(sh, 1, &src, NULL);
    glCompileShader(sh);
    glGetShaderiv(sh, GL_COMPILE_STATUS, &ok);
    if (!ok) {
        char log[512] = "";

        glGetShaderInfoLog(sh, sizeof(log), NULL, log);
        error_setg(errp, "GL shader does not compile: %s", log);
        glDeleteShader(sh);
        return 0;
    }
    return sh;
}

static const char vertex_src[] =
    "#version 100\n"
    "attribute vec2 a_pos;\n"       /* unit square, (0,0) = image top left */
    "uniform vec4 u_dst;\n"         /* left, top, right, bottom in NDC */
    "varying vec2 v_tex;\n"
    "void main()\n"
    "{\n"
    "    v_tex = a_pos;\n"
    "    gl_Position = vec4(mix(u_dst.xy, u_dst.zw, a_pos), 0.0, 1.0);\n"
    "}\n";

static const char fragment_2d_src[] =
    "#version 100\n"
    "#ifdef GL_FRAGMENT_PRECISION_HIGH\n"
    "precision highp float;\n"
    "#else\n"
    "precision mediump float;\n"
    "#endif\n"
    "uniform sampler2D u_tex;\n"
    "uniform float u_opaque;\n"
    "varying vec2 v_tex;\n"
    "void main()\n"
    "{\n"
    "    vec4 c = texture2D(u_tex, v_tex);\n"
    "    gl_FragColor = vec4(c.rgb, max(c.a, u_opaque));\n"
    "}\n";

static const char fragment_external_src[] =
    "#version 100\n"
    "#extension GL_OES_EGL_image_external : require\n"
    "#ifdef GL_FRAGMENT_PRECISION_HIGH\n"
    "precision highp float;\n"
    "#else\n"
    "precision mediump float;\n"
    "#endif\n"
    "uniform samplerExternalOES u_tex;\n"
    "uniform float u_opaque;\n"
    "varying vec2 v_tex;\n"
    "void main()\n"
    "{\n"
    "    vec4 c = texture2D(u_tex, v_tex);\n"
    "    gl_FragColor = vec4(c.rgb, max(c.a, u_opaque));\n"
    "}\n";

static bool build_program(BlitProgram *p, const char *fragment_src,
                          Error **errp)
{
    GLuint vs, fs;
    GLint ok = GL_FALSE;

    vs = compile_shader(GL_VERTEX_SHADER, vertex_src, errp);
    if (!vs) {
        return false;
    }
    fs = compile_shader(GL_FRAGMENT_SHADER, fragment_src, errp);
    if (!fs) {
        glDeleteShader(vs);
        return false;
    }
    p->prog = glCreateProgram();
    glAttachShader(p->prog, vs);
    glAttachShader(p->prog, fs);
    glBindAttribLocation(p->prog, 0, "a_pos");
    glLinkProgram(p->prog);
    glDeleteShader(vs); /* the program keeps them until it goes */
    glDeleteShader(fs);
    glGetProgramiv(p->prog, GL_LINK_STATUS, &ok);
    if (!ok) {
        char log[512] = "";

        glGetProgramInfoLog(p->prog, sizeof(log), NULL, log);
        error_setg(errp, "GL program does not link: %s", log);
        glDeleteProgram(p->prog);
        p->prog = 0;
        return false;
    }
    p->u_dst = glGetUniformLocation(p->prog, "u_dst");
    p->u_tex = glGetUniformLocation(p->prog, "u_tex");
    p->u_opaque = glGetUniformLocation(p->prog, "u_opaque");
    return true;
}

/* GL side, with the new context current. */
static bool setup_gl(EglDmabufContext *c, Error **errp)
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
    return gl_check(errp, "GL set-up");
}

/*
 * The blit programs and the quad, built at the first blit: a context that
 * only chooses the device and checks imports (QEMU's egl_init) never
 * compiles a shader. Called with the context current.
 */
static bool setup_blit(EglDmabufContext *c, Error **errp)
{
    static const GLfloat square[] = { 0, 0, 1, 0, 0, 1, 1, 1 };

    if (c->vbo) {
        return true;
    }
    if (!c->prog_2d.prog &&
        !build_program(&c->prog_2d, fragment_2d_src, errp)) {
        return false;
    }
    if (c->exts.has_gl_egl_image_external && !c->prog_external.prog &&
        !build_program(&c->prog_external, fragment_external_src, errp)) {
        return false;
    }
    glGenBuffers(1, &c->vbo);
    glBindBuffer(GL_ARRAY_BUFFER, c->vbo);
    glBufferData(GL_ARRAY_BUFFER, sizeof(square), square, GL_STATIC_DRAW);
    glBindBuffer(GL_ARRAY_BUFFER, 0);
    return gl_check(errp, "blit set-up");
}

static bool create_gl_context(EglDmabufContext *c, EGLContext share,
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
        egl_error_setg(errp, "eglChooseConfig(GLES2)");
        return false;
    }
    eglBindAPI(EGL_OPENGL_ES_API);
    c->ctx = eglCreateContext(c->dpy, c->config, share, ctx_attrs);
    if (api != EGL_NONE && api != EGL_OPENGL_ES_API) {
        eglBindAPI(api);
    }
    if (c->ctx == EGL_NO_CONTEXT) {
        egl_error_setg(errp, "eglCreateContext(GLES2)");
        return false;
    }
    return true;
}

/*
 * Everything after the display is initialised: extensions, driver, the
 * GLES2 context, formats, GL objects. @share: share context or
 * EGL_NO_CONTEXT; @has_node: the display sits on a DRM node (not on
 * Mesa's software device).
 */
static bool setup_display(EglDmabufContext *c, EGLContext share,
                          bool has_node, Error **errp)
{
    const char *driver = NULL;
    SavedCurrent saved;
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
     * See docs/egl-dmabuf.md.
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
    if (!ctx_make_current(c, &saved, errp)) {
        return false;
    }
    ok = setup_gl(c, errp);
    ctx_restore(c, &saved);
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
    return load_formats(c, errp);
}

/* Undoes everything setup_display() and the display set-up did. */
static void context_teardown(EglDmabufContext *c)
{
    SavedCurrent saved;
    guint i;

    if (c->ctx != EGL_NO_CONTEXT) {
        if (ctx_make_current(c, &saved, NULL)) {
            if (c->prog_2d.prog) {
                glDeleteProgram(c->prog_2d.prog);
            }
            if (c->prog_external.prog) {
                glDeleteProgram(c->prog_external.prog);
            }
            if (c->vbo) {
                glDeleteBuffers(1, &c->vbo);
            }
            ctx_restore(c, &saved);
        }
        if (eglGetCurrentContext() == c->ctx) {
            /* the caller left it current: release it before it goes */
            eglMakeCurrent(c->dpy, EGL_NO_SURFACE, EGL_NO_SURFACE,
                           EGL_NO_CONTEXT);
        }
        eglDestroyContext(c->dpy, c->ctx);
        c->ctx = EGL_NO_CONTEXT;
    }
    memset(&c->prog_2d, 0, sizeof(c->prog_2d));
    memset(&c->prog_external, 0, sizeof(c->prog_external));
    c->vbo = 0;
    if (c->dpy != EGL_NO_DISPLAY && c->terminate_display) {
        eglTerminate(c->dpy);
    }
    c->dpy = EGL_NO_DISPLAY;
    c->terminate_display = false;
    if (c->formats) {
        for (i = 0; i < c->formats->len; i++) {
            g_array_free(g_array_index(c->formats, Format, i).mods, TRUE);
        }
        g_array_free(c->formats, TRUE);
        c->formats = NULL;
    }
    g_clear_pointer(&c->device, g_free);
    g_clear_pointer(&c->driver, g_free);
    c->is_software = false;
    c->device_is_software = false;
}

/* Frees a context that is set up, half set up or empty. */
static void context_destroy(EglDmabufContext *c)
{
    context_teardown(c);
    g_free(c);
}

/* Opens and sets up @dev; on failure @c is torn down again. */
static bool try_device(EglDmabufContext *c, EGLDeviceEXT dev,
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
        egl_error_setg(errp, "eglGetPlatformDisplayEXT(device)");
        return false;
    }
    if (!eglInitialize(c->dpy, &major, &minor)) {
        egl_error_setg(errp, "eglInitialize");
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

static bool node_is_render_node_of(EglDmabufContext *c, EGLDeviceEXT dev,
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

static void context_trace_new(EglDmabufContext *c)
{
    trace_egl_dmabuf_context_new(c->device, c->driver, c->is_software,
                                 c->formats ? c->formats->len : 0,
                                 c->exts.has_modifiers);
}

EglDmabufContext *egl_dmabuf_context_new(const char *render_node,
                                         Error **errp)
{
    EglDmabufContext *c = g_new0(EglDmabufContext, 1);
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
        egl_error_setg(errp, "eglQueryDevicesEXT");
        goto free_context;
    }

    for (i = 0; i < n; i++) {
        const char *node = device_node(c, devs[i]);
        bool software = device_is_software(c, devs[i]);
        g_autofree char *why = NULL;
        Error *local_err = NULL;

        trace_egl_dmabuf_device(i, node ? node : "none", software);
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
        if (!why) {
            if (try_device(c, devs[i], node, false, &local_err)) {
                context_trace_new(c);
                return c;
            }
            why = g_strdup(error_get_pretty(local_err));
            error_free(local_err);
        }
        trace_egl_dmabuf_device_unusable(i, why);
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

EglDmabufContext *egl_dmabuf_context_new_from_display(EGLDisplay dpy,
                                                      EGLContext share,
                                                      Error **errp)
{
    EglDmabufContext *c = g_new0(EglDmabufContext, 1);
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

void egl_dmabuf_context_free(EglDmabufContext *c)
{
    if (!c) {
        return;
    }
    /* images and targets borrow the context */
    assert(c->n_images == 0 && c->n_targets == 0);
    trace_egl_dmabuf_context_free(c->device);
    context_destroy(c);
}

bool egl_dmabuf_context_is_software(const EglDmabufContext *c)
{
    return c->is_software;
}

const char *egl_dmabuf_context_device(const EglDmabufContext *c)
{
    return c->device;
}

const char *egl_dmabuf_context_driver(const EglDmabufContext *c)
{
    return c->driver;
}

EGLDisplay egl_dmabuf_context_egl_display(const EglDmabufContext *c)
{
    return c->dpy;
}

EGLContext egl_dmabuf_context_egl_context(const EglDmabufContext *c)
{
    return c->ctx;
}

/* ------------------------------------------------------------------ */
/* import */

/*
 * Decides whether @fourcc with @modifier can be imported and how.
 * @use_modifier: pass the modifier attributes; @external: sample through
 * GL_TEXTURE_EXTERNAL_OES. Returns: NULL, or why not (to be freed).
 */
static char *lookup_format(const EglDmabufContext *c, uint32_t fourcc,
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

bool egl_dmabuf_context_supports(const EglDmabufContext *c, uint32_t fourcc,
                                 uint64_t modifier)
{
    g_autofree char *why = NULL;
    bool use_modifier, external;

    why = lookup_format(c, fourcc, modifier, &use_modifier, &external);
    return why == NULL;
}

/*
 * What llvmpipe does with an imported fd (Mesa's dri_sw winsys, at each
 * map of the texture): size = lseek(fd, 0, SEEK_END), then
 * mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0), and a NULL dereference
 * if that fails. Repeat it here once so that it cannot fail later.
 * Returns: NULL if @fd is fine for @c, or why not (to be freed).
 */
static char *check_fd(const EglDmabufContext *c, int fd, uint64_t need)
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
static char *check_plane(const EglDmabufContext *c, const DmabufPlane *p,
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

bool egl_dmabuf_check(const EglDmabufContext *c, const DmabufPlane *p,
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

EglDmabufImage *egl_dmabuf_import(EglDmabufContext *c,
                                  const DmabufPlane *p, Error **errp)
{
    g_autofree char *why = NULL;
    EglDmabufImage *img;
    bool use_modifier, external;
    SavedCurrent saved;
    AttrList attrs;
    EGLImageKHR image;
    GLenum target;
    GLuint tex = 0;
    char name[5];

    why = check_plane(c, p, &use_modifier, &external);
    if (why) {
        trace_egl_dmabuf_import_refused(p->fourcc, p->modifier,
                                        p->n_fds ? p->fd[0] : -1, why);
        error_setg(errp, "cannot import dma-buf %s %ux%u: %s",
                   dmabuf_format_name(p->fourcc, name), p->width, p->height,
                   why);
        return NULL;
    }
    target = external ? GL_TEXTURE_EXTERNAL_OES : GL_TEXTURE_2D;
    build_attrs(&attrs, p, use_modifier);

    if (!ctx_make_current(c, &saved, errp)) {
        return NULL;
    }
    gl_drain_errors();
    image = c->procs.create_image(c->dpy, EGL_NO_CONTEXT,
                                  EGL_LINUX_DMA_BUF_EXT, NULL, attrs.v);
    if (image == EGL_NO_IMAGE_KHR) {
        egl_error_setg(errp, "eglCreateImageKHR(dma-buf)");
        goto restore;
    }
    glGenTextures(1, &tex);
    glBindTexture(target, tex);
    c->procs.image_target_texture(target, (GLeglImageOES)image);
    if (!gl_check(errp, "glEGLImageTargetTexture2DOES")) {
        goto delete_texture;
    }
    glTexParameteri(target, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
    glTexParameteri(target, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
    glTexParameteri(target, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
    glTexParameteri(target, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
    glBindTexture(target, 0);
    if (!gl_check(errp, "glTexParameteri")) {
        goto delete_texture;
    }
    /* the texture keeps the storage; nothing rebinds the image */
    c->procs.destroy_image(c->dpy, image);

    img = g_new0(EglDmabufImage, 1);
    img->ctx = c;
    img->tex = tex;
    img->target = target;
    img->width = p->width;
    img->height = p->height;
    c->n_images++;
    trace_egl_dmabuf_import(p->fourcc, p->modifier, p->width, p->height,
                            p->stride[0], p->offset[0], p->fd[0], tex,
                            external);
    ctx_restore(c, &saved);
    return img;

delete_texture:
    glBindTexture(target, 0);
    glDeleteTextures(1, &tex);
    c->procs.destroy_image(c->dpy, image);
restore:
    ctx_restore(c, &saved);
    return NULL;
}

void egl_dmabuf_image_free(EglDmabufImage *img)
{
    SavedCurrent saved;

    if (!img) {
        return;
    }
    trace_egl_dmabuf_image_free(img->tex);
    if (ctx_make_current(img->ctx, &saved, NULL)) {
        glDeleteTextures(1, &img->tex);
        ctx_restore(img->ctx, &saved);
    }
    img->ctx->n_images--;
    g_free(img);
}

GLuint egl_dmabuf_image_texture(const EglDmabufImage *img)
{
    return img->tex;
}

GLenum egl_dmabuf_image_gl_target(const EglDmabufImage *img)
{
    return img->target;
}

uint32_t egl_dmabuf_image_width(const EglDmabufImage *img)
{
    return img->width;
}

uint32_t egl_dmabuf_image_height(const EglDmabufImage *img)
{
    return img->height;
}

/* ------------------------------------------------------------------ */
/* offscreen target, blit, readback */

EglDmabufTarget *egl_dmabuf_target_new(EglDmabufContext *c, uint32_t width,
                                       uint32_t height, Error **errp)
{
    EglDmabufTarget *t;
    SavedCurrent saved;
    GLenum status;
    GLuint tex = 0, fbo = 0;

    if (width == 0 || height == 0 ||
        width > (uint32_t)c->max_texture_size ||
        height > (uint32_t)c->max_texture_size) {
        error_setg(errp, "target size %ux%u is outside 1..%d", width, height,
                   c->max_texture_size);
        return NULL;
    }
    if (!ctx_make_current(c, &saved, errp)) {
        return NULL;
    }
    gl_drain_errors();
    glGenTextures(1, &tex);
    glBindTexture(GL_TEXTURE_2D, tex);
    glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA, width, height, 0, GL_RGBA,
                 GL_UNSIGNED_BYTE, NULL);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_LINEAR);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_LINEAR);
    glBindTexture(GL_TEXTURE_2D, 0);
    if (!gl_check(errp, "glTexImage2D(target)")) {
        goto delete_texture;
    }
    glGenFramebuffers(1, &fbo);
    glBindFramebuffer(GL_FRAMEBUFFER, fbo);
    glFramebufferTexture2D(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0,
                           GL_TEXTURE_2D, tex, 0);
    status = glCheckFramebufferStatus(GL_FRAMEBUFFER);
    glBindFramebuffer(GL_FRAMEBUFFER, 0);
    if (status != GL_FRAMEBUFFER_COMPLETE) {
        error_setg(errp, "target framebuffer %ux%u incomplete: 0x%x", width,
                   height, status);
        goto delete_fbo;
    }

    t = g_new0(EglDmabufTarget, 1);
    t->ctx = c;
    t->tex = tex;
    t->fbo = fbo;
    t->width = width;
    t->height = height;
    c->n_targets++;
    trace_egl_dmabuf_target_new(width, height, tex, fbo);
    ctx_restore(c, &saved);
    return t;

delete_fbo:
    glDeleteFramebuffers(1, &fbo);
delete_texture:
    glDeleteTextures(1, &tex);
    ctx_restore(c, &saved);
    return NULL;
}

void egl_dmabuf_target_free(EglDmabufTarget *t)
{
    SavedCurrent saved;

    if (!t) {
        return;
    }
    trace_egl_dmabuf_target_free(t->tex, t->fbo);
    if (ctx_make_current(t->ctx, &saved, NULL)) {
        glDeleteFramebuffers(1, &t->fbo);
        glDeleteTextures(1, &t->tex);
        ctx_restore(t->ctx, &saved);
    }
    t->ctx->n_targets--;
    g_free(t->readback);
    g_free(t);
}

GLuint egl_dmabuf_target_texture(const EglDmabufTarget *t)
{
    return t->tex;
}

uint32_t egl_dmabuf_target_width(const EglDmabufTarget *t)
{
    return t->width;
}

uint32_t egl_dmabuf_target_height(const EglDmabufTarget *t)
{
    return t->height;
}

/*
 * Draws @img into the rectangle @left..@right, @top..@bottom (NDC; top
 * is the image's first row). @scaled picks linear filtering.
 */
static void draw_image(EglDmabufContext *c, const EglDmabufImage *img,
                       float left, float top, float right, float bottom,
                       bool opaque, bool scaled)
{
    const BlitProgram *p = img->target == GL_TEXTURE_EXTERNAL_OES
                           ? &c->prog_external : &c->prog_2d;
    GLint filter = scaled ? GL_LINEAR : GL_NEAREST;

    glUseProgram(p->prog);
    glActiveTexture(GL_TEXTURE0);
    glBindTexture(img->target, img->tex);
    glTexParameteri(img->target, GL_TEXTURE_MIN_FILTER, filter);
    glTexParameteri(img->target, GL_TEXTURE_MAG_FILTER, filter);
    glUniform1i(p->u_tex, 0);
    glUniform4f(p->u_dst, left, top, right, bottom);
    glUniform1f(p->u_opaque, opaque ? 1.0f : 0.0f);
    glBindBuffer(GL_ARRAY_BUFFER, c->vbo);
    glEnableVertexAttribArray(0);
    glVertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, 0, NULL);
    glDrawArrays(GL_TRIANGLE_STRIP, 0, 4);
    glDisableVertexAttribArray(0);
    glBindBuffer(GL_ARRAY_BUFFER, 0);
    glBindTexture(img->target, 0);
}

bool egl_dmabuf_blit(EglDmabufTarget *dst, const EglDmabufImage *primary,
                     const EglDmabufImage *cursor, int32_t cursor_x,
                     int32_t cursor_y, Error **errp)
{
    EglDmabufContext *c = dst->ctx;
    uint32_t src_w = primary ? primary->width : dst->width;
    uint32_t src_h = primary ? primary->height : dst->height;
    bool scaled = src_w != dst->width || src_h != dst->height;
    SavedCurrent saved;
    bool ok;

    assert(!primary || primary->ctx == c);
    assert(!cursor || cursor->ctx == c);
    trace_egl_dmabuf_blit(dst->width, dst->height,
                          primary ? primary->tex : 0,
                          cursor ? cursor->tex : 0, cursor_x, cursor_y);
    if (!ctx_make_current(c, &saved, errp)) {
        return false;
    }
    if (!setup_blit(c, errp)) {
        ctx_restore(c, &saved);
        return false;
    }
    gl_drain_errors();
    glBindFramebuffer(GL_FRAMEBUFFER, dst->fbo);
    glViewport(0, 0, dst->width, dst->height);
    glDisable(GL_BLEND);
    glDisable(GL_SCISSOR_TEST);
    glDisable(GL_DEPTH_TEST);
    if (primary) {
        draw_image(c, primary, -1.0f, 1.0f, 1.0f, -1.0f, true, scaled);
    } else {
        glClearColor(0.0f, 0.0f, 0.0f, 1.0f);
        glClear(GL_COLOR_BUFFER_BIT);
    }
    if (cursor) {
        /* in @primary's pixels, then NDC; the same scale as the frame */
        float left = 2.0f * cursor_x / src_w - 1.0f;
        float top = 1.0f - 2.0f * cursor_y / src_h;
        float right = 2.0f * ((float)cursor_x + cursor->width) / src_w - 1.0f;
        float bottom = 1.0f - 2.0f * ((float)cursor_y + cursor->height) /
                       src_h;

        glEnable(GL_BLEND);
        /* straight alpha over the frame; the frame's alpha stays 1 */
        glBlendFuncSeparate(GL_SRC_ALPHA, GL_ONE_MINUS_SRC_ALPHA, GL_ZERO,
                            GL_ONE);
        draw_image(c, cursor, left, top, right, bottom, false, scaled);
        glDisable(GL_BLEND);
    }
    glBindFramebuffer(GL_FRAMEBUFFER, 0);
    glUseProgram(0);
    glFlush();
    ok = gl_check(errp, "blit");
    ctx_restore(c, &saved);
    return ok;
}

bool egl_dmabuf_read_pixels(EglDmabufTarget *src, uint32_t fourcc,
                            uint8_t *dst, size_t stride, Error **errp)
{
    EglDmabufContext *c = src->ctx;
    size_t row = (size_t)src->width * 4;
    bool swap_rb, opaque;
    SavedCurrent saved;
    uint32_t x, y;
    char name[5];

    switch (fourcc) {
    case DRM_FORMAT_ABGR8888: /* bytes R, G, B, A: what GL_RGBA reads */
    case DRM_FORMAT_XBGR8888:
        swap_rb = false;
        break;
    case DRM_FORMAT_ARGB8888: /* bytes B, G, R, A */
    case DRM_FORMAT_XRGB8888:
        swap_rb = true;
        break;
    default:
        error_setg(errp, "cannot read pixels as %s",
                   dmabuf_format_name(fourcc, name));
        return false;
    }
    opaque = fourcc == DRM_FORMAT_XBGR8888 || fourcc == DRM_FORMAT_XRGB8888;
    if (stride < row) {
        error_setg(errp, "stride %zu is below %zu bytes per row", stride,
                   row);
        return false;
    }
    if (!src->readback) {
        src->readback = g_malloc(row * src->height);
    }
    trace_egl_dmabuf_read_pixels(src->width, src->height, fourcc);
    if (!ctx_make_current(c, &saved, errp)) {
        return false;
    }
    gl_drain_errors();
    glBindFramebuffer(GL_FRAMEBUFFER, src->fbo);
    glPixelStorei(GL_PACK_ALIGNMENT, 4);
    glReadPixels(0, 0, src->width, src->height, GL_RGBA, GL_UNSIGNED_BYTE,
                 src->readback);
    glBindFramebuffer(GL_FRAMEBUFFER, 0);
    if (!gl_check(errp, "glReadPixels")) {
        ctx_restore(c, &saved);
        return false;
    }
    ctx_restore(c, &saved);

    /* GL's first row is the bottom one */
    for (y = 0; y < src->height; y++) {
        const uint8_t *s = src->readback + (src->height - 1 - y) * row;
        uint8_t *d = dst + y * stride;

        if (!swap_rb && !opaque) {
            memcpy(d, s, row);
            continue;
        }
        for (x = 0; x < src->width; x++, s += 4, d += 4) {
            d[0] = swap_rb ? s[2] : s[0];
            d[1] = s[1];
            d[2] = swap_rb ? s[0] : s[2];
            d[3] = opaque ? 0xff : s[3];
        }
    }
    return true;
}
