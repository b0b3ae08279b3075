// The C surface that LinuxNet needs and Swift cannot reach on its own.
//
// glibc hides mmsghdr, recvmmsg and sendmmsg behind _GNU_SOURCE, and the CMSG_* macros cannot be
// called from Swift. Everything here carries the `tr_` prefix so it never collides with libc.
// Only LinuxNet imports this module, and Pipeline for `tr_prefetch`.
#ifndef CLINUXSHIM_H
#define CLINUXSHIM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <net/if.h>

/// Layout-identical mirror of glibc's `struct mmsghdr` (checked with _Static_assert in shim.c).
struct tr_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};

/// recvmmsg(2); returns the number of messages or -1 with errno set.
int tr_recvmmsg(int fd, struct tr_mmsghdr *vec, unsigned int vlen, int flags, struct timespec *timeout);
/// sendmmsg(2); returns the number of messages sent or -1 with errno set.
int tr_sendmmsg(int fd, struct tr_mmsghdr *vec, unsigned int vlen, int flags);

/// CMSG_FIRSTHDR, CMSG_NXTHDR, CMSG_DATA, CMSG_SPACE, CMSG_LEN as functions.
struct cmsghdr *tr_cmsg_firsthdr(const struct msghdr *msg);
struct cmsghdr *tr_cmsg_nxthdr(const struct msghdr *msg, const struct cmsghdr *cmsg);
unsigned char *tr_cmsg_data(const struct cmsghdr *cmsg);
size_t tr_cmsg_space(size_t payload);
size_t tr_cmsg_len(size_t payload);

/// accept4(2) (also behind _GNU_SOURCE).
int tr_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);

/// memmem(3) (behind _GNU_SOURCE too): glibc's vectorised substring search.
void *tr_memmem(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length);

/// Number of CPUs this process may run on (sched_getaffinity), at least 1.
int tr_available_cpus(void);

/// Names the calling thread (prctl PR_SET_NAME; at most 15 bytes are kept), as top -H and perf
/// show it. 0, or -1 with errno.
int tr_set_thread_name(const char *name);

/// Asks the CPU to bring in the cache line holding `address`, for reading. A hint, not a load: any
/// address may be given and nothing is read, so it may name memory another thread is writing.
/// Swift has no prefetch of its own. (Pipeline's CachePrefetch warms the shared answer cache.)
static inline void tr_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

/// Size and alignment of the mirror, for tests that check it against Swift's view.
size_t tr_mmsghdr_size(void);
size_t tr_mmsghdr_msg_len_offset(void);

#endif
