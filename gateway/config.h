/* SPDX-License-Identifier: MIT */
/*
 * config.h — the validated configuration.
 *
 * config_load() reads a libconfig file, checks every key (unknown keys, wrong
 * types, out-of-range values, duplicate names and topics, invalid topic
 * characters, missing drivers, missing ports are all errors) and resolves
 * every topic to its full form. The result is immutable and owned by the
 * caller (config_free()). Errors are written as "FILE:LINE: what is wrong".
 */
#ifndef SG_CONFIG_H
#define SG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "../drivers/actuator.h"
#include "../drivers/driver.h"
#include "../drivers/line.h"
#include "filters.h"

/* The gateway's availability payloads unless gateway.payload_online/payload_offline say otherwise. */
#define SG_STATUS_PAYLOAD_ONLINE  "online"
#define SG_STATUS_PAYLOAD_OFFLINE "offline"

enum sg_payload_format {
	SG_PAYLOAD_PLAIN = 0, /* "21.5" */
	SG_PAYLOAD_JSON,      /* {"value":21.5,"unit":"°C","ts":"2026-11-25T12:00:00Z"} */
};

/* What happens to a reading while the broker is unreachable. */
enum sg_offline_policy {
	SG_OFFLINE_SPOOL = 0, /* keep every message (default) */
	SG_OFFLINE_DROP,      /* drop it */
	SG_OFFLINE_LAST,      /* keep only the newest per topic */
};

/* One entry of a device's `readings` list, or the defaults for unlisted fields. */
struct sg_reading_cfg {
	char *field;           /* driver field name */
	char *topic;           /* full topic: <base_topic>/<topic or device/field> */
	char *unit;            /* override of the driver's unit, or NULL */
	int qos;               /* 0..2, default 0 */
	bool retain;           /* default true */
	enum sg_payload_format payload;
	enum sg_offline_policy offline;
	/* transforms; "unset" values disable them */
	double scale;          /* default 1 */
	double offset;         /* default 0 */
	int round;             /* decimals, -1 = unset */
	double deadband;       /* 0 = unset */
	double throttle_s;     /* 0 = unset */
	double heartbeat_s;    /* 0 = unset */
	int average;           /* samples, 0/1 = unset */
	struct sg_filter_spec *filters; /* `filters` list, in order (filters.h); NULL = none */
	size_t n_filters;
	char *device_class;    /* discovery override or NULL */
	char *state_class;     /* discovery override ("measurement", "total", "total_increasing") or NULL */
	int line;
};

struct sg_device_cfg {
	char *name;                    /* [A-Za-z0-9_-]+, unique */
	const struct sg_driver *driver;
	void *opts;                    /* driver->parse_options result (driver frees) */
	char *port;                    /* serial: path, or NULL when matched by usb serial */
	char *usb_serial;              /* serial: match a USB port by serial number */
	int baud;                      /* serial: as its line has it (shared with the line's other entries) */
	struct sg_serial_framing framing; /* serial: likewise */
	int serial_line;               /* serial: index into sg_config.lines, -1 for none */
	int serial_set_at[SG_LINE_KEY_N]; /* serial: line of each setting the entry names itself, 0: default */
	char *bus;                     /* i2c: /dev/i2c-N */
	int address;                   /* i2c: 7-bit address, -1 when none */
	char *path;                    /* 1-Wire device dir or other driver path */
	double interval_s;             /* polled drivers */
	double expire_after_s;         /* 0 = unset */
	bool all_fields;               /* no `readings` list: publish every field */
	struct sg_reading_cfg defaults; /* settings for fields not listed (topic NULL) */
	struct sg_reading_cfg *readings;
	size_t n_readings;
	int line;
};

