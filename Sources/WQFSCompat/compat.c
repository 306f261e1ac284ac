/* libwqfs-compat.so: the kernel's watch-queue calls, rebuilt on a wqfs mount.
 *
 * Interposed, and only as far as a notification pipe is concerned:
 *   pipe2(fds, O_EXCL|...)  makes an anonymous queue on the mount (two descriptors,
 *                           read end and write end) instead of ENOPKG;
 *   ioctl(fd, IOC_WATCH_QUEUE_SET_FILTER, f)  becomes WQFS_IOC_SET_FILTER on a
 *                           wqfs file (the kernel's command carries no size, so
 *                           FUSE could not bring the struct to the server);
 *   ioctl(fd, FIONREAD, n)  refreshes the file's size first (fstat), since the VFS
 *                           answers FIONREAD on a regular file from its cached size;
 *   syscall(SYS_keyctl, ...) and libkeyutils' keyctl(...): KEYCTL_WATCH_KEY checked
 *                           in the kernel's order and sent as WQFS_IOC_WATCH_KEY;
 *                           KEYCTL_CAPABILITIES reports notifications.
 * Everything else goes to the real function untouched. The real functions come
 * from dlsym(RTLD_NEXT); inside this file they are only ever called through those
 * pointers, since a plain call to ioctl or syscall here would bind to ourselves.
 *
 * A queue is recognised from its descriptor alone (its device is a fuse.wqfs
 * mount's), never from state kept here: queues pass between processes by fork,
 * exec and descriptor passing (keyutils' watch_add gets one as a number). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "wqfs/compat.h"
#include "wqfs_compat_shim.h"

/* The kernel's numbers (linux/watch_queue.h, linux/keyctl.h), kept here rather than
 * included (IOC_WATCH_QUEUE_SET_SIZE, 0x5760, needs nothing: FUSE passes its count
 * by value): <linux/watch_queue.h> clashes with <fcntl.h>, and libkeyutils' header
 * declares keyctl with a prototype of its own. */
#define SHIM_SET_FILTER 0x5761UL     /* _IO('W', 0x61), the struct by pointer */
#define SHIM_NOTIFICATION_PIPE O_EXCL
#define SHIM_KEYCTL_GET_KEYRING_ID 0
#define SHIM_KEYCTL_DESCRIBE 6
#define SHIM_KEYCTL_WATCH_KEY 32
#define SHIM_KEYCTL_CAPABILITIES 31
#define SHIM_CAPS1_NOTIFICATIONS 0x04

typedef int (*pipe2_fn)(int *, int);
typedef int (*ioctl_fn)(int, unsigned long, ...);
typedef long (*syscall_fn)(long, ...);
typedef long (*keyctl_fn)(int, ...);

/* The next definition of `name` after this library, looked up once; dlsym is
 * thread-safe and every thread finds the same pointer, so a race only repeats it. */
static void *real(const char *name, void **slot) {
    void *found = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (!found) {
        found = dlsym(RTLD_NEXT, name);
        __atomic_store_n(slot, found, __ATOMIC_RELEASE);
    }
    return found;
}

static void *pipe2_slot, *ioctl_slot, *syscall_slot, *keyctl_slot;
#define REAL(type, name) ((type)real(#name, &name##_slot))

/* ---- which devices are wqfs mounts ------------------------------------------ */

/* Devices seen to be fuse.wqfs. Only positive answers are kept: a descriptor on
 * the device pins its mount, so the answer holds while anyone asks with one; a
 * negative answer could be a mount made since, and is cheap to ask again (it is
 * only asked on error paths and for the kernel's own ioctls on other files). */
#define SHIM_KNOWN_DEVICES 16
static struct {
    pthread_mutex_t lock;
    dev_t devices[SHIM_KNOWN_DEVICES];
    int count, next;
} known = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Undoes mountinfo's octal escapes (\040 for a space and friends) in place. */
static void unescape(char *text) {
    char *out = text;
    for (char *in = text; *in; in++) {
        if (in[0] == '\\' && in[1] >= '0' && in[1] <= '7' && in[2] >= '0' && in[2] <= '7' && in[3] >= '0' && in[3] <= '7') {
            *out++ = (char)((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
            in += 3;
        } else {
            *out++ = *in;
        }
    }
    *out = 0;
}

/* Walks /proc/self/mountinfo for fuse.wqfs mounts. With `device` non-zero: true
 * when it is one's. With `first` given: copies the first one's mount point there. */
static int scan_mounts(dev_t device, char *first, size_t size) {
    FILE *table = fopen("/proc/self/mountinfo", "re");
    if (!table) return 0;
    char *line = NULL;
    size_t capacity = 0;
    int found = 0;
    while (!found && getline(&line, &capacity, table) > 0) {
        /* ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER */
        char *separator = strstr(line, " - ");
        if (!separator || strncmp(separator + 3, "fuse.wqfs ", 10) != 0) continue;
        unsigned major_number, minor_number;
        char point[PATH_MAX];
        if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &major_number, &minor_number, point) != 3) continue;
        if (device && makedev(major_number, minor_number) == device) found = 1;
        if (first) {
            unescape(point);
            snprintf(first, size, "%s", point);
            found = 1;
        }
    }
    free(line);
    fclose(table);
    return found;
}

