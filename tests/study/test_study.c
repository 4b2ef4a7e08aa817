// The compute-selection study against synthetic inputs with known answers:
//  - the throughput model (study/terms.h): compute-, decode-, communication-,
//    storage- and straggler-bound configurations give the hand-computed rate
//    and name the right binding term; a batch that does not fit is
//    infeasible, not slow;
//  - the runs' honesty checks (study/runs.h): a 258 %-efficiency run and a
//    baseline with a 30 % step-time CV are "noisy: re-measure"; a 2-rank run
//    whose --baseline is another image size gets no efficiency (merging
//    refused), and runs at different sizes are different series;
//  - the whole report (study/report.h) on a synthetic hardware table,
//    scenarios, published figure, input bench and workload provider: a
//    decode-bound scenario is reported input-bound, a slow-network multi-node
//    configuration communication-bound, an oversized batch infeasible, TPUs
//    not runnable, a CUDA path without a GPU run flagged unverified; and a
//    calibration row is predicted from the other run (leave-one-out);
//  - bad input (a malformed hardware table) is refused with exit code 2.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/jsonread.h"
#include "study/report.h"
#include "study/runs.h"
#include "study/terms.h"
#include "testutil.h"

static int near(double a, double b, double rel) { return fabs(a - b) <= rel * fabs(b) + 1e-12; }

static sm_input base_input(void) {
  sm_input in;
  memset(&in, 0, sizeof in);
  in.flops_fwd = 1e9;          // 1 GFLOP forward: 3 GFLOP per trained image
  in.batch = 10;
  in.grad_bytes = 4e8;
  in.bytes_per_image = 1e5;
  in.devices = 1;
  in.devices_per_node = 8;
  in.peak_flops = 1e12;
  in.mfu = 0.5;                // 5e11 useful FLOP/s: 166.67 img/s per device
  in.cores_per_device = 0;
  in.input_rate_per_core = 0;
  in.storage_bps = 0;
  in.intra_bps = 1e11;
  in.inter_bps = 1e11;
  in.max_batch = -1;
  in.price_per_device_hour = 2;
  in.images = 1e6;
  in.epochs = 3;
  return in;
}

