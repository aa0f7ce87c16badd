/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The final file tree. Names (nodes) and file contents (inodes) are separate
 * so that hard links share one inode. Nodes live in one array and are found
 * through one open-addressing hash table keyed by (parent, name) with a keyed
 * hash (SipHash, random key per tree: names come from the layers, so
 * collisions must not be choosable); each node also links its siblings so a
 * directory can be listed, pruned or removed without a scan. Names and
 * symlink targets live in an arena freed with the tree. docs/layers.md
 * states the rules applied here.
 */
#include "layer/tree.h"

#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/limits.h"
#include "core/strutil.h"
#include "core/xalloc.h"
#include "layer/path.h"

#define ROOT 1u
#define MAX_SYMLINK_HOPS 40 /* Linux's MAXSYMLINKS */
#define IMPLICIT_DIR_MODE 0755

struct node {
	uint32_t parent;
	uint32_t first_child, next, prev; /* next doubles as the free list link */
	uint32_t inode;
	uint32_t layer; /* that created or replaced it */
	uint32_t seen;  /* last layer that had an entry for it (or created it) */
	uint32_t name_len;
	uint32_t hash;
	const char *name; /* in the arena, NUL-terminated */
};

struct inode {
	uint64_t size, uid, gid;
	int64_t mtime;
	const char *link; /* symlink target, in the arena */
	uint32_t mode;
	uint32_t nlink; /* names in the tree; 0: free (next free in size) */
	uint32_t n_xattrs;
	uint8_t type;    /* sc_entry_type */
	uint64_t serial; /* of the entry that made it; never reused */
};

#define ARENA_BLOCK (64 * 1024)

struct arena_block {
	struct arena_block *prev;
	size_t used, size;
	char data[];
};

struct sc_tree {
	sconify_limits_t limits;
	struct node *nodes;
	size_t n_nodes, nodes_alloc; /* slots used (0 is never used) */
	uint32_t free_nodes;
	size_t live; /* nodes in the tree, the root excluded */
	struct inode *inodes;
	size_t n_inodes, inodes_alloc;
	uint32_t free_inodes;
	uint64_t serials; /* last serial given */
	/* hash table: node id in the low 32 bits, its hash above (compared
	 * first, so a probe rarely touches a node); 0 = empty */
	uint64_t *slots;
	size_t slots_mask;
	uint64_t key[2];
	struct arena_block *arena;
	size_t arena_bytes;
	unsigned layer, next_layer;
	bool in_layer;
	sc_tree_item item; /* what sc_tree_lookup returns */
	sc_buf item_path;
};

/* ---- SipHash-2-4 ------------------------------------------------------ */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                          \
	do {                                                              \
		v0 += v1, v1 = ROTL(v1, 13), v1 ^= v0, v0 = ROTL(v0, 32); \
		v2 += v3, v3 = ROTL(v3, 16), v3 ^= v2;                    \
		v0 += v3, v3 = ROTL(v3, 21), v3 ^= v0;                    \
		v2 += v1, v1 = ROTL(v1, 17), v1 ^= v2, v2 = ROTL(v2, 32); \
	} while (0)

