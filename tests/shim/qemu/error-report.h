/* Stand-in for QEMU's "qemu/error-report.h". SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef SHIM_QEMU_ERROR_REPORT_H
#define SHIM_QEMU_ERROR_REPORT_H

#include <glib.h>

void error_report(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void warn_report(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void info_report(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/* Test hooks: warnings printed so far, and the last one. */
unsigned int shim_warn_count(void);
const char *shim_last_warning(void);
/* ... and the same for info_report lines. */
unsigned int shim_info_count(void);
const char *shim_last_info(void);

#endif
