/* SPDX-License-Identifier: MIT */
/*
 * main.c — command line: run, --check, --status, --list-ports, --version, --help.
 *
 * Exit status: 0; 2 for a bad command line; 78 (EX_CONFIG, sysexits.h) when
 * the start refuses the configuration, so systemd does not restart a service
 * that cannot run until its file is fixed (RestartPreventExitStatus=78 in
 * systemd/sensorgate.service); 1 for anything else, and for --check's refusals.
 * --status: 0 with the table, 3 when the daemon is not running (as LSB and
 * `systemctl status` say it), 1 when its figures are stale or unreadable.
 */
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "../drivers/bus_serial.h"
#include "bus_plan.h"
#include "config.h"
#include "discovery.h"
#include "gateway.h"
#include "health.h"
#include "log.h"
#include "mqtt_setup.h"
#include "response_topic.h"

#define DEFAULT_CONFIG "/etc/sensorgate/sensorgate.conf"

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: sensorgate [-c FILE] [-v]        run in the foreground\n"
	        "       sensorgate --check [-c FILE]     validate FILE and print the topic map\n"
	        "       sensorgate --status              link quality per device, from the running daemon\n"
	        "       sensorgate --list-ports          list serial ports (USB ids, serial numbers)\n"
	        "       sensorgate --version | --help\n"
	        "\n"
	        "  -c, --config FILE   configuration (default " DEFAULT_CONFIG ")\n"
	        "  -v, --verbose       debug logging\n"
	        "\n"
	        "Drivers:");
	for (size_t i = 0; sg_drivers[i]; i++)
		fprintf(out, "%s %s", i ? "," : "", sg_drivers[i]->name);
	fprintf(out, "\nActuator drivers:");
	for (size_t i = 0; sg_act_drivers[i]; i++)
		fprintf(out, "%s %s", i ? "," : "", sg_act_drivers[i]->name);
	fputc('\n', out);
}

static const char *qos_retain(int qos, bool retain, char *buf, size_t len)
{
	snprintf(buf, len, "%-3d %-6s", qos, retain ? "yes" : "no");
	return buf;
}

static const char *payload_name(enum sg_payload_format f)
{
	return f == SG_PAYLOAD_JSON ? "json" : "plain";
}

static const char *offline_name(enum sg_offline_policy p)
{
	switch (p) {
	case SG_OFFLINE_DROP: return "drop";
	case SG_OFFLINE_LAST: return "last";
	default:              return "spool";
	}
}

/* The resolved configuration, as a user checks it before running. */
/* The second line of an actuator in --check: where it is and what protects it. */
static void print_actuator_detail(const struct sg_config *c, const struct sg_actuator_cfg *a)
{
	char hw[1100], safety[300];
	size_t o = 0;

	if (a->drv->describe && a->opts)
		a->drv->describe(a->opts, hw, sizeof(hw));
	else
		snprintf(hw, sizeof(hw), "%s", a->drv->name);
	safety[0] = '\0';
	o += (size_t)snprintf(safety + o, sizeof(safety) - o, "qos %d, retained commands %s", a->qos,
	                      a->accept_retained ? "accepted" : "ignored");
	if (o < sizeof(safety) && a->initial)
		o += (size_t)snprintf(safety + o, sizeof(safety) - o, ", initial %s", a->initial);
	if (o < sizeof(safety) && (a->safe || a->initial))
		o += (size_t)snprintf(safety + o, sizeof(safety) - o, ", safe %s", a->safe ? a->safe : a->initial);
	if (o < sizeof(safety) && a->min_interval_ms)
		o += (size_t)snprintf(safety + o, sizeof(safety) - o, ", min_interval %d ms", a->min_interval_ms);
	if (o < sizeof(safety) && a->interlock)
		o += (size_t)snprintf(safety + o, sizeof(safety) - o, ", interlock %s", a->interlock);
	if (o < sizeof(safety) && a->pulse_ms)
		o += (size_t)snprintf(safety + o, sizeof(safety) - o, ", pulse %d ms", a->pulse_ms);
	if (o < sizeof(safety) && a->max_on_s > 0)
		o += (size_t)snprintf(safety + o, sizeof(safety) - o, ", max_on %g s", a->max_on_s);
	if (o < sizeof(safety) && a->fail_safe_after_s > 0)
		o += (size_t)snprintf(safety + o, sizeof(safety) - o, ", fail-safe after %g s without the broker",
		                      a->fail_safe_after_s);
	if (o < sizeof(safety) && a->fail_safe_on_ha_offline)
		snprintf(safety + o, sizeof(safety) - o, ", fail-safe when Home Assistant goes offline (%s)",
		         c->discovery.ha_status_topic ? c->discovery.ha_status_topic : "?");
	printf("%-20s   %s; %s; errors on %s\n", "", hw, safety, a->error_topic);
}

