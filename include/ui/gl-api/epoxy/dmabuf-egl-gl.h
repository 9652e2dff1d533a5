/*
 * EGL and GLES2 declarations for the EGL layer (ui/dmabuf-egl-device.c,
 * ui/dmabuf-egl.c) and its tests, taken from libepoxy. meson picks this
 * file or gl-api/khr/dmabuf-egl-gl.h (one include directory each); QEMU
 * builds with epoxy and uses this one.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef UI_GL_API_EPOXY_DMABUF_EGL_GL_H
#define UI_GL_API_EPOXY_DMABUF_EGL_GL_H

#include <epoxy/egl.h>
#include <epoxy/gl.h>

#endif /* UI_GL_API_EPOXY_DMABUF_EGL_GL_H */
