/* Error names of the wire layer. */
#include "wire/wire.h"

static const char *const wire_err_names[WIRE_ERR_MAX] = {
    [WIRE_OK] = "ok",
    [WIRE_TRUNCATED] = "truncated",
    [WIRE_BAD_VERSION] = "bad version",
    [WIRE_BAD_HDRLEN] = "bad header length",
    [WIRE_BAD_LEN] = "bad length field",
    [WIRE_BAD_CSUM] = "bad checksum",
    [WIRE_BAD_OPTION] = "malformed option",
    [WIRE_UNSUPPORTED] = "unsupported",
};

const char *wire_strerror(int err)
{
    /* Parsers return -err; the range check first keeps -INT_MIN out. */
    if (err <= -WIRE_ERR_MAX || err >= WIRE_ERR_MAX)
        return "unknown error";
    if (err < 0)
        err = -err;
    return wire_err_names[err];
}
