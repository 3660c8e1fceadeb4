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
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct sg_serial;

/* A character's framing: data bits, parity, stop bits ("8N1", "8E1", "7E1", "8N2" ...). */
struct sg_serial_framing {
	uint8_t data_bits; /* 7 or 8 */
	char parity;       /* 'N' none, 'E' even, 'O' odd */
	uint8_t stop_bits; /* 1 or 2 */
};

#define SG_SERIAL_8N1 ((struct sg_serial_framing){.data_bits = 8, .parity = 'N', .stop_bits = 1})

/*
 * Open PATH at BAUD with FRAMING (NULL: 8N1), raw, no flow control,
 * O_NONBLOCK|O_NOCTTY|O_CLOEXEC, locked with flock (real ports also TIOCEXCL;
 * errno EBUSY when taken), input flushed. With parity, characters that arrive with
 * the wrong parity are dropped by the kernel (INPCK, IGNPAR) and counted by
 * the UART (serial_counters()); with 7 data bits the eighth is cleared
 * (ISTRIP), which also holds on pseudo-terminals. The port (serial_close()),
 * or NULL with errno set: EINVAL for a bad path, rate or framing, ENOENT,
 * ENOTTY, EISDIR, EBUSY, ENOMEM ...
 */
struct sg_serial *serial_open(const char *path, int baud, const struct sg_serial_framing *framing);
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
/* True if F is 7 or 8 data bits, parity N/E/O, 1 or 2 stop bits. */
bool serial_framing_valid(const struct sg_serial_framing *f);
/* "8E1" into BUF (at least 4 bytes); returns BUF. */
const char *serial_framing_text(const struct sg_serial_framing *f, char *buf, size_t len);
/* Microseconds one character takes on the wire at BAUD: start bit, data, parity, stop bits. */
double serial_char_us(int baud, const struct sg_serial_framing *f);

/* What the UART counted since the port was opened (TIOCGICOUNT). */
struct sg_serial_counters {
	uint64_t parity;  /* characters with a parity error */
	uint64_t frame;   /* framing errors: wrong baud rate or data bits, noise */
	uint64_t overrun; /* characters lost because nobody read in time */
	uint64_t brk;     /* breaks: the line held at 0 longer than a character (wiring, a device reset, a wrong baud rate) */
};

/* The counters of S. 0, or -ENOTTY/-EINVAL where the driver keeps none (pseudo-terminals, most USB adapters). */
int serial_counters(struct sg_serial *s, struct sg_serial_counters *ret);

#endif
