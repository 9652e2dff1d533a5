/*
 * EGL dma-buf layer: chooses the EGL device (ui/dmabuf-egl-device.c), and
 * checks a DmabufPlane and imports it as a GL texture (ui/dmabuf-egl.c).
 * QEMU uses it to choose the device and to guard its own imports; drawing
 * and reading back stay with QEMU's egl-helpers (the tests' blitter is
 * tests/egl/egl-blit.c).
 *
 * This layer knows EGL, GLES2 and DmabufPlane, nothing of VFIO or QEMU
 * consoles. It runs on a GPU render node whose driver can import dma-bufs,
 * or else on Mesa's software device (llvmpipe), where it refuses before
 * eglCreateImage every dma-buf that llvmpipe could not map (see
 * docs/dmabuf-egl.md).
 *
 * Ownership
 * - fds: never consumed. dmabuf_egl_import() borrows the plane; the driver
 *   keeps its own reference, so the caller may close the plane's fds as
 *   soon as the import returns.
 * - DmabufEglContext owns its EGL context and, when it created it, its
 *   EGLDisplay. An adopted display (from_display) is borrowed and never
 *   terminated.
 * - DmabufEglImage borrows its context: free it before the context. It
 *   owns its GL texture.
 * - GL names returned by accessors are borrowed.
 *
 * Threads and GL state: a context is used from one thread at a time. Every
 * function that calls EGL or GL makes the context current and restores the
 * thread's previous current context (and bound API) before it returns.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef UI_DMABUF_EGL_H
#define UI_DMABUF_EGL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

/* <epoxy/egl.h> + <epoxy/gl.h>, or the Khronos headers: chosen by meson */
#include "dmabuf-egl-gl.h"
#include "ui/dmabuf-plane.h"

typedef struct Error Error;

typedef struct DmabufEglContext DmabufEglContext;
typedef struct DmabufEglImage DmabufEglImage;

/* The thread's current EGL state, for dmabuf_egl_context_restore(). */
typedef struct DmabufEglSavedCurrent {
    EGLenum api;
    EGLDisplay dpy;
    EGLContext ctx;
    EGLSurface draw;
    EGLSurface read;
    bool switched;              /* false: @ctx was current already */
} DmabufEglSavedCurrent;

/**
 * dmabuf_egl_context_new:
 * @render_node: a DRM render node path such as "/dev/dri/renderD128" to
 *   use exactly that GPU, or NULL to choose. A named node whose kernel
 *   driver cannot render (vgem) is refused with a warning and the choice
 *   made as for NULL: libvirt names the first render node whenever GL is
 *   on.
 * @errp: error object
 *
 * Sets up EGL on a device through EGL_EXT_platform_device. With NULL, the
 * first GPU render node whose driver imports dma-bufs wins, else Mesa's
 * software device (EGL_MESA_device_software). A render node served by a
 * software rasterizer (kms_swrast, e.g. on vgem) is never used: it crashes
 * on import. Surfaceless and GBM platforms are never used for the same
 * reason. Reads the extensions, entry points and dma-buf formats once.
 *
 * Returns: a new context that owns its display and GL context, or NULL
 * with @errp set. Free with dmabuf_egl_context_free().
 */
DmabufEglContext *dmabuf_egl_context_new(const char *render_node,
                                         Error **errp);

/**
 * dmabuf_egl_context_new_from_display:
 * @dpy: an initialised EGLDisplay, borrowed: it must outlive the context
 *   and is never terminated here
 * @share: a context on @dpy whose objects (textures) the new context
 *   shares, e.g. the GTK widget's; EGL_NO_CONTEXT for none. Borrowed.
 * @errp: error object
 *
 * Creates a GLES2 context of its own on @dpy (so that this layer's GL
 * state never disturbs the caller's), in @share's share group. Refuses a
 * display driven by kms_swrast, which crashes on dma-buf import.
 *
 * Returns: a new context, or NULL with @errp set.
 */
DmabufEglContext *dmabuf_egl_context_new_from_display(EGLDisplay dpy,
                                                      EGLContext share,
                                                      Error **errp);

/**
 * dmabuf_egl_context_free:
 * @ctx: context, may be NULL
 *
 * Destroys the EGL context; terminates the display only if @ctx created
 * it and EGL counts display references (EGL_KHR_display_reference). Every
 * image of @ctx must have been freed before.
 */
void dmabuf_egl_context_free(DmabufEglContext *ctx);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(DmabufEglContext, dmabuf_egl_context_free)

