/* NumPy .npy files (format 1.0, 2.0 and 3.0).
 *
 * The header is a Python dict literal such as
 *     {'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }
 * NumPy reads it with ast.literal_eval; here a small strict parser accepts exactly the literals
 * NumPy writes (keys in any order, any whitespace, trailing commas) and nothing that would need a
 * Python interpreter. The file is hostile input: header lengths, dimensions and their products are
 * checked before anything is allocated or read, and a payload shorter than the shape says is
 * rejected before a byte of it is copied. Only integers appear in headers, so nothing here depends
 * on the locale. */
#include "container.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6u
/* NumPy's own headers for these dtypes are under 256 bytes; 1 MiB leaves room for any writer that
 * pads generously while refusing absurd lengths before allocating. */
#define NPY_HEADER_MAX ((size_t)1 << 20)
/* Data start at a multiple of this in files we write, as in NumPy's own files (aligned memory maps). */
#define NPY_ALIGN 64u

typedef struct npy_header {
    int dtype;
    int swap; /* the file's byte order differs from the host's */
    int fortran;
    size_t ndim;
    size_t shape[DISRNN_NPY_MAX_DIMS];
    size_t count;    /* number of elements */
    size_t itemsize; /* bytes per element */
    size_t nbytes;   /* count * itemsize */
} npy_header;

static const struct {
    char kind;
    unsigned size;
    int dtype;
} dtype_table[] = {
    {'f', 8, DISRNN_DTYPE_F64}, {'f', 4, DISRNN_DTYPE_F32}, {'i', 1, DISRNN_DTYPE_I8},  {'i', 2, DISRNN_DTYPE_I16},
    {'i', 4, DISRNN_DTYPE_I32}, {'i', 8, DISRNN_DTYPE_I64}, {'u', 1, DISRNN_DTYPE_U8},  {'u', 2, DISRNN_DTYPE_U16},
    {'u', 4, DISRNN_DTYPE_U32}, {'u', 8, DISRNN_DTYPE_U64},
};
#define NUM_DTYPES (sizeof dtype_table / sizeof dtype_table[0])

static int host_is_little(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static size_t dtype_size(int dtype)
{
    for (size_t i = 0; i < NUM_DTYPES; i++)
        if (dtype_table[i].dtype == dtype) return dtype_table[i].size;
    return 0;
}

static void swap_bytes(unsigned char *p, size_t count, size_t size)
{
    if (size < 2) return;
    for (size_t i = 0; i < count; i++, p += size)
        for (size_t a = 0, b = size - 1; a < b; a++, b--) {
            const unsigned char t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

/* ---------------------------------------------------------------------------------------------
 * Header parser. Each function advances *p within [*p, end) and returns a status. */

typedef struct cursor {
    const char *p, *end;
    char *msg;
    size_t msg_len;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int bad(cursor *c, const char *what)
{
    return disrnn__fail_msg(c->msg, c->msg_len, DISRNN_ERR_CORRUPT, "Malformed .npy header: %s.", what);
}

/* A Python string literal without escapes (NumPy never writes any) into out (capacity cap). */
static int parse_string(cursor *c, char *out, size_t cap)
{
    char q;
    size_t n = 0;
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return bad(c, "expected a quoted string");
    q = *c->p++;
    while (c->p < c->end && *c->p != q) {
        const unsigned char ch = (unsigned char)*c->p;
        if (ch == '\\' || ch < 0x20 || ch == 0x7f) return bad(c, "a string holds an escape or control character");
        if (n + 1 >= cap) return bad(c, "a string is too long");
        out[n++] = (char)ch;
        c->p++;
    }
    if (c->p >= c->end) return bad(c, "unterminated string");
    c->p++;
    out[n] = '\0';
    return DISRNN_OK;
}

static int is_ident_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
}

static int parse_bool(cursor *c, int *out)
{
    const size_t left = (size_t)(c->end - c->p);
    size_t n;
    if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
        n = 4;
        *out = 1;
    } else if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
        n = 5;
        *out = 0;
    } else {
        return bad(c, "fortran_order must be True or False");
    }
    if (left > n && is_ident_char(c->p[n])) return bad(c, "fortran_order must be True or False");
    c->p += n;
    return DISRNN_OK;
}

/* A non-negative decimal integer as Python 3 writes it (no sign, no leading zeros), with the 'L'
 * suffix that Python 2 era NumPy wrote into version 1.0 headers. */
static int parse_dim(cursor *c, size_t *out)
{
    uint64_t v = 0;
    const char *start = c->p;
    if (c->p < c->end && *c->p == '-') return bad(c, "a dimension is negative");
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        const unsigned d = (unsigned)(*c->p - '0');
        if (v > (UINT64_MAX - d) / 10) return bad(c, "a dimension does not fit in 64 bits");
        v = v * 10 + d;
        c->p++;
    }
    if (c->p == start) return bad(c, "expected a dimension");
    if (c->p - start > 1 && *start == '0') return bad(c, "a dimension has leading zeros");
    if (c->p < c->end && *c->p == 'L') c->p++;
    if (c->p < c->end && is_ident_char(*c->p)) return bad(c, "a dimension is not an integer");
    if (v > (uint64_t)SIZE_MAX) return bad(c, "a dimension is too large for this platform");
    *out = (size_t)v;
    return DISRNN_OK;
}

