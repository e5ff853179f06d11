/*
 * kiln-exec [options] -- argv...: runs one Dockerfile RUN command inside a build root for kiln (Node.js cannot
 * chroot or unshare itself). Sets up user/mount/pid/network namespaces, mounts, the root (pivot_root in a mount
 * namespace, else chroot), Docker's default capabilities and credentials, then execs the command; exits with
 * its status (128+signal when killed). Helper failures go to the status pipe (fd 3 when open) as
 * "error <stage> <errno> <message>" with exit status 127; otherwise it reports "exec-ok" and then
 * "exit <code>" or "signal <number>".
 * Processes: this supervisor forks C. Without a pid namespace C is the command in its own session; when it
 * exits, its group and every orphan reparented to us (child subreaper) are SIGKILLed. With a pid namespace C
 * is pid 1 (reaps, forwards signals) and the command is its child; when C exits the kernel kills the rest.
 * kiln-exec --probe DIR tries every RUN configuration at once and prints which work (see probe_mode).
 * kiln-exec --spread DIR marks DIR so that ext4 spreads its subdirectories over block groups (see spread_mode).
 * --list-upper FILE (with --overlay): after the command and everything it left behind exited, writes a listing
 * of the overlay's upper directory to FILE (see list_upper) so that kiln need not walk it again.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define MAX_MOUNTS 64
#define MAX_GROUPS 256
#define STATUS_FD 3
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct mnt { char kind; /* 'b' bind, 't' tmpfs */ int ro; const char *src, *size; char dst[4096]; };

static const char *root_dir, *cwd_dir;
static char overlay_opts[16384]; /* --overlay: mount data for an overlay over the root, or empty */
static char overlay_upper[4096]; /* --overlay: its upper directory */
static const char *list_upper_file; /* --list-upper FILE */
static int want_creds, userns, mountns, pidns, netns, do_proc, do_dev, do_sys, do_devnodes, setgroups_denied;
static uid_t uid;
static gid_t gid, groups[MAX_GROUPS];
static struct mnt mounts[MAX_MOUNTS];
static size_t ngroups, nmounts;
static int status_fd = -1, err_fd = -1, result_fd = -1; /* result: pid 1 -> supervisor, the fatal signal */
static volatile sig_atomic_t target_pid;
/* The process that started the run path (kiln, or the probe): the command must not outlive it. */
static pid_t parent_pid;
static const int fwd_sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};

/* Reports a helper failure on the error channel (the status pipe in the supervisor, a pipe in children). */
static void fail(const char *stage, int err, const char *what) {
  char line[8192];
  int n = snprintf(line, sizeof line, "error %s %d %s: %s\n", stage, err, what, strerror(err));
  if (n > 0 && write(err_fd >= 0 ? err_fd : status_fd >= 0 ? status_fd : 2, line, (size_t)n) < 0) { /* lost */ }
  _exit(127);
}

static void usage(const char *msg) { fail("usage", EINVAL, msg); }

static void status_line(const char *fmt, int v) {
  char line[64];
  int n = snprintf(line, sizeof line, fmt, v);
  if (status_fd >= 0 && n > 0 && write(status_fd, line, (size_t)n) < 0) { /* caller went away */ }
}

/* Parses a uid or gid: decimal digits only, at most 4294967294 ((uid_t)-1 means "unchanged" to the kernel). */
static unsigned long parse_id(const char *s, const char *what) {
  char *end;
  char msg[160];
  if (*s < '0' || *s > '9') usage(what); /* no sign, no blanks: strtoul would wrap "-1" */
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end != '\0') usage(what);
  if (v > 4294967294ULL) {
    snprintf(msg, sizeof msg, "%s: %.32s is above the largest valid id 4294967294", what, s);
    usage(msg);
  }
  return (unsigned long)v;
}

/* Joins the root directory and a container path into buf. */
static void in_root(char *buf, size_t len, const char *path) {
  int n = snprintf(buf, len, "%s%s%s", root_dir ? root_dir : "", path[0] == '/' ? "" : "/", path);
  if (n < 0 || (size_t)n >= len) usage("path too long");
}

static void write_file(const char *path, const char *data) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  size_t len = strlen(data);
  if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) < 0) fail("userns", errno, path);
}

static void setup_userns(void) {
  uid_t ouid = getuid();
  gid_t ogid = getgid();
  char map[64], path[64];
  if (ouid == 0) {
    /* Real root maps the whole id range onto itself, so ownership inside equals ownership outside. Only a
       process still in the parent namespace may write such a map: a forked writer does it for us. */
    int go[2], status;
    char c = 0;
    pid_t self = getpid();
    if (pipe2(go, O_CLOEXEC) < 0) fail("userns", errno, "pipe");
    pid_t w = fork();
    if (w < 0) fail("userns", errno, "fork");
    if (w == 0) {
      close(go[1]);
      if (read(go[0], &c, 1) != 1) _exit(1);
      snprintf(path, sizeof path, "/proc/%d/uid_map", (int)self);
      write_file(path, "0 0 4294967295\n");
      snprintf(path, sizeof path, "/proc/%d/gid_map", (int)self);
      write_file(path, "0 0 4294967295\n");
      _exit(0);
    }
    close(go[0]);
    if (unshare(CLONE_NEWUSER) < 0) fail("userns", errno, "unshare(CLONE_NEWUSER)");
    if (write(go[1], &c, 1) != 1) fail("userns", errno, "pipe");
    close(go[1]);
    if (waitpid(w, &status, 0) != w) fail("userns", errno, "waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("userns", EPERM, "writing the id maps");
    return;
  }
  if (unshare(CLONE_NEWUSER) < 0) fail("userns", errno, "unshare(CLONE_NEWUSER)");
  write_file("/proc/self/setgroups", "deny\n");
  setgroups_denied = 1;
  snprintf(map, sizeof map, "0 %u 1\n", (unsigned)ouid);
  write_file("/proc/self/uid_map", map);
  snprintf(map, sizeof map, "0 %u 1\n", (unsigned)ogid);
  write_file("/proc/self/gid_map", map);
}

static void loopback_up(void) {
  struct ifreq ifr;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) fail("netns", errno, "socket");
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) fail("netns", errno, "SIOCGIFFLAGS lo");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) fail("netns", errno, "SIOCSIFFLAGS lo");
  close(s);
}

