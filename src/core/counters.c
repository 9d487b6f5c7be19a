#include "core/counters.h"

#include <string.h>

static const char *const counter_names[] = {
#define UST_COUNTER_NAME(name) #name,
    UST_COUNTERS(UST_COUNTER_NAME)
#undef UST_COUNTER_NAME
};

#define COUNTER_COUNT (sizeof(counter_names) / sizeof(counter_names[0]))

static const uint64_t *counters_array(const struct ust_counters *c)
{
    /* The struct is nothing but uint64_t fields in list order. */
    return (const uint64_t *)(const void *)c;
}

void counters_print(const struct ust_counters *c, FILE *out, int all)
{
    const uint64_t *v = counters_array(c);
    for (size_t i = 0; i < COUNTER_COUNT; i++)
        if (all || v[i])
            fprintf(out, "%-28s %llu\n", counter_names[i], (unsigned long long)v[i]);
}

int counters_get(const struct ust_counters *c, const char *name, uint64_t *value)
{
    const uint64_t *v = counters_array(c);
    for (size_t i = 0; i < COUNTER_COUNT; i++) {
        if (strcmp(counter_names[i], name) == 0) {
            *value = v[i];
            return 0;
        }
    }
    return -1;
}

_Static_assert(sizeof(struct ust_counters) == COUNTER_COUNT * sizeof(uint64_t),
               "counters are plain uint64_t fields");
