/*
 * Stand-in for QEMU's "qemu/timer.h": the clock the QEMU-independent
 * code reads. Standalone, it is a fake that only moves when a test sets
 * it (shim_clock_set_ms), so time-based policies are tested exactly.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef SHIM_QEMU_TIMER_H
#define SHIM_QEMU_TIMER_H

#include <stdint.h>

/* as QEMU's QEMUClockType */
typedef enum {
    QEMU_CLOCK_REALTIME = 0,
    QEMU_CLOCK_VIRTUAL = 1,
    QEMU_CLOCK_HOST = 2,
    QEMU_CLOCK_VIRTUAL_RT = 3,
    QEMU_CLOCK_MAX
} QEMUClockType;

/* The fake clock's time in ms (every clock type reads the same); 0 at start. */
int64_t qemu_clock_get_ms(QEMUClockType type);

/* Test hook: the fake clock reads @ms from now on. */
void shim_clock_set_ms(int64_t ms);

#endif
