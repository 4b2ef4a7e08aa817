// Checkpoint files and the writer thread (see checkpoint.h).
#include "train/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/afile.h"
#include "core/log.h"
#include "core/timer.h"

// ---- building --------------------------------------------------------------------
void ckpt_path(const char *dir, int64_t step, char *out, size_t n) {
  snprintf(out, n, "%s/ckpt-%012lld.safetensors", dir, (long long)step);
}

static const char *opt_names(optim_kind k, int which) {
  if (k == OPTIM_SGD) return which == 0 ? "optimizer.momentum_buffer." : NULL;
  return which == 0 ? "optimizer.exp_avg." : "optimizer.exp_avg_sq.";
}

int ckpt_pack(st_pack *pk, const ckpt_content *c, char *err, int err_sz) {
  const nn_graph *g = c->g;
  if (weights_pack_add(pk, g, c->params, c->bufs, c->wm, 1, err, err_sz)) return -1;
  char name[NN_NAME_MAX + 64];
  if (c->rank_bufs)
    for (int r = 1; r < c->world; r++)
      for (int32_t i = 0; i < g->nbufs; i++) {
        snprintf(name, sizeof name, "dptrain.rank%d.%s", r, g->bufs[i].name);
        st_pack_add_copy(pk, name, ST_F32, 1, &g->bufs[i].numel,
                         c->rank_bufs + (size_t)r * (size_t)g->nbuf_elems + (size_t)g->bufs[i].offset);
      }
  if (c->opt) {
    for (int which = 0; which < 2; which++) {
      const char *pre = opt_names(c->opt->kind, which);
      const float *src = which == 0 ? c->opt->state1 : c->opt->state2;
      if (!pre || !src) continue;
      for (int32_t i = 0; i < g->nparams; i++) {
        const nn_param *p = &g->params[i];
        snprintf(name, sizeof name, "%s%s", pre, p->name);
        st_pack_add_copy(pk, name, ST_F32, p->ndim, p->shape, src + p->offset);
      }
    }
    int64_t np = g->nparams;
    st_pack_add_copy(pk, "dptrain.optimizer.param_step", ST_I64, 1, &np, c->opt->param_step);
  }
  st_pack_meta_str(pk, "dptrain.checkpoint", c->state_json);
  st_pack_meta(pk, "dptrain.checkpoint_format", "%d", CKPT_FORMAT_VERSION);
  return 0;
}

// The completeness proof, computed on the writer thread (a CRC over a
// ResNet-50 checkpoint costs a fraction of a second the loop need not wait).
static void seal(st_pack *pk) {
  st_pack_meta(pk, "dptrain.data_bytes", "%lld", (long long)st_pack_data_bytes(pk));
  st_pack_meta(pk, "dptrain.crc32", "%08" PRIx32, st_pack_data_crc32(pk));
}

// ---- writer thread ------------------------------------------------------------------
typedef struct job {
  st_pack pk;
  char path[1100];
  int is_ckpt;
  int64_t step, protect;
  struct job *next;
} job;

struct ckpt_writer {
  char dir[1024];
  int keep;
  pthread_t th;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  job *head, *tail;
  int queued;   // jobs not yet finished (queued + running)
  int stop;
  int64_t kill_step;   // test hook (-1: off)
  ckpt_stats st;
};

void ckpt_writer_kill_at(ckpt_writer *w, int64_t step) { w->kill_step = step; }

// The test hook: half the file's size in zeros under the temp name, then SIGKILL.
_Noreturn static void die_mid_write(const job *j) {
  char tmp[1200];
  dp_tmp_path_for(j->path, tmp, sizeof tmp);
  FILE *f = fopen(tmp, "wb");
  int64_t half = st_pack_data_bytes(&j->pk) / 2;
  static const char zeros[65536];
  for (int64_t k = 0; f && k < half; k += (int64_t)sizeof zeros) fwrite(zeros, 1, sizeof zeros, f);
  if (f) fflush(f);
  fprintf(stderr, "dptrain: DPTRAIN_INJECT_KILL: SIGKILL while writing %s\n", j->path);
  fflush(stderr);
  kill(getpid(), SIGKILL);
  abort();
}

static int parse_ckpt_name(const char *fn, int64_t *step) {
  long long s = 0;
  int n = 0;
  if (sscanf(fn, "ckpt-%12lld.safetensors%n", &s, &n) == 1 && fn[n] == 0 && s >= 0) {
    *step = s;
    return 1;
  }
  return 0;
}