static void print_check(const struct sg_config *c, const struct mqtt_setup_report *setup)
{
	char qr[32], key[160], topic[300], rule[600];

	printf("%s: OK\n", c->path);
	printf("gateway   id %s, base topic %s\n", c->id, c->base_topic);
	if (c->mqtt.cloud == SG_CLOUD_AZURE)
		printf("cloud     Azure IoT Hub %s, device %s, SAS tokens valid %d s (a new one after 80%%); readings "
		       "batched per device on devices/%s/messages/events/, commands from cloud-to-device messages and "
		       "desired properties, states as reported properties; no status topic\n",
		       c->mqtt.hub, c->mqtt.device_id, c->mqtt.sas_lifetime_s, c->mqtt.device_id);
	else if (c->mqtt.cloud == SG_CLOUD_AWS)
		printf("cloud     AWS IoT Core, thing %s; readings batched per device on %s/DEVICE, commands from "
		       "shadow deltas, states reported to the shadow\n", c->mqtt.device_id, c->base_topic);
	if (c->mqtt.cloud != SG_CLOUD_AZURE)
		printf("status    %s (retained; \"%s\" on connect, \"%s\" as Last Will)\n", c->status_topic,
		       config_birth_payload(&c->mqtt), config_will_payload(&c->mqtt));
	if (c->metrics.path)
		printf("metrics   %s (Prometheus text format, every %g s)\n", c->metrics.path, c->metrics.interval_s);
	{
		char *status = health_status_path();

		printf("health    sampled every %g s over %g s; %s; `sensorgate --status` reads %s\n",
		       c->health.interval_s, c->health.window_s,
		       c->health.publish ? "published on <base>/<device>/health" : "not published (health.publish)",
		       status ? status : "?");
		free(status);
	}
	for (size_t i = 0; i < c->mqtt.n_brokers; i++)
		printf("broker    %s\n", c->mqtt.brokers[i]);
	printf("mqtt      MQTT %s, client id %s, keepalive %d s, clean_session %s%s%s\n",
	       config_protocol_name(c->mqtt.protocol), c->mqtt.client_id, c->mqtt.keepalive,
	       c->mqtt.clean_session ? "true" : "false", c->mqtt.username ? ", user " : "",
	       c->mqtt.username ? c->mqtt.username : "");
	if (setup->tls[0])
		printf("tls       %s\n", setup->tls);
	printf("\n%-28s %-44s %-3s %-6s %-7s %s\n", "DEVICE.FIELD", "TOPIC", "QOS", "RETAIN", "PAYLOAD", "OFFLINE");
	for (size_t i = 0; i < c->n_devices; i++) {
		const struct sg_device_cfg *d = &c->devices[i];
		char batch[300] = "";

		/* a cloud profile sends a device's readings as one message (gateway_cloud.c) */
		if (c->mqtt.cloud == SG_CLOUD_AZURE)
			snprintf(batch, sizeof(batch), "devices/%s/messages/events/ (batch)", c->mqtt.device_id);
		else if (c->mqtt.cloud == SG_CLOUD_AWS)
			snprintf(batch, sizeof(batch), "%s/%s (batch)", c->base_topic, d->name);
		for (size_t j = 0; j < d->n_readings; j++) {
			const struct sg_reading_cfg *r = &d->readings[j];
			snprintf(key, sizeof(key), "%s.%s", d->name, r->field);
			printf("%-28s %-44s %s %-7s %s\n", key, batch[0] ? batch : r->topic, qos_retain(r->qos, r->retain, qr, sizeof(qr)),
			       payload_name(r->payload), offline_name(r->offline));
			if (r->n_filters) {
				char chain[1024];

				filter_specs_describe(r->filters, r->n_filters, chain, sizeof(chain));
				printf("%-28s   filters: %s\n", "", chain);
			}
		}
		for (size_t j = 0; d->all_fields && !d->driver->fields && d->driver->option_field; j++) {
			struct sg_field_info fi;
			char name[128];

			if (!d->driver->option_field(d->opts, j, name, sizeof(name), &fi))
				break;
			snprintf(key, sizeof(key), "%s.%s", d->name, name);
			snprintf(topic, sizeof(topic), "%s", batch);
			if (!batch[0])
				snprintf(topic, sizeof(topic), "%s/%s/%s", c->base_topic, d->name, name);
			printf("%-28s %-44s %s %-7s %s\n", key, topic,
			       qos_retain(d->defaults.qos, d->defaults.retain, qr, sizeof(qr)),
			       payload_name(d->defaults.payload), offline_name(d->defaults.offline));
		}
		if (d->driver->describe && d->opts) {
			char plan[1024];

			d->driver->describe(d->opts, plan, sizeof(plan));
			printf("%-28s   %s\n", "", plan);
		}
		if (d->all_fields && !(!d->driver->fields && d->driver->option_field)) {
			snprintf(key, sizeof(key), "%s.*", d->name);
			snprintf(topic, sizeof(topic), "%s", batch);
			if (!batch[0])
				snprintf(topic, sizeof(topic), "%s/%s/<field>", c->base_topic, d->name);
			printf("%-28s %-44s %s %-7s %s\n", key, topic,
			       qos_retain(d->defaults.qos, d->defaults.retain, qr, sizeof(qr)),
			       payload_name(d->defaults.payload), offline_name(d->defaults.offline));
		}
	}
	if (c->n_actuators) {
		if (c->mqtt.cloud != SG_CLOUD_NONE)
			printf("\n(cloud profile: commands come from the service and states are reported to it, by actuator "
			       "name; the topics below are not used)");
		printf("\n%-20s %-40s %-40s %s\n", "ACTUATOR", "COMMAND TOPIC", "STATE TOPIC", "ACCEPTS");
		for (size_t i = 0; i < c->n_actuators; i++) {
			const struct sg_actuator_cfg *a = &c->actuators[i];
			char acc[200];
			if (a->kind == SG_ACT_NUMBER)
				snprintf(acc, sizeof(acc), "number %g..%g step %g", a->min, a->max, a->step);
			else if (a->kind == SG_ACT_ENUM) {
				size_t at = 0;
				acc[0] = '\0';
				for (size_t k = 0; k < a->n_options && at < sizeof(acc); k++)
					at += (size_t)snprintf(acc + at, sizeof(acc) - at, "%s%s", k ? "|" : "", a->options[k]);
			} else
				snprintf(acc, sizeof(acc), "%s|%s (also 1/0, true/false, {\"state\":..})", a->payload_on,
				         a->payload_off);
			printf("%-20s %-40s %-40s %s\n", a->name, a->command_topic, a->topic, acc);
			print_actuator_detail(c, a);
		}
		response_topic_rule(c, rule, sizeof(rule));
		printf("commands  MQTT 5 Response Topics: %s\n", rule);
	}
	bus_plan_print(c, stdout);
}

