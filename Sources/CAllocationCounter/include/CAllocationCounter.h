#ifndef C_ALLOCATION_COUNTER_H
#define C_ALLOCATION_COUNTER_H

// Counts heap allocations made by the calling thread, for tests that prove a path allocates
// nothing (issue 21). Linked into the test binary only: it defines malloc, calloc, realloc,
// posix_memalign, aligned_alloc and memalign, which then stand in for glibc's (symbol
// interposition) and forward to glibc's own __libc_* entry points.

/// Starts counting this thread's allocations from zero.
void tr_alloc_count_begin(void);
/// Stops counting; the allocations this thread made since tr_alloc_count_begin.
unsigned long tr_alloc_count_end(void);
/// While counting, also print each allocation's backtrace on stderr (1) or not (0): to find one.
void tr_alloc_trace(int on);

#endif
