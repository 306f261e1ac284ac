/* The kernel mechanisms behind wqfs's netlink sources, opened as the benchmarks'
 * small C programs need them (floor.c reads them directly, cfloor.c relays them
 * through a FUSE mount): a blocking socket subscribed to kernel uevents, or to
 * the proc connector's process events. Include after stamp.h, <sys/socket.h>,
 * <linux/netlink.h>, <linux/connector.h> and <linux/cn_proc.h>. */
#ifndef WQFS_BENCH_MECHANISMS_H
#define WQFS_BENCH_MECHANISMS_H

/* Kernel uevents: NETLINK_KOBJECT_UEVENT, multicast group 1 (the kernel's). */
static int open_uevents(void) {
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
    if (fd < 0) die("socket(NETLINK_KOBJECT_UEVENT)");
    struct sockaddr_nl address = { .nl_family = AF_NETLINK, .nl_groups = 1 };
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0) die("bind uevent");
    return fd;
}

/* The proc connector, every event kind (PROC_CN_MCAST_LISTEN without a filter). */
static int open_proc_connector(void) {
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR);
    if (fd < 0) die("socket(NETLINK_CONNECTOR)");
    struct sockaddr_nl address = { .nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC, .nl_pid = 0 };
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0) die("bind proc connector");
    struct {
        struct nlmsghdr header;
        struct cn_msg message;
        enum proc_cn_mcast_op op;
    } __attribute__((packed)) listen = {
        .header = { .nlmsg_len = sizeof listen, .nlmsg_type = NLMSG_DONE, .nlmsg_pid = (uint32_t)getpid() },
        .message = { .id = { .idx = CN_IDX_PROC, .val = CN_VAL_PROC }, .len = sizeof(enum proc_cn_mcast_op) },
        .op = PROC_CN_MCAST_LISTEN,
    };
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    if (sendto(fd, &listen, sizeof listen, 0, (struct sockaddr *)&kernel, sizeof kernel) != (ssize_t)sizeof listen)
        die("PROC_CN_MCAST_LISTEN");
    return fd;
}

/* One datagram the kernel sent (port 0; anyone may send to a multicast group),
 * into `buffer`, NUL-terminated; its length, or -1 for one to skip (a foreign
 * sender, EINTR, or ENOBUFS: events lost, which the benchmarks' rounds notice). */
static ssize_t receive_from_kernel(int fd, char *buffer, size_t size) {
    struct sockaddr_nl from;
    socklen_t length = sizeof from;
    ssize_t n = recvfrom(fd, buffer, size - 1, 0, (struct sockaddr *)&from, &length);
    if (n < 0) {
        if (errno == EINTR || errno == ENOBUFS) return -1;
        die("recv netlink");
    }
    if (from.nl_pid != 0) return -1;
    buffer[n] = 0;
    return n;
}

/* The KEY=VALUE strings of a uevent of n bytes ("ACTION@DEVPATH\0KEY=VALUE\0...",
 * NUL-terminated by receive_from_kernel): after `field`, or the first when it is
 * NULL; NULL after the last. */
static const char *uevent_field(const char *message, ssize_t n, const char *field) {
    const char *next = field ? field + strlen(field) + 1 : message + strlen(message) + 1;
    return next < message + n ? next : NULL;
}

/* The proc_event a proc connector message of n bytes carries (nlmsghdr, cn_msg,
 * proc_event), or NULL when it is too short for one. */
static const struct proc_event *proc_event_in(const char *message, ssize_t n) {
    if ((size_t)n < NLMSG_HDRLEN + sizeof(struct cn_msg) + sizeof(struct proc_event)) return NULL;
    return (const struct proc_event *)((const struct cn_msg *)NLMSG_DATA((const struct nlmsghdr *)message))->data;
}

#endif