static uint64_t le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint32_t node_hash(const sc_tree *t, uint32_t parent, const char *name, size_t len)
{
	uint64_t v0 = 0x736f6d6570736575ull ^ t->key[0], v1 = 0x646f72616e646f6dull ^ t->key[1];
	uint64_t v2 = 0x6c7967656e657261ull ^ t->key[0], v3 = 0x7465646279746573ull ^ t->key[1];
	uint64_t m = parent | ((uint64_t)len << 32);
	v3 ^= m;
	SIPROUND;
	SIPROUND;
	v0 ^= m;
	const unsigned char *p = (const unsigned char *)name;
	size_t left = len;
	for (; left >= 8; p += 8, left -= 8) {
		m = le64(p);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	unsigned char tail[8] = {0};
	memcpy(tail, p, left);
	m = le64(tail) | ((uint64_t)(len & 0xff) << 56);
	v3 ^= m;
	SIPROUND;
	SIPROUND;
	v0 ^= m;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return (uint32_t)(v0 ^ v1 ^ v2 ^ v3);
}

/* ---- storage -------------------------------------------------------------- */

static const char *arena_strndup(sc_tree *t, const char *s, size_t n)
{
	struct arena_block *b = t->arena;
	if (b == NULL || b->size - b->used < n + 1) {
		size_t size = n + 1 > ARENA_BLOCK / 4 ? n + 1 : ARENA_BLOCK;
		struct arena_block *nb = xmalloc(sizeof(*nb) + size);
		nb->used = 0;
		nb->size = size;
		t->arena_bytes += sizeof(*nb) + size;
		if (b != NULL && size != ARENA_BLOCK) {
			/* a big string gets its own block, kept behind the current one */
			nb->prev = b->prev;
			b->prev = nb;
		} else {
			nb->prev = b;
			t->arena = nb;
		}
		b = nb;
	}
	char *p = b->data + b->used;
	memcpy(p, s, n);
	p[n] = '\0';
	b->used += n + 1;
	return p;
}

static struct node *N(const sc_tree *t, uint32_t id)
{
	return &t->nodes[id];
}

static struct inode *I(const sc_tree *t, uint32_t id)
{
	return &t->inodes[id];
}

static struct inode *node_inode(const sc_tree *t, uint32_t id)
{
	return &t->inodes[t->nodes[id].inode];
}

static bool is_dir(const sc_tree *t, uint32_t id)
{
	return node_inode(t, id)->type == SC_ENTRY_DIR;
}

static uint32_t inode_new(sc_tree *t)
{
	uint32_t id;
	if (t->free_inodes) {
		id = t->free_inodes;
		t->free_inodes = (uint32_t)t->inodes[id].size;
	} else {
		if (t->n_inodes == t->inodes_alloc) {
			t->inodes_alloc = t->inodes_alloc ? t->inodes_alloc * 2 : 1024;
			t->inodes = xreallocarray(t->inodes, t->inodes_alloc, sizeof(*t->inodes));
		}
		id = (uint32_t)t->n_inodes++;
	}
	memset(&t->inodes[id], 0, sizeof(t->inodes[id]));
	t->inodes[id].nlink = 1;
	return id;
}

static void inode_unref(sc_tree *t, uint32_t id)
{
	struct inode *in = I(t, id);
	if (--in->nlink > 0)
		return;
	memset(in, 0, sizeof(*in));
	in->size = t->free_inodes;
	t->free_inodes = id;
}

static uint64_t *slot_find(const sc_tree *t, uint32_t parent, const char *name, size_t len, uint32_t h)
{
	size_t i = h & t->slots_mask;
	for (;;) {
		uint64_t *s = &t->slots[i];
		if (*s == 0)
			return s;
		if ((uint32_t)(*s >> 32) == h) {
			const struct node *n = N(t, (uint32_t)*s);
			if (n->parent == parent && n->name_len == len && memcmp(n->name, name, len) == 0)
				return s;
		}
		i = (i + 1) & t->slots_mask;
	}
}

static uint64_t slot_value(uint32_t id, uint32_t h)
{
	return (uint64_t)h << 32 | id;
}

static void slots_grow(sc_tree *t)
{
	size_t cap = (t->slots_mask + 1) * 2;
	uint64_t *old = t->slots;
	size_t old_cap = t->slots_mask + 1;
	t->slots = xcalloc(cap, sizeof(*t->slots));
	t->slots_mask = cap - 1;
	for (size_t i = 0; i < old_cap; i++) {
		if (old[i] == 0)
			continue;
		size_t j = (size_t)(old[i] >> 32) & t->slots_mask;
		while (t->slots[j])
			j = (j + 1) & t->slots_mask;
		t->slots[j] = old[i];
	}
	free(old);
}

/* Removes node id from the hash table (linear probing, backward shift). */
static void slot_remove(sc_tree *t, uint32_t id)
{
	const struct node *n = N(t, id);
	uint64_t *s = slot_find(t, n->parent, n->name, n->name_len, n->hash);
	size_t i = (size_t)(s - t->slots), j = i;
	t->slots[i] = 0;
	for (;;) {
		j = (j + 1) & t->slots_mask;
		if (t->slots[j] == 0)
			return;
		size_t k = (size_t)(t->slots[j] >> 32) & t->slots_mask;
		/* move slots[j] into the hole unless its home lies in (i, j] */
		bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (stays)
			continue;
		t->slots[i] = t->slots[j];
		t->slots[j] = 0;
		i = j;
	}
}

static uint32_t lookup(const sc_tree *t, uint32_t parent, const char *name, size_t len)
{
	return (uint32_t)*slot_find(t, parent, name, len, node_hash(t, parent, name, len));
}

static int count_check(sc_tree *t, const char *raw, sconify_error_t *err)
{
	if (t->live + 1 <= t->limits.max_entries)
		return 0;
	cleanup_free char *q = sc_quote(raw, SC_QUOTE_MAX);
	return sc_error(err, SCONIFY_ERR_LIMIT, 0,
	                "entry `%s': too many entries in the tree (more than %llu)", q,
	                (unsigned long long)t->limits.max_entries);
}

/* Adds a name; the caller checked the count and that it is not there.
 * stored: the same name already in the arena (of a node it replaces), or
 * NULL: names of removed nodes stay in the arena until the tree is freed, so
 * a replacement reuses the old copy instead of growing it. */
static uint32_t node_add(sc_tree *t, uint32_t parent, const char *name, size_t len, uint32_t inode,
                         const char *stored)
{
	uint32_t id;
	if (t->free_nodes) {
		id = t->free_nodes;
		t->free_nodes = N(t, id)->next;
	} else {
		if (t->n_nodes == t->nodes_alloc) {
			t->nodes_alloc *= 2;
			t->nodes = xreallocarray(t->nodes, t->nodes_alloc, sizeof(*t->nodes));
		}
		id = (uint32_t)t->n_nodes++;
	}
	if ((t->live + 2) * 4 > (t->slots_mask + 1) * 3)
		slots_grow(t);
	struct node *n = N(t, id);
	*n = (struct node){
	        .parent = parent,
	        .inode = inode,
	        .layer = t->layer,
	        .seen = t->layer,
	        .name_len = (uint32_t)len,
	        .hash = node_hash(t, parent, name, len),
	        .name = stored ? stored : arena_strndup(t, name, len),
	};
	*slot_find(t, parent, name, len, n->hash) = slot_value(id, n->hash);
	struct node *p = N(t, parent);
	n->next = p->first_child;
	if (p->first_child)
		N(t, p->first_child)->prev = id;
	p->first_child = id;
	t->live++;
	return id;
}

/* Frees a node without children. */
static void node_free(sc_tree *t, uint32_t id)
{
	struct node *n = N(t, id);
	slot_remove(t, id);
	if (n->prev)
		N(t, n->prev)->next = n->next;
	else
		N(t, n->parent)->first_child = n->next;
	if (n->next)
		N(t, n->next)->prev = n->prev;
	inode_unref(t, n->inode);
	memset(n, 0, sizeof(*n));
	n->next = t->free_nodes;
	t->free_nodes = id;
	t->live--;
}

static void remove_subtree(sc_tree *t, uint32_t top)
{
	uint32_t cur = top;
	for (;;) {
		while (N(t, cur)->first_child)
			cur = N(t, cur)->first_child;
		uint32_t parent = N(t, cur)->parent, next = N(t, cur)->next;
		node_free(t, cur);
		if (cur == top)
			return;
		cur = next ? next : parent;
	}
}

/* Whether top or a node below it had an entry in the current layer. */
static bool subtree_seen(const sc_tree *t, uint32_t top)
{
	uint32_t cur = top;
	for (;;) {
		if (N(t, cur)->seen == t->layer)
			return true;
		if (N(t, cur)->first_child) {
			cur = N(t, cur)->first_child;
			continue;
		}
		while (cur != top && N(t, cur)->next == 0)
			cur = N(t, cur)->parent;
		if (cur == top)
			return false;
		cur = N(t, cur)->next;
	}
}

/* Opaque directory: removes every node below dir that the current layer did
 * not name, keeping the directories that lead to names it did. */
static void prune_lower(sc_tree *t, uint32_t dir)
{
	uint32_t cur = N(t, dir)->first_child;
	if (cur == 0)
		return;
	for (;;) {
		while (N(t, cur)->first_child)
			cur = N(t, cur)->first_child;
		for (;;) {
			/* cur's children are done: what is left of them is kept */
			uint32_t parent = N(t, cur)->parent, next = N(t, cur)->next;
			if (N(t, cur)->seen != t->layer) {
				if (N(t, cur)->first_child == 0) {
					node_free(t, cur);
				} else {
					/* kept only as the parent of this layer's names: the
					 * lower directory is hidden, this is the implicit one
					 * the marker's position must not matter for */
					*node_inode(t, cur) = (struct inode){
					        .type = SC_ENTRY_DIR, .mode = IMPLICIT_DIR_MODE, .nlink = 1};
					N(t, cur)->layer = t->layer;
				}
			}
			if (next) {
				cur = next;
				break;
			}
			if (parent == dir)
				return;
			cur = parent;
		}
	}
}

/* The path of a node, into b. */
static void node_path(const sc_tree *t, uint32_t id, sc_buf *b)
{
	b->len = 0;
	sc_buf_puts(b, "");
	size_t len = 0;
	for (uint32_t c = id; c != ROOT; c = N(t, c)->parent)
		len += N(t, c)->name_len + 1;
	if (len == 0)
		return;
	len--;
	char *tmp = xmalloc(len + 1);
	size_t pos = len;
	for (uint32_t c = id; c != ROOT; c = N(t, c)->parent) {
		const struct node *n = N(t, c);
		pos -= n->name_len;
		memcpy(tmp + pos, n->name, n->name_len);
		if (pos > 0)
			tmp[--pos] = '/';
	}
	sc_buf_append(b, tmp, len, NULL, NULL);
	free(tmp);
}

/* ---- resolution ------------------------------------------------------------- */

struct frame {
	const char *s;
	size_t len, pos;
	sc_buf clean; /* the cleaned symlink target s points into */
};

struct resolution {
	uint32_t dir;  /* deepest existing directory reached */
	sc_buf virt;   /* components below dir that do not exist, '/'-joined */
	size_t n_virt; /* how many */
	const char *base;
	size_t base_len; /* 0: the path is dir (+ virt) itself */
};

static void resolution_free(struct resolution *r)
{
	sc_buf_free(&r->virt);
}

static bool frame_has_more(const struct frame *f)
{
	size_t i = f->pos;
	while (i < f->len && f->s[i] == '/')
		i++;
	return i < f->len;
}

static int resolve_error(const sc_tree *t, sconify_error_kind_t kind, uint32_t at, const char *problem,
                         sconify_error_t *err)
{
	cleanup_buf sc_buf b;
	sc_buf_init(&b, SIZE_MAX);
	node_path(t, at, &b);
	cleanup_free char *q = sc_quote(b.data, SC_QUOTE_MAX);
	return sc_error(err, kind, 0, "%s (at `%s')", problem, q);
}

/* Resolves path (normalised: no "..", no empty components) inside the root:
 * every component but the last follows symlinks of the tree, as containerd's
 * fs.RootPath joins them (a target is cleaned lexically and applied to the
 * directory holding the link; absolute targets start at the root; ".." at the
 * root stays there). follow_last: the last component is resolved too (then
 * base_len is 0). Past a missing component the rest is kept lexically. */
static int resolve(const sc_tree *t, const char *path, size_t len, bool follow_last, struct resolution *res,
                   sconify_error_t *err)
{
	struct frame frames[MAX_SYMLINK_HOPS + 2];
	size_t nf = 1, hops = 0;
	frames[0] = (struct frame){.s = path, .len = len};
	uint32_t cur = ROOT;
	size_t depth = 0, length = 0;
	bool virt = false;
	int r = 0;

	*res = (struct resolution){.dir = ROOT};
	sc_buf_init(&res->virt, SIZE_MAX);

	for (;;) {
		struct frame *f = &frames[nf - 1];
		const char *c;
		size_t clen;
		if (!sc_layer_path_next(f->s, f->len, &f->pos, &c, &clen)) {
			if (nf == 1)
				break;
			sc_buf_free(&f->clean);
			nf--;
			continue;
		}
		if (nf == 1 && !follow_last && !frame_has_more(f)) {
			res->base = c;
			res->base_len = clen;
			break;
		}
		if (clen == 1 && c[0] == '.')
			continue;
		if (clen == 2 && c[0] == '.' && c[1] == '.') {
			/* not in normalised paths or cleaned targets; kept for safety */
			if (virt && res->n_virt > 0) {
				size_t i = res->virt.len;
				while (i > 0 && res->virt.data[i - 1] != '/')
					i--;
				length -= res->virt.len - i + (depth > 1 ? 1 : 0);
				res->virt.len = i > 0 ? i - 1 : 0;
				res->virt.data[res->virt.len] = '\0';
				res->n_virt--;
				depth--;
				virt = res->n_virt > 0;
			} else if (cur != ROOT) {
				length -= N(t, cur)->name_len + (depth > 1 ? 1 : 0);
				depth--;
				cur = N(t, cur)->parent;
			}
			continue;
		}
		uint32_t x = virt ? 0 : lookup(t, cur, c, clen);
		if (x == 0) {
			virt = true;
			if (res->n_virt++ > 0)
				sc_buf_putc(&res->virt, '/');
			sc_buf_append(&res->virt, c, clen, NULL, NULL);
			length += clen + (depth > 0 ? 1 : 0);
			depth++;
		} else if (is_dir(t, x)) {
			cur = x;
			length += clen + (depth > 0 ? 1 : 0);
			depth++;
		} else if (node_inode(t, x)->type == SC_ENTRY_SYMLINK) {
			if (++hops > MAX_SYMLINK_HOPS) {
				r = resolve_error(t, SCONIFY_ERR_INVALID, x,
				                  "too many levels of symbolic links", err);
				goto out;
			}
			const char *target = node_inode(t, x)->link;
			struct frame *nfr = &frames[nf++];
			*nfr = (struct frame){0};
			sc_buf_init(&nfr->clean, SIZE_MAX);
			bool absolute;
			size_t up;
			sc_layer_path_clean(target, strlen(target), &nfr->clean, &absolute, &up);
			nfr->s = nfr->clean.data ? nfr->clean.data : "";
			nfr->len = nfr->clean.len;
			if (absolute) {
				cur = ROOT;
				depth = length = 0;
			}
			for (; up > 0 && cur != ROOT; up--) {
				length -= N(t, cur)->name_len + (depth > 1 ? 1 : 0);
				depth--;
				cur = N(t, cur)->parent;
			}
		} else {
			r = resolve_error(t, SCONIFY_ERR_INVALID, x, "parent is not a directory", err);
			goto out;
		}
		if (depth > t->limits.max_path_depth) {
			r = sc_error(err, SCONIFY_ERR_LIMIT, 0, "resolved path deeper than %llu components",
			             (unsigned long long)t->limits.max_path_depth);
			goto out;
		}
		if (length > t->limits.max_path_bytes) {
			r = sc_error(err, SCONIFY_ERR_LIMIT, 0, "resolved path longer than %llu bytes",
			             (unsigned long long)t->limits.max_path_bytes);
			goto out;
		}
	}
	if (res->base_len > 0 &&
	    (depth + 1 > t->limits.max_path_depth || length + 1 + res->base_len > t->limits.max_path_bytes)) {
		r = sc_error(err, SCONIFY_ERR_LIMIT, 0,
		             "resolved path longer than %llu bytes or deeper than %llu components",
		             (unsigned long long)t->limits.max_path_bytes,
		             (unsigned long long)t->limits.max_path_depth);
		goto out;
	}
	res->dir = cur;
out:
	for (size_t i = 1; i < nf; i++)
		sc_buf_free(&frames[i].clean);
	if (r < 0)
		resolution_free(res);
	return r;
}

/* Creates the missing directories of res below res->dir; returns the last. */
static int create_virtual(sc_tree *t, const struct resolution *res, const char *raw, uint32_t *ret_dir,
                          sconify_error_t *err)
{
	uint32_t dir = res->dir;
	size_t pos = 0, clen;
	const char *c;
	while (res->n_virt > 0 && sc_layer_path_next(res->virt.data, res->virt.len, &pos, &c, &clen)) {
		if (count_check(t, raw, err) < 0)
			return -1;
		uint32_t in = inode_new(t);
		*I(t, in) = (struct inode){.type = SC_ENTRY_DIR, .mode = IMPLICIT_DIR_MODE, .nlink = 1};
		dir = node_add(t, dir, c, clen, in, NULL);
	}
	*ret_dir = dir;
	return 0;
}

/* ---- applying entries -------------------------------------------------------- */

static int entry_fail(const sc_layer_entry *e, sconify_error_t *err)
{
	cleanup_free char *q = sc_quote(e->raw_path ? e->raw_path : e->path, SC_QUOTE_MAX);
	return sc_error_wrap(err, "entry `%s'", q);
}

__attribute__((format(printf, 4, 5))) static int
entry_error(const sc_layer_entry *e, sconify_error_kind_t kind, sconify_error_t *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cleanup_free char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	cleanup_free char *q = sc_quote(e->raw_path ? e->raw_path : e->path, SC_QUOTE_MAX);
	return sc_error(err, kind, 0, "entry `%s': %s", q, msg);
}

static void set_attrs(sc_tree *t, struct inode *in, const sc_layer_entry *e)
{
	in->type = (uint8_t)e->type;
	in->mode = e->mode;
	in->uid = e->uid;
	in->gid = e->gid;
	in->mtime = e->mtime;
	in->size = e->type == SC_ENTRY_FILE ? e->size : 0;
	in->n_xattrs = (uint32_t)e->n_xattrs;
	in->link = e->type == SC_ENTRY_SYMLINK && e->link ? arena_strndup(t, e->link, strlen(e->link)) : NULL;
}

static int apply_whiteout(sc_tree *t, const sc_layer_entry *e, sconify_error_t *err)
{
	const char *target = e->whiteout_target ? e->whiteout_target : "";
	_cleanup_(resolution_free) struct resolution res = {0};
	if (resolve(t, target, strlen(target), false, &res, err) < 0)
		return entry_fail(e, err);
	if (res.base_len == 0)
		return entry_error(e, SCONIFY_ERR_INVALID, err, "invalid whiteout: it names the root");
	if (res.n_virt > 0)
		return 0; /* a parent is missing (a dangling symlink): nothing to remove */
	uint32_t x = lookup(t, res.dir, res.base, res.base_len);
	if (x == 0)
		return 0;
	/* image-spec: a whiteout applies to the lower layers only */
	if (subtree_seen(t, x))
		return entry_error(e, SCONIFY_ERR_INVALID, err,
		                   "duplicate entry: the whiteout removes what this layer created");
	remove_subtree(t, x);
	return 0;
}

static int apply_opaque(sc_tree *t, const sc_layer_entry *e, sconify_error_t *err)
{
	const char *target = e->whiteout_target ? e->whiteout_target : "";
	_cleanup_(resolution_free) struct resolution res = {0};
	if (resolve(t, target, strlen(target), true, &res, err) < 0)
		return entry_fail(e, err);
	uint32_t dir;
	if (create_virtual(t, &res, e->raw_path ? e->raw_path : e->path, &dir, err) < 0)
		return -1;
	prune_lower(t, dir);
	return 0;
}

static int apply_regular(sc_tree *t, const sc_layer_entry *e, sconify_error_t *err)
{
	_cleanup_(resolution_free) struct resolution res = {0};
	if (resolve(t, e->path, strlen(e->path), false, &res, err) < 0)
		return entry_fail(e, err);

	if (res.base_len == 0) {
		if (e->type != SC_ENTRY_DIR)
			return entry_error(e, SCONIFY_ERR_INVALID, err, "root must be a directory");
		set_attrs(t, node_inode(t, ROOT), e);
		N(t, ROOT)->seen = t->layer;
		return 0;
	}

	uint32_t target = 0;
	if (e->type == SC_ENTRY_HARDLINK) {
		const char *link = e->link ? e->link : "";
		cleanup_free char *q = sc_quote(link, SC_QUOTE_MAX);
		_cleanup_(resolution_free) struct resolution lr = {0};
		if (resolve(t, link, strlen(link), false, &lr, err) < 0) {
			sc_error_wrap(err, "hard link target `%s'", q);
			return entry_fail(e, err);
		}
		if (lr.base_len == 0)
			return entry_error(e, SCONIFY_ERR_INVALID, err,
			                   "hard link target `%s' is a directory", q);
		target = lr.n_virt > 0 ? 0 : lookup(t, lr.dir, lr.base, lr.base_len);
		if (target == 0)
			return entry_error(e, SCONIFY_ERR_INVALID, err, "hard link target `%s' is missing",
			                   q);
		if (is_dir(t, target))
			return entry_error(e, SCONIFY_ERR_INVALID, err,
			                   "hard link target `%s' is a directory", q);
	}

	uint32_t dir;
	if (create_virtual(t, &res, e->raw_path ? e->raw_path : e->path, &dir, err) < 0)
		return -1;

	uint32_t x = lookup(t, dir, res.base, res.base_len);
	if (x != 0) {
		bool both_dirs = is_dir(t, x) && e->type == SC_ENTRY_DIR;
		if (both_dirs) {
			/* a directory over a directory keeps its children */
			set_attrs(t, node_inode(t, x), e);
			N(t, x)->seen = t->layer;
			return 0;
		}
		if (subtree_seen(t, x))
			return entry_error(e, SCONIFY_ERR_INVALID, err, "duplicate entry in this layer");
		if (x == target)
			return entry_error(e, SCONIFY_ERR_INVALID, err,
			                   "hard link target `%s' is missing: it is the entry itself",
			                   e->link);
	} else if (count_check(t, e->raw_path ? e->raw_path : e->path, err) < 0) {
		return -1;
	}

	uint32_t in;
	if (target != 0) {
		in = N(t, target)->inode;
		I(t, in)->nlink++; /* before x goes: x may hold the target */
	} else {
		in = inode_new(t);
		set_attrs(t, I(t, in), e);
		I(t, in)->serial = ++t->serials;
	}
	const char *stored = NULL;
	if (x != 0) {
		stored = N(t, x)->name;
		remove_subtree(t, x);
	}
	node_add(t, dir, res.base, res.base_len, in, stored);
	return 0;
}

int sc_tree_apply(void *userdata, const sc_layer_entry *e, sconify_error_t *err)
{
	sc_tree *t = userdata;
	if (!t->in_layer)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "sc_tree_apply outside of a layer");
	switch (e->whiteout) {
	case SC_WH_META:
		return 0;
	case SC_WH_FILE:
		return apply_whiteout(t, e, err);
	case SC_WH_OPAQUE:
		return apply_opaque(t, e, err);
	case SC_WH_NONE:
		break;
	}
	return apply_regular(t, e, err);
}

