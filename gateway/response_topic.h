/* SPDX-License-Identifier: MIT */
/*
 * response_topic.h — where the gateway may publish the answer to a command.
 *
 * An MQTT 5 command may carry a Response Topic: the requester names the
 * topic the gateway answers on, and the gateway publishes there with its own
 * broker permissions. Used as given, that makes the gateway a confused
 * deputy: a client allowed to command one actuator could make the gateway
 * publish on another actuator's command topic (and, its answer having a
 * "state" member, command it), on its status, reading or discovery topics,
 * or on `$SYS/...` (which a broker refuses, costing the connection). So a
 * Response Topic is refused unless it is
 *
 *   1 .. SG_RESPONSE_TOPIC_MAX bytes of UTF-8 without NUL or control
 *   characters, without '+' or '#', not starting with '$';
 *   outside the gateway's own topics (equal to or under its base topic:
 *   every topic it subscribes to or publishes on but discovery lies there)
 *   and outside the Home Assistant discovery prefix (equal to or under it,
 *   whether discovery is on or not);
 *   under commands.response_topic_prefix ("<prefix>/..."), when one is set.
 *
 * Correlation Data is bounded too (SG_CORRELATION_MAX bytes). Pure functions:
 * no logging, no state.
 */
#ifndef SG_RESPONSE_TOPIC_H
#define SG_RESPONSE_TOPIC_H

#include <stddef.h>

#include "config.h"

#define SG_RESPONSE_TOPIC_MAX 256 /* bytes; the same bound as a configured topic */
#define SG_CORRELATION_MAX    128 /* bytes of Correlation Data a command may carry */

/*
 * 0 when the gateway may answer on T (LEN bytes, which may include a NUL),
 * else -EACCES with WHY filled ("Response Topic ... lies under the gateway's
 * own topics (h/...)"). OWN[0 .. N_OWN) are the configurations whose base
 * topic and discovery prefix count as the gateway's own (the running one and,
 * after a reload, the one readings and discovery now use; NULL entries are
 * skipped); the allowed prefix is OWN[0]'s.
 */
int response_topic_check(const struct sg_config *const *own, size_t n_own, const char *t, size_t len,
                         char *why, size_t whylen);

/* The rule in force for CFG, one line for --check and the start-up log. */
void response_topic_rule(const struct sg_config *cfg, char *buf, size_t len);

#endif
