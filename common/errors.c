/*
 * errors.c - bs_strerror() and bs_err_name(), generated from BS_ERRORS.
 */
#include "errors.h"

const char *bs_strerror(int err)
{
    switch (err) {
#define BS_ERR_MSG(name, value, msg)                                         \
    case (value):                                                            \
        return (msg);
        BS_ERRORS(BS_ERR_MSG)
#undef BS_ERR_MSG
    }
    return "unknown error";
}

const char *bs_err_name(int err)
{
    switch (err) {
#define BS_ERR_NAME(name, value, msg)                                        \
    case (value):                                                            \
        return #name;
        BS_ERRORS(BS_ERR_NAME)
#undef BS_ERR_NAME
    }
    return "BS_E?";
}
