/* SPDX-License-Identifier: Apache-2.0 */
#include "plan.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "layer/scan.h"
#include "layer/tree.h"

/* A regular file's data entry or a hard link entry, as pass 1 met it. */
struct rec {
	uint64_t serial; /* of the content it writes or links to */
	uint64_t offset, data_offset, size;
	uint32_t layer;
	bool data;
	bool encrypted_path; /* written at a name in the encrypted region */
	sc_plan_action action;
	size_t file;
};

/* A content hashed in pass 1 (a candidate for the executable). */
struct hashed {
	uint32_t layer;
	uint64_t data_offset;
	sc_digest digest;
};

struct sc_planner {
	const sc_shield_builder *regions;
	sconify_limits_t limits;
	sc_tree *tree;
	unsigned n_layers;
	struct rec *recs; /* in the order met */
	size_t n_recs, recs_alloc;
	char *exe_name;     /* hash executables whose name starts with it; NULL: none */
	sc_hasher *hashing; /* the data of the entry being read */
	uint64_t hash_left;
	struct hashed *hashed;
	size_t n_hashed, hashed_alloc;
	sc_planner_entry_fn watch;
	void *watch_userdata;
};

void sc_planner_watch(sc_planner *p, sc_planner_entry_fn fn, void *userdata)
{
	p->watch = fn;
	p->watch_userdata = userdata;
}

sc_planner *sc_planner_new(const sc_shield_builder *regions, const sconify_limits_t *limits)
{
	sc_planner *p = xzalloc(sizeof(*p));
	p->regions = regions;
	p->limits = *limits;
	p->tree = sc_tree_new(&p->limits);
	return p;
}

void sc_planner_free(sc_planner *p)
{
	if (p == NULL)
		return;
	sc_tree_free(p->tree);
	free(p->recs);
	free(p->exe_name);
	sc_hasher_free(p->hashing);
	free(p->hashed);
	free(p);
}

static char *absolute(const char *tree_path)
{
	return xasprintf("/%s", tree_path);
}

void sc_planner_hash_executables(sc_planner *p, const char *name)
{
	free(p->exe_name);
	p->exe_name = name && *name ? xstrdup(name) : NULL;
}

bool sc_planner_digest(const sc_planner *p, const sc_plan_location *loc, sc_digest *ret)
{
	for (size_t i = 0; i < p->n_hashed; i++)
		if (p->hashed[i].layer == loc->layer && p->hashed[i].data_offset == loc->data_offset) {
			*ret = p->hashed[i].digest;
			return true;
		}
	return false;
}

static void hashed_done(sc_planner *p)
{
	sc_hasher_final(p->hashing, &p->hashed[p->n_hashed - 1].digest);
	sc_hasher_free(p->hashing);
	p->hashing = NULL;
}

/* A candidate for the executable: its data go through a hasher. */
static int hash_candidate(sc_planner *p, const sc_layer_entry *e)
{
	if (p->exe_name == NULL || e->type != SC_ENTRY_FILE || (e->mode & 0111) == 0)
		return 0;
	const char *slash = strrchr(e->path, '/');
	if (strncmp(slash ? slash + 1 : e->path, p->exe_name, strlen(p->exe_name)) != 0)
		return 0;
	if (p->n_hashed == p->hashed_alloc) {
		p->hashed_alloc = p->hashed_alloc ? 2 * p->hashed_alloc : 16;
		p->hashed = xreallocarray(p->hashed, p->hashed_alloc, sizeof(*p->hashed));
	}
	p->hashed[p->n_hashed++] = (struct hashed){.layer = p->n_layers, .data_offset = e->data_offset};
	p->hashing = sc_hasher_new(SC_SHA256);
	p->hash_left = e->size;
	if (e->size > 0)
		return SC_SCAN_WANT_DATA;
	hashed_done(p);
	return 0;
}

static int on_data(void *userdata, const void *buf, size_t len, sconify_error_t *err)
{
	sc_planner *p = userdata;
	if (p->hashing == NULL || len > p->hash_left)
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0, "more data than the entry holds");
	sc_hasher_update(p->hashing, buf, len);
	p->hash_left -= len;
	if (p->hash_left == 0)
		hashed_done(p);
	return 0;
}

static void tell(sc_planner *p, const sc_layer_entry *e, bool encrypted)
{
	uint64_t size = e->type == SC_ENTRY_FILE && e->whiteout == SC_WH_NONE ? e->size : 0;
	if (p->watch)
		p->watch(p->watch_userdata, e->data_offset + ((size + 511) & ~(uint64_t)511), encrypted);
}

