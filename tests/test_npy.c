/* NumPy .npy files: exact round trips for every dtype, order and rank, order conversion in
 * read_f64, big-endian input, a table of hostile headers, truncated payloads, overflowing shapes,
 * and the NumPy-written files of the shared data folder. */
#include "support.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void scratch_path(char *out, size_t len, const char *name) { snprintf(out, len, "%s/%s", test_scratch, name); }

static void write_bytes(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len) assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static unsigned char *read_bytes(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long n;
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = (unsigned char *)malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* A version major.0 file with the given header text (padded to 64 like NumPy) and payload. */
static void make_npy(const char *path, int major, const char *header, const void *payload, size_t plen)
{
    const size_t pre = major == 1 ? 10 : 12, n = strlen(header);
    size_t hlen = n + 1, total;
    unsigned char *buf;
    hlen += (64 - (pre + hlen) % 64) % 64;
    total = pre + hlen + plen;
    buf = (unsigned char *)malloc(total);
    assert_non_null(buf);
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major;
    buf[7] = 0;
    for (size_t i = 0; i < pre - 8; i++) buf[8 + i] = (unsigned char)(hlen >> (8 * i));
    memcpy(buf + pre, header, n);
    memset(buf + pre + n, ' ', hlen - n - 1);
    buf[pre + hlen - 1] = '\n';
    if (plen) memcpy(buf + pre + hlen, payload, plen);
    write_bytes(path, buf, total);
    free(buf);
}

/* ------------------------------------------------------------------------------------------ */

static const size_t elem_size[10] = {8, 4, 1, 2, 4, 8, 1, 2, 4, 8};

/* Element i of a test array of a dtype, distinctive and including each type's extremes. */
static void fill_value(int dtype, size_t i, void *dst, double *as_double)
{
    const size_t k = i % 7;
    switch (dtype) {
    case DISRNN_DTYPE_F64: {
        const double v[7] = {-0.0, 0.1, -1e300, 4.9406564584124654e-324, (double)i, 1.0 / 3.0, -2.5};
        memcpy(dst, &v[k], 8);
        *as_double = v[k];
        break;
    }
    case DISRNN_DTYPE_F32: {
        const float v[7] = {-0.0f, 0.1f, -3e38f, 1.4e-45f, (float)i, 1.0f / 3.0f, -2.5f};
        memcpy(dst, &v[k], 4);
        *as_double = (double)v[k];
        break;
    }
    case DISRNN_DTYPE_I8: { const int8_t v[7] = {INT8_MIN, INT8_MAX, 0, -1, (int8_t)i, 5, -7}; memcpy(dst, &v[k], 1); *as_double = v[k]; break; }
    case DISRNN_DTYPE_I16: { const int16_t v[7] = {INT16_MIN, INT16_MAX, 0, -1, (int16_t)i, 300, -7}; memcpy(dst, &v[k], 2); *as_double = v[k]; break; }
    case DISRNN_DTYPE_I32: { const int32_t v[7] = {INT32_MIN, INT32_MAX, 0, -1, (int32_t)i, 70000, -7}; memcpy(dst, &v[k], 4); *as_double = v[k]; break; }
    case DISRNN_DTYPE_I64: { const int64_t v[7] = {INT64_MIN, INT64_MAX, 0, -1, (int64_t)i, 1ll << 53, -7}; memcpy(dst, &v[k], 8); *as_double = (double)v[k]; break; }
    case DISRNN_DTYPE_U8: { const uint8_t v[7] = {0, UINT8_MAX, 1, 128, (uint8_t)i, 5, 7}; memcpy(dst, &v[k], 1); *as_double = v[k]; break; }
    case DISRNN_DTYPE_U16: { const uint16_t v[7] = {0, UINT16_MAX, 1, 32768, (uint16_t)i, 300, 7}; memcpy(dst, &v[k], 2); *as_double = v[k]; break; }
    case DISRNN_DTYPE_U32: { const uint32_t v[7] = {0, UINT32_MAX, 1, 1u << 31, (uint32_t)i, 70000, 7}; memcpy(dst, &v[k], 4); *as_double = v[k]; break; }
    default: { const uint64_t v[7] = {0, UINT64_MAX, 1, 1ull << 63, (uint64_t)i, 1ull << 53, 7}; memcpy(dst, &v[k], 8); *as_double = (double)v[k]; break; }
    }
}

/* Linear position of multi-index idx in an array of shape dims stored in an order. */
static size_t linear(const size_t *idx, const size_t *dims, size_t ndim, int fortran)
{
    size_t off = 0, stride = 1;
    if (fortran) {
        for (size_t k = 0; k < ndim; k++) { off += idx[k] * stride; stride *= dims[k]; }
    } else {
        for (size_t k = ndim; k-- > 0;) { off += idx[k] * stride; stride *= dims[k]; }
    }
    return off;
}

static void test_round_trip_every_dtype_order_rank(void **state)
{
    static const size_t shapes[4][3] = {{0, 0, 0}, {5, 0, 0}, {3, 4, 0}, {2, 3, 4}};
    char path[512], msg[256];
    (void)state;
    scratch_path(path, sizeof path, "rt.npy");
    for (int dt = 0; dt < 10; dt++)
        for (size_t ndim = 0; ndim <= 3; ndim++)
            for (int fo = 0; fo <= 1; fo++) {
                const size_t *dims = shapes[ndim];
                size_t count = 1, nd = 99, sh[DISRNN_NPY_MAX_DIMS];
                unsigned char raw[24 * 8], back[24 * 8];
                double conv[24], got[24], got_other[24];
                int dtype = -1, order = -1;
                for (size_t k = 0; k < ndim; k++) count *= dims[k];
                for (size_t i = 0; i < count; i++) fill_value(dt, i, raw + i * elem_size[dt], &conv[i]);
                if (disrnn_npy_write(path, raw, dt, ndim, dims, fo, msg, sizeof msg) != DISRNN_OK) fail_msg("%s", msg);
                assert_ok(disrnn_npy_info(path, &dtype, &nd, sh, &order, msg, sizeof msg));
                assert_int_equal(dtype, dt);
                assert_int_equal(nd, ndim);
                assert_int_equal(order, fo);
                for (size_t k = 0; k < ndim; k++) assert_int_equal(sh[k], dims[k]);
                memset(back, 0xcd, sizeof back);
                assert_ok(disrnn_npy_read_raw(path, back, count * elem_size[dt], msg, sizeof msg));
                assert_memory_equal(back, raw, count * elem_size[dt]); /* bit-exact */
                /* converted, in the file's own order */
                assert_ok(disrnn_npy_read_f64(path, got, count, fo, msg, sizeof msg));
                for (size_t i = 0; i < count; i++) assert_memory_equal(&got[i], &conv[i], sizeof(double));
                /* converted into the other order: element idx sits where that order puts it */
                assert_ok(disrnn_npy_read_f64(path, got_other, count, !fo, msg, sizeof msg));
                {
                    size_t idx[3] = {0, 0, 0};
                    for (size_t i = 0; i < count; i++) {
                        assert_memory_equal(&got_other[linear(idx, dims, ndim, !fo)], &got[linear(idx, dims, ndim, fo)],
                                            sizeof(double));
                        for (size_t k = 0; k < ndim; k++) {
                            if (++idx[k] < dims[k]) break;
                            idx[k] = 0;
                        }
                    }
                }
            }
}

/* Bytes NumPy 1.24 writes for np.save of np.arange(12.).reshape(3, 4) * 0.5 - 1 (header checked
 * against the real thing during development: growth-axis spare spaces, padding to 64). */
static void test_header_matches_numpy(void **state)
{
    static const char want_f[] = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }";
    static const char want_u[] = "{'descr': '|u1', 'fortran_order': True, 'shape': (7,), }";
    static const char want_s[] = "{'descr': '<i2', 'fortran_order': False, 'shape': (), }";
    char path[512], msg[256];
    double a[12];
    uint8_t u[7] = {0};
    int16_t s = -3;
    size_t len, shape2[2] = {3, 4}, shape1[1] = {7};
    unsigned char *b;
    (void)state;
    for (int i = 0; i < 12; i++) a[i] = i * 0.5 - 1;
    scratch_path(path, sizeof path, "hdr.npy");
    assert_ok(disrnn_npy_write(path, a, DISRNN_DTYPE_F64, 2, shape2, 0, msg, sizeof msg));
    b = read_bytes(path, &len);
    assert_int_equal(len, 128 + 96);
    assert_memory_equal(b, "\x93NUMPY\x01\x00\x76\x00", 10); /* version 1.0, header length 118 */
    assert_memory_equal(b + 10, want_f, strlen(want_f));
    for (size_t i = 10 + strlen(want_f); i < 127; i++) assert_int_equal(b[i], ' ');
    assert_int_equal(b[127], '\n');
    assert_memory_equal(b + 128, a, sizeof a);
    free(b);
    assert_ok(disrnn_npy_write(path, u, DISRNN_DTYPE_U8, 1, shape1, 1, msg, sizeof msg));
    b = read_bytes(path, &len);
    assert_int_equal(len, 128 + 7);
    assert_memory_equal(b + 10, want_u, strlen(want_u));
    free(b);
    assert_ok(disrnn_npy_write(path, &s, DISRNN_DTYPE_I16, 0, NULL, 0, msg, sizeof msg));
    b = read_bytes(path, &len);
    assert_int_equal(len, 128 + 2);
    assert_memory_equal(b + 10, want_s, strlen(want_s));
    assert_int_equal((len - 2) % 64, 0);
    free(b);
}

