/* SPDX-License-Identifier: MIT */
/*
 * test_config.c — config_load(): every error class with its exact line, the
 * defaults, a full config with every key, and the shipped example files.
 *
 * Each case writes its text to a file in a private temporary directory that
 * also holds a stand-in serial port ("tty"), TLS files and a password file;
 * "@DIR@" in a case's text is replaced by that directory. The directory and
 * everything in it belong to the group setup/teardown.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "gateway/config.h"

static char tmpdir[64];
static char conf_path[PATH_MAX];

static const char *const aux_files[] = {"tty", "tty2", "tty3", "tty4", "ca.pem", "cert.pem", "key.pem", "test.conf", "inc.conf",
                                        "password", "empty", "fifo", "device.key", NULL};

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void write_aux(const char *name, const char *text)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	write_file(path, text);
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sg-test-config-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(conf_path, sizeof(conf_path), "%s/test.conf", tmpdir);
	write_aux("tty", "");
	write_aux("tty2", "");
	write_aux("tty3", "");
	write_aux("tty4", "");
	write_aux("ca.pem", "not really a certificate\n");
	write_aux("cert.pem", "not really a certificate\n");
	write_aux("key.pem", "not really a key\n");
	write_aux("device.key", "c2Vuc29yZ2F0ZSB0ZXN0IGtleSwgMzIgYnl0ZXMgbG9uZyE=\n");
	snprintf(conf_path, sizeof(conf_path), "%s/fifo", tmpdir);
	if (mkfifo(conf_path, 0600) < 0)
		return -1;
	snprintf(conf_path, sizeof(conf_path), "%s/test.conf", tmpdir);
	return 0;
}

static int group_teardown(void **state)
{
	char path[PATH_MAX];

	(void)state;
	for (size_t i = 0; aux_files[i]; i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, aux_files[i]);
		unlink(path);
	}
	return rmdir(tmpdir);
}

/* TEXT with every "@DIR@" replaced by the temporary directory, "@BASE@" by its last part; caller frees. */
static char *expand(const char *text)
{
	const char *base = strrchr(tmpdir, '/') ? strrchr(tmpdir, '/') + 1 : tmpdir;
	size_t dirlen = strlen(tmpdir), baselen = strlen(base), n = 0;
	char *out, *o;

	for (const char *p = text; *p; p++)
		n += p[0] == '@';
	out = malloc(strlen(text) + n * (dirlen + baselen) + 1);
	assert_non_null(out);
	o = out;
	while (*text) {
		if (strncmp(text, "@DIR@", 5) == 0) {
			memcpy(o, tmpdir, dirlen);
			o += dirlen;
			text += 5;
		} else if (strncmp(text, "@BASE@", 6) == 0) {
			memcpy(o, base, baselen);
			o += baselen;
			text += 6;
		} else {
			*o++ = *text++;
		}
	}
	*o = '\0';
	return out;
}

static int load_text(const char *text, struct sg_config **cfg, char *err, size_t errlen)
{
	char *t = expand(text);

	write_file(conf_path, t);
	free(t);
	*cfg = NULL;
	return config_load(conf_path, cfg, err, errlen);
}

/* --- errors ------------------------------------------------------------ */

struct err_case {
	const char *legend;
	const char *text;
	int line;          /* expected line in the message; 0 = "FILE: ..." */
	const char *msg;   /* expected substring */
};

#define DEV_A "devices = (\n  { name = \"a\"; driver = \"lines\"; port = \"@DIR@/tty\";\n"