/* Flags the kernel locks on a mount in a user namespace: a remount must repeat them. */
static unsigned long locked_flags(const struct statvfs *sv) {
  static const unsigned long keep[][2] = {{ST_NOSUID, MS_NOSUID},     {ST_NODEV, MS_NODEV},
                                          {ST_NOEXEC, MS_NOEXEC},     {ST_NOATIME, MS_NOATIME},
                                          {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME}};
  unsigned long flags = 0;
  for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
    if (sv->f_flag & keep[i][0]) flags |= keep[i][1];
  return flags;
}

/* Remounts the mount at `target` read-only (one mount, not its submounts); -1 with errno on failure. */
static int try_remount_ro(const char *target) {
  struct statvfs sv;
  if (statvfs(target, &sv) < 0) return -1;
  if (sv.f_flag & ST_RDONLY) return 0;
  return mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | locked_flags(&sv), NULL);
}

/* Remounts a bind mount read-only, keeping the flags the kernel locks in a user namespace. */
static void remount_ro(const char *target) {
  if (try_remount_ro(target) < 0) fail("mount", errno, target);
}

/* Undoes mountinfo's octal escapes (\040 for a blank, \011, \012, \134) in place. */
static void unescape_mountinfo(char *s) {
  char *o = s;
  for (char *p = s; *p; p++) {
    if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
      *o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
      p += 3;
    } else {
      *o++ = *p;
    }
  }
  *o = '\0';
}

/*
 * Makes every mount at or below `target` read-only: a recursive bind carries the host's submounts (e.g.
 * sys/fs/cgroup/cpu), and a read-only remount of the top one leaves them writable. A submount the helper
 * cannot reach (EACCES: below a directory of another user, rootless) is no more reachable by the step.
 */
static void remount_tree_ro(const char *target) {
  char canon[4096], *line = NULL;
  size_t cap = 0, len;
  if (!realpath(target, canon)) fail("mount", errno, target);
  len = strlen(canon);
  remount_ro(canon);
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f) fail("mount", errno, "/proc/self/mountinfo");
  while (getline(&line, &cap, f) > 0) {
    /* ID PARENT MAJ:MIN ROOT MOUNTPOINT ...: the fifth field. */
    char *save = NULL, *mp = strtok_r(line, " ", &save);
    for (int k = 0; k < 4 && mp; k++) mp = strtok_r(NULL, " ", &save);
    if (!mp) continue;
    unescape_mountinfo(mp);
    if (strncmp(mp, canon, len) != 0 || mp[len] != '/') continue;
    if (try_remount_ro(mp) < 0 && errno != EACCES && errno != ENOENT) fail("mount", errno, mp);
  }
  free(line);
  fclose(f);
}

static void bind_mount(const char *src, const char *dst, int ro) {
  char target[4096];
  in_root(target, sizeof target, dst);
  if (mount(src, target, NULL, MS_BIND | MS_REC, NULL) < 0) fail("mount", errno, target);
  if (ro) remount_ro(target);
}

/*
 * The fixed mount points /proc, /dev and /sys are mounted by their path in the root: one that the image
 * made a symlink (`dev -> /host/dir`, `sys -> ..`) would be followed on the host's side. Refused.
 */
static void check_fixed_point(char *target, size_t len, const char *name) {
  struct stat st;
  char what[4200];
  in_root(target, len, name);
  if (lstat(target, &st) < 0) fail("mount", errno, target);
  if (S_ISLNK(st.st_mode)) {
    snprintf(what, sizeof what, "%s is a symlink in the image (kiln mounts %s there and does not follow links)", target,
             name);
    fail("mount", ELOOP, what);
  }
  if (!S_ISDIR(st.st_mode)) fail("mount", ENOTDIR, target);
}