static int on_entry(void *userdata, const sc_layer_entry *e, sconify_error_t *err)
{
	sc_planner *p = userdata;
	if (p->hashing) /* the last candidate's data ended early */
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0, "an entry's data ended early");
	if (sc_tree_apply(p->tree, e, err) < 0)
		return -1;
	if (e->whiteout != SC_WH_NONE || (e->type != SC_ENTRY_FILE && e->type != SC_ENTRY_HARDLINK)) {
		tell(p, e, false);
		return 0;
	}
	/* The name the entry landed at, parents' symlinks followed: what the
	 * regions are matched against, here and in the runtime. */
	cleanup_free char *resolved = NULL;
	if (sc_tree_resolve(p->tree, e->path, &resolved, err) < 0)
		return -1;
	const sc_tree_item *it = sc_tree_lookup(p->tree, resolved);
	if (it == NULL || it->type != SC_ENTRY_FILE) {
		tell(p, e, false);
		return 0; /* a hard link to a symlink or a device: no content */
	}
	cleanup_free char *abs = absolute(resolved);
	if (p->n_recs == p->recs_alloc) {
		p->recs_alloc = p->recs_alloc ? 2 * p->recs_alloc : 256;
		p->recs = xreallocarray(p->recs, p->recs_alloc, sizeof(*p->recs));
	}
	p->recs[p->n_recs++] = (struct rec){
	        .serial = it->serial,
	        .offset = e->offset,
	        .data_offset = e->data_offset,
	        .size = e->type == SC_ENTRY_FILE ? e->size : 0,
	        .layer = p->n_layers,
	        .data = e->type == SC_ENTRY_FILE,
	        .encrypted_path = sc_shield_builder_region_of(p->regions, abs) == SC_SHIELD_ENCRYPTED,
	};
	tell(p, e, p->recs[p->n_recs - 1].encrypted_path);
	return hash_candidate(p, e);
}

int sc_planner_add_layer(sc_planner *p, sc_reader *layer, const char *what, sc_digest *ret_diff_id,
                         sconify_error_t *err)
{
	sc_layer_scan_opts o = {
	        .limits = &p->limits, .on_entry = on_entry, .on_data = on_data, .userdata = p, .what = what};
	if (sc_tree_begin_layer(p->tree, p->n_layers, err) < 0 ||
	    sc_layer_scan(layer, &o, ret_diff_id, NULL, err) < 0 || sc_tree_end_layer(p->tree, err) < 0)
		return -1;
	if (p->hashing)
		return sc_error(err, SCONIFY_ERR_INTEGRITY, 0, "%s: an entry's data ended early", what);
	p->n_layers++;
	return 0;
}

/* ---- finding a file ---- */

#define MAX_SYMLINK_HOPS 40

void sc_plan_location_clear(sc_plan_location *l)
{
	free(l->path);
	*l = (sc_plan_location){0};
}

int sc_planner_locate(sc_planner *p, const char *path, sc_plan_location *ret, sconify_error_t *err)
{
	cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
	cleanup_free char *cur = xstrdup(path);
	for (int hop = 0; hop <= MAX_SYMLINK_HOPS; hop++) {
		cleanup_free char *resolved = NULL;
		if (sc_tree_resolve(p->tree, cur, &resolved, err) < 0)
			return sc_error_wrap(err, "looking up `%s'", q);
		const sc_tree_item *it = sc_tree_lookup(p->tree, resolved);
		if (it == NULL)
			return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0, "`%s' is not in the image", q);
		if (it->type == SC_ENTRY_SYMLINK) {
			const char *slash = strrchr(resolved, '/');
			free(cur);
			if (it->link[0] == '/' || slash == NULL)
				cur = xstrdup(it->link);
			else
				cur = xasprintf("%.*s/%s", (int)(slash - resolved), resolved, it->link);
			continue;
		}
		if (it->type != SC_ENTRY_FILE)
			return sc_error(err, SCONIFY_ERR_NOT_FOUND, 0,
			                "`%s' is not a regular file in the image", q);
		for (size_t i = 0; i < p->n_recs; i++) {
			const struct rec *r = &p->recs[i];
			if (r->data && r->serial == it->serial) {
				*ret = (sc_plan_location){.path = absolute(resolved),
				                          .mode = it->mode,
				                          .layer = r->layer,
				                          .data_offset = r->data_offset,
				                          .size = r->size};
				return 0;
			}
		}
		abort(); /* every file in the tree came from a data entry */
	}
	return sc_error(err, SCONIFY_ERR_INVALID, 0, "`%s': too many levels of symbolic links", q);
}

int sc_planner_symlink_on(sc_planner *p, const char *path, char **ret_at, const char **ret_target)
{
	cleanup_free char *prefix = xstrdup(path);
	for (char *slash = prefix; slash;) {
		slash = strchr(slash + 1, '/');
		if (slash)
			*slash = '\0';
		const sc_tree_item *it = prefix[1] ? sc_tree_lookup(p->tree, prefix + 1) : NULL;
		if (it && it->type == SC_ENTRY_SYMLINK) {
			*ret_at = steal_pointer(&prefix);
			*ret_target = it->link;
			return 1;
		}
		if (slash)
			*slash = '/';
	}
	return 0;
}

