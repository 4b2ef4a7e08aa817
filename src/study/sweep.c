#include "study/sweep.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/afile.h"
#include "core/check.h"
#include "study/runs.h"

static int has_arg(const sweep_opts *s, const char *name) {
  for (int i = 0; i < s->ntrain_args; i++)
    if (!strcmp(s->train_args[i], name)) return 1;
  return 0;
}

// Runs argv; returns its exit status (or 127 when it could not start).
static int run_argv(char **argv, int keep_binding) {
  fprintf(stderr, "study sweep:");
  for (int i = 0; argv[i]; i++) fprintf(stderr, " %s", argv[i]);
  fprintf(stderr, "\n");
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "study sweep: fork failed: %s\n", strerror(errno));
    return 127;
  }
  if (pid == 0) {
    // Under mpirun each of <= 2 ranks is bound to a core; dptrain keeps a
    // binding it was given when Slurm says so (dist/bind.c).
    if (keep_binding) setenv("SLURM_CPU_BIND_TYPE", "cores", 1);
    execvp(argv[0], argv);
    fprintf(stderr, "study sweep: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return 127;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static int one_run(const sweep_opts *s, int n, const char *dir, const char *baseline) {
  char nbuf[16], nodes[16];
  snprintf(nbuf, sizeof nbuf, "%d", n);
  snprintf(nodes, sizeof nodes, "%d", s->per_node > 0 ? (n + s->per_node - 1) / s->per_node : 1);
  char *lt = strdup(s->launcher);
  PTR_CHECK(lt, "launcher");
  char **argv = dp_calloc((size_t)(64 + s->ntrain_args), sizeof(char *), "sweep argv");
  int k = 0;
  char *save = NULL;
  for (char *t = strtok_r(lt, " \t", &save); t && k < 48; t = strtok_r(NULL, " \t", &save))
    argv[k++] = !strcmp(t, "{n}") ? nbuf : !strcmp(t, "{nodes}") ? nodes : t;
  argv[k++] = (char *)s->self;
  argv[k++] = "train";
  for (int i = 0; i < s->ntrain_args; i++) argv[k++] = s->train_args[i];
  argv[k++] = "--out";
  argv[k++] = (char *)dir;
  if (baseline) {
    argv[k++] = "--baseline";
    argv[k++] = (char *)baseline;
  }
  argv[k] = NULL;
  int rc = run_argv(argv, s->keep_binding);
  free(argv);
  free(lt);
  return rc;
}

int study_sweep(const sweep_opts *s, char ***paths) {
  *paths = dp_calloc((size_t)s->nranks + 1, sizeof(char *), "sweep paths");
  dp_err e;
  dp_err_clear(&e);
  if (dp_mkdir_p(s->out_dir, &e)) {
    fprintf(stderr, "study sweep: %s\n", e.msg);
    return 2;
  }
  char base[1200] = "";
  int own_baseline = !has_arg(s, "--baseline") && !has_arg(s, "--baseline-steps");
  for (int i = 0; i < s->nranks; i++) {
    int n = s->ranks[i];
    char dir[1100], res[1200];
    snprintf(dir, sizeof dir, "%s/np%d", s->out_dir, n);
    snprintf(res, sizeof res, "%s/results.json", dir);
    const char *bl = own_baseline && n > 1 && base[0] ? base : NULL;
    int rc = one_run(s, n, dir, bl);
    if (rc) {
      fprintf(stderr, "study sweep: the %d-rank run exited %d\n", n, rc);
      return rc;
    }
    for (int again = 0; again < s->remeasure; again++) {
      sr_set one = {0};
      char err[512];
      const char *p[1] = {res};
      if (sr_load(&one, p, 1, err, sizeof err)) {
        sr_free(&one);
        break;
      }
      sr_check(&one);
      int noisy = one.r[0].noisy;
      if (noisy) fprintf(stderr, "study sweep: %s: %s; measuring again\n", res, one.r[0].flags);
      sr_free(&one);
      if (!noisy) break;
      char keep[1300];
      snprintf(keep, sizeof keep, "%s/results.noisy%d.json", dir, again + 1);
      if (rename(res, keep)) {
        fprintf(stderr, "study sweep: cannot keep %s as %s: %s\n", res, keep, strerror(errno));
        return 1;
      }
      rc = one_run(s, n, dir, bl);
      if (rc) return rc;
    }
    if (n == 1) snprintf(base, sizeof base, "%s", res);
    (*paths)[i] = strdup(res);
    PTR_CHECK((*paths)[i], "sweep path");
  }
  return 0;
}
