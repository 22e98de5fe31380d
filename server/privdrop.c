/* privdrop.c - switch from root to the configured `user` once the listening
 * sockets are bound, and prove the switch cannot be undone.
 *
 * All three ids (real, effective, saved) of both uid and gid are set, and the
 * supplementary groups are reduced to the user's primary group, so nothing of
 * root's survives; the kernel clears the capabilities at the uid change. The
 * checks afterwards (ids, groups, capabilities, setuid(0) failing) turn a
 * silent half-drop into a refusal to start. no_new_privs then keeps an exec
 * of a set-uid program from handing root back (echod never execs; this is
 * for a bug that would). Called once, from the main thread,
 * before the workers start; glibc applies the id changes to every thread.
 * Returns 0 or -1 after logging why.
 */
#include "server/privdrop.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/log.h"

/* Room for getpwnam_r's strings when sysconf gives no hint. */
#define PRIVDROP_PWBUF_DEFAULT 16384

/* Any capability left in the permitted or effective set. */
static bool has_capabilities(void)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &hdr, data) != 0)
        return true;    /* cannot tell: assume the worst */
    for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
        if (data[i].permitted != 0 || data[i].effective != 0)
            return true;
    return false;
}

/* After the switch: every id is the user's and root is out of reach. */
static int verify_dropped(const char *user, uid_t uid, gid_t gid)
{
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    if (getresuid(&ruid, &euid, &suid) != 0 || getresgid(&rgid, &egid, &sgid) != 0 ||
        ruid != uid || euid != uid || suid != uid || rgid != gid || egid != gid || sgid != gid) {
        log_error("privilege drop to '%s' did not take: uid/gid not all %u/%u", user,
                  (unsigned)uid, (unsigned)gid);
        return -1;
    }
    gid_t groups[2];
    int ngroups = getgroups(2, groups);
    if (ngroups < 0 || ngroups > 1 || (ngroups == 1 && groups[0] != gid)) {
        log_error("privilege drop to '%s': supplementary groups remain", user);
        return -1;
    }
    if (has_capabilities()) {
        log_error("privilege drop to '%s': capabilities remain", user);
        return -1;
    }
    if (setuid(0) == 0 || seteuid(0) == 0 || (gid != 0 && (setgid(0) == 0 || setegid(0) == 0))) {
        log_error("privilege drop to '%s': root could be regained; refusing to run", user);
        return -1;
    }
    return 0;
}

static int lookup_user(const char *user, uid_t *uid, gid_t *gid)
{
    long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t size = hint > 0 ? (size_t)hint : PRIVDROP_PWBUF_DEFAULT;
    char *buf = malloc(size);
    if (buf == NULL) {
        log_error("user '%s': out of memory", user);
        return -1;
    }
    struct passwd pw, *found = NULL;
    int err = getpwnam_r(user, &pw, buf, size, &found);
    if (found == NULL) {
        if (err != 0)
            log_error("user '%s': cannot look it up: %s", user, strerror(err));
        else
            log_error("user '%s' does not exist", user);
        free(buf);
        return -1;
    }
    *uid = pw.pw_uid;
    *gid = pw.pw_gid;
    free(buf);
    return 0;
}

int privdrop_apply(const char *user)
{
    bool is_root = geteuid() == 0;
    if (user == NULL || user[0] == '\0') {
        if (is_root)
            log_warn("RUNNING AS ROOT: a bug in echod would give a remote client the whole "
                     "machine; set `user` in the configuration (or User=/DynamicUser= in the "
                     "systemd unit)");
        return 0;
    }

    uid_t uid;
    gid_t gid;
    if (lookup_user(user, &uid, &gid) < 0)
        return -1;
    if (!is_root) {
        if (getuid() == uid && geteuid() == uid)
            return 0;   /* already that user: nothing to drop */
        log_error("user '%s': switching users needs root; echod runs as uid %u", user,
                  (unsigned)geteuid());
        return -1;
    }
    if (uid == 0) {
        log_warn("RUNNING AS ROOT: user '%s' is root; set `user` to an unprivileged account",
                 user);
        return 0;
    }

    /* Groups first: once the uid is not root, they can no longer change. */
    if (setgroups(1, &gid) != 0 || setresgid(gid, gid, gid) != 0 ||
        setresuid(uid, uid, uid) != 0) {
        log_error("cannot switch to user '%s' (uid %u, gid %u): %s", user, (unsigned)uid,
                  (unsigned)gid, strerror(errno));
        return -1;
    }
    if (verify_dropped(user, uid, gid) < 0)
        return -1;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        log_error("privilege drop to '%s': no_new_privs: %s", user, strerror(errno));
        return -1;
    }
    log_info("running as user '%s' (uid %u, gid %u)", user, (unsigned)uid, (unsigned)gid);
    return 0;
}