static void test_reorder_four_dims(void **state)
{
    const size_t dims[4] = {2, 3, 1, 4};
    double c_data[24], f_from_c[24], c_from_f[24];
    char path[512], msg[256];
    (void)state;
    for (int i = 0; i < 24; i++) c_data[i] = i;
    scratch_path(path, sizeof path, "r4.npy");
    assert_ok(disrnn_npy_write(path, c_data, DISRNN_DTYPE_F64, 4, dims, 0, msg, sizeof msg));
    assert_ok(disrnn_npy_read_f64(path, f_from_c, 24, 1, msg, sizeof msg));
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < 3; j++)
            for (size_t l = 0; l < 4; l++) {
                const size_t cidx = ((i * 3 + j) * 1 + 0) * 4 + l, fidx = i + 2 * (j + 3 * (0 + 1 * l));
                assert_true(f_from_c[fidx] == c_data[cidx]);
            }
    /* and back: a Fortran file read in C order */
    assert_ok(disrnn_npy_write(path, f_from_c, DISRNN_DTYPE_F64, 4, dims, 1, msg, sizeof msg));
    assert_ok(disrnn_npy_read_f64(path, c_from_f, 24, 0, msg, sizeof msg));
    assert_memory_equal(c_from_f, c_data, sizeof c_data);
}