/* ---- the tree ------------------------------------------------------------------ */

sc_tree *sc_tree_new(const sconify_limits_t *limits)
{
	sc_tree *t = xzalloc(sizeof(*t));
	if (limits)
		t->limits = *limits;
	sc_limits_fill(&t->limits);
	/* node ids are 32 bits */
	if (t->limits.max_entries > UINT32_MAX / 2)
		t->limits.max_entries = UINT32_MAX / 2;
	if (RAND_bytes((unsigned char *)t->key, sizeof(t->key)) != 1) {
		/* no entropy source: still a keyed hash, only a guessable key */
		t->key[0] = (uint64_t)(uintptr_t)t;
		t->key[1] = (uint64_t)(uintptr_t)&t->key;
	}
	t->nodes_alloc = 1024;
	t->nodes = xcalloc(t->nodes_alloc, sizeof(*t->nodes));
	t->n_nodes = 2; /* 0: none, 1: the root */
	t->inodes_alloc = 1024;
	t->inodes = xcalloc(t->inodes_alloc, sizeof(*t->inodes));
	t->n_inodes = 1;
	t->slots_mask = 1023;
	t->slots = xcalloc(t->slots_mask + 1, sizeof(*t->slots));
	uint32_t in = inode_new(t);
	*I(t, in) = (struct inode){.type = SC_ENTRY_DIR, .mode = IMPLICIT_DIR_MODE, .nlink = 1};
	*N(t, ROOT) = (struct node){.inode = in, .name = ""};
	sc_buf_init(&t->item_path, SIZE_MAX);
	return t;
}

