/*
 * Stand-in for QEMU's "standard-headers/drm/drm_fourcc.h" (QEMU's copy of
 * the kernel's uapi header) so that the files QEMU compiles and our tests
 * name the DRM_FORMAT_* codes the same way outside a QEMU tree: the
 * kernel's <drm/drm_fourcc.h> where the uapi headers have it (Debian 13
 * linux-libc-dev), else libdrm's copy (Debian 12: libdrm-dev).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef SHIM_STANDARD_HEADERS_DRM_DRM_FOURCC_H
#define SHIM_STANDARD_HEADERS_DRM_DRM_FOURCC_H

#if __has_include(<drm/drm_fourcc.h>)
#include <drm/drm_fourcc.h>
#elif __has_include(<libdrm/drm_fourcc.h>)
#include <libdrm/drm_fourcc.h>
#else
#error "drm_fourcc.h not found: install libdrm-dev"
#endif

#endif /* SHIM_STANDARD_HEADERS_DRM_DRM_FOURCC_H */