/* "()", "(n,)" or "(n, m, ...)" with an optional trailing comma; "(n)" is an int in Python, not a tuple. */
static int parse_shape(cursor *c, npy_header *h)
{
    int st, trailing = 0;
    h->ndim = 0;
    if (c->p >= c->end || *c->p != '(') return bad(c, "shape must be a tuple");
    c->p++;
    skip_ws(c);
    while (c->p < c->end && *c->p != ')') {
        size_t d = 0;
        if (h->ndim == DISRNN_NPY_MAX_DIMS)
            return disrnn__fail_msg(c->msg, c->msg_len, DISRNN_ERR_CORRUPT,
                                    "Malformed .npy header: the shape has more than %d dimensions.",
                                    DISRNN_NPY_MAX_DIMS);
        if ((st = parse_dim(c, &d)) != DISRNN_OK) return st;
        h->shape[h->ndim++] = d;
        skip_ws(c);
        trailing = 0;
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            trailing = 1;
            skip_ws(c);
        } else if (c->p < c->end && *c->p != ')') {
            return bad(c, "expected ',' or ')' in the shape");
        }
    }
    if (c->p >= c->end) return bad(c, "unterminated shape tuple");
    c->p++;
    if (h->ndim == 1 && !trailing) return bad(c, "the shape (n) is an integer, not a tuple (write (n,))");
    return DISRNN_OK;
}

/* Skip one bracketed Python literal (a structured dtype's list of fields) without interpreting
 * it, so a well-formed header with such a dtype is reported as unsupported, not as corrupt. */
static int skip_nested(cursor *c)
{
    char stack[32];
    size_t depth = 0;
    while (c->p < c->end) {
        const char ch = *c->p;
        if (ch == '\'' || ch == '"') {
            char tmp[256];
            int st = parse_string(c, tmp, sizeof tmp);
            if (st != DISRNN_OK) return st;
            continue;
        }
        if (ch == '[' || ch == '(' || ch == '{') {
            if (depth == sizeof stack) return bad(c, "the dtype is nested too deeply");
            stack[depth++] = ch == '[' ? ']' : ch == '(' ? ')' : '}';
        } else if (ch == ']' || ch == ')' || ch == '}') {
            if (depth == 0 || stack[depth - 1] != ch) return bad(c, "unbalanced brackets in the dtype");
            if (--depth == 0) {
                c->p++;
                return DISRNN_OK;
            }
        }
        c->p++;
    }
    return bad(c, "unterminated dtype");
}

