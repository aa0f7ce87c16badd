/* SPDX-License-Identifier: Apache-2.0 */
#include "platform.h"

#include <ctype.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/json-util.h"
#include "core/strutil.h"
#include "core/xalloc.h"

static void set(char **field, const char *v)
{
	free(*field);
	*field = v ? xstrdup(v) : NULL;
}

void sc_platform_clear(sc_platform *p)
{
	free(p->os);
	free(p->arch);
	free(p->variant);
	memset(p, 0, sizeof(*p));
}

void sc_platform_copy(sc_platform *dst, const sc_platform *src)
{
	dst->os = src->os ? xstrdup(src->os) : NULL;
	dst->arch = src->arch ? xstrdup(src->arch) : NULL;
	dst->variant = src->variant ? xstrdup(src->variant) : NULL;
}

/* containerd's platforms.Normalize, reduced to what images use. */
void sc_platform_normalize(sc_platform *p)
{
	for (char *c = p->os; c && *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if (p->os && strcmp(p->os, "macos") == 0)
		set(&p->os, "darwin");

	const char *a = p->arch ? p->arch : "";
	const char *v = p->variant;
	if (strcmp(a, "i386") == 0 || strcmp(a, "i486") == 0 || strcmp(a, "i586") == 0 ||
	    strcmp(a, "i686") == 0) {
		set(&p->arch, "386");
		set(&p->variant, NULL);
	} else if (strcmp(a, "x86_64") == 0 || strcmp(a, "x86-64") == 0) {
		set(&p->arch, "amd64");
		if (v && strcmp(v, "v1") == 0)
			set(&p->variant, NULL);
	} else if (strcmp(a, "aarch64") == 0 || strcmp(a, "arm64") == 0) {
		set(&p->arch, "arm64");
		if (v && (strcmp(v, "8") == 0 || strcmp(v, "v8") == 0))
			set(&p->variant, NULL);
	} else if (strcmp(a, "armhf") == 0) {
		set(&p->arch, "arm");
		set(&p->variant, "v7");
	} else if (strcmp(a, "armel") == 0) {
		set(&p->arch, "arm");
		set(&p->variant, "v6");
	} else if (strcmp(a, "arm") == 0) {
		if (v == NULL || strcmp(v, "7") == 0)
			set(&p->variant, "v7");
		else if (strcmp(v, "5") == 0 || strcmp(v, "6") == 0 || strcmp(v, "8") == 0) {
			char buf[3] = {'v', v[0], '\0'};
			set(&p->variant, buf);
		}
	} else if (strcmp(a, "amd64") == 0 && v && strcmp(v, "v1") == 0) {
		set(&p->variant, NULL);
	}
	if (p->variant && *p->variant == '\0')
		set(&p->variant, NULL);
}

static bool component_valid(const char *s)
{
	if (*s == '\0' || strlen(s) > 64)
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-' || *s == '.'))
			return false;
	return true;
}

int sc_platform_parse(const char *s, sc_platform *ret, sconify_error_t *err)
{
	cleanup_free char *copy = xstrdup(s);
	char *parts[4] = {0};
	int n = 0;
	for (char *save = NULL, *tok = strtok_r(copy, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (n == 3) {
			n = 4;
			break;
		}
		parts[n++] = tok;
	}
	bool ok = (n == 2 || n == 3) && strchr(s, '\0')[-1] != '/' && strstr(s, "//") == NULL;
	for (int i = 0; ok && i < n; i++)
		ok = component_valid(parts[i]);
	if (!ok) {
		cleanup_free char *q = sc_quote(s, SC_QUOTE_MAX);
		return sc_error(err, SCONIFY_ERR_INVALID, 0,
		                "invalid platform `%s': expected os/arch[/variant]", q);
	}
	sc_platform p = {xstrdup(parts[0]), xstrdup(parts[1]), n == 3 ? xstrdup(parts[2]) : NULL};
	sc_platform_normalize(&p);
	*ret = p;
	return 0;
}

void sc_platform_host(sc_platform *ret)
{
#if defined(__x86_64__) || defined(_M_X64)
	const char *arch = "amd64", *variant = NULL;
#elif defined(__aarch64__) || defined(_M_ARM64)
	const char *arch = "arm64", *variant = NULL;
#elif defined(__arm__)
	const char *arch = "arm", *variant = "v7";
#elif defined(__i386__)
	const char *arch = "386", *variant = NULL;
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
	const char *arch = "ppc64le", *variant = NULL;
#elif defined(__s390x__)
	const char *arch = "s390x", *variant = NULL;
#elif defined(__riscv) && __riscv_xlen == 64
	const char *arch = "riscv64", *variant = NULL;
#else
	const char *arch = "amd64", *variant = NULL;
#endif
	sc_platform p = {xstrdup("linux"), xstrdup(arch), variant ? xstrdup(variant) : NULL};
	*ret = p;
}

int sc_platform_from_json(json_t *obj, const char *what, sc_platform *ret, sconify_error_t *err)
{
	const char *os = NULL, *arch = NULL, *variant = NULL;
	if (sc_json_get_string(obj, "os", false, what, &os, err) < 0 ||
	    sc_json_get_string(obj, "architecture", false, what, &arch, err) < 0 ||
	    sc_json_get_string(obj, "variant", true, what, &variant, err) < 0)
		return -1;
	sc_platform p = {xstrdup(os), xstrdup(arch), variant ? xstrdup(variant) : NULL};
	sc_platform_normalize(&p);
	*ret = p;
	return 0;
}

bool sc_platform_matches(const sc_platform *want, const sc_platform *have)
{
	if (!want->os || !have->os || !want->arch || !have->arch)
		return false;
	if (strcmp(want->os, have->os) != 0 || strcmp(want->arch, have->arch) != 0)
		return false;
	const char *wv = want->variant ? want->variant : "";
	const char *hv = have->variant ? have->variant : "";
	return strcmp(wv, hv) == 0;
}

char *sc_platform_string(const sc_platform *p)
{
	if (p->variant)
		return xasprintf("%s/%s/%s", p->os ? p->os : "?", p->arch ? p->arch : "?", p->variant);
	return xasprintf("%s/%s", p->os ? p->os : "?", p->arch ? p->arch : "?");
}
