/*
 * Stand-ins for the few QEMU services the QEMU-independent code uses:
 * Error, warn_report/info_report, the clock (a fake the tests set) and
 * trace events (see scripts/trace-shim.py). The test hooks let unit tests
 * count warnings, info lines and trace events.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "qemu/timer.h"
#include "shim-trace.h"

struct Error {
    char *msg;
};

static unsigned int warn_count;
static char *last_warning;
static unsigned int info_count;
static char *last_info;
static int64_t clock_ms;
static GHashTable *trace_counts;

static void set_error(Error **errp, char *msg)
{
    Error *err;

    if (!errp) {
        g_free(msg);
        return;
    }
    assert(*errp == NULL);
    err = g_new0(Error, 1);
    err->msg = msg;
    *errp = err;
}

void error_setg(Error **errp, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    set_error(errp, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

void error_setg_errno(Error **errp, int os_errno, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    set_error(errp, g_strdup_printf("%s: %s", msg, g_strerror(os_errno)));
}

const char *error_get_pretty(const Error *err)
{
    return err->msg;
}

void error_free(Error *err)
{
    if (err) {
        g_free(err->msg);
        g_free(err);
    }
}

void error_report(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void warn_report(const char *fmt, ...)
{
    va_list ap;

    warn_count++;
    va_start(ap, fmt);
    g_free(last_warning);
    last_warning = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (g_getenv("SHIM_VERBOSE")) {
        fprintf(stderr, "warning: %s\n", last_warning);
    }
}

unsigned int shim_warn_count(void)
{
    return warn_count;
}

const char *shim_last_warning(void)
{
    return last_warning ? last_warning : "";
}

void info_report(const char *fmt, ...)
{
    va_list ap;

    info_count++;
    va_start(ap, fmt);
    g_free(last_info);
    last_info = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (g_getenv("SHIM_VERBOSE")) {
        fprintf(stderr, "info: %s\n", last_info);
    }
}

unsigned int shim_info_count(void)
{
    return info_count;
}

const char *shim_last_info(void)
{
    return last_info ? last_info : "";
}

int64_t qemu_clock_get_ms(QEMUClockType type)
{
    return clock_ms;
}

void shim_clock_set_ms(int64_t ms)
{
    clock_ms = ms;
}

void shim_trace_emit(const char *name, const char *fmt, ...)
{
    gpointer n;

    if (!trace_counts) {
        trace_counts = g_hash_table_new(g_str_hash, g_str_equal);
    }
    n = g_hash_table_lookup(trace_counts, name);
    g_hash_table_insert(trace_counts, (gpointer)name,
                        GUINT_TO_POINTER(GPOINTER_TO_UINT(n) + 1));
    if (g_getenv("SHIM_TRACE")) {
        va_list ap;

        fprintf(stderr, "trace %s ", name);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
}

unsigned int shim_trace_count(const char *name)
{
    if (!trace_counts) {
        return 0;
    }
    return GPOINTER_TO_UINT(g_hash_table_lookup(trace_counts, name));
}
