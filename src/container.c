/* The binary container of every libdisrnn file (layout in docs/file-format.md).
 *
 * Bytes are always little-endian and doubles are stored as their IEEE-754 bit patterns, so a file
 * means the same thing on every host. Readers treat the bytes as hostile: every read checks the
 * remaining length first, and after the first failed read the reader stays bad and returns zeros,
 * so parsing code can read a whole record and check `bad` once. */
#include "container.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define MAGIC "DISRNN\r\n"
#define MAGIC_LEN 8u
/* magic, u32 version, u32 kind, u64 payload length */
#define HEADER_LEN 24u
#define TRAILER_LEN 4u
#define FILE_LIMIT ((size_t)1 << 30)

/* ---------------------------------------------------------------------------------------------
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78). A constant table rather than one built on
 * first use, because lazily filled globals would be mutable shared state between threads. */
static const uint32_t crc_table[256] = {
    0x00000000u, 0xf26b8303u, 0xe13b70f7u, 0x1350f3f4u, 0xc79a971fu, 0x35f1141cu,
    0x26a1e7e8u, 0xd4ca64ebu, 0x8ad958cfu, 0x78b2dbccu, 0x6be22838u, 0x9989ab3bu,
    0x4d43cfd0u, 0xbf284cd3u, 0xac78bf27u, 0x5e133c24u, 0x105ec76fu, 0xe235446cu,
    0xf165b798u, 0x030e349bu, 0xd7c45070u, 0x25afd373u, 0x36ff2087u, 0xc494a384u,
    0x9a879fa0u, 0x68ec1ca3u, 0x7bbcef57u, 0x89d76c54u, 0x5d1d08bfu, 0xaf768bbcu,
    0xbc267848u, 0x4e4dfb4bu, 0x20bd8edeu, 0xd2d60dddu, 0xc186fe29u, 0x33ed7d2au,
    0xe72719c1u, 0x154c9ac2u, 0x061c6936u, 0xf477ea35u, 0xaa64d611u, 0x580f5512u,
    0x4b5fa6e6u, 0xb93425e5u, 0x6dfe410eu, 0x9f95c20du, 0x8cc531f9u, 0x7eaeb2fau,
    0x30e349b1u, 0xc288cab2u, 0xd1d83946u, 0x23b3ba45u, 0xf779deaeu, 0x05125dadu,
    0x1642ae59u, 0xe4292d5au, 0xba3a117eu, 0x4851927du, 0x5b016189u, 0xa96ae28au,
    0x7da08661u, 0x8fcb0562u, 0x9c9bf696u, 0x6ef07595u, 0x417b1dbcu, 0xb3109ebfu,
    0xa0406d4bu, 0x522bee48u, 0x86e18aa3u, 0x748a09a0u, 0x67dafa54u, 0x95b17957u,
    0xcba24573u, 0x39c9c670u, 0x2a993584u, 0xd8f2b687u, 0x0c38d26cu, 0xfe53516fu,
    0xed03a29bu, 0x1f682198u, 0x5125dad3u, 0xa34e59d0u, 0xb01eaa24u, 0x42752927u,
    0x96bf4dccu, 0x64d4cecfu, 0x77843d3bu, 0x85efbe38u, 0xdbfc821cu, 0x2997011fu,
    0x3ac7f2ebu, 0xc8ac71e8u, 0x1c661503u, 0xee0d9600u, 0xfd5d65f4u, 0x0f36e6f7u,
    0x61c69362u, 0x93ad1061u, 0x80fde395u, 0x72966096u, 0xa65c047du, 0x5437877eu,
    0x4767748au, 0xb50cf789u, 0xeb1fcbadu, 0x197448aeu, 0x0a24bb5au, 0xf84f3859u,
    0x2c855cb2u, 0xdeeedfb1u, 0xcdbe2c45u, 0x3fd5af46u, 0x7198540du, 0x83f3d70eu,
    0x90a324fau, 0x62c8a7f9u, 0xb602c312u, 0x44694011u, 0x5739b3e5u, 0xa55230e6u,
    0xfb410cc2u, 0x092a8fc1u, 0x1a7a7c35u, 0xe811ff36u, 0x3cdb9bddu, 0xceb018deu,
    0xdde0eb2au, 0x2f8b6829u, 0x82f63b78u, 0x709db87bu, 0x63cd4b8fu, 0x91a6c88cu,
    0x456cac67u, 0xb7072f64u, 0xa457dc90u, 0x563c5f93u, 0x082f63b7u, 0xfa44e0b4u,
    0xe9141340u, 0x1b7f9043u, 0xcfb5f4a8u, 0x3dde77abu, 0x2e8e845fu, 0xdce5075cu,
    0x92a8fc17u, 0x60c37f14u, 0x73938ce0u, 0x81f80fe3u, 0x55326b08u, 0xa759e80bu,
    0xb4091bffu, 0x466298fcu, 0x1871a4d8u, 0xea1a27dbu, 0xf94ad42fu, 0x0b21572cu,
    0xdfeb33c7u, 0x2d80b0c4u, 0x3ed04330u, 0xccbbc033u, 0xa24bb5a6u, 0x502036a5u,
    0x4370c551u, 0xb11b4652u, 0x65d122b9u, 0x97baa1bau, 0x84ea524eu, 0x7681d14du,
    0x2892ed69u, 0xdaf96e6au, 0xc9a99d9eu, 0x3bc21e9du, 0xef087a76u, 0x1d63f975u,
    0x0e330a81u, 0xfc588982u, 0xb21572c9u, 0x407ef1cau, 0x532e023eu, 0xa145813du,
    0x758fe5d6u, 0x87e466d5u, 0x94b49521u, 0x66df1622u, 0x38cc2a06u, 0xcaa7a905u,
    0xd9f75af1u, 0x2b9cd9f2u, 0xff56bd19u, 0x0d3d3e1au, 0x1e6dcdeeu, 0xec064eedu,
    0xc38d26c4u, 0x31e6a5c7u, 0x22b65633u, 0xd0ddd530u, 0x0417b1dbu, 0xf67c32d8u,
    0xe52cc12cu, 0x1747422fu, 0x49547e0bu, 0xbb3ffd08u, 0xa86f0efcu, 0x5a048dffu,
    0x8ecee914u, 0x7ca56a17u, 0x6ff599e3u, 0x9d9e1ae0u, 0xd3d3e1abu, 0x21b862a8u,
    0x32e8915cu, 0xc083125fu, 0x144976b4u, 0xe622f5b7u, 0xf5720643u, 0x07198540u,
    0x590ab964u, 0xab613a67u, 0xb831c993u, 0x4a5a4a90u, 0x9e902e7bu, 0x6cfbad78u,
    0x7fab5e8cu, 0x8dc0dd8fu, 0xe330a81au, 0x115b2b19u, 0x020bd8edu, 0xf0605beeu,
    0x24aa3f05u, 0xd6c1bc06u, 0xc5914ff2u, 0x37faccf1u, 0x69e9f0d5u, 0x9b8273d6u,
    0x88d28022u, 0x7ab90321u, 0xae7367cau, 0x5c18e4c9u, 0x4f48173du, 0xbd23943eu,
    0xf36e6f75u, 0x0105ec76u, 0x12551f82u, 0xe03e9c81u, 0x34f4f86au, 0xc69f7b69u,
    0xd5cf889du, 0x27a40b9eu, 0x79b737bau, 0x8bdcb4b9u, 0x988c474du, 0x6ae7c44eu,
    0xbe2da0a5u, 0x4c4623a6u, 0x5f16d052u, 0xad7d5351u,
};

