// Scaling, throughput, cost and MFU arithmetic (pure functions, unit-tested),
// and the hardware table (bench/hardware.tsv) that supplies peak rates and
// prices.
#ifndef DP_TRAIN_COST_H
#define DP_TRAIN_COST_H
#include <stdint.h>

// rate_n / (n * rate_1): 1.0 is perfect weak scaling. NAN if inputs are unusable.
double scaling_efficiency(double rate_n, int n, double rate_1);
// Fraction of gradient communication overlapped with backward:
// 1 - exposed_wait / comm_span, where comm_span runs from the first bucket's
// start to the end of the wait. NAN when nothing was communicated.
double comm_hidden_fraction(double exposed_wait_s, double comm_span_s);
// Rank-hours x price.
double run_cost_usd(int ranks, double wall_s, double price_per_rank_hour);
// Wall time of a full run: images * epochs / rate.
double projected_time_s(int64_t images, int64_t epochs, double images_per_s);
double projected_cost_usd(int ranks, int64_t images, int64_t epochs, double images_per_s,
                          double price_per_rank_hour);
// Model FLOPs utilisation: training FLOPs per image (3 x forward: forward +
// input grads + weight grads) x img/s over the summed peak of all ranks.
double mfu(int64_t fwd_flops_per_image, double images_per_s, int ranks, double peak_flops_per_rank);

// ---- hardware table ---------------------------------------------------------
// Columns are named by the table's header row ("name kind unit fp32 ..."), so
// a user's table may leave out the optional ones (NAN = not given: the study
// then uses its labelled defaults) and keep old 7/8-column files working.
typedef struct {
  char name[64];
  char kind[16];          // cpu | gpu | tpu
  char unit[16];          // core | socket | device: what one rank owns (core: x cores)
  double peak_fp32, peak_tf32, peak_bf16;   // FLOP/s per unit
  double price_per_hour;  // USD per unit-hour (user-editable estimate)
  // Optional columns (NAN when absent or "-"):
  double cores_per_device;   // host CPU cores that feed one unit (input pipeline); 1 for unit=core
  double memory_bytes;       // memory one unit can hold a training step in
  double devices_per_node;   // units per node (beyond this a run is multi-node)
  double intra_bps;          // all-reduce bus bandwidth inside a node, bytes/s (NVLink, PCIe, shared memory)
  double inter_bps;          // all-reduce bus bandwidth between nodes, bytes/s (InfiniBand, Ethernet)
  double storage_bps;        // shard read bandwidth one node gets, bytes/s
  char source[256];
} hw_entry;

typedef struct {
  hw_entry *e;
  int n;
} hw_table;

// Loads the tab/space separated table (see bench/hardware.tsv). Returns 0, or
// -1 with a message in err_msg.
int hw_table_load(hw_table *t, const char *path, char *err_msg, int err_sz);
void hw_table_free(hw_table *t);
const hw_entry *hw_table_find(const hw_table *t, const char *name);
// Default table path: $DPTRAIN_HARDWARE_TABLE, else <source dir>/bench/hardware.tsv.
const char *hw_table_default_path(void);
// Peak FLOP/s and price of one rank that owns `cores` cores (unit core: x cores).
double hw_rank_peak(const hw_entry *e, const char *precision, int cores);
double hw_rank_price(const hw_entry *e, int cores);
#endif
