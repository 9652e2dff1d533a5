/*
 * VFIO mdev access for the programs that run in the rig VM. See
 * tests/rig/rig-vfio.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/vfio.h>

#include "standard-headers/drm/drm_fourcc.h"
#include "rig-vfio.h"

bool rig_vfio_open(RigVfio *v, const char *uuid, Error **errp)
{
    struct vfio_group_status status = { .argsz = sizeof(status) };
    g_autofree char *link_path = NULL;
    g_autofree char *target = NULL;
    g_autofree char *group_name = NULL;
    g_autofree char *group_path = NULL;
    GError *gerr = NULL;

    v->container = v->group = v->device = -1;
    link_path = g_strdup_printf("/sys/bus/mdev/devices/%s/iommu_group",
                                uuid);
    target = g_file_read_link(link_path, &gerr);
    if (!target) {
        error_setg(errp, "%s", gerr->message);
        g_error_free(gerr);
        return false;
    }
    group_name = g_path_get_basename(target);
    group_path = g_strdup_printf("/dev/vfio/%s", group_name);

    v->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
    if (v->container < 0) {
        error_setg_errno(errp, errno, "open /dev/vfio/vfio");
        goto close_fds;
    }
    v->group = open(group_path, O_RDWR | O_CLOEXEC);
    if (v->group < 0) {
        error_setg_errno(errp, errno, "open %s", group_path);
        goto close_fds;
    }
    if (ioctl(v->group, VFIO_GROUP_GET_STATUS, &status) < 0) {
        error_setg_errno(errp, errno, "VFIO_GROUP_GET_STATUS");
        goto close_fds;
    }
    if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
        error_setg(errp, "group %s is not viable", group_name);
        goto close_fds;
    }
    if (ioctl(v->group, VFIO_GROUP_SET_CONTAINER, &v->container) < 0) {
        error_setg_errno(errp, errno, "VFIO_GROUP_SET_CONTAINER");
        goto close_fds;
    }
    if (ioctl(v->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0) {
        error_setg_errno(errp, errno, "VFIO_SET_IOMMU");
        goto close_fds;
    }
    v->device = ioctl(v->group, VFIO_GROUP_GET_DEVICE_FD, uuid);
    if (v->device < 0) {
        error_setg_errno(errp, errno, "VFIO_GROUP_GET_DEVICE_FD %s", uuid);
        goto close_fds;
    }
    return true;

close_fds:
    rig_vfio_close(v);
    return false;
}

void rig_vfio_close(RigVfio *v)
{
    if (v->device >= 0) {
        close(v->device);
        v->device = -1;
    }
    if (v->group >= 0) {
        close(v->group);
        v->group = -1;
    }
    if (v->container >= 0) {
        close(v->container);
        v->container = -1;
    }
}

bool rig_vfio_region(RigVfio *v, unsigned int index, uint64_t *off,
                     uint64_t *size, Error **errp)
{
    /* 32 bytes: mbochs refuses an argsz above its own struct */
    struct vfio_region_info ri = { .argsz = sizeof(ri), .index = index };

    if (ioctl(v->device, VFIO_DEVICE_GET_REGION_INFO, &ri) < 0) {
        error_setg_errno(errp, errno, "VFIO_DEVICE_GET_REGION_INFO %u", index);
        return false;
    }
    *off = ri.offset;
    *size = ri.size;
    return true;
}

int rig_dispi_write(RigVfio *v, uint64_t bar2_off, unsigned int index,
                    uint16_t val)
{
    /* 16-bit writes only: mbochs ignores any other size */
    ssize_t n = pwrite(v->device, &val, sizeof(val),
                       bar2_off + DISPI_BASE + 2 * index);

    if (n < 0) {
        return -errno;
    }
    return n == sizeof(val) ? 0 : -EIO;
}

int rig_mbochs_set_mode(RigVfio *v, uint64_t bar2_off, uint16_t w,
                        uint16_t h, uint16_t virt_h, uint16_t y_off)
{
    const struct {
        unsigned int index;
        uint16_t val;
    } regs[] = {
        { DISPI_ENABLE, 0 },
        { DISPI_XRES, w },
        { DISPI_YRES, h },
        { DISPI_BPP, 32 },
        { DISPI_VIRT_WIDTH, w },
        { DISPI_VIRT_HEIGHT, virt_h },
        { DISPI_X_OFFSET, 0 },
        { DISPI_Y_OFFSET, y_off },
        { DISPI_ENABLE, DISPI_ENABLED | DISPI_LFB_ENABLED },
    };
    unsigned int i;
    int ret;

    for (i = 0; i < G_N_ELEMENTS(regs); i++) {
        ret = rig_dispi_write(v, bar2_off, regs[i].index, regs[i].val);
        if (ret < 0) {
            return ret;
        }
    }
    return 0;
}

static char *vgs_path(const char *uuid, const char *attr)
{
    return g_strdup_printf("/sys/bus/mdev/devices/%s/vgpusim/%s", uuid,
                           attr);
}

int rig_vgs_write(const char *uuid, const char *attr, const char *val)
{
    g_autofree char *path = vgs_path(uuid, attr);
    size_t len = strlen(val);
    ssize_t n;
    int fd, err;

    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    n = write(fd, val, len);
    err = errno;
    close(fd);
    if (n < 0) {
        return -err;
    }
    return n == (ssize_t)len ? 0 : -EIO;
}

int rig_vgs_read(const char *uuid, const char *attr, char **text)
{
    g_autofree char *path = vgs_path(uuid, attr);
    GString *s;
    char buf[4096];
    ssize_t n;
    int fd, err;

    *text = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    s = g_string_new(NULL);
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        g_string_append_len(s, buf, n);
    }
    err = errno;
    close(fd);
    if (n < 0) {
        g_string_free(s, true);
        return -err;
    }
    *text = g_string_free(s, false);
    return 0;
}

int64_t rig_kv(const char *text, const char *key)
{
    size_t len = strlen(key);
    const char *p;

    for (p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (!strncmp(p, key, len) && p[len] == '=') {
            return g_ascii_strtoll(p + len + 1, NULL, 0);
        }
    }
    return -1;
}

/* bit of the frame number: the green channel above half */
static bool frame_bit(const uint8_t *px, unsigned int cpp)
{
    if (cpp == 2) {
        return (((px[0] | px[1] << 8) >> 5) & 0x3f) > 31;
    }
    return px[1] > 127;
}

int64_t rig_vgs_frame(const uint8_t *row, uint32_t fourcc)
{
    uint32_t v = 0, c = 0;
    unsigned int cpp, i;

    switch (fourcc) {
    case DRM_FORMAT_RGB565:
        cpp = 2;
        break;
    case DRM_FORMAT_XRGB8888:
    case DRM_FORMAT_ARGB8888:
    case DRM_FORMAT_XBGR8888:
    case DRM_FORMAT_ABGR8888:
        cpp = 4; /* green is byte 1 */
        break;
    default:
        return -1;
    }
    for (i = 0; i < 32; i++) {
        v = v << 1 | frame_bit(row + i * cpp, cpp);
        c = c << 1 | frame_bit(row + (32 + i) * cpp, cpp);
    }
    return (v ^ c) == 0xffffffffu ? (int64_t)v : -1;
}