void sc_tree_free(sc_tree *t)
{
	if (t == NULL)
		return;
	for (struct arena_block *b = t->arena; b;) {
		struct arena_block *p = b->prev;
		free(b);
		b = p;
	}
	free(t->nodes);
	free(t->inodes);
	free(t->slots);
	sc_buf_free(&t->item_path);
	free(t);
}

int sc_tree_begin_layer(sc_tree *t, unsigned layer, sconify_error_t *err)
{
	if (t->in_layer || layer != t->next_layer)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "layer %u begun out of order (expected %u)", layer,
		                t->next_layer);
	t->layer = layer;
	t->in_layer = true;
	return 0;
}

int sc_tree_end_layer(sc_tree *t, sconify_error_t *err)
{
	if (!t->in_layer)
		return sc_error(err, SCONIFY_ERR_USAGE, 0, "no layer to end");
	t->in_layer = false;
	t->next_layer++;
	return 0;
}

int sc_tree_add_layer(sc_tree *t, sc_reader *layer, const char *what, sconify_error_t *err)
{
	if (!t->in_layer && sc_tree_begin_layer(t, t->next_layer, err) < 0)
		return -1;
	sc_layer_scan_opts o = {
	        .limits = &t->limits,
	        .on_entry = sc_tree_apply,
	        .userdata = t,
	        .what = what,
	};
	if (sc_layer_scan(layer, &o, NULL, NULL, err) < 0)
		return -1;
	return sc_tree_end_layer(t, err);
}