static void test_terms(void) {
  sm_result r;
  // Compute-bound, one device: 10 images x 3e9 / 5e11 = 0.06 s per step.
  sm_input in = base_input();
  sm_evaluate(&in, &r);
  TU_CHECK(r.binding == SM_COMPUTE && near(r.step_s, 0.06, 1e-12) && near(r.rate, 10 / 0.06, 1e-12),
           "compute-bound: binding %s, step %g, rate %g", sm_term_name(r.binding), r.step_s, r.rate);
  // time = 3 epochs x 1e6 / 166.67 = 18000 s; cost = 5 h x 1 x $2 = $10.
  TU_CHECK(near(r.time_s, 18000, 1e-12) && near(r.cost_usd, 10, 1e-12), "time %g cost %g", r.time_s, r.cost_usd);

  // Decode-bound accelerator: 2 cores x 100 img/s = 200 img/s per device,
  // compute would do 1667: the input pipeline binds, 4 devices -> 800 img/s.
  in = base_input();
  in.mfu = 1.0, in.peak_flops = 5e12, in.devices = 4;
  in.cores_per_device = 2, in.input_rate_per_core = 100;
  in.grad_bytes = 0;
  sm_evaluate(&in, &r);
  TU_CHECK(r.binding == SM_INPUT && near(r.rate, 800, 1e-12), "decode-bound: %s %g", sm_term_name(r.binding), r.rate);
  TU_CHECK(near(r.cap[SM_INPUT], 800, 1e-12) && r.cap[SM_COMPUTE] > r.cap[SM_INPUT], "input cap %g", r.cap[SM_INPUT]);
  // The same on a CPU row: the loader shares the compute cores, so its time adds.
  in.input_shares_compute = 1;
  sm_evaluate(&in, &r);
  double want = 40 / (10 * 3e9 / 5e12 + 10 / 200.0);
  TU_CHECK(r.binding == SM_INPUT && near(r.rate, want, 1e-12), "CPU input adds: %g vs %g", r.rate, want);

  // Communication-bound multi-node: 16 devices, 8 per node -> 2 nodes over a
  // 1 GB/s network: ring = 2 x 15/16 x 4e8 / 1e9 = 0.75 s, nothing hidden.
  in = base_input();
  in.devices = 16, in.inter_bps = 1e9;
  sm_evaluate(&in, &r);
  double ring = 2.0 * 15 / 16 * 4e8 / 1e9;
  TU_CHECK(r.nodes == 2 && r.binding == SM_COMM && near(r.t[SM_COMM], ring, 1e-12) &&
               near(r.rate, 160 / (0.06 + ring), 1e-12),
           "comm-bound: nodes %d binding %s t_comm %g rate %g", r.nodes, sm_term_name(r.binding), r.t[SM_COMM], r.rate);
  TU_CHECK(near(sm_ring_allreduce_s(4e8, 16, 1e9), ring, 1e-12), "ring formula");
  // Half of it hidden behind backward: half the exposed time.
  in.hidden_fraction = 0.5;
  sm_evaluate(&in, &r);
  TU_CHECK(near(r.t[SM_COMM], ring / 2, 1e-12), "hidden fraction %g", r.t[SM_COMM]);
  // Inside one node the fast link: 8 devices at 100 GB/s stay compute-bound.
  in = base_input();
  in.devices = 8;
  sm_evaluate(&in, &r);
  TU_CHECK(r.nodes == 1 && r.binding == SM_COMPUTE && near(r.bus_bps, 1e11, 1e-12), "one node: %s", sm_term_name(r.binding));

  // Storage-bound: 4 devices x 10 images x 1e5 bytes per 0.06 s needs 67 MB/s; 10 MB/s allows 100 img/s.
  in = base_input();
  in.devices = 4, in.storage_bps = 1e7, in.grad_bytes = 0;
  sm_evaluate(&in, &r);
  TU_CHECK(r.binding == SM_STORAGE && near(r.rate, 1e7 / 1e5, 1e-12), "storage-bound: %s %g", sm_term_name(r.binding),
           r.rate);

  // Stragglers: 2 devices, 10 % CV: t_s = 0.06 x 0.1 x E[max of 2] = 0.06 x 0.1 / sqrt(pi).
  in = base_input();
  in.devices = 2, in.grad_bytes = 0, in.step_cv = 0.1;
  sm_evaluate(&in, &r);
  TU_CHECK(near(r.t[SM_SYNC], 0.006 / sqrt(M_PI), 1e-6), "stragglers %g", r.t[SM_SYNC]);
  TU_CHECK(near(sm_expected_max_normal(2), 1 / sqrt(M_PI), 1e-6), "E[max 2]");
  TU_CHECK(near(sm_expected_max_normal(10), 1.5388, 0.01), "E[max 10] %g", sm_expected_max_normal(10));
  TU_CHECK(sm_expected_max_normal(1) == 0, "E[max 1]");

  // A shared machine: half the cores' time -> half the compute rate.
  in = base_input();
  in.cpu_share = 0.5;
  sm_evaluate(&in, &r);
  TU_CHECK(near(r.rate, 10 / 0.12, 1e-12), "CPU share 0.5: rate %g", r.rate);

  // Memory: batch 10 > the 8 that fit -> infeasible, never slow.
  in = base_input();
  in.max_batch = 8;
  sm_evaluate(&in, &r);
  TU_CHECK(!r.feasible && r.binding == SM_MEMORY && r.rate == 0 && isinf(r.time_s) && isinf(r.cost_usd),
           "infeasible: feasible %d binding %s", r.feasible, sm_term_name(r.binding));
  in.max_batch = 10;
  sm_evaluate(&in, &r);
  TU_CHECK(r.feasible && r.binding == SM_COMPUTE, "batch that fits exactly");
}

// ---- synthetic files ------------------------------------------------------------
static char dir[256];

static void put(const char *name, const char *text) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  char *slash = strrchr(p, '/');
  *slash = 0;
  mkdir(p, 0755);
  *slash = '/';
  FILE *f = fopen(p, "w");
  if (!f) {
    fprintf(stderr, "cannot write %s\n", p);
    exit(1);
  }
  fputs(text, f);
  fclose(f);
}

