/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The emitter: a policy as YAML through libyaml's emitter, deterministic so
 * that reproducible conversions write the same session file and the session
 * hash is stable (docs/policy.md, "Canonical form"):
 * - fields in a fixed order, empty optional sections left out;
 * - environment maps sorted by key (strcmp, bytewise);
 * - commands always as lists; hex in lowercase; binary secrets in base64;
 * - a string is plain only when no YAML reader could take it for anything
 *   else (identifiers and paths), text with line breaks is a literal block
 *   when libyaml allows one, everything else is double-quoted.
 *
 * The text holds the policy's secrets; our buffer is wiped as it grows.
 * libyaml's internal copies are freed without wiping (no hook for it).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "core/strutil.h"
#include "core/xalloc.h"
#include "policy-internal.h"

typedef struct {
	yaml_emitter_t e;
	sc_wbuf out;
	sconify_error_t *err;
	bool failed;
} emitter;

static int write_out(void *data, unsigned char *buffer, size_t size)
{
	sc_wbuf_append(data, buffer, size);
	return 1;
}

static bool emit(emitter *em, yaml_event_t *ev, const char *path)
{
	if (em->failed) {
		yaml_event_delete(ev);
		return false;
	}
	if (!yaml_emitter_emit(&em->e, ev)) {
		sc_error(em->err, SCONIFY_ERR_INVALID, 0, "emitting the policy: %s%s%s", path ? path : "",
		         path ? ": " : "", em->e.problem ? em->e.problem : "libyaml failed");
		em->failed = true;
		return false;
	}
	return true;
}

static bool special_word(const char *s)
{
	static const char *const words[] = {"null", "true", "false", "yes", "no", "on", "off", "y", "n"};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcasecmp(s, words[i]) == 0)
			return true;
	return false;
}

static yaml_scalar_style_t style_of(const char *s, size_t len)
{
	if (len > 0 && len == strlen(s) && !special_word(s)) {
		bool plain = (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_' ||
		             s[0] == '/';
		for (size_t i = 0; plain && i < len; i++) {
			char c = s[i];
			plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			        c == '_' || c == '-' || c == '.' || c == '/';
		}
		if (plain)
			return YAML_PLAIN_SCALAR_STYLE;
	}
	if (memchr(s, '\n', len))
		return YAML_LITERAL_SCALAR_STYLE;
	return YAML_DOUBLE_QUOTED_SCALAR_STYLE;
}

static bool scalar_n(emitter *em, const char *s, size_t len, const char *path)
{
	if (em->failed)
		return false;
	if (s == NULL)
		s = "", len = 0;
	yaml_event_t ev;
	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)len, 1, 1,
	                                  style_of(s, len))) {
		/* libyaml refuses what is not UTF-8; YAML cannot carry it. */
		sc_error(em->err, SCONIFY_ERR_INVALID, 0, "%s: not UTF-8 text", path ? path : "policy");
		em->failed = true;
		return false;
	}
	return emit(em, &ev, path);
}

static bool key(emitter *em, const char *k)
{
	return scalar_n(em, k, strlen(k), "a key");
}

static bool number(emitter *em, size_t n)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%zu", n);
	yaml_event_t ev;
	yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)buf, (int)strlen(buf), 1, 1,
	                             YAML_PLAIN_SCALAR_STYLE);
	return emit(em, &ev, NULL);
}

static bool map_start(emitter *em)
{
	yaml_event_t ev;
	yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
	return emit(em, &ev, NULL);
}

static bool map_end(emitter *em)
{
	yaml_event_t ev;
	yaml_mapping_end_event_initialize(&ev);
	return emit(em, &ev, NULL);
}

static bool seq_start(emitter *em, bool flow)
{
	yaml_event_t ev;
	yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
	                                     flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE);
	return emit(em, &ev, NULL);
}

static bool seq_end(emitter *em)
{
	yaml_event_t ev;
	yaml_sequence_end_event_initialize(&ev);
	return emit(em, &ev, NULL);
}