uint32_t disrnn__crc32c(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *b = (const unsigned char *)p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = crc_table[(crc ^ b[i]) & 0xffu] ^ (crc >> 8);
    return ~crc;
}

/* ---------------------------------------------------------------------------------------------
 * Writer */

void disrnn__w_init(disrnn__writer *w, const disrnn__allocator *al)
{
    w->al = al ? al : disrnn__default_allocator();
    w->buf = NULL;
    w->len = 0;
    w->cap = 0;
    w->oom = 0;
}

void disrnn__w_free(disrnn__writer *w)
{
    if (w->buf) disrnn__free(w->al, w->buf);
    w->buf = NULL;
    w->len = 0;
    w->cap = 0;
}

/* Room for n more bytes; the allocator has no realloc, so growth copies into a block twice as big. */
static int reserve(disrnn__writer *w, size_t n)
{
    size_t need, cap;
    unsigned char *nb;
    if (w->oom) return 0;
    if (disrnn__add_size(w->len, n, &need)) {
        w->oom = 1;
        return 0;
    }
    if (need <= w->cap) return 1;
    cap = w->cap ? w->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    nb = (unsigned char *)disrnn__alloc(w->al, cap);
    if (!nb) {
        w->oom = 1;
        return 0;
    }
    if (w->len) memcpy(nb, w->buf, w->len);
    if (w->buf) disrnn__free(w->al, w->buf);
    w->buf = nb;
    w->cap = cap;
    return 1;
}

