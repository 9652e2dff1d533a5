/*
 * DmabufPlane helpers: fd ownership and the pixel-format table.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"

#include <fcntl.h>
#include <linux/dma-buf.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "standard-headers/drm/drm_fourcc.h"
#include "ui/dmabuf-plane.h"

static const struct {
    uint32_t fourcc;
    unsigned int cpp;
} formats[] = {
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
    /* packed YUV 4:2:2: two pixels in four bytes (GVT-g on Skylake+) */
    { DRM_FORMAT_YUYV, 2 },
    { DRM_FORMAT_YVYU, 2 },
    { DRM_FORMAT_UYVY, 2 },
    { DRM_FORMAT_VYUY, 2 },
};

void dmabuf_plane_init(DmabufPlane *p)
{
    unsigned int i;

    memset(p, 0, sizeof(*p));
    for (i = 0; i < DMABUF_MAX_FDS; i++) {
        p->fd[i] = -1;
    }
}

void dmabuf_plane_finish(DmabufPlane *p)
{
    unsigned int i;

    if (!p) {
        return;
    }
    for (i = 0; i < DMABUF_MAX_FDS; i++) {
        if (p->fd[i] >= 0) {
            close(p->fd[i]);
            p->fd[i] = -1;
        }
    }
    p->n_fds = 0;
}

bool dmabuf_plane_dup(DmabufPlane *dst, const DmabufPlane *src)
{
    unsigned int i;
    int saved;

    *dst = *src;
    for (i = 0; i < DMABUF_MAX_FDS; i++) {
        dst->fd[i] = -1;
    }
    for (i = 0; i < src->n_fds && i < DMABUF_MAX_FDS; i++) {
        dst->fd[i] = fcntl(src->fd[i], F_DUPFD_CLOEXEC, 0);
        if (dst->fd[i] < 0) {
            saved = errno;
            dmabuf_plane_finish(dst);
            errno = saved;
            return false;
        }
    }
    return true;
}

unsigned int dmabuf_format_cpp(uint32_t fourcc)
{
    size_t i;

    for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        if (formats[i].fourcc == fourcc) {
            return formats[i].cpp;
        }
    }
    return 0;
}

bool dmabuf_format_is_yuv422(uint32_t fourcc)
{
    return fourcc == DRM_FORMAT_YUYV || fourcc == DRM_FORMAT_YVYU ||
           fourcc == DRM_FORMAT_UYVY || fourcc == DRM_FORMAT_VYUY;
}

const char *dmabuf_format_name(uint32_t fourcc, char buf[5])
{
    unsigned int i;

    for (i = 0; i < 4; i++) {
        char c = (fourcc >> (8 * i)) & 0xff;
        buf[i] = (c >= 0x20 && c < 0x7f) ? c : '?';
    }
    buf[4] = '\0';
    return buf;
}

int dmabuf_plane_map(const DmabufPlane *p, DmabufMapping *m)
{
    size_t page = sysconf(_SC_PAGESIZE);
    unsigned int cpp = dmabuf_format_cpp(p->fourcc);
    /* a row's pixels; the last row need not be padded to the stride */
    uint64_t row_bytes = cpp ? (uint64_t)p->width * cpp : p->stride[0];
    uint64_t want = (uint64_t)p->offset[0] +
                    (uint64_t)p->stride[0] * (p->height - 1) + row_bytes;
    size_t len;
    void *addr;

    memset(m, 0, sizeof(*m));
    if (p->modifier != 0 || !p->stride[0] || !p->height || want > SIZE_MAX) {
        return -EINVAL;
    }
    if (p->n_fds == 0 && p->pixels) {
        /* the producer's mapping (a region plane): borrowed as it is */
        m->data = p->pixels;
        m->len = p->pixels_len;
        m->borrowed = true;
    } else {
        if (p->n_fds < 1 || p->fd[0] < 0) {
            return -EINVAL;
        }
        len = want;
        addr = mmap(NULL, len, PROT_READ, MAP_SHARED, p->fd[0], 0);
        if (addr == MAP_FAILED && errno == EINVAL && len > page) {
            /* some exporters map only whole pages of a non page-sized one */
            len &= ~(page - 1);
            addr = mmap(NULL, len, PROT_READ, MAP_SHARED, p->fd[0], 0);
        }
        if (addr == MAP_FAILED) {
            return -errno;
        }
        m->data = addr;
        m->len = len;
    }
    len = m->len;
    m->rows = len < p->offset[0] + row_bytes ? 0 :
              (len - p->offset[0] - row_bytes) / p->stride[0] + 1;
    if (m->rows > p->height) {
        m->rows = p->height;
    }
    return 0;
}

void dmabuf_plane_unmap(DmabufMapping *m)
{
    if (m->data && !m->borrowed) {
        munmap((void *)m->data, m->len);
    }
    memset(m, 0, sizeof(*m));
}

static void plane_sync(const DmabufPlane *p, uint64_t flags)
{
    struct dma_buf_sync sync = { .flags = flags | DMA_BUF_SYNC_READ };

    if (p->n_fds >= 1 && p->fd[0] >= 0) {
        while (ioctl(p->fd[0], DMA_BUF_IOCTL_SYNC, &sync) < 0 &&
               (errno == EINTR || errno == EAGAIN)) {
            /* retry, as the uapi asks */
        }
    }
}

void dmabuf_plane_begin_read(const DmabufPlane *p)
{
    plane_sync(p, DMA_BUF_SYNC_START);
}

void dmabuf_plane_end_read(const DmabufPlane *p)
{
    plane_sync(p, DMA_BUF_SYNC_END);
}
