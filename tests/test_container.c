/* The binary container: CRC-32C, little-endian writer and bounds-checked reader, the frame
 * (magic, version, kind, length, checksum) and atomic file writes. */
#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "container.h"

/* ------------------------------------------------------------------------------------------ */
static void path_in(char *out, size_t len, const char *dir, const char *name) { snprintf(out, len, "%s/%s", dir, name); }

/* Number of entries of a folder whose name contains ".tmp.". */
static int count_temps(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

static void write_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* CRC-32C */

static void test_crc32c_known_values(void **state)
{
    static const unsigned char zeros[32] = {0};
    unsigned char ones[32];
    (void)state;
    memset(ones, 0xff, sizeof ones);
    /* The standard check value, and the iSCSI test vectors of RFC 3720 B.4. */
    assert_int_equal(disrnn__crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(disrnn__crc32c(0, zeros, 32), 0x8A9136AAu);
    assert_int_equal(disrnn__crc32c(0, ones, 32), 0x62A8AB43u);
    assert_int_equal(disrnn__crc32c(0, "", 0), 0u);
    /* Continuing a checksum equals checksumming the concatenation. */
    assert_int_equal(disrnn__crc32c(disrnn__crc32c(0, "12345", 5), "6789", 4), 0xE3069283u);
}

/* ------------------------------------------------------------------------------------------ */
/* Writer and reader */

static void test_writer_little_endian(void **state)
{
    disrnn__writer w;
    static const unsigned char want[] = {0x04, 0x03, 0x02, 0x01, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
                                         0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                         /* 1.0 = 0x3FF0000000000000 */
                                         0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf0, 0x3f};
    (void)state;
    disrnn__w_init(&w, NULL);
    disrnn__w_u32(&w, 0x01020304u);
    disrnn__w_u64(&w, 0x0102030405060708ull);
    disrnn__w_i64(&w, -2);
    disrnn__w_f64(&w, 1.0);
    assert_false(w.oom);
    assert_int_equal(w.len, sizeof want);
    assert_memory_equal(w.buf, want, sizeof want);
    disrnn__w_free(&w);
}

static void test_writer_reader_round_trip(void **state)
{
    disrnn__writer w;
    disrnn__reader r;
    double specials[7], back[7];
    uint64_t nan_bits = 0x7ff8dead0000beefull;
    unsigned char bytes[300];
    (void)state;
    specials[0] = -0.0;
    specials[1] = INFINITY;
    specials[2] = -INFINITY;
    memcpy(&specials[3], &nan_bits, 8); /* a NaN with a payload must keep its bits */
    specials[4] = 4.9406564584124654e-324;
    specials[5] = 1.7976931348623157e308;
    specials[6] = 0.1;
    for (size_t i = 0; i < sizeof bytes; i++) bytes[i] = (unsigned char)(i * 7);
    disrnn__w_init(&w, NULL);
    disrnn__w_u32(&w, 0xdeadbeefu);
    disrnn__w_u64(&w, UINT64_MAX);
    disrnn__w_i64(&w, INT64_MIN);
    disrnn__w_i64(&w, INT64_MAX);
    disrnn__w_f64s(&w, specials, 7);
    /* enough small writes to force several reallocations */
    for (int i = 0; i < 1000; i++) disrnn__w_bytes(&w, bytes, sizeof bytes);
    assert_false(w.oom);
    assert_int_equal(w.len, 4 + 8 + 8 + 8 + 56 + 1000 * sizeof bytes);

    disrnn__r_init(&r, w.buf, w.len);
    assert_int_equal(disrnn__r_u32(&r), 0xdeadbeefu);
    assert_true(disrnn__r_u64(&r) == UINT64_MAX);
    assert_true(disrnn__r_i64(&r) == INT64_MIN);
    assert_true(disrnn__r_i64(&r) == INT64_MAX);
    disrnn__r_f64s(&r, back, 7);
    assert_memory_equal(back, specials, sizeof specials);
    for (int i = 0; i < 1000; i++) {
        assert_true(disrnn__r_has(&r, sizeof bytes, 1));
        assert_memory_equal(r.p + r.pos, bytes, sizeof bytes);
        r.pos += sizeof bytes;
    }
    assert_false(r.bad);
    assert_int_equal(r.pos, r.len);
    disrnn__w_free(&w);
}

static void test_reader_sticky_bounds(void **state)
{
    static const unsigned char buf[12] = {1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0};
    disrnn__reader r;
    double out[2] = {42.0, 43.0};
    (void)state;
    disrnn__r_init(&r, buf, sizeof buf);
    assert_true(disrnn__r_has(&r, 3, 4));
    assert_false(disrnn__r_has(&r, 13, 1));
    assert_false(disrnn__r_has(&r, SIZE_MAX, 8)); /* count * size overflows */
    assert_false(disrnn__r_has(&r, 2, SIZE_MAX / 2 + 1));
    assert_int_equal(disrnn__r_u32(&r), 1);
    /* 8 bytes remain: two doubles would need 16, so out is untouched and the reader goes bad */
    disrnn__r_f64s(&r, out, 2);
    assert_true(r.bad);
    assert_true(out[0] == 42.0 && out[1] == 43.0);
    /* sticky: even a read that would fit now fails and returns zero without moving */
    assert_int_equal(disrnn__r_u32(&r), 0);
    assert_int_equal(r.pos, 4);
    assert_false(disrnn__r_has(&r, 0, 1));

    disrnn__r_init(&r, buf, sizeof buf);
    assert_true(disrnn__r_u64(&r) == 0x0000000200000001ull);
    assert_true(disrnn__r_u64(&r) == 0); /* 4 bytes left: fails */
    assert_true(r.bad);
    assert_int_equal(r.pos, 8);
    assert_true(disrnn__r_f64(&r) == 0.0);
    assert_true(disrnn__r_i64(&r) == 0);

    disrnn__r_init(&r, NULL, 0);
    assert_int_equal(disrnn__r_u32(&r), 0);
    assert_true(r.bad);
}

static void test_writer_out_of_memory(void **state)
{
    test_chaos chaos = {0, 0, 0};
    disrnn__allocator al = {test_chaos_alloc, test_chaos_free, &chaos};
    disrnn__writer w, out;
    unsigned char bytes[1000] = {0};
    (void)state;
    for (long k = 0; k < 6; k++) {
        chaos.fail_at = k;
        chaos.count = 0;
        disrnn__w_init(&w, &al);
        disrnn__w_init(&out, &al);
        for (int i = 0; i < 20; i++) disrnn__w_bytes(&w, bytes, sizeof bytes);
        /* growing to 20000 bytes takes 6 allocations (1 KiB doubling to 32 KiB): the k-th fails, writing stops */
        assert_true(w.oom);
        assert_true(w.len < sizeof bytes * 20);
        assert_status(disrnn__container_wrap(&w, DISRNN__KIND_MODEL, &out), DISRNN_ERR_NOMEM);
        disrnn__w_free(&w);
        disrnn__w_free(&out);
        assert_int_equal(chaos.live, 0);
    }
    /* The wrap's own allocation failing */
    chaos.fail_at = -1;
    disrnn__w_init(&w, &al);
    disrnn__w_u64(&w, 7);
    chaos.fail_at = chaos.count;
    chaos.count = chaos.fail_at;
    disrnn__w_init(&out, &al);
    assert_status(disrnn__container_wrap(&w, DISRNN__KIND_MODEL, &out), DISRNN_ERR_NOMEM);
    disrnn__w_free(&w);
    disrnn__w_free(&out);
    assert_int_equal(chaos.live, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Container frame */

static void make_container(disrnn__writer *out, uint32_t kind, size_t payload_len)
{
    disrnn__writer p;
    disrnn__w_init(&p, NULL);
    for (size_t i = 0; i < payload_len; i++) {
        const unsigned char b = (unsigned char)(i * 31 + 5);
        disrnn__w_bytes(&p, &b, 1);
    }
    disrnn__w_init(out, NULL);
    assert_ok(disrnn__container_wrap(&p, kind, out));
    disrnn__w_free(&p);
}

/* Set the version field and recompute the checksum, as a newer writer would. */
static void set_version(unsigned char *buf, size_t len, uint32_t version)
{
    uint32_t crc;
    for (int i = 0; i < 4; i++) buf[8 + i] = (unsigned char)(version >> (8 * i));
    crc = disrnn__crc32c(0, buf, len - 4);
    for (size_t i = 0; i < 4; i++) buf[len - 4 + i] = (unsigned char)(crc >> (8 * i));
}

static void test_container_round_trip(void **state)
{
    disrnn__writer c;
    disrnn__reader r;
    char msg[256];
    (void)state;
    make_container(&c, DISRNN__KIND_CHECKPOINT, 100);
    assert_int_equal(c.len, 24 + 100 + 4);
    assert_memory_equal(c.buf, "DISRNN\r\n", 8);
    assert_int_equal(c.buf[8], DISRNN__FORMAT_VERSION);
    assert_int_equal(c.buf[12], DISRNN__KIND_CHECKPOINT);
    assert_int_equal(c.buf[16], 100);
    assert_ok(disrnn__container_open(c.buf, c.len, DISRNN__KIND_CHECKPOINT, &r, msg, sizeof msg));
    assert_int_equal(r.len, 100);
    assert_ptr_equal(r.p, c.buf + 24);
    for (size_t i = 0; i < 100; i++) assert_int_equal(r.p[i], (unsigned char)(i * 31 + 5));
    /* the wrong kind is refused with a message naming both */
    assert_status(disrnn__container_open(c.buf, c.len, DISRNN__KIND_MODEL, &r, msg, sizeof msg), DISRNN_ERR_CORRUPT);
    assert_non_null(strstr(msg, "checkpoint"));
    disrnn__w_free(&c);

    make_container(&c, DISRNN__KIND_MODEL, 0); /* an empty payload is still a valid frame */
    assert_ok(disrnn__container_open(c.buf, c.len, DISRNN__KIND_MODEL, &r, NULL, 0));
    assert_int_equal(r.len, 0);
    disrnn__w_free(&c);
}

static void test_container_rejects_damage(void **state)
{
    disrnn__writer c;
    disrnn__reader r;
    unsigned char *buf, *big;
    char msg[256];
    (void)state;
    make_container(&c, DISRNN__KIND_MODEL, 40);
    buf = (unsigned char *)malloc(c.len);
    assert_non_null(buf);
    /* every truncation, through a copy of exactly that length so a read past it would be caught by ASan */
    for (size_t n = 0; n < c.len; n++) {
        memcpy(buf, c.buf, n);
        msg[0] = '\0';
        assert_status(disrnn__container_open(n ? buf : c.buf, n, DISRNN__KIND_MODEL, &r, msg, sizeof msg),
                      DISRNN_ERR_CORRUPT);
        assert_true(strlen(msg) > 0);
    }
    /* every single-bit flip */
    for (size_t i = 0; i < c.len; i++)
        for (int b = 0; b < 8; b++) {
            memcpy(buf, c.buf, c.len);
            buf[i] ^= (unsigned char)(1u << b);
            assert_status(disrnn__container_open(buf, c.len, DISRNN__KIND_MODEL, &r, msg, sizeof msg),
                          DISRNN_ERR_CORRUPT);
        }
    /* trailing bytes after the checksum */
    big = (unsigned char *)malloc(c.len + 1);
    assert_non_null(big);
    memcpy(big, c.buf, c.len);
    big[c.len] = 0;
    assert_status(disrnn__container_open(big, c.len + 1, DISRNN__KIND_MODEL, &r, msg, sizeof msg), DISRNN_ERR_CORRUPT);
    free(big);
    /* a well-formed newer file is a version problem, version 0 is damage */
    memcpy(buf, c.buf, c.len);
    set_version(buf, c.len, DISRNN__FORMAT_VERSION + 1);
    assert_status(disrnn__container_open(buf, c.len, DISRNN__KIND_MODEL, &r, msg, sizeof msg), DISRNN_ERR_VERSION);
    assert_non_null(strstr(msg, "version"));
    set_version(buf, c.len, 0);
    assert_status(disrnn__container_open(buf, c.len, DISRNN__KIND_MODEL, &r, msg, sizeof msg), DISRNN_ERR_CORRUPT);
    set_version(buf, c.len, DISRNN__FORMAT_VERSION);
    assert_ok(disrnn__container_open(buf, c.len, DISRNN__KIND_MODEL, &r, msg, sizeof msg));
    assert_status(disrnn__container_open(NULL, 10, DISRNN__KIND_MODEL, &r, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);
    free(buf);
    disrnn__w_free(&c);
}

/* ------------------------------------------------------------------------------------------ */
/* Files */

static void test_file_round_trip(void **state)
{
    char path[512], msg[256];
    unsigned char data[5000], *back = NULL;
    size_t len = 0;
    struct stat st;
    mode_t mask;
    (void)state;
    for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i ^ (i >> 8));
    path_in(path, sizeof path, test_scratch, "round.bin");
    assert_ok(disrnn__file_write_atomic(path, data, sizeof data, msg, sizeof msg));
    assert_ok(disrnn__file_read(NULL, path, &back, &len, msg, sizeof msg));
    assert_int_equal(len, sizeof data);
    assert_memory_equal(back, data, sizeof data);
    free(back); /* the default allocator is the C library's */
    assert_int_equal(count_temps(test_scratch), 0);
    /* a new file gets the permissions fopen would give it, not mkstemp's 0600 */
    mask = umask(022);
    umask(mask);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0666 & ~mask);
    /* replacing a file keeps its permissions and its content is the new one */
    assert_int_equal(chmod(path, 0640), 0);
    assert_ok(disrnn__file_write_atomic(path, "abc", 3, msg, sizeof msg));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_ok(disrnn__file_read(NULL, path, &back, &len, msg, sizeof msg));
    assert_int_equal(len, 3);
    assert_memory_equal(back, "abc", 3);
    free(back);
    /* an empty file */
    assert_ok(disrnn__file_write_atomic(path, NULL, 0, msg, sizeof msg));
    assert_ok(disrnn__file_read(NULL, path, &back, &len, msg, sizeof msg));
    assert_int_equal(len, 0);
    free(back);
    assert_int_equal(count_temps(test_scratch), 0);
}

static void test_file_read_errors(void **state)
{
    char path[512], msg[256];
    unsigned char *buf = NULL;
    size_t len = 0;
    test_chaos chaos = {0, 0, 0};
    disrnn__allocator al = {test_chaos_alloc, test_chaos_free, &chaos};
    (void)state;
    path_in(path, sizeof path, test_scratch, "does-not-exist");
    assert_status(disrnn__file_read(NULL, path, &buf, &len, msg, sizeof msg), DISRNN_ERR_IO);
    assert_non_null(strstr(msg, "does-not-exist"));
    assert_status(disrnn__file_read(NULL, test_scratch, &buf, &len, msg, sizeof msg), DISRNN_ERR_IO); /* a folder */
    assert_status(disrnn__file_read(NULL, NULL, &buf, &len, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);
    path_in(path, sizeof path, test_scratch, "small.bin");
    write_file(path, "hello", 5);
    assert_status(disrnn__file_read(&al, path, &buf, &len, msg, sizeof msg), DISRNN_ERR_NOMEM);
    assert_int_equal(chaos.live, 0);
    chaos.fail_at = -1;
    assert_ok(disrnn__file_read(&al, path, &buf, &len, msg, sizeof msg));
    assert_int_equal(chaos.live, 1);
    disrnn__free(&al, buf);
    assert_int_equal(chaos.live, 0);
}

static void test_atomic_write_failure_keeps_old_file(void **state)
{
    char dir[512], path[600], blocker[600], inner[700], msg[256];
    unsigned char *back = NULL;
    size_t len = 0;
    (void)state;
    path_in(dir, sizeof dir, test_scratch, "locked");
    assert_int_equal(mkdir(dir, 0700), 0);
    path_in(path, sizeof path, dir, "model.bin");
    assert_ok(disrnn__file_write_atomic(path, "old contents", 12, msg, sizeof msg));

    /* A folder we may not write in: no temporary can be made, the old file stays. Root ignores
     * folder permissions, so as root the write runs in a child that drops to an unprivileged user. */
    assert_int_equal(chmod(test_scratch, 0755), 0);
    assert_int_equal(chmod(dir, 0555), 0);
    if (geteuid() != 0) {
        assert_status(disrnn__file_write_atomic(path, "new", 3, msg, sizeof msg), DISRNN_ERR_IO);
        assert_non_null(strstr(msg, "temporary"));
    } else {
        int status = 0;
        const pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int st;
            if (setgid(65534) != 0 || setuid(65534) != 0) _exit(100);
            if (access(dir, W_OK) == 0) _exit(101);
            st = disrnn__file_write_atomic(path, "new", 3, msg, sizeof msg);
            _exit(st == DISRNN_ERR_IO ? 0 : 102);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        /* 100/101: this environment cannot drop to an unprivileged user (user namespaces,
         * retained capabilities); only 102, a wrong status from the library, is a failure */
        if (WEXITSTATUS(status) == 100 || WEXITSTATUS(status) == 101)
            print_message("(cannot drop privileges here: the unwritable-folder case is skipped)\n");
        else
            assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(chmod(dir, 0700), 0);
    assert_int_equal(chmod(test_scratch, 0700), 0);
    assert_int_equal(count_temps(dir), 0);
    assert_ok(disrnn__file_read(NULL, path, &back, &len, msg, sizeof msg));
    assert_int_equal(len, 12);
    assert_memory_equal(back, "old contents", 12);
    free(back);

    /* The rename itself failing (the destination is a non-empty folder): the temporary, already
     * written and synced, must be removed again. Works for every user. */
    path_in(blocker, sizeof blocker, dir, "target");
    assert_int_equal(mkdir(blocker, 0700), 0);
    path_in(inner, sizeof inner, blocker, "keep");
    write_file(inner, "x", 1);
    assert_status(disrnn__file_write_atomic(blocker, "new", 3, msg, sizeof msg), DISRNN_ERR_IO);
    assert_non_null(strstr(msg, "rename"));
    assert_int_equal(count_temps(dir), 0);

    /* A folder that does not exist */
    path_in(blocker, sizeof blocker, dir, "missing/file.bin");
    assert_status(disrnn__file_write_atomic(blocker, "new", 3, msg, sizeof msg), DISRNN_ERR_IO);
    assert_status(disrnn__file_write_atomic(NULL, "new", 3, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn__file_write_atomic("", "new", 3, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn__file_write_atomic(path, NULL, 3, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);

    /* the old file is still intact after all of that */
    assert_ok(disrnn__file_read(NULL, path, &back, &len, msg, sizeof msg));
    assert_int_equal(len, 12);
    assert_memory_equal(back, "old contents", 12);
    free(back);
}

static void test_relative_path_write(void **state)
{
    char cwd[1024], msg[256];
    unsigned char *back = NULL;
    size_t len = 0;
    (void)state;
    /* a bare file name: the temporary and the folder sync both use the current folder */
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(test_scratch), 0);
    assert_ok(disrnn__file_write_atomic("bare.bin", "12", 2, msg, sizeof msg));
    assert_ok(disrnn__file_read(NULL, "bare.bin", &back, &len, msg, sizeof msg));
    assert_int_equal(len, 2);
    free(back);
    assert_int_equal(count_temps("."), 0);
    assert_int_equal(chdir(cwd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_known_values),
        cmocka_unit_test(test_writer_little_endian),
        cmocka_unit_test(test_writer_reader_round_trip),
        cmocka_unit_test(test_reader_sticky_bounds),
        cmocka_unit_test(test_writer_out_of_memory),
        cmocka_unit_test(test_container_round_trip),
        cmocka_unit_test(test_container_rejects_damage),
        cmocka_unit_test(test_file_round_trip),
        cmocka_unit_test(test_file_read_errors),
        cmocka_unit_test(test_atomic_write_failure_keeps_old_file),
        cmocka_unit_test(test_relative_path_write),
    };
    return cmocka_run_group_tests(tests, test_scratch_setup, test_scratch_teardown);
}
