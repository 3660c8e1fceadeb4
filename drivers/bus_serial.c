/* SPDX-License-Identifier: MIT */
/*
 * bus_serial.c — open, read and write serial ports; enumerate them.
 *
 * A port is opened in two ways:
 *
 *  1. libserialport (sp_get_port_by_name + sp_open), which is what real UARTs
 *     and USB serial adapters get. It knows the port's USB identity, which is
 *     also what serial_find_by_usb_serial() and serial_list_ports() use.
 *
 *  2. plain termios, when libserialport will not take the port.
 *
 * Why the fallback exists: libserialport 0.1.1 on Linux looks every port up
 * under /sys/class/tty/<name> and refuses the name when there is no such
 * entry; sp_open() then reads the modem-control lines with TIOCMGET and fails
 * when the driver has none. Pseudo-terminals (socat, ser2net, our own host
 * tests) have neither, and USB gadget serial has no modem lines. Those are
 * legitimate sources of sensor data, so rather than refusing them we open
 * them ourselves with the same settings: raw, the configured framing (8N1
 * unless told otherwise), no flow control. Either
 * way the caller gets the same thing: a non-blocking, close-on-exec,
 * exclusive file descriptor with its input flushed, read and written with
 * plain read(2)/write(2).
 *
 * Exclusivity: every port is flock()ed (LOCK_EX|LOCK_NB), which the kernel
 * drops when the process dies, so a second sensorgate gets -EBUSY. Real ports
 * also get TIOCEXCL, which keeps out programs that do not flock (a getty,
 * a modem manager). Pseudo-terminals do not: TIOCEXCL stays on a tty as long
 * as anyone has it open, and pty tools often hold the other side, so after a
 * crash (kill -9, the watchdog) the restarted service would find its own port
 * "busy" for good.
 *
 * Paths are resolved with realpath() before asking libserialport, because it
 * derives the sysfs name from the path and so would refuse the stable
 * /dev/serial/by-id/... links users are told to configure.
 *
 * Ownership: struct sg_serial owns its fd (and its struct sp_port when
 * libserialport opened it); serial_close() releases both. Nothing here logs:
 * every function returns 0 or -errno and the caller logs once.
 */
#include <errno.h>
#include <fcntl.h>
#include <libserialport.h>
#include <limits.h>
#include <linux/serial.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "bus_serial.h"

struct sg_serial {
	int fd;               /* owned; closed by sp_close() when port is set */
	struct sp_port *port; /* owned; NULL for the termios fallback */
};

/* The rates the termios fallback can set: the standard Bxxxx constants from 1200 up. */
static const struct {
	int baud;
	speed_t speed;
} serial_speeds[] = {
	{1200, B1200},       {1800, B1800},       {2400, B2400},       {4800, B4800},
	{9600, B9600},       {19200, B19200},     {38400, B38400},     {57600, B57600},
	{115200, B115200},   {230400, B230400},   {460800, B460800},   {500000, B500000},
	{576000, B576000},   {921600, B921600},   {1000000, B1000000}, {1152000, B1152000},
	{1500000, B1500000}, {2000000, B2000000}, {2500000, B2500000}, {3000000, B3000000},
	{3500000, B3500000}, {4000000, B4000000},
};

/* Result of serial_open_sp() meaning "libserialport will not take this port: use termios". */
#define SERIAL_SP_REFUSED 1

static bool serial_speed(int baud, speed_t *ret_speed)
{
	for (size_t i = 0; i < sizeof(serial_speeds) / sizeof(serial_speeds[0]); i++) {
		if (serial_speeds[i].baud == baud) {
			if (ret_speed)
				*ret_speed = serial_speeds[i].speed;
			return true;
		}
	}
	return false;
}

bool serial_baud_valid(int baud)
{
	return serial_speed(baud, NULL);
}

bool serial_framing_valid(const struct sg_serial_framing *f)
{
	return f && (f->data_bits == 7 || f->data_bits == 8) && (f->parity == 'N' || f->parity == 'E' || f->parity == 'O') &&
	       (f->stop_bits == 1 || f->stop_bits == 2);
}

const char *serial_framing_text(const struct sg_serial_framing *f, char *buf, size_t len)
{
	snprintf(buf, len, "%u%c%u", f->data_bits, f->parity, f->stop_bits);
	return buf;
}