void disrnn__w_bytes(disrnn__writer *w, const void *p, size_t n)
{
    if (n == 0 || !reserve(w, n)) return;
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

void disrnn__w_u32(disrnn__writer *w, uint32_t v)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
    disrnn__w_bytes(w, b, 4);
}

void disrnn__w_u64(disrnn__writer *w, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    disrnn__w_bytes(w, b, 8);
}

/* Two's complement bits, so the unsigned conversion is exact and reversible. */
void disrnn__w_i64(disrnn__writer *w, int64_t v) { disrnn__w_u64(w, (uint64_t)v); }

void disrnn__w_f64(disrnn__writer *w, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    disrnn__w_u64(w, bits);
}

void disrnn__w_f64s(disrnn__writer *w, const double *v, size_t n)
{
    size_t bytes;
    if (n == 0) return;
    if (disrnn__mul_size(n, 8, &bytes) || !reserve(w, bytes)) {
        w->oom = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) disrnn__w_f64(w, v[i]);
}

/* ---------------------------------------------------------------------------------------------
 * Reader */

void disrnn__r_init(disrnn__reader *r, const void *p, size_t len)
{
    r->p = (const unsigned char *)p;
    r->len = p ? len : 0;
    r->pos = 0;
    r->bad = 0;
}

int disrnn__r_has(const disrnn__reader *r, size_t count, size_t size)
{
    size_t n;
    if (r->bad || disrnn__mul_size(count, size, &n)) return 0;
    return n <= r->len - r->pos;
}

/* Pointer to the next n bytes, or NULL (and bad) when fewer remain. */
static const unsigned char *take(disrnn__reader *r, size_t n)
{
    const unsigned char *p;
    if (r->bad || n > r->len - r->pos) {
        r->bad = 1;
        return NULL;
    }
    p = r->p + r->pos;
    r->pos += n;
    return p;
}

