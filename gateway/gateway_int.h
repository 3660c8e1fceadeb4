/* SPDX-License-Identifier: MIT */
/*
 * gateway_int.h — private to gateway.c and the gateway_*.c files: the
 * gateway's state (struct sg_gateway, one per process, and struct gw_device,
 * one per configured device) and what its parts call of each other. Nothing
 * else includes it; the rest of the tree sees gateway.h.
 *
 * The parts, one file each (gateway.c is the loop and the wiring):
 *   gateway_mqtt.c       the MQTT client's socket, timer and callbacks
 *   gateway_discovery.c  Home Assistant discovery
 *   gateway_spool.c      store and forward: route(), the spool's hand-over, the stats topic
 *   gateway_replay.c     measurement time (the clock judge) and how a stored message goes out
 *   gateway_devices.c    devices: open, poll, reopen with backoff, readings, expire_after
 *   gateway_cloud.c      cloud profiles (Azure IoT Hub, AWS IoT Core)
 *   gateway_actuators.c  the command router's actuators on the loop and MQTT
 *   gateway_metrics.c    the metrics file, link quality (health topics, the --status file)
 *   gateway_reload.c     SIGHUP: the configuration read again and applied
 */
#ifndef SG_GATEWAY_INT_H
#define SG_GATEWAY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "../drivers/driver.h"
#include "commands.h"
#include "config.h"
#include "discovery.h"
#include "gateway.h"
#include "log.h"
#include "mapper.h"
#include "mqtt.h"
#include "spool.h"
#include "supervise.h"
#include "timesync.h"

struct signalfd_siginfo;

#define EARLY_ACKS      64   /* published() calls seen inside one mqtt_publish() */

/* Readings per second over a period: where the last one ended (gw_rate_update()). */
struct gw_rate {
	uint64_t at_us;                  /* 0: no period yet */
	uint64_t readings;
};

struct gw_device {
	struct sg_gateway *g;
	const struct sg_device_cfg *cfg;
	size_t index;
	struct sg_dev dev;          /* SG_BUS_SERIAL: dev.line is its place on the shared line */
	struct sg_i2c_bus *i2c;     /* SG_BUS_I2C: the open /dev/i2c-N, owns dev.fd */
	sd_event_source *watch;     /* a descriptor the driver owns (driver->io): dev.watch_fd */
	sd_event_source *timer;
	sd_event_source *expire;    /* expire_after: fires once the device has been silent that long */
	int avail;                  /* expire_after: 0 not yet said, 1 "online", -1 "offline" on <base>/<dev>/status */
	bool up;                    /* bus open and driver initialised */
	struct sg_supervise sup;    /* reopening with backoff after a problem, logged when it changed */
	struct sg_ratelimit fail_rl;
	uint64_t seen;              /* the driver's `when_seen` fields (bit = index in its table) that arrived */
	/* mqtt.cloud: this poll's readings, sent as one telemetry message (gateway_cloud.c) */
	char *batch;                /* BATCH_MAX bytes once used */
	size_t batch_len;           /* 0: empty */
	size_t batch_head;          /* where the readings start, after {"device":..,"readings":{ */
	int batch_qos;
	enum sg_offline_policy batch_offline;
	uint64_t n_reconnects;      /* reopened after a failure (metrics) */
	uint64_t n_good_polls;      /* polls and io calls that produced readings without counting a frame (health) */
	struct sg_health_window *health; /* link quality (health.h), NULL when it could not be allocated */
	char health_key[256];       /* what the health topic said last, in short: republished when it changes */
	uint64_t health_sent_us;    /* when it was published last, 0 = not since the last connect */
	bool watch_seen;            /* it has such fields and no readings list: note them (discovery) */
};

