#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "core/outguard.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  int fd;     // the inherited descriptor (blocking; the launcher may share it)
  int nbfd;   // our own non-blocking description of the same pipe/tty, or -1
  volatile const int *stop;
} guard;

static guard g_out = {1, -1, NULL}, g_err = {2, -1, NULL};
static volatile uint64_t g_dropped;

// A second open file description of the same pipe or terminal, so that
// O_NONBLOCK is ours alone (setting it on fd 1 would change the launcher's
// shared description too). Regular files never block on a reader, and
// reopening one would lose its offset, so they keep the plain path.
static int reopen_nonblocking(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))) return -1;
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  return open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
}

static ssize_t guard_write(void *cookie, const char *buf, size_t n) {
  guard *g = cookie;
  size_t off = 0;
  int fd = g->nbfd >= 0 ? g->nbfd : g->fd;
  while (off < n) {
    ssize_t w = write(fd, buf + off, n - off);
    if (w > 0) {
      off += (size_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) break;   // reader gone: a log line is not worth the run
    if (g->stop && *g->stop) break;
    struct pollfd p = {fd, POLLOUT, 0};
    (void)poll(&p, 1, 200);   // wakes on room, on a signal (EINTR), or to re-check the stop flag
  }
  if (off < n) g_dropped += n - off;
  return (ssize_t)n;   // what was dropped is counted, not reported to stdio as an error
}

static FILE *wrap(guard *g, volatile const int *stop, int mode) {
  g->stop = stop;
  g->nbfd = reopen_nonblocking(g->fd);
  cookie_io_functions_t io = {NULL, guard_write, NULL, NULL};
  FILE *f = fopencookie(g, "w", io);
  if (!f) {
    if (g->nbfd >= 0) close(g->nbfd);
    g->nbfd = -1;
    return NULL;
  }
  if (setvbuf(f, NULL, mode, mode == _IONBF ? 0 : 4096) != 0) {
    fclose(f);
    return NULL;
  }
  return f;
}

int dp_outguard_stdio(volatile const int *stop) {
  fflush(stdout);
  fflush(stderr);
  FILE *o = wrap(&g_out, stop, _IOLBF);
  if (!o) return -1;
  FILE *e = wrap(&g_err, stop, _IONBF);
  if (!e) {
    fclose(o);
    return -1;
  }
  // glibc's stdout/stderr are assignable variables; every printf and log
  // line in the process then goes through the guard.
  stdout = o;
  stderr = e;
  return 0;
}

uint64_t dp_outguard_dropped(void) { return g_dropped; }