static const struct devnode { const char *name; unsigned maj, min; } devnodes[] = {
    {"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
};

/* Plain chroot (no mount namespace): the device nodes, made in the image's own /dev. */
static void make_devnodes(void) {
  char dev[4096], path[4200];
  check_fixed_point(dev, sizeof dev, "/dev");
  for (size_t i = 0; i < sizeof devnodes / sizeof devnodes[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dev, devnodes[i].name);
    if (mknod(path, S_IFCHR | 0666, makedev(devnodes[i].maj, devnodes[i].min)) == 0) {
      if (chmod(path, 0666) < 0) fail("devnodes", errno, path); /* umask-proof */
    } else if (errno != EEXIST) {
      fail("devnodes", errno, path);
    }
  }
}

/*
 * /dev as Docker makes it: a tmpfs with null, zero, full, random, urandom and tty (made with mknod, or the
 * host's node bound onto an empty file where mknod is not allowed: a user namespace), a devpts instance of
 * its own with ptmx, a tmpfs /dev/shm and the fd/stdin/stdout/stderr links. Never the host's /dev.
 */
static void mount_dev(void) {
  char dev[4096], path[4200], host[64];
  check_fixed_point(dev, sizeof dev, "/dev");
  if (mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=0755,size=65536k") < 0) fail("mount", errno, dev);
  for (size_t i = 0; i < sizeof devnodes / sizeof devnodes[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dev, devnodes[i].name);
    if (mknod(path, S_IFCHR | 0666, makedev(devnodes[i].maj, devnodes[i].min)) == 0) {
      if (chmod(path, 0666) < 0) fail("devnodes", errno, path);
      continue;
    }
    if (errno != EPERM && errno != EACCES) fail("devnodes", errno, path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 || close(fd) < 0) fail("devnodes", errno, path);
    snprintf(host, sizeof host, "/dev/%s", devnodes[i].name);
    if (mount(host, path, NULL, MS_BIND, NULL) < 0) fail("devnodes", errno, path);
  }
  snprintf(path, sizeof path, "%s/pts", dev);
  if (mkdir(path, 0755) < 0) fail("mount", errno, path);
  /* gid=5 (tty) only where that group is mapped; a devpts of our own is optional (no ptys without it). */
  if (mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5") == 0 ||
      mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") == 0) {
    snprintf(path, sizeof path, "%s/ptmx", dev);
    if (symlink("pts/ptmx", path) < 0) fail("mount", errno, path);
  }
  snprintf(path, sizeof path, "%s/shm", dev);
  if (mkdir(path, 0755) < 0) fail("mount", errno, path);
  if (mount("shm", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k") < 0)
    fail("mount", errno, path);
  static const char *const links[][2] = {
      {"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"}};
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dev, links[i][0]);
    if (symlink(links[i][1], path) < 0) fail("mount", errno, path);
  }
}

/*
 * A RUN --mount target below /dev: kiln made it in the image's /dev, which the private tmpfs /dev now hides,
 * so it is made again inside that tmpfs (a directory for a tmpfs or a directory source, an empty file for a
 * file source; missing parents as directories). A target that is one of the tmpfs's own links (fd, stdin …)
 * is refused: mounting there would follow the link.
 */
static void ensure_dev_target(const char *dst, const char *src) {
  char target[4096];
  struct stat st;
  if (!do_dev || strncmp(dst, "/dev/", 5) != 0) return;
  in_root(target, sizeof target, dst);
  if (lstat(target, &st) == 0) {
    if (S_ISLNK(st.st_mode)) fail("mount", ELOOP, target);
    return;
  }
  if (errno != ENOENT) fail("mount", errno, target);
  int want_dir = 1;
  if (src) {
    if (stat(src, &st) < 0) fail("mount", errno, src);
    want_dir = S_ISDIR(st.st_mode);
  }
  char *first = target + strlen(target) - strlen(dst) + 5; /* just after "<root>/dev/" */
  for (char *p = strchr(first, '/'); p; p = strchr(p + 1, '/')) {
    *p = '\0';
    if (mkdir(target, 0755) < 0 && errno != EEXIST) fail("mount", errno, target);
    if (lstat(target, &st) < 0 || !S_ISDIR(st.st_mode)) fail("mount", ENOTDIR, target);
    *p = '/';
  }
  if (want_dir) {
    if (mkdir(target, 0755) < 0) fail("mount", errno, target);
  } else {
    int fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0 || close(fd) < 0) fail("mount", errno, target);
  }
}

/*
 * A fresh /proc hardened as Docker does: kernel knobs (sys, sysrq-trigger, irq, bus) read-only, files that
 * leak host memory or keys masked with /dev/null, acpi and scsi hidden under an empty read-only tmpfs.
 * Entries this kernel lacks are skipped.
 */
static void harden_proc(const char *proc) {
  static const char *const ro[] = {"sys", "sysrq-trigger", "irq", "bus"};
  static const char *const masked[] = {"kcore", "keys", "timer_list", "sched_debug", "latency_stats", "timer_stats"};
  static const char *const hidden[] = {"acpi", "scsi"};
  char path[4200]; /* proc is at most 4095 characters, plus a name */
  struct stat st;
  for (size_t i = 0; i < sizeof ro / sizeof ro[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", proc, ro[i]);
    if (lstat(path, &st) < 0) {
      if (errno == ENOENT) continue;
      fail("mount", errno, path);
    }
    if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) fail("mount", errno, path);
    remount_tree_ro(path); /* the host's /proc (no pid namespace) may carry submounts: binfmt_misc */
  }
  for (size_t i = 0; i < sizeof masked / sizeof masked[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", proc, masked[i]);
    if (lstat(path, &st) < 0) {
      if (errno == ENOENT) continue;
      fail("mount", errno, path);
    }
    if (mount("/dev/null", path, NULL, MS_BIND, NULL) < 0) fail("mount", errno, path);
  }
  for (size_t i = 0; i < sizeof hidden / sizeof hidden[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", proc, hidden[i]);
    if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode)) continue;
    if (mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0") < 0)
      fail("mount", errno, path);
  }
}

/*
 * The capabilities Docker gives a container by default. A RUN keeps only these (bounding, permitted,
 * effective and inheritable sets; ambient cleared). `allow_chroot` is false when the root was entered by
 * chroot: CAP_SYS_CHROOT would let root climb out of it (chroot into a subdirectory, then "..").
 * no_new_privs stays off, so that setuid programs (sudo, su) work as in Docker; the bounding set caps them.
 */
static const int default_caps[] = {CAP_CHOWN,  CAP_DAC_OVERRIDE, CAP_FSETID,     CAP_FOWNER,          CAP_MKNOD,
                                   CAP_NET_RAW, CAP_SETGID,      CAP_SETUID,     CAP_SETFCAP,         CAP_SETPCAP,
                                   CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_KILL, CAP_AUDIT_WRITE};

static void limit_caps(int allow_chroot) {
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  uint64_t keep = 0;
  int cannot_drop = 0;
  for (size_t i = 0; i < sizeof default_caps / sizeof default_caps[0]; i++) keep |= 1ULL << default_caps[i];
  if (!allow_chroot) keep &= ~(1ULL << CAP_SYS_CHROOT);
  for (int c = 0; c < 64; c++) {
    int has = prctl(PR_CAPBSET_READ, c, 0, 0, 0);
    if (has < 0) break; /* past the last capability this kernel knows */
    if (!has || (keep & (1ULL << c))) continue;
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
      if (errno != EPERM) fail("capabilities", errno, "PR_CAPBSET_DROP");
      cannot_drop = 1; /* no CAP_SETPCAP: a non-root helper with file capabilities */
      break;
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    fail("capabilities", errno, "PR_CAP_AMBIENT_CLEAR_ALL");
  if (syscall(SYS_capget, &hdr, data) < 0) fail("capabilities", errno, "capget");
  for (int k = 0; k < 2; k++) {
    uint32_t mask = (uint32_t)(keep >> (32 * k));
    data[k].effective &= mask, data[k].permitted &= mask, data[k].inheritable &= mask;
  }
  if (syscall(SYS_capset, &hdr, data) < 0) fail("capabilities", errno, "capset");
  /* Without a bounding set to cap them, file capabilities and setuid programs of the image must not raise
     privileges past the helper's own. */
  if (cannot_drop && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail("capabilities", errno, "PR_SET_NO_NEW_PRIVS");
}

/*
 * Enters the root: with a mount namespace by pivot_root (the old root detached, so nothing of the host is left
 * to climb back to); without one, or where pivot_root is refused (EINVAL: the host's root is the initramfs),
 * by chroot. Returns 1 after pivot_root, 0 after chroot.
 */
static int enter_root(void) {
  if (mountns) {
    int old = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (old < 0) fail("pivot_root", errno, "/");
    if (chdir(root_dir) < 0) fail("chdir", errno, root_dir);
    if (syscall(SYS_pivot_root, ".", ".") == 0) {
      /* The old root is now stacked on the new one: detach it from below, through a handle on it. */
      if (fchdir(old) < 0) fail("pivot_root", errno, "fchdir to the old root");
      if (umount2(".", MNT_DETACH) < 0) fail("pivot_root", errno, "detaching the old root");
      close(old);
      if (chdir("/") < 0) fail("chdir", errno, "/");
      return 1;
    }
    if (errno != EINVAL) fail("pivot_root", errno, root_dir);
    close(old);
  }
  if (chroot(root_dir) < 0) fail("chroot", errno, root_dir);
  if (chdir("/") < 0) fail("chdir", errno, "/");
  return 0;
}

/* Sets the overlay mounted over the root: lower dirs (':'-separated, topmost first), upper and work dir. */
static void set_overlay(const char *lowers, const char *upper, const char *work) {
  int n = snprintf(overlay_opts, sizeof overlay_opts, "lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=off,metacopy=off",
                   lowers, upper, work);
  if (n < 0 || (size_t)n >= sizeof overlay_opts) usage("overlay paths too long");
  n = snprintf(overlay_upper, sizeof overlay_upper, "%s", upper);
  if (n < 0 || (size_t)n >= sizeof overlay_upper) usage("overlay paths too long");
}

/*
 * Runs in the child that owns the new mount/pid namespaces: mounts, then enters the root (pivot_root or
 * chroot), chdirs and limits the capabilities. Without a root (in-place) only the mounts and chdir.
 */
static void setup_fs(void) {
  char target[4096];
  /* A mount namespace of the step's own: pivot_root moves the root of every process in its namespace, and
     the supervisor must keep the host's (it lists the overlay's upper, scans /proc for leftovers). */
  if (mountns && unshare(CLONE_NEWNS) < 0) fail("unshare", errno, "unshare(CLONE_NEWNS) for the step");
  if (mountns && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) fail("mount", errno, "make / rprivate");
  if (overlay_opts[0]) {
    if (mount("overlay", root_dir, "overlay", 0, overlay_opts) < 0) fail("mount", errno, "overlay over the root");
  } else if (mountns && root_dir) {
    /* pivot_root needs the root to be a mount point. */
    if (mount(root_dir, root_dir, NULL, MS_BIND | MS_REC, NULL) < 0) fail("mount", errno, "bind the root onto itself");
  }
  if (do_proc) {
    check_fixed_point(target, sizeof target, "/proc");
    if (pidns) {
      if (mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) fail("mount", errno, target);
    } else {
      /* No pid namespace: the host's /proc (its processes are visible), hardened the same way. */
      if (mount("/proc", target, NULL, MS_BIND | MS_REC, NULL) < 0) fail("mount", errno, target);
    }
    harden_proc(target);
  }
  if (do_dev) mount_dev();
  if (do_sys) {
    check_fixed_point(target, sizeof target, "/sys");
    /* A sysfs of the new network namespace where that works; else the host's, read-only throughout. */
    if (!netns || mount("sysfs", target, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
      if (mount("/sys", target, NULL, MS_BIND | MS_REC, NULL) < 0) fail("mount", errno, target);
      remount_tree_ro(target);
    }
  }
  if (do_devnodes) make_devnodes();
  for (size_t i = 0; i < nmounts; i++) {
    ensure_dev_target(mounts[i].dst, mounts[i].kind == 'b' ? mounts[i].src : NULL);
    if (mounts[i].kind == 'b') {
      bind_mount(mounts[i].src, mounts[i].dst, mounts[i].ro);
    } else {
      char opts[128];
      in_root(target, sizeof target, mounts[i].dst);
      snprintf(opts, sizeof opts, "mode=1777%s%s", mounts[i].size ? ",size=" : "", mounts[i].size ? mounts[i].size : "");
      if (mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0) fail("mount", errno, target);
    }
  }
  int pivoted = 0;
  if (root_dir) pivoted = enter_root();
  if (cwd_dir && chdir(cwd_dir) < 0) fail("chdir", errno, cwd_dir);
  if (root_dir) limit_caps(pivoted);
}

/* Switches credentials (after chroot), restores default signal state and executes the command. */
static void exec_command(char **argv) {
  sigset_t none;
  sigemptyset(&none);
  if (setsid() < 0) fail("setsid", errno, "setsid");
  if (want_creds) {
    int only_primary = ngroups == 0 || (ngroups == 1 && groups[0] == gid);
    if (!(setgroups_denied && only_primary) && setgroups(ngroups, groups) < 0) fail("credentials", errno, "setgroups");
    if (setgid(gid) < 0) fail("credentials", errno, "setgid");
    if (setuid(uid) < 0) fail("credentials", errno, "setuid");
  }
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) fail("prctl", errno, "PR_SET_PDEATHSIG");
  for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL); /* errors for SIGKILL/SIGSTOP are expected */
  if (sigprocmask(SIG_SETMASK, &none, NULL) < 0) fail("exec", errno, "sigprocmask");
  if (strchr(argv[0], '/')) {
    execv(argv[0], argv);
    fail("exec", errno, argv[0]);
  }
  const char *path = getenv("PATH");
  if (!path) path = DEFAULT_PATH;
  int saved = ENOENT;
  char file[4096];
  for (const char *p = path;; p++) {
    const char *end = strchrnul(p, ':');
    int n = snprintf(file, sizeof file, "%.*s%s%s", (int)(end - p), p, end == p ? "" : "/", argv[0]);
    if (n > 0 && (size_t)n < sizeof file) {
      execv(file, argv);
      if (errno != ENOENT && errno != ENOTDIR) saved = errno;
    }
    if (*end == '\0') break;
    p = end;
  }
  fail("exec", saved, argv[0]);
}

static void forward(int sig) {
  if (target_pid > 0 && kill(-target_pid, sig) < 0) kill(target_pid, sig);
  if (sig == SIGTERM || sig == SIGINT) alarm(2); /* escalate if the command ignores it */
}

static void escalate(int sig) {
  (void)sig;
  if (target_pid > 0 && kill(-target_pid, SIGKILL) < 0) kill(target_pid, SIGKILL);
}

static void handle_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = forward;
  for (size_t i = 0; i < sizeof fwd_sigs / sizeof fwd_sigs[0]; i++)
    if (sigaction(fwd_sigs[i], &sa, NULL) < 0) fail("signals", errno, "sigaction");
  sa.sa_handler = escalate;
  if (sigaction(SIGALRM, &sa, NULL) < 0) fail("signals", errno, "sigaction");
}

static int wait_status(pid_t pid, int *status) {
  while (waitpid(pid, status, 0) < 0)
    if (errno != EINTR) return -1;
  return 0;
}

static int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

/* pid 1 of the new pid namespace: runs the command as its child, reaps orphans, exits with its status. */
static void run_init(char **argv) {
  int status = 0;
  pid_t cmd = fork();
  if (cmd < 0) fail("fork", errno, "fork");
  if (cmd == 0) exec_command(argv);
  close(err_fd);
  err_fd = -1;
  target_pid = cmd;
  for (pid_t r = 0; r != cmd;)
    if ((r = waitpid(-1, &status, 0)) < 0 && errno != EINTR) _exit(127);
  if (WIFSIGNALED(status)) {
    /* pid 1 cannot kill itself with a signal: tell the supervisor which one killed the command. */
    unsigned char sig = (unsigned char)WTERMSIG(status);
    if (write(result_fd, &sig, 1) < 0) { /* supervisor gone: nothing to report */ }
  }
  _exit(exit_code(status));
}

/* Without a pid namespace: kills the command's group and every orphan reparented to us (subreaper). */
static void kill_leftovers(pid_t group) {
  char path[300], buf[512];
  kill(-group, SIGKILL);
  for (int rounds = 0; rounds < 100000; rounds++) {
    int status;
    pid_t r;
    while ((r = waitpid(-1, &status, WNOHANG)) > 0) continue;
    if (r < 0 && errno == ECHILD) return;
    DIR *d = opendir("/proc");
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      ssize_t n = read(fd, buf, sizeof buf - 1);
      close(fd);
      if (n <= 0) continue;
      buf[n] = '\0';
      char *rp = strrchr(buf, ')');
      int ppid;
      if (rp && sscanf(rp + 1, " %*c %d", &ppid) == 1 && ppid == getpid()) kill(atoi(e->d_name), SIGKILL);
    }
    closedir(d);
    nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
  }
}

/*
 * --list-upper FILE: the overlay's upper directory as kiln's snapshotter reads it, written once the command
 * and everything it left behind have exited. Little-endian binary: the magic "KLNUPL1\n", then one record per
 * entry below the upper, parents before children (a stack of directories, the last pushed listed first; names
 * of a directory in strcmp order, as Node's readdir returns them):
 *   u32 path length, path (relative to the upper, '/'-separated, any bytes but NUL),
 *   u64 mode (with the type bits), uid, gid, nlink, size, rdev, ino, dev,
 *   i64 atime seconds, u64 atime ns, then the same for mtime and ctime (lstat: symlinks are not followed),
 *   u32 xattr count, then per xattr: u32 name length, name, u32 value length, value
 *     (every trusted.overlay.* and security.capability; none for symlinks and whiteouts, 0/0 char devices);
 * and the trailer: u32 0xffffffff, u64 number of records. On failure FILE is removed and one line starting
 * "kiln-exec: list-upper:" goes to stderr; the command's exit status is unaffected.
 */
#define LIST_MAGIC "KLNUPL1\n"
struct lister { FILE *f; uint64_t records; char **stack; size_t nstack, capstack; };
static char xattr_names[65536], xattr_value[65536]; /* XATTR_LIST_MAX, XATTR_SIZE_MAX */

static void put_u32(FILE *f, uint32_t v) {
  unsigned char b[4];
  for (int k = 0; k < 4; k++) b[k] = (unsigned char)(v >> (8 * k));
  fwrite(b, 1, sizeof b, f);
}

static void put_u64(FILE *f, uint64_t v) {
  unsigned char b[8];
  for (int k = 0; k < 8; k++) b[k] = (unsigned char)(v >> (8 * k));
  fwrite(b, 1, sizeof b, f);
}

static void put_bytes(FILE *f, const char *p, size_t n) {
  put_u32(f, (uint32_t)n);
  fwrite(p, 1, n, f);
}

static int wanted_xattr(const char *name) {
  return strncmp(name, "trusted.overlay.", 16) == 0 || strcmp(name, "security.capability") == 0;
}

/* Writes the wanted xattrs of `path` (count, then name/value pairs); -1 with errno on failure. */
static int put_xattrs(FILE *f, const char *path) {
  ssize_t len = llistxattr(path, xattr_names, sizeof xattr_names);
  if (len < 0) {
    if (errno != ENOTSUP) return -1;
    len = 0;
  }
  uint32_t count = 0;
  for (ssize_t k = 0; k < len; k += (ssize_t)strlen(xattr_names + k) + 1) count += wanted_xattr(xattr_names + k);
  put_u32(f, count);
  for (ssize_t k = 0; k < len; k += (ssize_t)strlen(xattr_names + k) + 1) {
    if (!wanted_xattr(xattr_names + k)) continue;
    ssize_t vlen = lgetxattr(path, xattr_names + k, xattr_value, sizeof xattr_value);
    if (vlen < 0) return -1;
    put_bytes(f, xattr_names + k, strlen(xattr_names + k));
    put_bytes(f, xattr_value, (size_t)vlen);
  }
  return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int push_dir(struct lister *l, const char *rel) {
  if (l->nstack == l->capstack) {
    size_t cap = l->capstack ? 2 * l->capstack : 64;
    char **grown = realloc(l->stack, cap * sizeof *grown);
    if (!grown) return -1;
    l->stack = grown, l->capstack = cap;
  }
  if (!(l->stack[l->nstack] = strdup(rel))) return -1;
  l->nstack++;
  return 0;
}

/*
 * Lists the directory `rel` of the upper (`""`: the upper itself); -1 with errno and `*what` set on failure.
 * Works in the directory (fchdir): entries are looked up by name, not by their whole path.
 */
static int list_dir(struct lister *l, const char *upper, const char *rel, const char **what) {
  static char dirpath[8192], relpath[8192];
  char **names = NULL;
  size_t n = 0, cap = 0;
  int rc = -1;
  struct dirent *e;
  int dn = snprintf(dirpath, sizeof dirpath, "%s%s%s", upper, rel[0] ? "/" : "", rel);
  *what = dirpath;
  if (dn < 0 || (size_t)dn >= sizeof dirpath) {
    errno = ENAMETOOLONG; /* never list a truncated (other) path */
    return -1;
  }
  int fd = open(dirpath, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  DIR *d = fchdir(fd) == 0 ? fdopendir(fd) : NULL;
  if (!d) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  for (errno = 0; (e = readdir(d)) != NULL; errno = 0) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (n == cap) {
      char **grown = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *grown);
      if (!grown) goto out;
      names = grown;
    }
    if (!(names[n] = strdup(e->d_name))) goto out;
    n++;
  }
  if (errno) goto out;
  qsort(names, n, sizeof *names, by_name);
  for (size_t k = 0; k < n; k++) {
    struct stat st;
    int a = snprintf(relpath, sizeof relpath, "%s%s%s", rel, rel[0] ? "/" : "", names[k]);
    *what = relpath;
    if (a < 0 || (size_t)a >= sizeof relpath) {
      errno = ENAMETOOLONG;
      goto out;
    }
    if (lstat(names[k], &st) < 0) goto out;
    put_bytes(l->f, relpath, (size_t)a);
    const uint64_t fields[] = {st.st_mode, st.st_uid, st.st_gid, st.st_nlink, (uint64_t)st.st_size, st.st_rdev,
                               st.st_ino, st.st_dev, (uint64_t)st.st_atim.tv_sec, (uint64_t)st.st_atim.tv_nsec,
                               (uint64_t)st.st_mtim.tv_sec, (uint64_t)st.st_mtim.tv_nsec,
                               (uint64_t)st.st_ctim.tv_sec, (uint64_t)st.st_ctim.tv_nsec};
    for (size_t j = 0; j < sizeof fields / sizeof fields[0]; j++) put_u64(l->f, fields[j]);
    if (S_ISLNK(st.st_mode) || (S_ISCHR(st.st_mode) && st.st_rdev == 0)) put_u32(l->f, 0);
    else if (put_xattrs(l->f, names[k]) < 0) goto out;
    l->records++;
    if (S_ISDIR(st.st_mode) && push_dir(l, relpath) < 0) goto out;
  }
  rc = 0;
out:;
  int saved = errno;
  for (size_t k = 0; k < n; k++) free(names[k]);
  free(names);
  closedir(d);
  errno = saved;
  return rc;
}

/* Writes the listing of `upper` to the new file `file` (see above); on failure removes it and says so on stderr. */
static void list_upper(const char *upper, const char *file) {
  struct lister l = {0};
  const char *what = file;
  int rc = -1, fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd >= 0 && !(l.f = fdopen(fd, "w"))) close(fd);
  if (l.f) {
    setvbuf(l.f, NULL, _IOFBF, 1 << 18);
    fwrite(LIST_MAGIC, 1, sizeof LIST_MAGIC - 1, l.f);
    rc = push_dir(&l, "");
    while (rc == 0 && l.nstack > 0) {
      char *rel = l.stack[--l.nstack];
      rc = list_dir(&l, upper, rel, &what);
      free(rel);
    }
    if (rc == 0) {
      put_u32(l.f, 0xffffffffu);
      put_u64(l.f, l.records);
      what = file;
      if (fflush(l.f) != 0 || ferror(l.f)) rc = -1;
    }
  }
  int saved = errno;
  if (l.f && fclose(l.f) != 0 && rc == 0) saved = errno, rc = -1;
  while (l.nstack > 0) free(l.stack[--l.nstack]);
  free(l.stack);
  if (rc == 0) return;
  if (fd >= 0) unlink(file);
  fprintf(stderr, "kiln-exec: list-upper: %s: %s\n", what, strerror(saved));
}