struct sg_gateway {
	struct sg_config *cfg;
	sd_event *loop;
	struct sg_mapper *mapper;
	struct sg_mqtt *mqtt;
	sd_event_source *mqtt_io;
	sd_event_source *mqtt_timer;
	sd_event_source *mqtt_flush;     /* defer: after a burst of publishes, mqtt_flush() once */
	int mqtt_io_fd;
	unsigned mqtt_io_gen;
	sd_event_source *status_timer;
	sd_event_source *filter_timer;   /* the readings' timeout filters: the mapper's earliest deadline */
	uint64_t filter_at;              /* when filter_timer fires, UINT64_MAX while it is off */
	struct gw_device **devs;    /* one allocation each: event sources point at them */
	size_t n_devs;
	struct gw_lines *lines;     /* the shared serial lines (serial_lines.h) */
	struct sg_act_buses act_buses;
	struct sg_commands *cmds;   /* actuators: the command router */
	struct gw_act_io *act_io;   /* one io watch per actuator */
	sd_event_source *act_timer;
	int exit_code;
	/* The configuration the MQTT client and the command router were built
	 * from (they borrow it: status topic, actuators); equal to cfg until a
	 * reload swaps cfg; freed last. */
	struct sg_config *cfg_mqtt;
	uint64_t n_reloads;
	double rate;                /* readings/s over the last status period */
	bool paused;            /* inputs paused: the broker socket is backlogged */

	/* Home Assistant discovery (discovery.h); gateway_discovery.c */
	struct sg_disc_list disc;             /* config messages for the current config */
	struct sg_disc_topics disc_announced; /* discovery topics the broker holds for us */
	bool disc_ok;                         /* the list could be built: announce and delete */
	bool disc_logged;                     /* the first announcement was logged */
	char *disc_state_path;                /* NULL: removals are not remembered across restarts */
	char *disc_ha_status;                 /* "<prefix>/status": Home Assistant's birth and will */
	sd_event_source *disc_timer;          /* re-announce shortly after Home Assistant started */
	sd_event_source *disc_seen_timer;     /* announce the fields that arrived for the first time */

	/* cloud profiles: gateway_cloud.c */
	sd_event_source *batch_flush;    /* defer: the devices' telemetry batches, once the handler that read them is done */
	unsigned twin_rid;               /* request id of the last twin request (Azure) */
	unsigned twin_get_rid;           /* that of the whole-twin request after connecting, 0: none */
	char (*cloud_state)[64];         /* per actuator of cfg_mqtt: the state last reported, "" none yet */
	struct sg_ratelimit cloud_rl;

	/* store and forward: gateway_spool.c */
	struct sg_spool *spool;          /* NULL while it cannot be opened */
	sd_event_source *flush;          /* defer: commit the batch, then hand over */
	sd_event_source *commit_timer;   /* spool.commit_interval: when the open batch is due */
	sd_event_source *spool_timer;    /* reopen a spool that could not be opened */
	sd_event_source *stats_timer;
	char *stats_topic;
	bool publishing;                 /* inside mqtt_publish() from pump() */
	int early[EARLY_ACKS];           /* mids acknowledged meanwhile (QoS 0 is written at once) */
	unsigned n_early;
	bool spool_full;                 /* in a "spool full" episode (logged once) */
	uint64_t full_dropped_at_start;
	bool spool_failing;              /* in a write-error episode (logged once) */
	sd_event_source *pace_timer;     /* hand over again when the broker's "quota exceeded" wait is over */
	struct sg_ratelimit refuse_rl;
	uint64_t direct_while_failing, dropped_while_failing;

	/* measurement time and replay (timesync.h, replay.h); gateway_replay.c */
	struct sg_timesync *timesync;
	struct sg_clock_source clock_src;
	struct sg_sys_clock sys_clock;
	sd_event_source *clock_timer;    /* looks at the sync state while the clock is not trusted */
	sd_event_source *clock_set;      /* the kernel says the wall clock was set */
	int clock_fd;
	struct sg_seqs *seqs;            /* per-topic sequence numbers */
	int64_t conn_epoch;              /* this connection to the broker (CLOCK_BOOTTIME at connect), 0 = none */
	uint64_t n_replayed;
	struct sg_iso_cache iso_cache;
	char out_topic[512];             /* a replayed message's topic and payload as they go out */
	char out_payload[1280];

	/* counters */
	uint64_t n_readings, n_published, n_dropped, n_map_errors, n_skipped;
	struct gw_rate status_rate;      /* readings/s for the status line */
	struct gw_rate stats_rate;       /* and for the stats topic */
	uint64_t started_us;
	double started_wall_s;           /* Unix time of the start, for the metrics file */
	uint64_t n_connects;             /* broker connections */
	struct sg_ratelimit drop_rl;
	struct sg_ratelimit unpublishable_rl;  /* spooled messages the client refuses */
	char spool_open_err[256];        /* why the spool could not be opened, as logged last */