/* ---- deciding ---- */

struct name {
	uint64_t serial;
	sc_shield_kind kind;
	char *path;
};

struct walk {
	const sc_shield_builder *regions;
	struct name *names; /* protected names and every name of a linked file */
	size_t n_names, names_alloc;
	uint64_t *live; /* serials of every file in the tree */
	size_t n_live, live_alloc;
	sc_plan_symlink *links; /* symlinks in protected regions */
	size_t n_links, links_alloc;
};

static void symlinks_free(sc_plan_symlink *l, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(l[i].path);
		free(l[i].target);
	}
	free(l);
}

static void collect_symlink(struct walk *w, const sc_tree_item *it)
{
	char *abs = absolute(it->path);
	if (sc_shield_builder_region_of(w->regions, abs) == SC_SHIELD_NOT_PROTECTED) {
		free(abs);
		return;
	}
	if (w->n_links == w->links_alloc) {
		w->links_alloc = w->links_alloc ? 2 * w->links_alloc : 64;
		w->links = xreallocarray(w->links, w->links_alloc, sizeof(*w->links));
	}
	w->links[w->n_links++] = (sc_plan_symlink){.path = abs, .target = xstrdup(it->link)};
}

static int collect(void *userdata, const sc_tree_item *it, sconify_error_t *err)
{
	(void)err;
	struct walk *w = userdata;
	if (it->type == SC_ENTRY_SYMLINK)
		collect_symlink(w, it);
	if (it->type != SC_ENTRY_FILE)
		return 0;
	if (w->n_live == w->live_alloc) {
		w->live_alloc = w->live_alloc ? 2 * w->live_alloc : 1024;
		w->live = xreallocarray(w->live, w->live_alloc, sizeof(*w->live));
	}
	w->live[w->n_live++] = it->serial;
	char *abs = absolute(it->path);
	sc_shield_kind kind = sc_shield_builder_region_of(w->regions, abs);
	if (kind == SC_SHIELD_NOT_PROTECTED && it->nlink < 2) {
		free(abs);
		return 0;
	}
	if (w->n_names == w->names_alloc) {
		w->names_alloc = w->names_alloc ? 2 * w->names_alloc : 256;
		w->names = xreallocarray(w->names, w->names_alloc, sizeof(*w->names));
	}
	w->names[w->n_names++] = (struct name){.serial = it->serial, .kind = kind, .path = abs};
	return 0;
}

static void walk_release(struct walk *w)
{
	for (size_t i = 0; i < w->n_names; i++)
		free(w->names[i].path);
	free(w->names);
	free(w->live);
	symlinks_free(w->links, w->n_links);
}

static int by_serial_then_path(const void *a, const void *b)
{
	const struct name *x = a, *y = b;
	if (x->serial != y->serial)
		return x->serial < y->serial ? -1 : 1;
	return strcmp(x->path, y->path);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct found {
	uint64_t serial;
	sc_plan_file f;
};

static int by_first_name(const void *a, const void *b)
{
	return strcmp(((const struct found *)a)->f.names[0], ((const struct found *)b)->f.names[0]);
}

/* The data entry that wrote serial: data entries are met in serial order. */
static struct rec *data_rec(struct rec **data, size_t n, uint64_t serial)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (data[mid]->serial < serial)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && data[lo]->serial == serial ? data[lo] : NULL;
}

static bool is_live(const struct walk *w, uint64_t serial)
{
	return w->n_live && bsearch(&serial, w->live, w->n_live, sizeof(*w->live), cmp_u64) != NULL;
}

void sc_plan_free(sc_plan *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n_layers; i++)
		free(p->layers[i].entries);
	free(p->layers);
	for (size_t i = 0; i < p->n_files; i++) {
		for (size_t j = 0; j < p->files[i].n_names; j++)
			free(p->files[i].names[j]);
		free(p->files[i].names);
	}
	free(p->files);
	symlinks_free(p->symlinks, p->n_symlinks);
	free(p);
}

