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

/* QEMU's page size helper, as in its include/qemu/osdep.h */
static inline uintptr_t qemu_real_host_page_size(void)
{
    return getpagesize();
}

#endif
