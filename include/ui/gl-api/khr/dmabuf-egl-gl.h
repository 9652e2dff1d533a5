/*
 * EGL and GLES2 declarations for the EGL layer (ui/dmabuf-egl-device.c,
 * ui/dmabuf-egl.c) and its tests, taken from the Khronos headers
 * (libglvnd: libegl-dev, libgles-dev). meson picks this file when libepoxy
 * is not used. The layer loads every extension entry point itself with
 * eglGetProcAddress(), so no *_PROTOTYPES macro is set.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef UI_GL_API_KHR_DMABUF_EGL_GL_H
#define UI_GL_API_KHR_DMABUF_EGL_GL_H

#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <GLES2/gl2.h>
#include <GLES2/gl2ext.h>

#endif /* UI_GL_API_KHR_DMABUF_EGL_GL_H */