int sc_planner_finish(sc_planner *p, sc_plan **ret, sconify_error_t *err)
{
	_cleanup_(walk_release) struct walk w = {.regions = p->regions};
	if (sc_tree_walk(p->tree, collect, &w, err) < 0)
		return -1;
	if (w.n_names)
		qsort(w.names, w.n_names, sizeof(*w.names), by_serial_then_path);
	if (w.n_live)
		qsort(w.live, w.n_live, sizeof(*w.live), cmp_u64);

	cleanup_plan sc_plan *plan = xzalloc(sizeof(*plan));
	plan->symlinks = steal_pointer(&w.links);
	plan->n_symlinks = w.n_links;
	w.n_links = 0;
	plan->n_layers = p->n_layers;
	plan->layers = xcalloc(p->n_layers ? p->n_layers : 1, sizeof(*plan->layers));

	size_t n_data = 0;
	struct rec **data = xcalloc(p->n_recs ? p->n_recs : 1, sizeof(*data));
	for (size_t i = 0; i < p->n_recs; i++)
		if (p->recs[i].data)
			data[n_data++] = &p->recs[i];

	/* Files: the names of one content, all in one protected region. */
	struct found *found = xcalloc(w.n_names ? w.n_names : 1, sizeof(*found));
	size_t n_found = 0;
	for (size_t i = 0; i < w.n_names;) {
		size_t j = i;
		bool any_protected = false;
		while (j < w.n_names && w.names[j].serial == w.names[i].serial)
			any_protected |= w.names[j++].kind != SC_SHIELD_NOT_PROTECTED;
		for (size_t k = i + 1; any_protected && k < j; k++)
			if (w.names[k].kind != w.names[i].kind) {
				cleanup_free char *a = sc_quote(w.names[i].path, SC_QUOTE_MAX);
				cleanup_free char *b = sc_quote(w.names[k].path, SC_QUOTE_MAX);
				for (size_t x = 0; x < n_found; x++) {
					for (size_t y = 0; y < found[x].f.n_names; y++)
						free(found[x].f.names[y]);
					free(found[x].f.names);
				}
				free(found);
				free(data);
				return sc_error(
				        err, SCONIFY_ERR_UNSUPPORTED, 0,
				        "hard link joins `%s' (%s) and `%s' (%s): the content would be "
				        "readable through the second name; put both names in one region",
				        a, sc_shield_kind_name(w.names[i].kind), b,
				        sc_shield_kind_name(w.names[k].kind));
			}
		if (any_protected) {
			struct found *fd = &found[n_found++];
			fd->serial = w.names[i].serial;
			fd->f = (sc_plan_file){.kind = w.names[i].kind, .n_names = j - i};
			fd->f.names = xcalloc(j - i, sizeof(char *));
			for (size_t k = i; k < j; k++)
				fd->f.names[k - i] = steal_pointer(&w.names[k].path);
		}
		i = j;
	}
	if (n_found)
		qsort(found, n_found, sizeof(*found), by_first_name);

	plan->files = xcalloc(n_found ? n_found : 1, sizeof(*plan->files));
	for (size_t i = 0; i < n_found; i++) {
		sc_plan_file *f = &plan->files[plan->n_files++];
		*f = found[i].f;
		struct rec *r = data_rec(data, n_data, found[i].serial);
		if (r == NULL)
			abort(); /* every file in the tree came from a data entry */
		r->action = f->kind == SC_SHIELD_ENCRYPTED ? SC_PLAN_ENCRYPT : SC_PLAN_HASH;
		r->file = i;
		f->layer = r->layer;
		f->size = r->size;
		if (r->action == SC_PLAN_ENCRYPT)
			plan->encrypt_bytes += r->size;
		else
			plan->hash_bytes += r->size;
	}
	free(found);

	/* Encrypted-region content nobody sees any more goes, with its links. */
	for (size_t i = 0; i < n_data; i++)
		if (data[i]->encrypted_path && data[i]->action == 0 && !is_live(&w, data[i]->serial))
			data[i]->action = SC_PLAN_DROP;
	for (size_t i = 0; i < p->n_recs; i++) {
		struct rec *r = &p->recs[i];
		if (!r->data && r->action == 0) {
			struct rec *d = data_rec(data, n_data, r->serial);
			if (d && d->action == SC_PLAN_DROP)
				r->action = SC_PLAN_DROP;
		}
	}
	free(data);

	for (size_t i = 0; i < p->n_recs; i++) {
		const struct rec *r = &p->recs[i];
		if (r->action == 0)
			continue;
		sc_plan_layer *l = &plan->layers[r->layer];
		if ((l->n_entries & (l->n_entries - 1)) == 0)
			l->entries = xreallocarray(l->entries, l->n_entries ? 2 * l->n_entries : 1,
			                           sizeof(*l->entries));
		l->entries[l->n_entries++] = (sc_plan_entry){
		        .offset = r->offset,
		        .data_offset = r->data_offset,
		        .size = r->size,
		        .action = r->action,
		        .file = r->file,
		};
		if (r->action == SC_PLAN_DROP)
			plan->dropped++;
		if (r->action != SC_PLAN_HASH)
			l->rewrite = true;
	}
	*ret = steal_pointer(&plan);
	return 0;
}
