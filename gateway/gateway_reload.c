/* SPDX-License-Identifier: MIT */
/*
 * gateway_reload.c — SIGHUP, systemctl reload.
 *
 * The file is read again with config_load(). An invalid file changes nothing.
 * A valid one is applied without touching the MQTT connection:
 *  - topic mapping and transforms: a new mapper replaces the old one at once
 *    (transform state such as deadband and averages starts afresh);
 *  - devices, matched by name: same bus binding -> the port stays open and the
 *    driver is initialised again with its new options; changed binding ->
 *    closed and reopened; new -> opened; gone -> closed;
 *  - Home Assistant discovery: rebuilt; entities gone from the file are deleted;
 *  - broker, client and status-topic settings, actuators and the spool: the
 *    MQTT client and the command router keep the ones they were built with
 *    (g->cfg_mqtt); the log says which changed and that they apply after a
 *    restart.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "gateway_int.h"

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static void change_add(char *buf, size_t len, const char *what)
{
	size_t at = strlen(buf);

	if (at < len)
		snprintf(buf + at, len - at, "%s%s", at ? ", " : "", what);
}

/* An actuator driver's own settings, compared through its --check line, which names them all. */
static bool actuator_opts_equal(const struct sg_actuator_cfg *x, const struct sg_actuator_cfg *y)
{
	char dx[1024], dy[1024];

	if (x->drv != y->drv)
		return false;
	if (!x->opts || !y->opts)
		return x->opts == y->opts;
	if (!x->drv->describe)
		return false; /* cannot tell: say it changed */
	x->drv->describe(x->opts, dx, sizeof(dx));
	y->drv->describe(y->opts, dy, sizeof(dy));
	return strcmp(dx, dy) == 0;
}

/* Actuators are built once (commands.c): any difference in what they are or where they listen. */
static bool actuators_differ(const struct sg_config *a, const struct sg_config *b)
{
	if (a->n_actuators != b->n_actuators)
		return true;
	for (size_t i = 0; i < a->n_actuators; i++) {
		const struct sg_actuator_cfg *x = &a->actuators[i], *y = &b->actuators[i];
		if (!str_eq(x->name, y->name) || !str_eq(x->driver, y->driver) || !str_eq(x->topic, y->topic) ||
		    !str_eq(x->command_topic, y->command_topic) || !actuator_opts_equal(x, y) ||
		    x->kind != y->kind || !str_eq(x->payload_on, y->payload_on) ||
		    !str_eq(x->payload_off, y->payload_off) || x->qos != y->qos || x->max_on_s != y->max_on_s ||
		    x->pulse_ms != y->pulse_ms || !str_eq(x->interlock, y->interlock) || !str_eq(x->safe, y->safe) ||
		    x->fail_safe_after_s != y->fail_safe_after_s || x->fail_safe_on_ha_offline != y->fail_safe_on_ha_offline)
			return true;
	}
	return false;
}

/* Which settings that only a restart applies differ between RUN (running) and NEW; names into BUF. */
static void restart_changes(const struct sg_config *run, const struct sg_config *new, char *buf, size_t len)
{
	const struct sg_mqtt_cfg *a = &run->mqtt, *b = &new->mqtt;
	bool brokers = a->n_brokers != b->n_brokers;

	buf[0] = '\0';
	for (size_t i = 0; !brokers && i < a->n_brokers; i++)
		brokers = !str_eq(a->brokers[i], b->brokers[i]);
	if (brokers)
		change_add(buf, len, "mqtt.brokers");
	if (a->protocol != b->protocol)
		change_add(buf, len, "mqtt.protocol");
	if (a->keepalive != b->keepalive)
		change_add(buf, len, "mqtt.keepalive");
	if (a->clean_session != b->clean_session)
		change_add(buf, len, "mqtt.clean_session");
	if (!str_eq(a->client_id, b->client_id))
		change_add(buf, len, "mqtt.client_id");
	if (!str_eq(a->username, b->username) || !str_eq(a->password, b->password))
		change_add(buf, len, "mqtt credentials");
	if (!str_eq(a->ca_file, b->ca_file) || !str_eq(a->ca_path, b->ca_path) ||
	    !str_eq(a->cert_file, b->cert_file) || !str_eq(a->key_file, b->key_file) ||
	    a->tls_insecure != b->tls_insecure || !str_eq(a->tls_alpn, b->tls_alpn))
		change_add(buf, len, "mqtt.tls");
	if (a->cloud != b->cloud || !str_eq(a->hub, b->hub) || !str_eq(a->device_id, b->device_id) ||
	    a->device_key_len != b->device_key_len ||
	    (a->device_key_len && memcmp(a->device_key, b->device_key, a->device_key_len) != 0) ||
	    a->sas_lifetime_s != b->sas_lifetime_s)
		change_add(buf, len, "mqtt.cloud settings");
	if (a->reconnect_min_s != b->reconnect_min_s || a->reconnect_max_s != b->reconnect_max_s ||
	    a->max_inflight != b->max_inflight)
		change_add(buf, len, "mqtt reconnect/inflight limits");
	if (!str_eq(run->status_topic, new->status_topic) ||
	    !str_eq(config_birth_payload(a), config_birth_payload(b)) ||
	    !str_eq(config_will_payload(a), config_will_payload(b)))
		change_add(buf, len, "status topic or payloads (gateway.id/base_topic/status_topic/payload_online/"
		           "payload_offline)");
	if (!str_eq(run->metrics.path, new->metrics.path) || run->metrics.interval_s != new->metrics.interval_s)
		change_add(buf, len, "metrics");
	if (run->health.interval_s != new->health.interval_s || run->health.window_s != new->health.window_s)
		change_add(buf, len, "health.interval/window");
	if (actuators_differ(run, new))
		change_add(buf, len, "actuators");
	if (!str_eq(run->commands.response_topic_prefix, new->commands.response_topic_prefix))
		change_add(buf, len, "commands.response_topic_prefix");
	if (!str_eq(run->spool.path, new->spool.path) || run->spool.max_size_mb != new->spool.max_size_mb ||
	    run->spool.sync_full != new->spool.sync_full || run->spool.drop_new != new->spool.drop_new ||
	    run->spool.commit_interval_s != new->spool.commit_interval_s)
		change_add(buf, len, "spool");
}

