#ifndef CNETFILTER_SHIM_H
#define CNETFILTER_SHIM_H
// <netinet/in.h> must precede every <linux/*.h>, or Swift sees two different `in_addr`s.
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/fib_rules.h>
#include <libmnl/libmnl.h>
#include <libnftnl/table.h>
#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/expr.h>
#include <libnftnl/batch.h>
#include <libnftnl/common.h>
#include <libnftnl/object.h>
#include <libnftnl/set.h>

// MNL_SOCKET_BUFFER_SIZE calls sysconf() and does not import into Swift.
static inline size_t cnf_socket_buffer_size(void) { return (size_t)MNL_SOCKET_BUFFER_SIZE; }
#endif
