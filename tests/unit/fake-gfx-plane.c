/*
 * Fake vfio display device; see fake-gfx-plane.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "standard-headers/drm/drm_fourcc.h"
#include "fake-gfx-plane.h"

/* One fd handed out by GET, identified by its number and its file. */
typedef struct FakeFd {
    int fd;
    dev_t dev;
    ino_t ino;
} FakeFd;

/* inode numbers are hash keys */
G_STATIC_ASSERT(sizeof(ino_t) <= sizeof(gsize));

struct FakeGfx {
    struct vfio_device_gfx_plane_info plane[3]; /* by type; [0] unused */
    int query_err[3];
    unsigned int query_fail_left[3];
    int probe_err;
    int get_err;
    unsigned int get_fail_left;
    unsigned int queries;
    unsigned int gets;
    unsigned int double_gets;
    GArray *fds;                /* FakeFd handed out, maybe closed since */
    GHashTable *handed;         /* inode -> id of every file handed out */
    GHashTable *handed_ids;     /* ... the set of their ids */
    dev_t memfd_dev;            /* ... all on this device */
    bool handed_any;
};

FakeGfx *fake_gfx_new(void)
{
    FakeGfx *f = g_new0(FakeGfx, 1);

    f->fds = g_array_new(false, false, sizeof(FakeFd));
    f->handed = g_hash_table_new(g_direct_hash, g_direct_equal);
    f->handed_ids = g_hash_table_new(g_direct_hash, g_direct_equal);
    return f;
}

void fake_gfx_free(FakeGfx *f)
{
    if (f) {
        g_array_free(f->fds, true);
        g_hash_table_destroy(f->handed);
        g_hash_table_destroy(f->handed_ids);
        g_free(f);
    }
}

/* Is @r still open as the file the fake recorded for it? */
static bool fakefd_live(const FakeFd *r)
{
    struct stat st;

    return fstat(r->fd, &st) == 0 && st.st_dev == r->dev &&
           st.st_ino == r->ino;
}

/* Forget the fds that were closed since they were handed out. */
static void fakefd_prune(FakeGfx *f)
{
    guint i = 0;

    while (i < f->fds->len) {
        if (fakefd_live(&g_array_index(f->fds, FakeFd, i))) {
            i++;
        } else {
            g_array_remove_index_fast(f->fds, i);
        }
    }
}

static void fakefd_record(FakeGfx *f, int fd, uint32_t id)
{
    struct stat st;
    FakeFd r = { .fd = fd };

    g_assert(fstat(fd, &st) == 0);
    r.dev = st.st_dev;
    r.ino = st.st_ino;
    g_assert(!f->handed_any || f->memfd_dev == st.st_dev);
    f->memfd_dev = st.st_dev;
    f->handed_any = true;
    g_hash_table_insert(f->handed, GSIZE_TO_POINTER(st.st_ino),
                        GUINT_TO_POINTER(id));
    g_hash_table_add(f->handed_ids, GUINT_TO_POINTER(id));
    fakefd_prune(f); /* a stale record may carry the same number */
    g_array_append_val(f->fds, r);
}

unsigned int fake_gfx_live_fds(FakeGfx *f)
{
    fakefd_prune(f);
    return f->fds->len;
}

int fake_gfx_revoke(FakeGfx *f, unsigned int n)
{
    struct stat st;
    FakeFd *r;
    int null;

    fakefd_prune(f);
    if (!f->fds->len) {
        return -1;
    }
    r = &g_array_index(f->fds, FakeFd, n % f->fds->len);
    null = open("/dev/null", O_RDWR | O_CLOEXEC);
    g_assert(null >= 0);
    g_assert(dup3(null, r->fd, O_CLOEXEC) == r->fd);
    close(null);
    g_assert(fstat(r->fd, &st) == 0);
    r->dev = st.st_dev; /* still ours to count until its owner closes it */
    r->ino = st.st_ino;
    return r->fd;
}

void fake_gfx_set_plane(FakeGfx *f, uint32_t type,
                        const struct vfio_device_gfx_plane_info *info)
{
    g_assert(type == FAKE_PRIMARY || type == FAKE_CURSOR);
    f->plane[type] = *info;
}

void fake_gfx_set_primary(FakeGfx *f, uint32_t id, uint32_t w, uint32_t h)
{
    struct vfio_device_gfx_plane_info p = {
        .drm_plane_type = FAKE_PRIMARY,
        .drm_format = DRM_FORMAT_XRGB8888,
        .width = w,
        .height = h,
        .stride = w * 4,
        .size = (uint64_t)w * 4 * h,
        .dmabuf_id = id,
    };

    fake_gfx_set_plane(f, FAKE_PRIMARY, &p);
}

