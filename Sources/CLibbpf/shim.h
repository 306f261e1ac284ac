/* CLibbpf: libbpf (Debian's libbpf-dev, found through pkg-config `libbpf`), for the
 * key observer's loader (Sources/CKeyObserver). Only the C loader calls it; the
 * module exists so that SwiftPM takes libbpf's compiler and linker flags from
 * pkg-config and links it into whatever uses the observer. */
#ifndef WQFS_CLIBBPF_SHIM_H
#define WQFS_CLIBBPF_SHIM_H
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#endif
