/* SPDX-License-Identifier: MIT */
/*
 * gateway_replay.c — measurement time and replay: the clock judge
 * (timesync.h) with its poll timer and clock-set watch, the per-topic
 * sequence numbers, and how a stored message goes out (replay.h).
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <mqtt_protocol.h>

#include "../common/clock.h"
#include "gateway_int.h"
#include "replay.h"

/*
 * How stored message M goes out (README, "Replay after an outage"). A
 * replay is a message put while no connection was up, during an earlier
 * connection, or by an earlier process. A replay of a topic with a newer
 * message (a higher seq given out already) is not retained, so that the
 * broker ends up retaining the newest value; with replay = "history" it
 * goes to the history topic instead. Every message gets its measurement
 * time once known (JSON "ts", MQTT 5 `ts`) and its seq; replays their
 * marker, in PROPS (empty on entry).
 */
void gw_outgoing(struct sg_gateway *g, struct sg_spool_msg *m, struct mqtt_props *props)
{
	const struct sg_spool_cfg *sc = &g->cfg_mqtt->spool;
	struct sg_stamp st = {.real_us = m->meta.ts_us, .boot_us = m->meta.boot_us, .boot_id = m->meta.boot_id};
	int64_t real = timesync_resolve(g->timesync, &st);
	bool replayed = m->meta.epoch == 0 || m->meta.epoch != g->conn_epoch ||
	                m->meta.boot_id != timesync_boot_id(g->timesync);
	bool newer = m->meta.seq && m->meta.seq < seqs_last(g->seqs, m->topic);
	char iso[TIMESYNC_ISO_LEN];
	int n;

	if (real > 0)
		timesync_iso_cached(&g->iso_cache, real, iso);
	if (replayed) {
		g->n_replayed++;
		if (newer && sc->replay_history &&
		    replay_history_topic(g->out_topic, sizeof(g->out_topic), sc->history_topic, m->topic) > 0) {
			m->topic = g->out_topic;
			m->retain = false;
		} else if (newer) {
			m->retain = false;
		}
	}
	if ((m->meta.flags & SG_SPOOL_F_JSON) && (replayed || (m->meta.ts_us == 0 && real > 0))) {
		n = replay_json(g->out_payload, sizeof(g->out_payload), m->payload, m->len, real > 0 ? iso : NULL,
		                replayed, m->meta.seq);
		if (n > 0) {
			m->payload = g->out_payload;
			m->len = (size_t)n;
		}
	}
	if (mqtt_protocol(g->mqtt) == 5 && (replayed || !sc->props_replays_only) &&
	    replay_props(props, real > 0 ? iso : NULL, real < 0, m->meta.seq, replayed) < 0)
		props->len = 0; /* the message goes without them */
}

/* Continue each topic's sequence from what the spool holds (a restart). */
void gw_seq_seen(void *ud, const char *topic, uint64_t seq)
{
	struct sg_gateway *g = ud;
	(void)seqs_seen(g->seqs, topic, seq); /* out of memory: the numbers restart, nothing worse */
}

static void clock_trusted(struct sg_gateway *g)
{
	struct sg_spool_stats st = {0};

	sd_event_source_set_enabled(g->clock_timer, SD_EVENT_OFF);
	if (g->clock_set)
		sd_event_source_set_enabled(g->clock_set, SD_EVENT_OFF); /* trusted for good: no more wake-ups */
	if (g->spool)
		spool_get_stats(g->spool, &st);
	log_info("the wall clock is synchronised now%s", st.depth ? "; spooled readings get their time as they go out"
	                                                           : "");
	gw_flush_later(g);
}

static int on_clock_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct sg_gateway *g = ud;

	(void)usec;
	if (timesync_check(g->timesync) == 1) {
		clock_trusted(g);
		return 0;
	}
	sd_event_source_set_time(s, now_mono_us() + TIMESYNC_POLL_US);
	return 0;
}

static int on_clock_set(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct sg_gateway *g = ud;
	uint64_t ticks;

	(void)s;
	(void)revents;
	while (read(fd, &ticks, sizeof(ticks)) > 0) /* ECANCELED: the clock was set; EAGAIN: done */
		;
	if (timesync_watch_rearm(fd) < 0)
		sd_event_source_set_enabled(g->clock_set, SD_EVENT_OFF);
	if (timesync_check(g->timesync) == 1)
		clock_trusted(g);
	return 0;
}

/* The clock judge, its poll timer and its clock-set watch. 0 or -errno (out of memory). */
int gw_clock_setup(struct sg_gateway *g)
{
	const struct sg_time_cfg *tc = &g->cfg->time;
	int r;

	g->sys_clock = (struct sg_sys_clock){.sync_file = tc->sync_file, .file_only = tc->trust_file_only};
	timesync_system_source(&g->clock_src, &g->sys_clock);
	g->timesync = timesync_new(&g->clock_src, tc->trust_always);
	g->seqs = seqs_new();
	if (!g->timesync || !g->seqs)
		return -ENOMEM;
	mapper_set_timesync(g->mapper, g->timesync);
	if (timesync_trusted(g->timesync))
		return 0;
	log_notice("the wall clock is not synchronised yet (no %s%s): readings carry their boot time until it is",
	           tc->sync_file ? tc->sync_file : TIMESYNC_DEFAULT_FILE,
	           tc->trust_file_only ? "" : ", kernel NTP state unsynchronised");
	r = sd_event_add_time(g->loop, &g->clock_timer, CLOCK_MONOTONIC, now_mono_us() + TIMESYNC_POLL_US,
	                      TIMESYNC_POLL_US / 10, on_clock_timer, g);
	if (r < 0)
		return r;
	sd_event_source_set_enabled(g->clock_timer, SD_EVENT_ON);
	g->clock_fd = timesync_watch_fd();
	if (g->clock_fd < 0) { /* the poll still sees the jump, a little later */
		log_debug("cannot watch for the clock being set: %s", strerror(-g->clock_fd));
		return 0;
	}
	return sd_event_add_io(g->loop, &g->clock_set, g->clock_fd, EPOLLIN, on_clock_set, g);
}