static bool strv(emitter *em, const char *k, char **v, size_t n, const char *path)
{
	key(em, k);
	seq_start(em, n == 0);
	for (size_t i = 0; i < n; i++)
		scalar_n(em, v[i], v[i] ? strlen(v[i]) : 0, path);
	return seq_end(em);
}

static bool kv(emitter *em, const char *k, const char *v, const char *path)
{
	key(em, k);
	return scalar_n(em, v, v ? strlen(v) : 0, path);
}

static void emit_service(emitter *em, const sc_policy_service *s)
{
	map_start(em);
	kv(em, "name", s->name, "services.name");
	if (s->image_name)
		kv(em, "image_name", s->image_name, "services.image_name");
	strv(em, "command", s->argv, s->argc, "services.command");
	if (s->n_env) {
		/* Sorted whatever the order in memory: sc_policy_service_setenv()
		 * keeps it sorted, a hand-filled array may not be. An insertion
		 * sort of indices: qsort would need global state to reach the
		 * keys, and n is small. */
		size_t *idx = xcalloc(s->n_env, sizeof(size_t));
		for (size_t i = 0; i < s->n_env; i++)
			idx[i] = i;
		for (size_t i = 1; i < s->n_env; i++) {
			size_t v = idx[i], j = i;
			while (j > 0 && strcmp(s->env[idx[j - 1]].key ? s->env[idx[j - 1]].key : "",
			                       s->env[v].key ? s->env[v].key : "") > 0) {
				idx[j] = idx[j - 1];
				j--;
			}
			idx[j] = v;
		}
		key(em, "environment");
		map_start(em);
		for (size_t i = 0; i < s->n_env; i++) {
			kv(em, s->env[idx[i]].key ? s->env[idx[i]].key : "", s->env[idx[i]].value,
			   "services.environment");
		}
		map_end(em);
		free(idx);
	}
	if (s->pwd)
		kv(em, "pwd", s->pwd, "services.pwd");
	if (s->user)
		kv(em, "user", s->user, "services.user");
	if (s->has_fspf) {
		char hex[2 * SC_POLICY_TAG_MAX_BYTES + 1];
		kv(em, "fspf_path", s->fspf_path, "services.fspf_path");
		sc_policy_hex_encode(s->fspf_key, SC_POLICY_KEY_BYTES, hex);
		kv(em, "fspf_key", hex, "services.fspf_key");
		sc_policy_wipe(hex, sizeof(hex));
		size_t tl =
		        s->fspf_tag_len > SC_POLICY_TAG_MAX_BYTES ? SC_POLICY_TAG_MAX_BYTES : s->fspf_tag_len;
		sc_policy_hex_encode(s->fspf_tag, tl, hex);
		kv(em, "fspf_tag", hex, "services.fspf_tag");
	}
	if (s->n_measurements)
		strv(em, "measurements", s->measurements, s->n_measurements, "services.measurements");
	if (s->n_mrenclaves)
		strv(em, "mrenclaves", s->mrenclaves, s->n_mrenclaves, "services.mrenclaves");
	map_end(em);
}

static void emit_secret(emitter *em, const sc_policy_secret *s)
{
	static const char *const kinds[] = {"ascii", "hex", "binary"};
	map_start(em);
	kv(em, "name", s->name, "secrets.name");
	kv(em, "kind", (unsigned)s->kind < 3 ? kinds[s->kind] : "invalid", "secrets.kind");
	if (s->generated) {
		key(em, "size");
		number(em, s->size);
	} else {
		char *text = NULL;
		size_t n = 0;
		if (s->kind == SC_POLICY_SECRET_ASCII) {
			text = xmalloc(s->len + 1);
			if (s->len)
				memcpy(text, s->value, s->len);
			text[s->len] = '\0';
			n = s->len;
		} else if (s->kind == SC_POLICY_SECRET_HEX) {
			text = xmalloc(2 * s->len + 1);
			sc_policy_hex_encode(s->value, s->len, text);
			n = 2 * s->len;
		} else {
			text = sc_policy_base64_encode(s->value, s->len, &n);
		}
		key(em, "value");
		scalar_n(em, text, n, "secrets.value");
		sc_policy_wipe(text, n);
		free(text);
	}
	map_end(em);
}