static const struct err_case err_cases[] = {
	{"unknown key at top level",
	 "gateway: { id = \"gw\"; };\nbogus = 1;\n",
	 2, "unknown key \"bogus\""},
	{"unknown key in mqtt",
	 "mqtt: {\n  keepalive = 30;\n  keepalive_s = 3;\n};\n",
	 3, "unknown key \"keepalive_s\" in mqtt"},
	{"unknown key in mqtt.tls",
	 "mqtt: {\n  tls: {\n    insecure = false;\n    ca = \"x\";\n  };\n};\n",
	 4, "unknown key \"ca\" in mqtt.tls"},
	{"unknown key in gateway",
	 "\ngateway: { id = \"gw\"; topic = \"x\"; };\n",
	 2, "unknown key \"topic\" in gateway"},
	{"unknown key in spool",
	 "spool: {\n\n  size = 3;\n};\n",
	 3, "unknown key \"size\" in spool"},
	{"unknown key in discovery",
	 "discovery: { enabled = true;\n  prefx = \"ha\"; };\n",
	 2, "unknown key \"prefx\" in discovery"},
	{"unknown key in device",
	 DEV_A "    colour = \"red\"; }\n);\n",
	 3, "unknown key \"colour\" in device \"a\""},
	{"i2c key on a serial device",
	 DEV_A "    address = 0x76; }\n);\n",
	 3, "\"address\" does not apply to driver \"lines\" in device \"a\""},
	{"unknown key in reading",
	 DEV_A "    readings = (\n      { field = \"t\";\n        untis = \"C\"; }\n    ); }\n);\n",
	 5, "unknown key \"untis\" in device \"a\" reading \"t\""},
	{"unknown key in actuator",
	 "actuators = (\n  { name = \"l\"; driver = \"gpio\"; line = 4;\n    colour = 1; }\n);\n",
	 3, "unknown key \"colour\" in actuator \"l\""},
	{"serial key on a gpio actuator",
	 "actuators = (\n  { name = \"l\"; driver = \"gpio\"; line = 4;\n    baud = 9600; }\n);\n",
	 3, "\"baud\" does not apply to driver \"gpio\" in actuator \"l\""},
	{"string where an integer is wanted",
	 DEV_A "    baud = \"9600\"; }\n);\n",
	 3, "\"baud\" must be an integer"},
	{"float where an integer is wanted",
	 "mqtt: {\n  keepalive = 30.0;\n};\n",
	 2, "\"keepalive\" must be an integer"},
	{"integer where a boolean is wanted",
	 "mqtt: { clean_session = 1; };\n",
	 1, "\"clean_session\" must be a boolean"},
	{"boolean where a number is wanted",
	 DEV_A "    interval = true; }\n);\n",
	 3, "\"interval\" must be a number"},
	{"integer where a string is wanted",
	 "gateway: {\n  base_topic = 5;\n};\n",
	 2, "\"base_topic\" must be a string"},
	{"group where a list is wanted",
	 "devices = { name = \"a\"; };\n",
	 1, "\"devices\" must be a list"},
	{"mqtt not a group",
	 "mqtt = 5;\n",
	 1, "\"mqtt\" must be a group"},
	{"keepalive out of range",
	 "mqtt: {\n  keepalive = 2;\n};\n",
	 2, "\"keepalive\" must be between 5 and 3600"},
	{"commit_interval out of range",
	 "spool: {\n  commit_interval = 61;\n};\n",
	 2, "\"commit_interval\" must be between 0 and 60"},
	{"replay unknown",
	 "spool: {\n  replay = \"later\";\n};\n",
	 2, "\"replay\" must be one of \"live\", \"history\""},
	{"history_topic with a wildcard",
	 "spool: {\n  history_topic = \"old/#\";\n};\n",
	 2, "invalid history_topic \"old/#\""},
	{"history_topic naming {topic} twice",
	 "spool: {\n  history_topic = \"{topic}/{topic}\";\n};\n",
	 2, "\"history_topic\" may name {topic} once only"},
	{"history_topic empty",
	 "spool: {\n  history_topic = \"\";\n};\n",
	 2, "invalid history_topic \"\""},
	{"properties unknown",
	 "spool: {\n  properties = \"none\";\n};\n",
	 2, "\"properties\" must be one of \"all\", \"replays\""},
	{"time trust unknown",
	 "time: {\n  trust = \"never\";\n};\n",
	 2, "\"trust\" must be one of \"auto\", \"always\", \"file\""},
	{"time sync_file relative",
	 "time: {\n  sync_file = \"run/synced\";\n};\n",
	 2, "\"sync_file\" must be an absolute path"},
	{"time unknown key",
	 "time: {\n  ntp = true;\n};\n",
	 2, "unknown key \"ntp\" in time"},
	{"qos out of range",
	 DEV_A "    readings = ( { field = \"t\";\n                   qos = 3; } ); }\n);\n",
	 4, "\"qos\" must be between 0 and 2"},
	{"interval zero",
	 DEV_A "    interval = 0; }\n);\n",
	 3, "\"interval\" must be greater than 0"},
	{"negative deadband",
	 DEV_A "    readings = ( { field = \"t\"; deadband = -1; } ); }\n);\n",
	 3, "\"deadband\" must be at least 0"},
	{"round out of range",
	 DEV_A "    readings = ( { field = \"t\"; round = 11; } ); }\n);\n",
	 3, "\"round\" must be between 0 and 10"},
	{"max_size_mb out of range",
	 "spool: { max_size_mb = 0; };\n",
	 1, "\"max_size_mb\" must be between 1 and 100000"},
	{"non-standard baud",
	 DEV_A "    baud = 12345; }\n);\n",
	 3, "\"baud\" 12345 is not a standard rate"},
	{"bad enum value",
	 "gateway: { payload = \"xml\"; };\n",
	 1, "\"payload\" must be one of \"plain\", \"json\""},
	{"bad offline policy",
	 DEV_A "    offline = \"keep\"; }\n);\n",
	 3, "\"offline\" must be one of \"spool\", \"drop\", \"last\""},
	{"unknown driver",
	 "devices = (\n  { name = \"a\";\n    driver = \"nope\"; }\n);\n",
	 3, "unknown driver \"nope\" (known: lines"},
	{"missing port",
	 "devices = (\n  { name = \"a\"; driver = \"lines\";\n    port = \"/nonexistent/ttyX\"; }\n);\n",
	 3, "device \"a\": port /nonexistent/ttyX does not exist"},
	{"neither port nor usb_serial",
	 "devices = (\n  { name = \"a\"; driver = \"lines\"; }\n);\n",
	 2, "device \"a\" needs \"port\" or \"usb_serial\""},
	{"both port and usb_serial",
	 DEV_A "    usb_serial = \"X1\"; }\n);\n",
	 3, "set \"port\" or \"usb_serial\", not both"},
	{"device without name",
	 "devices = (\n  { driver = \"lines\"; }\n);\n",
	 2, "device #1 needs \"name\""},
	{"device without driver",
	 "devices = (\n  { name = \"a\"; }\n);\n",
	 2, "device \"a\" needs \"driver\""},
	{"invalid device name",
	 "devices = (\n  { name = \"living room\"; driver = \"lines\"; port = \"@DIR@/tty\"; }\n);\n",
	 2, "invalid device name \"living room\""},
	{"device name with a slash",
	 "devices = (\n  { name = \"a/b\"; driver = \"lines\"; port = \"@DIR@/tty\"; }\n);\n",
	 2, "invalid device name \"a/b\""},
	{"duplicate device name",
	 DEV_A "  },\n  { name = \"a\"; driver = \"lines\"; usb_serial = \"X\"; }\n);\n",
	 4, "duplicate device name \"a\" (first on line 2)"},
	{"duplicate actuator name",
	 "actuators = (\n  { name = \"l\"; driver = \"gpio\"; line = 4; },\n\n"
	 "  { name = \"l\"; driver = \"gpio\"; line = 5; }\n);\n",
	 4, "duplicate actuator name \"l\" (first on line 2)"},
	{"field listed twice",
	 DEV_A "    readings = (\n      { field = \"t\"; },\n      { field = \"t\"; topic = \"x\"; }\n    ); }\n);\n",
	 5, "field \"t\" is listed twice (first on line 4)"},
	{"invalid field name",
	 DEV_A "    readings = ( { field = \"a b\"; } ); }\n);\n",
	 3, "invalid field name \"a b\""},
	{"reading without field",
	 DEV_A "    readings = (\n      { topic = \"x\"; } ); }\n);\n",
	 4, "reading needs \"field\""},
	{"empty readings list",
	 DEV_A "    readings = ( ); }\n);\n",
	 3, "\"readings\" is empty"},
	{"topic with '+'",
	 DEV_A "    readings = ( { field = \"t\";\n      topic = \"room/+/t\"; } ); }\n);\n",
	 4, "invalid topic \"room/+/t\""},
	{"topic with '#'",
	 DEV_A "    readings = ( { field = \"t\"; topic = \"room/#\"; } ); }\n);\n",
	 3, "invalid topic \"room/#\""},
	{"topic with an empty level",
	 DEV_A "    readings = ( { field = \"t\"; topic = \"room//t\"; } ); }\n);\n",
	 3, "invalid topic \"room//t\""},
	{"topic with a leading slash",
	 DEV_A "    readings = ( { field = \"t\"; topic = \"/room\"; } ); }\n);\n",
	 3, "invalid topic \"/room\""},
	{"base_topic with '#'",
	 "gateway: {\n  base_topic = \"home/#\"; };\n",
	 2, "invalid base_topic \"home/#\""},
	{"base_topic starting with '$'",
	 "gateway: { base_topic = \"$SYS\"; };\n",
	 1, "invalid base_topic \"$SYS\""},
	{"invalid gateway id",
	 "gateway: { id = \"pi.local\"; };\n",
	 1, "invalid gateway id \"pi.local\""},
	{"duplicate topic between devices",
	 "devices = (\n"
	 "  { name = \"a\"; driver = \"lines\"; port = \"@DIR@/tty\";\n"
	 "    readings = ( { field = \"t\"; topic = \"room/t\"; } ); },\n"
	 "  { name = \"b\"; driver = \"lines\"; usb_serial = \"X\";\n"
	 "    readings = (\n"
	 "      { field = \"temp\";\n"
	 "        topic = \"room/t\"; } ); }\n);\n",
	 7, "topic \"sensorgate/room/t\" of device \"b\" field \"temp\" is already used by "
	    "device \"a\" field \"t\" on line 3"},
	{"explicit topic equal to a default one",
	 DEV_A "    readings = ( { field = \"t\"; },\n      { field = \"u\"; topic = \"a/t\"; } ); }\n);\n",
	 4, "is already used by device \"a\" field \"t\" on line 3"},
	{"reading topic equal to an actuator state topic",
	 DEV_A "    readings = ( { field = \"t\"; topic = \"hall/light\"; } ); }\n);\n"
	 "actuators = (\n  { name = \"l\"; driver = \"gpio\"; line = 4;\n    topic = \"hall/light\"; }\n);\n",
	 7, "topic \"sensorgate/hall/light\" of actuator \"l\" is already used by device \"a\" field \"t\" on line 3"},
	{"reading topic equal to an actuator command topic",
	 DEV_A "    readings = ( { field = \"t\"; topic = \"l/set\"; } ); }\n);\n"
	 "actuators = (\n  { name = \"l\"; driver = \"gpio\"; line = 4; }\n);\n",
	 6, "of actuator \"l\" (command topic) is already used by device \"a\" field \"t\" on line 3"},
	{"every field of a device, an actuator's command topic among them (issue #10)",
	 DEV_A "  }\n);\nactuators = (\n  { name = \"l\"; driver = \"gpio\"; line = 4; topic = \"a\"; }\n);\n",
	 2, "device \"a\" publishes every field on sensorgate/a/<field>, and a field \"set\" would land on the "
	    "command topic of actuator \"l\" (line 6)"},
	{"every field of a device, an actuator's state topic among them",
	 DEV_A "  }\n);\nactuators = (\n  { name = \"l\"; driver = \"gpio\"; line = 4; topic = \"a/x\"; }\n);\n",
	 2, "a field \"x\" would land on the state topic of actuator \"l\""},
	{"two actuators on one topic",
	 "actuators = (\n  { name = \"l\"; driver = \"gpio\"; line = 4; topic = \"x\"; },\n"
	 "  { name = \"m\"; driver = \"gpio\"; line = 5; topic = \"x\"; }\n);\n",
	 3, "of actuator \"m\" is already used by actuator \"l\" on line 2"},
	{"reading on the status topic",
	 "gateway: { id = \"gw\"; };\n"
	 DEV_A "    readings = ( { field = \"t\"; topic = \"gateway/gw/status\"; } ); }\n);\n",
	 4, "is already used by the gateway status topic"},
	{"syntax error",
	 "gateway: {\n  id = \"gw\";\n  base_topic = ;\n};\n",
	 3, "syntax error"},
	{"duplicate key is a syntax error",
	 "mqtt: {\n  keepalive = 30;\n  keepalive = 40;\n};\n",
	 3, "syntax error: duplicate setting name"},
	{"broker without scheme",
	 "mqtt: {\n  brokers = ( \"localhost:1883\" );\n};\n",
	 2, "invalid broker URL \"localhost:1883\""},
	{"broker with http scheme",
	 "mqtt: { brokers = ( \"mqtt://ok:1883\",\n  \"http://x\" ); };\n",
	 2, "invalid broker URL \"http://x\""},
	{"broker without host",
	 "mqtt: { brokers = ( \"mqtt://\" ); };\n", 1, "invalid broker URL \"mqtt://\""},
	{"broker with port 0",
	 "mqtt: { brokers = ( \"mqtt://h:0\" ); };\n", 1, "invalid broker URL"},
	{"broker with port 65536",
	 "mqtt: { brokers = ( \"mqtt://h:65536\" ); };\n", 1, "invalid broker URL"},
	{"broker with an empty port",
	 "mqtt: { brokers = ( \"mqtt://h:\" ); };\n", 1, "invalid broker URL"},
	{"broker with a path",
	 "mqtt: { brokers = ( \"mqtt://h:1883/x\" ); };\n", 1, "invalid broker URL"},
	{"broker with an unclosed IPv6 bracket",
	 "mqtt: { brokers = ( \"mqtt://[::1:1883\" ); };\n", 1, "invalid broker URL"},
	{"broker with user info",
	 "mqtt: { brokers = ( \"mqtt://u:p@h\" ); };\n", 1, "invalid broker URL"},
	{"brokers mixing mqtt:// and mqtts://",
	 "mqtt: { brokers = ( \"mqtts://a\", \"mqtts://b\",\n  \"mqtt://c\" ); };\n",
	 2, "\"mqtts://a\" and \"mqtt://c\" mix mqtt:// and mqtts://"},
	{"empty broker list",
	 "mqtt: { brokers = ( ); };\n", 1, "\"brokers\" is empty"},
	{"bad protocol string",
	 "mqtt: {\n  protocol = \"3\";\n};\n",
	 2, "\"protocol\" must be one of \"5\", \"3.1.1\""},
	{"protocol as an integer",
	 "mqtt: { protocol = 5; };\n", 1, "\"protocol\" must be a string"},
	{"reconnect_max below reconnect_min",
	 "mqtt: { reconnect_min = 10;\n  reconnect_max = 5; };\n",
	 2, "\"reconnect_max\" (5) must not be less than \"reconnect_min\" (10)"},
	{"unreadable password_file",
	 "mqtt: { username = \"u\";\n  password_file = \"/nonexistent/pw\"; };\n",
	 2, "cannot read password_file /nonexistent/pw: No such file or directory"},
	/* Only a regular file is read: neither of these may block or grow the process. */
	{"password_file is /dev/zero",
	 "mqtt: { username = \"u\";\n  password_file = \"/dev/zero\"; };\n",
	 2, "cannot read password_file /dev/zero: it is a character device, not a regular file"},
	{"password_file is a FIFO without a writer",
	 "mqtt: { username = \"u\";\n  password_file = \"@DIR@/fifo\"; };\n",
	 2, "/fifo: it is a FIFO, not a regular file"},
	{"password_file is a directory",
	 "mqtt: { username = \"u\";\n\n  password_file = \"@DIR@\"; };\n",
	 3, ": it is a directory, not a regular file"},
	{"password without user name on 3.1.1",
	 "mqtt: { protocol = \"3.1.1\"; password_file = \"@DIR@/key.pem\"; };\n",
	 1, "\"password_file\" needs \"username\""},
	{"protocol 3.1 and a client id over 23 bytes",
	 "mqtt: { protocol = \"3.1\";\n  client_id = \"abcdefghijklmnopqrstuvwx\"; };\n",
	 2, "client id \"abcdefghijklmnopqrstuvwx\" is 24 bytes; MQTT 3.1 allows at most 23"},
	{"alpn without TLS",
	 "mqtt: { tls: {\n  alpn = \"x-amzn-mqtt-ca\"; }; };\n",
	 2, "\"alpn\" is a TLS setting, but the brokers are mqtt:// (no TLS)"},
	{"alpn with a space",
	 "mqtt: { brokers = ( \"mqtts://h:443\" ); tls: {\n  alpn = \"x y\"; }; };\n",
	 2, "\"alpn\" must be a protocol name of 1 to 255 printable ASCII characters"},
	{"azure without hub",
	 "mqtt: {\n  cloud = \"azure-iot-hub\"; device_id = \"d\"; device_key_file = \"@DIR@/key.pem\"; };\n",
	 2, "cloud = \"azure-iot-hub\" needs \"hub\" in the mqtt group"},
	{"hub without cloud",
	 "mqtt: {\n\n  hub = \"h.azure-devices.net\"; };\n",
	 3, "\"hub\" belongs to cloud = \"azure-iot-hub\", which is not set"},
	{"azure and client_id",
	 "mqtt: { cloud = \"azure-iot-hub\"; hub = \"h.azure-devices.net\"; device_id = \"d\";\n"
	 "  device_key_file = \"@DIR@/key.pem\";\n  client_id = \"x\"; };\n",
	 3, "\"client_id\" is set by cloud = \"azure-iot-hub\""},
	{"azure and a plain broker",
	 "mqtt: { cloud = \"azure-iot-hub\"; hub = \"h.azure-devices.net\"; device_id = \"d\";\n"
	 "  device_key_file = \"@DIR@/key.pem\";\n  brokers = ( \"mqtt://h:1883\" ); };\n",
	 3, "takes TLS only: the brokers must be mqtts://"},
	{"azure and MQTT 5",
	 "mqtt: { cloud = \"azure-iot-hub\"; hub = \"h.azure-devices.net\"; device_id = \"d\";\n"
	 "  device_key_file = \"@DIR@/key.pem\";\n  protocol = \"5\"; };\n",
	 3, "speaks MQTT 3.1.1"},
	{"azure device key not base64",
	 "mqtt: { cloud = \"azure-iot-hub\"; hub = \"h.azure-devices.net\"; device_id = \"d\";\n"
	 "  device_key_file = \"@DIR@/key.pem\"; };\n",
	 2, "/key.pem does not hold a base64 key on its first line"},
	{"azure device id with a slash",
	 "mqtt: { cloud = \"azure-iot-hub\"; hub = \"h.azure-devices.net\";\n  device_id = \"a/b\";\n"
	 "  device_key_file = \"@DIR@/key.pem\"; };\n",
	 2, "invalid device_id \"a/b\""},
	{"aws without thing",
	 "mqtt: {\n  cloud = \"aws-iot-core\"; brokers = ( \"mqtts://h:8883\" ); };\n",
	 2, "cloud = \"aws-iot-core\" needs \"thing\""},
	{"aws without a client certificate",
	 "mqtt: {\n  cloud = \"aws-iot-core\"; thing = \"t\"; brokers = ( \"mqtts://h:8883\" ); };\n",
	 2, "cloud = \"aws-iot-core\" needs the thing's certificate"},
	{"a timeout filter with a cloud profile",
	 "mqtt: { cloud = \"aws-iot-core\"; thing = \"t\"; brokers = ( \"mqtts://h:8883\" );\n"
	 "  tls: { cert_file = \"@DIR@/cert.pem\"; key_file = \"@DIR@/key.pem\"; }; };\n"
	 DEV_A "    readings = ( { field = \"t\";\n      filters = ( { timeout = 5; } ); } ); }\n);\n",
	 6, "a timeout filter cannot be used with cloud = \"aws-iot-core\""},
	{"azure and a status topic",
	 "gateway: { id = \"gw\";\n  status_topic = \"tele/gw/LWT\"; };\n"
	 "mqtt: { cloud = \"azure-iot-hub\"; hub = \"h.azure-devices.net\"; device_id = \"d\";\n"
	 "  device_key_file = \"@DIR@/device.key\"; };\n",
	 2, "\"status_topic\" (the gateway's status topic): cloud = \"azure-iot-hub\" only takes the service's own topics"},
	{"azure and a health topic per device",
	 "mqtt: { cloud = \"azure-iot-hub\"; hub = \"h.azure-devices.net\"; device_id = \"d\";\n"
	 "  device_key_file = \"@DIR@/device.key\"; };\n"
	 "health: {\n  publish = true; };\n",
	 4, "health \"publish\" (a health topic per device): cloud = \"azure-iot-hub\" only takes the service's own topics"},
	{"aws and QoS 2 on an actuator",
	 "mqtt: { cloud = \"aws-iot-core\"; thing = \"t\"; brokers = ( \"mqtts://h:8883\" );\n"
	 "  tls: { cert_file = \"@DIR@/cert.pem\"; key_file = \"@DIR@/key.pem\"; }; };\n"
	 "actuators = ( { name = \"r\"; driver = \"serial\"; port = \"@DIR@/tty\"; on = \"1\"; off = \"0\";\n"
	 "  qos = 2; } );\n",
	 4, "qos 2: cloud = \"aws-iot-core\" takes QoS 0 and 1 only"},
	{"cert_file without key_file",
	 "mqtt: { tls: {\n  cert_file = \"@DIR@/cert.pem\"; }; };\n",
	 2, "\"cert_file\" needs \"key_file\""},
	{"key_file without cert_file",
	 "mqtt: { tls: {\n  key_file = \"@DIR@/key.pem\"; }; };\n",
	 2, "\"key_file\" needs \"cert_file\""},
	{"missing ca_file",
	 "mqtt: { tls: {\n  ca_file = \"/nonexistent/ca.pem\"; }; };\n",
	 2, "\"ca_file\": /nonexistent/ca.pem: No such file or directory"},
	{"ca_path that is a file",
	 "mqtt: { tls: { ca_path = \"@DIR@/ca.pem\"; }; };\n",
	 1, "\"ca_path\": "},
	{"driver option error",
	 DEV_A "    format = \"xml\"; }\n);\n",
	 3, "device \"a\": \"format\" must be one of \"kv\", \"json\", \"csv\""},
	{"driver option error on another key",
	 DEV_A "    format = \"csv\"; }\n);\n",
	 3, "device \"a\": format = \"csv\" needs columns"},
	{"actuator with an unknown driver",
	 "actuators = (\n  { name = \"l\";\n    driver = \"dac\"; }\n);\n",
	 3, "\"driver\" must be one of \"gpio\", \"serial\""},
	{"gpio actuator without line",
	 "actuators = (\n  { name = \"l\"; driver = \"gpio\"; }\n);\n",
	 2, "actuator \"l\" needs \"line\""},
	{"gpio actuator of type number",
	 "actuators = (\n  { name = \"l\"; driver = \"gpio\"; line = 1;\n"
	 "    type = \"number\"; min = 0; max = 1; }\n);\n",
	 3, "driver \"gpio\" supports only type \"switch\""},
	{"enum actuator without options",
	 "actuators = (\n  { name = \"m\"; driver = \"serial\"; port = \"@DIR@/tty\"; set = \"%s\";\n"
	 "    type = \"enum\"; }\n);\n",
	 2, "type \"enum\" needs \"options\""},
	{"number actuator with min >= max",
	 "actuators = (\n  { name = \"m\"; driver = \"serial\"; port = \"@DIR@/tty\"; set = \"%s\";\n"
	 "    type = \"number\"; min = 5;\n    max = 5; }\n);\n",
	 4, "\"max\" (5) must be greater than \"min\" (5)"},
	{"options on a switch",
	 "actuators = (\n  { name = \"l\"; driver = \"gpio\"; line = 1;\n    options = [\"a\"]; }\n);\n",
	 3, "\"options\" applies only to type \"enum\""},
	{"initial not a switch payload",
	 "actuators = (\n  { name = \"l\"; driver = \"gpio\"; line = 1;\n    initial = \"on\"; }\n);\n",
	 3, "\"initial\" must be \"ON\" or \"OFF\""},
	{"safe out of a number's range",
	 "actuators = (\n  { name = \"m\"; driver = \"serial\"; port = \"@DIR@/tty\"; set = \"%s\";\n"
	 "    type = \"number\"; min = 0; max = 10;\n    safe = \"11\"; }\n);\n",
	 4, "\"safe\" must be a number between 0 and 10"},
	{"serial switch without an off template",
	 "actuators = (\n  { name = \"s\"; driver = \"serial\"; port = \"@DIR@/tty\"; on = \"1\"; }\n);\n",
	 2, "actuator \"s\" needs \"off\""},
	{"serial actuator on a missing port",
	 "actuators = (\n  { name = \"s\"; driver = \"serial\"; on = \"1\"; off = \"0\";\n"
	 "    port = \"/nonexistent/ttyY\"; }\n);\n",
	 3, "actuator \"s\": port /nonexistent/ttyY does not exist"},
	{"gpio actuator with an empty chip",
	 "actuators = (\n  { name = \"l\"; driver = \"gpio\"; line = 1;\n    chip = \"\"; }\n);\n",
	 3, "actuator \"l\": \"chip\" must not be empty"},
	{"gpio line out of range",
	 "actuators = (\n  { name = \"l\"; driver = \"gpio\";\n    line = 70000; }\n);\n",
	 3, "\"line\" must be between 0 and 65535"},
	{"gpio active_low not a boolean",
	 "actuators = (\n  { name = \"l\"; driver = \"gpio\"; line = 1;\n    active_low = 1; }\n);\n",
	 3, "\"active_low\" must be a boolean (true or false)"},
	{"serial actuator without port",
	 "actuators = (\n  { name = \"s\"; driver = \"serial\"; on = \"1\"; off = \"0\"; }\n);\n",
	 2, "actuator \"s\" needs \"port\""},
	{"serial actuator at a non-standard baud",
	 "actuators = (\n  { name = \"s\"; driver = \"serial\"; port = \"@DIR@/tty\"; on = \"1\"; off = \"0\";\n"
	 "    baud = 12345; }\n);\n",
	 3, "\"baud\" 12345 is not a standard rate"},
	{"on/off templates on a number",
	 "actuators = (\n  { name = \"m\"; driver = \"serial\"; port = \"@DIR@/tty\"; type = \"number\";\n"
	 "    min = 0; max = 1;\n    on = \"1\"; }\n);\n",
	 4, "\"on\" applies only to type \"switch\" (use \"set\")"},
	{"set template on a switch",
	 "actuators = (\n  { name = \"s\"; driver = \"serial\"; port = \"@DIR@/tty\";\n    set = \"x\"; }\n);\n",
	 3, "\"set\" applies only to types \"number\" and \"enum\" (use \"on\" and \"off\")"},
	{"serial reply not a string",
	 "actuators = (\n  { name = \"s\"; driver = \"serial\"; port = \"@DIR@/tty\"; on = \"1\"; off = \"0\";\n"
	 "    reply = 5; }\n);\n",
	 3, "\"reply\" must be a string"},
	{"reply timeout out of range",
	 "actuators = (\n  { name = \"s\"; driver = \"serial\"; port = \"@DIR@/tty\"; on = \"1\"; off = \"0\";\n"
	 "    reply_timeout_ms = 0; }\n);\n",
	 3, "\"reply_timeout_ms\" must be between 1 and 60000"},
	{"max_on_s on a number",
	 "actuators = (\n  { name = \"m\"; driver = \"serial\"; port = \"@DIR@/tty\"; set = \"%s\";\n"
	 "    type = \"number\"; min = 0; max = 1;\n    max_on_s = 5; }\n);\n",
	 4, "\"max_on_s\" applies only to type \"switch\""},
	{"a device and a serial actuator that set different rates for one line",
	 "devices = ( { name = \"d\"; driver = \"lines\"; port = \"@DIR@/tty\";\n  baud = 115200; } );\n"
	 "actuators = (\n  { name = \"s\"; driver = \"serial\"; port = \"@DIR@/tty\"; on = \"1\"; off = \"0\";\n"
	 "    baud = 9600; }\n);\n",
	 5, "actuator \"s\" sets baud = 9600 on @DIR@/tty, but device \"d\" (line 2) sets baud = 115200: the "
	    "devices and actuators of one line must agree"},
	{"two Modbus slaves that set different parities",
	 "devices = (\n  { name = \"m1\"; driver = \"modbus\"; port = \"@DIR@/tty\"; slave = 1; parity = \"even\";\n"
	 "    registers = ( { name = \"a\"; address = 0; } ); },\n"
	 "  { name = \"m2\"; driver = \"modbus\"; port = \"@DIR@/tty\"; slave = 2; parity = \"none\";\n"
	 "    registers = ( { name = \"a\"; address = 0; } ); } );\n",
	 4, "device \"m2\" sets parity = \"none\" on @DIR@/tty, but device \"m1\" (line 2) sets parity = \"even\""},
	{"defaults that disagree: a Modbus slave (8E1) and a serial actuator (8N1)",
	 "devices = (\n  { name = \"m\"; driver = \"modbus\"; port = \"@DIR@/tty\"; slave = 1;\n"
	 "    registers = ( { name = \"a\"; address = 0; } ); } );\n"
	 "actuators = (\n  { name = \"s\"; driver = \"serial\"; port = \"@DIR@/tty\"; on = \"1\"; off = \"0\"; }\n);\n",
	 5, "actuator \"s\" (serial) defaults to parity = \"none\" on @DIR@/tty, but device \"m\" (line 2, modbus) to "
	    "parity = \"even\": set parity on one of them"},
	{"two devices reading the stream of one line",
	 "devices = (\n  { name = \"a\"; driver = \"lines\"; port = \"@DIR@/tty\"; },\n"
	 "  { name = \"b\"; driver = \"nmea\"; port = \"@DIR@/tty\"; baud = 9600; } );\n",
	 3, "device \"b\" (nmea) and device \"a\" (line 2, lines) would both read the data stream of @DIR@/tty"},
	{"one port under two names",
	 "devices = (\n  { name = \"a\"; driver = \"lines\"; port = \"@DIR@/tty\"; },\n"
	 "  { name = \"b\"; driver = \"mhz19\"; port = \"@DIR@/../@BASE@/tty\"; } );\n",
	 3, "device \"b\" names @DIR@/../@BASE@/tty, which is @DIR@/tty of device \"a\" (line 2): name one port the "
	    "same way in every entry"},
	{"data_bits 9", DEV_A "    data_bits = 9; }\n);\n", 3, "\"data_bits\" must be 7 or 8"},
	{"parity mark", DEV_A "    parity = \"mark\"; }\n);\n", 3, "\"parity\" must be one of \"none\", \"even\", \"odd\""},
	{"stop_bits 3", DEV_A "    stop_bits = 3; }\n);\n", 3, "\"stop_bits\" must be 1 or 2"},
	{"framing on an I2C device", "devices = (\n  { name = \"e\"; driver = \"bme280\"; address = 0x76;\n    parity = \"even\"; }\n);\n",
	 3, "\"parity\" does not apply to driver \"bme280\""},
	{"two relays on one GPIO line",
	 "actuators = (\n  { name = \"a\"; driver = \"gpio\"; line = 4; },\n"
	 "  { name = \"b\"; driver = \"gpio\"; line = 4; topic = \"b2\"; }\n);\n",
	 3, "actuator \"b\" uses gpiochip0 line 4, which actuator \"a\" (line 2) already uses"},
	{"filter: unknown name",
	 DEV_A "    readings = ( { field = \"t\";\n      filters = (\n        { median = { window_size = 3; }; },\n        { medain = { window_size = 3; }; }\n      ); } ); }\n);\n",
	 6, "unknown filter \"medain\""},
	{"filter: two in one entry",
	 DEV_A "    readings = ( { field = \"t\";\n      filters = (\n        { median = { window_size = 3; }; },\n        { median = { window_size = 3; }; delta = 1; }\n      ); } ); }\n);\n",
	 6, "each filter is a group with one filter in it"},
	{"filter: median window 0",
	 DEV_A "    readings = ( { field = \"t\";\n      filters = (\n        { median = { window_size = 3; }; },\n        { median = { window_size = 0; }; }\n      ); } ); }\n);\n",
	 6, "\"window_size\" must be between 1 and 1000"},
	{"filter: median send_first_at beyond send_every",
	 DEV_A "    readings = ( { field = \"t\";\n      filters = (\n        { median = { window_size = 3; }; },\n        { median = { send_every = 2; send_first_at = 3; }; }\n      ); } ); }\n);\n",
	 6, "\"send_first_at\" (3) must not exceed \"send_every\" (2)"},
	{"filter: ema alpha and time_constant",
	 DEV_A "    readings = ( { field = \"t\";\n      filters = (\n        { median = { window_size = 3; }; },\n        { exponential_moving_average = { alpha = 0.5; time_constant = 9; }; }\n      ); } ); }\n);\n",
	 6, "give \"alpha\" or \"time_constant\", not both"},
	{"filter: ema alpha 0",
	 DEV_A "    readings = ( { field = \"t\";\n      filters = (\n        { median = { window_size = 3; }; },\n        { exponential_moving_average = { alpha = 0; }; }\n      ); } ); }\n);\n",
	 6, "\"alpha\" must be greater than 0 and at most 1"},
	{"filter: clamp without bounds",
	 DEV_A "    readings = ( { field = \"t\";\n      filters = (\n        { median = { window_size = 3; }; },\n        { clamp = { ignore_out_of_range = true; }; }\n      ); } ); }\n);\n",
	 6, "clamp needs \"min_value\", \"max_value\" or both"},
	{"filter: clamp bounds reversed",
	 DEV_A "    readings = ( { field = \"t\";\n      filters = (\n        { median = { window_size = 3; }; },\n        { clamp = { min_value = 10; max_value = 0; }; }\n      ); } ); }\n);\n",
	 6, "clamp: \"max_value\" (0) is below \"min_value\" (10)"},
	{"filter: filter_out text",
	 DEV_A "    readings = ( { field = \"t\";\n      filters = (\n        { median = { window_size = 3; }; },\n        { filter_out = [ \"85\" ]; }\n      ); } ); }\n);\n",
	 6, "filter_out must be a number"},
	{"filter: calibrate_linear one point",
	 DEV_A "    readings = ( { field = \"t\";\n      filters = (\n        { median = { window_size = 3; }; },\n        { calibrate_linear = ( \"0 -> 1\" ); }\n      ); } ); }\n);\n",
	 6, "calibrate_linear needs at least two points, not 1"},
	{"filter: calibrate_linear bad point",
	 DEV_A "    readings = ( { field = \"t\";\n      filters = (\n        { median = { window_size = 3; }; },\n        { calibrate_linear = ( \"0 -> 1\", \"2 => 3\" ); }\n      ); } ); }\n);\n",
	 6, "\"2 => 3\" is not a point"},
	{"filter: calibrate_linear one measured value",
	 DEV_A "    readings = ( { field = \"t\";\n      filters = (\n        { median = { window_size = 3; }; },\n        { calibrate_linear = ( [ 1.0, 2.0 ], [ 1.0, 3.0 ] ); }\n      ); } ); }\n);\n",
	 6, "the measured values are all the same"},
	{"filter: calibrate_polynomial empty",
	 DEV_A "    readings = ( { field = \"t\";\n      filters = (\n        { median = { window_size = 3; }; },\n        { calibrate_polynomial = [ ]; }\n      ); } ); }\n);\n",
	 6, "needs 1 to 10 numbers, not 0"},
	{"filter: timeout 0",
	 DEV_A "    readings = ( { field = \"t\";\n      filters = (\n        { median = { window_size = 3; }; },\n        { timeout = 0; }\n      ); } ); }\n);\n",
	 6, "timeout must be greater than 0 seconds"},
	{"filter: timeout value",
	 DEV_A "    readings = ( { field = \"t\";\n      filters = (\n        { median = { window_size = 3; }; },\n        { timeout = { timeout = 5; value = \"previous\"; }; }\n      ); } ); }\n);\n",
	 6, "must be \"last\", \"unavailable\" or a number, not \"previous\""},
	{"filter: delta percent",
	 DEV_A "    readings = ( { field = \"t\";\n      filters = (\n        { median = { window_size = 3; }; },\n        { delta = \"five%\"; }\n      ); } ); }\n);\n",
	 6, "delta must be a number or a percentage such as \"5%\", not \"five%\""},
	{"filter: delta negative",
	 DEV_A "    readings = ( { field = \"t\";\n      filters = (\n        { median = { window_size = 3; }; },\n        { delta = -1; }\n      ); } ); }\n);\n",
	 6, "delta must not be negative"},
	{"filter: or empty",
	 DEV_A "    readings = ( { field = \"t\";\n      filters = (\n        { median = { window_size = 3; }; },\n        { or = ( ); }\n      ); } ); }\n);\n",
	 6, "or is a list of filters"},
	{"filter: unknown key",
	 DEV_A "    readings = ( { field = \"t\";\n      filters = (\n        { median = { window_size = 3; }; },\n        { clamp = { min_value = 1; max = 2; }; }\n      ); } ); }\n);\n",
	 6, "unknown key \"max\" in filter \"clamp\""},
	{"actuator topic with '+'",
	 "actuators = (\n  { name = \"l\"; driver = \"gpio\"; line = 1;\n    topic = \"a/+\"; }\n);\n",
	 3, "invalid topic \"a/+\""},
	{"empty payload_offline (a retained empty message deletes)",
	 "gateway: { id = \"gw\";\n  payload_offline = \"\"; };\n",
	 2, "\"payload_offline\" must be 1 to 64 bytes of UTF-8 text"},
	{"payload_online equal to payload_offline",
	 "gateway: { payload_online = \"up\";\n  payload_offline = \"up\"; };\n",
	 2, "\"payload_online\" and \"payload_offline\" must differ"},
	{"status_topic with a wildcard",
	 "gateway: {\n  status_topic = \"tele/#\"; };\n",
	 2, "invalid status_topic \"tele/#\""},
	{"status_topic taken by an actuator",
	 "gateway: { base_topic = \"h\"; status_topic = \"h/relay\"; };\n"
	 "actuators = (\n  { name = \"relay\"; driver = \"gpio\"; line = 1; }\n);\n",
	 3, "\"h/relay\""},
	{"metrics path not *.prom",
	 "metrics: {\n  path = \"/tmp/sensorgate.txt\"; };\n",
	 2, "must name a file ending in \".prom\""},
	{"metrics interval without a path",
	 "metrics: {\n  interval = 5; };\n",
	 2, "\"interval\" in metrics needs \"path\""},
	{"metrics interval 0",
	 "metrics: { path = \"/tmp/x.prom\";\n  interval = 0; };\n",
	 2, "\"interval\""},
	{"health window shorter than its interval",
	 "health: { interval = 60;\n  window = 30; };\n",
	 2, "health \"window\" (30 s) must not be shorter than its \"interval\" (60 s)"},
	{"health key misspelt",
	 "health: {\n  pubish = true; };\n",
	 2, "unknown key \"pubish\" in health"},
	{"health interval 0",
	 "health: { publish = true;\n  interval = 0; };\n",
	 2, "\"interval\""},
	{"a reading on a device's health topic",
	 "health: { publish = true; };\n"
	 "devices = ( { name = \"a\"; driver = \"lines\"; port = \"@DIR@/tty\"; readings = (\n"
	 "  { field = \"t\"; topic = \"a/health\"; } ); } );\n",
	 3, "would publish on sensorgate/a/health, the link quality of device \"a\""},
	{"health publish not a boolean",
	 "health: {\n  publish = \"yes\"; };\n",
	 2, "\"publish\""},
	{"ha_status_topic with a wildcard",
	 "discovery: {\n  ha_status_topic = \"ha/+\"; };\n",
	 2, "invalid ha_status_topic \"ha/+\""},
};

