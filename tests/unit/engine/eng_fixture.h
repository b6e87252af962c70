/*
 * eng_fixture.h - helpers shared by the engine's storage tests: scratch
 * directories under /tmp (mkdtemp), their recursive removal, and opening a
 * db with small settings. Header-only (static functions) so that each test
 * stays one source file.
 */
#ifndef BS_TESTS_ENG_FIXTURE_H
#define BS_TESTS_ENG_FIXTURE_H

#define _GNU_SOURCE
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

/* A fresh directory /tmp/basalt-<what>-XXXXXX; caller frees the string. */
static inline char *fx_tmpdir(const char *what)
{
    char tmpl[256];
    snprintf(tmpl, sizeof(tmpl), "/tmp/basalt-%s-XXXXXX", what);
    char *d = mkdtemp(tmpl);
    ck_assert_ptr_nonnull(d);
    return strdup(d);
}

static inline int fx_rm_one(const char *path, const struct stat *st, int flag,
                            struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes dir and everything under it, then frees the string. */
static inline void fx_rm_rf(char *dir)
{
    if (!dir)
        return;
    nftw(dir, fx_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* dir + "/" + name in a static-free malloc'd string. */
static inline char *fx_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Opens (asserting success) with a small cache and no fsync: the tests
 * check logic, not the disk. */
static inline struct bs_eng_db *fx_open(const char *dir)
{
    struct bs_eng_db_options o;
    bs_eng_db_options_default(&o);
    o.sync = false;
    o.block_cache_bytes = 4u << 20;
    o.write_buffer_bytes = 1u << 20;
    struct bs_eng_db *db = NULL;
    char err[BS_ENG_ERRMSG_SIZE] = "";
    int rc = bs_eng_db_open(dir, &o, &db, err);
    ck_assert_msg(rc == 0, "open %s: %s (%s)", dir, bs_err_name(rc), err);
    return db;
}

/* Runs a suite with forking forced (fresh globals per test). */
static inline int fx_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