static int cmp_desc(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? 1 : x > y ? -1 : 0;
}

// Steps of the checkpoints in dir, newest first; returns the count (array malloc'd).
static int list_ckpts(const char *dir, int64_t **steps) {
  *steps = NULL;
  DIR *dd = opendir(dir);
  if (!dd) return 0;
  int n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(dd)) != NULL) {
    int64_t s;
    if (!parse_ckpt_name(e->d_name, &s)) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      *steps = dp_realloc(*steps, (size_t)cap * sizeof(int64_t), "checkpoint list");
    }
    (*steps)[n++] = s;
  }
  closedir(dd);
  if (n) qsort(*steps, (size_t)n, sizeof(int64_t), cmp_desc);
  return n;
}

static void prune(ckpt_writer *w, int64_t protect) {
  int64_t *steps;
  int n = list_ckpts(w->dir, &steps);
  for (int i = w->keep; i < n; i++) {
    if (steps[i] == protect) continue;
    char p[1100];
    ckpt_path(w->dir, steps[i], p, sizeof p);
    if (unlink(p) != 0 && errno != ENOENT) LOG_WARN("could not remove old checkpoint %s: %s", p, strerror(errno));
  }
  free(steps);
}

static void *writer_main(void *arg) {
  ckpt_writer *w = arg;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->head && !w->stop) pthread_cond_wait(&w->cv, &w->mu);
    if (!w->head && w->stop) break;
    job *j = w->head;
    w->head = j->next;
    if (!w->head) w->tail = NULL;
    pthread_mutex_unlock(&w->mu);

    double t0 = dp_now();
    dp_err err;
    dp_err_clear(&err);
    if (j->is_ckpt) seal(&j->pk);
    if (j->is_ckpt && j->step == w->kill_step) die_mid_write(j);
    // The directory exists from the start when checkpoints were asked for;
    // a preemption of a run without them creates it here.
    int rc = j->is_ckpt ? dp_mkdir_p(w->dir, &err) : 0;
    if (!rc) rc = st_pack_write(&j->pk, j->path, &err);
    int64_t bytes = st_pack_data_bytes(&j->pk);
    if (rc == 0 && j->is_ckpt) prune(w, j->protect);
    double dt = dp_now() - t0;
    st_pack_free(&j->pk);

    pthread_mutex_lock(&w->mu);
    w->st.writes++;
    snprintf(w->st.last_path, sizeof w->st.last_path, "%s", j->path);
    if (rc) {
      w->st.failures++;
      snprintf(w->st.last_error, sizeof w->st.last_error, "%s", err.msg);
    } else {
      w->st.last_error[0] = 0;
      w->st.last_bytes = bytes;
      w->st.last_seconds = dt;
      w->st.total_seconds += dt;
      if (dt > w->st.max_seconds) w->st.max_seconds = dt;
    }
    if (rc) LOG_WARN("writing %s failed: %s (older checkpoints are kept)", j->path, err.msg);
    free(j);
    w->queued--;
    pthread_cond_broadcast(&w->cv);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

// A writer that died mid-file leaves ".ckpt-...tmp.<pid>.<n>" behind: only
// one job writes a run's checkpoints, so any such file is garbage.
static void remove_stray_temps(const char *dir) {
  DIR *dd = opendir(dir);
  if (!dd) return;
  struct dirent *e;
  while ((e = readdir(dd)) != NULL) {
    if (strncmp(e->d_name, ".ckpt-", 6) || !strstr(e->d_name, ".tmp.")) continue;
    char p[1400];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (unlink(p) == 0) LOG_INFO("removed %s (left by a writer that was stopped mid-file)", p);
  }
  closedir(dd);
}

ckpt_writer *ckpt_writer_create(const char *dir, int create, int keep, dp_err *err) {
  if (create && dp_mkdir_p(dir, err)) return NULL;
  remove_stray_temps(dir);
  ckpt_writer *w = dp_calloc(1, sizeof *w, "checkpoint writer");
  snprintf(w->dir, sizeof w->dir, "%s", dir);
  w->keep = keep > 0 ? keep : 1;
  w->kill_step = -1;
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  if (pthread_create(&w->th, NULL, writer_main, w) != 0) {
    dp_err_set(err, 1, "starting the checkpoint writer thread: %s", strerror(errno));
    free(w);
    return NULL;
  }
  return w;
}