/* The Home Assistant discovery topics. 0, or -errno when they cannot be built (a config error). */
static int print_discovery(const struct sg_config *c)
{
	struct sg_disc_list l = {0};
	char err[512], *state, *ha;
	int r;

	if (!c->discovery.enabled) {
		printf("\ndiscovery disabled (discovery.enabled = false): nothing is announced to Home Assistant\n");
		return 0;
	}
	r = discovery_build(c, &l, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", c->path, err);
		return r;
	}
	state = discovery_state_path(c, getenv("STATE_DIRECTORY"));
	ha = discovery_ha_status_topic(c);
	printf("\n%-14s %-64s %s\n", "DISCOVERY", "CONFIG TOPIC (retained, QoS 1)", "UNIQUE ID");
	for (size_t i = 0; i < l.n; i++)
		printf("%-14s %-64s %s\n", l.v[i].component, l.v[i].topic, l.v[i].unique_id);
	for (size_t i = 0; i < c->n_devices; i++) {
		const struct sg_device_cfg *d = &c->devices[i];
		if (d->all_fields && !d->driver->fields && !d->driver->option_field)
			printf("%-14s device %s: its fields are known only from its data; give it a readings list to "
			       "announce them\n", "-", d->name);
		if (d->all_fields && d->driver->fields) {
			char later[512];
			size_t at = 0;

			later[0] = '\0';
			for (const struct sg_field_info *f = d->driver->fields; f->name && at < sizeof(later); f++)
				if (f->when_seen && !(d->driver->field_off && d->driver->field_off(d->opts, f->name)))
					at += (size_t)snprintf(later + at, sizeof(later) - at, "%s%s", at ? ", " : "", f->name);
			if (at)
				printf("%-14s device %s: announced once they first arrive (not every device sends them): %s\n",
				       "-", d->name, later);
		}
	}
	printf("ha status      %s (announce again when it says \"online\")\n", ha ? ha : "?");
	printf("state file     %s\n", state ? state : "none: entities removed while stopped are not deleted");
	free(ha);
	free(state);
	discovery_list_clear(&l);
	return 0;
}

/* A password anyone on the machine can read is no password; say so, but run. */
static void warn_secret_file(const char *what, const char *path)
{
	struct stat st;

	if (!path || stat(path, &st) < 0)
		return;
	if (st.st_mode & S_IRWXO)
		log_warning("%s %s is readable by others (mode %04o); run: chmod o-rwx %s", what, path,
		            (unsigned)(st.st_mode & 07777), path);
}

