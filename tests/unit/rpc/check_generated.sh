#!/bin/sh
# Checks the nanopb code generated from rpc/proto (in directory $1): no
# struct may hold a fixed-size byte or string buffer (PB_BYTES_ARRAY_T,
# char name[N]), which would truncate or refuse data at a size compiled
# in. The only fixed arrays allowed are the Raft configuration sets
# (uint64_t, bounded by BS_RAFT_MAX_MEMBERS).
set -eu
dir=$1
found=0
conf_sets='uint64_t \(voters\|voters_outgoing\|learners\|learners_next\)\[16\];'
for h in kv rpc raft admin; do
    f="$dir/$h.pb.h"
    if [ ! -f "$f" ]; then
        echo "missing generated header $f" >&2
        exit 1
    fi
    # The struct definitions, without their comments.
    structs=$(sed -n '/^typedef struct _/,/^}/p' "$f" | sed 's|/\*.*\*/||')
    if grep -n 'PB_BYTES_ARRAY_T' "$f" >&2 ||
        echo "$structs" | grep 'char [A-Za-z_]*\[' >&2; then
        echo "$f: fixed-size byte or string field (above): make it" \
             "FT_CALLBACK in rpc/proto/$h.options" >&2
        found=1
    fi
    if echo "$structs" | grep '\[' | grep -v "$conf_sets" >&2; then
        echo "$f: unexpected fixed-size array (above)" >&2
        found=1
    fi
done
exit $found
