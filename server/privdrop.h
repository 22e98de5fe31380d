/* privdrop.h - dropping root privileges to the configured `user` after the
 * listening sockets are bound.
 */
#ifndef ECHOD_PRIVDROP_H
#define ECHOD_PRIVDROP_H

/* When running as root: with a non-empty user, setgroups/setgid/setuid to it
 * and verify that root cannot be regained; with an empty one, warn loudly.
 * When not root: a non-empty user that is not the current one is an error.
 * Returns 0 or -1 after logging why. */
int privdrop_apply(const char *user) __attribute__((warn_unused_result));

#endif
