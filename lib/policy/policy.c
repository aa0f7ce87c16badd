/* SPDX-License-Identifier: Apache-2.0 */
/* The policy model: building, freeing, comparing, secret references. */
#include <stdlib.h>
#include <string.h>

#include "core/hex.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "policy-internal.h"

/* ---- wiping ---- */

/* A call through a volatile pointer the compiler cannot see through, so the
 * stores are kept (explicit_bzero is not everywhere: macOS, MSYS2). */
static void *(*const volatile memset_v)(void *, int, size_t) = memset;

void sc_policy_wipe(void *p, size_t n)
{
	if (p && n)
		memset_v(p, 0, n);
}

void sc_policy_wipe_free(char *s)
{
	if (s == NULL)
		return;
	sc_policy_wipe(s, strlen(s));
	free(s);
}

static void wipe_strv(char **v)
{
	if (v == NULL)
		return;
	for (char **s = v; *s; s++)
		sc_policy_wipe(*s, strlen(*s));
	sc_strv_free(v);
}

void sc_wbuf_append(sc_wbuf *b, const void *p, size_t n)
{
	if (!sc_secret_append(b, p, n, SIZE_MAX / 2))
		abort();
}

char *sc_wbuf_steal(sc_wbuf *b, size_t *ret_len)
{
	if (b->data == NULL)
		sc_wbuf_append(b, "", 0);
	char *d = b->data;
	if (ret_len)
		*ret_len = b->len;
	*b = (sc_wbuf){0};
	return d;
}

void sc_wbuf_free(sc_wbuf *b)
{
	sc_secret_free(b);
}

/* ---- small checks ---- */

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '-';
}

bool sc_policy_valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > SC_POLICY_MAX_NAME)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!name_char(s[i]))
			return false;
	return true;
}

bool sc_policy_valid_user(const char *s)
{
	size_t n = strlen(s), colons = 0;
	if (n == 0 || n > SC_POLICY_MAX_USER || s[0] == ':' || s[n - 1] == ':')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f || ch == ' ' || ch == '/')
			return false;
		colons += ch == ':';
	}
	return colons <= 1;
}

bool sc_policy_valid_session_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > SC_POLICY_MAX_NAME)
		return false;
	bool need = true; /* a component must start here */
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '/') {
			if (need)
				return false;
			need = true;
		} else if (name_char(s[i])) {
			need = false;
		} else {
			return false;
		}
	}
	return !need;
}

bool sc_policy_valid_path(const char *s, size_t n)
{
	if (n == 0 || n > SC_POLICY_MAX_PATH || s[0] != '/' || s[n - 1] == '/' || memchr(s, '\0', n))
		return false;
	size_t i = 1;
	while (i <= n) {
		size_t j = i;
		while (j < n && s[j] != '/')
			j++;
		size_t len = j - i;
		if (len == 0 || (len == 1 && s[i] == '.') || (len == 2 && s[i] == '.' && s[i + 1] == '.'))
			return false;
		i = j + 1;
	}
	return true;
}

bool sc_policy_utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		size_t k;
		unsigned cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			k = 1, cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2, cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3, cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

bool sc_policy_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

bool sc_policy_hex_decode(const char *s, size_t n, uint8_t *out)
{
	return sc_hex_decode(s, n, out, false);
}