double serial_char_us(int baud, const struct sg_serial_framing *f)
{
	unsigned bits = 1 + f->data_bits + (f->parity != 'N') + f->stop_bits;

	return baud > 0 ? bits * 1e6 / baud : 0;
}

/*
 * The input flags of framing F on top of raw mode: with parity, check it and
 * drop a character that fails (the UART counts it); with 7 data bits, clear
 * the eighth (a UART delivers 7 bits anyway; a pseudo-terminal passes what
 * was written, which ISTRIP makes 7-bit too).
 */
static void serial_framing_iflag(struct termios *tio, const struct sg_serial_framing *f)
{
	tio->c_iflag &= ~(INPCK | IGNPAR | PARMRK | ISTRIP);
	if (f->parity != 'N')
		tio->c_iflag |= INPCK | IGNPAR;
	if (f->data_bits == 7)
		tio->c_iflag |= ISTRIP;
}

/* Turn a failed sp_* result into -errno. Call right after the failing call (errno). */
static int serial_sp_error(enum sp_return r)
{
	int e;

	switch (r) {
	case SP_OK:
		return 0;
	case SP_ERR_ARG:
		return -EINVAL;
	case SP_ERR_MEM:
		return -ENOMEM;
	case SP_ERR_SUPP:
		return -EOPNOTSUPP;
	case SP_ERR_FAIL:
	default:
		e = sp_last_error_code();
		return e > 0 ? -e : -EIO;
	}
}

/* Non-blocking, close-on-exec, exclusive, input flushed: what both open paths end with. */
static int serial_finish_fd(int fd)
{
	int flags;

	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	flags = fcntl(fd, F_GETFD);
	if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	/* Some tty drivers do not implement TIOCEXCL; the port still works. */
	if (ioctl(fd, TIOCEXCL) < 0 && errno != ENOTTY)
		return -errno;
	if (tcflush(fd, TCIFLUSH) < 0)
		return -errno;
	return 0;
}

/*
 * libserialport leaves VMIN = 0 and VTIME = 0, and with those a tty read()
 * with no data returns 0 even on a non-blocking fd — which would look like a
 * hang-up to the caller. VMIN = 1 makes an empty non-blocking read say EAGAIN.
 * CLOCAL is set so that a missing carrier on a three-wire cable is ignored.
 * The input flags of the framing are ours (serial_framing_iflag()).
 */
static int serial_sp_poll_mode(int fd, const struct sg_serial_framing *f)
{
	struct termios tio;

	if (tcgetattr(fd, &tio) < 0)
		return -errno;
	serial_framing_iflag(&tio, f);
	tio.c_cflag |= CLOCAL | CREAD;
	tio.c_cc[VMIN] = 1;
	tio.c_cc[VTIME] = 0;
	if (tcsetattr(fd, TCSANOW, &tio) < 0)
		return -errno;
	return 0;
}

/*
 * Try libserialport. Returns 0 with s filled, SERIAL_SP_REFUSED when it cannot
 * look the port up or open it (the caller falls back to termios, which
 * reports the real reason if the port is simply unusable), or -errno when it
 * opened the port but could not configure it.
 */
static int serial_open_sp(struct sg_serial *s, const char *path, int baud, const struct sg_serial_framing *f)
{
	struct sp_port *port = NULL;
	enum sp_return sr;
	char *real;
	int fd = -1;
	int r;

	real = realpath(path, NULL);
	if (!real)
		return SERIAL_SP_REFUSED;
	sr = sp_get_port_by_name(real, &port);
	free(real);
	if (sr != SP_OK)
		return SERIAL_SP_REFUSED;
	if (sp_open(port, SP_MODE_READ_WRITE) != SP_OK) {
		sp_free_port(port);
		return SERIAL_SP_REFUSED;
	}

	sr = sp_set_baudrate(port, baud);
	if (sr == SP_OK)
		sr = sp_set_bits(port, f->data_bits);
	if (sr == SP_OK)
		sr = sp_set_parity(port, f->parity == 'E' ? SP_PARITY_EVEN : f->parity == 'O' ? SP_PARITY_ODD : SP_PARITY_NONE);
	if (sr == SP_OK)
		sr = sp_set_stopbits(port, f->stop_bits);
	if (sr == SP_OK)
		sr = sp_set_flowcontrol(port, SP_FLOWCONTROL_NONE);
	if (sr == SP_OK)
		sr = sp_get_port_handle(port, &fd);
	if (sr != SP_OK) {
		r = serial_sp_error(sr);
		goto err_close;
	}
	if (fd < 0) {
		r = -EBADF;
		goto err_close;
	}
	r = serial_sp_poll_mode(fd, f);
	if (r < 0)
		goto err_close;
	r = serial_finish_fd(fd);
	if (r < 0)
		goto err_close;

	s->fd = fd;
	s->port = port;
	return 0;

err_close:
	sp_close(port);
	sp_free_port(port);
	return r;
}