static double enqueue(ckpt_writer *w, job *j) {
  double t0 = dp_now();
  pthread_mutex_lock(&w->mu);
  while (w->queued >= 2) pthread_cond_wait(&w->cv, &w->mu);
  double waited = dp_now() - t0;
  if (w->tail) w->tail->next = j;
  else w->head = j;
  w->tail = j;
  w->queued++;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
  return waited;
}

static job *job_from(st_pack *pk) {
  job *j = dp_calloc(1, sizeof *j, "checkpoint job");
  j->pk = *pk;
  st_pack_init(pk);
  return j;
}

double ckpt_writer_submit(ckpt_writer *w, st_pack *pk, int64_t step, int64_t protect_step) {
  job *j = job_from(pk);
  ckpt_path(w->dir, step, j->path, sizeof j->path);
  j->is_ckpt = 1;
  j->step = step;
  j->protect = protect_step;
  return enqueue(w, j);
}

double ckpt_writer_submit_file(ckpt_writer *w, st_pack *pk, const char *path) {
  job *j = job_from(pk);
  snprintf(j->path, sizeof j->path, "%s", path);
  return enqueue(w, j);
}

double ckpt_writer_flush(ckpt_writer *w) {
  double t0 = dp_now();
  pthread_mutex_lock(&w->mu);
  while (w->queued > 0) pthread_cond_wait(&w->cv, &w->mu);
  pthread_mutex_unlock(&w->mu);
  return dp_now() - t0;
}

ckpt_stats ckpt_writer_get_stats(ckpt_writer *w) {
  pthread_mutex_lock(&w->mu);
  ckpt_stats s = w->st;
  pthread_mutex_unlock(&w->mu);
  return s;
}

void ckpt_writer_destroy(ckpt_writer *w) {
  if (!w) return;
  ckpt_writer_flush(w);
  pthread_mutex_lock(&w->mu);
  w->stop = 1;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->th, NULL);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  free(w);
}

// ---- reading -----------------------------------------------------------------------
static int cmp_tensor_name(const void *a, const void *b) {
  return strcmp((*(const st_tensor *const *)a)->name, (*(const st_tensor *const *)b)->name);
}

static uint32_t file_crc(const st_file *f) {
  int n = st_count(f);
  const st_tensor **v = dp_calloc((size_t)n + 1, sizeof *v, "checksum order");
  for (int i = 0; i < n; i++) v[i] = st_at(f, i);
  qsort(v, (size_t)n, sizeof *v, cmp_tensor_name);
  uLong crc = crc32(0L, Z_NULL, 0);
  for (int i = 0; i < n; i++) {
    const unsigned char *d = st_data(f, v[i]);
    for (int64_t left = v[i]->end - v[i]->begin; left > 0;) {
      uInt c = left > (1 << 30) ? (1u << 30) : (uInt)left;
      crc = crc32(crc, d, c);
      d += c;
      left -= c;
    }
  }
  free(v);
  return (uint32_t)crc;
}

int ckpt_open(const char *path, ckpt_file *cf, dp_err *err) {
  memset(cf, 0, sizeof *cf);
  snprintf(cf->path, sizeof cf->path, "%s", path);
  cf->f = st_open(path, err);
  if (!cf->f) return -1;
  const char *db = st_meta(cf->f, "dptrain.data_bytes"), *crc = st_meta(cf->f, "dptrain.crc32"),
             *state = st_meta(cf->f, "dptrain.checkpoint");
  if (!db || !crc || !state) {
    dp_err_set(err, 1, "%s is not a dptrain checkpoint (no dptrain.checkpoint / data_bytes / crc32 metadata)", path);
    ckpt_close(cf);
    return -1;
  }
  int64_t have = 0;
  for (int i = 0; i < st_count(cf->f); i++) have += st_at(cf->f, i)->end - st_at(cf->f, i)->begin;
  char *end = NULL;
  long long want = strtoll(db, &end, 10);
  if (!end || *end || want != have) {
    dp_err_set(err, 1, "%s is incomplete: %lld data bytes, the metadata says %s", path, (long long)have, db);
    ckpt_close(cf);
    return -1;
  }
  char got[16];
  snprintf(got, sizeof got, "%08" PRIx32, file_crc(cf->f));
  if (strcmp(got, crc)) {
    dp_err_set(err, 1, "%s is corrupt: data CRC-32 %s, the metadata says %s", path, got, crc);
    ckpt_close(cf);
    return -1;
  }
  char jerr[256];
  cf->state = jv_parse(state, strlen(state), jerr, sizeof jerr);
  if (!cf->state) {
    dp_err_set(err, 1, "%s: the run state is not valid JSON: %s", path, jerr);
    ckpt_close(cf);
    return -1;
  }
  if (jv_num(cf->state, "format", -1) != CKPT_FORMAT_VERSION) {
    dp_err_set(err, 1, "%s: checkpoint format %g, this dptrain reads %d", path, jv_num(cf->state, "format", -1),
               CKPT_FORMAT_VERSION);
    ckpt_close(cf);
    return -1;
  }
  cf->step = (int64_t)jv_num(cf->state, "step", -1);
  return 0;
}

