// The study's inputs besides results.json: scenarios (bench/scenarios.tsv),
// published throughputs (bench/published.tsv), the input-pipeline bench
// (bench/results/input_180kb.json from bench/bench_input_180kb.sh) and
// batch-size finder results (`dptrain tune-batch --json`, when it lands).
// All are user-editable files; every loader names the file, line and column
// of a bad value.
#ifndef DP_STUDY_SOURCES_H
#define DP_STUDY_SOURCES_H
#include <stdint.h>

typedef struct {
  char name[48], model[32], optimizer[8], what[160];
  int64_t image_size, epochs, batch, classes;
} sc_scenario;

typedef struct {
  char family[16], model[32], hardware[64], precision[8], source[320];
  int64_t image_size, classes;
  double img_s;
} pub_entry;

#define IB_MAX 8
typedef struct {
  int loaded;
  char path[1024], cpu_model[128];
  double load;                       // 1-minute load average when it finished
  int cpus;
  int width, height, quality, count;
  double mean_bytes, raw_rate;
  int n;
  int out_size[IB_MAX];
  double float_rate[IB_MAX], u8_rate[IB_MAX];   // img/s per core
} ib_bench;

// A batch-size finder result: the largest batch of `model` at `image_size`
// that fits `memory_budget_bytes` (on `hardware`, when named).
typedef struct {
  char model[32], hardware[64], path[1024];
  int64_t image_size, batch;
  double budget_bytes;
} tb_entry;

typedef struct {
  sc_scenario *sc;
  int nsc;
  pub_entry *pub;
  int npub;
  ib_bench ib;
  tb_entry *tb;
  int ntb;
} study_sources;

// Each returns 0 or -1 with a message naming the file (and line).
int sc_load(study_sources *s, const char *path, char *err, int err_sz);
int pub_load(study_sources *s, const char *path, char *err, int err_sz);
int ib_load(ib_bench *b, const char *path, char *err, int err_sz);
int tb_load(study_sources *s, const char *path, char *err, int err_sz);
void study_sources_free(study_sources *s);
// Decode + augment img/s per core for an output size: linear between the
// measured sizes, the nearest one outside them. u8: the GPU path's uint8
// output, else float (CPU). NAN when not loaded.
double ib_rate(const ib_bench *b, int64_t out_size, int u8);
#endif