void sc_policy_hex_encode(const uint8_t *in, size_t n, char *out)
{
	sc_hex_encode(in, n, out);
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *sc_policy_base64_encode(const uint8_t *in, size_t n, size_t *ret_len)
{
	size_t olen = (n + 2) / 3 * 4;
	char *out = xmalloc(olen + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? b64[v & 63] : '=';
	}
	out[o] = '\0';
	if (ret_len)
		*ret_len = o;
	return out;
}

static int b64val(char c)
{
	const char *p = c ? strchr(b64, c) : NULL;
	return p ? (int)(p - b64) : -1;
}

bool sc_policy_base64_decode(const char *s, size_t n, uint8_t **ret, size_t *ret_len)
{
	if (n % 4)
		return false;
	size_t pad = 0;
	if (n >= 1 && s[n - 1] == '=')
		pad++;
	if (n >= 2 && s[n - 2] == '=')
		pad++;
	size_t olen = n / 4 * 3 - pad;
	uint8_t *out = xmalloc(olen + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i += 4) {
		uint32_t v = 0;
		for (size_t j = 0; j < 4; j++) {
			int d;
			if (i + j >= n - pad) {
				d = 0; /* padding */
			} else if ((d = b64val(s[i + j])) < 0) {
				sc_policy_wipe(out, olen);
				free(out);
				return false;
			}
			v = v << 6 | (uint32_t)d;
		}
		uint8_t bytes[3] = {(uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
		for (size_t j = 0; j < 3 && o < olen; j++)
			out[o++] = bytes[j];
		/* Non-canonical: bits set in the padding positions. */
		if (i + 4 == n && ((pad == 1 && (v & 0xff)) || (pad == 2 && (v & 0xffff)))) {
			sc_policy_wipe(out, olen);
			free(out);
			return false;
		}
	}
	out[olen] = 0;
	*ret = out;
	*ret_len = olen;
	return true;
}

char **sc_policy_split_command(const char *s, size_t *ret_argc)
{
	size_t n = 0, alloc = 4;
	char **v = xcalloc(alloc, sizeof(char *));
	const char *p = s;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		const char *e = p;
		while (*e && *e != ' ' && *e != '\t')
			e++;
		if (n + 2 > alloc) {
			alloc *= 2;
			v = xreallocarray(v, alloc, sizeof(char *));
		}
		v[n++] = xstrndup(p, (size_t)(e - p));
		p = e;
	}
	v[n] = NULL;
	*ret_argc = n;
	return v;
}

int sc_policy_env_cmp(const void *a, const void *b)
{
	return strcmp(((const sc_policy_env *)a)->key, ((const sc_policy_env *)b)->key);
}

/* ---- building ---- */

static char **strv_of(const char *s)
{
	char **v = xcalloc(2, sizeof(char *));
	v[0] = xstrdup(s);
	return v;
}

sc_policy *sc_policy_new(const char *name)
{
	sc_policy *p = xzalloc(sizeof(*p));
	p->name = xstrdup(name);
	p->read = strv_of("CREATOR");
	p->n_read = 1;
	p->update = strv_of("CREATOR");
	p->n_update = 1;
	p->create_sessions = xcalloc(1, sizeof(char *));
	p->tolerate = xcalloc(1, sizeof(char *));
	p->mode = SC_POLICY_MODE_HARDWARE;
	return p;
}

static void service_clear(sc_policy_service *s)
{
	free(s->name);
	free(s->image_name);
	wipe_strv(s->argv);
	for (size_t i = 0; i < s->n_env; i++) {
		free(s->env[i].key);
		sc_policy_wipe_free(s->env[i].value);
	}
	free(s->env);
	free(s->pwd);
	free(s->user);
	free(s->fspf_path);
	sc_policy_wipe(s->fspf_key, sizeof(s->fspf_key));
	sc_strv_free(s->measurements);
	sc_strv_free(s->mrenclaves);
}

void sc_policy_free(sc_policy *p)
{
	if (p == NULL)
		return;
	free(p->name);
	free(p->predecessor);
	sc_strv_free(p->read);
	sc_strv_free(p->update);
	sc_strv_free(p->create_sessions);
	for (size_t i = 0; i < p->n_services; i++)
		service_clear(&p->services[i]);
	free(p->services);
	for (size_t i = 0; i < p->n_secrets; i++) {
		free(p->secrets[i].name);
		sc_policy_wipe(p->secrets[i].value, p->secrets[i].len);
		free(p->secrets[i].value);
	}
	free(p->secrets);
	for (size_t i = 0; i < p->n_images; i++) {
		free(p->images[i].name);
		for (size_t k = 0; k < p->images[i].n_files; k++) {
			free(p->images[i].files[k].path);
			sc_policy_wipe(p->images[i].files[k].content, p->images[i].files[k].len);
			free(p->images[i].files[k].content);
		}
		free(p->images[i].files);
	}
	free(p->images);
	sc_strv_free(p->tolerate);
	free(p);
}

sc_policy_service *sc_policy_add_service(sc_policy *p, const char *name)
{
	p->services = xreallocarray(p->services, p->n_services + 1, sizeof(*p->services));
	sc_policy_service *s = &p->services[p->n_services++];
	*s = (sc_policy_service){0};
	s->name = xstrdup(name);
	s->argv = xcalloc(1, sizeof(char *));
	s->measurements = xcalloc(1, sizeof(char *));
	s->mrenclaves = xcalloc(1, sizeof(char *));
	return s;
}

void sc_policy_service_set_argv(sc_policy_service *s, const char *const *argv)
{
	size_t n = 0;
	while (argv[n])
		n++;
	char **v = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		v[i] = xstrdup(argv[i]);
	wipe_strv(s->argv);
	s->argv = v;
	s->argc = n;
}

void sc_policy_service_setenv(sc_policy_service *s, const char *key, const char *value)
{
	size_t i = 0;
	while (i < s->n_env && strcmp(s->env[i].key, key) < 0)
		i++;
	if (i < s->n_env && strcmp(s->env[i].key, key) == 0) {
		sc_policy_wipe_free(s->env[i].value);
		s->env[i].value = xstrdup(value);
		return;
	}
	s->env = xreallocarray(s->env, s->n_env + 1, sizeof(*s->env));
	memmove(&s->env[i + 1], &s->env[i], (s->n_env - i) * sizeof(*s->env));
	s->env[i].key = xstrdup(key);
	s->env[i].value = xstrdup(value);
	s->n_env++;
}

void sc_policy_service_set_fspf(sc_policy_service *s, const char *path,
                                const uint8_t key[SC_POLICY_KEY_BYTES], const uint8_t *tag, size_t tag_len)
{
	free(s->fspf_path);
	s->fspf_path = xstrdup(path);
	memcpy(s->fspf_key, key, SC_POLICY_KEY_BYTES);
	if (tag_len > SC_POLICY_TAG_MAX_BYTES)
		tag_len = SC_POLICY_TAG_MAX_BYTES; /* sc_policy_check() then refuses a wrong length */
	memcpy(s->fspf_tag, tag, tag_len);
	s->fspf_tag_len = tag_len;
	s->has_fspf = true;
}

static void strv_push(char ***v, size_t *n, const char *s)
{
	*v = xreallocarray(*v, *n + 2, sizeof(char *));
	(*v)[(*n)++] = xstrdup(s);
	(*v)[*n] = NULL;
}

void sc_policy_service_add_measurement(sc_policy_service *s, const char *hex)
{
	strv_push(&s->measurements, &s->n_measurements, hex);
}

sc_policy_secret *sc_policy_add_secret(sc_policy *p, const char *name, sc_policy_secret_kind kind,
                                       const void *value, size_t len)
{
	p->secrets = xreallocarray(p->secrets, p->n_secrets + 1, sizeof(*p->secrets));
	sc_policy_secret *s = &p->secrets[p->n_secrets++];
	*s = (sc_policy_secret){0};
	s->name = xstrdup(name);
	s->kind = kind;
	if (value) {
		sc_policy_secret_set_value(s, value, len);
	} else {
		s->generated = true;
		s->size = len;
	}
	return s;
}

void sc_policy_secret_set_value(sc_policy_secret *s, const void *value, size_t len)
{
	sc_policy_wipe(s->value, s->len);
	free(s->value);
	s->value = xmalloc(len + 1);
	memcpy(s->value, value, len);
	s->value[len] = 0;
	s->len = len;
}

sc_policy_image *sc_policy_add_image(sc_policy *p, const char *name)
{
	p->images = xreallocarray(p->images, p->n_images + 1, sizeof(*p->images));
	sc_policy_image *img = &p->images[p->n_images++];
	*img = (sc_policy_image){0};
	img->name = xstrdup(name);
	return img;
}

void sc_policy_image_add_file(sc_policy_image *img, const char *path, const void *content, size_t len)
{
	img->files = xreallocarray(img->files, img->n_files + 1, sizeof(*img->files));
	sc_policy_file *f = &img->files[img->n_files++];
	f->path = xstrdup(path);
	f->content = xmalloc(len + 1);
	memcpy(f->content, content, len);
	f->content[len] = '\0';
	f->len = len;
}

const sc_policy_service *sc_policy_find_service(const sc_policy *p, const char *name)
{
	for (size_t i = 0; i < p->n_services; i++)
		if (strcmp(p->services[i].name, name) == 0)
			return &p->services[i];
	return NULL;
}

const sc_policy_secret *sc_policy_find_secret(const sc_policy *p, const char *name)
{
	for (size_t i = 0; i < p->n_secrets; i++)
		if (strcmp(p->secrets[i].name, name) == 0)
			return &p->secrets[i];
	return NULL;
}

const sc_policy_image *sc_policy_find_image(const sc_policy *p, const char *name)
{
	for (size_t i = 0; i < p->n_images; i++)
		if (strcmp(p->images[i].name, name) == 0)
			return &p->images[i];
	return NULL;
}

/* ---- equality ---- */

static bool str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool strv_eq(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!str_eq(a[i], b[i]))
			return false;
	return true;
}

static bool mem_eq(const void *a, size_t na, const void *b, size_t nb)
{
	return na == nb && (na == 0 || memcmp(a, b, na) == 0);
}

static bool service_eq(const sc_policy_service *a, const sc_policy_service *b)
{
	if (!str_eq(a->name, b->name) || !str_eq(a->image_name, b->image_name) ||
	    !strv_eq(a->argv, a->argc, b->argv, b->argc) || a->n_env != b->n_env || !str_eq(a->pwd, b->pwd) ||
	    !str_eq(a->user, b->user) || a->has_fspf != b->has_fspf ||
	    !strv_eq(a->measurements, a->n_measurements, b->measurements, b->n_measurements) ||
	    !strv_eq(a->mrenclaves, a->n_mrenclaves, b->mrenclaves, b->n_mrenclaves))
		return false;
	for (size_t i = 0; i < a->n_env; i++)
		if (!str_eq(a->env[i].key, b->env[i].key) || !str_eq(a->env[i].value, b->env[i].value))
			return false;
	if (a->has_fspf &&
	    (!str_eq(a->fspf_path, b->fspf_path) || memcmp(a->fspf_key, b->fspf_key, 32) != 0 ||
	     !mem_eq(a->fspf_tag, a->fspf_tag_len, b->fspf_tag, b->fspf_tag_len)))
		return false;
	return true;
}

bool sc_policy_equal(const sc_policy *a, const sc_policy *b)
{
	if (!str_eq(a->name, b->name) || !str_eq(a->predecessor, b->predecessor) ||
	    !strv_eq(a->read, a->n_read, b->read, b->n_read) ||
	    !strv_eq(a->update, a->n_update, b->update, b->n_update) ||
	    !strv_eq(a->create_sessions, a->n_create_sessions, b->create_sessions, b->n_create_sessions) ||
	    a->n_services != b->n_services || a->n_secrets != b->n_secrets || a->n_images != b->n_images ||
	    a->mode != b->mode || !strv_eq(a->tolerate, a->n_tolerate, b->tolerate, b->n_tolerate))
		return false;
	for (size_t i = 0; i < a->n_services; i++)
		if (!service_eq(&a->services[i], &b->services[i]))
			return false;
	for (size_t i = 0; i < a->n_secrets; i++) {
		const sc_policy_secret *x = &a->secrets[i], *y = &b->secrets[i];
		if (!str_eq(x->name, y->name) || x->kind != y->kind || x->generated != y->generated)
			return false;
		if (x->generated ? x->size != y->size : !mem_eq(x->value, x->len, y->value, y->len))
			return false;
	}
	for (size_t i = 0; i < a->n_images; i++) {
		const sc_policy_image *x = &a->images[i], *y = &b->images[i];
		if (!str_eq(x->name, y->name) || x->n_files != y->n_files)
			return false;
		for (size_t k = 0; k < x->n_files; k++)
			if (!str_eq(x->files[k].path, y->files[k].path) ||
			    !mem_eq(x->files[k].content, x->files[k].len, y->files[k].content,
			            y->files[k].len))
				return false;
	}
	return true;
}

/* ---- secret references ---- */

#define REF_OPEN "$$SCONE::"
#define REF_OPEN_LEN 9

int sc_policy_next_ref(const char *t, size_t len, size_t *pos, sc_policy_ref *ref)
{
	for (size_t i = *pos; i + REF_OPEN_LEN <= len; i++) {
		if (t[i] != '$' || memcmp(t + i, REF_OPEN, REF_OPEN_LEN) != 0)
			continue;
		ref->start = i;
		size_t j = i + REF_OPEN_LEN, name = j;
		while (j < len && name_char(t[j]))
			j++;
		ref->name = t + name;
		ref->name_len = j - name;
		ref->enc = SC_REF_RAW;
		if (j < len && t[j] == ':') {
			if (len - j >= 4 && memcmp(t + j, ":hex", 4) == 0) {
				ref->enc = SC_REF_HEX;
				j += 4;
			} else if (len - j >= 7 && memcmp(t + j, ":base64", 7) == 0) {
				ref->enc = SC_REF_BASE64;
				j += 7;
			} else {
				j = SIZE_MAX;
			}
		}
		if (ref->name_len == 0 || ref->name_len > SC_POLICY_MAX_NAME || j == SIZE_MAX ||
		    len - j < 2 || t[j] != '$' || t[j + 1] != '$') {
			*pos = i + REF_OPEN_LEN;
			return -1;
		}
		ref->end = j + 2;
		*pos = ref->end;
		return 1;
	}
	*pos = len;
	return 0;
}

int sc_policy_expand(const sc_policy *p, const char *text, size_t len, bool allow_nul, char **ret,
                     size_t *ret_len, sconify_error_t *err)
{
	_cleanup_(sc_wbuf_free) sc_wbuf b = {0};
	size_t pos = 0, last = 0;
	sc_policy_ref ref;
	int r;
	while ((r = sc_policy_next_ref(text, len, &pos, &ref)) != 0) {
		if (r < 0)
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "malformed secret reference");
		cleanup_free char *name = xstrndup(ref.name, ref.name_len);
		const sc_policy_secret *s = sc_policy_find_secret(p, name);
		if (s == NULL) {
			cleanup_free char *q = sc_quote(name, 80);
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "reference to unknown secret `%s'", q);
		}
		if (s->value == NULL)
			return sc_error(err, SCONIFY_ERR_INVALID, 0, "secret `%s' has no value yet", s->name);
		sc_wbuf_append(&b, text + last, ref.start - last);
		last = ref.end;
		bool as_hex =
		        ref.enc == SC_REF_HEX || (ref.enc == SC_REF_RAW && s->kind == SC_POLICY_SECRET_HEX);
		if (as_hex) {
			char *h = xmalloc(2 * s->len + 1);
			sc_policy_hex_encode(s->value, s->len, h);
			sc_wbuf_append(&b, h, 2 * s->len);
			sc_policy_wipe_free(h);
		} else if (ref.enc == SC_REF_BASE64) {
			size_t n = 0;
			char *e = sc_policy_base64_encode(s->value, s->len, &n);
			sc_wbuf_append(&b, e, n);
			sc_policy_wipe_free(e);
		} else {
			sc_wbuf_append(&b, s->value, s->len);
		}
	}
	sc_wbuf_append(&b, text + last, len - last);
	if (!allow_nul && memchr(b.data, '\0', b.len))
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "a secret expands to a NUL byte here: use `:hex' or `:base64'");
	*ret = sc_wbuf_steal(&b, ret_len);
	return 0;
}

