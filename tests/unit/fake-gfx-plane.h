/*
 * A fake vfio display device for unit tests: answers QUERY_GFX_PLANE from
 * a scripted state and GET_GFX_DMABUF with memfd-backed buffers, and
 * records how it was used (including forbidden call sequences).
 *
 * Ownership: every fd fake_gfx_ops()->get_dmabuf returns belongs to the
 * caller. The fake owns nothing else but itself (fake_gfx_free).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TESTS_UNIT_FAKE_GFX_PLANE_H
#define TESTS_UNIT_FAKE_GFX_PLANE_H

#include <stdint.h>
#include <linux/vfio.h>
#include "hw/vfio/display-dmabuf.h"

#define FAKE_PRIMARY 1
#define FAKE_CURSOR 2

typedef struct FakeGfx FakeGfx;

FakeGfx *fake_gfx_new(void);
void fake_gfx_free(FakeGfx *f);
const VFIODisplayDmabufOps *fake_gfx_ops(void);

/* What the next queries of @type answer (copied). */
void fake_gfx_set_plane(FakeGfx *f, uint32_t type,
                        const struct vfio_device_gfx_plane_info *info);
/* A valid linear primary plane; stride = w * 4, size = stride * h. */
void fake_gfx_set_primary(FakeGfx *f, uint32_t id, uint32_t w, uint32_t h);
/* A valid 64x64 ARGB8888 cursor plane. */
void fake_gfx_set_cursor(FakeGfx *f, uint32_t id, int32_t x, int32_t y,
                         uint32_t hot_x, uint32_t hot_y);
/* All-zero answers for @type from now on. */
void fake_gfx_clear(FakeGfx *f, uint32_t type);
/* The next @count queries of @type fail with -@err. */
void fake_gfx_fail_query(FakeGfx *f, uint32_t type, int err,
                         unsigned int count);
/* Probes (VFIO_GFX_PLANE_TYPE_PROBE) fail with -@err; 0 accepts again. */
void fake_gfx_fail_probe(FakeGfx *f, int err);
/* The next @count GETs fail with -@err. */
void fake_gfx_fail_get(FakeGfx *f, int err, unsigned int count);

unsigned int fake_gfx_queries(const FakeGfx *f);
unsigned int fake_gfx_gets(const FakeGfx *f);
/* GETs of an id while an fd from an earlier GET of that id was open. */
unsigned int fake_gfx_double_gets(const FakeGfx *f);
/*
 * fds the fake handed out that are still open in this process (the same
 * file at the same number: an fd closed, or closed and its number reused
 * by another file, no longer counts). A revoked fd counts until closed.
 */
unsigned int fake_gfx_live_fds(FakeGfx *f);
/*
 * The device revokes a buffer, as the kernel does on unplug: a device
 * cannot close an fd in our table, but it can take the buffer away behind
 * it. The fake makes the @n-th live fd (modulo their number) refer to
 * /dev/null (dup2), so the number stays open and owned by whoever holds
 * it, and is no longer a dma-buf of its id. Returns: the fd, or -1 when
 * none is live.
 */
int fake_gfx_revoke(FakeGfx *f, unsigned int n);

/* Open fds of this process, from /proc/self/fd. */
int count_open_fds(void);

#endif
