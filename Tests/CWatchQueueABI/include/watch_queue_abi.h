/* Records built with the kernel's own structs and macros from <linux/watch_queue.h>,
 * so tests compare wqfs's bytes with the ABI rather than with wqfs itself. */
#ifndef WQFS_WATCH_QUEUE_ABI_H
#define WQFS_WATCH_QUEUE_ABI_H

#include <stddef.h>
#include <stdint.h>

/* Each builder writes one record into out (at least 128 bytes) and returns its length. */
size_t wq_abi_header(uint8_t *out, uint32_t type, uint32_t subtype, uint32_t length,
                     uint32_t watch_id, uint32_t type_info);
size_t wq_abi_removal(uint8_t *out, uint32_t watch_id, uint64_t object_id);
size_t wq_abi_loss(uint8_t *out);
size_t wq_abi_key(uint8_t *out, uint32_t subtype, uint32_t watch_id, uint32_t key_id, uint32_t aux);
/* A filter entry as struct watch_notification_type_filter (44 bytes). */
size_t wq_abi_filter_entry(uint8_t *out, uint32_t type, uint32_t info_filter, uint32_t info_mask,
                           const uint32_t subtype_filter[8]);

/* The header's constants, for tests that check ours against them. */
uint32_t wq_abi_info_length_mask(void);
uint32_t wq_abi_info_id_mask(void);
uint32_t wq_abi_info_id_shift(void);
uint32_t wq_abi_info_type_info_mask(void);
uint32_t wq_abi_info_type_info_shift(void);
uint32_t wq_abi_ioc_set_size(void);
uint32_t wq_abi_ioc_set_filter(void);
size_t wq_abi_sizeof_removal(void);
size_t wq_abi_sizeof_key(void);
size_t wq_abi_sizeof_type_filter(void);

#endif
