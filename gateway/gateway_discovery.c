/* SPDX-License-Identifier: MIT */
/*
 * gateway_discovery.c — Home Assistant discovery (discovery.h) on the loop
 * and the MQTT connection.
 *
 * Configs are published retained at QoS 1 on every connection, and again
 * (after a random delay of up to DISCOVERY_JITTER_US, as Home Assistant asks
 * of publishers) whenever Home Assistant announces "online" on
 * <prefix>/status, together with our own "online". Reading states are not
 * replayed: they are retained by the broker, which hands them to Home
 * Assistant when it subscribes after reading a config, and a replay from a
 * cache could overwrite newer values the spool is still delivering.
 * Deletions: the topics announced are kept in a state file; at every
 * connection (and after a reload) those no longer configured get an empty
 * retained payload, which makes Home Assistant delete the entity.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/clock.h"
#include "gateway_int.h"

#define DISCOVERY_JITTER_MIN_US (200 * 1000ULL)
#define DISCOVERY_JITTER_US     (2 * 1000000ULL)
#define DISCOVERY_SEEN_DELAY_US (1000000ULL) /* a first telegram's new fields, announced together */


static int discovery_publish(void *ud, const char *topic, const char *payload, size_t len)
{
	struct sg_gateway *g = ud;
	return mqtt_publish(g->mqtt, topic, payload, len, 1, true, NULL, NULL);
}

/* Publish deletions (when asked) and every config. Only while connected. */
static void discovery_announce(struct sg_gateway *g, bool deletions)
{
	struct sg_disc_sync res;
	int r;

	if (!g->disc_ok || !mqtt_connected(g->mqtt))
		return;
	r = discovery_sync(&g->disc, &g->disc_announced, g->disc_state_path, deletions, discovery_publish, g, &res);
	if (r < 0) {
		/* -ENOTCONN: the connection is gone; the next one starts over */
		if (r != -ENOTCONN)
			log_error("discovery: cannot publish: %s", strerror(-r));
		return;
	}
	if (res.save_error)
		log_warning("discovery: cannot write %s: %s; entities removed while stopped will not be deleted",
		            g->disc_state_path, strerror(-res.save_error));
	if (res.deleted || (g->cfg->discovery.enabled && !g->disc_logged))
		log_info("discovery: announced %zu entit%s under %s/, deleted %zu no longer configured", res.announced,
		         res.announced == 1 ? "y" : "ies", g->cfg->discovery.prefix, res.deleted);
	g->disc_logged = true;
}

static int on_discovery_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct sg_gateway *g = ud;
	int r;
	(void)s;
	(void)usec;

	if (!mqtt_connected(g->mqtt))
		return 0; /* the connection will announce everything */
	log_info("discovery: Home Assistant (re)started, announcing again");
	r = mqtt_publish(g->mqtt, g->cfg_mqtt->status_topic, config_birth_payload(&g->cfg_mqtt->mqtt),
	                 strlen(config_birth_payload(&g->cfg_mqtt->mqtt)), 1, true, NULL, NULL);
	if (r < 0 && r != -ENOTCONN)
		log_warning("discovery: cannot publish online status: %s", strerror(-r));
	discovery_announce(g, false);
	return 0;
}

/* A message on <prefix>/status. Restarts are often clustered: one re-announcement per burst. */
void gw_discovery_on_ha_status(struct sg_gateway *g, const struct sg_mqtt_msg *msg)
{
	int enabled = SD_EVENT_OFF;
	uint64_t delay;

	if (!discovery_is_ha_online(msg->payload, msg->len, msg->retain) || !g->disc_timer)
		return;
	if (sd_event_source_get_enabled(g->disc_timer, &enabled) >= 0 && enabled != SD_EVENT_OFF)
		return;
	delay = DISCOVERY_JITTER_MIN_US + backoff_random(DISCOVERY_JITTER_US);
	sd_event_source_set_time(g->disc_timer, now_mono_us() + delay);
	sd_event_source_set_enabled(g->disc_timer, SD_EVENT_ONESHOT);
}

/* Home Assistant's status matters to discovery (announce again at its birth) and to fail-safe actuators (its will). */
static bool ha_status_wanted(const struct sg_gateway *g)
{
	return (g->disc_ok && g->cfg->discovery.enabled) || commands_wants_ha_status(g->cmds);
}

void gw_discovery_connected(struct sg_gateway *g)
{
	int r;

	if (ha_status_wanted(g) && g->disc_ha_status && (r = mqtt_subscribe(g->mqtt, g->disc_ha_status, 1)) < 0 &&
	    r != -ENOTCONN)
		log_warning("discovery: cannot subscribe to %s: %s", g->disc_ha_status, strerror(-r));
	discovery_announce(g, true);
}

/*
 * Fields not every device sends (a meter's optional lines, `when_seen` in the
 * driver's table) are announced once they arrive, and kept announced after
 * that: the state file remembers them across restarts.
 */