// A schema-1 training results.json with the fields the study reads.
static void put_run(const char *name, const char *model, int size, int world, double img_s, double eff, double cv,
                    double base_cv, const char *baseline, double hidden, double f1) {
  char t[4096];
  snprintf(t, sizeof t,
           "{\"schema_version\": 1, \"kind\": \"train\", \"created_utc\": \"2026-01-01T00:00:00Z\", \"world_size\": %d,\n"
           " \"images_per_s\": %g, \"scaling_efficiency\": %s, \"comm_hidden_fraction\": %s, \"macro_f1\": %s,\n"
           " \"accuracy\": 0.5, \"mfu\": null,\n"
           " \"hardware\": {\"name\": \"testcore\", \"kind\": \"cpu\", \"unit\": \"core\", \"precision\": \"fp32\",\n"
           "   \"peak_flops_per_rank\": 1e11, \"price_per_rank_hour\": 0.1, \"cores_per_rank\": 1, \"nodes\": 1, \"hosts\": \"testhost\"},\n"
           " \"model\": {\"name\": \"%s\", \"params\": 1000000, \"flops_per_image_fwd\": %g, \"image_size\": %d, \"batch_per_rank\": 16},\n"
           " \"throughput\": {\"timed_steps\": 20, \"epochs_done\": 2},\n"
           " \"timings\": {\"step_s\": 0.5, \"data_wait_s\": 0.001},\n"
           " \"step_stats\": {\"n\": 20, \"cv\": %g, \"mean_s\": 0.5},\n"
           " \"baseline_step_stats\": {\"n\": %d, \"cv\": %s},\n"
           " \"baseline\": {\"source\": \"%s\", \"images_per_s\": null},\n"
           " \"comm\": {\"grad_bytes\": 4000000, \"bus_bandwidth_Bps\": 1e9},\n"
           " \"build\": {\"device\": \"cpu\", \"cuda_compiled\": false},\n"
           " \"machine\": {\"cpu_model\": \"Test CPU\", \"cpus_online\": 2, \"load_1m_start\": 0.5, \"load_1m_end\": 0.7},\n"
           " \"quality\": {\"evaluated\": %s, \"samples\": 400, \"class_names\": [\"a\", \"b\"]}}\n",
           world, img_s, isnan(eff) ? "null" : "%EFF%", isnan(hidden) ? "null" : "%HID%",
           isnan(f1) ? "null" : "%F1%", model, 1e9 * (size / 64.0) * (size / 64.0), size, cv, isnan(base_cv) ? 0 : 10,
           isnan(base_cv) ? "null" : "%BCV%", baseline ? baseline : "", isnan(f1) ? "false" : "true");
  // Fill the optional numbers (kept out of the format to keep it readable).
  char out[4096], *o = out;
  for (const char *p = t; *p;) {
    double v = NAN;
    const char *tag = NULL;
    if (!strncmp(p, "%EFF%", 5)) v = eff, tag = p;
    else if (!strncmp(p, "%HID%", 5)) v = hidden, tag = p;
    else if (!strncmp(p, "%F1%", 4)) v = f1, tag = p;
    else if (!strncmp(p, "%BCV%", 5)) v = base_cv, tag = p;
    if (tag) {
      o += sprintf(o, "%g", v);
      p += p[3] == '%' ? 4 : 5;
    } else {
      *o++ = *p++;
    }
  }
  *o = 0;
  put(name, out);
}

static char *path_of(const char *name) {
  static char buf[8][512];
  static int k;
  char *b = buf[k++ % 8];
  snprintf(b, 512, "%s/%s", dir, name);
  return b;
}

