/* Trace sink of the standalone build. SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef SHIM_TRACE_H
#define SHIM_TRACE_H

/* Counts the event; prints it when $SHIM_TRACE is set. @name is static. */
void shim_trace_emit(const char *name, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);
/* How often event @name fired so far. */
unsigned int shim_trace_count(const char *name);

#endif