/*
 * The run path: namespaces, then a child that sets up the root and executes `cmd`; reports on the status
 * pipe and returns the exit status. Runs in main, and in each check child of --probe.
 */
static int run_command(char **cmd) {
  if (userns) setup_userns();
  int flags = (mountns ? CLONE_NEWNS : 0) | (pidns ? CLONE_NEWPID : 0) | (netns ? CLONE_NEWNET : 0);
  if (flags && unshare(flags) < 0) fail("unshare", errno, "unshare(mount/pid/net namespaces)");
  if (netns) loopback_up();
  if (!pidns && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) fail("prctl", errno, "PR_SET_CHILD_SUBREAPER");

  int pipefd[2], resfd[2] = {-1, -1};
  if (pipe2(pipefd, O_CLOEXEC) < 0) fail("setup", errno, "pipe");
  if (pidns && pipe2(resfd, O_CLOEXEC | O_NONBLOCK) < 0) fail("setup", errno, "pipe");
  sigset_t block, old;
  sigemptyset(&block);
  for (size_t k = 0; k < sizeof fwd_sigs / sizeof fwd_sigs[0]; k++) sigaddset(&block, fwd_sigs[k]);
  sigaddset(&block, SIGALRM);
  if (sigprocmask(SIG_BLOCK, &block, &old) < 0) fail("setup", errno, "sigprocmask");
  handle_signals();
  /*
   * When kiln goes (exits on a second Ctrl-C, or is killed), nothing would end the command: SIGALRM
   * makes the escalation (SIGKILL to the command's group, then the leftovers) happen at once.
   */
  if (prctl(PR_SET_PDEATHSIG, SIGALRM) < 0) fail("prctl", errno, "PR_SET_PDEATHSIG");
  if (getppid() != parent_pid) fail("setup", ESRCH, "kiln exited before the command started");
  pid_t child = fork();
  if (child < 0) fail("fork", errno, "fork");
  if (child == 0) {
    close(pipefd[0]);
    err_fd = pipefd[1];
    result_fd = resfd[1];
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) fail("prctl", errno, "PR_SET_PDEATHSIG");
    setup_fs();
    if (pidns) {
      if (sigprocmask(SIG_SETMASK, &old, NULL) < 0) fail("setup", errno, "sigprocmask");
      run_init(cmd);
    }
    exec_command(cmd);
  }
  target_pid = child;
  close(pipefd[1]);
  if (pidns) close(resfd[1]);
  if (sigprocmask(SIG_SETMASK, &old, NULL) < 0) fail("setup", errno, "sigprocmask");

  /* The pipe closes on a successful exec (O_CLOEXEC); any bytes on it are an error line. */
  char line[8192];
  size_t used = 0;
  for (;;) {
    ssize_t n = read(pipefd[0], line + used, sizeof line - 1 - used);
    if (n > 0) used += (size_t)n;
    if (n == 0 || used == sizeof line - 1 || (n < 0 && errno != EINTR)) break;
  }
  close(pipefd[0]);
  int status = 0;
  if (used > 0) {
    if (write(status_fd >= 0 ? status_fd : 2, line, used) < 0) { /* nowhere left to report to */ }
    wait_status(child, &status);
    if (!pidns) kill_leftovers(child);
    return 127;
  }
  status_line("exec-ok\n", 0);
  if (wait_status(child, &status) < 0) fail("wait", errno, "waitpid");
  if (!pidns) kill_leftovers(child);
  if (list_upper_file) list_upper(overlay_upper, list_upper_file);
  unsigned char sig = 0;
  if (pidns && read(resfd[0], &sig, 1) == 1 && sig > 0) {
    status_line("signal %d\n", sig);
    return 128 + sig;
  }
  if (WIFSIGNALED(status)) status_line("signal %d\n", WTERMSIG(status));
  else status_line("exit %d\n", WEXITSTATUS(status));
  return exit_code(status);
}