/* The fallback: open and configure the tty with termios alone. Returns the fd or -errno. */
static int serial_open_termios(const char *path, int baud, const struct sg_serial_framing *f)
{
	struct termios tio;
	speed_t speed;
	int fd, r;

	if (!serial_speed(baud, &speed))
		return -EINVAL;
	/* O_NONBLOCK also keeps open() from waiting for carrier detect. */
	fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (!isatty(fd)) {
		r = -ENOTTY;
		goto err_close;
	}
	/* No TIOCEXCL here: see the header comment. */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		goto err_close;
	}
	if (tcgetattr(fd, &tio) < 0) {
		r = -errno;
		goto err_close;
	}
	cfmakeraw(&tio);
	tio.c_iflag &= ~(IXON | IXOFF | IXANY);
	serial_framing_iflag(&tio, f);
	tio.c_cflag &= ~(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS);
	tio.c_cflag |= (f->data_bits == 7 ? CS7 : CS8) | CLOCAL | CREAD;
	if (f->parity != 'N')
		tio.c_cflag |= PARENB | (f->parity == 'O' ? PARODD : 0);
	if (f->stop_bits == 2)
		tio.c_cflag |= CSTOPB;
	tio.c_cc[VMIN] = 1;
	tio.c_cc[VTIME] = 0;
	if (cfsetispeed(&tio, speed) < 0 || cfsetospeed(&tio, speed) < 0) {
		r = -errno;
		goto err_close;
	}
	r = tcsetattr(fd, TCSANOW, &tio);
	if (r < 0 && errno == EINVAL && (f->data_bits == 7 || f->parity != 'N')) {
		/* A tty without a wire: Linux's pty driver keeps neither parity nor 7-bit characters
		 * (pty_set_termios() forces CS8 without PARENB, and a request that changes nothing
		 * else is refused). The input flags above still apply: ISTRIP makes the data 7-bit. */
		tio.c_cflag = (tio.c_cflag & ~(CSIZE | PARENB | PARODD)) | CS8;
		r = tcsetattr(fd, TCSANOW, &tio);
	}
	if (r < 0) {
		r = -errno;
		goto err_close;
	}
	if (tcflush(fd, TCIFLUSH) < 0) {
		r = -errno;
		goto err_close;
	}
	return fd;

err_close:
	close(fd);
	return r;
}

struct sg_serial *serial_open(const char *path, int baud, const struct sg_serial_framing *framing)
{
	const struct sg_serial_framing f = framing ? *framing : SG_SERIAL_8N1;
	struct sg_serial *s;
	int r;

	if (!path || !*path || !serial_baud_valid(baud) || !serial_framing_valid(&f)) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->fd = -1;

	r = serial_open_sp(s, path, baud, &f);
	if (r == SERIAL_SP_REFUSED) {
		r = serial_open_termios(path, baud, &f);
		if (r >= 0) {
			s->fd = r;
			r = 0;
		}
	}
	if (r < 0) {
		free(s);
		errno = -r;
		return NULL;
	}
	return s;
}

void serial_close(struct sg_serial *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		(void)ioctl(s->fd, TIOCNXCL);
	if (s->port) {
		sp_close(s->port);
		sp_free_port(s->port);
	} else if (s->fd >= 0) {
		close(s->fd);
	}
	free(s);
}

int serial_fd(const struct sg_serial *s)
{
	return s ? s->fd : -EBADF;
}

bool serial_via_libserialport(const struct sg_serial *s)
{
	return s && s->port;
}

