/*
 * shard_int.h - private helpers shared by the files of shard/: the wire
 * primitives (varints, byte strings), the value record stored
 * under each user key, the apply state codec, the overlay of staged
 * writes and the merged (db + overlay) view that apply reads through, and
 * the command checks. Nothing outside shard/ includes this.
 */
#ifndef BS_SHARD_SHARD_INT_H
#define BS_SHARD_SHARD_INT_H

#include <stdarg.h>

#include "shard.h"

/* ------------------------------------------------------------ wire */

/* Growable output buffer. The first allocation failure sets err
 * (BS_ENOMEM) and makes every later write a no-op. */
struct bs_shard__w {
    uint8_t *p;
    size_t len;
    size_t cap;
    int err;
};

void bs_shard__w_raw(struct bs_shard__w *w, const void *p, size_t n);
void bs_shard__w_u8(struct bs_shard__w *w, uint8_t v);
void bs_shard__w_uvar(struct bs_shard__w *w, uint64_t v);
void bs_shard__w_svar(struct bs_shard__w *w, int64_t v); /* zigzag */
void bs_shard__w_bytes(struct bs_shard__w *w, const void *p, size_t n);

/* Bounded input cursor. The first malformed read sets err (BS_ECORRUPT)
 * and makes every later read return zero values. */
struct bs_shard__r {
    const uint8_t *p;
    size_t len;
    size_t off;
    int err;
};

uint8_t bs_shard__r_u8(struct bs_shard__r *r);
bool bs_shard__r_bool(struct bs_shard__r *r); /* 0 or 1, else corrupt */
uint64_t bs_shard__r_uvar(struct bs_shard__r *r);
int64_t bs_shard__r_svar(struct bs_shard__r *r);
/* A non-negative int64 stored as a uvarint (revisions, versions). */
int64_t bs_shard__r_nonneg(struct bs_shard__r *r);
/* A length-prefixed byte string; *p points into the input (NULL if 0). */
void bs_shard__r_bytes(struct bs_shard__r *r, const uint8_t **p, size_t *n);
/* A count of items each at least min_item bytes long: bounded by what is
 * left, so that garbage never makes us allocate much. */
size_t bs_shard__r_count(struct bs_shard__r *r, size_t min_item);
size_t bs_shard__r_left(const struct bs_shard__r *r);


/* Lexicographic byte-string comparison (shorter prefix first). */
int bs_shard__cmp(const void *a, size_t alen, const void *b, size_t blen);

/* Writes key into buf (cap >= 4) escaped for messages: printable ASCII
 * as is (with \" and \\), other bytes as \xHH, cut at 32 bytes with
 * "...". Returns buf. */
