/*
 * nullrelay.c — the floor of bench/run.sh: the least a transparent DNS relay must do per query.
 *
 * Each thread owns a listener (SO_REUSEPORT, IP_TRANSPARENT, IP_RECVORIGDSTADDR) where nft TPROXY
 * delivers the client's datagrams. It reads them in recvmmsg batches, turns each query into an
 * NXDOMAIN answer in place (header flags, counts, cut after the question), and sends the batch back
 * with sendmmsg, each answer from a transparent socket bound to the address and port the client
 * asked — what tproxy-relay does for every answer it makes, minus every decision. Nothing is
 * allocated per datagram; reply sockets are kept per destination in a small per-thread table.
 *
 * With -f it is the floor of a forwarded query (the miss scenario): each query goes on, as it came,
 * to the address the client asked (upstream.mode: original), from one unconnected socket per thread,
 * with its ID replaced by a slot number (a table of 65,536 slots remembers the client, the origin
 * and the old ID); each answer whose ID names a slot in use and whose source is that slot's origin
 * gets its ID back and goes to the client from the origin's address, as above. Both sockets are
 * read in batches as epoll reports them. That is the least a transparent forwarder must do (two
 * receives, two sends, one table slot per query); what tproxy-relay does besides — random IDs,
 * a new source port per batch, checking the question, timeouts, the cache — it does not.
 *
 *   nullrelay [-f] [-l ADDR:PORT] [-t THREADS] [-b BATCH]     (defaults 127.0.0.1:15353, 1, 64)
 *
 * IPv4 only (the bench lab is IPv4). SIGTERM/SIGINT end it; it prints how many answers it sent.
 * Build: cc -O2 -Wall -Wextra -pthread -o nullrelay nullrelay.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_BATCH 256
#define MSG_SIZE 4096
#define REPLY_SOCKETS 64

static struct sockaddr_in listen_address;
static int batch = 64;
static int forwarding;
static atomic_ulong answered;
static atomic_int stopping;

struct reply_socket { struct sockaddr_in origin; int fd; };
/* A forwarded query waiting for its answer (-f): the slot's index is the ID it went out with. */
struct pending { struct sockaddr_in client, origin; uint16_t id; uint8_t used; };
/* A thread's batch: datagrams in, datagrams out, and its reply sockets. Allocated once. */
struct batch {
	uint8_t buffers[MAX_BATCH][MSG_SIZE];
	char controls[MAX_BATCH][64];
	struct mmsghdr in[MAX_BATCH], out[MAX_BATCH];
	struct iovec iov[MAX_BATCH], outiov[MAX_BATCH];
	struct sockaddr_in sources[MAX_BATCH];
	int fds[MAX_BATCH];
	struct reply_socket table[REPLY_SOCKETS];
	int sockets;
};

static void die(const char *what) { perror(what); exit(1); }

static int listener(void) {
	/* Blocking, with a receive timeout: recvmmsg(MSG_WAITFORONE) sleeps until the first datagram
	   and the loop still sees a stop request within 100 ms. (With -f, epoll waits instead.) */
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | (forwarding ? SOCK_NONBLOCK : 0), 0), one = 1, size = 8 << 20;
	if (fd < 0) die("socket");
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) die("SO_REUSEPORT");
	if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one) < 0) die("IP_TRANSPARENT");
	if (setsockopt(fd, SOL_IP, IP_RECVORIGDSTADDR, &one, sizeof one) < 0) die("IP_RECVORIGDSTADDR");
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
	if (bind(fd, (struct sockaddr *)&listen_address, sizeof listen_address) < 0) die("bind listener");
	return fd;
}

/* A socket whose answers leave from `origin` (the address the client asked), opened on first use. */
static int reply_socket(struct reply_socket *table, int *count, const struct sockaddr_in *origin) {
	for (int i = 0; i < *count; i++)
		if (table[i].origin.sin_addr.s_addr == origin->sin_addr.s_addr && table[i].origin.sin_port == origin->sin_port) return table[i].fd;
	if (*count == REPLY_SOCKETS) return -1;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0) return -1;
	setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	if (bind(fd, (const struct sockaddr *)origin, sizeof *origin) < 0) { close(fd); return -1; }
	table[*count].origin = *origin;
	table[*count].fd = fd;
	(*count)++;
	return fd;
}