/* Sets h->dtype, or leaves a reason in unsupported (reported only if the rest of the header is sound). */
static int parse_descr(cursor *c, npy_header *h, char *unsupported, size_t ulen)
{
    char s[64];
    int st, little;
    unsigned size = 0;
    if (c->p < c->end && (*c->p == '[' || *c->p == '{' || *c->p == '(')) {
        if ((st = skip_nested(c)) != DISRNN_OK) return st;
        snprintf(unsupported, ulen, "Structured .npy arrays are not supported (plain numeric dtypes only).");
        return DISRNN_OK;
    }
    if ((st = parse_string(c, s, sizeof s)) != DISRNN_OK) return st;
    if (strlen(s) == 3 && strchr("<>|=", s[0]) && s[2] >= '1' && s[2] <= '9') size = (unsigned)(s[2] - '0');
    for (size_t i = 0; size && i < NUM_DTYPES; i++) {
        if (dtype_table[i].kind != s[1] || dtype_table[i].size != size) continue;
        if (s[0] == '|' && size > 1) {
            snprintf(unsupported, ulen, "The .npy dtype '%s' has no byte order ('|' is for 1-byte types).", s);
            return DISRNN_OK;
        }
        little = s[0] == '<' || (s[0] != '>' && host_is_little());
        h->dtype = dtype_table[i].dtype;
        h->itemsize = size;
        h->swap = size > 1 && little != host_is_little();
        return DISRNN_OK;
    }
    snprintf(unsupported, ulen, "The .npy dtype '%s' is not supported (float64, float32, int8-64 and uint8-64 are).", s);
    return DISRNN_OK;
}

static int parse_header(const char *text, size_t len, npy_header *h, char *msg, size_t msg_len)
{
    cursor c;
    char unsupported[160];
    int st, seen_descr = 0, seen_order = 0, seen_shape = 0;
    unsupported[0] = '\0';
    c.p = text;
    c.end = text + len;
    c.msg = msg;
    c.msg_len = msg_len;
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '{') return bad(&c, "the header is not a dict");
    c.p++;
    for (;;) {
        char key[32];
        skip_ws(&c);
        if (c.p < c.end && *c.p == '}') break;
        if ((st = parse_string(&c, key, sizeof key)) != DISRNN_OK) return st;
        skip_ws(&c);
        if (c.p >= c.end || *c.p != ':') return bad(&c, "expected ':' after a key");
        c.p++;
        skip_ws(&c);
        if (strcmp(key, "descr") == 0 && !seen_descr) {
            seen_descr = 1;
            st = parse_descr(&c, h, unsupported, sizeof unsupported);
        } else if (strcmp(key, "fortran_order") == 0 && !seen_order) {
            seen_order = 1;
            st = parse_bool(&c, &h->fortran);
        } else if (strcmp(key, "shape") == 0 && !seen_shape) {
            seen_shape = 1;
            st = parse_shape(&c, h);
        } else {
            return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_CORRUPT, "Malformed .npy header: %s key '%s'.",
                                    (strcmp(key, "descr") == 0 || strcmp(key, "fortran_order") == 0 ||
                                     strcmp(key, "shape") == 0)
                                        ? "repeated"
                                        : "unexpected",
                                    key);
        }
        if (st != DISRNN_OK) return st;
        skip_ws(&c);
        if (c.p < c.end && *c.p == ',') {
            c.p++;
            continue;
        }
        if (c.p < c.end && *c.p == '}') break;
        return bad(&c, c.p >= c.end ? "unterminated dict" : "expected ',' or '}'");
    }
    if (c.p >= c.end) return bad(&c, "unterminated dict");
    c.p++;
    skip_ws(&c);
    if (c.p != c.end) return bad(&c, "text after the dict");
    if (!seen_descr || !seen_order || !seen_shape)
        return bad(&c, !seen_descr ? "missing 'descr'" : !seen_order ? "missing 'fortran_order'" : "missing 'shape'");
    if (unsupported[0]) return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_UNSUPPORTED, "%s", unsupported);
    h->count = 1;
    for (size_t k = 0; k < h->ndim; k++)
        if (disrnn__mul_size(h->count, h->shape[k], &h->count))
            return bad(&c, "the number of elements overflows");
    if (disrnn__mul_size(h->count, h->itemsize, &h->nbytes)) return bad(&c, "the byte size of the array overflows");
    return DISRNN_OK;
}