static void test_big_endian_input(void **state)
{
    /* '>i4' [1, -2, 70000] and '>f8' [1.5, -0.25], written by hand in big-endian byte order */
    static const unsigned char i4[12] = {0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe, 0, 1, 0x11, 0x70};
    static const unsigned char f8[16] = {0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xbf, 0xd0, 0, 0, 0, 0, 0, 0};
    char path[512], msg[256];
    int32_t iv[3];
    double dv[3];
    (void)state;
    scratch_path(path, sizeof path, "be.npy");
    make_npy(path, 1, "{'descr': '>i4', 'fortran_order': False, 'shape': (3,), }", i4, sizeof i4);
    assert_ok(disrnn_npy_read_raw(path, iv, sizeof iv, msg, sizeof msg));
    assert_int_equal(iv[0], 1);
    assert_int_equal(iv[1], -2);
    assert_int_equal(iv[2], 70000);
    assert_ok(disrnn_npy_read_f64(path, dv, 3, 0, msg, sizeof msg));
    assert_true(dv[0] == 1.0 && dv[1] == -2.0 && dv[2] == 70000.0);
    make_npy(path, 1, "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", f8, sizeof f8);
    assert_ok(disrnn_npy_read_f64(path, dv, 2, 1, msg, sizeof msg));
    assert_true(dv[0] == 1.5 && dv[1] == -0.25);
}