/* The query in `p` (n bytes) as an NXDOMAIN answer: its length, or 0 to drop it. */
static size_t nxdomain(uint8_t *p, size_t n) {
	if (n < 17 || (p[2] & 0x80) || p[4] != 0 || p[5] != 1) return 0;
	size_t i = 12;
	while (i < n && p[i] != 0) {
		if (p[i] > 63) return 0;
		i += (size_t)p[i] + 1;
	}
	if (i + 5 > n) return 0;
	p[2] = (uint8_t)((p[2] & 0x01) | 0x80); /* QR, keep RD */
	p[3] = 0x80 | 3;                         /* RA, NXDOMAIN */
	memset(p + 6, 0, 6);                     /* no answer, authority or additional records */
	return i + 5;
}

/* A batch, zeroed. */
static struct batch *new_batch(void) {
	struct batch *b = calloc(1, sizeof *b);
	if (!b) die("calloc");
	return b;
}

/* Readies the batch's receive headers, with room for control messages or without. */
static void ready_to_receive(struct batch *b, int controls) {
	for (int i = 0; i < batch; i++) {
		b->iov[i] = (struct iovec){b->buffers[i], MSG_SIZE};
		b->in[i].msg_hdr = (struct msghdr){.msg_name = &b->sources[i], .msg_namelen = sizeof b->sources[i], .msg_iov = &b->iov[i], .msg_iovlen = 1,
		                                   .msg_control = controls ? b->controls[i] : NULL, .msg_controllen = controls ? sizeof b->controls[i] : 0};
	}
}

/* The address the client of datagram i asked (IP_ORIGDSTADDR), or NULL. */
static struct sockaddr_in *origin_of(struct batch *b, int i) {
	struct sockaddr_in *origin = NULL;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&b->in[i].msg_hdr); c; c = CMSG_NXTHDR(&b->in[i].msg_hdr, c))
		if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_ORIGDSTADDR) origin = (struct sockaddr_in *)CMSG_DATA(c);
	return origin;
}

/* Queues `length` bytes at `bytes` as outgoing datagram m, to `to` from socket `fd`. */
static void queue(struct batch *b, int m, int fd, uint8_t *bytes, size_t length, struct sockaddr_in *to) {
	b->fds[m] = fd;
	b->outiov[m] = (struct iovec){bytes, length};
	b->out[m].msg_hdr = (struct msghdr){.msg_name = to, .msg_namelen = sizeof *to, .msg_iov = &b->outiov[m], .msg_iovlen = 1};
}

/* Sends out[0..<m], whose replies leave from fds[0..<m], as one sendmmsg per run of the same socket
   (one run, in the lab); returns how many were sent. */
static unsigned long send_runs(struct mmsghdr *out, const int *fds, int m) {
	unsigned long total = 0;
	for (int start = 0; start < m;) {
		int end = start + 1;
		while (end < m && fds[end] == fds[start]) end++;
		int sent = sendmmsg(fds[start], out + start, (unsigned)(end - start), MSG_DONTWAIT);
		if (sent > 0) total += (unsigned long)sent;
		start = end;
	}
	return total;
}

static void *worker(void *unused) {
	(void)unused;
	int fd = listener();
	struct batch *b = new_batch();
	struct timeval tick = {0, 100000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick);
	while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
		ready_to_receive(b, 1);
		int n = recvmmsg(fd, b->in, (unsigned)batch, MSG_WAITFORONE, NULL);
		if (n <= 0) continue;
		int m = 0;
		for (int i = 0; i < n; i++) {
			struct sockaddr_in *origin = origin_of(b, i);
			size_t length = origin ? nxdomain(b->buffers[i], b->in[i].msg_len) : 0;
			int reply = length ? reply_socket(b->table, &b->sockets, origin) : -1;
			if (reply < 0) continue;
			queue(b, m++, reply, b->buffers[i], length, &b->sources[i]);
		}
		/* One sendmmsg per run of answers leaving from the same socket (one run, in the lab). */
		atomic_fetch_add_explicit(&answered, send_runs(b->out, b->fds, m), memory_order_relaxed);
	}
	return NULL;
}