/*
 * kiln-exec --spread DIR: creates DIR when missing (parents must exist) and sets the "top of directory
 * hierarchy" inode flag (FS_TOPDIR_FL, chattr +T) on it, so that ext4 places each directory made in DIR in a
 * lightly used block group (Orlov) instead of next to DIR. Without it a build's directory lands in the
 * block groups where the previous build's directory was just deleted, and on ext4 without a journal every
 * new inode there first skips the recently deleted ones (a scan per file: seconds for thousands of files).
 * Prints "topdir=1", or "topdir=0 <reason>" when the filesystem has no such flag; exits 1 only when DIR
 * cannot be made or opened.
 */
static int spread_mode(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "kiln-exec: usage: --spread DIR\n"); return 1; }
  const char *dir = argv[2];
  if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
    fprintf(stderr, "kiln-exec: spread: mkdir %s: %s\n", dir, strerror(errno));
    return 1;
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "kiln-exec: spread: open %s: %s\n", dir, strerror(errno));
    return 1;
  }
  int flags = 0;
  if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0) {
    printf("topdir=0 %s\n", strerror(errno));
  } else if (flags & FS_TOPDIR_FL) {
    printf("topdir=1\n");
  } else {
    flags |= FS_TOPDIR_FL;
    if (ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0) printf("topdir=0 %s\n", strerror(errno));
    else printf("topdir=1\n");
  }
  close(fd);
  return 0;
}

