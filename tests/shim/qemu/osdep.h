/*
 * Stand-in for QEMU's "qemu/osdep.h" so that the QEMU-independent parts
 * build and test without a QEMU tree. Only what those files use.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef SHIM_QEMU_OSDEP_H
#define SHIM_QEMU_OSDEP_H

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

/*
 * As in QEMU's include/qemu/osdep.h: assertions are never compiled out
 * (tests rely on them, STYLE.md section 7).
 */
#ifdef NDEBUG
#error building with NDEBUG is not supported
#endif
#ifdef G_DISABLE_ASSERT
#error building with G_DISABLE_ASSERT is not supported
#endif

/* @n rounded up to a multiple of @d, as QEMU's ROUND_UP (@d a power of 2 there) */
#define ROUND_UP(n, d) ((((n) + (d) - 1) / (d)) * (d))

/* QEMU's page size helper, as in its include/qemu/osdep.h */
static inline uintptr_t qemu_real_host_page_size(void)
{
    return getpagesize();
}

#endif