int sc_tree_resolve(sc_tree *t, const char *path, char **ret_path, sconify_error_t *err)
{
	cleanup_buf sc_buf clean;
	sc_buf_init(&clean, SIZE_MAX);
	bool absolute;
	size_t up;
	/* like containerd: clean lexically first, ".." at the root is the root */
	sc_layer_path_clean(path, strlen(path), &clean, &absolute, &up);
	_cleanup_(resolution_free) struct resolution res = {0};
	if (resolve(t, clean.data ? clean.data : "", clean.len, false, &res, err) < 0) {
		cleanup_free char *q = sc_quote(path, SC_QUOTE_MAX);
		return sc_error_wrap(err, "resolving `%s'", q);
	}
	cleanup_buf sc_buf out;
	sc_buf_init(&out, SIZE_MAX);
	node_path(t, res.dir, &out);
	if (res.n_virt > 0) {
		if (out.len > 0)
			sc_buf_putc(&out, '/');
		sc_buf_append(&out, res.virt.data, res.virt.len, NULL, NULL);
	}
	if (res.base_len > 0) {
		if (out.len > 0)
			sc_buf_putc(&out, '/');
		sc_buf_append(&out, res.base, res.base_len, NULL, NULL);
	}
	*ret_path = sc_buf_steal(&out, NULL);
	return 0;
}