/*
 * kiln-exec --mount-overlay BASE LOWER[:LOWER...] UPPER WORK TARGET: mounts an overlay at TARGET in the
 * caller's mount namespace (the layer store's stage roots). Lower directories may be relative to BASE (the
 * helper chdirs there first) so that many layers fit in the one-page mount options.
 * kiln-exec --umount TARGET: unmounts TARGET (lazily when it is busy). Both exit 0 or print and exit 1.
 */
static int mount_mode(int argc, char **argv) {
  if (!strcmp(argv[1], "--umount")) {
    if (argc != 3) { fprintf(stderr, "kiln-exec: usage: --umount TARGET\n"); return 1; }
    if (umount2(argv[2], 0) == 0 || (errno == EBUSY && umount2(argv[2], MNT_DETACH) == 0)) return 0;
    fprintf(stderr, "kiln-exec: umount %s: %s\n", argv[2], strerror(errno));
    return 1;
  }
  if (argc != 7) { fprintf(stderr, "kiln-exec: usage: --mount-overlay BASE LOWERS UPPER WORK TARGET\n"); return 1; }
  for (int k = 3; k <= 5; k++)
    if (strchr(argv[k], ',')) { fprintf(stderr, "kiln-exec: mount-overlay: ',' in %s\n", argv[k]); return 1; }
  char data[8192];
  int n = snprintf(data, sizeof data, "lowerdir=%s,upperdir=%s,workdir=%s,redirect_dir=off,metacopy=off,index=off",
                   argv[3], argv[4], argv[5]);
  if (n < 0 || n >= (int)sizeof data || n >= getpagesize()) {
    fprintf(stderr, "kiln-exec: mount-overlay: options longer than one page\n");
    return 1;
  }
  if (chdir(argv[2]) < 0) { fprintf(stderr, "kiln-exec: chdir %s: %s\n", argv[2], strerror(errno)); return 1; }
  if (mount("overlay", argv[6], "overlay", 0, data) < 0) {
    fprintf(stderr, "kiln-exec: mount overlay at %s: %s\n", argv[6], strerror(errno));
    return 1;
  }
  return 0;
}

