// dptrain score --weights F (--data GLOB | --imagefolder DIR | --csv FILE)
//               --out predictions.csv
// Batch scoring with the evaluation pipeline of training (train/score.h):
// top-k classes with probabilities per record, the logit-adjusted class when
// the weights carry one, an error column for records that cannot be decoded,
// and, when labels are present, the metrics of `dptrain eval`. Runs on the
// CPU or a GPU (--device), on one rank or many (mpirun -np N); rank 0 writes
// predictions.csv and score_results.json (next to it) atomically.
// Exit status: 0 done, 1 runtime failure (an output could not be written),
// 2 bad input or configuration.
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "core/afile.h"
#include "core/json.h"
#include "core/log.h"
#include "core/opts.h"
#include "core/timer.h"
#include "data/score_files.h"
#include "dist/dist.h"
#include "train/device.h"
#include "train/results.h"
#include "train/score.h"

typedef struct {
  char weights[1024], data[4096], imagefolder[1024], csv[1024], out[1024], results[1024];
  char device[8], precision[8];
  int64_t batch;
  int top_k, threads, loader_threads, allow_nonfinite;
} score_opts_cli;

static const dp_opt score_opt_list[] = {
    DP_OPT_S(score_opts_cli, "weights", weights, DP_OPT_REQUIRED, "weights file (model.safetensors from `dptrain train`)"),
    DP_OPT_S(score_opts_cli, "data", data, 0, "shards: glob or comma list (labels optional: -1 = unlabelled)"),
    DP_OPT_S(score_opts_cli, "imagefolder", imagefolder, 0,
             "folder of JPEG/PNG files, flat or in class sub-folders (read directly, no packing)"),
    DP_OPT_S(score_opts_cli, "csv", csv, 0, "CSV with a 'path' column and optionally 'label' (RFC 4180)"),
    DP_OPT_S(score_opts_cli, "out", out, DP_OPT_REQUIRED, "predictions CSV to write (its folder must exist)"),
    DP_OPT_S(score_opts_cli, "results", results, 0, "score_results.json to write (empty: next to --out)"),
    DP_OPT_I(score_opts_cli, "top-k", DP_OPT_INT, top_k, 1, SCORE_MAX_TOP_K, 0,
             "classes per record, with probabilities (at most the class count)"),
    DP_OPT_S(score_opts_cli, "device", device, 0, "cpu | cuda | auto (cuda when every rank has a GPU)"),
    DP_OPT_S(score_opts_cli, "precision", precision, 0, "GPU compute: fp32 | tf32 | bf16 | fp16 | auto"),
    DP_OPT_I(score_opts_cli, "batch", DP_OPT_I64, batch, 1, 1 << 20, 0, "batch per rank (at most the records per rank)"),
    DP_OPT_I(score_opts_cli, "threads", DP_OPT_INT, threads, 0, 4096, DP_OPT_CORES,
             "compute threads per rank (0 = from the binding)"),
    DP_OPT_I(score_opts_cli, "loader-threads", DP_OPT_INT, loader_threads, 0, 4096, DP_OPT_CORES,
             "decode threads per rank (0 = from the binding)"),
    DP_OPT_I(score_opts_cli, "allow-nonfinite-weights", DP_OPT_INT, allow_nonfinite, 0, 1, DP_OPT_BARE,
             "load weights that hold NaN/Inf (refused by default)"),
};
static const dp_opts score_table = {
    "dptrain score", score_opt_list, (int)(sizeof score_opt_list / sizeof score_opt_list[0]),
    "usage: dptrain score --weights FILE (--data GLOB | --imagefolder DIR | --csv FILE) --out predictions.csv\n"
    "                     [--top-k K] [--device cpu|cuda|auto] [--batch B] [--results FILE]\n"
    "Scores every record with the model in FILE, preprocessed as its metadata says (the\n"
    "transform of `dptrain eval`). predictions.csv: one row per record in input order, with\n"
    "the top-k classes and probabilities, the logit-adjusted class when the model has one,\n"
    "and an error column for records that cannot be read or decoded. With labels, the\n"
    "metrics of `dptrain eval` go to score_results.json. docs/scoring.md has the details.\n"
    "Exit status: 0 ok, 1 runtime failure, 2 bad input or configuration.\n",
    0};

