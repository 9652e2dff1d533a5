/* Stand-in for QEMU's "qapi/error.h". SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef SHIM_QAPI_ERROR_H
#define SHIM_QAPI_ERROR_H

#include <glib.h>

typedef struct Error Error;

void error_setg(Error **errp, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
void error_setg_errno(Error **errp, int os_errno, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
const char *error_get_pretty(const Error *err);
void error_free(Error *err);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Error, error_free)

#endif
