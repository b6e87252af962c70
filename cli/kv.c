/*
 * kv.c - `basalt kv`: put, get, delete and scan keys through the etcd v3
 * KV API of any node (the node routes the request to the shard's leader),
 * like a small etcdctl.
 *
 * One synchronous call per command over bs_rpc_conn (rpc/client.h, which
 * fails over between the --endpoints), with the etcd request and response
 * encoded by rpc/codec.h. Output follows etcdctl: a get prints each key
 * and its value on their own lines and nothing for a missing key (exit 0);
 * put prints OK; del prints the number of keys deleted. Keys and values
 * that are not printable UTF-8 are printed as 0x and hex. `-o json` prints
 * the response as one JSON object (cJSON) instead, with "key"/"value" for
 * text and "key_hex"/"value_hex" otherwise.
 */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "codec.h"
#include "opts.h"

#define DEFAULT_ENDPOINTS  "127.0.0.1:2379"
#define DEFAULT_TIMEOUT_MS 5000

enum {
    F_ENDPOINTS,
    F_OUTPUT,
    F_PREFIX,
    F_SERIALIZABLE,
    F_LIMIT,
    F_TIMEOUT,
    F_HELP,
    F_N,
};

static const struct bs_cli_flag flags[] = {
    [F_ENDPOINTS] = {"endpoints", 0, BS_CLI_ARG_REQUIRED},
    [F_OUTPUT] = {"output", 'o', BS_CLI_ARG_REQUIRED},
    [F_PREFIX] = {"prefix", 0, BS_CLI_ARG_NONE},
    [F_SERIALIZABLE] = {"serializable", 0, BS_CLI_ARG_NONE},
    [F_LIMIT] = {"limit", 0, BS_CLI_ARG_REQUIRED},
    [F_TIMEOUT] = {"timeout-ms", 0, BS_CLI_ARG_REQUIRED},
    [F_HELP] = {"help", 'h', BS_CLI_ARG_NONE},
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: basalt kv put KEY VALUE\n"
            "       basalt kv get KEY [--prefix] [--serializable] "
            "[--limit N]\n"
            "       basalt kv del KEY [--prefix]\n"
            "       basalt kv scan START [END] [--limit N]\n"
            "\n"
            "Reads and writes keys through the etcd v3 KV API of a Basalt\n"
            "(or etcd) cluster. get prints each key and its value on their\n"
            "own lines, nothing when the key is missing; scan lists the\n"
            "keys in [START, END) (every key >= START without END; an\n"
            "empty START is the lowest key). Keys and values that are not\n"
            "printable UTF-8 are printed as 0x and hex.\n"
            "\n"
            "flags:\n"
            "  --endpoints H:P,...  nodes to ask, tried in turn (default "
            "%s)\n"
            "  -o, --output FMT     text (default) or json\n"
            "  --prefix             get/del: every key starting with KEY\n"
            "  --serializable       get: read the local replica (may be "
            "stale)\n"
            "                       instead of a linearizable read\n"
            "  --limit N            get/scan: at most N keys (default 0: "
            "all)\n"
            "  --timeout-ms MS      per request (default %d)\n"
            "  -h, --help           this text\n",
            DEFAULT_ENDPOINTS, DEFAULT_TIMEOUT_MS);
}

/* Every key of a range_end "\0": etcd's "all keys >= key". */
static const uint8_t zero_byte[1] = {0};

/* ------------------------------------------------------------- output */

/* A uint64/int64 as an exact JSON number (cJSON's doubles are not). */
static void add_num(cJSON *o, const char *name, int64_t v, bool is_signed)
{
    char buf[32];

    if (is_signed)
        snprintf(buf, sizeof(buf), "%" PRId64, v);
    else
        snprintf(buf, sizeof(buf), "%" PRIu64, (uint64_t)v);
    cJSON_AddRawToObject(o, name, buf);
}