/* ---------------------------------------------------------------------------------------------
 * File level */

/* Open path, parse its header and leave the stream at the first data byte. On success *f is open. */
static int npy_open(const char *path, FILE **f, npy_header *h, char *msg, size_t msg_len)
{
    const disrnn__allocator *al = disrnn__default_allocator();
    unsigned char pre[12];
    struct stat st;
    size_t size, plen, hlen, offset;
    char *text;
    int status;
    *f = NULL;
    memset(h, 0, sizeof *h);
    if (!path) return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_INVALID_ARG, "The path is NULL.");
    *f = fopen(path, "rb");
    if (!*f) return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_IO, "Cannot open '%s': %s.", path, strerror(errno));
    if (fstat(fileno(*f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0) {
        status = disrnn__fail_msg(msg, msg_len, DISRNN_ERR_IO, "'%s' is not a regular file.", path);
        goto fail;
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        status = disrnn__fail_msg(msg, msg_len, DISRNN_ERR_IO, "'%s' is too large for this platform.", path);
        goto fail;
    }
    size = (size_t)st.st_size;
    if (size < 10 || fread(pre, 1, 10, *f) != 10 || memcmp(pre, NPY_MAGIC, NPY_MAGIC_LEN) != 0) {
        status = disrnn__fail_msg(msg, msg_len, DISRNN_ERR_CORRUPT, "'%s' is not a .npy file (bad or missing magic).",
                                  path);
        goto fail;
    }
    if (pre[6] < 1 || pre[6] > 3 || pre[7] != 0) {
        status = disrnn__fail_msg(msg, msg_len, DISRNN_ERR_UNSUPPORTED,
                                  "'%s' has .npy format version %u.%u; versions 1.0, 2.0 and 3.0 are supported.", path,
                                  (unsigned)pre[6], (unsigned)pre[7]);
        goto fail;
    }
    if (pre[6] == 1) {
        plen = 10;
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    } else {
        if (size < 12 || fread(pre + 10, 1, 2, *f) != 2) {
            status = disrnn__fail_msg(msg, msg_len, DISRNN_ERR_CORRUPT, "'%s': truncated .npy preamble.", path);
            goto fail;
        }
        plen = 12;
        hlen = (size_t)((uint32_t)pre[8] | (uint32_t)pre[9] << 8 | (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24);
    }
    if (hlen > NPY_HEADER_MAX || hlen > size - plen) {
        status = disrnn__fail_msg(msg, msg_len, DISRNN_ERR_CORRUPT,
                                  "'%s': the .npy header length %zu is beyond the file (%zu bytes) or the %zu-byte limit.",
                                  path, hlen, size, NPY_HEADER_MAX);
        goto fail;
    }
    text = (char *)disrnn__alloc(al, hlen);
    if (!text) {
        status = disrnn__fail_msg(msg, msg_len, DISRNN_ERR_NOMEM, "Out of memory reading the header of '%s'.", path);
        goto fail;
    }
    if (hlen && fread(text, 1, hlen, *f) != hlen) {
        disrnn__free(al, text);
        status = disrnn__fail_msg(msg, msg_len, DISRNN_ERR_IO, "Error reading the header of '%s'.", path);
        goto fail;
    }
    status = parse_header(text, hlen, h, msg, msg_len);
    disrnn__free(al, text);
    if (status != DISRNN_OK) goto fail;
    offset = plen + hlen;
    /* Bytes after the data are ignored, as NumPy does (np.save can append several arrays to one file). */
    if (h->nbytes > size - offset) {
        status = disrnn__fail_msg(msg, msg_len, DISRNN_ERR_CORRUPT,
                                  "'%s' is truncated: the shape needs %zu bytes of data but %zu are present.", path,
                                  h->nbytes, size - offset);
        goto fail;
    }
    return DISRNN_OK;
fail:
    fclose(*f);
    *f = NULL;
    return status;
}

int disrnn_npy_max_dims(void) { return DISRNN_NPY_MAX_DIMS; }

int disrnn_npy_info(const char *path, int *dtype, size_t *ndim, size_t *shape, int *fortran_order, char *msg,
                    size_t msg_len)
{
    npy_header h;
    FILE *f;
    int st;
    if (!path || !dtype || !ndim || !shape || !fortran_order)
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_INVALID_ARG, "NULL path or output pointer.");
    if ((st = npy_open(path, &f, &h, msg, msg_len)) != DISRNN_OK) return st;
    fclose(f);
    *dtype = h.dtype;
    *ndim = h.ndim;
    for (size_t k = 0; k < h.ndim; k++) shape[k] = h.shape[k];
    *fortran_order = h.fortran;
    return DISRNN_OK;
}

static int read_payload(FILE *f, void *dst, const npy_header *h, const char *path, char *msg, size_t msg_len)
{
    if (h->nbytes && fread(dst, 1, h->nbytes, f) != h->nbytes)
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_IO, "Error reading the data of '%s'.", path);
    if (h->swap) swap_bytes((unsigned char *)dst, h->count, h->itemsize);
    return DISRNN_OK;
}