static int is_wqfs_device(dev_t device) {
    pthread_mutex_lock(&known.lock);
    for (int i = 0; i < known.count; i++) {
        if (known.devices[i] == device) {
            pthread_mutex_unlock(&known.lock);
            return 1;
        }
    }
    pthread_mutex_unlock(&known.lock);
    if (!scan_mounts(device, NULL, 0)) return 0;
    pthread_mutex_lock(&known.lock);
    known.devices[known.next] = device;
    known.next = (known.next + 1) % SHIM_KNOWN_DEVICES;
    if (known.count < SHIM_KNOWN_DEVICES) known.count++;
    pthread_mutex_unlock(&known.lock);
    return 1;
}

/* True when `fd` is a regular file on a wqfs mount: a queue file, or a companion
 * file, which answers the server's ioctls with ENOTTY as the kernel answers them on
 * a file that is no pipe. errno is left as it was. */
static int is_wqfs_file(int fd) {
    int saved = errno;
    struct stat st;
    int yes = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && is_wqfs_device(st.st_dev);
    errno = saved;
    return yes;
}

/* The mount to make queues on: $WQFS_MOUNT if it is a wqfs mount's root, else the
 * first fuse.wqfs mount. 0 when there is none. */
static int find_mount(char *path, size_t size) {
    const char *named = getenv(WQFS_COMPAT_MOUNT_VARIABLE);
    if (named && *named) {
        struct stat st;
        if (stat(named, &st) != 0 || !S_ISDIR(st.st_mode) || !is_wqfs_device(st.st_dev)) return 0;
        snprintf(path, size, "%s", named);
        return 1;
    }
    return scan_mounts(0, path, size);
}

/* ---- pipe2 ----------------------------------------------------------------- */

static unsigned long queue_counter;

/* An anonymous queue as pipe2(O_NOTIFICATION_PIPE) makes one: a queue file with a
 * name of its own, opened for reading and for writing, then made anonymous, which
 * frees the name at once. The queue then lives exactly as long as a descriptor on
 * it, wherever it went. */
static int notification_pipe(int fds[2], int flags) {
    int saved = errno;
    if (flags & ~(O_CLOEXEC | O_NONBLOCK | O_DIRECT | SHIM_NOTIFICATION_PIPE)) {
        errno = EINVAL;
        return -1;
    }
    char mount[PATH_MAX];
    if (!find_mount(mount, sizeof mount)) {
        /* What the kernel says when it has no watch queues. */
        errno = ENOPKG;
        return -1;
    }
    int open_flags = flags & (O_CLOEXEC | O_NONBLOCK);
    char path[PATH_MAX + 64];
    int reader = -1;
    for (int attempt = 0; attempt < 100 && reader < 0; attempt++) {
        unsigned long number = __atomic_add_fetch(&queue_counter, 1, __ATOMIC_RELAXED);
        snprintf(path, sizeof path, "%s/queues/anon-%ld-%lu", mount, (long)getpid(), number);
        reader = open(path, O_RDONLY | O_CREAT | O_EXCL | open_flags, 0600);
        if (reader < 0 && errno != EEXIST) return -1;
    }
    if (reader < 0) return -1;
    int writer = open(path, O_WRONLY | open_flags);
    if (writer < 0 || REAL(ioctl_fn, ioctl)(reader, WQFS_IOC_ANONYMOUS) < 0) {
        int failure = errno;
        if (writer >= 0) close(writer);
        close(reader);
        unlink(path);
        errno = failure;
        return -1;
    }
    fds[0] = reader;
    fds[1] = writer;
    errno = saved;
    return 0;
}

int pipe2(int fds[2], int flags) {
    if (flags & SHIM_NOTIFICATION_PIPE) return notification_pipe(fds, flags);
    return REAL(pipe2_fn, pipe2)(fds, flags);
}

/* ---- ioctl ----------------------------------------------------------------- */

/* IOC_WATCH_QUEUE_SET_FILTER → WQFS_IOC_SET_FILTER: the kernel's struct copied
 * whole into the fixed-size request (its 16-entry bound checked here, since only
 * that many fit; the server checks the rest in the kernel's order). NULL removes
 * the filter: nr_filters 0 in the request. */
static int set_filter(int fd, const void *argument) {
    struct wqfs_filter_request request;
    memset(&request, 0, sizeof request);
    if (argument) {
        uint32_t header[2];
        memcpy(header, argument, sizeof header);
        if (header[0] == 0 || header[0] > 16) {
            errno = EINVAL;
            return -1;
        }
        request.nr_filters = header[0];
        request.__reserved = header[1];
        memcpy(request.filters, (const char *)argument + sizeof header, header[0] * sizeof request.filters[0]);
    }
    return REAL(ioctl_fn, ioctl)(fd, WQFS_IOC_SET_FILTER, &request);
}