/*
 * kiln-exec --probe DIR: finds out which isolation mechanisms work here, in one process. Makes a scratch
 * directory under DIR and runs every check at once, each in a forked child that takes the run path above
 * with the options a RUN uses and a command that does not exist: a mechanism works iff its child gets as
 * far as exec. Prints one line of NAME=0|1 for the names in `checks`, then the `features` (options added
 * after --probe, as NAME=1: kiln passes them only to a helper that names them), and exits 0; exits 1
 * (message on stderr) when the scratch directory cannot be made. Everything it creates is removed.
 */
static const char features[] = "list-upper=1";
struct check { const char *name; int userns, mountns, pidns, netns, proc, dev, overlay; };
static const struct check checks[] = {
    {"chroot", 0, 0, 0, 0, 0, 0, 0},       {"mountns", 0, 1, 0, 0, 0, 1, 0},
    {"pidns", 0, 1, 1, 0, 1, 0, 0},        {"netns", 0, 0, 0, 1, 0, 0, 0},
    {"userns", 1, 1, 0, 0, 0, 1, 0},       {"userns-pidns", 1, 1, 1, 0, 1, 0, 0},
    {"userns-netns", 1, 1, 0, 1, 0, 0, 0}, {"overlay", 0, 1, 0, 0, 0, 1, 1},
};
#define NCHECKS (sizeof checks / sizeof checks[0])
/* Directories of the scratch dir: "root" for the chroot checks; an overlay's lower, upper and work dirs. */
static const char *const probe_dirs[] = {"root", "root/proc", "root/dev", "lower", "lower/dev", "upper", "work"};

static int remove_entry(const char *p, const struct stat *st, int type, struct FTW *f) {
  (void)st, (void)type, (void)f;
  if (remove(p) < 0) { /* left behind: nothing better to do */ }
  return 0;
}

/* In a check child: the options of check `c`, then the run path, with the status pipe `out`. */
static void run_check(const struct check *c, const char base[3072], int out) {
  static char root[4096], upper[4096], work[4096];
  static char missing[] = "/.kiln-probe-missing-command";
  char *cmd[] = {missing, NULL};
  status_fd = out;
  parent_pid = getppid();
  userns = c->userns, mountns = c->mountns, pidns = c->pidns, netns = c->netns, do_proc = c->proc, do_dev = c->dev;
  snprintf(root, sizeof root, "%s/%s", base, c->overlay ? "lower" : "root");
  root_dir = root;
  if (c->overlay) {
    /* The overlay snapshotter reads trusted.overlay.* xattrs of the upper dir: that filesystem must take them. */
    snprintf(upper, sizeof upper, "%s/upper", base);
    snprintf(work, sizeof work, "%s/work", base);
    if (setxattr(upper, "trusted.kiln.probe", "y", 1, 0) < 0) fail("xattr", errno, upper);
    set_overlay(root, upper, work);
  }
  _exit(run_command(cmd));
}