char *bs_shard__fmt_key(char *buf, size_t cap, const uint8_t *key, size_t len);
/* "shard 7 range [\"a\", \"m\") epoch conf_ver=1 version=3" */
void bs_shard__fmt_shard(char *buf, size_t cap, const struct bs_shard_desc *d);
/* snprintf into errmsg (BS_SHARD_ERRMSG_LEN) if not NULL; returns err. */
int bs_shard__err(char *errmsg, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Descriptor codec (apply state, split responses). decode copies the
 * keys into d (owned); on error d holds nothing. */
void bs_shard__desc_encode(struct bs_shard__w *w,
                           const struct bs_shard_desc *d);
int bs_shard__desc_decode(struct bs_shard__r *r, struct bs_shard_desc *d);

/* ----------------------------------------------------------- records */

/* Value record of a user key (borrows value). */
struct bs_shard__rec {
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;
    const uint8_t *value;
    size_t value_len;
};

#define BS_SHARD__REC_FORMAT 1

void bs_shard__rec_encode(struct bs_shard__w *w,
                          const struct bs_shard__rec *rec);
/* 0 or BS_ECORRUPT; rec->value points into buf. */
int bs_shard__rec_decode(const uint8_t *buf, size_t len,
                         struct bs_shard__rec *rec);

/* Storage keys: 'z' . user key; the apply state under 0x00 "apply". */
#define BS_SHARD__DATA_PREFIX 'z'
extern const uint8_t bs_shard__state_key[6];
/* 'z' . key into *out (malloc'd): 0 or BS_ENOMEM. */
int bs_shard__data_key(const uint8_t *key, size_t len, uint8_t **out,
                       size_t *out_len);

/* ------------------------------------------------------- apply state */

/* The persisted state of one shard (its CF's apply state record). The
 * desc's keys are borrowed when encoding, owned after decoding. */
struct bs_shard__state {
    struct bs_shard_desc desc;
    int64_t revision;
    uint64_t applied_index;
    uint64_t applied_term;
    struct bs_raft_conf_state conf;
};

#define BS_SHARD__STATE_FORMAT 1

void bs_shard__state_encode(struct bs_shard__w *w,
                            const struct bs_shard__state *st);
/* 0, BS_ECORRUPT (errmsg says why) or BS_ENOMEM; on error st holds
 * nothing to free. */
int bs_shard__state_decode(const uint8_t *buf, size_t len,
                           struct bs_shard__state *st, char *errmsg);
/* Reads and decodes the apply state of CF id at snap: 0, BS_ENOTFOUND
 * (no CF or no state), BS_ECORRUPT, BS_EIO, BS_ENOMEM. */
int bs_shard__state_read(struct bs_eng_db *db, const struct bs_eng_snap *snap,
                         uint64_t id, struct bs_shard__state *st, char *errmsg);
/* Stages st into CF st->desc.id. */
int bs_shard__state_stage(struct bs_eng_db *db, struct bs_eng_wb *wb,
                          const struct bs_shard__state *st);

/* ----------------------------------------------------------- overlay */

/*
 * Writes staged by apply and not yet in the db, sorted by user key: the
 * latest record of each key, or a tombstone. A sorted array: apply mostly
 * writes few keys per batch, and deletes of a range insert in ascending
 * order, which appends.
 */
struct bs_shard__ov_ent {
    uint8_t *key; /* owned */
    size_t key_len;
    bool deleted;
    struct bs_shard__rec rec; /* rec.value owned */
};

struct bs_shard_overlay {
    struct bs_shard__ov_ent *v;
    size_t n;
    size_t cap;
};

/* Index of key if present (true), else where it would go (false). */
bool bs_shard__ov_find(const struct bs_shard_overlay *ov, const uint8_t *key,
                       size_t len, size_t *pos);
/* Records a put (rec copied) or, rec NULL, a delete. 0 or BS_ENOMEM. */
int bs_shard__ov_set(struct bs_shard_overlay *ov, const uint8_t *key,
                     size_t len, const struct bs_shard__rec *rec);
/* Forgets every entry with key >= from. */
void bs_shard__ov_drop_from(struct bs_shard_overlay *ov, const uint8_t *from,
                            size_t len);
void bs_shard__ov_clear(struct bs_shard_overlay *ov);

/* ------------------------------------------------------ merged view */

/*
 * A half-open interval of user keys. Built from etcd's (key, range_end):
 * single = one key; hi_inf = no upper bound; otherwise [lo, hi).
 */
struct bs_shard__ival {
    const uint8_t *lo;
    size_t lo_len;
    const uint8_t *hi;
    size_t hi_len;
    bool hi_inf;
    bool single;
};

void bs_shard__ival_make(struct bs_shard__ival *iv, const uint8_t *key,
                         size_t key_len, const uint8_t *range_end,
                         size_t range_end_len);
/* True if the key lies in the interval. */
bool bs_shard__ival_has(const struct bs_shard__ival *iv, const uint8_t *key,
                        size_t len);
/* True if the two intervals share a key. */
bool bs_shard__ival_overlap(const struct bs_shard__ival *a,
                            const struct bs_shard__ival *b);

/* What a read goes through: shard CF at snap, plus ov if not NULL. */
struct bs_shard__view {
    struct bs_eng_db *db;
    const struct bs_eng_snap *snap;
    uint64_t id;
    const struct bs_shard_overlay *ov;
};

/* Point read. 0 with *rec (valid until *hold is freed and the overlay
 * changes; free(*hold) after), BS_ENOTFOUND, BS_EIO, BS_ECORRUPT. */
int bs_shard__get(const struct bs_shard__view *v, const uint8_t *key,
                  size_t len, struct bs_shard__rec *rec, void **hold);

/* Scan callback: 0 to continue, 1 to stop, < 0 to fail with that code.
 * key and rec are borrowed for the call only. */
typedef int (*bs_shard__scan_cb)(void *ctx, const uint8_t *key, size_t len,
                                 const struct bs_shard__rec *rec);
/* Calls cb for every live key of iv in ascending order. 0 or the error. */
int bs_shard__scan(const struct bs_shard__view *v,
                   const struct bs_shard__ival *iv, bs_shard__scan_cb cb,
                   void *ctx);

/* ------------------------------------------------------ kv and range */

/* Copies key (and the record's value unless keys_only) into kv. */
int bs_shard__kv_set(struct bs_shard_kv *kv, const uint8_t *key, size_t len,
                     const struct bs_shard__rec *rec, bool keys_only);
void bs_shard__kv_free(struct bs_shard_kv *kv);
/* Appends to a growable kv array (*cap tracks capacity). */
int bs_shard__kvs_push(struct bs_shard_kv **kvs, size_t *n, size_t *cap,
                       const uint8_t *key, size_t len,
                       const struct bs_shard__rec *rec, bool keys_only);
void bs_shard__op_resp_free(struct bs_shard_op_resp *op);

/* Runs a (checked) Range through v into out. */
int bs_shard__do_range(const struct bs_shard__view *v,
                       const struct bs_shard_range_req *req,
                       struct bs_shard_op_resp *out);

/* ------------------------------------------------------------ checks */

/*
 * Everything a command must satisfy before it runs, in this order: the
 * epoch (BS_ESTALE), the format rules and limits (BS_EINVAL,
 * BS_ENOTIMPL), the key range (BS_ERANGE). d and revision are the shard's
 * current descriptor and revision.
 */
int bs_shard__check(const struct bs_shard_desc *d, int64_t revision,
                    const struct bs_shard_limits *l,
                    const struct bs_shard_cmd *cmd, char *errmsg);

/* ------------------------------------------------------------- split */

int bs_shard__apply_split(struct bs_shard *s, struct bs_eng_db *db,
                          struct bs_eng_wb *wb, uint64_t index, uint64_t term,
                          const struct bs_shard_split_req *req,
                          struct bs_shard_resp *resp);

#endif