/* The availability keys and the metrics group, as loaded. */
static void test_status_and_metrics(void **state)
{
	struct sg_config *cfg;
	char err[512];

	(void)state;
	assert_int_equal(load_text("gateway: { id = \"gw\"; status_topic = \"tele/gw/LWT\"; payload_online = \"Online\";\n"
	                           "  payload_offline = \"Offline\"; };\n"
	                           "discovery: { prefix = \"ha\"; };\n"
	                           "metrics: { path = \"/run/x/sensorgate.prom\"; interval = 5; };\n",
	                           &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg->status_topic, "tele/gw/LWT");
	assert_string_equal(config_birth_payload(&cfg->mqtt), "Online");
	assert_string_equal(config_will_payload(&cfg->mqtt), "Offline");
	assert_string_equal(cfg->discovery.ha_status_topic, "ha/status"); /* follows the prefix by default */
	assert_string_equal(cfg->metrics.path, "/run/x/sensorgate.prom");
	assert_true(cfg->metrics.interval_s == 5);
	/* health: off by default, sampled every 10 s over 5 minutes */
	assert_false(cfg->health.publish);
	assert_true(cfg->health.interval_s == 10);
	assert_true(cfg->health.window_s == 300);
	config_free(cfg);

	assert_int_equal(load_text("health: { publish = true; interval = 2.5; window = 60; };\n", &cfg, err, sizeof(err)),
	                 0);
	assert_true(cfg->health.publish);
	assert_true(cfg->health.interval_s == 2.5);
	assert_true(cfg->health.window_s == 60);
	config_free(cfg);

	assert_int_equal(load_text("discovery: { ha_status_topic = \"hass/birth\"; };\n", &cfg, err, sizeof(err)), 0);
	assert_string_equal(config_birth_payload(&cfg->mqtt), "online");
	assert_string_equal(config_will_payload(&cfg->mqtt), "offline");
	assert_string_equal(cfg->discovery.ha_status_topic, "hass/birth");
	assert_null(cfg->metrics.path);
	config_free(cfg);
}


static void test_errors(void **state)
{
	(void)state;
	alarm(20); /* a case that blocks (a FIFO opened for reading waits for a writer) fails, not hangs */
	for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
		const struct err_case *c = &err_cases[i];
		struct sg_config *cfg = NULL;
		char err[1024], prefix[PATH_MAX + 32];
		int r = load_text(c->text, &cfg, err, sizeof(err));
		char *msg = expand(c->msg);

		if (c->line > 0)
			snprintf(prefix, sizeof(prefix), "%s:%d: ", conf_path, c->line);
		else
			snprintf(prefix, sizeof(prefix), "%s: ", conf_path);
		if (r != -EINVAL || cfg != NULL || strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, msg)) {
			config_free(cfg);
			fail_msg("case \"%s\": r=%d, got \"%s\", want \"%s...%s\"", c->legend, r, err, prefix, msg);
		}
		free(msg);
	}
	alarm(0);
}

