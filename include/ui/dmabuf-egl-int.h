/*
 * Internals of the EGL dma-buf layer, shared by its two files and by
 * nothing else:
 *   - ui/dmabuf-egl-device.c chooses the EGL device and owns the context
 *     (set-up, make current / restore, teardown);
 *   - ui/dmabuf-egl.c owns the dma-buf format table, the checks and the
 *     imports.
 * Users include "ui/dmabuf-egl.h", where DmabufEglContext is opaque.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef UI_DMABUF_EGL_INT_H
#define UI_DMABUF_EGL_INT_H

#include "ui/dmabuf-egl.h"

typedef struct DmabufEglExts {
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
} DmabufEglExts;

typedef struct DmabufEglProcs {
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
} DmabufEglProcs;

struct DmabufEglContext {
    EGLDisplay dpy;
    bool terminate_display;     /* ours, and EGL counts references */
    EGLContext ctx;
    EGLConfig config;

    DmabufEglExts exts;
    DmabufEglProcs procs;

    char *device;               /* render node path or "software" */
    char *driver;               /* Mesa driver name or "unknown" */
    bool device_is_software;    /* EGL_MESA_device_software */
    bool is_software;

    GArray *formats;            /* dmabuf-egl.c's; NULL: no modifier queries */
    GLint max_texture_size;

    unsigned int n_images;      /* live images, for free() */
};

/* ui/dmabuf-egl-device.c */

/* Sets @errp to "@call failed: EGL_..." with the current eglGetError(). */
void dmabuf_egl_error_setg(Error **errp, const char *call);
/* Clears the GL errors recorded so far (a bounded number of them). */
void dmabuf_egl_gl_drain_errors(void);
/* Returns: true, or false with @errp set if GL recorded an error. */
bool dmabuf_egl_gl_check(Error **errp, const char *what);

/* ui/dmabuf-egl.c */

/*
 * Queries every dma-buf format of @c's display and its modifiers into
 * @c->formats, once, at set-up. Returns: true, or false with @errp set.
 */
bool dmabuf_egl_formats_load(DmabufEglContext *c, Error **errp);
/* Frees @c->formats (may be NULL); it becomes NULL. */
void dmabuf_egl_formats_free(DmabufEglContext *c);

#endif /* UI_DMABUF_EGL_INT_H */