void fake_gfx_set_cursor(FakeGfx *f, uint32_t id, int32_t x, int32_t y,
                         uint32_t hot_x, uint32_t hot_y)
{
    struct vfio_device_gfx_plane_info p = {
        .drm_plane_type = FAKE_CURSOR,
        .drm_format = DRM_FORMAT_ARGB8888,
        .width = 64,
        .height = 64,
        .stride = 256,
        .size = 256 * 64,
        .x_pos = (uint32_t)x,
        .y_pos = (uint32_t)y,
        .x_hot = hot_x,
        .y_hot = hot_y,
        .dmabuf_id = id,
    };

    fake_gfx_set_plane(f, FAKE_CURSOR, &p);
}

void fake_gfx_clear(FakeGfx *f, uint32_t type)
{
    memset(&f->plane[type], 0, sizeof(f->plane[type]));
}

void fake_gfx_fail_query(FakeGfx *f, uint32_t type, int err,
                         unsigned int count)
{
    f->query_err[type] = err;
    f->query_fail_left[type] = count;
}

void fake_gfx_fail_probe(FakeGfx *f, int err)
{
    f->probe_err = err;
}

void fake_gfx_fail_get(FakeGfx *f, int err, unsigned int count)
{
    f->get_err = err;
    f->get_fail_left = count;
}

unsigned int fake_gfx_queries(const FakeGfx *f)
{
    return f->queries;
}

unsigned int fake_gfx_gets(const FakeGfx *f)
{
    return f->gets;
}

unsigned int fake_gfx_double_gets(const FakeGfx *f)
{
    return f->double_gets;
}

int count_open_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *de;
    int n = 0;

    g_assert(dir);
    while ((de = readdir(dir))) {
        if (de->d_name[0] != '.') {
            n++;
        }
    }
    closedir(dir);
    return n - 1; /* the directory's own fd */
}

/*
 * Is a file the fake handed out for @id still open in this process, under
 * any fd (the engine's, or a dup)? The device side keeps its buffer object
 * as long as the file lives, whoever holds it.
 */
static bool id_file_open(FakeGfx *f, uint32_t id)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *de;
    bool found = false;

    g_assert(dir);
    while (!found && (de = readdir(dir))) {
        struct stat st;
        gpointer v;

        if (de->d_name[0] == '.' ||
            fstat(atoi(de->d_name), &st) < 0 || st.st_dev != f->memfd_dev) {
            continue;
        }
        found = g_hash_table_lookup_extended(f->handed,
                                             GSIZE_TO_POINTER(st.st_ino),
                                             NULL, &v) &&
                GPOINTER_TO_UINT(v) == id;
    }
    closedir(dir);
    return found;
}

static int fake_query(void *opaque, struct vfio_device_gfx_plane_info *info)
{
    FakeGfx *f = opaque;
    uint32_t type = info->drm_plane_type;

    f->queries++;
    if (info->flags & VFIO_GFX_PLANE_TYPE_PROBE) {
        if (f->probe_err) {
            return -f->probe_err;
        }
        return (info->flags & VFIO_GFX_PLANE_TYPE_DMABUF) ? 0 : -EINVAL;
    }
    if (info->flags != VFIO_GFX_PLANE_TYPE_DMABUF ||
        info->argsz < sizeof(*info)) {
        return -EINVAL;
    }
    if (type != FAKE_PRIMARY && type != FAKE_CURSOR) {
        return -EINVAL;
    }
    if (f->query_fail_left[type]) {
        f->query_fail_left[type]--;
        return -f->query_err[type];
    }
    *info = f->plane[type];
    info->argsz = sizeof(*info);
    info->flags = VFIO_GFX_PLANE_TYPE_DMABUF;
    if (f->plane[type].dmabuf_id == 0 && f->plane[type].width == 0) {
        info->drm_plane_type = type; /* all zero but the type, as mbochs */
    }
    return 0;
}

static int fake_get(void *opaque, uint32_t id)
{
    FakeGfx *f = opaque;
    g_autofree char *name = g_strdup_printf("fake-dmabuf-%u", id);
    uint64_t size = 0;
    unsigned int t;
    int fd;

    f->gets++;
    if (f->get_fail_left) {
        f->get_fail_left--;
        return -f->get_err;
    }
    for (t = FAKE_PRIMARY; t <= FAKE_CURSOR; t++) {
        if (f->plane[t].dmabuf_id == id) {
            size = f->plane[t].size;
        }
    }
    if (size == 0) {
        return -ENOENT;
    }
    if (g_hash_table_contains(f->handed_ids, GUINT_TO_POINTER(id)) &&
        id_file_open(f, id)) {
        f->double_gets++;
    }
    fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    if (ftruncate(fd, (off_t)size) < 0) {
        close(fd);
        return -EIO;
    }
    fakefd_record(f, fd, id);
    return fd;
}

static const VFIODisplayDmabufOps fake_ops = {
    .query_plane = fake_query,
    .get_dmabuf = fake_get,
};

const VFIODisplayDmabufOps *fake_gfx_ops(void)
{
    return &fake_ops;
}
