/* The record the BPF key observer (Sources/KeyObserverBPF/keys.bpf.c) writes into its
 * ring buffer for each key-changing system call that succeeded, and that the Swift
 * decoder (Sources/KeyObserver) reads. Included by the BPF program too, so it uses
 * only <linux/types.h>: glibc's <stdint.h> cannot be compiled for the bpf target.
 *
 * Two sizes: keyctl events stop before `type` (96 bytes); add_key and request_key
 * events carry the two strings (384 bytes). `size` says which. All fields are in the
 * machine's byte order (little-endian here) and naturally aligned. */
#ifndef WQFS_KEY_EVENT_H
#define WQFS_KEY_EVENT_H

#include <linux/types.h>

/* Which system call (`syscall`). */
#define WQ_KEY_SYSCALL_KEYCTL      1
#define WQ_KEY_SYSCALL_ADD_KEY     2
#define WQ_KEY_SYSCALL_REQUEST_KEY 3

/* Bytes kept of a key type (the kernel refuses names of 32 bytes or more, so a type
 * always fits) and of a description (the kernel allows up to 4095: longer ones are
 * cut, and `description_length` is then WQ_KEY_EVENT_DESCRIPTION). */
#define WQ_KEY_EVENT_TYPE        32
#define WQ_KEY_EVENT_DESCRIPTION 256

struct wq_key_event {
    __u64 time;              /*  0: bpf_ktime_get_ns() at the exit (CLOCK_MONOTONIC) */
    __u64 args[5];           /*  8: the raw arguments: keyctl's option, arg2..arg5;
                                    add_key's type, description, payload, plen, ringid;
                                    request_key's type, description, callout, destringid */
    __s64 result;            /* 48: what the call returned (≥ 0: only successes are sent) */
    __u32 size;              /* 56: the bytes of this event: 96 or 384 */
    __u16 syscall;           /* 60: WQ_KEY_SYSCALL_* */
    __u16 reserved;          /* 62: 0 */
    __s32 pid;               /* 64: the calling thread (the kernel's pid) */
    __s32 tgid;              /* 68: its process (the kernel's tgid) */
    __u32 uid;               /* 72: the caller's real uid, as the initial namespace sees it */
    __u32 gid;               /* 76: its real gid */
    __s32 thread_keyring;    /* 80: serial of the caller's thread keyring after the call, 0 if none */
    __s32 process_keyring;   /* 84: …process keyring */
    __s32 session_keyring;   /* 88: …session keyring (0: the user-session keyring stands in) */
    __s16 type_length;       /* 92: bytes read into `type`, its NUL included; < 0 a fault */
    __s16 description_length;/* 94: the same for `description` */
    /* Only in add_key and request_key events: */
    char type[WQ_KEY_EVENT_TYPE];               /*  96 */
    char description[WQ_KEY_EVENT_DESCRIPTION]; /* 128 */
};

#define WQ_KEY_EVENT_SHORT_SIZE 96   /* keyctl: up to, not including, `type` */
#define WQ_KEY_EVENT_FULL_SIZE  384  /* add_key, request_key */

#endif
