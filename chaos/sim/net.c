/*
 * net.c - the simulator's virtual network.
 *
 * A message sent at step t is copied (bs_raft_msg_copy) into a min-heap keyed
 * by its delivery step and a send sequence number, so delivery order is a
 * pure function of the seed. On the way in it may be dropped or duplicated,
 * and its latency drawn from [lat_min, lat_max], or, as a latency spike, up
 * to spike_max steps, which reorders it behind later messages. Partitions
 * are a directed cut matrix consulted at delivery (node.c), so a cut of one
 * direction only is an asymmetric partition, and a message already in
 * flight when a partition starts is lost with it. A lost snapshot still
 * travels, marked lost, so that its sender hears of the failure when it
 * would have arrived (a transport knows when a snapshot stream breaks).
 */
#include <stdlib.h>
#include <string.h>

#include "sim_int.h"

static bool pk_less(const struct bs_sim_slot *a, const struct bs_sim_slot *b)
{
    return a->at != b->at ? a->at < b->at : a->seq < b->seq;
}

static void swap_pk(struct bs_sim_slot *a, struct bs_sim_slot *b)
{
    struct bs_sim_slot t = *a;
    *a = *b;
    *b = t;
}

static int push(struct bs_sim_net *net, uint64_t at, uint32_t from_inc,
                const struct bs_raft_msg *m, bool lost)
{
    if (net->n == net->cap) {
        size_t ncap = net->cap ? net->cap * 2 : 256;
        struct bs_sim_slot *nh = realloc(net->heap, ncap * sizeof *nh);
        if (!nh)
            return BS_ENOMEM;
        net->heap = nh;
        net->cap = ncap;
    }
    struct bs_sim_packet *p = malloc(sizeof *p);
    if (!p)
        return BS_ENOMEM;
    if (bs_raft_msg_copy(&p->m, m) != 0) {
        free(p);
        return BS_ENOMEM;
    }
    p->at = at;
    p->seq = ++net->seq;
    p->from_inc = from_inc;
    p->lost = lost;
    size_t i = net->n++;
    net->heap[i] = (struct bs_sim_slot){p->at, p->seq, p};
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!pk_less(&net->heap[i], &net->heap[parent]))
            break;
        swap_pk(&net->heap[i], &net->heap[parent]);
        i = parent;
    }
    return 0;
}

static uint64_t latency(struct bs_sim *s)
{
    struct bs_sim_net *net = &s->net;
    if (bs_sim_rng_chance(&s->rng, net->spike_ppm))
        return bs_sim_rng_range(&s->rng, net->lat_max, net->spike_max);
    return bs_sim_rng_range(&s->rng, net->lat_min, net->lat_max);
}

int bs_sim__net_send(struct bs_sim *s, const struct bs_raft_msg *m,
                     uint32_t from_inc)
{
    struct bs_sim_net *net = &s->net;
    s->st.msgs_sent++;
    if (net->n >= BS_SIM_NET_CAP || bs_sim_rng_chance(&s->rng, net->drop_ppm)) {
        s->st.msgs_dropped++;
        /* A snapshot stream that breaks is noticed by the sender's
         * transport, which reports it (bs_raft_report_snapshot): keep the
         * message as a lost packet so that delivery reports it. */
        if (m->type == BS_RAFT_MSG_SNAP)
            return push(net, s->now + latency(s), from_inc, m, true);
        return 0;
    }
    int copies = 1;
    if (bs_sim_rng_chance(&s->rng, net->dup_ppm)) {
        copies = 2;
        s->st.msgs_duplicated++;
    }
    for (int i = 0; i < copies; i++) {
        int rc = push(net, s->now + latency(s), from_inc, m, false);
        if (rc)
            return rc;
    }
    return copies;
}

bool bs_sim__net_pop(struct bs_sim_net *net, uint64_t now,
                     struct bs_sim_packet *out)
{
    if (net->n == 0 || net->heap[0].at > now)
        return false;
    *out = *net->heap[0].p;
    free(net->heap[0].p);
    net->heap[0] = net->heap[--net->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < net->n && pk_less(&net->heap[l], &net->heap[m]))
            m = l;
        if (r < net->n && pk_less(&net->heap[r], &net->heap[m]))
            m = r;
        if (m == i)
            break;
        swap_pk(&net->heap[i], &net->heap[m]);
        i = m;
    }
    return true;
}

void bs_sim__net_heal(struct bs_sim_net *net)
{
    memset(net->cut, 0, sizeof net->cut);
}

void bs_sim__net_free(struct bs_sim_net *net)
{
    for (size_t i = 0; i < net->n; i++) {
        bs_raft_msg_free(&net->heap[i].p->m);
        free(net->heap[i].p);
    }
    free(net->heap);
    net->heap = NULL;
    net->n = net->cap = 0;
}