/* FIELD's bit in gw_device.seen: its index in DRV's field table (the first 64), or -1. */
static int seen_bit(const struct sg_driver *drv, const char *field)
{
	for (int k = 0; drv->fields && k < 64 && drv->fields[k].name; k++)
		if (strcmp(drv->fields[k].name, field) == 0)
			return k;
	return -1;
}

static bool discovery_seen(void *ud, const struct sg_device_cfg *dc, const char *field, const char *topic)
{
	struct sg_gateway *g = ud;

	for (size_t i = 0; i < g->disc_announced.n; i++)
		if (strcmp(g->disc_announced.v[i], topic) == 0)
			return true;
	for (size_t i = 0; i < g->n_devs; i++) {
		const struct gw_device *d = g->devs[i];

		int k;

		if (strcmp(d->cfg->name, dc->name) != 0 || (k = seen_bit(d->cfg->driver, field)) < 0)
			continue;
		return (d->seen >> k) & 1;
	}
	return false;
}

/* A reading of D: the first of a `when_seen` field has it announced (shortly: a telegram brings several). */
void gw_discovery_note(struct gw_device *d, const char *field)
{
	struct sg_gateway *g = d->g;
	int k = seen_bit(d->cfg->driver, field);

	if (k < 0 || !d->cfg->driver->fields[k].when_seen || ((d->seen >> k) & 1))
		return;
	d->seen |= 1ULL << k;
	if (g->disc_seen_timer) {
		sd_event_source_set_time(g->disc_seen_timer, now_mono_us() + DISCOVERY_SEEN_DELAY_US);
		sd_event_source_set_enabled(g->disc_seen_timer, SD_EVENT_ONESHOT);
	}
}

static int discovery_setup(struct sg_gateway *g);

static int on_discovery_seen_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct sg_gateway *g = ud;
	size_t before = g->disc.n;
	(void)s;
	(void)usec;

	if (discovery_setup(g) < 0) {
		log_error("discovery: out of memory");
		return 0;
	}
	if (g->disc.n > before)
		log_info("discovery: %zu more entit%s, for readings that arrived for the first time", g->disc.n - before,
		         g->disc.n - before == 1 ? "y" : "ies");
	discovery_announce(g, true);
	return 0;
}

/* Build the list for g->cfg and find the state file. A failure disables discovery only. */
static int discovery_setup(struct sg_gateway *g)
{
	char err[512];
	int r;

	discovery_list_clear(&g->disc);
	free(g->disc_ha_status);
	free(g->disc_state_path);
	g->disc_ok = false;
	g->disc_ha_status = discovery_ha_status_topic(g->cfg);
	g->disc_state_path = discovery_state_path(g->cfg, getenv("STATE_DIRECTORY"));
	if (!g->disc_ha_status || (!g->disc_state_path && errno == ENOMEM))
		return -ENOMEM;
	r = discovery_build_seen(g->cfg, discovery_seen, g, &g->disc, err, sizeof(err));
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		log_error("%s; not announcing to Home Assistant", err);
		return 0;
	}
	g->disc_ok = true;
	if (g->cfg->discovery.enabled && !g->disc_state_path)
		log_notice("discovery: no state file (set discovery.state_file, STATE_DIRECTORY or spool.path): "
		           "entities removed from the config while sensorgate is stopped will not be deleted");
	return 0;
}

/* Called once at start: the state file says what an earlier run announced. */
int gw_discovery_start(struct sg_gateway *g)
{
	int r = discovery_setup(g);

	if (r < 0)
		return r;
	if (g->disc_state_path && (r = discovery_state_load(g->disc_state_path, &g->disc_announced)) < 0)
		log_warning("discovery: cannot read %s: %s, ignoring", g->disc_state_path, strerror(-r));
	if (g->disc_announced.n && (r = discovery_setup(g)) < 0) /* again: what was announced before stays */
		return r;
	r = sd_event_add_time(g->loop, &g->disc_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_discovery_timer, g);
	if (r < 0)
		return r;
	r = sd_event_source_set_enabled(g->disc_timer, SD_EVENT_OFF);
	if (r < 0)
		return r;
	r = sd_event_add_time(g->loop, &g->disc_seen_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_discovery_seen_timer, g);
	if (r < 0)
		return r;
	return sd_event_source_set_enabled(g->disc_seen_timer, SD_EVENT_OFF);
}

/*
 * For the configuration reload: call after g->cfg was replaced. Entities the
 * new config lacks are deleted (now when connected, else at the next
 * connection: the announced set is kept), the others announced again.
 */
void gw_discovery_reload(struct sg_gateway *g)
{
	if (discovery_setup(g) < 0) {
		log_error("discovery: out of memory");
		return;
	}
	if (!mqtt_connected(g->mqtt))
		return;
	gw_discovery_connected(g);
}

void gw_discovery_free(struct sg_gateway *g)
{
	discovery_list_clear(&g->disc);
	discovery_topics_clear(&g->disc_announced);
	free(g->disc_state_path);
	free(g->disc_ha_status);
	sd_event_source_disable_unref(g->disc_timer);
	sd_event_source_disable_unref(g->disc_seen_timer);
}
