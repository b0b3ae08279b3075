#define _GNU_SOURCE
#include <errno.h>
#include <execinfo.h>
#include <stddef.h>
#include "CAllocationCounter.h"

// glibc's allocator under its own names (what malloc and friends call in glibc itself).
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

// Initial-exec TLS in the executable: reading it never allocates (no recursion into malloc).
static __thread int tr_counting __attribute__((tls_model("initial-exec")));
static __thread unsigned long tr_count __attribute__((tls_model("initial-exec")));
static __thread int tr_tracing __attribute__((tls_model("initial-exec")));
static __thread int tr_inside __attribute__((tls_model("initial-exec")));

void tr_alloc_count_begin(void) {
    tr_count = 0;
    tr_counting = 1;
}

void tr_alloc_trace(int on) { tr_tracing = on; }

unsigned long tr_alloc_count_end(void) {
    tr_counting = 0;
    return tr_count;
}

static inline void tr_note(void) {
    if (!tr_counting) return;
    tr_count++;
    if (tr_tracing && !tr_inside) {
        // Where it came from, on stderr (backtrace may allocate the first time: not counted).
        tr_inside = 1;
        void *frames[24];
        int n = backtrace(frames, 24);
        backtrace_symbols_fd(frames, n, 2);
        tr_inside = 0;
    }
}

void *malloc(size_t size) {
    if (tr_inside) return __libc_malloc(size);
    tr_note();
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    tr_note();
    return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    tr_note();
    return __libc_realloc(pointer, size);
}

void *memalign(size_t alignment, size_t size) {
    tr_note();
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    tr_note();
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    tr_note();
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL) return ENOMEM;
    *out = pointer;
    return 0;
}
