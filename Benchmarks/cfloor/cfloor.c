/*
 * cfloor: the floor for any FUSE design of wqfs, for wqfs-bench.
 *
 * A minimal libfuse3 low-level filesystem doing the same file operations as wqfs
 * with none of its work:
 *
 *   /post        write appends the raw bytes to every queue's buffer (parses nothing)
 *   /q0 ... /qN  read takes min(size, buffered) bytes, or, when the buffer is empty,
 *                keeps the request and answers it when a post arrives (deferred
 *                reply, as wqfs); interrupts answer EINTR, unmount answers EOF
 *
 * Every file is opened direct_io and nonseekable, as wqfs opens them, and the loop
 * is fuse_session_loop_mt with wqfs's defaults (4 idle threads, 16 at most).
 *
 * With a mechanism named, one more thread relays it as wqfs's event thread does
 * (the C relay: kernel event -> record -> parked read answered), for the system
 * sources' benchmark: uevents as DEVICE records, the proc connector's forks and
 * exits as PROCESS records, posted to every queue.
 *
 *   cfloor MOUNTPOINT [QUEUES [devices|processes]]   (foreground; SIGTERM/SIGINT
 *                                                     unmount and exit)
 *
 * Built by wqfs-bench at run time:
 *   cc -O2 -I include cfloor.c $(pkg-config --cflags --libs fuse3)
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
/* The record layouts the relay posts; <fcntl.h> came with fuse_lowlevel.h. */
#define _LINUX_FCNTL_H
#include "wqfs/records.h"
#define PROGRAM "cfloor"
#include "../common/stamp.h"
#include "../common/mechanisms.h"

#define ROOT_INO 1
#define POST_INO 2
#define QUEUE_INO0 3
#define MAX_QUEUES 1024

struct parked {
    fuse_req_t req;
    size_t size;
    struct parked *next;
};

