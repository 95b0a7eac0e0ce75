/* libFuzzer harness for disrnn_model_load_buffer (see README.md in this folder).
 *
 * Random bytes almost never carry a valid CRC-32C, so they would only exercise the frame check.
 * When the first input byte is odd, the rest is taken as a payload and wrapped in a valid frame
 * (magic, version, kind, length, checksum) so the fuzzer reaches the model-section parser, the
 * part that interprets hostile sizes. Any model that loads must serialise back to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "container.h"
#include "disrnn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_loaded(disrnn_model_t *m, const uint8_t *file, size_t len)
{
    size_t need = 0;
    unsigned char *again;
    if (disrnn_model_save_buffer(m, NULL, 0, &need) != DISRNN_OK || need != len) abort();
    again = (unsigned char *)malloc(need);
    if (!again) abort();
    if (disrnn_model_save_buffer(m, again, need, NULL) != DISRNN_OK || memcmp(again, file, len) != 0) abort();
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    disrnn_model_t *m = NULL;
    char msg[256];
    int st;
    if (size > 0 && (data[0] & 1)) {
        disrnn__writer payload, framed;
        disrnn__w_init(&payload, NULL);
        disrnn__w_bytes(&payload, data + 1, size - 1);
        disrnn__w_init(&framed, NULL);
        if (disrnn__container_wrap(&payload, DISRNN__KIND_MODEL, &framed) == DISRNN_OK) {
            st = disrnn_model_load_buffer(&m, framed.buf, framed.len, msg, sizeof msg);
            if (st == DISRNN_OK) check_loaded(m, framed.buf, framed.len);
            else if (st != DISRNN_ERR_CORRUPT || m != NULL) abort();
        }
        disrnn_model_free(m);
        disrnn__w_free(&payload);
        disrnn__w_free(&framed);
        return 0;
    }
    st = disrnn_model_load_buffer(&m, data, size, msg, sizeof msg);
    if (st == DISRNN_OK) check_loaded(m, data, size);
    else if ((st != DISRNN_ERR_CORRUPT && st != DISRNN_ERR_VERSION) || m != NULL) abort();
    disrnn_model_free(m);
    return 0;
}
