/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shield metadata parser (lib/shield/metadata.c). The body is only
 * reachable through the seal, which a fuzzer cannot forge, so the input is
 * used three ways: as sealed bytes (header checks and the seal), as a body
 * parsed directly, and as a body sealed under a fixed key and opened (the
 * whole path the runtime takes). Whatever parses must serialise back to the
 * same bytes (the format has one encoding) and answer lookups.
 */
#include <stdint.h>
#include <string.h>

#include "shield/shield-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key_bytes[SC_SHIELD_KEY_BYTES] = {42};
	static const uint8_t nonce[SC_SHIELD_NONCE_BYTES] = {7};
	sc_shield_key *key = sc_shield_key_new(key_bytes);
	sconify_error_t err = NULL;
	sc_shield_metadata *md = NULL;

	sc_shield_pin pin;
	sc_shield_pin_of(data, size, &pin);
	if (sc_shield_metadata_open(key, data, size, &pin, &md, &err) == 0)
		__builtin_trap(); /* a forged seal */
	sconify_error_free(&err);

	int parsed = sc_shield_metadata_parse(data, size, &md, &err);
	sconify_error_free(&err);
	if (parsed == 0) {
		uint8_t *again = NULL;
		size_t len = 0;
		sc_shield_metadata_serialize(md, &again, &len);
		if (len != size || memcmp(again, data, size) != 0)
			__builtin_trap(); /* two encodings of one metadata */
		free(again);
		static const char *probe[] = {"/", "/a", "/a/b", "/app", "/app/x", "/lib/x.so"};
		for (size_t i = 0; i < sizeof(probe) / sizeof(probe[0]); i++) {
			sc_shield_kind kind;
			const sc_shield_entry *e;
			if (sc_shield_lookup(md, probe[i], &kind, &e, &err) < 0)
				__builtin_trap();
			if (e && (e->kind != kind || e->n_chunks != sc_shield_chunks(e->size, e->chunk_size)))
				__builtin_trap();
			/* the walk's view: the same region, a link never at a file */
			const char *target;
			bool checked = sc_shield_walk_checks(md, probe[i], &target);
			if ((kind != SC_SHIELD_NOT_PROTECTED && !checked) || (target && e))
				__builtin_trap();
			if (target && (kind == SC_SHIELD_NOT_PROTECTED || *target == '\0'))
				__builtin_trap();
			if (target != sc_shield_symlink_at(md, probe[i]))
				__builtin_trap();
		}
		sc_shield_metadata_free(md);
		md = NULL;
	}

	uint8_t *sealed = NULL;
	size_t slen = 0;
	sc_shield_seal_body(key, data, size, nonce, &sealed, &slen, &pin);
	int opened = sc_shield_metadata_open(key, sealed, slen, &pin, &md, &err);
	if ((opened == 0) != (parsed == 0))
		__builtin_trap();
	sconify_error_free(&err);
	sc_shield_metadata_free(md);
	free(sealed);
	sc_shield_key_free(key);
	return 0;
}
