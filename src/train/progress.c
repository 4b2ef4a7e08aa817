#include "train/progress.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/timer.h"

void progress_init(progress *p, FILE *f, int64_t total_steps, int every) {
  p->f = f;
  // Open MPI hands ranks a pseudo-terminal even when mpirun's own output goes
  // to a file, so under a launcher the default is plain lines;
  // DPTRAIN_PROGRESS=tty|plain overrides.
  const char *mode = getenv("DPTRAIN_PROGRESS");
  int launched = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_RANK") || getenv("SLURM_PROCID");
  p->tty = mode && !strcmp(mode, "tty") ? 1 : mode && !strcmp(mode, "plain") ? 0 : (!launched && isatty(fileno(f)));
  p->total_steps = total_steps;
  p->every = every > 0 ? every : (int)(total_steps / 20 > 0 ? (total_steps / 20 < 100 ? total_steps / 20 : 100) : 1);
  p->start = p->last_print = dp_now();
  p->dirty = 0;
}

static void fmt_eta(char *b, size_t n, double s) {
  if (s < 0 || s != s) s = 0;
  long t = (long)(s + 0.5);
  snprintf(b, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
}

void progress_update(progress *p, int64_t epoch, int64_t step, double loss, double img_s, double lr) {
  double now = dp_now();
  int last = step >= p->total_steps;
  if (!p->tty && !last && step % p->every != 0 && now - p->last_print < 30.0) return;
  if (p->tty && !last && now - p->last_print < 0.2) return;
  p->last_print = now;
  double per_step = step > 0 ? (now - p->start) / (double)step : 0;
  char eta[32];
  fmt_eta(eta, sizeof eta, per_step * (double)(p->total_steps - step));
  if (p->tty) {
    fprintf(p->f, "\r\033[Kepoch %lld  step %lld/%lld  loss %.4f  %.1f img/s  lr %.3g  ETA %s",
            (long long)epoch, (long long)step, (long long)p->total_steps, loss, img_s, lr, eta);
    p->dirty = 1;
    if (last) fputc('\n', p->f), p->dirty = 0;
  } else {
    fprintf(p->f, "epoch %lld step %lld/%lld loss %.4f img/s %.1f lr %.3g eta %s\n", (long long)epoch,
            (long long)step, (long long)p->total_steps, loss, img_s, lr, eta);
  }
  fflush(p->f);
}

void progress_break(progress *p) {
  if (p->tty && p->dirty) {
    fputc('\n', p->f);
    fflush(p->f);
    p->dirty = 0;
  }
}
