/* Status codes, version queries, per-handle error messages and logging. */
#include "common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int disrnn_version_number(void) { return DISRNN_VERSION_NUMBER; }
const char *disrnn_version_string(void) { return DISRNN_VERSION_STRING; }

/* One list generates the string table; the public enum is written out by hand in disrnn.h. */
#define DISRNN__STATUS_LIST(X)                                                                     \
    X(DISRNN_OK, "success")                                                                        \
    X(DISRNN_STOPPED, "stopped by a callback")                                                     \
    X(DISRNN_EARLY_STOPPED, "stopped early: the validation loss stopped improving")                \
    X(DISRNN_ERR_INVALID_ARG, "invalid argument")                                                  \
    X(DISRNN_ERR_NOMEM, "out of memory")                                                           \
    X(DISRNN_ERR_BUFFER_TOO_SMALL, "output buffer too small")                                      \
    X(DISRNN_ERR_NONFINITE, "non-finite value (NaN or Inf)")                                       \
    X(DISRNN_ERR_LAPACK, "a LAPACK routine failed")                                                \
    X(DISRNN_ERR_CALLBACK, "a callback returned an error")                                         \
    X(DISRNN_ERR_BAD_STATE, "the call does not fit the handle's state")                            \
    X(DISRNN_ERR_IO, "input/output error")                                                         \
    X(DISRNN_ERR_CORRUPT, "corrupt or truncated data")                                             \
    X(DISRNN_ERR_VERSION, "written by a newer, incompatible format version")                       \
    X(DISRNN_ERR_UNSUPPORTED, "not supported")                                                     \
    X(DISRNN_ERR_DATA, "data values invalid for the model")

const char *disrnn_status_string(int status)
{
    switch (status) {
#define DISRNN__CASE(code, text) case code: return text;
        DISRNN__STATUS_LIST(DISRNN__CASE)
#undef DISRNN__CASE
    default: return "unknown status";
    }
}

int disrnn__base_init(disrnn__base *b, disrnn_alloc_fn a, disrnn_free_fn f, void *ud)
{
    memset(b, 0, sizeof *b);
    if ((a == NULL) != (f == NULL)) return DISRNN_ERR_INVALID_ARG;
    if (a) {
        b->al.alloc = a;
        b->al.free = f;
        b->al.user_data = ud;
    } else {
        b->al = *disrnn__default_allocator();
    }
    b->log_level = DISRNN_LOG_ERROR + 1;
    return DISRNN_OK;
}

static void vlog(const disrnn__base *b, int level, const char *fmt, va_list ap)
{
    char buf[DISRNN__ERR_LEN];
    if (!b || !b->log_fn || level < b->log_level) return;
    vsnprintf(buf, sizeof buf, fmt, ap);
    b->log_fn(level, buf, b->log_user_data);
}

void disrnn__log(const disrnn__base *b, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(b, level, fmt, ap);
    va_end(ap);
}

int disrnn__fail(const disrnn__base *b, int status, const char *fmt, ...)
{
    va_list ap;
    disrnn__base *w = (disrnn__base *)(uintptr_t)b; /* the message is the one field a const call writes */
    if (!w) return status;
    va_start(ap, fmt);
    vsnprintf(w->err, sizeof w->err, fmt, ap);
    va_end(ap);
    if (w->log_fn && DISRNN_LOG_ERROR >= w->log_level) w->log_fn(DISRNN_LOG_ERROR, w->err, w->log_user_data);
    return status;
}

int disrnn__fail_msg(char *msg, size_t msg_len, int status, const char *fmt, ...)
{
    va_list ap;
    if (!msg || msg_len == 0) return status;
    va_start(ap, fmt);
    vsnprintf(msg, msg_len, fmt, ap);
    va_end(ap);
    return status;
}

int disrnn__set_log(disrnn__base *b, disrnn_log_fn fn, int min_level, void *ud)
{
    if (!b) return DISRNN_ERR_INVALID_ARG;
    if (min_level < DISRNN_LOG_DEBUG || min_level > DISRNN_LOG_ERROR)
        return disrnn__fail(b, DISRNN_ERR_INVALID_ARG, "log level %d is not a disrnn_log_level (0 to 3)", min_level);
    b->log_fn = fn;
    b->log_level = min_level;
    b->log_user_data = ud;
    return DISRNN_OK;
}

const char *disrnn__last_error(const disrnn__base *b) { return b ? b->err : ""; }
