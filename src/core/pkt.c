#include "core/pkt.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int pkt_pool_init(struct pkt_pool *pool, uint32_t count, uint32_t room, void *mem)
{
    memset(pool, 0, sizeof(*pool));
    if (count == 0 || room <= PKT_HEADROOM)
        return -1;
    pool->mem_bytes = (size_t)count * room;
    if (mem) {
        pool->mem = mem;
    } else {
        /* mmap rather than malloc: page aligned, zero-filled lazily, and a
         * large pool does not fragment the application's heap. */
        void *m = mmap(NULL, pool->mem_bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return -1;
        pool->mem = m;
        pool->mem_owned = 1;
    }
    pool->descs = calloc(count, sizeof(struct pkt));
    if (!pool->descs) {
        pkt_pool_fini(pool);
        return -1;
    }
    pool->count = count;
    pool->room = room;
    /* Build the free list backwards so the first allocations take the lowest
     * buffers (friendlier to caches and to debugging). */
    for (uint32_t i = count; i-- > 0;) {
        struct pkt *p = &pool->descs[i];
        p->buf = pool->mem + (size_t)i * room;
        p->room = room;
        p->index = i;
        p->pool = pool;
        p->next = pool->free_list;
        pool->free_list = p;
    }
    pool->avail = count;
    return 0;
}

void pkt_pool_fini(struct pkt_pool *pool)
{
    if (pool->mem_owned && pool->mem)
        munmap(pool->mem, pool->mem_bytes);
    free(pool->descs);
    memset(pool, 0, sizeof(*pool));
}

struct pkt *pkt_alloc(struct pkt_pool *pool)
{
    struct pkt *p = pool->free_list;
    if (!p)
        return NULL;
    pool->free_list = p->next;
    pool->avail--;
    /* The next buffer out will get headers written just below the
     * headroom: start fetching those lines for writing now. */
    if (pool->free_list)
        __builtin_prefetch(pool->free_list->buf + PKT_HEADROOM - 64, 1);
    p->next = NULL;
    p->refcnt = 1;
    p->stamp = 0;
    p->aux = 0;
    pkt_reset(p);
    return p;
}

void pkt_free(struct pkt *p)
{
    if (!p)
        return;
    if (--p->refcnt > 0)
        return;
    struct pkt_pool *pool = p->pool;
    p->next = pool->free_list;
    pool->free_list = p;
    pool->avail++;
}

struct pkt *pkt_clone(const struct pkt *p)
{
    struct pkt *c = pkt_alloc(p->pool);
    if (!c)
        return NULL;
    c->off = p->off;
    c->len = p->len;
    c->flags = p->flags;
    c->l2 = p->l2;
    c->l3 = p->l3;
    c->l4 = p->l4;
    c->stamp = p->stamp;
    memcpy(pkt_data(c), pkt_data(p), p->len);
    return c;
}

void pktq_free_all(struct pkt_queue *q)
{
    struct pkt *p;
    while ((p = pktq_pop(q)))
        pkt_free(p);
}
