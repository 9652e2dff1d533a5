/*
 * Rig smoke test: open an mdev through the VFIO container/group API and
 * check that it speaks the dma-buf display ABI (QUERY_GFX_PLANE with
 * PROBE | DMABUF). Runs as PID 1's child in the rig VM; built static.
 *
 * Usage: smoke UUID
 * Exit: 0 and "smoke: OK" on success, 1 with a message otherwise.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vfio.h>

static int fail(const char *what)
{
    fprintf(stderr, "smoke: FAIL: %s: %s\n", what, strerror(errno));
    return 1;
}

int main(int argc, char **argv)
{
    char path[PATH_MAX + 64], link[PATH_MAX];
    const char *group_name;
    struct vfio_group_status status = { .argsz = sizeof(status) };
    struct vfio_device_info info = { .argsz = sizeof(info) };
    struct vfio_device_gfx_plane_info plane;
    int container, group, device;
    ssize_t n;

    if (argc != 2) {
        fprintf(stderr, "usage: smoke UUID\n");
        return 2;
    }

    snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s/iommu_group",
             argv[1]);
    n = readlink(path, link, sizeof(link) - 1);
    if (n < 0) {
        return fail(path);
    }
    link[n] = '\0';
    group_name = strrchr(link, '/');
    group_name = group_name ? group_name + 1 : link;

    container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
    if (container < 0) {
        return fail("open /dev/vfio/vfio");
    }
    if (ioctl(container, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
        fprintf(stderr, "smoke: FAIL: unexpected VFIO API version\n");
        return 1;
    }
    if (ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) != 1) {
        fprintf(stderr, "smoke: FAIL: no VFIO_TYPE1v2_IOMMU\n");
        return 1;
    }

    snprintf(path, sizeof(path), "/dev/vfio/%s", group_name);
    group = open(path, O_RDWR | O_CLOEXEC);
    if (group < 0) {
        return fail(path);
    }
    if (ioctl(group, VFIO_GROUP_GET_STATUS, &status) < 0) {
        return fail("VFIO_GROUP_GET_STATUS");
    }
    if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
        fprintf(stderr, "smoke: FAIL: group %s is not viable\n", group_name);
        return 1;
    }
    if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) < 0) {
        return fail("VFIO_GROUP_SET_CONTAINER");
    }
    if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0) {
        return fail("VFIO_SET_IOMMU");
    }
    device = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, argv[1]);
    if (device < 0) {
        return fail("VFIO_GROUP_GET_DEVICE_FD");
    }
    if (ioctl(device, VFIO_DEVICE_GET_INFO, &info) < 0) {
        return fail("VFIO_DEVICE_GET_INFO");
    }
    printf("smoke: device %s group %s flags 0x%x regions %u irqs %u\n",
           argv[1], group_name, info.flags, info.num_regions, info.num_irqs);

    memset(&plane, 0, sizeof(plane));
    plane.argsz = sizeof(plane);
    plane.flags = VFIO_GFX_PLANE_TYPE_PROBE | VFIO_GFX_PLANE_TYPE_DMABUF;
    if (ioctl(device, VFIO_DEVICE_QUERY_GFX_PLANE, &plane) < 0) {
        return fail("VFIO_DEVICE_QUERY_GFX_PLANE(PROBE|DMABUF)");
    }

    close(device);
    close(group);
    close(container);
    printf("smoke: OK\n");
    return 0;
}