/* ---- the configuration of one service ---- */

void sc_policy_config_free(sc_policy_config *c)
{
	if (c == NULL)
		return;
	wipe_strv(c->argv);
	wipe_strv(c->env);
	free(c->pwd);
	free(c->user);
	for (size_t i = 0; i < c->n_files; i++) {
		free(c->files[i].path);
		sc_policy_wipe(c->files[i].content, c->files[i].len);
		free(c->files[i].content);
	}
	free(c->files);
	free(c->fspf_path);
	sc_policy_wipe(c->fspf_key, sizeof(c->fspf_key));
	free(c);
}

int sc_policy_resolve(const sc_policy *p, const char *service, sc_policy_config **ret, sconify_error_t *err)
{
	const sc_policy_service *s = sc_policy_find_service(p, service);
	if (s == NULL) {
		cleanup_free char *q = sc_quote(service, 80);
		return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0, "session `%s': service `%s' not found",
		                p->name, q);
	}
	_cleanup_(sc_policy_config_freep) sc_policy_config *c = xzalloc(sizeof(*c));
	c->argv = xcalloc(s->argc + 1, sizeof(char *));
	for (size_t i = 0; i < s->argc; i++)
		if (sc_policy_expand(p, s->argv[i], strlen(s->argv[i]), false, &c->argv[i], NULL, err) < 0)
			return sc_error_wrap(err, "service `%s': command[%zu]", s->name, i);
	c->env = xcalloc(s->n_env + 1, sizeof(char *));
	for (size_t i = 0; i < s->n_env; i++) {
		_cleanup_(sc_wbuf_free) sc_wbuf b = {0};
		char *val = NULL;
		if (sc_policy_expand(p, s->env[i].value, strlen(s->env[i].value), false, &val, NULL, err) < 0)
			return sc_error_wrap(err, "service `%s': environment %s", s->name, s->env[i].key);
		sc_wbuf_append(&b, s->env[i].key, strlen(s->env[i].key));
		sc_wbuf_append(&b, "=", 1);
		sc_wbuf_append(&b, val, strlen(val));
		sc_policy_wipe_free(val);
		c->env[i] = sc_wbuf_steal(&b, NULL);
	}
	c->pwd = s->pwd ? xstrdup(s->pwd) : NULL;
	c->user = s->user ? xstrdup(s->user) : NULL;
	const sc_policy_image *img = s->image_name ? sc_policy_find_image(p, s->image_name) : NULL;
	if (img) {
		c->files = xcalloc(img->n_files ? img->n_files : 1, sizeof(*c->files));
		for (size_t i = 0; i < img->n_files; i++) {
			if (sc_policy_expand(p, img->files[i].content, img->files[i].len, true,
			                     &c->files[i].content, &c->files[i].len, err) < 0) {
				cleanup_free char *q = sc_quote(img->files[i].path, 80);
				return sc_error_wrap(err, "image `%s': injection file `%s'", img->name, q);
			}
			c->files[i].path = xstrdup(img->files[i].path);
			c->n_files++;
		}
	}
	if (s->has_fspf) {
		c->fspf_path = xstrdup(s->fspf_path);
		memcpy(c->fspf_key, s->fspf_key, sizeof(c->fspf_key));
		memcpy(c->fspf_tag, s->fspf_tag, s->fspf_tag_len);
		c->fspf_tag_len = s->fspf_tag_len;
	}
	*ret = steal_pointer(&c);
	return 0;
}
