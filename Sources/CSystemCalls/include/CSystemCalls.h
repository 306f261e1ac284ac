/* The kernel interfaces the system sources use that Swift's Glibc module does not
 * bring: epoll, eventfd, netlink sockets, fanotify, and the mount syscalls reached
 * only through the variadic syscall(2), which Swift cannot call. Each wrapper
 * returns what the call returns, with errno set as it leaves it. */
#ifndef WQFS_CSYSTEMCALLS_H
#define WQFS_CSYSTEMCALLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>

/* fanotify_init(2) and fanotify_mark(2). */
int wq_fanotify_init(unsigned int flags, unsigned int event_f_flags);
int wq_fanotify_mark(int fd, unsigned int flags, uint64_t mask, int dirfd, const char *path);

/* statmount(2) (syscall 457) of the mount with unique id `mount_id`, asking for
 * `mask`; the kernel fills `buffer` with struct statmount and its strings. */
long wq_statmount(uint64_t mount_id, uint64_t mask, void *buffer, size_t size);
/* listmount(2) (syscall 458): up to `count` unique mount ids of the caller's
 * namespace after `after` (0 from the start) into `ids`; the number written. */
long wq_listmount(uint64_t after, uint64_t *ids, size_t count);

/* A netlink socket of `protocol`, bound to multicast `groups`, non-blocking and
 * close-on-exec, its receive buffer set to `receive_buffer` bytes when that is
 * positive (SO_RCVBUFFORCE, falling back to SO_RCVBUF). -1 on failure. */
int wq_netlink_open(int protocol, unsigned int groups, int receive_buffer);
/* One datagram into `buffer`; `sender` gets the sender's port id (0 = the kernel).
 * MSG_TRUNC: the datagram's own length is returned even when it was cut. */
ssize_t wq_netlink_receive(int fd, void *buffer, size_t size, uint32_t *sender);
/* Sends `length` bytes to the kernel (port 0). */
ssize_t wq_netlink_send_to_kernel(int fd, const void *message, size_t length);
/* Names the calling thread (at most 15 bytes show) for ps -L and perf. */
void wq_name_thread(const char *name);

#endif
