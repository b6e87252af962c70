/*
 * codec.c - the byte codec under placement commands and records: a growable
 * little-endian writer with a sticky out-of-memory error, a bounded reader
 * for untrusted bytes that never reads past its end (checksums are the
 * engine's bs_eng_crc32c), and the
 * encodings of node info and replica sets that both formats share.
 *
 * Fixed-width little-endian integers keep the format obvious and the
 * decoder trivial; placement records are small and few (one per node and
 * per shard), so varints would save little.
 */
#include <stdlib.h>
#include <string.h>

#include "placement_int.h"

/* ------------------------------------------------------------- writer */

static bool buf_grow(struct bs_pd_buf *b, size_t n)
{
    if (b->err)
        return false;
    if (n > SIZE_MAX - b->len) {
        b->err = BS_ENOMEM;
        return false;
    }
    if (b->len + n <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n)
        cap = cap > SIZE_MAX / 2 ? b->len + n : cap * 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        b->err = BS_ENOMEM;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void bs_pd__buf_bytes(struct bs_pd_buf *b, const void *p, size_t n)
{
    if (n == 0 || !buf_grow(b, n))
        return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void put_le(struct bs_pd_buf *b, uint64_t v, int width)
{
    uint8_t tmp[8];
    for (int i = 0; i < width; i++)
        tmp[i] = (uint8_t)(v >> (8 * i));
    bs_pd__buf_bytes(b, tmp, (size_t)width);
}

void bs_pd__buf_u8(struct bs_pd_buf *b, uint8_t v)
{
    put_le(b, v, 1);
}

void bs_pd__buf_u16(struct bs_pd_buf *b, uint16_t v)
{
    put_le(b, v, 2);
}

void bs_pd__buf_u32(struct bs_pd_buf *b, uint32_t v)
{
    put_le(b, v, 4);
}

void bs_pd__buf_u64(struct bs_pd_buf *b, uint64_t v)
{
    put_le(b, v, 8);
}

void bs_pd__buf_blob(struct bs_pd_buf *b, const void *p, size_t n)
{
    /* Callers bound n (keys <= BS_PD_MAX_KEY_LEN). */
    bs_pd__buf_u32(b, (uint32_t)n);
    bs_pd__buf_bytes(b, p, n);
}

void bs_pd__buf_str(struct bs_pd_buf *b, const char *s)
{
    size_t n = strlen(s);
    bs_pd__buf_u16(b, (uint16_t)n);
    bs_pd__buf_bytes(b, s, n);
}

/* ------------------------------------------------------------- reader */

const uint8_t *bs_pd__rd_bytes(struct bs_pd_rd *r, size_t n)
{
    if (r->bad || n > r->len - r->off) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

static uint64_t get_le(struct bs_pd_rd *r, int width)
{
    const uint8_t *p = bs_pd__rd_bytes(r, (size_t)width);
    uint64_t v = 0;
    if (!p)
        return 0;
    for (int i = 0; i < width; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

uint8_t bs_pd__rd_u8(struct bs_pd_rd *r)
{
    return (uint8_t)get_le(r, 1);
}

uint16_t bs_pd__rd_u16(struct bs_pd_rd *r)
{
    return (uint16_t)get_le(r, 2);
}

uint32_t bs_pd__rd_u32(struct bs_pd_rd *r)
{
    return (uint32_t)get_le(r, 4);
}

uint64_t bs_pd__rd_u64(struct bs_pd_rd *r)
{
    return get_le(r, 8);
}

const uint8_t *bs_pd__rd_blob(struct bs_pd_rd *r, size_t max, size_t *n)
{
    uint32_t len = bs_pd__rd_u32(r);
    *n = 0;
    if (r->bad || len > max) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = bs_pd__rd_bytes(r, len);
    if (p)
        *n = len;
    return p;
}

void bs_pd__rd_str(struct bs_pd_rd *r, char *dst, size_t max)
{
    uint16_t len = bs_pd__rd_u16(r);
    dst[0] = '\0';
    if (r->bad || len > max) {
        r->bad = true;
        return;
    }
    const uint8_t *p = bs_pd__rd_bytes(r, len);
    if (!p)
        return;
    if (memchr(p, '\0', len)) {
        r->bad = true;
        return;
    }
    memcpy(dst, p, len);
    dst[len] = '\0';
}

/* ---------------------------------------------- shared sub-encodings */

static bool str_fits(const char *s, size_t max)
{
    return memchr(s, '\0', max + 1) != NULL;
}

bool bs_pd__node_info_encodable(const struct bs_pd_node_info *ni)
{
    if (!str_fits(ni->client_addr, BS_PD_ADDR_MAX) ||
        !str_fits(ni->peer_addr, BS_PD_ADDR_MAX) ||
        !str_fits(ni->http_addr, BS_PD_ADDR_MAX) ||
        ni->n_labels > BS_PD_MAX_LABELS)
        return false;
    for (uint32_t i = 0; i < ni->n_labels; i++)
        if (!str_fits(ni->labels[i].key, BS_PD_LABEL_KEY_MAX) ||
            !str_fits(ni->labels[i].value, BS_PD_LABEL_VAL_MAX))
            return false;
    return true;
}

/* id u64, client / peer / http address (str), label count u8, labels
 * (key str, value str). */
void bs_pd__put_node_info(struct bs_pd_buf *b, const struct bs_pd_node_info *ni)
{
    bs_pd__buf_u64(b, ni->id);
    bs_pd__buf_str(b, ni->client_addr);
    bs_pd__buf_str(b, ni->peer_addr);
    bs_pd__buf_str(b, ni->http_addr);
    bs_pd__buf_u8(b, (uint8_t)ni->n_labels);
    for (uint32_t i = 0; i < ni->n_labels; i++) {
        bs_pd__buf_str(b, ni->labels[i].key);
        bs_pd__buf_str(b, ni->labels[i].value);
    }
}

void bs_pd__get_node_info(struct bs_pd_rd *r, struct bs_pd_node_info *ni)
{
    memset(ni, 0, sizeof(*ni));
    ni->id = bs_pd__rd_u64(r);
    bs_pd__rd_str(r, ni->client_addr, BS_PD_ADDR_MAX);
    bs_pd__rd_str(r, ni->peer_addr, BS_PD_ADDR_MAX);
    bs_pd__rd_str(r, ni->http_addr, BS_PD_ADDR_MAX);
    uint8_t n = bs_pd__rd_u8(r);
    if (n > BS_PD_MAX_LABELS) {
        r->bad = true;
        return;
    }
    ni->n_labels = n;
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        bs_pd__rd_str(r, ni->labels[i].key, BS_PD_LABEL_KEY_MAX);
        bs_pd__rd_str(r, ni->labels[i].value, BS_PD_LABEL_VAL_MAX);
    }
}

/* count u8, then per replica: id u64, node id u64, role u8. */
void bs_pd__put_replicas(struct bs_pd_buf *b, const struct bs_pd_replica *reps,
                         uint32_t n)
{
    bs_pd__buf_u8(b, (uint8_t)n);
    for (uint32_t i = 0; i < n; i++) {
        bs_pd__buf_u64(b, reps[i].id);
        bs_pd__buf_u64(b, reps[i].node_id);
        bs_pd__buf_u8(b, reps[i].role);
    }
}

void bs_pd__get_replicas(struct bs_pd_rd *r, struct bs_pd_replica *reps,
                         uint32_t *n)
{
    uint8_t cnt = bs_pd__rd_u8(r);
    *n = 0;
    if (cnt > BS_RAFT_MAX_MEMBERS) {
        r->bad = true;
        return;
    }
    for (uint32_t i = 0; i < cnt && !r->bad; i++) {
        reps[i].id = bs_pd__rd_u64(r);
        reps[i].node_id = bs_pd__rd_u64(r);
        reps[i].role = bs_pd__rd_u8(r);
    }
    if (!r->bad)
        *n = cnt;
}
