/*
 * codec.c - the byte codec under placement commands and records: a growable
 * little-endian writer with a sticky out-of-memory error, a bounded reader
 * for untrusted bytes that never reads past its end, CRC32C, and the
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

/* -------------------------------------------------------------- crc32c */

/* Reflected polynomial 0x82F63B78, one table lookup per byte. */
static const uint32_t crc32c_table[256] = {
    0x00000000u, 0xf26b8303u, 0xe13b70f7u, 0x1350f3f4u, 0xc79a971fu,
    0x35f1141cu, 0x26a1e7e8u, 0xd4ca64ebu, 0x8ad958cfu, 0x78b2dbccu,
    0x6be22838u, 0x9989ab3bu, 0x4d43cfd0u, 0xbf284cd3u, 0xac78bf27u,
    0x5e133c24u, 0x105ec76fu, 0xe235446cu, 0xf165b798u, 0x030e349bu,
    0xd7c45070u, 0x25afd373u, 0x36ff2087u, 0xc494a384u, 0x9a879fa0u,
    0x68ec1ca3u, 0x7bbcef57u, 0x89d76c54u, 0x5d1d08bfu, 0xaf768bbcu,
    0xbc267848u, 0x4e4dfb4bu, 0x20bd8edeu, 0xd2d60dddu, 0xc186fe29u,
    0x33ed7d2au, 0xe72719c1u, 0x154c9ac2u, 0x061c6936u, 0xf477ea35u,
    0xaa64d611u, 0x580f5512u, 0x4b5fa6e6u, 0xb93425e5u, 0x6dfe410eu,
    0x9f95c20du, 0x8cc531f9u, 0x7eaeb2fau, 0x30e349b1u, 0xc288cab2u,
    0xd1d83946u, 0x23b3ba45u, 0xf779deaeu, 0x05125dadu, 0x1642ae59u,
    0xe4292d5au, 0xba3a117eu, 0x4851927du, 0x5b016189u, 0xa96ae28au,
    0x7da08661u, 0x8fcb0562u, 0x9c9bf696u, 0x6ef07595u, 0x417b1dbcu,
    0xb3109ebfu, 0xa0406d4bu, 0x522bee48u, 0x86e18aa3u, 0x748a09a0u,
    0x67dafa54u, 0x95b17957u, 0xcba24573u, 0x39c9c670u, 0x2a993584u,
    0xd8f2b687u, 0x0c38d26cu, 0xfe53516fu, 0xed03a29bu, 0x1f682198u,
    0x5125dad3u, 0xa34e59d0u, 0xb01eaa24u, 0x42752927u, 0x96bf4dccu,
    0x64d4cecfu, 0x77843d3bu, 0x85efbe38u, 0xdbfc821cu, 0x2997011fu,
    0x3ac7f2ebu, 0xc8ac71e8u, 0x1c661503u, 0xee0d9600u, 0xfd5d65f4u,
    0x0f36e6f7u, 0x61c69362u, 0x93ad1061u, 0x80fde395u, 0x72966096u,
    0xa65c047du, 0x5437877eu, 0x4767748au, 0xb50cf789u, 0xeb1fcbadu,
    0x197448aeu, 0x0a24bb5au, 0xf84f3859u, 0x2c855cb2u, 0xdeeedfb1u,
    0xcdbe2c45u, 0x3fd5af46u, 0x7198540du, 0x83f3d70eu, 0x90a324fau,
    0x62c8a7f9u, 0xb602c312u, 0x44694011u, 0x5739b3e5u, 0xa55230e6u,
    0xfb410cc2u, 0x092a8fc1u, 0x1a7a7c35u, 0xe811ff36u, 0x3cdb9bddu,
    0xceb018deu, 0xdde0eb2au, 0x2f8b6829u, 0x82f63b78u, 0x709db87bu,
    0x63cd4b8fu, 0x91a6c88cu, 0x456cac67u, 0xb7072f64u, 0xa457dc90u,
    0x563c5f93u, 0x082f63b7u, 0xfa44e0b4u, 0xe9141340u, 0x1b7f9043u,
    0xcfb5f4a8u, 0x3dde77abu, 0x2e8e845fu, 0xdce5075cu, 0x92a8fc17u,
    0x60c37f14u, 0x73938ce0u, 0x81f80fe3u, 0x55326b08u, 0xa759e80bu,
    0xb4091bffu, 0x466298fcu, 0x1871a4d8u, 0xea1a27dbu, 0xf94ad42fu,
    0x0b21572cu, 0xdfeb33c7u, 0x2d80b0c4u, 0x3ed04330u, 0xccbbc033u,
    0xa24bb5a6u, 0x502036a5u, 0x4370c551u, 0xb11b4652u, 0x65d122b9u,
    0x97baa1bau, 0x84ea524eu, 0x7681d14du, 0x2892ed69u, 0xdaf96e6au,
    0xc9a99d9eu, 0x3bc21e9du, 0xef087a76u, 0x1d63f975u, 0x0e330a81u,
    0xfc588982u, 0xb21572c9u, 0x407ef1cau, 0x532e023eu, 0xa145813du,
    0x758fe5d6u, 0x87e466d5u, 0x94b49521u, 0x66df1622u, 0x38cc2a06u,
    0xcaa7a905u, 0xd9f75af1u, 0x2b9cd9f2u, 0xff56bd19u, 0x0d3d3e1au,
    0x1e6dcdeeu, 0xec064eedu, 0xc38d26c4u, 0x31e6a5c7u, 0x22b65633u,
    0xd0ddd530u, 0x0417b1dbu, 0xf67c32d8u, 0xe52cc12cu, 0x1747422fu,
    0x49547e0bu, 0xbb3ffd08u, 0xa86f0efcu, 0x5a048dffu, 0x8ecee914u,
    0x7ca56a17u, 0x6ff599e3u, 0x9d9e1ae0u, 0xd3d3e1abu, 0x21b862a8u,
    0x32e8915cu, 0xc083125fu, 0x144976b4u, 0xe622f5b7u, 0xf5720643u,
    0x07198540u, 0x590ab964u, 0xab613a67u, 0xb831c993u, 0x4a5a4a90u,
    0x9e902e7bu, 0x6cfbad78u, 0x7fab5e8cu, 0x8dc0dd8fu, 0xe330a81au,
    0x115b2b19u, 0x020bd8edu, 0xf0605beeu, 0x24aa3f05u, 0xd6c1bc06u,
    0xc5914ff2u, 0x37faccf1u, 0x69e9f0d5u, 0x9b8273d6u, 0x88d28022u,
    0x7ab90321u, 0xae7367cau, 0x5c18e4c9u, 0x4f48173du, 0xbd23943eu,
    0xf36e6f75u, 0x0105ec76u, 0x12551f82u, 0xe03e9c81u, 0x34f4f86au,
    0xc69f7b69u, 0xd5cf889du, 0x27a40b9eu, 0x79b737bau, 0x8bdcb4b9u,
    0x988c474du, 0x6ae7c44eu, 0xbe2da0a5u, 0x4c4623a6u, 0x5f16d052u,
    0xad7d5351u};

uint32_t bs_pd__crc32c(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *s = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = crc32c_table[(crc ^ s[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
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