/* Same driver on the same port/bus/address: the open file descriptor can be kept. */
static bool device_bus_same(const struct sg_device_cfg *a, const struct sg_device_cfg *b)
{
	return a->driver == b->driver && str_eq(a->port, b->port) && str_eq(a->usb_serial, b->usb_serial) &&
	       a->baud == b->baud && a->framing.data_bits == b->framing.data_bits &&
	       a->framing.parity == b->framing.parity && a->framing.stop_bits == b->framing.stop_bits &&
	       str_eq(a->bus, b->bus) && a->address == b->address && str_eq(a->path, b->path);
}

static void gateway_reload(struct sg_gateway *g)
{
	struct sg_config *ncfg = NULL, *ocfg = g->cfg;
	struct sg_mapper *nmap;
	struct gw_device **ndevs;
	size_t kept = 0, reopened = 0, added = 0, removed = 0;
	char err[512], changes[256];
	int r;

	sd_notifyf(0, "RELOADING=1\nSTATUS=reloading %s", ocfg->path);
	r = config_load(ocfg->path, &ncfg, err, sizeof(err));
	if (r < 0) {
		log_error("reload: %s; keeping the running configuration", err);
		goto done;
	}
	nmap = mapper_new(ncfg);
	ndevs = calloc(ncfg->n_devices ? ncfg->n_devices : 1, sizeof(*ndevs));
	if (!nmap || !ndevs) {
		log_error("reload: out of memory; keeping the running configuration");
		mapper_free(nmap);
		free(ndevs);
		config_free(ncfg);
		goto done;
	}

	/* From here on readings map through the new configuration. */
	mapper_free(g->mapper);
	g->mapper = nmap;
	mapper_set_timesync(g->mapper, g->timesync);
	g->cfg = ncfg;
	gw_filters_arm(g); /* the new chains start afresh: no timeout waits until their first value */

	for (size_t j = 0; j < ncfg->n_devices; j++) {
		const struct sg_device_cfg *c = &ncfg->devices[j];
		struct gw_device *d = NULL;

		for (size_t i = 0; i < g->n_devs && !d; i++)
			if (g->devs[i] && strcmp(g->devs[i]->cfg->name, c->name) == 0) {
				d = g->devs[i];
				g->devs[i] = NULL;
			}
		if (d && device_bus_same(d->cfg, c)) {
			gw_device_reinit(d, c, j);
			kept++;
		} else if (d) {
			gw_device_close(d);
			gw_device_bind(d, c, j);
			supervise_reset(&d->sup);
			log_full(LOG_NOTICE, c->name, NULL, "reload: port or bus settings changed, reopening %s",
			         d->dev.path ? d->dev.path : c->driver->name);
			if (gw_device_open(d) < 0)
				gw_device_schedule_reopen(d);
			reopened++;
		} else {
			d = gw_device_new(g, c, j);
			if (!d) {
				/* Half applied: exit so that systemd restarts us with the new file. */
				log_error("reload: cannot set up device %s: %s; exiting for a restart", c->name,
				          strerror(errno));
				g->exit_code = 1;
				sd_event_exit(g->loop, 1);
			}
			added++;
		}
		if (d && gw_device_expire_setup(d) < 0)
			log_full(LOG_WARNING, c->name, NULL, "reload: cannot arm expire_after, ignoring");
		ndevs[j] = d;
	}
	for (size_t i = 0; i < g->n_devs; i++) {
		if (!g->devs[i])
			continue;
		log_full(LOG_NOTICE, g->devs[i]->cfg->name, NULL, "reload: device removed from the configuration, closing");
		gw_device_free(g->devs[i]);
		removed++;
	}
	free(g->devs);
	g->devs = ndevs;
	g->n_devs = ncfg->n_devices;
	gw_discovery_reload(g); /* builds from g->cfg, borrows nothing from it */
	commands_reloaded(g->cmds, g->cfg); /* no answers under the base topic and prefix now in use either */
	/* The MQTT client borrows g->cfg_mqtt, never an intermediate configuration. */
	if (ocfg != g->cfg_mqtt)
		config_free(ocfg);
	g->n_reloads++;

	log_notice("reload: %s applied: topic map and transforms updated; %zu device%s (%zu kept, %zu reopened, "
	           "%zu added, %zu removed)", ncfg->path, ncfg->n_devices, ncfg->n_devices == 1 ? "" : "s", kept,
	           reopened, added, removed);
	restart_changes(g->cfg_mqtt, ncfg, changes, sizeof(changes));
	if (changes[0])
		log_warning("reload: %s changed; these apply after a restart (systemctl restart sensorgate), "
		            "the running ones stay in use", changes);
done:
	gw_update_status(g);
	sd_notify(0, "READY=1");
}

int gw_on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *ud)
{
	(void)s;
	(void)si;
	gateway_reload(ud);
	return 0;
}
