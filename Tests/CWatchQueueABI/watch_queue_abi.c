#include <string.h>
#include <linux/watch_queue.h>
#include "watch_queue_abi.h"

/* The header's bit-fields and macros do the packing: nothing here shifts by hand
 * except through WATCH_INFO_*__SHIFT. */
static void fill_header(struct watch_notification *n, uint32_t type, uint32_t subtype,
                        uint32_t length, uint32_t watch_id, uint32_t type_info)
{
	n->type = type;
	n->subtype = subtype;
	n->info = ((length << WATCH_INFO_LENGTH__SHIFT) & WATCH_INFO_LENGTH) |
		  ((watch_id << WATCH_INFO_ID__SHIFT) & WATCH_INFO_ID) |
		  ((type_info << WATCH_INFO_TYPE_INFO__SHIFT) & WATCH_INFO_TYPE_INFO);
}

size_t wq_abi_header(uint8_t *out, uint32_t type, uint32_t subtype, uint32_t length,
                     uint32_t watch_id, uint32_t type_info)
{
	struct watch_notification n;
	memset(&n, 0, sizeof(n));
	fill_header(&n, type, subtype, length, watch_id, type_info);
	memcpy(out, &n, sizeof(n));
	return sizeof(n);
}

size_t wq_abi_removal(uint8_t *out, uint32_t watch_id, uint64_t object_id)
{
	struct watch_notification_removal r;
	/* Like the kernel: the id is sent only when there is one. */
	size_t len = object_id ? sizeof(r) : sizeof(r.watch);
	memset(&r, 0, sizeof(r));
	fill_header(&r.watch, WATCH_TYPE_META, WATCH_META_REMOVAL_NOTIFICATION, len, watch_id, 0);
	r.id = object_id;
	memcpy(out, &r, len);
	return len;
}

size_t wq_abi_loss(uint8_t *out)
{
	struct watch_notification n;
	memset(&n, 0, sizeof(n));
	fill_header(&n, WATCH_TYPE_META, WATCH_META_LOSS_NOTIFICATION, sizeof(n), 0, 0);
	memcpy(out, &n, sizeof(n));
	return sizeof(n);
}

size_t wq_abi_key(uint8_t *out, uint32_t subtype, uint32_t watch_id, uint32_t key_id, uint32_t aux)
{
	struct key_notification k;
	memset(&k, 0, sizeof(k));
	fill_header(&k.watch, WATCH_TYPE_KEY_NOTIFY, subtype, sizeof(k), watch_id, 0);
	k.key_id = key_id;
	k.aux = aux;
	memcpy(out, &k, sizeof(k));
	return sizeof(k);
}

size_t wq_abi_filter_entry(uint8_t *out, uint32_t type, uint32_t info_filter, uint32_t info_mask,
                           const uint32_t subtype_filter[8])
{
	struct watch_notification_type_filter f;
	memset(&f, 0, sizeof(f));
	f.type = type;
	f.info_filter = info_filter;
	f.info_mask = info_mask;
	memcpy(f.subtype_filter, subtype_filter, sizeof(f.subtype_filter));
	memcpy(out, &f, sizeof(f));
	return sizeof(f);
}

uint32_t wq_abi_info_length_mask(void) { return WATCH_INFO_LENGTH; }
uint32_t wq_abi_info_id_mask(void) { return WATCH_INFO_ID; }
uint32_t wq_abi_info_id_shift(void) { return WATCH_INFO_ID__SHIFT; }
uint32_t wq_abi_info_type_info_mask(void) { return WATCH_INFO_TYPE_INFO; }
uint32_t wq_abi_info_type_info_shift(void) { return WATCH_INFO_TYPE_INFO__SHIFT; }
uint32_t wq_abi_ioc_set_size(void) { return IOC_WATCH_QUEUE_SET_SIZE; }
uint32_t wq_abi_ioc_set_filter(void) { return IOC_WATCH_QUEUE_SET_FILTER; }
size_t wq_abi_sizeof_removal(void) { return sizeof(struct watch_notification_removal); }
size_t wq_abi_sizeof_key(void) { return sizeof(struct key_notification); }
size_t wq_abi_sizeof_type_filter(void) { return sizeof(struct watch_notification_type_filter); }