static void test_header_variants_accepted(void **state)
{
    /* what a NumPy reader accepts and other writers produce: any key order, whitespace, double
     * quotes, trailing commas, Python 2 'L' suffixes, versions 2.0 and 3.0 */
    static const struct {
        int major;
        const char *h;
        size_t ndim, d0, d1;
        int fortran;
    } ok[] = {
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 1), }", 2, 2, 1, 0},
        {1, "{'shape': (2,1), 'fortran_order': True, 'descr': '<f8'}", 2, 2, 1, 1},
        {1, "{\"descr\":\"<f8\",\"fortran_order\":False,\"shape\":(2,)}", 1, 2, 0, 0},
        {1, "  {\t'descr' : '<f8' ,\n 'fortran_order' : False , 'shape' : ( 1 , 2 , ) , }  ", 2, 1, 2, 0},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2L, 1L), }", 2, 2, 1, 0},
        {2, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 1, 2, 0, 0},
        {3, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }", 2, 1, 2, 0},
    };
    const double payload[2] = {3.0, 4.0};
    char path[512], msg[256];
    (void)state;
    scratch_path(path, sizeof path, "var.npy");
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int dtype, fo;
        size_t nd, sh[DISRNN_NPY_MAX_DIMS];
        double got[2] = {0, 0};
        make_npy(path, ok[i].major, ok[i].h, payload, sizeof payload);
        if (disrnn_npy_info(path, &dtype, &nd, sh, &fo, msg, sizeof msg) != DISRNN_OK) fail_msg("%s: %s", ok[i].h, msg);
        assert_int_equal(dtype, DISRNN_DTYPE_F64);
        assert_int_equal(nd, ok[i].ndim);
        assert_int_equal(sh[0], ok[i].d0);
        if (nd > 1) assert_int_equal(sh[1], ok[i].d1);
        assert_int_equal(fo, ok[i].fortran);
        assert_ok(disrnn_npy_read_f64(path, got, 2, fo, msg, sizeof msg));
        assert_true(got[0] == 3.0 && got[1] == 4.0);
    }
}

static void test_hostile_headers(void **state)
{
    static const struct {
        const char *h;
        int status;
    } bad[] = {
        {"", DISRNN_ERR_CORRUPT},
        {"{", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), ", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f8, 'fortran_order': False, 'shape': (2,), }", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,}", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f8', 'fortran_order': False}", DISRNN_ERR_CORRUPT},
        {"{'fortran_order': False, 'shape': (2,)}", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f8', 'shape': (2,)}", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (2,)}", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'extra': 1}", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f8', 'fortran_order': 0, 'shape': (2,)}", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f8', 'fortran_order': Falsey, 'shape': (2,)}", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': 2}", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2)}", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (-2,)}", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (+2,)}", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (02,)}", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2.0,)}", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (,)}", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,,)}", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,2)}", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999,)}", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296)}", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952,)}", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000,)}", DISRNN_ERR_CORRUPT}, /* payload short */
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2,)} x", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f\\x38', 'fortran_order': False, 'shape': (2,)}", DISRNN_ERR_CORRUPT},
        {"{'descr': '<f8' 'fortran_order': False, 'shape': (2,)}", DISRNN_ERR_CORRUPT},
        {"{descr: '<f8', 'fortran_order': False, 'shape': (2,)}", DISRNN_ERR_CORRUPT},
        {"['descr', '<f8']", DISRNN_ERR_CORRUPT},
        {"{'descr': '<c16', 'fortran_order': False, 'shape': (1,)}", DISRNN_ERR_UNSUPPORTED},
        {"{'descr': '|O', 'fortran_order': False, 'shape': (2,)}", DISRNN_ERR_UNSUPPORTED},
        {"{'descr': '|b1', 'fortran_order': False, 'shape': (2,)}", DISRNN_ERR_UNSUPPORTED},
        {"{'descr': '<U4', 'fortran_order': False, 'shape': (1,)}", DISRNN_ERR_UNSUPPORTED},
        {"{'descr': '<f2', 'fortran_order': False, 'shape': (2,)}", DISRNN_ERR_UNSUPPORTED},
        {"{'descr': '|f8', 'fortran_order': False, 'shape': (2,)}", DISRNN_ERR_UNSUPPORTED},
        {"{'descr': '<M8[ns]', 'fortran_order': False, 'shape': (2,)}", DISRNN_ERR_UNSUPPORTED},
        {"{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (2,)}", DISRNN_ERR_UNSUPPORTED},
        {"{'descr': [('a', '<f8'), 'fortran_order': False, 'shape': (2,)}", DISRNN_ERR_CORRUPT},
        {"{'descr': [('a', '<f8')), 'fortran_order': False, 'shape': (2,)}", DISRNN_ERR_CORRUPT},
        {"{'descr': '<c16', 'fortran_order': False, 'shape': (-1,)}", DISRNN_ERR_CORRUPT},
    };
    const double payload[2] = {1.0, 2.0};
    char path[512], msg[256];
    (void)state;
    scratch_path(path, sizeof path, "bad.npy");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int dtype = -1, fo = -1;
        size_t nd = 77, sh[DISRNN_NPY_MAX_DIMS];
        double out[2] = {-9.0, -9.0};
        int st;
        make_npy(path, 1, bad[i].h, payload, sizeof payload);
        msg[0] = '\0';
        st = disrnn_npy_info(path, &dtype, &nd, sh, &fo, msg, sizeof msg);
        if (st != bad[i].status) fail_msg("header %zu \"%s\": status %d (%s), wanted %d", i, bad[i].h, st, msg, bad[i].status);
        assert_true(strlen(msg) > 0);
        assert_int_equal(nd, 77); /* outputs untouched on failure */
        assert_status(disrnn_npy_read_f64(path, out, 2, 0, msg, sizeof msg), bad[i].status);
        assert_true(out[0] == -9.0 && out[1] == -9.0);
        assert_status(disrnn_npy_read_raw(path, out, sizeof out, msg, sizeof msg), bad[i].status);
    }
}

