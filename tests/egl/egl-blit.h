/*
 * The EGL tests' blitter: draws an imported frame and a cursor into an
 * offscreen target and reads the pixels back, so that the tests can
 * compare what an DmabufEglImage shows. Test code only: QEMU draws and
 * reads back with its own egl-helpers, and the EGL layer
 * (include/ui/dmabuf-egl.h) has no blitter.
 *
 * Ownership
 * - EglBlit borrows its DmabufEglContext (free it first) and owns the GL
 *   programs and the quad, built at the first draw.
 * - EglBlitTarget borrows its EglBlit (free it first) and owns its RGBA8
 *   texture and FBO.
 * - Images passed to egl_blit_draw() are borrowed.
 *
 * Like the layer, every function makes the context current and restores
 * the thread's previous current context and bound API before it returns.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TESTS_EGL_EGL_BLIT_H
#define TESTS_EGL_EGL_BLIT_H

#include "ui/dmabuf-egl.h"

typedef struct EglBlit EglBlit;
typedef struct EglBlitTarget EglBlitTarget;

/*
 * A blitter on @ctx's GL context (borrowed: it must outlive the blitter).
 * Makes no GL call: the programs are built at the first draw.
 */
EglBlit *egl_blit_new(DmabufEglContext *ctx);

/* @b may be NULL. Every target of @b must have been freed before. */
void egl_blit_free(EglBlit *b);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(EglBlit, egl_blit_free)

/**
 * egl_blit_target_new:
 * @b: blitter, borrowed: must outlive the target
 * @width: pixels, 1 .. the driver's largest texture
 * @height: pixels
 * @errp: error object
 *
 * An offscreen RGBA8 texture with a framebuffer object, for
 * egl_blit_draw() and egl_blit_read_pixels(). Its content is upright in
 * GL terms: the image's top row is at the texture's t = 1.
 *
 * Returns: a new target, or NULL with @errp set.
 */
EglBlitTarget *egl_blit_target_new(EglBlit *b, uint32_t width,
                                   uint32_t height, Error **errp);

/* @t may be NULL. Deletes the FBO and the texture. */
void egl_blit_target_free(EglBlitTarget *t);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(EglBlitTarget, egl_blit_target_free)

uint32_t egl_blit_target_width(const EglBlitTarget *t);
uint32_t egl_blit_target_height(const EglBlitTarget *t);

/**
 * egl_blit_draw:
 * @dst: target
 * @primary: the frame, scaled to fill @dst and drawn opaque; NULL clears
 *   @dst to black
 * @cursor: drawn on top with straight (non-premultiplied) alpha, or NULL
 * @cursor_x: left edge of @cursor in @primary's pixels: the cursor
 *   plane's x_pos as vfio reports it (the plane's top-left), or a pointer
 *   position minus the hotspot; may be negative or beyond the frame
 * @cursor_y: top edge, likewise
 * @errp: error object
 *
 * Draws one frame and flushes. The images must come from the blitter's
 * context (or one in its share group).
 * Returns: true, or false with @errp set (the target then holds garbage).
 */
bool egl_blit_draw(EglBlitTarget *dst, const DmabufEglImage *primary,
                   const DmabufEglImage *cursor, int32_t cursor_x,
                   int32_t cursor_y, Error **errp);

/**
 * egl_blit_read_pixels:
 * @src: target
 * @fourcc: layout of @dst: DRM_FORMAT_XRGB8888, ARGB8888, XBGR8888 or
 *   ABGR8888 (the X formats get 0xff in the padding byte)
 * @dst: width * height pixels, top row first; owned by the caller
 * @stride: bytes per row of @dst, at least width * 4
 * @errp: error object
 *
 * Returns: true, or false with @errp set.
 */
bool egl_blit_read_pixels(EglBlitTarget *src, uint32_t fourcc, uint8_t *dst,
                          size_t stride, Error **errp);

#endif /* TESTS_EGL_EGL_BLIT_H */
