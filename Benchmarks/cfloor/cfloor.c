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
 *   cfloor MOUNTPOINT [QUEUES]      (foreground; SIGTERM/SIGINT unmount and exit)
 *
 * Built by wqfs-bench at run time: cc -O2 cfloor.c $(pkg-config --cflags --libs fuse3)
 */
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

struct answer { fuse_req_t req; char *data; size_t len; };

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size, off_t off,
                     struct fuse_file_info *fi) {
    (void)off; (void)fi;
    if (inode_kind(ino) != 1) { fuse_reply_err(req, EBADF); return; }
    struct answer small[16], *answers = small;
    size_t nanswers = 0, capanswers = 16;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < nqueues; i++) {
        struct queue *q = &queues[i];
        append(q, data, size);
        while (q->parked && q->end > q->start) {
            struct parked *p = q->parked;
            q->parked = p->next;
            if (nanswers == capanswers) {
                capanswers *= 2;
                struct answer *more = malloc(capanswers * sizeof *more);
                memcpy(more, answers, nanswers * sizeof *more);
                if (answers != small) free(answers);
                answers = more;
            }
            answers[nanswers].req = p->req;
            answers[nanswers].data = take(q, p->size, &answers[nanswers].len);
            nanswers++;
            free(p);
        }
    }
    pthread_mutex_unlock(&lock);
    fuse_reply_write(req, size);
    for (size_t i = 0; i < nanswers; i++) {
        fuse_reply_buf(answers[i].req, answers[i].data, answers[i].len);
        free(answers[i].data);
    }
    if (answers != small) free(answers);
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
    if (argc < 2) {
        fprintf(stderr, "usage: cfloor MOUNTPOINT [QUEUES]\n");
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
