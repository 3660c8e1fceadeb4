/* SPDX-License-Identifier: MIT */
/*
 * bus_serial.h — serial ports.
 *
 * Real UARTs and USB serial adapters are opened through libserialport (which
 * also enumerates ports and their USB serial numbers). libserialport refuses
 * ttys without a /sys/class/tty entry or without modem-control lines —
 * pseudo-terminals (socat, ser2net), USB gadget serial — so those fall back
 * to plain termios. Either way the caller gets a non-blocking, raw, exclusive
 * file descriptor to poll. No function here logs; all return 0 or -errno.
 */
#ifndef SG_BUS_SERIAL_H
#define SG_BUS_SERIAL_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

struct sg_serial;

/*
 * Open PATH at BAUD, 8N1, raw, no flow control, O_NONBLOCK|O_NOCTTY|O_CLOEXEC,
 * locked with flock (real ports also TIOCEXCL; -EBUSY when taken), input flushed. On success *ret owns the port (serial_close()).
 */
int serial_open(const char *path, int baud, struct sg_serial **ret);
void serial_close(struct sg_serial *s);
/* The pollable fd; valid until serial_close(). */
int serial_fd(const struct sg_serial *s);
/* True if libserialport opened it, false for the termios fallback. */
bool serial_via_libserialport(const struct sg_serial *s);
/* read(2) that returns -errno; 0 means hang-up (EOF), -EAGAIN nothing yet. */
ssize_t serial_read(struct sg_serial *s, void *buf, size_t len);
/* write(2): bytes written (short when the port filled up), -EAGAIN when none fit, or -errno. */
ssize_t serial_write(struct sg_serial *s, const void *buf, size_t len);

/*
 * Find the port whose USB serial number is SERIAL; *ret_path is malloc'd.
 * -ENOENT if none, -ENOTUNIQ if several ports share it (cheap adapters do).
 */
int serial_find_by_usb_serial(const char *serial, char **ret_path);
/* Print one line per port found by libserialport: path, description, USB VID:PID and serial. */
int serial_list_ports(FILE *out);
/* True if BAUD is one the termios fallback can set. */
bool serial_baud_valid(int baud);

#endif