static int probe_mode(int argc, char **argv) {
  char base[3072], dir[4096], text[8192], line[1024];
  pid_t pids[NCHECKS];
  int fds[NCHECKS];
  size_t used = 0;
  if (argc != 3) { fprintf(stderr, "kiln-exec: usage: --probe DIR\n"); return 1; }
  int n = snprintf(base, sizeof base, "%s/kiln-probe-XXXXXX", argv[2]);
  if (n < 0 || (size_t)n >= sizeof base) errno = ENAMETOOLONG;
  if (n < 0 || (size_t)n >= sizeof base || !mkdtemp(base)) {
    fprintf(stderr, "kiln-exec: probe: cannot make a directory in %s: %s\n", argv[2], strerror(errno));
    return 1;
  }
  for (size_t k = 0; k < sizeof probe_dirs / sizeof probe_dirs[0]; k++) {
    snprintf(dir, sizeof dir, "%s/%s", base, probe_dirs[k]);
    if (mkdir(dir, 0755) < 0) {
      fprintf(stderr, "kiln-exec: probe: mkdir %s: %s\n", dir, strerror(errno));
      nftw(base, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
      return 1;
    }
  }
  for (size_t k = 0; k < NCHECKS; k++) {
    int p[2];
    fds[k] = -1;
    pids[k] = -1;
    if (pipe2(p, O_CLOEXEC) < 0) continue; /* the check counts as failed */
    pids[k] = fork();
    if (pids[k] == 0) {
      close(p[0]);
      run_check(&checks[k], base, p[1]);
    }
    close(p[1]);
    if (pids[k] < 0) close(p[0]);
    else fds[k] = p[0];
  }
  line[0] = '\0';
  for (size_t k = 0; k < NCHECKS; k++) {
    size_t len = 0;
    ssize_t r;
    while (fds[k] >= 0 && (r = read(fds[k], text + len, sizeof text - 1 - len)) != 0) {
      if (r > 0) len += (size_t)r;
      else if (errno != EINTR) break;
      if (len == sizeof text - 1) break;
    }
    text[len] = '\0';
    if (fds[k] >= 0) close(fds[k]);
    if (pids[k] > 0) wait_status(pids[k], &(int){0});
    int ok = strncmp(text, "error exec ", 11) == 0;
    used += (size_t)snprintf(line + used, sizeof line - used, "%s%s=%d", k ? " " : "", checks[k].name, ok);
  }
  nftw(base, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  printf("%s %s\n", line, features);
  return 0;
}

int main(int argc, char **argv) {
  parent_pid = getppid();
  if (argc >= 2 && !strcmp(argv[1], "--probe")) return probe_mode(argc, argv);
  if (argc >= 2 && !strcmp(argv[1], "--spread")) return spread_mode(argc, argv);
  if (argc >= 2 && (!strcmp(argv[1], "--mount-overlay") || !strcmp(argv[1], "--umount"))) return mount_mode(argc, argv);
  const struct { const char *name; int *flag; } bools[] = {
      {"--userns", &userns}, {"--mountns", &mountns}, {"--pidns", &pidns}, {"--netns", &netns},
      {"--proc", &do_proc}, {"--dev", &do_dev}, {"--sys", &do_sys}, {"--devnodes", &do_devnodes}};
  int i;
  if (fcntl(STATUS_FD, F_GETFD) >= 0) {
    status_fd = STATUS_FD;
    if (fcntl(status_fd, F_SETFD, FD_CLOEXEC) < 0) fail("setup", errno, "fcntl(3)");
  }
  for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    int takes = 1;
    if (!strcmp(a, "--root")) root_dir = v;
    else if (!strcmp(a, "--cwd")) cwd_dir = v;
    else if (!strcmp(a, "--uid")) { if (v) uid = (uid_t)parse_id(v, "bad --uid"); want_creds = 1; }
    else if (!strcmp(a, "--gid")) { if (v) gid = (gid_t)parse_id(v, "bad --gid"); want_creds = 1; }
    else if (!strcmp(a, "--groups")) {
      char buf[4096], *save = NULL;
      if (!v || strlen(v) >= sizeof buf) usage("bad --groups");
      strcpy(buf, v);
      for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (ngroups == MAX_GROUPS) usage("too many groups");
        groups[ngroups++] = (gid_t)parse_id(t, "bad --groups");
      }
      want_creds = 1;
    } else if (!strcmp(a, "--overlay")) { /* --overlay LOWER[:LOWER...]:UPPER:WORK (last two fields) */
      char buf[sizeof overlay_opts], *work, *upper;
      if (!v || strlen(v) >= sizeof buf - 128 || strchr(v, ',')) usage("bad --overlay");
      strcpy(buf, v);
      if (!(work = strrchr(buf, ':'))) usage("--overlay needs LOWER:UPPER:WORK");
      *work++ = '\0';
      if (!(upper = strrchr(buf, ':'))) usage("--overlay needs LOWER:UPPER:WORK");
      *upper++ = '\0';
      set_overlay(buf, upper, work);
    } else if (!strcmp(a, "--list-upper")) {
      list_upper_file = v;
    } else if (!strcmp(a, "--bind") || !strcmp(a, "--tmpfs")) {
      char *spec = argv[i + 1], *opt;
      if (!v || nmounts == MAX_MOUNTS) usage("bad or too many mounts");
      struct mnt *m = &mounts[nmounts++];
      if ((m->kind = a[2]) == 'b') { /* --bind SRC:DST[:ro|rw], --tmpfs DST[:size] */
        if (!(opt = strchr(spec, ':'))) usage("--bind needs SRC:DST[:ro|rw]");
        *opt = '\0';
        m->src = spec;
        spec = opt + 1;
      }
      if ((opt = strchr(spec, ':'))) *opt++ = '\0';
      if (strlen(spec) >= sizeof m->dst || spec[0] != '/') usage("mount target must be an absolute path");
      strcpy(m->dst, spec);
      if (m->kind == 't') m->size = opt;
      else if (opt && !(m->ro = !strcmp(opt, "ro")) && strcmp(opt, "rw")) usage("bind option must be ro or rw");
    } else {
      size_t b = 0;
      while (b < sizeof bools / sizeof bools[0] && strcmp(a, bools[b].name)) b++;
      if (b == sizeof bools / sizeof bools[0]) usage(a);
      *bools[b].flag = 1;
      takes = 0;
    }
    if (takes && !v) usage(a);
    i += takes;
  }
  if (i + 1 >= argc) usage("missing command after --");
  char **cmd = argv + i + 1;
  if ((do_proc || do_dev || do_sys || nmounts || overlay_opts[0]) && !mountns) usage("mounts need --mountns");
  if (overlay_opts[0] && !root_dir) usage("--overlay needs --root");
  if (list_upper_file && !overlay_opts[0]) usage("--list-upper needs --overlay");

  return run_command(cmd);
}