int disrnn_npy_read_raw(const char *path, void *data, size_t nbytes, char *msg, size_t msg_len)
{
    npy_header h;
    FILE *f;
    int st;
    if ((st = npy_open(path, &f, &h, msg, msg_len)) != DISRNN_OK) return st;
    if (nbytes < h.nbytes) {
        fclose(f);
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_BUFFER_TOO_SMALL,
                                "The buffer holds %zu bytes; '%s' has %zu bytes of data.", nbytes, path, h.nbytes);
    }
    if (!data && h.nbytes) {
        fclose(f);
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_INVALID_ARG, "The data buffer is NULL.");
    }
    st = read_payload(f, data, &h, path, msg, msg_len);
    fclose(f);
    return st;
}

/* Element i of a native-order raw buffer as a double. */
static double element(const unsigned char *raw, int dtype, size_t i)
{
    switch (dtype) {
    case DISRNN_DTYPE_F64: { double v; memcpy(&v, raw + 8 * i, 8); return v; }
    case DISRNN_DTYPE_F32: { float v; memcpy(&v, raw + 4 * i, 4); return (double)v; }
    case DISRNN_DTYPE_I8: { int8_t v; memcpy(&v, raw + i, 1); return (double)v; }
    case DISRNN_DTYPE_I16: { int16_t v; memcpy(&v, raw + 2 * i, 2); return (double)v; }
    case DISRNN_DTYPE_I32: { int32_t v; memcpy(&v, raw + 4 * i, 4); return (double)v; }
    case DISRNN_DTYPE_I64: { int64_t v; memcpy(&v, raw + 8 * i, 8); return (double)v; }
    case DISRNN_DTYPE_U8: return (double)raw[i];
    case DISRNN_DTYPE_U16: { uint16_t v; memcpy(&v, raw + 2 * i, 2); return (double)v; }
    case DISRNN_DTYPE_U32: { uint32_t v; memcpy(&v, raw + 4 * i, 4); return (double)v; }
    default: { uint64_t v; memcpy(&v, raw + 8 * i, 8); return (double)v; }
    }
}

/* Walk the elements in the output's order (first index fastest for Fortran, last for C) and fetch
 * each from its place in the file's order; one carry loop handles any number of dimensions. */
