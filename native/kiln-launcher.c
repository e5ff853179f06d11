/*
 * kiln-launcher: the /kaniko/executor, /kaniko/warmer and /kaniko/kiln entry points of kiln's
 * executor image. The image has no shell and its /lib may be overwritten by a base image (the
 * in-place back-end extracts layers over /), so this static program starts Node.js through the
 * dynamic loader and libraries shipped under the launcher's own directory, never from /lib:
 *
 *   <dir>/lib/ld-linux-x86-64.so.2 --library-path <dir>/lib <dir>/node <dir>/kiln.mjs ARGS...
 *
 * The command (executor, warmer, kiln) is taken from argv[0]'s basename and passed to the bundle
 * in KILN_INVOKED_AS. Everything else is the user's argv, unchanged.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void die(const char *what) {
  fprintf(stderr, "kiln-launcher: %s: %s\n", what, strerror(errno));
  exit(127);
}

int main(int argc, char **argv) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n < 0) die("reading /proc/self/exe");
  self[n] = '\0';
  char dirbuf[PATH_MAX];
  strncpy(dirbuf, self, sizeof(dirbuf) - 1);
  dirbuf[sizeof(dirbuf) - 1] = '\0';
  const char *dir = dirname(dirbuf);

  char namebuf[PATH_MAX];
  strncpy(namebuf, argc > 0 ? argv[0] : "executor", sizeof(namebuf) - 1);
  namebuf[sizeof(namebuf) - 1] = '\0';
  const char *name = basename(namebuf);
  const char *mode = "executor";
  if (strcmp(name, "warmer") == 0) mode = "warmer";
  else if (strcmp(name, "kiln") == 0) mode = "kiln";
  if (setenv("KILN_INVOKED_AS", mode, 1) != 0) die("setenv");

  char loader[PATH_MAX], libdir[PATH_MAX], node[PATH_MAX], bundle[PATH_MAX];
  snprintf(loader, sizeof(loader), "%s/lib/ld-linux-x86-64.so.2", dir);
  snprintf(libdir, sizeof(libdir), "%s/lib", dir);
  snprintf(node, sizeof(node), "%s/node", dir);
  snprintf(bundle, sizeof(bundle), "%s/kiln.mjs", dir);

  char **args = calloc((size_t)argc + 6, sizeof(char *));
  if (args == NULL) die("calloc");
  int i = 0;
  args[i++] = loader;
  args[i++] = "--library-path";
  args[i++] = libdir;
  args[i++] = node;
  args[i++] = bundle;
  for (int a = 1; a < argc; a++) args[i++] = argv[a];
  args[i] = NULL;
  execv(loader, args);
  die(loader);
  return 127;
}
