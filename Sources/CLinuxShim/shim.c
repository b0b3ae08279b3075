#define _GNU_SOURCE
#include <string.h>
#include "CLinuxShim.h"

#include <sched.h>
#include <sys/prctl.h>
#include <stdalign.h>
#include <sys/socket.h>

// The mirror must be byte-for-byte glibc's mmsghdr, or recvmmsg writes msg_len in the wrong place.
_Static_assert(sizeof(struct tr_mmsghdr) == sizeof(struct mmsghdr), "tr_mmsghdr size");
_Static_assert(alignof(struct tr_mmsghdr) == alignof(struct mmsghdr), "tr_mmsghdr alignment");
_Static_assert(offsetof(struct tr_mmsghdr, msg_hdr) == offsetof(struct mmsghdr, msg_hdr), "msg_hdr offset");
_Static_assert(offsetof(struct tr_mmsghdr, msg_len) == offsetof(struct mmsghdr, msg_len), "msg_len offset");

int tr_recvmmsg(int fd, struct tr_mmsghdr *vec, unsigned int vlen, int flags, struct timespec *timeout) {
    return recvmmsg(fd, (struct mmsghdr *)vec, vlen, flags, timeout);
}

int tr_sendmmsg(int fd, struct tr_mmsghdr *vec, unsigned int vlen, int flags) {
    return sendmmsg(fd, (struct mmsghdr *)vec, vlen, flags);
}

struct cmsghdr *tr_cmsg_firsthdr(const struct msghdr *msg) { return CMSG_FIRSTHDR(msg); }
struct cmsghdr *tr_cmsg_nxthdr(const struct msghdr *msg, const struct cmsghdr *cmsg) {
    return CMSG_NXTHDR((struct msghdr *)msg, (struct cmsghdr *)cmsg);
}
unsigned char *tr_cmsg_data(const struct cmsghdr *cmsg) { return CMSG_DATA((struct cmsghdr *)cmsg); }
size_t tr_cmsg_space(size_t payload) { return CMSG_SPACE(payload); }
size_t tr_cmsg_len(size_t payload) { return CMSG_LEN(payload); }

int tr_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    return accept4(fd, address, length, flags);
}

void *tr_memmem(const void *haystack, size_t haystack_length, const void *needle, size_t needle_length) {
    return memmem(haystack, haystack_length, needle, needle_length);
}

int tr_available_cpus(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}

int tr_set_thread_name(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}

size_t tr_mmsghdr_size(void) { return sizeof(struct mmsghdr); }
size_t tr_mmsghdr_msg_len_offset(void) { return offsetof(struct mmsghdr, msg_len); }
