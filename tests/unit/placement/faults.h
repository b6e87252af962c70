/*
 * faults.h - fault injection for the placement unit tests linked with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc (see meson.build):
 * faults.c defines the wrappers, which fail one chosen allocation, and
 * runs a call once for every allocation it makes, failing each in turn.
 * A call that fails with BS_ENOMEM must leave the state exactly as it
 * was, applied index included, so that the store can retry the entry.
 */
#ifndef BS_TESTS_PLACEMENT_FAULTS_H
#define BS_TESTS_PLACEMENT_FAULTS_H

#include "helpers.h"

/*
 * Applies data (len bytes, borrowed) at index to st with the k-th
 * allocation failing, for every k until a run needs no failure. Asserts
 * that every run answered BS_ENOMEM with st unchanged (image, applied
 * index, bs_pd_check), or else want with the index applied: a failure
 * the code absorbs must still give the whole result. Leaves st with the
 * entry applied; returns how many runs failed.
 */
long th_apply_under_faults(struct bs_pd_state *st, uint64_t index,
                           const uint8_t *data, size_t len, int want);

/*
 * bs_pd_decode_all(st, img, len) with the k-th allocation failing, for
 * every k until a run succeeds: asserts each failure is BS_ENOMEM with st
 * unchanged, and the final run 0. Returns how many runs failed.
 */
long th_decode_all_under_faults(struct bs_pd_state *st, const uint8_t *img,
                                size_t len);

#endif
