/* SPDX-License-Identifier: Apache-2.0 */
/* Signing with a key already loaded (the conversion loads it before it
 * starts, so a wrong password stops it before anything is pushed). */
#ifndef SC_SIGN_SIGN_H
#define SC_SIGN_SIGN_H

#include <openssl/evp.h>

#include "sconify.h"

int sc_sign_image(const char *image, EVP_PKEY *key, const sconify_sign_options_t *opts,
                  sconify_sign_result_t *ret_result, sconify_error_t *err);

#endif