struct queue {
    char *buf;
    size_t start, end, cap;
    struct parked *parked; /* FIFO: head first */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct queue queues[MAX_QUEUES];
static int nqueues = 1;

static int inode_kind(fuse_ino_t ino) {
    if (ino == ROOT_INO) return 0;
    if (ino == POST_INO) return 1;
    if (ino >= QUEUE_INO0 && ino < QUEUE_INO0 + (fuse_ino_t)nqueues) return 2;
    return -1;
}

static void fill_stat(fuse_ino_t ino, struct stat *st) {
    memset(st, 0, sizeof *st);
    st->st_ino = ino;
    switch (inode_kind(ino)) {
    case 0: st->st_mode = S_IFDIR | 0755; st->st_nlink = 2; break;
    case 1: st->st_mode = S_IFREG | 0200; st->st_nlink = 1; break;
    default: st->st_mode = S_IFREG | 0400; st->st_nlink = 1; break;
    }
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    if (parent != ROOT_INO) { fuse_reply_err(req, ENOENT); return; }
    if (strcmp(name, "post") == 0) {
        e.ino = POST_INO;
    } else if (name[0] == 'q') {
        char *end;
        long i = strtol(name + 1, &end, 10);
        if (*end || i < 0 || i >= nqueues) { fuse_reply_err(req, ENOENT); return; }
        e.ino = QUEUE_INO0 + (fuse_ino_t)i;
    } else {
        fuse_reply_err(req, ENOENT);
        return;
    }
    e.attr_timeout = 1.0;
    e.entry_timeout = 1.0;
    fill_stat(e.ino, &e.attr);
    fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    (void)fi;
    struct stat st;
    if (inode_kind(ino) < 0) { fuse_reply_err(req, ENOENT); return; }
    fill_stat(ino, &st);
    fuse_reply_attr(req, &st, 1.0);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    int kind = inode_kind(ino);
    if (kind <= 0) { fuse_reply_err(req, kind == 0 ? EISDIR : ENOENT); return; }
    fi->direct_io = 1;
    fi->nonseekable = 1;
    fuse_reply_open(req, fi);
}

/* Takes min(size, buffered) bytes of q into a reply. Called with the lock held;
 * the caller replies after unlocking, from the copy. */
static char *take(struct queue *q, size_t size, size_t *len) {
    size_t n = q->end - q->start;
    if (n > size) n = size;
    char *out = malloc(n ? n : 1);
    memcpy(out, q->buf + q->start, n);
    q->start += n;
    if (q->start == q->end) q->start = q->end = 0;
    *len = n;
    return out;
}

static void on_interrupt(fuse_req_t req, void *data) {
    struct queue *q = data;
    int found = 0;
    pthread_mutex_lock(&lock);
    for (struct parked **p = &q->parked; *p; p = &(*p)->next) {
        if ((*p)->req == req) {
            struct parked *gone = *p;
            *p = gone->next;
            free(gone);
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    if (found) fuse_reply_err(req, EINTR);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
    (void)off; (void)fi;
    if (inode_kind(ino) != 2) { fuse_reply_err(req, EBADF); return; }
    struct queue *q = &queues[ino - QUEUE_INO0];
    fuse_req_interrupt_func(req, on_interrupt, q);
    pthread_mutex_lock(&lock);
    if (q->end > q->start) {
        size_t len;
        char *out = take(q, size, &len);
        pthread_mutex_unlock(&lock);
        fuse_reply_buf(req, out, len);
        free(out);
        return;
    }
    if (fuse_req_interrupted(req)) {
        pthread_mutex_unlock(&lock);
        fuse_reply_err(req, EINTR);
        return;
    }
    struct parked *p = malloc(sizeof *p);
    p->req = req;
    p->size = size;
    p->next = NULL;
    struct parked **tail = &q->parked;
    while (*tail) tail = &(*tail)->next;
    *tail = p;
    pthread_mutex_unlock(&lock);
}

static void append(struct queue *q, const char *data, size_t len) {
    if (q->end + len > q->cap) {
        if (q->start) {
            memmove(q->buf, q->buf + q->start, q->end - q->start);
            q->end -= q->start;
            q->start = 0;
        }
        if (q->end + len > q->cap) {
            size_t cap = q->cap ? q->cap : 65536;
            while (cap < q->end + len) cap *= 2;
            q->buf = realloc(q->buf, cap);
            q->cap = cap;
        }
    }
    memcpy(q->buf + q->end, data, len);
    q->end += len;
}

/* Parked reads a post answered, replied to once the lock is released. */
struct answer { fuse_req_t req; char *data; size_t len; };
struct answers { struct answer small[16], *list; size_t count, cap; };

static void answers_init(struct answers *a) {
    a->list = a->small;
    a->count = 0;
    a->cap = 16;
}

static void answers_add(struct answers *a, struct parked *p, struct queue *q) {
    if (a->count == a->cap) {
        a->cap *= 2;
        struct answer *more = malloc(a->cap * sizeof *more);
        memcpy(more, a->list, a->count * sizeof *more);
        if (a->list != a->small) free(a->list);
        a->list = more;
    }
    a->list[a->count].req = p->req;
    a->list[a->count].data = take(q, p->size, &a->list[a->count].len);
    a->count++;
}

/* Appends `data` to every queue and takes what their parked reads can have into
 * `out`. Called with the lock held. */
static void post(const char *data, size_t size, struct answers *out) {
    for (int i = 0; i < nqueues; i++) {
        struct queue *q = &queues[i];
        append(q, data, size);
        while (q->parked && q->end > q->start) {
            struct parked *p = q->parked;
            q->parked = p->next;
            answers_add(out, p, q);
            free(p);
        }
    }
}

static void send_answers(struct answers *a) {
    for (size_t i = 0; i < a->count; i++) {
        fuse_reply_buf(a->list[i].req, a->list[i].data, a->list[i].len);
        free(a->list[i].data);
    }
    if (a->list != a->small) free(a->list);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size, off_t off,
                     struct fuse_file_info *fi) {
    (void)off; (void)fi;
    if (inode_kind(ino) != 1) { fuse_reply_err(req, EBADF); return; }
    struct answers answers;
    answers_init(&answers);
    pthread_mutex_lock(&lock);
    post(data, size, &answers);
    pthread_mutex_unlock(&lock);
    fuse_reply_write(req, size);
    send_answers(&answers);
}

/* ---- relay: a kernel mechanism's events as wqfs records ---------------------
 * The minimal C version of what wqfs's event thread does for sources/devices and
 * sources/processes: one thread blocked on the mechanism builds each event's
 * record (include/wqfs/records.h), posts it and answers the parked reads itself.
 * Posted records stay buffered until read, up to RELAY_BACKLOG bytes in the
 * first queue (every queue gets the same posts; the machine's other events pile
 * up while nobody reads; past that, dropped). */
#define RELAY_BACKLOG (1 << 20)

static const char *const actions[] = { "add", "remove", "change", "move", "online", "offline", "bind", "unbind" };

/* A uevent ("ACTION@DEVPATH\0KEY=VALUE\0...") as a DEVICE record; its length, or 0. */
static size_t device_record(const char *message, ssize_t n, unsigned char *record) {
    const char *at = strchr(message, '@');
    if (!at) return 0;
    int subtype = -1;
    for (int i = 0; i < 8; i++)
        if (strlen(actions[i]) == (size_t)(at - message) && strncmp(message, actions[i], (size_t)(at - message)) == 0) subtype = i;
    if (subtype < 0) return 0;
    struct wqfs_device_notification *device = (void *)record;
    memset(record, 0, WQFS_DEVICE_MAX_LEN);
    device->major = device->minor = WQFS_DEVICE_NO_NUMBER;
    uint32_t flags = 0;
    for (const char *field = uevent_field(message, n, NULL); field; field = uevent_field(message, n, field)) {
        if (strncmp(field, "SEQNUM=", 7) == 0) device->seqnum = strtoull(field + 7, NULL, 10);
        else if (strncmp(field, "MAJOR=", 6) == 0) device->major = (uint32_t)strtoul(field + 6, NULL, 10);
        else if (strncmp(field, "MINOR=", 6) == 0) device->minor = (uint32_t)strtoul(field + 6, NULL, 10);
        else if (strncmp(field, "SUBSYSTEM=", 10) == 0) {
            size_t length = strlen(field + 10);
            if (length > WQFS_DEVICE_SUBSYSTEM_LEN) { length = WQFS_DEVICE_SUBSYSTEM_LEN; flags |= WQFS_DEVICE_SUBSYSTEM_TRUNCATED; }
            memcpy(device->subsystem, field + 10, length);
        }
    }
    size_t devpath = strlen(at + 1);
    if (devpath > WQFS_DEVICE_DEVPATH_MAX) { devpath = WQFS_DEVICE_DEVPATH_MAX; flags |= WQFS_DEVICE_DEVPATH_TRUNCATED; }
    memcpy(device->devpath, at + 1, devpath);
    size_t length = sizeof *device + ((devpath + 7) & ~(size_t)7);
    device->watch.type = WQFS_WATCH_TYPE_DEVICE;
    device->watch.subtype = (uint32_t)subtype;
    device->watch.info = (uint32_t)length | flags;
    return length;
}

/* A proc connector message's FORK or EXIT as a PROCESS record; its length, or 0. */
static size_t process_record(const char *message, ssize_t n, unsigned char *record) {
    const struct proc_event *event = proc_event_in(message, n);
    if (!event) return 0;
    if (event->what == PROC_EVENT_FORK) {
        struct wqfs_process_notification_fork fork = {
            .watch = { .type = WQFS_WATCH_TYPE_PROCESS, .subtype = WQFS_PROCESS_FORK, .info = sizeof fork },
            .timestamp_ns = event->timestamp_ns,
            .pid = (uint32_t)event->event_data.fork.child_pid, .tgid = (uint32_t)event->event_data.fork.child_tgid,
            .parent_pid = (uint32_t)event->event_data.fork.parent_pid, .parent_tgid = (uint32_t)event->event_data.fork.parent_tgid,
        };
        memcpy(record, &fork, sizeof fork);
        return sizeof fork;
    }
    if (event->what == PROC_EVENT_EXIT) {
        struct wqfs_process_notification_exit exit = {
            .watch = { .type = WQFS_WATCH_TYPE_PROCESS, .subtype = WQFS_PROCESS_EXIT, .info = sizeof exit },
            .timestamp_ns = event->timestamp_ns,
            .pid = (uint32_t)event->event_data.exit.process_pid, .tgid = (uint32_t)event->event_data.exit.process_tgid,
            .exit_code = event->event_data.exit.exit_code, .exit_signal = event->event_data.exit.exit_signal,
            .parent_pid = (uint32_t)event->event_data.exit.parent_pid, .parent_tgid = (uint32_t)event->event_data.exit.parent_tgid,
        };
        memcpy(record, &exit, sizeof exit);
        return sizeof exit;
    }
    return 0;
}

struct relay { int fd, devices; };

static void *relay(void *argument) {
    const struct relay *mechanism = argument;
    int fd = mechanism->fd, devices = mechanism->devices;
    static char message[8192] __attribute__((aligned(8)));
    unsigned char record[WQFS_DEVICE_MAX_LEN] __attribute__((aligned(8)));
    for (;;) {
        ssize_t n = receive_from_kernel(fd, message, sizeof message);
        if (n < 0) continue;
        size_t length = devices ? device_record(message, n, record) : process_record(message, n, record);
        if (length == 0) continue;
        struct answers answers;
        answers_init(&answers);
        pthread_mutex_lock(&lock);
        if (queues[0].end - queues[0].start < RELAY_BACKLOG) post((const char *)record, length, &answers);
        pthread_mutex_unlock(&lock);
        send_answers(&answers);
    }
    return NULL;
}

static void op_destroy(void *userdata) {
    (void)userdata;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < nqueues; i++) {
        struct parked *p = queues[i].parked;
        queues[i].parked = NULL;
        while (p) {
            struct parked *next = p->next;
            fuse_reply_buf(p->req, NULL, 0);
            free(p);
            p = next;
        }
    }
    pthread_mutex_unlock(&lock);
}

static const struct fuse_lowlevel_ops ops = {
    .lookup = op_lookup,
    .getattr = op_getattr,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .destroy = op_destroy,
};

int main(int argc, char **argv) {
    if (argc < 2 || (argc > 3 && strcmp(argv[3], "devices") != 0 && strcmp(argv[3], "processes") != 0)) {
        fprintf(stderr, "usage: cfloor MOUNTPOINT [QUEUES [devices|processes]]\n");
        return 2;
    }
    if (argc > 2) {
        nqueues = atoi(argv[2]);
        if (nqueues < 1 || nqueues > MAX_QUEUES) { fprintf(stderr, "cfloor: 1..%d queues\n", MAX_QUEUES); return 2; }
    }
    char *fargv[] = { argv[0], "-o", "fsname=cfloor,subtype=cfloor", NULL };
    struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
    struct fuse_session *se = fuse_session_new(&args, &ops, sizeof ops, NULL);
    if (!se) return 1;
    if (fuse_set_signal_handlers(se) != 0) return 1;
    /* Subscribed before the mount appears, so no event after it is missed. */
    static struct relay mechanism;
    pthread_t relay_thread;
    if (argc > 3) {
        mechanism.devices = strcmp(argv[3], "devices") == 0;
        mechanism.fd = mechanism.devices ? open_uevents() : open_proc_connector();
        if (pthread_create(&relay_thread, NULL, relay, &mechanism) != 0) return 1;
        pthread_setname_np(relay_thread, "cfloor-relay");
    }
    if (fuse_session_mount(se, argv[1]) != 0) return 1;
    struct fuse_loop_config *config = fuse_loop_cfg_create();
    fuse_loop_cfg_set_idle_threads(config, 4);
    fuse_loop_cfg_set_max_threads(config, 16);
    int rc = fuse_session_loop_mt(se, config);
    fuse_loop_cfg_destroy(config);
    fuse_session_unmount(se);
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return rc ? 1 : 0;
}