static void emit_image(emitter *em, const sc_policy_image *img)
{
	map_start(em);
	kv(em, "name", img->name, "images.name");
	if (img->n_files) {
		key(em, "injection_files");
		seq_start(em, false);
		for (size_t i = 0; i < img->n_files; i++) {
			map_start(em);
			kv(em, "path", img->files[i].path, "images.injection_files.path");
			key(em, "content");
			scalar_n(em, img->files[i].content, img->files[i].len,
			         "images.injection_files.content");
			map_end(em);
		}
		seq_end(em);
	}
	map_end(em);
}

int sc_policy_emit(const sc_policy *p, char **ret, size_t *ret_len, sconify_error_t *err)
{
	emitter em = {.err = err};
	if (!yaml_emitter_initialize(&em.e))
		abort();
	yaml_emitter_set_output(&em.e, write_out, &em.out);
	yaml_emitter_set_unicode(&em.e, 1);
	yaml_emitter_set_width(&em.e, -1); /* no folding of long strings */
	yaml_emitter_set_indent(&em.e, 2);
	yaml_emitter_set_break(&em.e, YAML_LN_BREAK);

	yaml_event_t ev;
	yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
	emit(&em, &ev, NULL);
	yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
	emit(&em, &ev, NULL);
	map_start(&em);
	kv(&em, "name", p->name, "name");
	kv(&em, "version", SC_POLICY_VERSION, "version");
	if (p->predecessor)
		kv(&em, "predecessor", p->predecessor, "predecessor");
	key(&em, "access_policy");
	map_start(&em);
	strv(&em, "read", p->read, p->n_read, "access_policy.read");
	strv(&em, "update", p->update, p->n_update, "access_policy.update");
	if (p->n_create_sessions)
		strv(&em, "create_sessions", p->create_sessions, p->n_create_sessions,
		     "access_policy.create_sessions");
	map_end(&em);
	if (p->n_services) {
		key(&em, "services");
		seq_start(&em, false);
		for (size_t i = 0; i < p->n_services; i++)
			emit_service(&em, &p->services[i]);
		seq_end(&em);
	}
	if (p->n_images) {
		key(&em, "images");
		seq_start(&em, false);
		for (size_t i = 0; i < p->n_images; i++)
			emit_image(&em, &p->images[i]);
		seq_end(&em);
	}
	if (p->n_secrets) {
		key(&em, "secrets");
		seq_start(&em, false);
		for (size_t i = 0; i < p->n_secrets; i++)
			emit_secret(&em, &p->secrets[i]);
		seq_end(&em);
	}
	key(&em, "security");
	map_start(&em);
	key(&em, "attestation");
	map_start(&em);
	kv(&em, "mode", p->mode == SC_POLICY_MODE_SIM ? "sim" : "hardware", "security.attestation.mode");
	if (p->n_tolerate)
		strv(&em, "tolerate", p->tolerate, p->n_tolerate, "security.attestation.tolerate");
	map_end(&em);
	map_end(&em);
	map_end(&em);
	yaml_document_end_event_initialize(&ev, 1);
	emit(&em, &ev, NULL);
	yaml_stream_end_event_initialize(&ev);
	emit(&em, &ev, NULL);
	if (!em.failed && !yaml_emitter_flush(&em.e)) {
		sc_error(err, SCONIFY_ERR_INVALID, 0, "emitting the policy: %s",
		         em.e.problem ? em.e.problem : "libyaml failed");
		em.failed = true;
	}
	yaml_emitter_delete(&em.e);
	if (em.failed) {
		sc_wbuf_free(&em.out);
		return -1;
	}
	*ret = sc_wbuf_steal(&em.out, ret_len);
	return 0;
}

int sc_policy_check(const sc_policy *p, sconify_error_t *err)
{
	size_t len = 0;
	char *text = NULL;
	if (sc_policy_emit(p, &text, &len, err) < 0)
		return -1;
	sc_policy *back = NULL;
	int r = sc_policy_parse(text, len, "session policy", &back, err);
	sc_policy_wipe(text, len);
	free(text);
	sc_policy_free(back);
	return r;
}