struct sg_actuator_cfg {
	char *name;
	char *driver;          /* "gpio" | "serial" | ... (actuator registry) */
	const struct sg_act_driver *drv; /* that driver, from sg_act_drivers[] */
	void *opts;            /* drv->parse_options result (drv->free_options frees), NULL without */
	enum sg_actuator_kind kind; /* (drivers/actuator.h) */
	char *topic;           /* full state topic; command topic is topic + "/set" */
	char *command_topic;
	char *error_topic;
	int qos;
	bool accept_retained;
	int min_interval_ms;
	char *interlock;       /* group name or NULL */
	char *payload_on, *payload_off;
	char *initial, *safe;  /* payloads, may be NULL */
	double min, max, step;
	char **options; size_t n_options;
	int pulse_ms;          /* switches: back off this long after ON, 0 = never */
	double max_on_s;       /* switches: on for at most this long, 0 = unlimited */
	double fail_safe_after_s;    /* to the safe state after this long without the broker, 0 = never */
	bool fail_safe_on_ha_offline; /* to the safe state when Home Assistant's status topic says "offline" */
	int serial_line;       /* index into sg_config.lines when its driver uses a serial line, else -1 */
	struct sg_line_settings line_settings; /* that line's settings, for the driver (sg_act_params.line) */
	int line;
};

/*
 * A serial line and the entries that share it. Entries name a line by the
 * same `port` (or `usb_serial`); the settings one entry names apply to all,
 * those none names are the drivers' defaults, which then must agree.
 */
struct sg_serial_line_cfg {
	char *name;                    /* the port, or the USB serial number */
	bool by_usb_serial;
	struct sg_line_settings settings;
	size_t *devices, n_devices;    /* indices into sg_config.devices */
	size_t *actuators, n_actuators;
};

/* mqtt.cloud: a cloud service's rules (see cloud.h). */
enum sg_cloud {
	SG_CLOUD_NONE = 0,
	SG_CLOUD_AZURE,          /* "azure-iot-hub" */
	SG_CLOUD_AWS,            /* "aws-iot-core" */
};

/* Keys of the mqtt group whose place in the file is kept for checks made after loading (TLS set-up). */
enum sg_mqtt_key {
	SG_MQTT_KEY_GROUP,       /* the mqtt group itself; the file alone when there is none */
	SG_MQTT_KEY_BROKERS,
	SG_MQTT_KEY_CLIENT_ID,
	SG_MQTT_KEY_USERNAME,
	SG_MQTT_KEY_PASSWORD_FILE,
	SG_MQTT_KEY_TLS,
	SG_MQTT_KEY_CA_FILE,
	SG_MQTT_KEY_CA_PATH,
	SG_MQTT_KEY_CERT_FILE,
	SG_MQTT_KEY_KEY_FILE,
	SG_MQTT_KEY_INSECURE,
	SG_MQTT_KEY_ALPN,
	SG_MQTT_KEY_CLOUD,
	SG_MQTT_KEY_DEVICE_KEY_FILE,
	SG_MQTT_KEY_N,
};

struct sg_mqtt_cfg {
	/* "FILE:LINE" where each key was set, NULL when it is not in the file (GROUP: never NULL). */
	char *where[SG_MQTT_KEY_N];
	char **brokers;          /* URLs, failover order; all mqtt:// or all mqtts:// */
	size_t n_brokers;
	int protocol;            /* the protocol level: 5, 4 (3.1.1) or 3 (3.1, "MQIsdp") */
	int keepalive;           /* seconds */
	bool clean_session;      /* default false */
	char *client_id;         /* default "sensorgate-<id>" */
	char *username;          /* or NULL */
	char *password;          /* read from password_file, or NULL */
	char *password_file;
	char *ca_file, *ca_path, *cert_file, *key_file; /* NULL when unset */
	bool tls_insecure;       /* skip host-name check: never default */
	char *tls_alpn;          /* the one ALPN protocol name offered in the TLS handshake, or NULL */
	enum sg_cloud cloud;     /* SG_CLOUD_NONE: a plain broker */
	char *hub;               /* azure: the hub's host name, "NAME.azure-devices.net" */
	char *device_id;         /* azure: the device id (also the client id); aws: the thing name */
	char *device_key_file;
	unsigned char *device_key; /* azure: the device's symmetric key, base64-decoded from device_key_file */
	size_t device_key_len;
	int sas_lifetime_s;      /* azure: how long each SAS token is valid (default 3600) */
	double reconnect_min_s;  /* default 1 */
	double reconnect_max_s;  /* default 60 */
	int max_inflight;        /* default 100 */
	/* The gateway's availability payloads (gateway.payload_online/payload_offline): the birth message,
	 * retained after each connect, and the Last Will. NULL: "online"/"offline" (mqtt_setup.h). */
	char *birth_payload;
	char *will_payload;
};

