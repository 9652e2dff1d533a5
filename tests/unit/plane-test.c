/*
 * Unit tests of DmabufPlane fd ownership helpers.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "standard-headers/drm/drm_fourcc.h"
#include "ui/dmabuf-plane.h"
#include "fake-gfx-plane.h"

static void test_init_finish(void)
{
    DmabufPlane p;
    int before = count_open_fds();

    dmabuf_plane_init(&p);
    g_assert_cmpint(p.fd[0], ==, -1);
    p.fd[0] = memfd_create("plane", MFD_CLOEXEC);
    p.n_fds = 1;
    g_assert_cmpint(count_open_fds(), ==, before + 1);
    dmabuf_plane_finish(&p);
    g_assert_cmpint(p.fd[0], ==, -1);
    g_assert_cmpuint(p.n_fds, ==, 0);
    dmabuf_plane_finish(&p); /* second call does nothing */
    dmabuf_plane_finish(NULL);
    g_assert_cmpint(count_open_fds(), ==, before);
}

static void test_dup(void)
{
    DmabufPlane a, b;
    int before = count_open_fds();

    dmabuf_plane_init(&a);
    a.fourcc = DRM_FORMAT_XRGB8888;
    a.width = 4;
    a.height = 4;
    a.stride[0] = 16;
    a.n_fds = 1;
    a.fd[0] = memfd_create("plane", MFD_CLOEXEC);
    g_assert_true(dmabuf_plane_dup(&b, &a));
    g_assert_cmpint(b.fd[0], >=, 0);
    g_assert_cmpint(b.fd[0], !=, a.fd[0]);
    g_assert_cmpint(b.fd[1], ==, -1);
    g_assert_true(fcntl(b.fd[0], F_GETFD) & FD_CLOEXEC);
    g_assert_cmpuint(b.width, ==, 4);
    dmabuf_plane_finish(&a);
    g_assert_cmpint(fcntl(b.fd[0], F_GETFD), >=, 0); /* copy independent */
    dmabuf_plane_finish(&b);
    g_assert_cmpint(count_open_fds(), ==, before);
}

static void test_dup_failure_closes(void)
{
    DmabufPlane a, b;
    struct rlimit old, lim;
    int before;

    dmabuf_plane_init(&a);
    a.n_fds = 2;
    a.fd[0] = memfd_create("p0", MFD_CLOEXEC);
    a.fd[1] = memfd_create("p1", MFD_CLOEXEC);
    before = count_open_fds();
    /* allow exactly one more fd: the second dup must fail */
    g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &old), ==, 0);
    lim = old;
    lim.rlim_cur = MAX(a.fd[0], a.fd[1]) + 2;
    while (fcntl(lim.rlim_cur - 1, F_GETFD) >= 0 ||
           fcntl(lim.rlim_cur - 2, F_GETFD) >= 0) {
        lim.rlim_cur++; /* find a limit with exactly one free slot... */
    }
    lim.rlim_cur--; /* ...at the top */
    g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &lim), ==, 0);
    g_assert_false(dmabuf_plane_dup(&b, &a));
    g_assert_cmpint(errno, ==, EMFILE);
    g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &old), ==, 0);
    g_assert_cmpint(b.fd[0], ==, -1);
    g_assert_cmpint(b.fd[1], ==, -1);
    g_assert_cmpint(count_open_fds(), ==, before); /* first dup closed */
    dmabuf_plane_finish(&a);
}

static void test_format_table(void)
{
    char name[5];

    g_assert_cmpuint(dmabuf_format_cpp(DRM_FORMAT_XRGB8888), ==, 4);
    g_assert_cmpuint(dmabuf_format_cpp(DRM_FORMAT_RGB565), ==, 2);
    g_assert_cmpuint(dmabuf_format_cpp(DRM_FORMAT_RGB888), ==, 3);
    g_assert_cmpuint(dmabuf_format_cpp(0), ==, 0);
    g_assert_cmpuint(dmabuf_format_cpp(DRM_FORMAT_NV12), ==, 0);
    g_assert_cmpstr(dmabuf_format_name(DRM_FORMAT_XRGB8888, name), ==, "XR24");
    g_assert_cmpstr(dmabuf_format_name(0x01020304, name), ==, "????");
}

/* a read-only mapping sees the pixels at offset + row * stride */
static void test_map(void)
{
    DmabufPlane p;
    DmabufMapping m;
    int before = count_open_fds();
    uint32_t row;

    dmabuf_plane_init(&p);
    p.fourcc = DRM_FORMAT_XRGB8888;
    p.width = 60;
    p.height = 100;
    p.stride[0] = 256;
    p.offset[0] = 512;
    p.n_fds = 1;
    p.fd[0] = memfd_create("plane", MFD_CLOEXEC);
    g_assert_cmpint(ftruncate(p.fd[0], 512 + 256 * 100), ==, 0);
    for (row = 0; row < p.height; row++) {
        uint8_t v = row;

        g_assert_cmpint(pwrite(p.fd[0], &v, 1, 512 + row * 256), ==, 1);
    }
    g_assert_cmpint(dmabuf_plane_map(&p, &m), ==, 0);
    g_assert_nonnull(m.data);
    g_assert_cmpuint(m.rows, ==, 100);
    dmabuf_plane_begin_read(&p); /* a memfd has no sync: best effort */
    for (row = 0; row < p.height; row++) {
        g_assert_cmpuint(m.data[p.offset[0] + row * p.stride[0]], ==, row);
    }
    dmabuf_plane_end_read(&p);
    dmabuf_plane_unmap(&m);
    g_assert_null(m.data);
    dmabuf_plane_unmap(&m); /* twice is fine */

    /* tiled, or no fd: refused, nothing mapped */
    p.modifier = 1;
    g_assert_cmpint(dmabuf_plane_map(&p, &m), ==, -EINVAL);
    g_assert_null(m.data);
    p.modifier = 0;
    dmabuf_plane_finish(&p);
    p.n_fds = 1;
    g_assert_cmpint(dmabuf_plane_map(&p, &m), ==, -EINVAL);
    /* an fd that cannot be mapped: mmap's error */
    p.fd[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    g_assert_cmpint(dmabuf_plane_map(&p, &m), <, 0);
    g_assert_null(m.data);
    dmabuf_plane_finish(&p);
    g_assert_cmpint(count_open_fds(), ==, before);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/plane/init-finish", test_init_finish);
    g_test_add_func("/plane/dup", test_dup);
    g_test_add_func("/plane/dup-failure-closes", test_dup_failure_closes);
    g_test_add_func("/plane/formats", test_format_table);
    g_test_add_func("/plane/map", test_map);
    return g_test_run();
}
