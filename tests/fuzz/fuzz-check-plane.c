/*
 * libFuzzer harness: vfio_display_dmabuf_check_plane() on a plane built
 * from the input bytes, for both plane types.
 *
 * Invariant: the verdict agrees with an independent 64-bit recomputation
 * of the documented limits (docs/architecture.md "Validation"): an
 * accepted plane really is within them, a refused one really breaks one,
 * an "empty" one really is all zero. Because that copy of the rules cannot
 * find a rule missing from both, an accepted plane is also checked against
 * what a reader of it would touch, computed in 128 bits from the geometry
 * alone (reader_end()): every byte must lie inside the dma-buf. A
 * violation abort()s, so libFuzzer reports it as a crash; ASan/UBSan catch
 * the rest.
 *
 * Input: byte 0 picks the plane asked for (bit 0), whether the answer
 * echoes that type (bit 1) and whether the fourcc comes from the known
 * list (bit 2, index in byte 1); the rest is copied over the struct.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include "standard-headers/drm/drm_fourcc.h"
#include "hw/vfio/display-dmabuf.h"
#include "fuzz-common.h"

/*
 * The formats the project documents, with bytes per pixel: written out
 * again on purpose, from docs/architecture.md, not taken from
 * dmabuf_format_cpp(), so that the harness is an oracle independent of the
 * code it checks (a format dropped from ui/dmabuf-plane.c fails here).
 */
static const struct {
    uint32_t fourcc;
    unsigned int cpp;
} known[] = {
    { DRM_FORMAT_XRGB8888, 4 },
    { DRM_FORMAT_ARGB8888, 4 },
    { DRM_FORMAT_XBGR8888, 4 },
    { DRM_FORMAT_ABGR8888, 4 },
    { DRM_FORMAT_RGBX8888, 4 },
    { DRM_FORMAT_BGRX8888, 4 },
    { DRM_FORMAT_RGBA8888, 4 },
    { DRM_FORMAT_BGRA8888, 4 },
    { DRM_FORMAT_XRGB2101010, 4 },
    { DRM_FORMAT_ARGB2101010, 4 },
    { DRM_FORMAT_XBGR2101010, 4 },
    { DRM_FORMAT_RGB888, 3 },
    { DRM_FORMAT_BGR888, 3 },
    { DRM_FORMAT_RGB565, 2 },
    { DRM_FORMAT_BGR565, 2 },
    { DRM_FORMAT_YUYV, 2 },
    { DRM_FORMAT_YVYU, 2 },
    { DRM_FORMAT_UYVY, 2 },
    { DRM_FORMAT_VYUY, 2 },
};

static uint64_t known_cpp(uint32_t fourcc)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(known); i++) {
        if (known[i].fourcc == fourcc) {
            return known[i].cpp;
        }
    }
    return 0;
}

static bool all_zero(const struct vfio_device_gfx_plane_info *p)
{
    return !p->drm_format && !p->width && !p->height && !p->stride &&
           !p->size && !p->dmabuf_id;
}

/* The documented rules, written out again; all arithmetic in 64 bits. */
static bool within_limits(const struct vfio_device_gfx_plane_info *p,
                          uint32_t type)
{
    uint64_t max_dim = type == 2 ? 512 : 16384;
    uint64_t cpp = known_cpp(p->drm_format);
    uint64_t w = p->width, h = p->height, stride = p->stride;
    uint64_t size = p->size, gib = 1ULL << 30;
    int64_t x = (int32_t)p->x_pos, y = (int32_t)p->y_pos;

    if (p->drm_plane_type != type || !cpp || !p->dmabuf_id) {
        return false;
    }
    if (w < 1 || h < 1 || w > max_dim || h > max_dim) {
        return false;
    }
    /* packed 4:2:2 YUV: whole pixel pairs only */
    if ((p->drm_format == DRM_FORMAT_YUYV || p->drm_format == DRM_FORMAT_YVYU ||
         p->drm_format == DRM_FORMAT_UYVY || p->drm_format == DRM_FORMAT_VYUY) &&
        w % 2) {
        return false;
    }
    if (stride < w * cpp || stride * h > gib || size < stride * h ||
        size > gib) {
        return false;
    }
    /* rows on the pixel's natural alignment; 24-bit rows may start anywhere */
    if (cpp != 3 && stride % cpp != 0) {
        return false;
    }
    if (type == 2) {
        if (x < -16384 || x > 16384 || y < -16384 || y > 16384) {
            return false;
        }
        if ((p->x_hot != 0xffffffffu && p->x_hot >= w) ||
            (p->y_hot != 0xffffffffu && p->y_hot >= h)) {
            return false;
        }
    }
    return true;
}

/*
 * One past the last byte a reader of the plane touches: rows 0..h-1 start
 * at offset + row * stride and are w * cpp bytes long (the uapi has no
 * offset: the plane starts at the dma-buf's first byte). 128-bit, so no
 * input wraps; 0 for a plane with no pixels or an unknown format.
 */
static unsigned __int128 reader_end(const struct vfio_device_gfx_plane_info *p)
{
    unsigned __int128 offset = 0, cpp = known_cpp(p->drm_format);

    if (!p->width || !p->height || !cpp) {
        return 0;
    }
    return offset + (unsigned __int128)(p->height - 1) * p->stride +
           (unsigned __int128)p->width * cpp;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vfio_device_gfx_plane_info p;
    VFIODmabufPlaneCheck c;
    uint32_t type;
    uint8_t mode;

    if (size < 2) {
        return 0;
    }
    mode = data[0];
    type = (mode & 1) ? 2 : 1;
    memset(&p, 0, sizeof(p));
    memcpy(&p, data + 2, MIN(size - 2, sizeof(p)));
    if (mode & 2) {
        p.drm_plane_type = type;
    }
    if (mode & 4) {
        p.drm_format = known[data[1] % G_N_ELEMENTS(known)].fourcc;
    }

    c = vfio_display_dmabuf_check_plane(&p, type);
    FUZZ_CHECK(c < VFIO_DMABUF_PLANE_CHECK__MAX);
    FUZZ_CHECK(strcmp(vfio_display_dmabuf_check_str(c), "?") != 0);
    FUZZ_CHECK(c != VFIO_DMABUF_PLANE_ID_IN_USE); /* the engine's, not ours */
    if (all_zero(&p)) {
        FUZZ_CHECK(c == VFIO_DMABUF_PLANE_EMPTY);
    } else {
        FUZZ_CHECK(c != VFIO_DMABUF_PLANE_EMPTY);
        FUZZ_CHECK((c == VFIO_DMABUF_PLANE_OK) == within_limits(&p, type));
    }
    if (c == VFIO_DMABUF_PLANE_OK) {
        /* what a consumer computes from an accepted plane cannot wrap */
        FUZZ_CHECK((uint64_t)p.stride * p.height <= p.size);
        FUZZ_CHECK(dmabuf_format_cpp(p.drm_format) * (uint64_t)p.width <=
                   p.stride);
        /* differential: a reader stays inside the dma-buf's size */
        FUZZ_CHECK(known_cpp(p.drm_format) != 0);
        FUZZ_CHECK(reader_end(&p) > 0 && reader_end(&p) <= p.size);
    }
    return 0;
}
