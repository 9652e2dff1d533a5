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
#include <glib.h>

#endif
