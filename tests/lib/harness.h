/* A tiny unit test harness: TEST(name) { ... CHECK(cond); ... } and
 * HARNESS_MAIN() at the end of the file. Each test runs in order; a failed
 * CHECK reports file:line and ends that test. The binary exits 1 if any test
 * failed, 0 otherwise, and prints one "PASS"/"FAIL" line per test. */
#ifndef UST_TEST_HARNESS_H
#define UST_TEST_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct harness_test {
    const char *name;
    void (*fn)(int *failed);
};

#define HARNESS_MAX_TESTS 512
extern struct harness_test harness_tests[HARNESS_MAX_TESTS];
extern int harness_count;

#define TEST(name)                                                              \
    static void test_##name(int *harness_failed);                              \
    __attribute__((constructor)) static void register_##name(void)             \
    {                                                                          \
        if (harness_count < HARNESS_MAX_TESTS)                                 \
            harness_tests[harness_count++] = (struct harness_test){#name, test_##name}; \
    }                                                                          \
    static void test_##name(int *harness_failed)

#define CHECK(cond)                                                             \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
            *harness_failed = 1;                                               \
            return;                                                            \
        }                                                                      \
    } while (0)

#define CHECK_EQ(a, b)                                                          \
    do {                                                                       \
        long long ha_ = (long long)(a), hb_ = (long long)(b);                  \
        if (ha_ != hb_) {                                                      \
            fprintf(stderr, "  %s:%d: CHECK_EQ(%s, %s) failed: %lld != %lld\n", \
                    __FILE__, __LINE__, #a, #b, ha_, hb_);                     \
            *harness_failed = 1;                                               \
            return;                                                            \
        }                                                                      \
    } while (0)

#define CHECK_MEM(a, b, n) CHECK(memcmp((a), (b), (n)) == 0)

/* Call from helper functions that take `int *harness_failed` too. */
#define HARNESS_ARGS int *harness_failed
#define HARNESS_PASS harness_failed
#define CHECK_OK() do { if (*harness_failed) return; } while (0)

#define HARNESS_MAIN()                                                          \
    struct harness_test harness_tests[HARNESS_MAX_TESTS];                      \
    int harness_count;                                                         \
    int main(int argc, char **argv)                                            \
    {                                                                          \
        int failures = 0;                                                      \
        for (int i = 0; i < harness_count; i++) {                              \
            if (argc > 1 && strcmp(argv[1], harness_tests[i].name) != 0)       \
                continue;                                                      \
            int failed = 0;                                                    \
            harness_tests[i].fn(&failed);                                      \
            printf("%s %s\n", failed ? "FAIL" : "PASS", harness_tests[i].name); \
            failures += failed;                                                \
        }                                                                      \
        printf("%d tests, %d failed\n", harness_count, failures);              \
        return failures ? 1 : 0;                                               \
    }

#endif