static void warn_password_file(const struct sg_config *c)
{
	warn_secret_file("password file", c->mqtt.password_file);
	warn_secret_file("device key file", c->mqtt.device_key_file);
}

/* LSB init-script exit status "program is not running" (what `systemctl status` returns then). */
#define EXIT_NOT_RUNNING 3
/* Figures older than this many health intervals (plus a margin for a busy loop) are stale. */
#define STATUS_STALE_INTERVALS 3
#define STATUS_STALE_MARGIN_S  5
#define STATUS_MAX_BYTES       (1024 * 1024)

/*
 * --status: print the table the running daemon keeps in its status file
 * (health.h: health_status_path()). Not running: no file, or its pid gone
 * (a crash leaves the file behind).
 */
static int print_status(void)
{
	char *path = health_status_path(), *text = NULL;
	const char *body;
	long pid;
	double interval;
	long long updated;
	size_t len = 0;
	FILE *f;
	int r = 1;

	if (!path) {
		fprintf(stderr, "sensorgate --status: out of memory\n");
		return 1;
	}
	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT)
			fprintf(stderr, "sensorgate is not running: no status file %s (the service writes it while it runs; "
			        "a daemon started by hand only with RUNTIME_DIRECTORY set, and --status needs the same)\n",
			        path);
		else
			fprintf(stderr, "sensorgate --status: cannot read %s: %s\n", path, strerror(errno));
		free(path);
		return errno == ENOENT ? EXIT_NOT_RUNNING : 1;
	}
	text = calloc(1, STATUS_MAX_BYTES + 1);
	if (text)
		len = fread(text, 1, STATUS_MAX_BYTES, f);
	fclose(f);
	if (!text || health_status_parse(text, &pid, &interval, &updated, &body) < 0) {
		fprintf(stderr, "sensorgate --status: %s is not a sensorgate status file\n", path);
		goto out;
	}
	(void)len;
	if (kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
		fprintf(stderr, "sensorgate is not running: process %ld, which wrote %s, is gone\n", pid, path);
		r = EXIT_NOT_RUNNING;
		goto out;
	}
	fputs(body, stdout);
	{
		long long age = (long long)time(NULL) - updated;

		if (age > (long long)(interval * STATUS_STALE_INTERVALS) + STATUS_STALE_MARGIN_S) {
			fprintf(stderr, "sensorgate --status: these figures are %lld s old (written every %g s): "
			        "process %ld does not update them\n", age, interval, pid);
			goto out;
		}
	}
	r = 0;
out:
	free(text);
	free(path);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check", no_argument, NULL, 'C'},
		{"list-ports", no_argument, NULL, 'L'},
		{"status", no_argument, NULL, 'S'},
		{"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *file = DEFAULT_CONFIG;
	bool check = false, list_ports = false, verbose = false, status = false;
	struct sg_config *cfg = NULL;
	struct sg_gateway *g = NULL;
	struct mqtt_setup_report setup;
	char err[512];
	int c, r;

	while ((c = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': file = optarg; break;
		case 'C': check = true; break;
		case 'L': list_ports = true; break;
		case 'S': status = true; break;
		case 'v': verbose = true; break;
		case 'V': printf("sensorgate %s\n", SG_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default:  usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sensorgate: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	log_setup();
	if (verbose)
		log_set_max_level(LOG_DEBUG);
	if (list_ports)
		return serial_list_ports(stdout) < 0 ? 1 : 0;
	if (status)
		return print_status();

	r = config_load(file, &cfg, err, sizeof(err));
	if (r < 0) {
		if (check)
			fprintf(stderr, "%s\n", err);
		else
			log_error("%s", err);
		return check ? 1 : EX_CONFIG;
	}
	warn_password_file(cfg);
	/* The start and --check run the same check, so --check passes exactly what the start accepts. */
	r = mqtt_setup_check(&cfg->mqtt, cfg->status_topic, &setup);
	if (r < 0) {
		if (check)
			fprintf(stderr, "%s\n", setup.error);
		else
			log_error("%s", setup.error);
		config_free(cfg);
		return check ? 1 : EX_CONFIG;
	}
	if (setup.warning[0])
		log_warning("%s", setup.warning);
	if (check) {
		print_check(cfg, &setup);
		r = print_discovery(cfg);
		config_free(cfg);
		return r < 0 ? 1 : 0;
	}

	g = gateway_new(cfg); /* takes cfg */
	if (!g)
		return 1;
	r = gateway_run(g);
	gateway_free(g);
	return r;
}