int ioctl(int fd, unsigned long request, ...) {
    va_list arguments;
    va_start(arguments, request);
    void *argument = va_arg(arguments, void *);
    va_end(arguments);
    if (request == SHIM_SET_FILTER && is_wqfs_file(fd)) return set_filter(fd, argument);
    if (request == FIONREAD && argument) {
        /* The VFS answers from the size it has cached minus the file position; on
         * wqfs a queue file's size is its queued bytes, but each read moves the
         * position on (after a 16-byte read the VFS says -16). So on a wqfs file
         * the answer is a fresh size, alone; elsewhere the kernel's. */
        int saved = errno;
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && is_wqfs_device(st.st_dev)) {
            *(int *)argument = st.st_size > INT_MAX ? INT_MAX : (int)st.st_size;
            errno = saved;
            return 0;
        }
        errno = saved;
    }
    return REAL(ioctl_fn, ioctl)(fd, request, argument);
}

/* ---- keyctl ---------------------------------------------------------------- */

static long raw_keyctl(long command, long a, long b, long c, long d) {
    return REAL(syscall_fn, syscall)(SYS_keyctl, command, a, b, c, d);
}

/* KEYCTL_WATCH_KEY, with the kernel's checks in the kernel's order: the watch id;
 * the key in the caller's credentials (special ids resolved as the kernel's lookup
 * with KEY_LOOKUP_CREATE does, View permission checked by describing it, whose
 * errno is the kernel's: ENOKEY, EKEYREVOKED, EKEYEXPIRED, EACCES); the
 * descriptor (not a wqfs file, or not open: EINVAL, as the kernel's
 * get_watch_queue); then the server's answer. */
static long watch_key(long key, long fd, long watch_id) {
    int saved = errno;
    int32_t serial = (int32_t)key;
    if ((int32_t)watch_id < -1 || (int32_t)watch_id > 255) {
        errno = EINVAL;
        return -1;
    }
    if (serial == 0) {
        errno = EINVAL;
        return -1;
    }
    if (serial < 0) {
        /* GET_KEYRING_ID needs Search on a real key, which watching does not, so
         * only the special ids go through it. */
        long resolved = raw_keyctl(SHIM_KEYCTL_GET_KEYRING_ID, serial, 1, 0, 0);
        if (resolved < 0) return -1;
        serial = (int32_t)resolved;
    }
    if (raw_keyctl(SHIM_KEYCTL_DESCRIBE, serial, 0, 0, 0) < 0) return -1;
    if ((int)fd < 0 || !is_wqfs_file((int)fd)) {
        errno = EINVAL;
        return -1;
    }
    struct wqfs_watch_key_request request = { .serial = serial, .watch_id = (int32_t)watch_id };
    if (REAL(ioctl_fn, ioctl)((int)fd, WQFS_IOC_WATCH_KEY, &request) < 0) return -1;
    errno = saved;
    return 0;
}

/* KEYCTL_CAPABILITIES: the kernel's bytes, with notifications (byte 1, 0x04)
 * reported, since wqfs delivers them. */
static long capabilities(long buffer, long length) {
    long result = raw_keyctl(SHIM_KEYCTL_CAPABILITIES, buffer, length, 0, 0);
    if (result >= 2 && buffer && length >= 2) ((unsigned char *)buffer)[1] |= SHIM_CAPS1_NOTIFICATIONS;
    return result;
}

/* Both entry points read more variadic arguments than a given call may pass: on
 * this ABI that reads registers or stack the caller left alone, as glibc's own
 * syscall() does, and the extra values go unused by the real function. */
long syscall(long number, ...) {
    va_list arguments;
    va_start(arguments, number);
    long a = va_arg(arguments, long), b = va_arg(arguments, long), c = va_arg(arguments, long);
    long d = va_arg(arguments, long), e = va_arg(arguments, long), f = va_arg(arguments, long);
    va_end(arguments);
    if (number == SYS_keyctl && (int)a == SHIM_KEYCTL_WATCH_KEY) return watch_key(b, c, d);
    if (number == SYS_keyctl && (int)a == SHIM_KEYCTL_CAPABILITIES) return capabilities(b, c);
    return REAL(syscall_fn, syscall)(number, a, b, c, d, e, f);
}

long keyctl(int command, ...) {
    va_list arguments;
    va_start(arguments, command);
    long a = va_arg(arguments, long), b = va_arg(arguments, long);
    long c = va_arg(arguments, long), d = va_arg(arguments, long);
    va_end(arguments);
    if (command == SHIM_KEYCTL_WATCH_KEY) return watch_key(a, b, c);
    if (command == SHIM_KEYCTL_CAPABILITIES) return capabilities(a, b);
    keyctl_fn next = REAL(keyctl_fn, keyctl);
    /* Without libkeyutils behind us (a program defining no keyctl of its own
     * cannot call this one, but be safe), the system call is what it would do. */
    if (!next) return raw_keyctl(command, a, b, c, d);
    return next(command, a, b, c, d);
}
