/* SPDX-License-Identifier: MIT */
/*
 * drivers.h — every driver descriptor, one extern line each.
 *
 * Each driver file defines exactly one `const struct sg_driver sg_driver_<name>`
 * and nothing else with external linkage; registry.c lists them in sg_drivers[].
 * Adding a driver = its .c file + one line here + one line in registry.c.
 */
#ifndef SG_DRIVERS_H
#define SG_DRIVERS_H

#include "driver.h"

extern const struct sg_driver sg_driver_lines;   /* lines.c: kv / json / csv text lines */
extern const struct sg_driver sg_driver_nmea;    /* nmea.c: GPS NMEA 0183 GGA/RMC/VTG */
extern const struct sg_driver sg_driver_dsmr;    /* dsmr.c: smart meter P1 telegrams (DSMR, e-MUCS) */
extern const struct sg_driver sg_driver_pms5003; /* pms5003.c: Plantower particulate sensor */
extern const struct sg_driver sg_driver_sds011;  /* sds011.c: Nova SDS011 particulate sensor */
extern const struct sg_driver sg_driver_mhz19;   /* mhz19.c: Winsen MH-Z19B CO2 sensor */
extern const struct sg_driver sg_driver_modbus;  /* modbus.c: Modbus RTU master */
extern const struct sg_driver sg_driver_modbus_tcp; /* modbus_tcp.c: Modbus TCP client */
extern const struct sg_driver sg_driver_bme280;  /* bme280.c: Bosch BME280/BMP280, I2C */
extern const struct sg_driver sg_driver_sht3x;   /* sht3x.c: Sensirion SHT3x, I2C */
extern const struct sg_driver sg_driver_bh1750;  /* bh1750.c: ROHM BH1750 light, I2C */
extern const struct sg_driver sg_driver_ads1115; /* ads1115.c: TI ADS1115 ADC, I2C */
extern const struct sg_driver sg_driver_ds18b20; /* ds18b20.c: Maxim DS18B20, 1-Wire sysfs */
extern const struct sg_driver sg_driver_contact; /* contact.c: a two-state GPIO input, ON/OFF */
extern const struct sg_driver sg_driver_counter; /* counter.c: pulses on a GPIO line, total and rate, saved */
extern const struct sg_driver sg_driver_button;  /* button.c: a push button: single, double, long presses */

#endif
