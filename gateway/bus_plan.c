/* SPDX-License-Identifier: MIT */
/*
 * bus_plan.c — the serial lines as --check prints them (see bus_plan.h).
 *
 * A request of T bytes answered with R bytes occupies the line for (T + R)
 * characters plus the silence its protocol needs before the next frame (the
 * largest gap any user of the line asks for: Modbus RTU's 3.5 characters,
 * Serial Line V1.02 §2.5.1.1); a character is start bit, data bits, parity
 * bit and stop bits at the baud rate. The slave's own turnaround is not
 * known and not counted: the figures are what the wire allows at best. With
 * every request timing out, a request costs its bytes, its timeout and a gap.
 */
#include "bus_plan.h"

#include <string.h>

#define BUS_PLAN_MAX_REQUESTS 256

double bus_plan_request_s(const struct sg_line_settings *s, double gap_s, unsigned tx_bytes, unsigned rx_bytes)
{
	return (tx_bytes + rx_bytes) * serial_char_us(s->baud, &s->framing) / 1e6 + gap_s;
}

/* The gap G_CHARS characters long, at least MIN_US, in µs (line.c computes it alike). */
static double gap_us(double char_us, double g_chars, unsigned min_us)
{
	double g = g_chars * char_us;

	return g < min_us ? min_us : g;
}

/* The largest gap any device or actuator of line L needs, in seconds (as line.c keeps it). */
static double bus_plan_gap_s(const struct sg_config *c, const struct sg_serial_line_cfg *l)
{
	double char_us = serial_char_us(l->settings.baud, &l->settings.framing), gap = 0;

	for (size_t k = 0; k < l->n_devices; k++) {
		const struct sg_driver *drv = c->devices[l->devices[k]].driver;
		double g = gap_us(char_us, drv->line_gap_chars, drv->line_gap_min_us);

		if (g > gap)
			gap = g;
	}
	for (size_t k = 0; k < l->n_actuators; k++) {
		const struct sg_act_driver *drv = c->actuators[l->actuators[k]].drv;
		double g = gap_us(char_us, drv->line_gap_chars, drv->line_gap_min_us);

		if (g > gap)
			gap = g;
	}
	return gap / 1e6;
}

static void bus_plan_line(const struct sg_config *c, const struct sg_serial_line_cfg *l, FILE *out)
{
	static struct sg_line_request reqs[BUS_PLAN_MAX_REQUESTS];
	double char_us = serial_char_us(l->settings.baud, &l->settings.framing), gap_s = bus_plan_gap_s(c, l);
	double best_s = 0, worst_s = 0, load = 0;
	size_t n_req = 0, bytes = 0;
	char fr[8];

	fprintf(out, "\nLINE      %s%s  %d %s (a character %.3g ms, %.3g ms between frames)\n",
	        l->by_usb_serial ? "USB serial " : "", l->name, l->settings.baud,
	        serial_framing_text(&l->settings.framing, fr, sizeof(fr)), char_us / 1000, gap_s * 1000);
	for (size_t k = 0; k < l->n_devices; k++) {
		const struct sg_device_cfg *d = &c->devices[l->devices[k]];
		double dev_best = 0;
		size_t n;

		if (!d->driver->line_plan) {
			fprintf(out, "  device   %s (line %d, %s): %s\n", d->name, d->line, d->driver->name,
			        sg_driver_streams(d->driver, d->opts) ? "reads the stream" : "sends no requests");
			continue;
		}
		n = d->driver->line_plan(d->opts, reqs, BUS_PLAN_MAX_REQUESTS);
		if (n > BUS_PLAN_MAX_REQUESTS)
			n = BUS_PLAN_MAX_REQUESTS;
		fprintf(out, "  device   %s (line %d, %s): %zu request%s every %g s:", d->name, d->line, d->driver->name, n,
		        n == 1 ? "" : "s", d->interval_s);
		for (size_t i = 0; i < n; i++) {
			double t = bus_plan_request_s(&l->settings, gap_s, reqs[i].tx_bytes, reqs[i].rx_bytes);

			fprintf(out, "%s %s (%u+%u bytes)", i ? "," : "", reqs[i].what, reqs[i].tx_bytes, reqs[i].rx_bytes);
			dev_best += t;
			worst_s += reqs[i].tx_bytes * char_us / 1e6 + reqs[i].timeout_s + gap_s;
			bytes += reqs[i].tx_bytes + reqs[i].rx_bytes;
		}
		fputc('\n', out);
		best_s += dev_best;
		n_req += n;
		if (d->interval_s > 0)
			load += dev_best / d->interval_s;
	}
	for (size_t k = 0; k < l->n_actuators; k++) {
		const struct sg_actuator_cfg *a = &c->actuators[l->actuators[k]];

		fprintf(out, "  actuator %s (line %d, %s): a transaction per command\n", a->name, a->line, a->driver);
	}
	if (n_req == 0)
		return;
	fprintf(out, "  cycle    %zu request%s, %zu bytes: %.3f s on the wire at best (gaps included), %.3f s if every "
	        "request timed out; the polling keeps the line %.0f %% busy\n",
	        n_req, n_req == 1 ? "" : "s", bytes, best_s, worst_s, load * 100);
	if (load > 1)
		fprintf(out, "  warning  the requests need more time than their intervals give them: cycles will run late\n");
}

void bus_plan_print(const struct sg_config *c, FILE *out)
{
	for (size_t i = 0; i < c->n_lines; i++)
		bus_plan_line(c, &c->lines[i], out);
}