static void fill_item(sc_tree *t, uint32_t id, const char *path, sc_tree_item *it)
{
	const struct node *n = N(t, id);
	const struct inode *in = I(t, n->inode);
	*it = (sc_tree_item){
	        .path = path,
	        .type = (sc_entry_type)in->type,
	        .mode = in->mode,
	        .uid = in->uid,
	        .gid = in->gid,
	        .size = in->size,
	        .mtime = in->mtime,
	        .link = in->link,
	        .layer = n->layer,
	        .inode = n->inode,
	        .serial = in->serial,
	        .nlink = in->nlink,
	        .n_xattrs = in->n_xattrs,
	};
}

const sc_tree_item *sc_tree_lookup(sc_tree *t, const char *path)
{
	uint32_t cur = ROOT;
	size_t pos = 0, clen, len = strlen(path);
	const char *c;
	t->item_path.len = 0;
	sc_buf_puts(&t->item_path, "");
	while (sc_layer_path_next(path, len, &pos, &c, &clen)) {
		if (clen == 1 && c[0] == '.')
			continue;
		if (cur != ROOT && !is_dir(t, cur))
			return NULL;
		cur = lookup(t, cur, c, clen);
		if (cur == 0)
			return NULL;
		if (t->item_path.len > 0)
			sc_buf_putc(&t->item_path, '/');
		sc_buf_append(&t->item_path, c, clen, NULL, NULL);
	}
	fill_item(t, cur, t->item_path.data, &t->item);
	return &t->item;
}