/* True when the renderer is a CPU rasterizer (llvmpipe, softpipe). */
bool dmabuf_egl_context_is_software(const DmabufEglContext *ctx);
/* The render node in use, or "software"; borrowed, valid with @ctx. */
const char *dmabuf_egl_context_device(const DmabufEglContext *ctx);
/* The Mesa driver name (EGL_MESA_query_driver) or "unknown"; borrowed. */
const char *dmabuf_egl_context_driver(const DmabufEglContext *ctx);
/* The display and the context this layer draws with; borrowed. */
EGLDisplay dmabuf_egl_context_egl_display(const DmabufEglContext *ctx);
EGLContext dmabuf_egl_context_egl_context(const DmabufEglContext *ctx);

/**
 * dmabuf_egl_context_make_current:
 * @ctx: context
 * @saved: filled with the thread's current display, context, surfaces and
 *   bound API; owned by the caller
 * @errp: error object
 *
 * Makes @ctx current (surfaceless, GLES bound) for GL calls of the
 * caller's own on @ctx's context; does nothing if it is current already.
 * Every successful call must be paired with dmabuf_egl_context_restore().
 * Returns: true, or false with @errp set and nothing changed.
 */
bool dmabuf_egl_context_make_current(DmabufEglContext *ctx,
                                     DmabufEglSavedCurrent *saved,
                                     Error **errp);

/**
 * dmabuf_egl_context_restore:
 * @ctx: the context given to dmabuf_egl_context_make_current()
 * @saved: what it saved; borrowed
 *
 * Makes current again what was current before, and rebinds its API.
 */
void dmabuf_egl_context_restore(DmabufEglContext *ctx,
                                const DmabufEglSavedCurrent *saved);

/**
 * dmabuf_egl_context_supports:
 * @ctx: context
 * @fourcc: DRM_FORMAT_* code
 * @modifier: DRM_FORMAT_MOD_*; 0 is LINEAR
 *
 * A quiet probe: the same format and modifier test dmabuf_egl_import()
 * applies, without touching any fd.
 * Returns: true if an import of this format and modifier may succeed.
 */
bool dmabuf_egl_context_supports(const DmabufEglContext *ctx,
                                 uint32_t fourcc, uint64_t modifier);

/**
 * dmabuf_egl_check:
 * @ctx: context
 * @plane: borrowed; its fds are not consumed
 * @errp: error object
 *
 * The checks dmabuf_egl_import() makes before eglCreateImage, alone: for a
 * consumer that imports through other code (QEMU's egl-helpers) but must
 * not hand the driver a buffer that would crash it.
 * Returns: true if @plane may be imported, or false with @errp set.
 */
bool dmabuf_egl_check(const DmabufEglContext *ctx, const DmabufPlane *plane,
                      Error **errp);

/**
 * dmabuf_egl_import:
 * @ctx: context
 * @plane: borrowed; its fds are not consumed and may be closed right after
 *   the call
 * @errp: error object
 *
 * Imports @plane as a GL texture (GL_TEXTURE_EXTERNAL_OES when the driver
 * marks the format and modifier external-only). Checks first, and refuses
 * with a message: a format or modifier the driver does not list, a
 * geometry the buffer cannot hold, and on a software context every fd that
 * llvmpipe could not map for its whole length (not a dma-buf, size unknown
 * or not a page multiple, a trial read-only shared mmap failing).
 * The texture is a live view: later writes to the buffer show in the next
 * draw without a new import.
 *
 * Returns: a new image that owns its texture, or NULL with @errp set. Free
 * with dmabuf_egl_image_free() when the buffer's owner releases it.
 */
DmabufEglImage *dmabuf_egl_import(DmabufEglContext *ctx,
                                  const DmabufPlane *plane, Error **errp);

/**
 * dmabuf_egl_image_free:
 * @img: image, may be NULL
 *
 * Deletes the texture (the driver drops its dma-buf reference then).
 */
void dmabuf_egl_image_free(DmabufEglImage *img);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(DmabufEglImage, dmabuf_egl_image_free)

/* The texture name in the context's share group; borrowed. */
GLuint dmabuf_egl_image_texture(const DmabufEglImage *img);
/* GL_TEXTURE_2D or GL_TEXTURE_EXTERNAL_OES. */
GLenum dmabuf_egl_image_gl_target(const DmabufEglImage *img);
uint32_t dmabuf_egl_image_width(const DmabufEglImage *img);
uint32_t dmabuf_egl_image_height(const DmabufEglImage *img);

#endif /* UI_DMABUF_EGL_H */