static void test_runs(void) {
  // A 1-rank run whose step time varies by 30 %, a 2-rank run reporting 258 %
  // efficiency, and a 2-rank run at 64 px whose --baseline is the 32 px run.
  put_run("r32/results.json", "cnn", 32, 1, 100, NAN, 0.30, NAN, NULL, NAN, NAN);
  put_run("r64x2/results.json", "cnn", 64, 2, 60, 0.9, 0.05, NAN, path_of("r32/results.json"), 0.5, NAN);
  put_run("rnoisy/results.json", "cnn", 32, 2, 516, 2.58, 0.05, 0.05, "in-job", 0.5, NAN);
  put_run("rbcv/results.json", "cnn", 32, 2, 150, 0.8, 0.05, 0.25, "in-job", 0.5, NAN);
  sr_set s = {0};
  char err[512];
  const char *p[4] = {path_of("r32/results.json"), path_of("r64x2/results.json"), path_of("rnoisy/results.json"),
                      path_of("rbcv/results.json")};
  TU_CHECK(sr_load(&s, p, 4, err, sizeof err) == 0, "load: %s", err);
  if (s.n != 4) return;
  sr_check(&s);
  TU_CHECK(s.r[0].noisy && strstr(s.r[0].flags, "noisy: re-measure"), "CV 30 %% 1-rank run flagged: '%s'", s.r[0].flags);
  TU_CHECK(s.r[1].eff_refused && isnan(s.r[1].eff) && strstr(s.r[1].flags, "refused"),
           "baseline at another image size refused: '%s'", s.r[1].flags);
  TU_CHECK(s.r[2].noisy && strstr(s.r[2].flags, "258"), "258 %% efficiency flagged: '%s'", s.r[2].flags);
  TU_CHECK(s.r[3].noisy && strstr(s.r[3].flags, "baseline step-time CV"), "baseline CV flagged: '%s'", s.r[3].flags);
  TU_CHECK(!sr_same_series(&s.r[0], &s.r[1]) && sr_same_series(&s.r[0], &s.r[2]), "series split by image size");
  TU_CHECK(!strcmp(s.r[0].cpu_model, "Test CPU") && !strcmp(s.r[0].host, "testhost"), "machine recorded");
  sr_free(&s);
}

// Synthetic workload: F = 1 GFLOP at 64 px (x size^2), 1M parameters, plan = 100 MB + 10 MB x batch.
static int fake_describe(const char *model, int64_t size, int64_t classes, const char *opt, int64_t batch,
                         double *flops, double *params, double *plan) {
  (void)classes, (void)opt;
  if (strcmp(model, "cnn")) return -1;
  *flops = 1e9 * (double)size / 64 * (double)size / 64;
  *params = 1e6;
  *plan = 1e8 + 1e7 * (double)batch;
  return 0;
}

static const jv *find_grid(const jv *sc, const char *hw, int devices) {
  const jv *g = jv_get(sc, "grid");
  for (int i = 0; g && i < g->n; i++)
    if (!strcmp(jv_str(&g->items[i], "hardware", ""), hw) && (int)jv_num(&g->items[i], "devices", 0) == devices)
      return &g->items[i];
  return NULL;
}

static const jv *find_scenario(const jv *root, const char *name) {
  const jv *s = jv_get(root, "scenarios");
  for (int i = 0; s && i < s->n; i++)
    if (!strcmp(jv_str(&s->items[i], "name", ""), name)) return &s->items[i];
  return NULL;
}