size_t sc_tree_count(sc_tree *t)
{
	return t->live + 1;
}

/* ---- walking in byte order of the full path ----------------------------------------- */

/* A directory's entries: each child as itself ("name") and, when it has
 * children, its subtree ("name/..."). Sorting these keys by bytes puts every
 * full path in byte order: "a" < "a-b" < "a/b" ('-' sorts before '/'). */
struct walk_ev {
	const char *name;
	uint32_t len;
	uint32_t id;
	bool subtree;
};

static int ev_cmp(const void *pa, const void *pb)
{
	const struct walk_ev *a = pa, *b = pb;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->name, b->name, n);
	if (c != 0)
		return c;
	/* the effective keys go on with '/' for a subtree, else they end */
	int ca = n < a->len ? (unsigned char)a->name[n] : a->subtree ? '/' : -1;
	int cb = n < b->len ? (unsigned char)b->name[n] : b->subtree ? '/' : -1;
	if (ca != cb)
		return ca < cb ? -1 : 1;
	/* equal so far: the longer key (a name that goes on, or a subtree) is later */
	size_t la = a->len + (a->subtree ? 1 : 0), lb = b->len + (b->subtree ? 1 : 0);
	return la < lb ? -1 : la > lb ? 1 : 0;
}

struct walk_frame {
	struct walk_ev *evs;
	size_t n, i;
	size_t prefix_len;
};