struct sg_spool_cfg {
	char *path;              /* NULL = $STATE_DIRECTORY/spool.db, else /var/lib/sensorgate/spool.db */
	int max_size_mb;
	bool sync_full;          /* sync = "full" */
	bool drop_new;           /* when_full = "drop_new" */
	double stats_interval_s; /* 0 = no stats topic */
	double commit_interval_s; /* 0: committed before hand-over; else handed over at once, committed within this */
	bool replay_history;     /* replay = "history": the backlog goes to history_topic (README, Replay) */
	char *history_topic;     /* "{topic}/history": where a replayed message goes, {topic} its own topic */
	bool props_replays_only; /* properties = "replays": MQTT 5 user properties on replays only */
};

/* The `time` group: when the wall clock is believed (timesync.h). */
struct sg_time_cfg {
	bool trust_always;       /* trust = "always": the wall clock is right from the start */
	bool trust_file_only;    /* trust = "file": only sync_file says the clock is synchronised */
	char *sync_file;         /* NULL = /run/systemd/timesync/synchronized */
};

struct sg_discovery_cfg {
	bool enabled;
	char *prefix;            /* "homeassistant" */
	char *state_file;        /* announced topics between runs; NULL = default place */
	char *ha_status_topic;   /* Home Assistant's birth and will: default "<prefix>/status" */
};

/* The `metrics` group: a Prometheus text file for node_exporter's textfile collector. */
struct sg_metrics_cfg {
	char *path;              /* NULL: no metrics file */
	double interval_s;       /* rewritten this often, default 15 */
};

/* The `health` group: link quality per device (health.h). */
struct sg_health_cfg {
	bool publish;            /* <base>/<device>/health and its Home Assistant entities; default false */
	double interval_s;       /* sampled (and the status file written) this often, default 10 */
	double window_s;         /* the recent figures cover this long, default 300 */
};

/* The `commands` group: rules for every actuator's commands. */
struct sg_commands_cfg {
	char *response_topic_prefix; /* MQTT 5 answers only under "<prefix>/...", or NULL (see response_topic.h) */
};

struct sg_config {
	char *path;
	char *id;                /* gateway id, default hostname */
	char *base_topic;        /* default "sensorgate" */
	char *status_topic;      /* gateway.status_topic, default <base>/gateway/<id>/status */
	enum sg_payload_format payload; /* default for all readings */
	struct sg_mqtt_cfg mqtt;
	struct sg_spool_cfg spool;
	struct sg_time_cfg time;
	struct sg_discovery_cfg discovery;
	struct sg_commands_cfg commands;
	struct sg_metrics_cfg metrics;
	struct sg_health_cfg health;
	struct sg_device_cfg *devices;
	size_t n_devices;
	struct sg_actuator_cfg *actuators;
	size_t n_actuators;
	struct sg_serial_line_cfg *lines;
	size_t n_lines;
};

/* The gateway's birth and Last Will payloads: as configured, else "online" and "offline". */
static inline const char *config_birth_payload(const struct sg_mqtt_cfg *m)
{
	return m->birth_payload ? m->birth_payload : SG_STATUS_PAYLOAD_ONLINE;
}

static inline const char *config_will_payload(const struct sg_mqtt_cfg *m)
{
	return m->will_payload ? m->will_payload : SG_STATUS_PAYLOAD_OFFLINE;
}

/*
 * Load and validate FILE. On success returns 0 and *ret points to a config
 * owned by the caller. On failure returns -EINVAL (or -errno for I/O) and
 * writes one line "FILE:LINE: message" into err (errlen bytes).
 */
int config_load(const char *file, struct sg_config **ret, char *err, size_t errlen);
void config_free(struct sg_config *cfg);

/* True if s is a valid name for a device/field topic level: [A-Za-z0-9_-]+ */
bool config_name_valid(const char *s);
/* True if t is a valid publish topic: 1..256 bytes of valid UTF-8, no control characters,
 * no "+" or "#", no empty level, not starting with "$". */
bool config_topic_valid(const char *t);
/* "5", "3.1.1" or "3.1" for protocol level 5, 4 or 3, as the config spells it. */
const char *config_protocol_name(int level);
/* "a directory", "a FIFO", "a character device" ... for a stat mode, in messages refusing a file. */
const char *config_file_kind(mode_t mode);

#endif