/* The -f loop: queries from the listener go to their origin from `up`; answers on `up` go back. */
static void *forwarder(void *unused) {
	(void)unused;
	int fd = listener(), size = 8 << 20;
	int up = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (up < 0) die("socket upstream");
	if (setsockopt(up, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0) setsockopt(up, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
	struct pending *slots = calloc(65536, sizeof *slots);
	if (!slots) die("calloc");
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event event = {.events = EPOLLIN, .data.u32 = 0};
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &event) < 0) die("epoll listener");
	event.data.u32 = 1;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, up, &event) < 0) die("epoll upstream");
	struct batch *b = new_batch();
	uint16_t next = 0;
	unsigned long mine = 0;
	while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
		struct epoll_event events[2];
		int ready = epoll_wait(ep, events, 2, 100);
		for (int e = 0; e < ready; e++) {
			int from = events[e].data.u32 == 0 ? fd : up;
			ready_to_receive(b, from == fd);
			int n = recvmmsg(from, b->in, (unsigned)batch, MSG_DONTWAIT, NULL);
			if (n <= 0) continue;
			int m = 0;
			for (int i = 0; i < n; i++) {
				uint8_t *p = b->buffers[i];
				if (b->in[i].msg_len < 12) continue;
				if (from == fd) {
					struct sockaddr_in *origin = origin_of(b, i);
					if (!origin || (p[2] & 0x80)) continue;
					uint16_t id = next++;
					struct pending *slot = &slots[id];
					*slot = (struct pending){.client = b->sources[i], .origin = *origin, .id = (uint16_t)(p[0] << 8 | p[1]), .used = 1};
					p[0] = (uint8_t)(id >> 8);
					p[1] = (uint8_t)id;
					queue(b, m++, up, p, b->in[i].msg_len, &slot->origin);
				} else {
					struct pending *slot = &slots[p[0] << 8 | p[1]];
					if (!slot->used || !(p[2] & 0x80) || slot->origin.sin_addr.s_addr != b->sources[i].sin_addr.s_addr ||
					    slot->origin.sin_port != b->sources[i].sin_port) continue;
					slot->used = 0;
					int reply = reply_socket(b->table, &b->sockets, &slot->origin);
					if (reply < 0) continue;
					p[0] = (uint8_t)(slot->id >> 8);
					p[1] = (uint8_t)slot->id;
					queue(b, m++, reply, p, b->in[i].msg_len, &slot->client);
				}
			}
			unsigned long sent = send_runs(b->out, b->fds, m);
			if (from == up) mine += sent;
		}
	}
	atomic_fetch_add(&answered, mine);
	return NULL;
}

static void stop(int signal) { (void)signal; atomic_store(&stopping, 1); }

int main(int argc, char **argv) {
	const char *listen_text = "127.0.0.1:15353";
	int threads = 1, option;
	while ((option = getopt(argc, argv, "fl:t:b:")) != -1) {
		switch (option) {
		case 'f': forwarding = 1; break;
		case 'l': listen_text = optarg; break;
		case 't': threads = atoi(optarg); break;
		case 'b': batch = atoi(optarg); break;
		default: fprintf(stderr, "usage: nullrelay [-f] [-l ADDR:PORT] [-t THREADS] [-b BATCH]\n"); return 2;
		}
	}
	if (threads < 1 || threads > 64 || batch < 1 || batch > MAX_BATCH) { fprintf(stderr, "nullrelay: -t 1..64, -b 1..%d\n", MAX_BATCH); return 2; }
	char host[64];
	const char *colon = strrchr(listen_text, ':');
	if (!colon || (size_t)(colon - listen_text) >= sizeof host) { fprintf(stderr, "nullrelay: -l ADDR:PORT\n"); return 2; }
	memcpy(host, listen_text, (size_t)(colon - listen_text));
	host[colon - listen_text] = 0;
	listen_address.sin_family = AF_INET;
	listen_address.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &listen_address.sin_addr) != 1) { fprintf(stderr, "nullrelay: bad address %s\n", host); return 2; }
	struct sigaction action = {.sa_handler = stop};
	sigaction(SIGTERM, &action, NULL);
	sigaction(SIGINT, &action, NULL);
	pthread_t ids[64];
	for (int i = 0; i < threads; i++)
		if (pthread_create(&ids[i], NULL, forwarding ? forwarder : worker, NULL) != 0) die("pthread_create");
	fprintf(stderr, "nullrelay: %d thread(s) on %s%s\n", threads, listen_text, forwarding ? ", forwarding" : "");
	for (int i = 0; i < threads; i++) pthread_join(ids[i], NULL);
	fprintf(stderr, "nullrelay: %lu answers\n", atomic_load(&answered));
	return 0;
}