/* replay and time settings; a history_topic without "{topic}" is a prefix */
static void test_replay_and_time(void **state)
{
	struct sg_config *cfg = NULL;
	char err[512];
	(void)state;

	assert_int_equal(load_text("spool: { replay = \"history\"; history_topic = \"backlog\"; };\n"
	                           "time: { trust = \"file\"; sync_file = \"/run/x/synced\"; };\n",
	                           &cfg, err, sizeof(err)), 0);
	assert_true(cfg->spool.replay_history);
	assert_string_equal(cfg->spool.history_topic, "backlog/{topic}");
	assert_false(cfg->spool.props_replays_only);
	assert_true(cfg->time.trust_file_only);
	assert_false(cfg->time.trust_always);
	assert_string_equal(cfg->time.sync_file, "/run/x/synced");
	config_free(cfg);
	assert_int_equal(load_text("spool: { history_topic = \"old/{topic}/h\"; properties = \"replays\"; };\n"
	                           "time: { trust = \"always\"; };\n",
	                           &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg->spool.history_topic, "old/{topic}/h");
	assert_true(cfg->spool.props_replays_only);
	assert_true(cfg->time.trust_always);
	config_free(cfg);
}

static void test_missing_file(void **state)
{
	struct sg_config *cfg = NULL;
	char err[512], want[PATH_MAX + 64];
	int r;

	(void)state;
	r = config_load("/nonexistent/sensorgate.conf", &cfg, err, sizeof(err));
	assert_int_equal(r, -ENOENT);
	assert_null(cfg);
	assert_string_equal(err, "/nonexistent/sensorgate.conf: cannot open: No such file or directory");

	r = config_load(tmpdir, &cfg, err, sizeof(err));
	assert_int_equal(r, -EISDIR);
	snprintf(want, sizeof(want), "%s: cannot open: Is a directory", tmpdir);
	assert_string_equal(err, want);
}

/* The error buffer is optional and never overrun. */
static void test_error_buffer(void **state)
{
	struct sg_config *cfg = NULL;
	char small[8];

	(void)state;
	assert_int_equal(load_text("bogus = 1;\n", &cfg, NULL, 0), -EINVAL);
	memset(small, 'x', sizeof(small));
	assert_int_equal(load_text("bogus = 1;\n", &cfg, small, sizeof(small)), -EINVAL);
	assert_int_equal(small[sizeof(small) - 1], '\0');
	assert_int_equal(strlen(small), sizeof(small) - 1);
}

/* --- successful loads ------------------------------------------------------ */

static void test_defaults(void **state)
{
	struct sg_config *cfg;
	char err[512], want[512];
	const struct sg_device_cfg *d;

	(void)state;
	assert_int_equal(load_text("devices = ( { name = \"d\"; driver = \"lines\"; port = \"@DIR@/tty\"; } );\n",
	                           &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg->path, conf_path);
	assert_true(config_name_valid(cfg->id));
	assert_string_equal(cfg->base_topic, "sensorgate");
	snprintf(want, sizeof(want), "sensorgate/gateway/%s/status", cfg->id);
	assert_string_equal(cfg->status_topic, want);
	assert_int_equal(cfg->payload, SG_PAYLOAD_PLAIN);

	assert_int_equal(cfg->mqtt.n_brokers, 1);
	assert_string_equal(cfg->mqtt.brokers[0], "mqtt://localhost:1883");
	assert_int_equal(cfg->mqtt.protocol, 5);
	assert_int_equal(cfg->mqtt.keepalive, 30);
	assert_false(cfg->mqtt.clean_session);
	snprintf(want, sizeof(want), "sensorgate-%s", cfg->id);
	assert_string_equal(cfg->mqtt.client_id, want);
	assert_null(cfg->mqtt.username);
	assert_null(cfg->mqtt.password);
	assert_null(cfg->mqtt.ca_file);
	assert_null(cfg->mqtt.cert_file);
	assert_false(cfg->mqtt.tls_insecure);
	assert_string_equal(cfg->mqtt.where[SG_MQTT_KEY_GROUP], conf_path); /* no mqtt group: the file */
	for (int k = SG_MQTT_KEY_GROUP + 1; k < SG_MQTT_KEY_N; k++)
		assert_null(cfg->mqtt.where[k]);
	assert_true(cfg->mqtt.reconnect_min_s == 1.0);
	assert_true(cfg->mqtt.reconnect_max_s == 60.0);
	assert_int_equal(cfg->mqtt.max_inflight, 100);

	assert_null(cfg->spool.path);
	assert_int_equal(cfg->spool.max_size_mb, 64);
	assert_true(cfg->spool.sync_full);
	assert_false(cfg->spool.drop_new);
	assert_true(cfg->spool.stats_interval_s == 60.0);
	assert_true(cfg->spool.commit_interval_s == 0.0);
	assert_false(cfg->spool.replay_history);
	assert_string_equal(cfg->spool.history_topic, "{topic}/history");
	assert_false(cfg->spool.props_replays_only);
	assert_false(cfg->time.trust_always);
	assert_false(cfg->time.trust_file_only);
	assert_null(cfg->time.sync_file);
	assert_false(cfg->discovery.enabled);
	assert_string_equal(cfg->discovery.prefix, "homeassistant");

	assert_int_equal(cfg->n_devices, 1);
	d = &cfg->devices[0];
	assert_string_equal(d->name, "d");
	assert_string_equal(d->driver->name, "lines");
	assert_non_null(d->opts);
	assert_int_equal(d->baud, 9600);
	assert_int_equal(d->address, -1);
	assert_null(d->bus);
	assert_null(d->usb_serial);
	assert_true(d->interval_s == 10.0);
	assert_true(d->expire_after_s == 0.0);
	assert_true(d->all_fields);
	assert_int_equal(d->n_readings, 0);
	assert_null(d->readings);
	assert_null(d->defaults.topic);
	assert_null(d->defaults.field);
	assert_int_equal(d->defaults.qos, 0);
	assert_true(d->defaults.retain);
	assert_int_equal(d->defaults.payload, SG_PAYLOAD_PLAIN);
	assert_int_equal(d->defaults.offline, SG_OFFLINE_SPOOL);
	assert_true(d->defaults.scale == 1.0);
	assert_int_equal(d->defaults.round, -1);
	assert_int_equal(d->defaults.average, 0);
	assert_int_equal(d->line, 1);
	assert_int_equal(cfg->n_actuators, 0);
	config_free(cfg);
}

static void test_empty_file(void **state)
{
	struct sg_config *cfg;
	char err[512];

	(void)state;
	assert_int_equal(load_text("# nothing\n", &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg->n_devices, 0);
	assert_int_equal(cfg->n_actuators, 0);
	assert_null(cfg->devices);
	config_free(cfg);
	config_free(NULL);
}

static const char full_text[] =
	"gateway: { id = \"pi-lr\"; base_topic = \"home/ground\"; payload = \"plain\"; };\n"     /* 1 */
	"mqtt: {\n"                                                                               /* 2 */
	"  brokers = ( \"mqtt://localhost:1883\", \"mqtt://[::1]:8883\", \"mqtt://10.0.0.1\" );\n"
	"  protocol = \"3.1.1\"; keepalive = 45; clean_session = true; client_id = \"gw-7\";\n"   /* 4 */
	"  username = \"gw\"; password_file = \"@DIR@/password\";\n"                              /* 5 */
	"  tls: { ca_file = \"@DIR@/ca.pem\"; ca_path = \"@DIR@\"; cert_file = \"@DIR@/cert.pem\";\n"
	"         key_file = \"@DIR@/key.pem\"; insecure = true; };\n"                           /* 7 */
	"  reconnect_min = 0.5; reconnect_max = 30; max_inflight = 20;\n"                        /* 8 */
	"};\n"                                                                                    /* 9 */
	"spool: { path = \"@DIR@/spool.db\"; max_size_mb = 16; sync = \"normal\";\n"             /* 10 */
	"         when_full = \"drop_new\"; stats_interval = 0; commit_interval = 2.5; };\n"     /* 11 */
	"discovery: { enabled = true; prefix = \"ha\"; };\n"                                     /* 12 */
	"devices = (\n"                                                                           /* 13 */
	"  { name = \"arduino\"; driver = \"lines\"; port = \"@DIR@/tty\"; baud = 115200;\n"     /* 14 */
	"    format = \"kv\"; interval = 5; expire_after = 120; qos = 1; retain = false;\n"     /* 15 */
	"    payload = \"json\"; offline = \"drop\";\n"                                          /* 16 */
	"    readings = (\n"                                                                      /* 17 */
	"      { field = \"t\"; topic = \"livingroom/temperature\"; unit = \"°C\"; qos = 2;\n"   /* 18 */
	"        round = 1; deadband = 0.1; },\n"                                                /* 19 */
	"      { field = \"h\"; payload = \"plain\"; offline = \"last\"; retain = true;\n"       /* 20 */
	"        scale = 0.1; offset = -2; throttle = 5; heartbeat = 300; average = 4;\n"       /* 21 */
	"        device_class = \"humidity\"; },\n"                                              /* 22 */
	"      { field = \"a.b\"; }\n"                                                            /* 23 */
	"    ); },\n"                                                                             /* 24 */
	"  { name = \"row\"; driver = \"lines\"; usb_serial = \"A6008isP\";\n"                   /* 25 */
	"    format = \"csv\"; columns = (\"x\", \"y\"); separator = \";\"; }\n"                 /* 26 */
	");\n"                                                                                    /* 27 */
	"actuators = (\n"                                                                         /* 28 */
	"  { name = \"hall-light\"; driver = \"gpio\"; line = 17; topic = \"hall/light\";\n"     /* 29 */
	"    initial = \"OFF\"; safe = \"OFF\"; active_low = true; max_on_s = 600;\n"           /* 30 */
	"    interlock = \"hall\"; pulse_ms = 0; },\n"                                           /* 31 */
	"  { name = \"fan\"; driver = \"serial\"; port = \"@DIR@/tty2\"; baud = 19200;\n"         /* 32 */
	"    type = \"number\"; min = 0; max = 100; step = 5; set = \"F%d\\r\\n\\x41\";\n"      /* 33 */
	"    reply = \"OK\"; reply_timeout_ms = 300; initial = \"0\"; },\n"                     /* 34 */
	"  { name = \"mode\"; driver = \"serial\"; port = \"@DIR@/tty3\"; type = \"enum\";\n"     /* 35 */
	"    options = [\"auto\", \"manual\"]; set = \"M%s\\n\"; qos = 2; accept_retained = true;\n"
	"    min_interval_ms = 250; safe = \"auto\"; },\n"                                       /* 37 */
	"  { name = \"pump\"; driver = \"serial\"; port = \"@DIR@/tty4\"; on = \"P1\\n\";\n"      /* 38 */
	"    off = \"P0\\n\"; payload_on = \"1\"; payload_off = \"0\"; }\n"                      /* 39 */
	");\n";

/* Entries naming one port share a line: the settings one names apply to all, the drivers' defaults otherwise. */
static void test_shared_lines(void **state)
{
	static const char text[] =
		"devices = (\n"
		"  { name = \"arduino\"; driver = \"lines\"; port = \"@DIR@/tty\"; baud = 115200; },\n"
		"  { name = \"m1\"; driver = \"modbus\"; port = \"@DIR@/tty2\"; slave = 1;\n"
		"    registers = ( { name = \"a\"; address = 0; } ); },\n"
		"  { name = \"m2\"; driver = \"modbus\"; port = \"@DIR@/tty2\"; slave = 2; stop_bits = 2;\n"
		"    registers = ( { name = \"a\"; address = 0; } ); },\n"
		"  { name = \"p1\"; driver = \"dsmr\"; port = \"@DIR@/tty3\"; baud = 9600; } );\n"
		"actuators = (\n"
		"  { name = \"r1\"; driver = \"serial\"; port = \"@DIR@/tty\"; on = \"r1=1\\n\"; off = \"r1=0\\n\"; },\n"
		"  { name = \"r2\"; driver = \"serial\"; port = \"@DIR@/tty\"; on = \"r2=1\\n\"; off = \"r2=0\\n\"; },\n"
		"  { name = \"coil\"; driver = \"modbus\"; port = \"@DIR@/tty2\"; slave = 2; address = 3; } );\n";
	struct sg_config *cfg;
	char err[512];

	(void)state;
	if (load_text(text, &cfg, err, sizeof(err)) != 0)
		fail_msg("shared lines: %s", err);
	assert_int_equal(cfg->n_lines, 3);
	/* the Arduino's line: its baud rate for the relays too */
	assert_int_equal(cfg->lines[0].n_devices, 1);
	assert_int_equal(cfg->lines[0].n_actuators, 2);
	assert_int_equal(cfg->lines[0].settings.baud, 115200);
	assert_int_equal(cfg->actuators[0].serial_line, 0);
	assert_int_equal(cfg->actuators[1].line_settings.baud, 115200);
	assert_int_equal(cfg->actuators[1].line_settings.framing.parity, 'N');
	/* the RS-485 bus: Modbus's 8E1, the stop bits one entry names */
	assert_int_equal(cfg->lines[1].n_devices, 2);
	assert_int_equal(cfg->lines[1].n_actuators, 1);
	assert_int_equal(cfg->lines[1].settings.baud, 9600);
	assert_int_equal(cfg->lines[1].settings.framing.parity, 'E');
	assert_int_equal(cfg->lines[1].settings.framing.stop_bits, 2);
	assert_int_equal(cfg->devices[1].framing.stop_bits, 2);
	assert_int_equal(cfg->actuators[2].serial_line, 1);
	assert_int_equal(cfg->actuators[2].line_settings.framing.stop_bits, 2);
	/* DSMR 2.2 at 9600: 7E1 */
	assert_int_equal(cfg->devices[3].serial_line, 2);
	assert_int_equal(cfg->devices[3].framing.data_bits, 7);
	assert_int_equal(cfg->devices[3].framing.parity, 'E');
	config_free(cfg);
}

static void test_full(void **state)
{
	struct sg_config *cfg;
	char err[512];
	const struct sg_device_cfg *d;
	const struct sg_reading_cfg *rc;
	const struct sg_actuator_cfg *a;
	char hw[512], want[512];

	(void)state;
	write_aux("password", "s3cret\n");
	if (load_text(full_text, &cfg, err, sizeof(err)) != 0)
		fail_msg("full config: %s", err);

	assert_string_equal(cfg->id, "pi-lr");
	assert_string_equal(cfg->base_topic, "home/ground");
	assert_string_equal(cfg->status_topic, "home/ground/gateway/pi-lr/status");

	assert_int_equal(cfg->mqtt.n_brokers, 3);
	assert_string_equal(cfg->mqtt.brokers[1], "mqtt://[::1]:8883");
	assert_string_equal(cfg->mqtt.brokers[2], "mqtt://10.0.0.1");
	assert_int_equal(cfg->mqtt.protocol, 4);
	assert_int_equal(cfg->mqtt.keepalive, 45);
	assert_true(cfg->mqtt.clean_session);
	assert_string_equal(cfg->mqtt.client_id, "gw-7");
	assert_string_equal(cfg->mqtt.username, "gw");
	assert_string_equal(cfg->mqtt.password, "s3cret");
	assert_non_null(strstr(cfg->mqtt.password_file, "/password"));
	assert_non_null(strstr(cfg->mqtt.ca_file, "/ca.pem"));
	assert_string_equal(cfg->mqtt.ca_path, tmpdir);
	assert_non_null(strstr(cfg->mqtt.cert_file, "/cert.pem"));
	assert_non_null(strstr(cfg->mqtt.key_file, "/key.pem"));
	assert_true(cfg->mqtt.tls_insecure);
	{
		static const struct { enum sg_mqtt_key k; int line; } at[] = {
			{SG_MQTT_KEY_GROUP, 2}, {SG_MQTT_KEY_BROKERS, 3}, {SG_MQTT_KEY_CLIENT_ID, 4},
			{SG_MQTT_KEY_USERNAME, 5}, {SG_MQTT_KEY_PASSWORD_FILE, 5}, {SG_MQTT_KEY_TLS, 6},
			{SG_MQTT_KEY_CA_FILE, 6}, {SG_MQTT_KEY_CA_PATH, 6}, {SG_MQTT_KEY_CERT_FILE, 6},
			{SG_MQTT_KEY_KEY_FILE, 7}, {SG_MQTT_KEY_INSECURE, 7},
		};
		for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
			snprintf(want, sizeof(want), "%.400s:%d", conf_path, at[i].line);
			assert_string_equal(cfg->mqtt.where[at[i].k], want);
		}
	}
	assert_true(cfg->mqtt.reconnect_min_s == 0.5);
	assert_true(cfg->mqtt.reconnect_max_s == 30.0);
	assert_int_equal(cfg->mqtt.max_inflight, 20);

	assert_non_null(strstr(cfg->spool.path, "/spool.db"));
	assert_int_equal(cfg->spool.max_size_mb, 16);
	assert_false(cfg->spool.sync_full);
	assert_true(cfg->spool.drop_new);
	assert_true(cfg->spool.stats_interval_s == 0.0);
	assert_true(cfg->spool.commit_interval_s == 2.5);
	assert_true(cfg->discovery.enabled);
	assert_string_equal(cfg->discovery.prefix, "ha");

	assert_int_equal(cfg->n_devices, 2);
	d = &cfg->devices[0];
	assert_int_equal(d->line, 14);
	assert_int_equal(d->baud, 115200);
	assert_true(d->interval_s == 5.0);
	assert_true(d->expire_after_s == 120.0);
	assert_false(d->all_fields);
	assert_int_equal(d->defaults.qos, 1);
	assert_false(d->defaults.retain);
	assert_int_equal(d->defaults.payload, SG_PAYLOAD_JSON);
	assert_int_equal(d->defaults.offline, SG_OFFLINE_DROP);
	assert_int_equal(d->n_readings, 3);

	rc = &d->readings[0];
	assert_string_equal(rc->field, "t");
	assert_string_equal(rc->topic, "home/ground/livingroom/temperature");
	assert_string_equal(rc->unit, "°C");
	assert_int_equal(rc->qos, 2);
	assert_false(rc->retain);                 /* from the device */
	assert_int_equal(rc->payload, SG_PAYLOAD_JSON);
	assert_int_equal(rc->round, 1);
	assert_true(rc->deadband == 0.1);
	assert_true(rc->scale == 1.0);
	assert_int_equal(rc->line, 18);

	rc = &d->readings[1];
	assert_string_equal(rc->topic, "home/ground/arduino/h");
	assert_null(rc->unit);
	assert_int_equal(rc->qos, 1);             /* from the device */
	assert_true(rc->retain);
	assert_int_equal(rc->payload, SG_PAYLOAD_PLAIN);
	assert_int_equal(rc->offline, SG_OFFLINE_LAST);
	assert_true(rc->scale == 0.1);
	assert_true(rc->offset == -2.0);
	assert_true(rc->throttle_s == 5.0);
	assert_true(rc->heartbeat_s == 300.0);
	assert_int_equal(rc->average, 4);
	assert_int_equal(rc->round, -1);
	assert_string_equal(rc->device_class, "humidity");

	rc = &d->readings[2];
	assert_string_equal(rc->field, "a.b");
	assert_string_equal(rc->topic, "home/ground/arduino/a.b");
	assert_null(rc->device_class);

	d = &cfg->devices[1];
	assert_string_equal(d->name, "row");
	assert_null(d->port);
	assert_string_equal(d->usb_serial, "A6008isP");
	assert_true(d->all_fields);
	assert_int_equal(d->defaults.qos, 0);
	assert_true(d->defaults.retain);
	assert_int_equal(d->defaults.payload, SG_PAYLOAD_PLAIN);
	assert_non_null(d->opts);

	assert_int_equal(cfg->n_actuators, 4);
	a = &cfg->actuators[0];
	assert_string_equal(a->name, "hall-light");
	assert_string_equal(a->driver, "gpio");
	assert_int_equal(a->kind, SG_ACT_SWITCH);
	assert_string_equal(a->topic, "home/ground/hall/light");
	assert_string_equal(a->command_topic, "home/ground/hall/light/set");
	assert_string_equal(a->error_topic, "home/ground/hall/light/error");
	assert_int_equal(a->qos, 1);
	assert_false(a->accept_retained);
	assert_string_equal(a->payload_on, "ON");
	assert_string_equal(a->payload_off, "OFF");
	assert_string_equal(a->initial, "OFF");
	assert_string_equal(a->safe, "OFF");
	/* the driver's own keys are the driver's: seen through its describe() */
	assert_ptr_equal(a->drv, &sg_act_gpio);
	assert_non_null(a->opts);
	a->drv->describe(a->opts, hw, sizeof(hw));
	assert_string_equal(hw, "gpio gpiochip0 line 17 active-low");
	assert_true(a->max_on_s == 600.0);
	assert_int_equal(a->pulse_ms, 0);
	assert_string_equal(a->interlock, "hall");
	assert_int_equal(a->line, 29);

	a = &cfg->actuators[1];
	assert_string_equal(a->topic, "home/ground/fan");
	assert_string_equal(a->command_topic, "home/ground/fan/set");
	assert_int_equal(a->kind, SG_ACT_NUMBER);
	assert_true(a->min == 0.0 && a->max == 100.0 && a->step == 5.0);
	assert_ptr_equal(a->drv, &sg_act_serial);
	a->drv->describe(a->opts, hw, sizeof(hw));
	/* escapes resolved once, by libconfig, and shown escaped (a backslash left in would show as "\\\\") */
	snprintf(want, sizeof(want),
	         "serial %s/tty2 19200 8N1, set \"F%%d\\r\\nA\", reply \"OK\" awaited, timeout 300 ms", tmpdir);
	assert_string_equal(hw, want);
	assert_string_equal(a->initial, "0");

	a = &cfg->actuators[2];
	assert_int_equal(a->kind, SG_ACT_ENUM);
	assert_int_equal(a->n_options, 2);
	assert_string_equal(a->options[1], "manual");
	assert_int_equal(a->qos, 2);
	assert_true(a->accept_retained);
	assert_int_equal(a->min_interval_ms, 250);
	a->drv->describe(a->opts, hw, sizeof(hw));
	snprintf(want, sizeof(want), "serial %s/tty3 9600 8N1, set \"M%%s\\n\", timeout 1000 ms", tmpdir);
	assert_string_equal(hw, want);   /* default baud and timeout, no reply awaited */

	a = &cfg->actuators[3];
	a->drv->describe(a->opts, hw, sizeof(hw));
	snprintf(want, sizeof(want), "serial %s/tty4 9600 8N1, on \"P1\\n\", off \"P0\\n\", timeout 1000 ms", tmpdir);
	assert_string_equal(hw, want);   /* no "set" */
	assert_string_equal(a->payload_on, "1");
	config_free(cfg);
}

/* password_file: first line only, line end stripped, empty file = empty password. */
static void test_password_file(void **state)
{
	static const struct {
		const char *content, *want;
	} cases[] = {
		{"pw\n", "pw"},
		{"pw", "pw"},
		{"pw\r\n", "pw"},
		{"first\nsecond\n", "first"},
		{" spaced out \n", " spaced out "},
		{"", ""},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sg_config *cfg;
		char err[512];

		write_aux("password", cases[i].content);
		if (load_text("mqtt: { username = \"u\"; password_file = \"@DIR@/password\"; };\n",
		              &cfg, err, sizeof(err)) != 0)
			fail_msg("password case %zu: %s", i, err);
		assert_string_equal(cfg->mqtt.password, cases[i].want);
		config_free(cfg);
	}
}

/* MQTT carries at most 65535 password bytes: that many are read, one more is refused, and so is a NUL. */
static void test_password_file_bounds(void **state)
{
	static const char conf[] = "mqtt: { username = \"u\"; password_file = \"@DIR@/password\"; };\n";
	struct sg_config *cfg;
	char err[512], *big;
	const size_t max = 65535;

	(void)state;
	big = malloc(max + 4);
	assert_non_null(big);
	memset(big, 'x', max + 1);
	memcpy(big + max, "\r\n", 3); /* exactly 65535 bytes, CRLF */
	write_aux("password", big);
	if (load_text(conf, &cfg, err, sizeof(err)) != 0)
		fail_msg("65535 bytes: %s", err);
	assert_int_equal(strlen(cfg->mqtt.password), max);
	config_free(cfg);

	memset(big, 'x', max + 1);
	big[max + 1] = '\0'; /* 65536 bytes, no line end */
	write_aux("password", big);
	assert_int_equal(load_text(conf, &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":1: cannot read password_file "));
	assert_non_null(strstr(err, "password: the password is longer than 65535 bytes"));
	assert_null(cfg);

	memcpy(big, "pw\nsecond line may be long: ", 29); /* only the first line counts */
	write_aux("password", big);
	if (load_text(conf, &cfg, err, sizeof(err)) != 0)
		fail_msg("short first line: %s", err);
	assert_string_equal(cfg->mqtt.password, "pw");
	config_free(cfg);
	free(big);

	{
		char path[PATH_MAX];
		FILE *f;

		snprintf(path, sizeof(path), "%s/password", tmpdir);
		f = fopen(path, "w");
		assert_non_null(f);
		assert_int_equal(fwrite("ab\0cd\n", 1, 6, f), 6);
		assert_int_equal(fclose(f), 0);
	}
	assert_int_equal(load_text(conf, &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "the password contains a NUL byte"));
}

/* Integers are fine where a number is wanted; "" TLS paths count as unset. */
static void test_lenient_forms(void **state)
{
	struct sg_config *cfg;
	char err[512];

	(void)state;
	if (load_text("mqtt: { brokers = \"mqtt://broker.example.org:1884\";\n"
	              "  tls: { ca_file = \"\"; cert_file = \"\"; key_file = \"\"; }; };\n"
	              "devices = ( { name = \"d\"; driver = \"lines\"; port = \"@DIR@/tty\"; interval = 10;\n"
	              "  readings = ( { field = \"t\"; scale = 2; } ); } );\n",
	              &cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(cfg->mqtt.n_brokers, 1);
	assert_string_equal(cfg->mqtt.brokers[0], "mqtt://broker.example.org:1884");
	assert_null(cfg->mqtt.ca_file);
	assert_null(cfg->mqtt.cert_file);
	assert_true(cfg->devices[0].interval_s == 10.0);
	assert_true(cfg->devices[0].readings[0].scale == 2.0);
	config_free(cfg);
}

/* @include resolves against the config file's directory, whatever the cwd. */
static void test_include(void **state)
{
	struct sg_config *cfg;
	char err[1024], cwd[PATH_MAX], want[2 * PATH_MAX + 200];

	(void)state;
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir("/"), 0);
	write_aux("inc.conf", "devices = ( { name = \"inc\"; driver = \"lines\"; usb_serial = \"X\"; } );\n");
	if (load_text("gateway: { id = \"gw\"; };\n@include \"inc.conf\"\n", &cfg, err, sizeof(err)) != 0) {
		assert_int_equal(chdir(cwd), 0);
		fail_msg("%s", err);
	}
	assert_int_equal(cfg->n_devices, 1);
	assert_string_equal(cfg->devices[0].name, "inc");
	config_free(cfg);

	/* a clash across files names the other file */
	write_aux("inc.conf", "devices = ( { name = \"inc\"; driver = \"lines\"; usb_serial = \"X\";\n"
	          "  readings = ( { field = \"t\"; topic = \"x\"; } ); } );\n");
	assert_int_equal(load_text("@include \"inc.conf\"\nactuators = (\n"
	                           "  { name = \"x\"; driver = \"gpio\"; line = 1; }\n);\n", &cfg, err, sizeof(err)),
	                 -EINVAL);
	snprintf(want, sizeof(want), "%s:3: topic \"sensorgate/x\" of actuator \"x\" is already used by "
	         "device \"inc\" field \"t\" at %s/inc.conf:2", conf_path, tmpdir);
	if (strcmp(err, want) != 0) {
		assert_int_equal(chdir(cwd), 0);
		fail_msg("got \"%s\", want \"%s\"", err, want);
	}

	/* errors inside an included file name that file */
	write_aux("inc.conf", "\ndevices = ( { name = \"inc\"; driver = \"nope\"; } );\n");
	assert_int_equal(load_text("@include \"inc.conf\"\n", &cfg, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s/inc.conf:2: unknown driver", tmpdir);
	assert_int_equal(chdir(cwd), 0);
	assert_non_null(strstr(err, want));
}

static void test_name_valid(void **state)
{
	static const struct {
		const char *s;
		bool ok;
	} cases[] = {
		{"arduino", true}, {"env_2", true}, {"hall-light", true}, {"A", true},
		{"", false}, {"a b", false}, {"a/b", false}, {"a.b", false}, {"a+", false}, {"a#", false},
		{"\xc3\xa9t\xc3\xa9", false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (config_name_valid(cases[i].s) != cases[i].ok)
			fail_msg("config_name_valid(\"%s\") != %d", cases[i].s, cases[i].ok);
	assert_false(config_name_valid(NULL));
}

static void test_topic_valid(void **state)
{
	static char long_topic[258];
	static const struct {
		const char *t;
		bool ok;
	} cases[] = {
		{"a", true}, {"home/living room/t", true}, {"a/b.c/d-e", true}, {"h\xc3\xa9llo/t", true},
		{"", false}, {"a/+/b", false}, {"a/#", false}, {"+", false}, {"a//b", false},
		{"/a", false}, {"a/", false}, {"$SYS/x", false}, {"a\tb", false},
		{"\xc3(", false},          /* broken UTF-8 */
		{"\xed\xa0\x80", false},   /* surrogate */
		{"\xc0\xaf", false},       /* overlong */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (config_topic_valid(cases[i].t) != cases[i].ok)
			fail_msg("config_topic_valid(\"%s\") != %d", cases[i].t, cases[i].ok);
	assert_false(config_topic_valid(NULL));
	memset(long_topic, 'a', 256);
	long_topic[256] = '\0';
	assert_true(config_topic_valid(long_topic));
	long_topic[256] = 'a';
	long_topic[257] = '\0';
	assert_false(config_topic_valid(long_topic));
}

/* --- shipped files ---------------------------------------------------------- */

/* REL (repo-relative) from the cwd, or from this source file's location. */
static void source_path(char *buf, size_t len, const char *rel)
{
	const char *slash;

	if (access(rel, R_OK) == 0) {
		snprintf(buf, len, "%s", rel);
		return;
	}
	slash = strrchr(__FILE__, '/');
	snprintf(buf, len, "%.*s/../../%s", slash ? (int)(slash - __FILE__) : 1, slash ? __FILE__ : ".", rel);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		fail_msg("cannot open %s", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void test_example_conf(void **state)
{
	struct sg_config *cfg = NULL;
	char path[PATH_MAX], err[512];

	(void)state;
	source_path(path, sizeof(path), "config/sensorgate.conf");
	if (config_load(path, &cfg, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_true(cfg->n_devices >= 1);
	assert_non_null(cfg->devices[0].usb_serial);
	config_free(cfg);
}

/* demo.conf names the demo's pty; point it at our stand-in port instead. */
static void test_demo_conf(void **state)
{
	static const char demo_port[] = "/tmp/sensorgate-demo/sensor";
	struct sg_config *cfg = NULL;
	char path[PATH_MAX], err[512], *text, *p;
	const struct sg_device_cfg *d;

	(void)state;
	source_path(path, sizeof(path), "config/examples/demo.conf");
	text = slurp(path);
	assert_non_null(strstr(text, demo_port));
	/* "@DIR@/tty" is shorter than the port: replace every occurrence in place */
	while ((p = strstr(text, demo_port))) {
		memcpy(p, "@DIR@/tty", 9);
		memmove(p + 9, p + strlen(demo_port), strlen(p + strlen(demo_port)) + 1);
	}
	if (load_text(text, &cfg, err, sizeof(err)) != 0) {
		free(text);
		fail_msg("%s", err);
	}
	free(text);
	assert_string_equal(cfg->base_topic, "demo");
	assert_string_equal(cfg->mqtt.brokers[0], "mqtt://127.0.0.1:18830");
	assert_int_equal(cfg->n_devices, 1);
	d = &cfg->devices[0];
	assert_string_equal(d->name, "sim");
	assert_int_equal(d->n_readings, 3);
	assert_string_equal(d->readings[0].topic, "demo/livingroom/temperature");
	assert_string_equal(d->readings[0].unit, "°C");
	assert_int_equal(d->readings[0].qos, 1);
	assert_string_equal(d->readings[1].topic, "demo/livingroom/humidity");
	assert_string_equal(d->readings[1].unit, "%");
	assert_string_equal(d->readings[2].topic, "demo/livingroom/pressure");
	assert_string_equal(d->readings[2].unit, "hPa");
	/* the fan on the same cable, and discovery for the dashboard */
	assert_int_equal(cfg->n_actuators, 1);
	assert_string_equal(cfg->actuators[0].name, "fan");
	assert_string_equal(cfg->actuators[0].command_topic, "demo/livingroom/fan/set");
	assert_true(cfg->discovery.enabled);
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_error_buffer),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_replay_and_time),
		cmocka_unit_test(test_status_and_metrics),
		cmocka_unit_test(test_empty_file),
		cmocka_unit_test(test_shared_lines),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_password_file),
		cmocka_unit_test(test_password_file_bounds),
		cmocka_unit_test(test_lenient_forms),
		cmocka_unit_test(test_include),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_topic_valid),
		cmocka_unit_test(test_example_conf),
		cmocka_unit_test(test_demo_conf),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