static void test_report(void) {
  // Hardware: a CPU socket, a fast GPU with 1 host core per device (decode-
  // bound), the same GPU with 64 host cores on a slow network, a small-memory
  // GPU, a TPU, and the runs' core row.
  put("hw.tsv",
      "name\tkind\tunit\tfp32\ttf32\tbf16\tusd_per_hour\tcores_per_device\tmemory_gib\tdevices_per_node\tintra_node_GBps\tinter_node_GBps\tstorage_GBps\tsource\n"
      "testcore\tcpu\tcore\t0.1\t0\t0.1\t0.1\t1\t8\t2\t1\t1\t10\ttest\n"
      "sock\tcpu\tsocket\t2\t0\t2\t1\t32\t256\t2\t10\t10\t10\ttest\n"
      "fastgpu\tgpu\tdevice\t50\t100\t500\t2\t1\t80\t8\t200\t0.5\t100\ttest\n"
      "slownet\tgpu\tdevice\t50\t100\t500\t2\t64\t80\t8\t200\t0.05\t100\ttest\n"
      "smallgpu\tgpu\tdevice\t10\t20\t40\t0.5\t8\t1\t8\t50\t10\t100\ttest\n"
      "tpu\ttpu\tdevice\t0\t0\t200\t1\t8\t16\t4\t100\t100\t100\ttest\n");
  // Scenarios: cnn at 64 px; the second's batch 200 needs 2.1 GB (> smallgpu's 0.9 GiB).
  put("sc.tsv",
      "name\tmodel\timage_size\tepochs\tbatch\toptimizer\tclasses\twhat\n"
      "small\tcnn\t64\t1\t64\tsgd\t2\tdecode-bound test\n"
      "big\tcnn\t64\t1\t200\tsgd\t2\tinfeasible on smallgpu\n");
  put("pub.tsv", "family\tmodel\timage_size\tclasses\thardware\tprecision\timg_s\tsource\n"
                 "cnn\tcnn\t64\t2\tfastgpu\tbf16\t50000\ta test figure\n");
  put("ib.json", "{\"kind\": \"input_bench\", \"machine\": {\"cpu_model\": \"Test CPU\", \"cpus_online\": 2, \"load_1m_end\": 0.1},\n"
                 " \"jpeg\": {\"count\": 8, \"width\": 1000, \"height\": 800, \"quality\": 92, \"mean_bytes\": 184320},\n"
                 " \"raw_decode_img_s_per_core\": 150, \"fused\": [{\"out_size\": 64, \"float_img_s_per_core\": 100,"
                 " \"uint8_img_s_per_core\": 100}]}\n");
  // Two 1-rank calibration runs at 64 and 32 px with equal MFU: each predicts the other exactly.
  put_run("c64/results.json", "cnn", 64, 1, 10, NAN, 0.02, NAN, NULL, NAN, 0.7);
  put_run("c32/results.json", "cnn", 32, 1, 40, NAN, 0.02, NAN, NULL, NAN, NAN);
  const char *res[2] = {path_of("c64/results.json"), path_of("c32/results.json")};
  study_opts o;
  study_opts_defaults(&o);
  o.results = res;
  o.nresults = 2;
  o.out = path_of("out/study.md");
  o.json = path_of("out/study.json");
  o.hardware_table = path_of("hw.tsv");
  o.scenarios = path_of("sc.tsv");
  o.published = path_of("pub.tsv");
  o.input_bench = path_of("ib.json");
  o.describe = fake_describe;
  o.dc.images = 1e6;
  o.dc.image_bytes = 1e5;
  o.dc.max_devices = 16;
  int rc = study_report(&o);
  TU_CHECK(rc == 0, "study_report rc %d", rc);
  char err[512];
  jv *v = jv_parse_file(o.json, err, sizeof err);
  TU_CHECK(v != NULL, "report json: %s", err);
  if (!v) return;
  const jv *small = find_scenario(v, "small"), *big = find_scenario(v, "big");
  TU_CHECK(small && big, "both scenarios reported");
  if (!small || !big) goto done;
  // fastgpu: MFU from the published 50k img/s = 3 x 1e9 x 5e4 / 5e14 = 30 %;
  // compute would give 50k img/s, one host core decodes 100: input-bound.
  const jv *g1 = find_grid(small, "fastgpu", 1);
  TU_CHECK(g1 && !strcmp(jv_str(g1, "binding", ""), "input pipeline") && near(jv_num(g1, "images_per_s", 0), 100, 1e-9),
           "decode-bound config reported input-bound: %s %g", g1 ? jv_str(g1, "binding", "") : "?",
           g1 ? jv_num(g1, "images_per_s", 0) : 0);
  TU_CHECK(g1 && near(jv_num(g1, "mfu", 0), 0.3, 1e-9) && !strcmp(jv_str(g1, "mfu_label", ""), "published"),
           "published MFU converted with the model's FLOPs: %g", g1 ? jv_num(g1, "mfu", 0) : 0);
  TU_CHECK(g1 && strstr(jv_str(g1, "risks", ""), "not verified on a GPU"), "unverified CUDA flagged");
  // slownet x 16 = 2 nodes over 0.05 GB/s: ring 2 x 15/16 x 4 MB / 0.05 GB/s = 150 ms against 1.3 ms of
  // compute and 10 ms of decoding (64 host cores per device): comm-bound.
  const jv *g16 = find_grid(small, "slownet", 16);
  TU_CHECK(g16 && !strcmp(jv_str(g16, "binding", ""), "communication") && (int)jv_num(g16, "nodes", 0) == 2,
           "slow-network multi-node config comm-bound: %s", g16 ? jv_str(g16, "binding", "") : "?");
  TU_CHECK(g16 && strstr(jv_str(g16, "risks", ""), "fast interconnect"), "multi-node risk");
  // smallgpu: 0.9 GiB budget holds (0.966e9 - 1e8) / 1e7 = 86 images: batch 200 infeasible, 64 fits.
  const jv *gb = find_grid(big, "smallgpu", 1), *gs = find_grid(small, "smallgpu", 1);
  TU_CHECK(gb && !jv_num(gb, "feasible", 1) && !strcmp(jv_str(gb, "binding", ""), "memory") &&
               (int)jv_num(gb, "max_batch", 0) == 86,
           "oversized batch infeasible: feasible %g binding %s max %g", gb ? jv_num(gb, "feasible", 1) : -1,
           gb ? jv_str(gb, "binding", "") : "?", gb ? jv_num(gb, "max_batch", 0) : 0);
  TU_CHECK(gs && jv_num(gs, "feasible", 0), "batch 64 fits");
  const jv *gt = find_grid(small, "tpu", 1);
  TU_CHECK(gt && !jv_num(gt, "runnable", 1) && strstr(jv_str(gt, "risks", ""), "not runnable"), "TPU not runnable");
  const char *prod = jv_str(small, "production.hardware", "");
  TU_CHECK(strcmp(prod, "tpu") != 0 && prod[0], "production pick is runnable: '%s'", prod);
  TU_CHECK(jv_str(small, "production.mfu.label", NULL) && jv_str(small, "production.input_rate_per_core.source", NULL) &&
               jv_str(small, "production_reason", "")[0],
           "production pick carries its inputs' labels, sources and a reason");
  TU_CHECK(!jv_num(v, "cuda.verified_on_gpu", 1), "no GPU run: CUDA unverified");
  TU_CHECK(near(jv_num(small, "quality.macro_f1", 0), 0.7, 1e-9), "quality from the evaluated run");
  // Calibration: c64 predicted from c32 (same MFU 3e9*40/1e11... = 1.2 / 4 -> equal), and vice versa.
  const jv *cal = jv_path(v, "calibration.rows");
  TU_CHECK(cal && cal->n == 2, "two calibration rows");
  for (int i = 0; cal && i < cal->n; i++) {
    const jv *c = &cal->items[i];
    TU_CHECK(fabs(jv_num(c, "error", 1)) < 0.02 && jv_num(c, "within_tolerance", 0), "calibration %s error %g",
             jv_str(c, "path", ""), jv_num(c, "error", 1));
    TU_CHECK(strcmp(jv_str(c, "mfu_from", ""), jv_str(c, "path", "")) != 0, "leave-one-out");
  }
  char md[600];
  snprintf(md, sizeof md, "%s", path_of("out/study-small.svg"));
  TU_CHECK(access(md, R_OK) == 0, "cost-vs-time plot written");
  TU_CHECK(access(path_of("out/study-scaling.svg"), R_OK) == 0, "scaling plot written");
done:
  jv_free(v);
}

static void test_bad_input(void) {
  put("badhw.tsv", "name\tkind\tunit\tfp32\ttf32\tbf16\tusd_per_hour\n"
                   "x\tgpu\tdevice\tfast\t0\t1\t1\n");
  study_opts o;
  study_opts_defaults(&o);
  o.out = path_of("out2/study.md");
  o.hardware_table = path_of("badhw.tsv");
  o.scenarios = path_of("sc.tsv");
  o.published = path_of("pub.tsv");
  o.input_bench = "";
  o.describe = fake_describe;
  TU_CHECK(study_report(&o) == 2, "a malformed hardware table is bad input (2)");
  o.hardware_table = path_of("hw.tsv");
  o.input_bench = path_of("missing.json");
  TU_CHECK(study_report(&o) == 2, "a named input bench that does not exist is bad input");
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/dp_test_study.%d", (int)getpid());
  mkdir(dir, 0755);
  test_terms();
  test_runs();
  test_report();
  test_bad_input();
  if (tu_failures == 0) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "note: could not remove %s\n", dir);
  }
  return tu_finish("test_study");
}