/* name (text) or name_hex (else) = b[len]. */
static void add_bytes(cJSON *o, const char *name, const uint8_t *b, size_t len)
{
    char field[32];

    if (bs_cli_is_text(b, len)) {
        char *s = bs_cli_bytes_str(b, len);

        if (s != NULL)
            cJSON_AddStringToObject(o, name, s);
        free(s);
    } else {
        char *h = bs_cli_hex(b, len);

        snprintf(field, sizeof(field), "%s_hex", name);
        if (h != NULL)
            cJSON_AddStringToObject(o, field, h);
        free(h);
    }
}

static cJSON *json_header(const struct bs_rpc_header *h)
{
    cJSON *o = cJSON_CreateObject();

    add_num(o, "cluster_id", (int64_t)h->cluster_id, false);
    add_num(o, "member_id", (int64_t)h->member_id, false);
    add_num(o, "revision", h->revision, true);
    add_num(o, "raft_term", (int64_t)h->raft_term, false);
    return o;
}

static cJSON *json_kv(const struct bs_shard_kv *kv)
{
    cJSON *o = cJSON_CreateObject();

    add_bytes(o, "key", kv->key, kv->key_len);
    add_bytes(o, "value", kv->value, kv->value_len);
    add_num(o, "create_revision", kv->create_revision, true);
    add_num(o, "mod_revision", kv->mod_revision, true);
    add_num(o, "version", kv->version, true);
    add_num(o, "lease", kv->lease, true);
    return o;
}

static void print_json(const struct bs_rpc_header *h,
                       const struct bs_shard_resp *r)
{
    cJSON *o = cJSON_CreateObject(), *kvs;
    char *s;

    cJSON_AddItemToObject(o, "header", json_header(h));
    switch (r->type) {
    case BS_SHARD_CMD_PUT:
        if (r->op.n_kvs > 0)
            cJSON_AddItemToObject(o, "prev_kv", json_kv(&r->op.kvs[0]));
        break;
    case BS_SHARD_CMD_DELETE_RANGE:
        add_num(o, "deleted", r->op.deleted, true);
        break;
    default:
        kvs = cJSON_AddArrayToObject(o, "kvs");
        for (size_t i = 0; i < r->op.n_kvs; i++)
            cJSON_AddItemToArray(kvs, json_kv(&r->op.kvs[i]));
        add_num(o, "count", r->op.count, true);
        cJSON_AddBoolToObject(o, "more", r->op.more);
        break;
    }
    s = cJSON_PrintUnformatted(o);
    if (s != NULL)
        printf("%s\n", s);
    free(s);
    cJSON_Delete(o);
}

static void print_bytes(const uint8_t *b, size_t len)
{
    char *s = bs_cli_bytes_str(b, len);

    printf("%s\n", s ? s : "(out of memory)");
    free(s);
}

static void print_text(const struct bs_shard_resp *r)
{
    switch (r->type) {
    case BS_SHARD_CMD_PUT:
        printf("OK\n");
        break;
    case BS_SHARD_CMD_DELETE_RANGE:
        printf("%" PRId64 "\n", r->op.deleted);
        break;
    default:
        for (size_t i = 0; i < r->op.n_kvs; i++) {
            print_bytes(r->op.kvs[i].key, r->op.kvs[i].key_len);
            print_bytes(r->op.kvs[i].value, r->op.kvs[i].value_len);
        }
        break;
    }
}

/* --------------------------------------------------------------- main */

