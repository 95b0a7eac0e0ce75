/* Helpers shared by the cmocka tests (see support.h). */
#include "support.h"

#include <math.h>
#include <stdlib.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *test_shared_data(void)
{
    static const char *candidates[] = {"../shared/data", "../../shared/data", NULL};
    struct stat st;
    const char *env = getenv("DISRNN_SHARED_DATA");
    if (env && stat(env, &st) == 0 && S_ISDIR(st.st_mode)) return env;
    for (int i = 0; candidates[i]; i++)
        if (stat(candidates[i], &st) == 0 && S_ISDIR(st.st_mode)) return candidates[i];
    return NULL;
}

static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void test_uniform(uint64_t *state, double *out, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++) out[i] = lo + (hi - lo) * (double)(next(state) >> 11) * 0x1.0p-53;
}

void test_normal(uint64_t *state, double *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double u1 = 1.0 - (double)(next(state) >> 11) * 0x1.0p-53;
        double u2 = (double)(next(state) >> 11) * 0x1.0p-53;
        out[i] = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
    }
}

void *test_chaos_alloc(size_t size, void *ud)
{
    test_chaos *c = (test_chaos *)ud;
    void *p;
    if (c->fail_at >= 0 && c->count++ == c->fail_at) return NULL;
    if (c->fail_at < 0) c->count++;
    p = malloc(size);
    if (p) c->live++;
    return p;
}

void test_chaos_free(void *p, void *ud)
{
    test_chaos *c = (test_chaos *)ud;
    c->live--;
    free(p);
}

char test_scratch[256];

int test_scratch_setup(void **state)
{
    const char *tmp = getenv("TMPDIR");
    (void)state;
    snprintf(test_scratch, sizeof test_scratch, "%s/disrnn-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(test_scratch) ? 0 : -1;
}

static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d;
        struct dirent *e;
        chmod(path, 0700); /* a test may have made it read-only */
        d = opendir(path);
        if (d) {
            while ((e = readdir(d)) != NULL) {
                char sub[1024];
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
                snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
                remove_tree(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

int test_scratch_teardown(void **state)
{
    (void)state;
    if (test_scratch[0]) remove_tree(test_scratch);
    return 0;
}