void ckpt_close(ckpt_file *cf) {
  if (cf->f) st_close(cf->f);
  if (cf->state) jv_free(cf->state);
  cf->f = NULL;
  cf->state = NULL;
}

int ckpt_find_latest(const char *dir, ckpt_file *cf, char *notes, size_t notes_n) {
  if (notes_n) notes[0] = 0;
  int64_t *steps;
  int n = list_ckpts(dir, &steps);
  size_t used = 0;
  int rc = n ? -1 : 1;
  for (int i = 0; i < n; i++) {
    char p[1100];
    ckpt_path(dir, steps[i], p, sizeof p);
    dp_err e;
    dp_err_clear(&e);
    if (ckpt_open(p, cf, &e) == 0) {
      if (used && used < notes_n) snprintf(notes + used, notes_n - used, "; resuming from %s instead", p);
      rc = 0;
      break;
    }
    if (used < notes_n) used += (size_t)snprintf(notes + used, notes_n - used, "%s%s", used ? "; " : "", e.msg);
  }
  free(steps);
  return rc;
}

int ckpt_read_f32(const ckpt_file *cf, const char *name, float *dst, int64_t numel, dp_err *err) {
  const st_tensor *t = st_find(cf->f, name);
  if (!t || t->dtype != ST_F32 || t->numel != numel) {
    dp_err_set(err, 1, "%s: tensor %s %s", cf->path, name,
               !t ? "is missing" : t->dtype != ST_F32 ? "is not F32" : "has another size than the model's");
    return -1;
  }
  st_copy(cf->f, t, dst);
  return 0;
}

int ckpt_read_model(const ckpt_file *cf, const nn_graph *g, int rank, float *params, float *bufs, dp_err *err) {
  for (int32_t i = 0; i < g->nparams; i++)
    if (ckpt_read_f32(cf, g->params[i].name, params + g->params[i].offset, g->params[i].numel, err)) return -1;
  char name[NN_NAME_MAX + 64];
  for (int32_t i = 0; i < g->nbufs; i++) {
    const char *nm = g->bufs[i].name;
    if (rank > 0) {
      snprintf(name, sizeof name, "dptrain.rank%d.%s", rank, g->bufs[i].name);
      if (st_find(cf->f, name)) nm = name;
    }
    if (ckpt_read_f32(cf, nm, bufs + g->bufs[i].offset, g->bufs[i].numel, err)) return -1;
  }
  return 0;
}

int ckpt_read_optim(const ckpt_file *cf, const nn_graph *g, optim_snapshot *s, dp_err *err) {
  char name[NN_NAME_MAX + 64];
  for (int which = 0; which < 2; which++) {
    const char *pre = opt_names(s->kind, which);
    float *dst = which == 0 ? s->state1 : s->state2;
    if (!pre || !dst) continue;
    for (int32_t i = 0; i < g->nparams; i++) {
      snprintf(name, sizeof name, "%s%s", pre, g->params[i].name);
      if (ckpt_read_f32(cf, name, dst + g->params[i].offset, g->params[i].numel, err)) {
        dp_err_set(err, 1, "%s has no %s state for %s (was it written by a run with another optimizer?)", cf->path,
                   pre, g->params[i].name);
        return -1;
      }
    }
  }
  const st_tensor *t = st_find(cf->f, "dptrain.optimizer.param_step");
  if (!t || t->dtype != ST_I64 || t->numel != g->nparams) {
    dp_err_set(err, 1, "%s: dptrain.optimizer.param_step is missing or has the wrong size", cf->path);
    return -1;
  }
  st_copy(cf->f, t, s->param_step);
  s->step = (int64_t)jv_num(cf->state, "optimizer.step", 0);
  s->applied = (int64_t)jv_num(cf->state, "optimizer.applied", (double)s->step);
  return 0;
}
