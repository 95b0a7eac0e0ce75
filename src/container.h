/* The binary container every libdisrnn file uses (docs/file-format.md): little-endian, versioned,
 * CRC-32C checked, written atomically. Readers are bounds-checked cursors that treat the bytes as
 * hostile: every read checks the remaining length, and a failed read sticks. */
#ifndef DISRNN_CONTAINER_H
#define DISRNN_CONTAINER_H

#include "common.h"

#define DISRNN__FORMAT_VERSION 1u
#define DISRNN__KIND_MODEL 1u
#define DISRNN__KIND_CHECKPOINT 2u

/** Growable output buffer; after an allocation failure every write is a no-op and oom is set. */
typedef struct disrnn__writer {
    const disrnn__allocator *al;
    unsigned char *buf;
    size_t len, cap;
    int oom;
} disrnn__writer;

void disrnn__w_init(disrnn__writer *w, const disrnn__allocator *al);
void disrnn__w_free(disrnn__writer *w);
void disrnn__w_u32(disrnn__writer *w, uint32_t v);
void disrnn__w_u64(disrnn__writer *w, uint64_t v);
void disrnn__w_i64(disrnn__writer *w, int64_t v);
void disrnn__w_f64(disrnn__writer *w, double v);
void disrnn__w_f64s(disrnn__writer *w, const double *v, size_t n);
void disrnn__w_bytes(disrnn__writer *w, const void *p, size_t n);

/** Bounds-checked reader. */
typedef struct disrnn__reader {
    const unsigned char *p;
    size_t len, pos;
    int bad; /* set by the first read past the end; later reads return zeros */
} disrnn__reader;

void disrnn__r_init(disrnn__reader *r, const void *p, size_t len);
uint32_t disrnn__r_u32(disrnn__reader *r);
uint64_t disrnn__r_u64(disrnn__reader *r);
int64_t disrnn__r_i64(disrnn__reader *r);
double disrnn__r_f64(disrnn__reader *r);
/** Reads n doubles; fails (bad) without touching out when fewer remain. */
void disrnn__r_f64s(disrnn__reader *r, double *out, size_t n);
/** 1 when n more bytes remain (checks n * size overflow too). */
int disrnn__r_has(const disrnn__reader *r, size_t count, size_t size);

/** Wrap a payload: magic "DISRNN\r\n", u32 version, u32 kind, u64 payload length, payload,
 *  u32 CRC-32C of all preceding bytes. Result in out (a writer that owns the bytes). */
int disrnn__container_wrap(const disrnn__writer *payload, uint32_t kind, disrnn__writer *out);
/** Check magic, version (newer -> DISRNN_ERR_VERSION), kind, length and checksum; on success the
 *  reader spans the payload. Messages go to msg (optional). */
int disrnn__container_open(const void *buf, size_t len, uint32_t kind, disrnn__reader *payload, char *msg,
                           size_t msg_len);

/** CRC-32C (Castagnoli) of a buffer, continuing from crc (start with 0). */
uint32_t disrnn__crc32c(uint32_t crc, const void *p, size_t n);

/** Read a whole file into memory from the allocator (size limit 1 GiB). */
int disrnn__file_read(const disrnn__allocator *al, const char *path, unsigned char **buf, size_t *len, char *msg,
                      size_t msg_len);
/** Write bytes to path.tmp.XXXXXX in the same folder, fsync, rename over path. */
int disrnn__file_write_atomic(const char *path, const void *buf, size_t len, char *msg, size_t msg_len);

/* model_io.c: the model section, shared by model files and trainer checkpoints */
void disrnn__model_write(disrnn__writer *w, const disrnn_model_t *m);
/** Read a model section into a new model; messages to msg. */
int disrnn__model_read(disrnn__reader *r, const disrnn__allocator *al, disrnn_model_t **out, char *msg,
                       size_t msg_len);

#endif