uint32_t disrnn__r_u32(disrnn__reader *r)
{
    const unsigned char *b = take(r, 4);
    uint32_t v = 0;
    if (!b) return 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

uint64_t disrnn__r_u64(disrnn__reader *r)
{
    const unsigned char *b = take(r, 8);
    uint64_t v = 0;
    if (!b) return 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

int64_t disrnn__r_i64(disrnn__reader *r)
{
    uint64_t u = disrnn__r_u64(r);
    int64_t v;
    /* memcpy rather than a cast: converting an out-of-range unsigned to signed is
     * implementation-defined, the bit copy is the two's complement value on every target. */
    memcpy(&v, &u, sizeof v);
    return v;
}

double disrnn__r_f64(disrnn__reader *r)
{
    uint64_t bits = disrnn__r_u64(r);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

void disrnn__r_f64s(disrnn__reader *r, double *out, size_t n)
{
    if (!disrnn__r_has(r, n, 8)) {
        r->bad = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) out[i] = disrnn__r_f64(r);
}

/* ---------------------------------------------------------------------------------------------
 * Container */

int disrnn__container_wrap(const disrnn__writer *payload, uint32_t kind, disrnn__writer *out)
{
    size_t total;
    uint32_t crc;
    if (payload->oom) return DISRNN_ERR_NOMEM;
    if (disrnn__add_size(payload->len, HEADER_LEN + TRAILER_LEN, &total)) return DISRNN_ERR_NOMEM;
    out->len = 0;
    out->oom = 0;
    if (!reserve(out, total)) return DISRNN_ERR_NOMEM;
    disrnn__w_bytes(out, MAGIC, MAGIC_LEN);
    disrnn__w_u32(out, DISRNN__FORMAT_VERSION);
    disrnn__w_u32(out, kind);
    disrnn__w_u64(out, (uint64_t)payload->len);
    disrnn__w_bytes(out, payload->buf, payload->len);
    crc = disrnn__crc32c(0, out->buf, out->len);
    disrnn__w_u32(out, crc);
    return out->oom ? DISRNN_ERR_NOMEM : DISRNN_OK;
}

static const char *kind_name(uint32_t kind)
{
    switch (kind) {
    case DISRNN__KIND_MODEL: return "model";
    case DISRNN__KIND_CHECKPOINT: return "trainer checkpoint";
    default: return "unknown";
    }
}

/* The frame (magic, version, kind, length, payload, checksum) is the same in every format
 * version; only the payload changes. So the checksum is verified before the version is trusted:
 * a damaged version field is reported as corruption, and a well-formed newer file as a version
 * problem. */
int disrnn__container_open(const void *buf, size_t len, uint32_t kind, disrnn__reader *payload, char *msg,
                           size_t msg_len)
{
    disrnn__reader r;
    uint32_t version, file_kind, stored_crc, crc;
    uint64_t plen;
    if (!buf && len) return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_INVALID_ARG, "The buffer is NULL.");
    if (len == 0) return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_CORRUPT, "Empty file: no libdisrnn header.");
    if (memcmp(buf, MAGIC, len < MAGIC_LEN ? len : MAGIC_LEN) != 0)
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_CORRUPT,
                                "Not a libdisrnn file: the first 8 bytes are not the magic \"DISRNN\\r\\n\".");
    if (len < HEADER_LEN + TRAILER_LEN)
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_CORRUPT,
                                "Truncated file: %zu bytes, fewer than the %u bytes of header and checksum.", len,
                                HEADER_LEN + TRAILER_LEN);
    disrnn__r_init(&r, buf, len);
    r.pos = MAGIC_LEN;
    version = disrnn__r_u32(&r);
    file_kind = disrnn__r_u32(&r);
    plen = disrnn__r_u64(&r);
    if (plen != (uint64_t)(len - HEADER_LEN - TRAILER_LEN))
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_CORRUPT,
                                "Truncated or padded file: the header announces a %llu-byte payload but %zu bytes "
                                "are present.",
                                (unsigned long long)plen, len - HEADER_LEN - TRAILER_LEN);
    crc = disrnn__crc32c(0, buf, len - TRAILER_LEN);
    r.pos = len - TRAILER_LEN;
    stored_crc = disrnn__r_u32(&r);
    if (crc != stored_crc)
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_CORRUPT,
                                "Checksum mismatch (stored CRC-32C 0x%08x, computed 0x%08x): the file is damaged.",
                                (unsigned)stored_crc, (unsigned)crc);
    if (version == 0)
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_CORRUPT, "Invalid format version 0.");
    if (version > DISRNN__FORMAT_VERSION)
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_VERSION,
                                "The file has format version %u; this library reads versions up to %u.",
                                (unsigned)version, (unsigned)DISRNN__FORMAT_VERSION);
    if (file_kind != kind)
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_CORRUPT, "The file holds a %s (kind %u), not a %s.",
                                kind_name(file_kind), (unsigned)file_kind, kind_name(kind));
    disrnn__r_init(payload, (const unsigned char *)buf + HEADER_LEN, len - HEADER_LEN - TRAILER_LEN);
    return DISRNN_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Files */