static void score_defaults(score_opts_cli *o) {
  memset(o, 0, sizeof *o);
  o->batch = 64;
  o->top_k = 3;
  snprintf(o->device, sizeof o->device, "cpu");
  snprintf(o->precision, sizeof o->precision, "fp32");
}

static int parse_score(void *ctx, int argc, char **argv) { return dp_opts_parse(&score_table, ctx, argc, argv); }

#define SCORE_BAD(...) (snprintf(msg, sizeof msg, "dptrain score: bad configuration: " __VA_ARGS__), ok = 0)

// FNV-1a over the file list, so ranks that listed a changing folder
// differently stop before scoring (their rows would not merge).
static uint64_t list_hash(const score_files *sf) {
  uint64_t h = 1469598103934665603ull;
  for (int64_t i = 0; i < sf->n; i++) {
    for (const char *p = sf->paths[i]; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
    h = (h ^ (uint32_t)(sf->labels[i] + 7)) * 1099511628211ull;
  }
  return h ^ (uint64_t)sf->n;
}

static void metrics_obj(dp_json *j, const char *key, const class_metrics *q, char **class_names) {
  run_results r;
  run_results_init(&r);
  r.evaluated = q != NULL;
  if (q) r.q = *q;   // borrowed: r is not freed with it
  r.class_names = class_names;
  dp_json_key(j, key);
  dp_json_begin_object(j);
  run_results_quality_json(j, &r);
  dp_json_end_object(j);
}

static int write_results(const char *path, const score_opts_cli *o, const score_ctx *sc, const score_out *so,
                         const train_device *td, const dist_ctx *d, const score_files *sf, double load0,
                         double total_wall) {
  dp_err e;
  dp_afile *af = dp_afile_open(path, &e);
  if (!af) {
    fprintf(stderr, "dptrain score: %s\n", e.msg);
    return -1;
  }
  const weights_meta *wm = &sc->meta;
  dp_json j;
  dp_json_init(&j, dp_afile_stream(af), 1);
  dp_json_begin_object(&j);
  dp_json_kv_int(&j, "schema_version", 1);
  dp_json_kv_string(&j, "kind", "score");
  dp_json_kv_string(&j, "weights", o->weights);
  dp_json_key(&j, "model");
  dp_json_begin_object(&j);
  dp_json_kv_string(&j, "name", wm->model.name);
  dp_json_kv_int(&j, "params", sc->params);
  dp_json_kv_int(&j, "flops_per_image_fwd", sc->flops_per_image_fwd);
  dp_json_kv_int(&j, "image_size", wm->model.image_size);
  dp_json_kv_int(&j, "channels", wm->model.channels);
  dp_json_kv_int(&j, "classes", wm->num_classes);
  dp_json_end_object(&j);
  dp_json_kv_string(&j, "transform", sc->transform);
  dp_json_key(&j, "input");
  dp_json_begin_object(&j);
  dp_json_kv_string(&j, "kind", o->data[0] ? "shards" : o->imagefolder[0] ? "imagefolder" : "csv");
  dp_json_kv_string(&j, "source", o->data[0] ? o->data : o->imagefolder[0] ? o->imagefolder : o->csv);
  dp_json_kv_int(&j, "records", so->records);
  dp_json_kv_int(&j, "labelled", sc->labelled);
  if (sf && o->imagefolder[0]) dp_json_kv_int(&j, "ignored_files", sf->ignored);
  if (sf && sf->note[0]) dp_json_kv_string(&j, "note", sf->note);
  dp_json_end_object(&j);
  dp_json_kv_string(&j, "predictions", o->out);
  dp_json_kv_int(&j, "top_k", o->top_k < wm->num_classes ? o->top_k : wm->num_classes);
  dp_json_kv_bool(&j, "logit_adjusted", sc->logit_bias != NULL);
  if (sc->logit_bias) {
    double b[SHARD_MAX_CLASSES];
    for (int c = 0; c < wm->num_classes; c++) b[c] = sc->logit_bias[c];
    dp_json_kv_double_array(&j, "logit_bias", b, wm->num_classes);
  }
  dp_json_kv_string(&j, "device", td->name);
  dp_json_kv_string(&j, "precision", td->precision);
  dp_json_kv_int(&j, "world_size", d->world);
  dp_json_kv_int(&j, "nodes", d->node_count);
  dp_json_kv_int(&j, "batch_per_rank", sc->batch);
  dp_json_kv_int(&j, "threads_per_rank", d->threads);
  dp_json_kv_int(&j, "loader_threads_per_rank", o->loader_threads > 0 ? o->loader_threads : d->loader_threads);
  dp_json_key(&j, "throughput");
  dp_json_begin_object(&j);
  dp_json_kv_double(&j, "images_per_s", so->images_per_s);
  dp_json_kv_double(&j, "steady_images_per_s", so->steady_images_per_s);
  dp_json_kv_double(&j, "wall_s", so->wall_s);
  dp_json_kv_double(&j, "steady_wall_s", so->steady_wall_s);
  dp_json_kv_double(&j, "total_wall_s", total_wall);
  dp_json_kv_double_array(&j, "per_rank_images_per_s", so->rank_images_per_s, d->world);
  dp_json_kv_double(&j, "load_1m_start", load0);
  dp_json_kv_double(&j, "load_1m_end", run_load_average_1m());
  dp_json_kv_string(&j, "basis",
                    "images decoded and scored / the slowest rank's scoring loop (read, decode, forward, rows); "
                    "steady: after each rank's first batch (graph warm-up excluded); setup excluded");
  dp_json_end_object(&j);
  dp_json_kv_int(&j, "scored", so->scored);
  dp_json_kv_int(&j, "errors", so->errors);
  dp_json_kv_double(&j, "error_rate", so->records ? (double)so->errors / (double)so->records : 0.0);
  const int64_t listed = so->errors < 1000 ? so->errors : 1000;
  dp_json_kv_int(&j, "errors_listed", listed);
  dp_json_key(&j, "skipped");   // the first 1000; predictions.csv has every one
  dp_json_begin_array(&j);
  for (int64_t i = 0; i < listed; i++) {
    dp_json_begin_object(&j);
    dp_json_kv_int(&j, "record", so->err_list[i].index);
    dp_json_kv_string(&j, "where", so->err_list[i].where);
    dp_json_kv_string(&j, "reason", so->err_list[i].reason);
    dp_json_end_object(&j);
  }
  dp_json_end_array(&j);
  metrics_obj(&j, "quality", so->evaluated ? &so->q : NULL, wm->class_names);
  if (sc->logit_bias) metrics_obj(&j, "quality_adjusted", so->adjusted ? &so->q_adj : NULL, wm->class_names);
  dp_json_end_object(&j);
  fputc('\n', dp_afile_stream(af));
  if (dp_afile_commit(af, &e)) {
    fprintf(stderr, "dptrain score: %s\n", e.msg);
    return -1;
  }
  return 0;
}

int cmd_score(int argc, char **argv) {
  score_opts_cli o;
  score_defaults(&o);
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      dp_opts_usage(&score_table, &o, stdout);
      return 0;
    }
  dist_ctx d;
  dist_init(&d, &argc, &argv);
  if (cli_parse_all_ranks(&d, parse_score, &o, argc, argv)) {
    dist_finalize(&d);
    return 2;
  }
  const double t0 = dp_now(), load0 = run_load_average_1m();
  char msg[1400] = "", err[1200];
  int ok = 1;
  int nsrc = !!o.data[0] + !!o.imagefolder[0] + !!o.csv[0];
  if (nsrc != 1) SCORE_BAD("give exactly one of --data GLOB, --imagefolder DIR and --csv FILE");
  if (ok && strcmp(o.device, "cpu") && strcmp(o.device, "cuda") && strcmp(o.device, "auto"))
    SCORE_BAD("setting 'device': '%s' is not cpu, cuda or auto", o.device);
  if (ok && strcmp(o.precision, "fp32") && strcmp(o.precision, "tf32") && strcmp(o.precision, "bf16") &&
      strcmp(o.precision, "fp16") && strcmp(o.precision, "auto"))
    SCORE_BAD("setting 'precision': '%s' is not fp32, tf32, bf16, fp16 or auto", o.precision);
  // The output folders must exist (not created: a typo should not make a tree).
  char outdir[1024], results[1100], dirbuf[1024];
  snprintf(dirbuf, sizeof dirbuf, "%s", o.out);
  snprintf(outdir, sizeof outdir, "%s", dirname(dirbuf));
  if (o.results[0]) snprintf(results, sizeof results, "%s", o.results);
  else snprintf(results, sizeof results, "%s/score_results.json", outdir);
  struct stat sb;
  if (ok && d.rank == 0 && (stat(outdir, &sb) != 0 || !S_ISDIR(sb.st_mode)))
    SCORE_BAD("setting 'out': '%s' is not an existing directory", outdir);
  if (ok && !strcmp(o.device, "cuda")) {   // a config error (exit 2), not a crash in device setup
    char why[256];
    if (train_device_cuda_probe(why, sizeof why) <= 0) SCORE_BAD("setting 'device': cuda on %s: %s", d.host, why);
  }
  if (cli_agree(&d, ok, msg)) {
    dist_finalize(&d);
    return 2;
  }
  dist_bind(&d, o.threads, o.loader_threads);
  // File modes: the labels come from folder names / the CSV, under the model's classes.
  weights_meta wm;
  int have_wm = 0;
  score_files sf;
  memset(&sf, 0, sizeof sf);
  int have_sf = 0;
  if (!o.data[0]) {
    if (weights_read_meta(o.weights, &wm, err, sizeof err) != 0) {
      SCORE_BAD("setting 'weights': %s", err);
    } else {
      have_wm = 1;
      int rc = o.imagefolder[0] ? score_files_imagefolder(&sf, o.imagefolder, (const char *const *)wm.class_names,
                                                         wm.num_classes, err, sizeof err)
                                : score_files_csv(&sf, o.csv, (const char *const *)wm.class_names, wm.num_classes,
                                                  err, sizeof err);
      if (rc) SCORE_BAD("%s", err);
      else have_sf = 1;
    }
  }
  if (have_sf && d.world > 1) {
    uint64_t h[2] = {list_hash(&sf), ~list_hash(&sf)};
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, h, 2, MPI_UINT64_T, MPI_MAX, d.comm), "comparing the file lists");
    if (h[0] != list_hash(&sf) || h[1] != ~list_hash(&sf))
      SCORE_BAD("the ranks listed different files (is the folder or CSV changing, or not the same on every node?)");
  }
  if (cli_agree(&d, ok, msg)) {
    if (have_sf) score_files_free(&sf);
    if (have_wm) weights_meta_free(&wm);
    dist_finalize(&d);
    return 2;
  }
  // The device needs the normalisation for its on-device input path.
  weights_meta dm;
  float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
  if (weights_read_meta(o.weights, &dm, err, sizeof err) == 0) {
    memcpy(mean, dm.mean, sizeof mean);
    memcpy(stdv, dm.std, sizeof stdv);
    weights_meta_free(&dm);
  }
  train_device *td = train_device_open(o.device, o.precision, &d, mean, stdv);
  score_spec sp = {o.weights, o.data[0] ? o.data : NULL, have_sf ? &sf.cfg : NULL, o.batch, o.loader_threads,
                   o.allow_nonfinite ? WEIGHTS_ALLOW_NONFINITE : 0};
  score_ctx sc;
  if (score_open(&sc, &sp, td, &d, err, sizeof err)) SCORE_BAD("%s", err);
  if (cli_agree(&d, ok, msg)) {
    score_close(&sc);
    td->destroy(td);
    if (have_sf) score_files_free(&sf);
    if (have_wm) weights_meta_free(&wm);
    dist_finalize(&d);
    return 2;
  }
  if (d.rank == 0) {
    printf("score: %s (%s, %lld classes) on %lld records (%lld labelled) from %s; %s x %d rank(s), batch %lld\n",
           o.weights, sc.meta.model.name, (long long)sc.meta.num_classes, (long long)sc.records,
           (long long)sc.labelled, o.data[0] ? o.data : o.imagefolder[0] ? o.imagefolder : o.csv, td->name, d.world,
           (long long)sc.batch);
    printf("  transform: %s\n", sc.transform);
    if (sc.logit_bias) printf("  logit adjustment: the model carries dptrain.logit_bias (column 'adjusted')\n");
    if (have_sf && sf.note[0]) printf("  note: %s\n", sf.note);
    if (have_sf && sf.ignored) printf("  ignored %lld file(s) without an image extension\n", (long long)sf.ignored);
  }
  score_opts so_opts = {o.top_k};
  score_out so;
  score_run(&sc, td, &d, &so_opts, &so);
  int write_failed = 0;
  if (d.rank == 0) {
    printf("scored %lld of %lld records in %.2f s: %.1f img/s", (long long)so.scored, (long long)so.records,
           so.wall_s, so.images_per_s);
    if (so.steady_images_per_s == so.steady_images_per_s)
      printf(" (%.1f img/s after the first batch)", so.steady_images_per_s);
    printf(", %s x %d rank(s)\n", td->name, d.world);
    if (so.errors) {
      printf("  %lld record(s) could not be scored (rows with an error in %s):\n", (long long)so.errors, o.out);
      for (int64_t i = 0; i < so.errors && i < 10; i++) {
        const score_error *e = &so.err_list[i];   // a file's reason starts with its path already
        if (strncmp(e->reason, e->where, strlen(e->where))) printf("    %s: %s\n", e->where, e->reason);
        else printf("    %s\n", e->reason);
      }
      if (so.errors > 10) printf("    ... (%lld more)\n", (long long)(so.errors - 10));
    }
    if (so.evaluated) {
      printf("metrics on the %lld labelled record(s) that were scored:\n", (long long)so.q.total);
      class_metrics_print(&so.q, (const char *const *)sc.meta.class_names, stdout);
      if (so.adjusted)
        printf("  logit-adjusted: accuracy %.4f  macro-F1 %.4f\n", so.q_adj.accuracy, so.q_adj.macro_f1);
    }
    dp_err e;
    if (score_write_csv(&sc, &so_opts, &so, o.out, &e) == 0) {
      printf("wrote %s\n", o.out);
    } else {
      fprintf(stderr, "dptrain score: %s\n", e.msg);
      write_failed = 1;
    }
    if (write_results(results, &o, &sc, &so, td, &d, have_sf ? &sf : NULL, load0, dp_now() - t0) == 0)
      printf("wrote %s\n", results);
    else
      write_failed = 1;
    fflush(stdout);
  }
  score_out_free(&so);
  score_close(&sc);
  td->destroy(td);
  if (have_sf) score_files_free(&sf);
  if (have_wm) weights_meta_free(&wm);
  MPI_CHECK(MPI_Bcast(&write_failed, 1, MPI_INT, 0, d.comm), "sharing the outcome");
  dist_finalize(&d);
  return write_failed ? 1 : 0;
}