static void test_hostile_preambles_and_truncation(void **state)
{
    const double payload[3] = {1.0, 2.0, 3.0};
    char path[512], src[512], msg[256];
    unsigned char *full, pre[16];
    size_t len;
    double out[3];
    int dtype, fo;
    size_t nd, sh[DISRNN_NPY_MAX_DIMS];
    (void)state;
    scratch_path(src, sizeof src, "good.npy");
    scratch_path(path, sizeof path, "cut.npy");
    make_npy(src, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", payload, sizeof payload);
    full = read_bytes(src, &len);
    assert_ok(disrnn_npy_read_f64(src, out, 3, 0, msg, sizeof msg));
    /* every truncation: preamble, header or payload cut short */
    for (size_t n = 0; n < len; n++) {
        write_bytes(path, full, n);
        assert_status(disrnn_npy_info(path, &dtype, &nd, sh, &fo, msg, sizeof msg) == DISRNN_OK
                          ? disrnn_npy_read_f64(path, out, 3, 0, msg, sizeof msg)
                          : DISRNN_ERR_CORRUPT,
                      DISRNN_ERR_CORRUPT);
        assert_status(disrnn_npy_read_f64(path, out, 3, 0, msg, sizeof msg), DISRNN_ERR_CORRUPT);
    }
    /* trailing bytes after the data are ignored, as NumPy does */
    {
        unsigned char *more = (unsigned char *)malloc(len + 5);
        assert_non_null(more);
        memcpy(more, full, len);
        memset(more + len, 0x55, 5);
        write_bytes(path, more, len + 5);
        assert_ok(disrnn_npy_read_f64(path, out, 3, 0, msg, sizeof msg));
        assert_true(out[2] == 3.0);
        free(more);
    }
    /* wrong magic, unknown versions */
    memcpy(pre, full, 16);
    full[1] = 'n';
    write_bytes(path, full, len);
    assert_status(disrnn_npy_info(path, &dtype, &nd, sh, &fo, msg, sizeof msg), DISRNN_ERR_CORRUPT);
    memcpy(full, pre, 16);
    full[6] = 4;
    write_bytes(path, full, len);
    assert_status(disrnn_npy_info(path, &dtype, &nd, sh, &fo, msg, sizeof msg), DISRNN_ERR_UNSUPPORTED);
    full[6] = 0;
    write_bytes(path, full, len);
    assert_status(disrnn_npy_info(path, &dtype, &nd, sh, &fo, msg, sizeof msg), DISRNN_ERR_UNSUPPORTED);
    full[6] = 1;
    full[7] = 1;
    write_bytes(path, full, len);
    assert_status(disrnn_npy_info(path, &dtype, &nd, sh, &fo, msg, sizeof msg), DISRNN_ERR_UNSUPPORTED);
    /* header lengths beyond the file, and absurd ones (version 2.0, 4 GiB) */
    memcpy(full, pre, 16);
    full[8] = 0xff;
    full[9] = 0xff;
    write_bytes(path, full, len);
    assert_status(disrnn_npy_info(path, &dtype, &nd, sh, &fo, msg, sizeof msg), DISRNN_ERR_CORRUPT);
    {
        unsigned char v2[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0xff, 0xff, 0xff, 0xff};
        write_bytes(path, v2, sizeof v2);
        assert_status(disrnn_npy_info(path, &dtype, &nd, sh, &fo, msg, sizeof msg), DISRNN_ERR_CORRUPT);
        assert_non_null(strstr(msg, "header length"));
    }
    free(full);
}

static void test_argument_errors(void **state)
{
    char path[512], msg[256];
    double d[6] = {0};
    size_t shape[2] = {2, 3}, huge[2] = {SIZE_MAX / 2, 4}, nd, sh[DISRNN_NPY_MAX_DIMS], nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    int dtype, fo;
    unsigned char raw[48];
    (void)state;
    assert_int_equal(disrnn_npy_max_dims(), DISRNN_NPY_MAX_DIMS);
    scratch_path(path, sizeof path, "args.npy");
    assert_status(disrnn_npy_write(NULL, d, DISRNN_DTYPE_F64, 2, shape, 0, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_npy_write(path, d, 10, 2, shape, 0, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_npy_write(path, d, -1, 2, shape, 0, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_npy_write(path, d, DISRNN_DTYPE_F64, 9, nine, 0, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_npy_write(path, d, DISRNN_DTYPE_F64, 2, NULL, 0, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_npy_write(path, d, DISRNN_DTYPE_F64, 2, shape, 2, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_npy_write(path, NULL, DISRNN_DTYPE_F64, 2, shape, 0, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_npy_write(path, d, DISRNN_DTYPE_F64, 2, huge, 0, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);
    assert_status(access(path, F_OK), -1); /* nothing was written */
    assert_status(disrnn_npy_write("/nonexistent-folder/x.npy", d, DISRNN_DTYPE_F64, 2, shape, 0, msg, sizeof msg),
                  DISRNN_ERR_IO);
    assert_ok(disrnn_npy_write(path, d, DISRNN_DTYPE_F64, 2, shape, 0, NULL, 0));
    assert_status(disrnn_npy_info(NULL, &dtype, &nd, sh, &fo, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_npy_info(path, NULL, &nd, sh, &fo, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_npy_info(path, &dtype, &nd, NULL, &fo, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_npy_info("/nonexistent-folder/x.npy", &dtype, &nd, sh, &fo, msg, sizeof msg), DISRNN_ERR_IO);
    assert_status(disrnn_npy_info(test_scratch, &dtype, &nd, sh, &fo, msg, sizeof msg), DISRNN_ERR_IO);
    /* buffers one element short: refused, nothing written */
    memset(raw, 0x5a, sizeof raw);
    assert_status(disrnn_npy_read_raw(path, raw, 47, msg, sizeof msg), DISRNN_ERR_BUFFER_TOO_SMALL);
    for (size_t i = 0; i < sizeof raw; i++) assert_int_equal(raw[i], 0x5a);
    assert_status(disrnn_npy_read_raw(path, NULL, 48, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);
    d[0] = 7.0;
    assert_status(disrnn_npy_read_f64(path, d, 5, 0, msg, sizeof msg), DISRNN_ERR_BUFFER_TOO_SMALL);
    assert_true(d[0] == 7.0);
    assert_status(disrnn_npy_read_f64(path, d, 6, 3, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);
    assert_status(disrnn_npy_read_f64(path, NULL, 6, 0, msg, sizeof msg), DISRNN_ERR_INVALID_ARG);
    /* an empty array needs no buffer */
    shape[0] = 0;
    assert_ok(disrnn_npy_write(path, NULL, DISRNN_DTYPE_I32, 2, shape, 0, msg, sizeof msg));
    assert_ok(disrnn_npy_read_f64(path, NULL, 0, 1, msg, sizeof msg));
    assert_ok(disrnn_npy_read_raw(path, NULL, 0, msg, sizeof msg));
}

/* ------------------------------------------------------------------------------------------ */
/* NumPy-written files of the shared data folder */

static int shared_file(char *out, size_t len, const char *rel)
{
    const char *root = test_shared_data();
    if (!root) return 0;
    snprintf(out, len, "%s/%s", root, rel);
    return access(out, R_OK) == 0;
}

static void test_shared_files_read_and_rewrite_identically(void **state)
{
    static const struct {
        const char *rel;
        int dtype;
        size_t ndim, shape[3];
    } files[] = {
        {"datahigh_pmd/ex2_counts_20ms.npy", DISRNN_DTYPE_U8, 3, {112, 61, 76}},
        {"datahigh_pmd/ex2_length_ms.npy", DISRNN_DTYPE_I32, 1, {112, 0, 0}},
        {"churchland_maze_tme/maze_rates.npy", DISRNN_DTYPE_F64, 3, {10, 61, 50}},
    };
    char path[1024], out[600], msg[256];
    int found = 0;
    (void)state;
    scratch_path(out, sizeof out, "rewrite.npy");
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        int dtype, fo;
        size_t nd, sh[DISRNN_NPY_MAX_DIMS], count = 1, n1, n2;
        unsigned char *raw, *a, *b;
        if (!shared_file(path, sizeof path, files[i].rel)) continue;
        found++;
        assert_ok(disrnn_npy_info(path, &dtype, &nd, sh, &fo, msg, sizeof msg));
        assert_int_equal(dtype, files[i].dtype);
        assert_int_equal(nd, files[i].ndim);
        assert_int_equal(fo, 0);
        for (size_t k = 0; k < nd; k++) {
            assert_int_equal(sh[k], files[i].shape[k]);
            count *= sh[k];
        }
        raw = (unsigned char *)malloc(count * elem_size[dtype]);
        assert_non_null(raw);
        assert_ok(disrnn_npy_read_raw(path, raw, count * elem_size[dtype], msg, sizeof msg));
        /* our writer reproduces NumPy's file byte for byte */
        assert_ok(disrnn_npy_write(out, raw, dtype, nd, sh, fo, msg, sizeof msg));
        a = read_bytes(path, &n1);
        b = read_bytes(out, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(a, b, n1);
        free(a);
        free(b);
        free(raw);
    }
    if (!found) {
        print_message("shared data folder absent: skipping the NumPy-written files\n");
        skip();
    }
}

/* maze_rates.npy against maze_rates.csv (written by the same script with Python's shortest
 * round-trip repr, so strtod recovers every double exactly). */
static void test_shared_maze_rates_match_csv(void **state)
{
    char npy[1024], csv[1024], msg[256], line[8192];
    double *rates;
    FILE *f;
    size_t rows = 0;
    (void)state;
    if (!shared_file(npy, sizeof npy, "churchland_maze_tme/maze_rates.npy") ||
        !shared_file(csv, sizeof csv, "churchland_maze_tme/maze_rates.csv")) {
        print_message("shared data folder absent: skipping maze_rates\n");
        skip();
    }
    rates = (double *)malloc(10 * 61 * 50 * sizeof(double));
    assert_non_null(rates);
    assert_ok(disrnn_npy_read_f64(npy, rates, 10 * 61 * 50, 0, msg, sizeof msg));
    f = fopen(csv, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f)); /* header */
    while (fgets(line, sizeof line, f)) {
        char *p = line, *end;
        const long cond = strtol(p, &end, 10);
        size_t t;
        assert_true(*end == ',');
        p = end + 1;
        strtol(p, &end, 10); /* time in ms */
        assert_true(*end == ',');
        assert_true(cond >= 0 && cond < 10);
        t = rows % 61;
        for (size_t n = 0; n < 50; n++) {
            const double v = strtod(end + 1, &end);
            assert_true(v == rates[((size_t)cond * 61 + t) * 50 + n]);
        }
        rows++;
    }
    fclose(f);
    assert_int_equal(rows, 610);
    free(rates);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_dtype_order_rank),
        cmocka_unit_test(test_header_matches_numpy),
        cmocka_unit_test(test_reorder_four_dims),
        cmocka_unit_test(test_big_endian_input),
        cmocka_unit_test(test_header_variants_accepted),
        cmocka_unit_test(test_hostile_headers),
        cmocka_unit_test(test_hostile_preambles_and_truncation),
        cmocka_unit_test(test_argument_errors),
        cmocka_unit_test(test_shared_files_read_and_rewrite_identically),
        cmocka_unit_test(test_shared_maze_rates_match_csv),
    };
    return cmocka_run_group_tests(tests, test_scratch_setup, test_scratch_teardown);
}