	/* metrics.path: the Prometheus text file, rewritten every metrics.interval (gateway_metrics.c) */
	sd_event_source *metrics_timer;
	char metrics_err[256];           /* the write error logged last, "" while it works */

	/* link quality (health.h): sampled every health.interval; the --status file; gateway_metrics.c */
	sd_event_source *health_timer;
	char *health_path;               /* the --status file, NULL without RUNTIME_DIRECTORY (or on ENOMEM) */
	char health_err[256];            /* its write error logged last, "" while it works */
};

/* gateway.c */
void gw_update_status(struct sg_gateway *g);
void gw_rate_update(struct gw_rate *rate, uint64_t readings, uint64_t now_us, double *ret);

/* gateway_mqtt.c */
extern const struct sg_mqtt_handlers gw_mqtt_handlers;
int gw_mqtt_start(struct sg_gateway *g);
void gw_mqtt_flush_now(struct sg_gateway *g);

/* gateway_discovery.c */
int gw_discovery_start(struct sg_gateway *g);
void gw_discovery_connected(struct sg_gateway *g);
void gw_discovery_on_ha_status(struct sg_gateway *g, const struct sg_mqtt_msg *msg);
void gw_discovery_note(struct gw_device *d, const char *field);
void gw_discovery_reload(struct sg_gateway *g);
void gw_discovery_free(struct sg_gateway *g);

/* gateway_spool.c */
int gw_spool_start(struct sg_gateway *g);
void gw_route(struct sg_gateway *g, const struct sg_message *msg);
void gw_drop_reading(struct sg_gateway *g, const struct sg_message *msg, const char *why);
void gw_flush_later(struct sg_gateway *g);
void gw_spool_trouble(struct sg_gateway *g, int r);

/* gateway_replay.c */
int gw_clock_setup(struct sg_gateway *g);
void gw_outgoing(struct sg_gateway *g, struct sg_spool_msg *m, struct mqtt_props *props);
void gw_seq_seen(void *ud, const char *topic, uint64_t seq);

/* gateway_devices.c */
int gw_devices_setup(struct sg_gateway *g);
struct gw_device *gw_device_new(struct sg_gateway *g, const struct sg_device_cfg *c, size_t index);
void gw_device_free(struct gw_device *d);
void gw_device_bind(struct gw_device *d, const struct sg_device_cfg *c, size_t index);
int gw_device_open(struct gw_device *d);
void gw_device_close(struct gw_device *d);
void gw_device_reinit(struct gw_device *d, const struct sg_device_cfg *c, size_t index);
void gw_device_schedule_reopen(struct gw_device *d);
int gw_device_expire_setup(struct gw_device *d);
void gw_devices_refresh(struct sg_gateway *g);
int gw_filters_start(struct sg_gateway *g);
void gw_filters_arm(struct sg_gateway *g);

/* gateway_cloud.c */
int gw_cloud_start(struct sg_gateway *g);
void gw_cloud_connected(struct sg_gateway *g);
void gw_cloud_message(struct sg_gateway *g, const struct sg_mqtt_msg *msg);
int gw_cloud_act_publish(struct sg_gateway *g, const char *topic, const void *payload, size_t len, int qos);
void gw_batch_add(struct gw_device *d, const char *field, const struct sg_message *msg);
void gw_batches_send(struct sg_gateway *g);

/* gateway_actuators.c */
int gw_actuators_setup(struct sg_gateway *g);
void gw_actuators_watch(struct sg_gateway *g);
void gw_actuators_message(struct sg_gateway *g, const struct sg_mqtt_msg *msg);
void gw_on_lines_after(void *ud, uint64_t now_us);
void gw_actuators_free(struct sg_gateway *g);

/* gateway_metrics.c */
int gw_metrics_start(struct sg_gateway *g);
void gw_metrics_update(struct sg_gateway *g);
int gw_health_start(struct sg_gateway *g);
void gw_health_connected(struct sg_gateway *g);

/* gateway_reload.c */
int gw_on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *ud);

#endif
