/* libFuzzer harness for the .npy header parser and reader (see README.md in this folder).
 *
 * The NPY functions take paths, so each input is written to one private temporary file (in
 * TMPDIR, ideally a tmpfs) and read back through every public entry point. Statuses other than
 * the documented ones, or a success whose outputs disagree, abort. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disrnn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP ((size_t)1 << 16)

static char path[512];
static double out[CAP], out_f[CAP];
static unsigned char raw[CAP * 8];

static int documented(int st)
{
    return st == DISRNN_OK || st == DISRNN_ERR_CORRUPT || st == DISRNN_ERR_UNSUPPORTED || st == DISRNN_ERR_BUFFER_TOO_SMALL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f;
    int dtype = -1, fo = -1, st;
    size_t ndim = 0, shape[DISRNN_NPY_MAX_DIMS], count = 1;
    char msg[256];
    if (!path[0]) {
        const char *tmp = getenv("TMPDIR");
        int fd;
        snprintf(path, sizeof path, "%s/fuzz-npy-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        fd = mkstemp(path);
        if (fd < 0) abort();
        close(fd);
    }
    f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);

    st = disrnn_npy_info(path, &dtype, &ndim, shape, &fo, msg, sizeof msg);
    if (!documented(st) || st == DISRNN_ERR_BUFFER_TOO_SMALL) abort();
    if (st != DISRNN_OK) {
        /* every reader must refuse the same file with the same status */
        if (disrnn_npy_read_f64(path, out, CAP, 0, msg, sizeof msg) != st) abort();
        if (disrnn_npy_read_raw(path, raw, sizeof raw, msg, sizeof msg) != st) abort();
        return 0;
    }
    if (dtype < 0 || dtype > 9 || ndim > DISRNN_NPY_MAX_DIMS || (fo != 0 && fo != 1)) abort();
    for (size_t k = 0; k < ndim; k++) count = shape[k] && count > SIZE_MAX / shape[k] ? SIZE_MAX : count * shape[k];
    st = disrnn_npy_read_raw(path, raw, sizeof raw, msg, sizeof msg);
    if (!documented(st)) abort();
    st = disrnn_npy_read_f64(path, out, CAP, 0, msg, sizeof msg);
    if (!documented(st) || (st == DISRNN_OK) != (count <= CAP)) abort();
    if (st == DISRNN_OK && disrnn_npy_read_f64(path, out_f, CAP, 1, msg, sizeof msg) != DISRNN_OK) abort();
    return 0;
}
