/* SPDX-License-Identifier: MIT */
/*
 * discovery_state.c — what Home Assistant was told, kept true: discovery_sync()
 * publishes a built list (discovery.c) and clears what is no longer in it,
 * and the state file (under the unit's StateDirectory) remembers what was
 * announced across restarts, so an entity removed from the config while the
 * gateway was stopped is still deleted at the next start. The file is
 * written atomically (a temporary file, fsync, rename). The only file I/O of
 * discovery; nothing here logs (the caller says once what failed).
 */
#include "discovery.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STATE_HEADER "# sensorgate: Home Assistant discovery topics announced last; rewritten at every change\n"

/* --- keeping the broker in line -------------------------------------------------- */

static bool same_set(const struct sg_disc_topics *a, const struct sg_disc_list *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < b->n; i++) {
		size_t j = 0;

		while (j < a->n && strcmp(a->v[j], b->v[i].topic) != 0)
			j++;
		if (j == a->n)
			return false;
	}
	return true;
}

int discovery_sync(const struct sg_disc_list *list, struct sg_disc_topics *announced, const char *state_path,
                   bool deletions, sg_disc_publish_fn publish, void *ud, struct sg_disc_sync *res)
{
	struct sg_disc_sync out = {0};
	struct sg_disc_list rm = {0};
	struct sg_disc_topics now = {0};
	int r;

	if (res)
		*res = out;
	if (deletions) {
		if ((r = discovery_removals(announced, list, &rm)) < 0)
			return r;
		for (; out.deleted < rm.n; out.deleted++)
			if ((r = publish(ud, rm.v[out.deleted].topic, "", 0)) < 0)
				goto out;
	}
	for (; out.announced < list->n; out.announced++) {
		const struct sg_disc_msg *m = &list->v[out.announced];

		if ((r = publish(ud, m->topic, m->payload, strlen(m->payload))) < 0)
			goto out;
	}
	r = 0;
	if (!deletions || same_set(announced, list))
		goto out;
	now.v = calloc(list->n ? list->n : 1, sizeof(*now.v));
	for (size_t i = 0; now.v && i < list->n; i++, now.n++)
		if (!(now.v[i] = strdup(list->v[i].topic)))
			break;
	if (!now.v || now.n != list->n) {
		discovery_topics_clear(&now);
		r = -ENOMEM;
		goto out;
	}
	discovery_topics_clear(announced);
	*announced = now;
	if (state_path)
		out.save_error = discovery_state_save(state_path, list);
out:
	discovery_list_clear(&rm);
	if (res)
		*res = out;
	return r;
}

/* --- the state file ------------------------------------------------------------- */

char *discovery_state_path(const struct sg_config *cfg, const char *state_directory)
{
	char *p = NULL;

	errno = 0;
	if (cfg->discovery.state_file)
		return strdup(cfg->discovery.state_file);
	if (state_directory && *state_directory && *state_directory != ':') {
		size_t n = strcspn(state_directory, ":");
		if (asprintf(&p, "%.*s/discovery-%s.state", (int)n, state_directory, cfg->id) < 0)
			return NULL;
		return p;
	}
	if (cfg->spool.path) {
		const char *slash = strrchr(cfg->spool.path, '/');
		int dirlen = slash ? (int)(slash - cfg->spool.path) : 1;
		const char *dir = slash ? cfg->spool.path : ".";

		if (slash == cfg->spool.path) /* "/spool.db" */
			dirlen = 0;
		if (asprintf(&p, "%.*s/discovery-%s.state", dirlen, dir, cfg->id) < 0)
			return NULL;
		return p;
	}
	return NULL;
}

int discovery_state_load(const char *path, struct sg_disc_topics *ret)
{
	struct sg_disc_topics t = {0};
	size_t cap = 0, len = 0;
	char *line = NULL;
	ssize_t n;
	FILE *f;
	int r = 0;

	*ret = (struct sg_disc_topics){0};
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while ((n = getline(&line, &len, f)) >= 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		if (t.n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **v = realloc(t.v, ncap * sizeof(*v));
			if (!v) {
				r = -ENOMEM;
				break;
			}
			t.v = v;
			cap = ncap;
		}
		if (!(t.v[t.n] = strdup(line))) {
			r = -ENOMEM;
			break;
		}
		t.n++;
	}
	if (r == 0 && ferror(f))
		r = -EIO;
	free(line);
	fclose(f);
	if (r < 0) {
		discovery_topics_clear(&t);
		return r;
	}
	*ret = t;
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int discovery_state_save(const char *path, const struct sg_disc_list *list)
{
	char *tmp = NULL, *dir = NULL, *slash, *text = NULL;
	size_t len = 0;
	FILE *m;
	int fd = -1, r;
	bool ok;

	m = open_memstream(&text, &len);
	if (!m)
		return -ENOMEM;
	ok = fputs(STATE_HEADER, m) >= 0;
	for (size_t i = 0; ok && i < list->n; i++)
		ok = fputs(list->v[i].topic, m) >= 0 && fputc('\n', m) != EOF;
	if (fclose(m) != 0 || !ok || asprintf(&tmp, "%s.tmp", path) < 0) {
		tmp = NULL;
		r = -ENOMEM;
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if ((r = write_all(fd, text, len)) < 0)
		goto out_unlink;
	if (fsync(fd) < 0) {
		r = -errno;
		goto out_unlink;
	}
	if (close(fd) < 0) {
		fd = -1;
		r = -errno;
		goto out_unlink;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		r = -errno;
		goto out_unlink;
	}
	/* Make the rename itself durable; failing that is not worth an error. */
	if ((dir = strdup(path)) && (slash = strrchr(dir, '/'))) {
		int dfd;

		*(slash == dir ? slash + 1 : slash) = '\0';
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			(void)fsync(dfd);
			close(dfd);
		}
	}
	r = 0;
	goto out;

out_unlink:
	unlink(tmp);
out:
	if (fd >= 0)
		close(fd);
	free(dir);
	free(tmp);
	free(text);
	return r;
}
