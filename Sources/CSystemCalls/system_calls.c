#define _GNU_SOURCE
#include "CSystemCalls.h"

#include <errno.h>
#include <linux/netlink.h>
#include <pthread.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The mount syscalls are newer than this machine's headers. */
#define WQ_NR_STATMOUNT 457
#define WQ_NR_LISTMOUNT 458
#define WQ_LSMT_ROOT 0xffffffffffffffffULL

/* struct mnt_id_req, first version (24 bytes). */
struct wq_mount_id_request {
    uint32_t size;
    uint32_t spare;
    uint64_t mount_id;
    uint64_t param;
};

int wq_fanotify_init(unsigned int flags, unsigned int event_f_flags) {
    return fanotify_init(flags, event_f_flags);
}

int wq_fanotify_mark(int fd, unsigned int flags, uint64_t mask, int dirfd, const char *path) {
    return fanotify_mark(fd, flags, mask, dirfd, path);
}

long wq_statmount(uint64_t mount_id, uint64_t mask, void *buffer, size_t size) {
    struct wq_mount_id_request request = { .size = sizeof request, .mount_id = mount_id, .param = mask };
    return syscall(WQ_NR_STATMOUNT, &request, buffer, size, 0);
}

long wq_listmount(uint64_t after, uint64_t *ids, size_t count) {
    struct wq_mount_id_request request = { .size = sizeof request, .mount_id = WQ_LSMT_ROOT, .param = after };
    return syscall(WQ_NR_LISTMOUNT, &request, ids, count, 0);
}

int wq_netlink_open(int protocol, unsigned int groups, int receive_buffer) {
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
    if (fd < 0) return -1;
    if (receive_buffer > 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &receive_buffer, sizeof receive_buffer) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    struct sockaddr_nl address;
    memset(&address, 0, sizeof address);
    address.nl_family = AF_NETLINK;
    address.nl_groups = groups;
    if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

ssize_t wq_netlink_receive(int fd, void *buffer, size_t size, uint32_t *sender) {
    struct sockaddr_nl address;
    socklen_t length = sizeof address;
    memset(&address, 0, sizeof address);
    ssize_t n = recvfrom(fd, buffer, size, MSG_TRUNC, (struct sockaddr *)&address, &length);
    if (n >= 0 && sender) *sender = address.nl_pid;
    return n;
}

ssize_t wq_netlink_send_to_kernel(int fd, const void *message, size_t length) {
    struct sockaddr_nl kernel;
    memset(&kernel, 0, sizeof kernel);
    kernel.nl_family = AF_NETLINK;
    return sendto(fd, message, length, 0, (struct sockaddr *)&kernel, sizeof kernel);
}

void wq_name_thread(const char *name) {
    (void)pthread_setname_np(pthread_self(), name);
}