static void convert_reorder(const unsigned char *raw, const npy_header *h, double *out, int out_fortran)
{
    size_t stride[DISRNN_NPY_MAX_DIMS], idx[DISRNN_NPY_MAX_DIMS], acc = 1, src = 0;
    const size_t n = h->ndim;
    if (h->fortran) {
        for (size_t k = 0; k < n; k++) { stride[k] = acc; acc *= h->shape[k]; }
    } else {
        for (size_t k = n; k-- > 0;) { stride[k] = acc; acc *= h->shape[k]; }
    }
    for (size_t k = 0; k < n; k++) idx[k] = 0;
    for (size_t i = 0; i < h->count; i++) {
        out[i] = element(raw, h->dtype, src);
        for (size_t j = 0; j < n; j++) {
            const size_t k = out_fortran ? j : n - 1 - j;
            if (++idx[k] < h->shape[k]) {
                src += stride[k];
                break;
            }
            idx[k] = 0;
            src -= stride[k] * (h->shape[k] - 1);
        }
    }
}

int disrnn_npy_read_f64(const char *path, double *out, size_t len, int fortran_order, char *msg, size_t msg_len)
{
    const disrnn__allocator *al = disrnn__default_allocator();
    npy_header h;
    FILE *f;
    unsigned char *raw;
    int st, same_order;
    if (fortran_order != 0 && fortran_order != 1)
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_INVALID_ARG, "fortran_order must be 0 or 1, not %d.",
                                fortran_order);
    if ((st = npy_open(path, &f, &h, msg, msg_len)) != DISRNN_OK) return st;
    if (len < h.count) {
        fclose(f);
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_BUFFER_TOO_SMALL,
                                "The buffer holds %zu values; '%s' has %zu elements.", len, path, h.count);
    }
    if (!out && h.count) {
        fclose(f);
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_INVALID_ARG, "The output buffer is NULL.");
    }
    /* With at most one dimension longer than 1 both orders are the same memory. */
    same_order = h.fortran == fortran_order;
    if (!same_order) {
        size_t big = 0;
        for (size_t k = 0; k < h.ndim; k++) big += h.shape[k] > 1;
        same_order = big <= 1;
    }
    if (h.dtype == DISRNN_DTYPE_F64 && same_order) {
        st = read_payload(f, out, &h, path, msg, msg_len);
        fclose(f);
        return st;
    }
    raw = (unsigned char *)disrnn__alloc(al, h.nbytes);
    if (!raw) {
        fclose(f);
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_NOMEM, "Out of memory reading '%s'.", path);
    }
    st = read_payload(f, raw, &h, path, msg, msg_len);
    fclose(f);
    if (st == DISRNN_OK) {
        if (same_order)
            for (size_t i = 0; i < h.count; i++) out[i] = element(raw, h.dtype, i);
        else
            convert_reorder(raw, &h, out, fortran_order);
    }
    disrnn__free(al, raw);
    return st;
}