static struct walk_ev *dir_events(const sc_tree *t, uint32_t dir, size_t *ret_n)
{
	size_t n = 0;
	for (uint32_t c = N(t, dir)->first_child; c; c = N(t, c)->next)
		n += N(t, c)->first_child ? 2 : 1;
	struct walk_ev *evs = xcalloc(n ? n : 1, sizeof(*evs));
	size_t i = 0;
	for (uint32_t c = N(t, dir)->first_child; c; c = N(t, c)->next) {
		const struct node *nd = N(t, c);
		evs[i++] = (struct walk_ev){.name = nd->name, .len = nd->name_len, .id = c};
		if (nd->first_child)
			evs[i++] = (struct walk_ev){
			        .name = nd->name, .len = nd->name_len, .id = c, .subtree = true};
	}
	qsort(evs, n, sizeof(*evs), ev_cmp);
	*ret_n = n;
	return evs;
}

int sc_tree_walk(sc_tree *t, int (*fn)(void *userdata, const sc_tree_item *it, sconify_error_t *err),
                 void *userdata, sconify_error_t *err)
{
	cleanup_buf sc_buf path;
	sc_buf_init(&path, SIZE_MAX);
	sc_buf_puts(&path, "");
	sc_tree_item it;
	fill_item(t, ROOT, path.data, &it);
	if (fn(userdata, &it, err) < 0)
		return -1;

	size_t nfr = 1, afr = 16;
	struct walk_frame *fr = xcalloc(afr, sizeof(*fr));
	fr[0].evs = dir_events(t, ROOT, &fr[0].n);
	int r = 0;
	while (nfr > 0) {
		struct walk_frame *f = &fr[nfr - 1];
		if (f->i == f->n) {
			free(f->evs);
			nfr--;
			continue;
		}
		const struct walk_ev *ev = &f->evs[f->i++];
		path.len = f->prefix_len;
		if (path.len > 0)
			sc_buf_putc(&path, '/');
		sc_buf_append(&path, ev->name, ev->len, NULL, NULL);
		if (!ev->subtree) {
			fill_item(t, ev->id, path.data, &it);
			if (fn(userdata, &it, err) < 0) {
				r = -1;
				break;
			}
			continue;
		}
		if (nfr == afr) {
			afr *= 2;
			fr = xreallocarray(fr, afr, sizeof(*fr));
		}
		struct walk_frame *nf = &fr[nfr++];
		*nf = (struct walk_frame){.prefix_len = path.len};
		nf->evs = dir_events(t, ev->id, &nf->n);
	}
	for (size_t i = 0; i < nfr; i++)
		free(fr[i].evs);
	free(fr);
	return r;
}
