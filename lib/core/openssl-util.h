/* SPDX-License-Identifier: Apache-2.0 */
/* Cleanup helpers for the OpenSSL types the library holds. */
#ifndef SC_OPENSSL_UTIL_H
#define SC_OPENSSL_UTIL_H

#include <openssl/bio.h>
#include <openssl/evp.h>

#include "cleanup.h"

SC_DEFINE_CLEANUP(EVP_PKEY *, EVP_PKEY_free)
SC_DEFINE_CLEANUP(EVP_PKEY_CTX *, EVP_PKEY_CTX_free)
SC_DEFINE_CLEANUP(EVP_MD_CTX *, EVP_MD_CTX_free)
SC_DEFINE_CLEANUP(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_free)
SC_DEFINE_CLEANUP(BIO *, BIO_free)
#define cleanup_pkey _cleanup_(EVP_PKEY_freep)
#define cleanup_pkey_ctx _cleanup_(EVP_PKEY_CTX_freep)
#define cleanup_md_ctx _cleanup_(EVP_MD_CTX_freep)
#define cleanup_cipher_ctx _cleanup_(EVP_CIPHER_CTX_freep)
#define cleanup_bio _cleanup_(BIO_freep)

#endif