int bs_cli_kv(int argc, char **argv)
{
    const char *vals[F_N] = {0}, *pos[3] = {0}, *val;
    const char *endpoints = DEFAULT_ENDPOINTS, *op;
    char errmsg[BS_CLI_ERRMSG_SIZE], reason[BS_CLI_ERRMSG_SIZE];
    struct bs_rpc_conn *conn = NULL;
    struct bs_shard_cmd cmd;
    struct bs_shard_resp resp;
    struct bs_rpc_header hdr;
    struct bs_cli_argv a;
    uint8_t *req = NULL, *out = NULL, *end_buf = NULL;
    size_t req_len, out_len, n_pos = 0, want_min, want_max;
    uint64_t limit = 0, timeout = DEFAULT_TIMEOUT_MS;
    bool json = false;
    int which, rc, code = 1;

    bs_cli_argv_init(&a, argc, argv, flags, F_N);
    for (;;) {
        rc = bs_cli_argv_next(&a, &which, &val, errmsg);
        if (rc != 0)
            goto usage_err;
        if (which == BS_CLI_END)
            break;
        if (which == BS_CLI_POSITIONAL) {
            if (n_pos == 3) {
                snprintf(errmsg, sizeof(errmsg), "unexpected argument '%.64s'",
                         val);
                goto usage_err;
            }
            pos[n_pos++] = val;
            continue;
        }
        vals[which] = val ? val : "";
    }
    if (a.seen & (1ULL << F_HELP)) {
        usage(stdout);
        return 0;
    }
    if (n_pos == 0) {
        snprintf(errmsg, sizeof(errmsg),
                 "missing operation (put, get, del or scan)");
        goto usage_err;
    }
    op = pos[0];
    if (strcmp(op, "put") == 0) {
        want_min = want_max = 3;
    } else if (strcmp(op, "get") == 0 || strcmp(op, "del") == 0) {
        want_min = want_max = 2;
    } else if (strcmp(op, "scan") == 0) {
        want_min = 2, want_max = 3;
    } else {
        snprintf(errmsg, sizeof(errmsg),
                 "unknown operation '%.64s' (put, get, del or scan)", op);
        goto usage_err;
    }
    if (n_pos < want_min || n_pos > want_max) {
        snprintf(errmsg, sizeof(errmsg), "%s takes %s", op,
                 op[0] == 'p'   ? "KEY VALUE"
                 : op[0] == 's' ? "START [END]"
                                : "KEY");
        goto usage_err;
    }
    if (vals[F_PREFIX] && strcmp(op, "get") != 0 && strcmp(op, "del") != 0) {
        snprintf(errmsg, sizeof(errmsg), "--prefix applies to get and del");
        goto usage_err;
    }
    if (vals[F_SERIALIZABLE] && strcmp(op, "get") != 0) {
        snprintf(errmsg, sizeof(errmsg), "--serializable applies to get");
        goto usage_err;
    }
    if (vals[F_LIMIT]) {
        if (strcmp(op, "get") != 0 && strcmp(op, "scan") != 0) {
            snprintf(errmsg, sizeof(errmsg), "--limit applies to get and scan");
            goto usage_err;
        }
        if (bs_cli_parse_uint(vals[F_LIMIT], 0, INT64_MAX, &limit, reason)) {
            snprintf(errmsg, sizeof(errmsg), "--limit: %.400s", reason);
            goto usage_err;
        }
    }
    if (vals[F_TIMEOUT] &&
        bs_cli_parse_uint(vals[F_TIMEOUT], 1, 3600000, &timeout, reason)) {
        snprintf(errmsg, sizeof(errmsg), "--timeout-ms: %.400s", reason);
        goto usage_err;
    }
    if (vals[F_OUTPUT]) {
        if (strcmp(vals[F_OUTPUT], "json") == 0) {
            json = true;
        } else if (strcmp(vals[F_OUTPUT], "text") != 0) {
            snprintf(errmsg, sizeof(errmsg),
                     "--output: '%.64s' is not text or json", vals[F_OUTPUT]);
            goto usage_err;
        }
    }
    if (vals[F_ENDPOINTS])
        endpoints = vals[F_ENDPOINTS];
    if (op[0] != 's' && pos[1][0] == '\0') {
        snprintf(errmsg, sizeof(errmsg), "the key must not be empty");
        goto usage_err;
    }

    /* The request. Byte strings are borrowed from argv and end_buf. */
    memset(&cmd, 0, sizeof(cmd));
    if (strcmp(op, "put") == 0) {
        cmd.type = BS_SHARD_CMD_PUT;
        cmd.u.put.key = (const uint8_t *)pos[1];
        cmd.u.put.key_len = strlen(pos[1]);
        cmd.u.put.value = (const uint8_t *)pos[2];
        cmd.u.put.value_len = strlen(pos[2]);
    } else if (strcmp(op, "del") == 0) {
        cmd.type = BS_SHARD_CMD_DELETE_RANGE;
        cmd.u.del.key = (const uint8_t *)pos[1];
        cmd.u.del.key_len = strlen(pos[1]);
    } else {
        cmd.type = BS_SHARD_CMD_RANGE;
        cmd.u.range.key = (const uint8_t *)pos[1];
        cmd.u.range.key_len = strlen(pos[1]);
        cmd.u.range.limit = (int64_t)limit;
        cmd.u.range.serializable = vals[F_SERIALIZABLE] != NULL;
        if (op[0] == 's') {
            if (cmd.u.range.key_len == 0) {
                cmd.u.range.key = zero_byte;
                cmd.u.range.key_len = 1;
            }
            if (n_pos == 3 && pos[2][0] != '\0') {
                cmd.u.range.range_end = (const uint8_t *)pos[2];
                cmd.u.range.range_end_len = strlen(pos[2]);
            } else {
                cmd.u.range.range_end = zero_byte;
                cmd.u.range.range_end_len = 1;
            }
        }
    }
    if (vals[F_PREFIX]) {
        const uint8_t *k = (const uint8_t *)pos[1];
        size_t klen = strlen(pos[1]), elen;

        end_buf = malloc(klen + 1);
        if (end_buf == NULL) {
            fprintf(stderr, "basalt kv: out of memory\n");
            return 1;
        }
        elen = bs_cli_prefix_end(k, klen, end_buf);
        if (cmd.type == BS_SHARD_CMD_RANGE) {
            cmd.u.range.range_end = end_buf;
            cmd.u.range.range_end_len = elen;
        } else {
            cmd.u.del.range_end = end_buf;
            cmd.u.del.range_end_len = elen;
        }
    }

    {
        char em[BS_RPC_ERRMSG_LEN] = "";

        rc = bs_rpc_kv_req_encode(&cmd, &req, &req_len, em);
        if (rc != 0) {
            fprintf(stderr, "basalt kv: encoding the request: %s\n",
                    em[0] ? em : bs_strerror(rc));
            goto out;
        }
        rc = bs_rpc_conn_open(endpoints, &conn, em);
        if (rc != 0) {
            fprintf(stderr, "basalt kv: %s\n", em[0] ? em : bs_strerror(rc));
            goto out;
        }
        rc = bs_rpc_conn_call(conn, bs_rpc_kv_method(cmd.type), req, req_len,
                              (int64_t)timeout, &out, &out_len, NULL, em);
        if (rc != 0) {
            fprintf(stderr, "basalt kv: %s %s: %s\n", op, pos[1],
                    em[0] ? em : bs_strerror(rc));
            goto out;
        }
        rc = bs_rpc_kv_resp_decode(cmd.type, out, out_len, NULL, &hdr, &resp,
                                   em);
        if (rc != 0) {
            fprintf(stderr, "basalt kv: bad response: %s\n",
                    em[0] ? em : bs_strerror(rc));
            goto out;
        }
    }
    if (json)
        print_json(&hdr, &resp);
    else
        print_text(&resp);
    fflush(stdout);
    bs_shard_resp_free(&resp);
    code = 0;
out:
    bs_rpc_conn_close(conn);
    free(out);
    free(req);
    free(end_buf);
    return code;

usage_err:
    fprintf(stderr, "basalt kv: %s\n", errmsg);
    return 2;
}