/* Decimal digits of v at p (no terminator); returns their number. */
static size_t put_size(char *p, size_t v)
{
    char tmp[24];
    size_t n = 0, i;
    do {
        tmp[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v);
    for (i = 0; i < n; i++) p[i] = tmp[n - 1 - i];
    return n;
}

int disrnn_npy_write(const char *path, const void *data, int dtype, size_t ndim, const size_t *shape,
                     int fortran_order, char *msg, size_t msg_len)
{
    const disrnn__allocator *al = disrnn__default_allocator();
    /* 8 dimensions of at most 20 digits plus the fixed text stay far below this. */
    char dict[400];
    size_t n = 0, count = 1, itemsize, nbytes, plen, hlen, total, spare;
    unsigned char *buf;
    int st;
    char kind = 'f';
    if (!path || !*path) return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_INVALID_ARG, "The path is NULL or empty.");
    itemsize = dtype_size(dtype);
    if (!itemsize) return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_INVALID_ARG, "dtype %d is not a disrnn_dtype.", dtype);
    if (ndim > DISRNN_NPY_MAX_DIMS)
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_INVALID_ARG, "ndim = %zu exceeds %d.", ndim,
                                DISRNN_NPY_MAX_DIMS);
    if (ndim && !shape) return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_INVALID_ARG, "The shape is NULL.");
    if (fortran_order != 0 && fortran_order != 1)
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_INVALID_ARG, "fortran_order must be 0 or 1, not %d.",
                                fortran_order);
    for (size_t k = 0; k < ndim; k++)
        if (disrnn__mul_size(count, shape[k], &count))
            return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_INVALID_ARG, "The number of elements overflows.");
    if (disrnn__mul_size(count, itemsize, &nbytes))
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_INVALID_ARG, "The byte size of the array overflows.");
    if (!data && nbytes) return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_INVALID_ARG, "The data pointer is NULL.");
    for (size_t i = 0; i < NUM_DTYPES; i++)
        if (dtype_table[i].dtype == dtype) kind = dtype_table[i].kind;

    /* The dict exactly as NumPy writes it: keys sorted, ", " separators, a trailing ", ". */
    memcpy(dict + n, "{'descr': '", 11);
    n += 11;
    dict[n++] = itemsize == 1 ? '|' : '<';
    dict[n++] = kind;
    dict[n++] = (char)('0' + (int)itemsize);
    memcpy(dict + n, "', 'fortran_order': ", 20);
    n += 20;
    if (fortran_order) {
        memcpy(dict + n, "True", 4);
        n += 4;
    } else {
        memcpy(dict + n, "False", 5);
        n += 5;
    }
    memcpy(dict + n, ", 'shape': (", 12);
    n += 12;
    for (size_t k = 0; k < ndim; k++) {
        if (k) {
            dict[n++] = ',';
            dict[n++] = ' ';
        }
        n += put_size(dict + n, shape[k]);
    }
    if (ndim == 1) dict[n++] = ',';
    memcpy(dict + n, "), }", 4);
    n += 4;

    /* Exactly NumPy's layout (format.py, _write_array_header and _wrap_header), so files are
     * byte-identical to np.save's: spare spaces letting the growth axis (first, or last in Fortran
     * order) gain digits in place, then 1 to 64 spaces and a newline so the data start on a
     * multiple of 64. Version 2.0 only when the length no longer fits version 1.0's 16 bits. */
    spare = 0;
    if (ndim) {
        char digits[24];
        spare = 21 - put_size(digits, shape[fortran_order ? ndim - 1 : 0]);
    }
    plen = 10;
    hlen = n + spare + 1;
    hlen += NPY_ALIGN - (plen + hlen) % NPY_ALIGN;
    if (hlen > 65535) {
        plen = 12;
        hlen = n + spare + 1;
        hlen += NPY_ALIGN - (plen + hlen) % NPY_ALIGN;
    }
    if (disrnn__add_size(plen + hlen, nbytes, &total))
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_INVALID_ARG, "The file size overflows.");
    buf = (unsigned char *)disrnn__alloc(al, total);
    if (!buf) return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_NOMEM, "Out of memory writing '%s'.", path);
    memcpy(buf, NPY_MAGIC, NPY_MAGIC_LEN);
    if (plen == 10) {
        buf[6] = 1;
        buf[7] = 0;
        buf[8] = (unsigned char)(hlen & 0xffu);
        buf[9] = (unsigned char)(hlen >> 8);
    } else {
        buf[6] = 2;
        buf[7] = 0;
        for (int i = 0; i < 4; i++) buf[8 + i] = (unsigned char)(hlen >> (8 * i));
    }
    memcpy(buf + plen, dict, n);
    memset(buf + plen + n, ' ', hlen - n - 1);
    buf[plen + hlen - 1] = '\n';
    if (nbytes) memcpy(buf + plen + hlen, data, nbytes);
    /* Files are little-endian whatever the host, like every other libdisrnn file. */
    if (!host_is_little()) swap_bytes(buf + plen + hlen, count, itemsize);
    st = disrnn__file_write_atomic(path, buf, total, msg, msg_len);
    disrnn__free(al, buf);
    return st;
}