int disrnn__file_read(const disrnn__allocator *al, const char *path, unsigned char **buf, size_t *len, char *msg,
                      size_t msg_len)
{
    FILE *f;
    struct stat st;
    unsigned char *data;
    size_t size, got;
    int extra;
    if (!path || !buf || !len) return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_INVALID_ARG, "NULL path or output.");
    if (!al) al = disrnn__default_allocator();
    f = fopen(path, "rb");
    if (!f) return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_IO, "Cannot open '%s': %s.", path, strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_IO, "'%s' is not a regular file.", path);
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > (uint64_t)FILE_LIMIT) {
        fclose(f);
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_IO, "'%s' is larger than the 1 GiB limit.", path);
    }
    size = (size_t)st.st_size;
    data = (unsigned char *)disrnn__alloc(al, size);
    if (!data) {
        fclose(f);
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_NOMEM, "Out of memory reading %zu bytes of '%s'.", size,
                                path);
    }
    got = size ? fread(data, 1, size, f) : 0;
    /* A file that changed size under us is an I/O problem, not something to parse. */
    extra = (got == size) ? fgetc(f) : EOF;
    if (got != size || extra != EOF || ferror(f)) {
        fclose(f);
        disrnn__free(al, data);
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_IO, "Error reading '%s' (it changed size or a read failed).",
                                path);
    }
    fclose(f);
    *buf = data;
    *len = size;
    return DISRNN_OK;
}

/* Permissions a plain fopen would give a new file (0666 minus the umask). The umask is read from
 * /proc because umask() can only be queried by changing it, which would race with other threads. */
static mode_t new_file_mode(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[128];
    mode_t mask = 022;
    if (f) {
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "Umask:", 6) == 0) {
                unsigned v = 0;
                const char *p = line + 6;
                while (*p == ' ' || *p == '\t') p++;
                while (*p >= '0' && *p <= '7') v = v * 8u + (unsigned)(*p++ - '0');
                mask = (mode_t)(v & 0777u);
                break;
            }
        }
        fclose(f);
    }
    return (mode_t)(0666 & ~mask);
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t k = write(fd, p, chunk);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += (size_t)k;
        n -= (size_t)k;
    }
    return 0;
}

/* Durability of the rename itself; failures here do not make the new file wrong, so they are
 * ignored. path is a writable copy of the file name, cut in place at its folder. */
static void sync_dir(char *path)
{
    char *slash = strrchr(path, '/');
    int fd;
    if (!slash) {
        path[0] = '.';
        path[1] = '\0';
    } else {
        slash[slash == path ? 1 : 0] = '\0'; /* "/file" lives in "/" */
    }
    fd = open(path, O_RDONLY);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

int disrnn__file_write_atomic(const char *path, const void *buf, size_t len, char *msg, size_t msg_len)
{
    static const char suffix[] = ".tmp.XXXXXX";
    const disrnn__allocator *al = disrnn__default_allocator();
    struct stat st;
    size_t plen, tlen;
    char *tmp;
    int fd, err;
    mode_t mode;
    if (!path || !*path || (!buf && len))
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_INVALID_ARG, "NULL or empty path, or NULL data.");
    plen = strlen(path);
    if (disrnn__add_size(plen, sizeof suffix, &tlen))
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_INVALID_ARG, "Path too long.");
    tmp = (char *)disrnn__alloc(al, tlen);
    if (!tmp) return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_NOMEM, "Out of memory.");
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, suffix, sizeof suffix);
    /* Keep the permissions of a file being replaced; otherwise those a new file would get
     * (mkstemp creates 0600, which would surprise users sharing data files). */
    mode = (stat(path, &st) == 0 && S_ISREG(st.st_mode)) ? (mode_t)(st.st_mode & 07777) : new_file_mode();
    fd = mkstemp(tmp);
    if (fd < 0) {
        err = errno;
        disrnn__free(al, tmp);
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_IO, "Cannot create a temporary file next to '%s': %s.", path,
                                strerror(err));
    }
    if (write_all(fd, (const unsigned char *)buf, len) != 0 || fsync(fd) != 0) {
        err = errno;
        close(fd);
        unlink(tmp);
        disrnn__free(al, tmp);
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_IO, "Cannot write '%s': %s.", path, strerror(err));
    }
    (void)fchmod(fd, mode);
    if (close(fd) != 0) {
        err = errno;
        unlink(tmp);
        disrnn__free(al, tmp);
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_IO, "Cannot write '%s': %s.", path, strerror(err));
    }
    if (rename(tmp, path) != 0) {
        err = errno;
        unlink(tmp);
        disrnn__free(al, tmp);
        return disrnn__fail_msg(msg, msg_len, DISRNN_ERR_IO, "Cannot rename the temporary file onto '%s': %s.", path,
                                strerror(err));
    }
    sync_dir(tmp);
    disrnn__free(al, tmp);
    return DISRNN_OK;
}