int serial_counters(struct sg_serial *s, struct sg_serial_counters *ret)
{
	struct serial_icounter_struct ic;

	if (!s || !ret)
		return -EINVAL;
	memset(&ic, 0, sizeof(ic));
	if (ioctl(s->fd, TIOCGICOUNT, &ic) < 0)
		return -errno;
	ret->parity = (uint64_t)ic.parity;
	ret->frame = (uint64_t)ic.frame;
	ret->overrun = (uint64_t)ic.overrun + (uint64_t)ic.buf_overrun;
	ret->brk = (uint64_t)ic.brk;
	return 0;
}

ssize_t serial_read(struct sg_serial *s, void *buf, size_t len)
{
	ssize_t n;

	if (!s || (!buf && len))
		return -EINVAL;
	do
		n = read(s->fd, buf, len);
	while (n < 0 && errno == EINTR);
	/* A pty whose master closed says EIO rather than 0: reported as is. */
	return n < 0 ? -errno : n;
}

/*
 * Writes everything unless the port's output buffer fills up: then returns
 * the count written so far, or -EAGAIN when that is nothing. A short count is
 * never hidden behind an error, so the caller knows what went out.
 */
ssize_t serial_write(struct sg_serial *s, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t done = 0;
	ssize_t n;

	if (!s || (!buf && len))
		return -EINVAL;
	if (len > SSIZE_MAX)
		return -EINVAL;
	while (done < len) {
		n = write(s->fd, p + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && done > 0)
				break;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return done == 0 && len > 0 ? -EAGAIN : (ssize_t)done;
}

/*
 * Find the port whose USB serial number is SERIAL. -ENOENT when none has it,
 * -ENOTUNIQ when more than one does (cheap adapters share one serial number,
 * and silently picking one could read the wrong sensor).
 */
int serial_find_by_usb_serial(const char *serial, char **ret_path)
{
	struct sp_port **list = NULL;
	const char *found = NULL;
	enum sp_return sr;
	char *path;
	int r = 0;

	if (!serial || !*serial || !ret_path)
		return -EINVAL;
	sr = sp_list_ports(&list);
	if (sr != SP_OK)
		return serial_sp_error(sr);
	for (size_t i = 0; list[i]; i++) {
		const char *sn = sp_get_port_usb_serial(list[i]);

		if (!sn || strcmp(sn, serial) != 0)
			continue;
		if (found) {
			r = -ENOTUNIQ;
			break;
		}
		found = sp_get_port_name(list[i]);
	}
	if (r == 0 && !found)
		r = -ENOENT;
	if (r == 0) {
		path = strdup(found);
		if (!path)
			r = -ENOMEM;
		else
			*ret_path = path;
	}
	sp_free_port_list(list);
	return r;
}

/* "/dev/ttyUSB0  FT232R USB UART  usb 0403:6001 serial=A50285BI", one line per port. */
int serial_list_ports(FILE *out)
{
	struct sp_port **list = NULL;
	enum sp_return sr;
	size_t n = 0;

	if (!out)
		return -EINVAL;
	sr = sp_list_ports(&list);
	if (sr != SP_OK)
		return serial_sp_error(sr);
	for (; list[n]; n++) {
		struct sp_port *port = list[n];
		const char *desc = sp_get_port_description(port);
		const char *extra;
		int vid, pid;

		fprintf(out, "%s  %s", sp_get_port_name(port), desc ? desc : "");
		switch (sp_get_port_transport(port)) {
		case SP_TRANSPORT_USB:
			if (sp_get_port_usb_vid_pid(port, &vid, &pid) == SP_OK)
				fprintf(out, "  usb %04x:%04x", (unsigned)vid, (unsigned)pid);
			else
				fputs("  usb", out);
			extra = sp_get_port_usb_serial(port);
			if (extra && *extra)
				fprintf(out, " serial=%s", extra);
			break;
		case SP_TRANSPORT_BLUETOOTH:
			extra = sp_get_port_bluetooth_address(port);
			fprintf(out, "  bluetooth%s%s", extra ? " " : "", extra ? extra : "");
			break;
		case SP_TRANSPORT_NATIVE:
		default:
			fputs("  native", out);
			break;
		}
		fputc('\n', out);
	}
	sp_free_port_list(list);
	if (n == 0)
		fputs("(no serial ports found)\n", out);
	if (fflush(out) != 0 || ferror(out))
		return -EIO;
	return 0;
}
